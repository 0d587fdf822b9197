"""Admin pages for links (with their tasks and the pipeline actions), categories and tags."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest

from ingestion import services
from ingestion.models import Category, Link, Tag
from tasks.models import Task

# The inline shows the newest tasks only; the full history is in the task admin.
INLINE_TASK_LIMIT = 20


class RecentTasksFormSet(BaseInlineFormSet):
    def get_queryset(self) -> QuerySet[Task]:
        # Sliced after the formset has filtered by link, which a sliced queryset no longer allows.
        if not hasattr(self, "_recent_tasks"):
            self._recent_tasks = super().get_queryset().order_by("-created_at", "-id")[:INLINE_TASK_LIMIT]
        return self._recent_tasks


class LinkTaskInline(admin.TabularInline):
    model = Task
    formset = RecentTasksFormSet
    fields = ["id", "kind", "status", "attempts", "created_at", "finished_at", "error_message"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = f"tasks (newest {INLINE_TASK_LIMIT})"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _run_stage(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Link], stage: str) -> None:
    ids = list(queryset.values_list("id", flat=True))
    try:
        queued = services.links_enqueue_stage(link_ids=ids, stage=stage, force=True, actor=request.user.get_username())
    except services.IngestionError as exc:
        modeladmin.message_user(request, str(exc), level=messages.ERROR)
        return
    modeladmin.message_user(request, f"Queued {len(queued)} {stage} task(s).", level=messages.SUCCESS)


@admin.action(description="Re-parse selected links", permissions=["change"])
def reparse(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Link]) -> None:
    _run_stage(modeladmin, request, queryset, "parse")


@admin.action(description="Re-summarize selected links", permissions=["change"])
def resummarize(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Link]) -> None:
    _run_stage(modeladmin, request, queryset, "ai")


@admin.action(description="Sync selected links to Notion", permissions=["change"])
def sync_to_notion(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Link]) -> None:
    _run_stage(modeladmin, request, queryset, "notion")


@admin.register(Link)
class LinkAdmin(admin.ModelAdmin):
    list_display = ["id", "status", "title_or_url", "domain", "category", "created_at"]
    list_filter = ["status", "category", "created_at"]
    search_fields = ["normalized_url", "url", "title"]
    list_select_related = ["category"]
    date_hierarchy = "created_at"
    actions = [reparse, resummarize, sync_to_notion]
    inlines = [LinkTaskInline]
    filter_horizontal = ["tags"]
    readonly_fields = [
        "normalized_url",
        "final_url",
        "domain",
        "status",
        "authors",
        "published_at",
        "top_image",
        "language",
        "word_count",
        "content_hash",
        "ai_content_hash",
        "notion_page_id",
        "notion_url",
        "last_error",
        "submitted_by",
        "created_at",
        "updated_at",
        "parsed_at",
        "summarized_at",
        "synced_at",
    ]
    fieldsets = [
        (None, {"fields": ["url", "normalized_url", "final_url", "domain", "status", "last_error"]}),
        ("Article", {"fields": ["title", "authors", "published_at", "top_image", "language", "word_count", "text"]}),
        ("AI", {"fields": ["summary", "category", "tags", "content_hash", "ai_content_hash"]}),
        ("Notion", {"fields": ["notion_page_id", "notion_url"]}),
        (
            "History",
            {"fields": ["submitted_by", "created_at", "updated_at", "parsed_at", "summarized_at", "synced_at"]},
        ),
    ]

    @admin.display(description="title", ordering="title")
    def title_or_url(self, link: Link) -> str:
        return (link.title or link.url)[:120]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Links are added through the API or an import, which normalize and queue them.
        return False


class CategoryAdminForm(forms.ModelForm):
    keywords = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Words that suggest this category, separated by commas",
    )

    class Meta:
        model = Category
        fields = ["name", "description", "keywords"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["keywords"] = ", ".join(self.instance.keywords or [])

    def clean_keywords(self) -> list[str]:
        words = [" ".join(word.split()).lower() for word in self.cleaned_data["keywords"].split(",")]
        return list(dict.fromkeys(word for word in words if word))


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    form = CategoryAdminForm
    list_display = ["name", "description", "keyword_list"]
    search_fields = ["name", "description"]

    @admin.display(description="keywords")
    def keyword_list(self, category: Category) -> str:
        return ", ".join(category.keywords or [])


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name"]
    search_fields = ["name"]
