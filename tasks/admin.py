"""The operator's task browser: fast on millions of tasks, and every action goes through the services."""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html

from tasks.exceptions import TaskConflict, TaskNotFound, TaskStateError
from tasks.models import RetentionPolicy, Task
from tasks.registry import kind_names
from tasks.selectors import task_timeline, tasks_count_estimated, tasks_search
from tasks.services import BULK_ACTIONS, task_cancel, task_retry, tasks_bulk_action

STATUS_COLOURS = {
    "pending": "#6c757d",
    "queued": "#0d6efd",
    "running": "#6f42c1",
    "completed": "#198754",
    "failed": "#dc3545",
    "cancelled": "#fd7e14",
}

# The changelist reads only what it shows: args, result and tracebacks can be large.
CHANGELIST_FIELDS = (
    "id",
    "kind",
    "queue",
    "status",
    "attempts",
    "progress",
    "created_at",
    "started_at",
    "finished_at",
    "link_id",
    "link__id",
    "link__url",
)


def rq_dashboard_url() -> str:
    try:
        return reverse("rq_home")
    except NoReverseMatch:
        return "/admin/rq/"


def status_badge(status: str, label: str) -> str:
    colour = STATUS_COLOURS.get(status, "#6c757d")
    return format_html(
        '<span class="task-status task-status-{}" style="background:{};color:#fff;padding:2px 8px;'
        'border-radius:10px;font-size:11px;white-space:nowrap">{}</span>',
        status,
        colour,
        label,
    )


class EstimatedCountPaginator(Paginator):
    """Counts at most COUNT_CAP + 1 filtered rows and estimates the unfiltered table, instead of COUNT(*)."""

    @cached_property
    def count(self) -> int:
        return tasks_count_estimated(self.object_list)


class QueueFilter(admin.SimpleListFilter):
    """Choices come from settings, not from SELECT DISTINCT queue over every task."""

    title = "queue"
    parameter_name = "queue"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(name, name) for name in settings.QUEUE_NAMES]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Task]) -> QuerySet[Task]:
        return queryset.filter(queue=self.value()) if self.value() else queryset


class KindFilter(admin.SimpleListFilter):
    """Choices come from the handler registry, not from SELECT DISTINCT kind over every task."""

    title = "kind"
    parameter_name = "kind"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(name, name) for name in kind_names()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Task]) -> QuerySet[Task]:
        return queryset.filter(kind=self.value()) if self.value() else queryset


def _pretty_json(value: Any) -> str:
    return format_html("<pre style='white-space:pre-wrap;margin:0'>{}</pre>", json.dumps(value, indent=2, default=str))


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "status_display",
        "kind",
        "queue",
        "link_display",
        "attempts",
        "progress_display",
        "created_at",
        "duration_display",
    ]
    list_filter = ["status", QueueFilter, KindFilter, ("created_at", admin.DateFieldListFilter)]
    search_fields = ["id"]  # searching itself is done by get_search_results
    search_help_text = "A task id (exact), a link URL (prefix) or text from the error message."
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    actions = ["cancel_selected", "retry_selected"]
    change_list_template = "admin/tasks/task/change_list.html"
    change_form_template = "admin/tasks/task/change_form.html"
    fieldsets = [
        (None, {"fields": ["id", "status_display", "kind", "queue", "link", "worker_name"]}),
        ("Progress", {"fields": ["progress_display", "progress_message", "attempts", "max_retries", "retry_base"]}),
        ("Input and output", {"fields": ["args_display", "result_display"]}),
        ("Error", {"fields": ["error_message", "traceback_display"]}),
        (
            "Times",
            {
                "fields": [
                    "created_at",
                    "enqueued_at",
                    "started_at",
                    "finished_at",
                    "next_retry_at",
                    "cancel_requested_at",
                    "cancel_requested_by",
                ]
            },
        ),
    ]

    # --- what is shown --------------------------------------------------------

    def get_readonly_fields(self, request: HttpRequest, obj: Task | None = None) -> list[str]:
        return [field for fieldset in self.fieldsets for field in fieldset[1]["fields"]]

    @admin.display(description="status", ordering="status")
    def status_display(self, task: Task) -> str:
        return status_badge(task.status, task.get_status_display())

    @admin.display(description="link")
    def link_display(self, task: Task) -> str:
        if task.link_id is None:
            return "-"
        url = reverse("admin:ingestion_link_change", args=[task.link_id]) if _admin_has("ingestion", "link") else ""
        text = (task.link.url if task.link else str(task.link_id))[:80]
        return format_html('<a href="{}">{}</a>', url, text) if url else text

    @admin.display(description="progress")
    def progress_display(self, task: Task) -> str:
        return format_html(
            '<progress max="100" value="{}" title="{}%"></progress> {}%', task.progress, task.progress, task.progress
        )

    @admin.display(description="duration")
    def duration_display(self, task: Task) -> str:
        seconds = task.run_seconds
        return "-" if seconds is None else f"{seconds:.1f} s"

    @admin.display(description="args")
    def args_display(self, task: Task) -> str:
        return _pretty_json(task.args)

    @admin.display(description="result")
    def result_display(self, task: Task) -> str:
        return _pretty_json(task.result)

    @admin.display(description="traceback")
    def traceback_display(self, task: Task) -> str:
        return format_html("<pre style='white-space:pre-wrap;margin:0'>{}</pre>", task.traceback or "-")

    # --- queries ---------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet[Task]:
        queryset = super().get_queryset(request)
        match = getattr(request, "resolver_match", None)
        if match is not None and match.url_name in {"tasks_task_changelist", "tasks_task_bulk"}:
            queryset = queryset.select_related("link").only(*CHANGELIST_FIELDS)
        return queryset

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Task], search_term: str) -> tuple[Any, bool]:
        return tasks_search(queryset, search_term), False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tasks are created by the pipeline, never by hand

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        # Django's cascade would collect every event in Python; retention does deletion properly.
        actions.pop("delete_selected", None)
        return actions

    # --- actions ---------------------------------------------------------------

    @admin.action(description="Cancel selected tasks", permissions=["change"])
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        self._bulk(request, "cancel", queryset)

    @admin.action(description="Retry selected tasks", permissions=["change"])
    def retry_selected(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        self._bulk(request, "retry", queryset)

    def _bulk(self, request: HttpRequest, action: str, queryset: QuerySet[Task]) -> None:
        result = tasks_bulk_action(action=action, queryset=queryset, actor=request.user.get_username())
        verb = "cancelled" if action == "cancel" else "retried"
        message = f"{result.acted} tasks {verb}"
        if result.skipped:
            message += f", {result.skipped} had changed meanwhile and were left alone"
        if result.truncated:
            message += f"; stopped at the limit of {result.limit}, run it again for the rest"
        self.message_user(request, message, messages.SUCCESS if result.acted else messages.WARNING)

    # --- extra views -----------------------------------------------------------

    def get_urls(self) -> list[Any]:
        extra = [
            path(
                "bulk/<str:action>/",
                self.admin_site.admin_view(self.bulk_view),
                name="tasks_task_bulk",
            ),
            path(
                "<path:object_id>/act/<str:action>/",
                self.admin_site.admin_view(self.task_action_view),
                name="tasks_task_act",
            ),
        ]
        return extra + super().get_urls()

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra_context = {
            **(extra_context or {}),
            "rq_dashboard_url": rq_dashboard_url(),
            "can_act": self.has_change_permission(request),
        }
        return super().changelist_view(request, extra_context)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = dict(extra_context or {})
        task = self.get_object(request, object_id)
        if task is not None:
            extra_context.update(
                timeline=task_timeline(task=task),
                status_badge=status_badge(task.status, task.get_status_display()),
                can_act=self.has_change_permission(request, task),
                rq_dashboard_url=rq_dashboard_url(),
                show_save=False,
                show_save_and_continue=False,
                show_save_and_add_another=False,
                show_delete=False,
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def task_action_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        """Cancel or retry one task from its detail page (POST only)."""
        change_url = reverse("admin:tasks_task_change", args=[object_id])
        if request.method != "POST" or action not in BULK_ACTIONS:
            return HttpResponseRedirect(change_url)
        if not self.has_change_permission(request):
            raise PermissionDenied
        service = task_cancel if action == "cancel" else task_retry
        try:
            service(task_id=object_id, actor=request.user.get_username())
        except TaskNotFound as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:tasks_task_changelist"))
        except (TaskStateError, TaskConflict) as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(request, f"task {'cancelled' if action == 'cancel' else 'queued again'}")
        return HttpResponseRedirect(change_url)

    def bulk_view(self, request: HttpRequest, action: str) -> HttpResponse:
        """Cancel or retry all tasks matching the changelist's current filter, after a confirmation page.

        The querystring is the changelist's own, so the filter applied is
        exactly what the operator was looking at (filters and search).
        """
        if action not in BULK_ACTIONS or not self.has_change_permission(request):
            raise PermissionDenied
        changelist = self.get_changelist_instance(request)
        queryset = changelist.get_queryset(request)
        querystring = request.GET.urlencode()
        changelist_url = reverse("admin:tasks_task_changelist") + (f"?{querystring}" if querystring else "")
        if request.method == "POST":
            result = tasks_bulk_action(action=action, queryset=queryset, actor=request.user.get_username())
            verb = "cancelled" if action == "cancel" else "retried"
            message = f"{result.acted} of {result.matched} matching tasks {verb}"
            if result.skipped:
                message += f" ({result.skipped} had changed meanwhile and were left alone)"
            if result.truncated:
                message += f"; stopped at the limit of {result.limit}, run it again for the rest"
            self.message_user(request, message, messages.SUCCESS if result.acted else messages.WARNING)
            return HttpResponseRedirect(changelist_url)
        preview = tasks_bulk_action(action=action, queryset=queryset, dry_run=True)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"{action.capitalize()} all matching tasks?",
            "action": action,
            "preview": preview,
            "filters": [(key, value) for key, value in request.GET.items()],
            "changelist_url": changelist_url,
        }
        return TemplateResponse(request, "admin/tasks/task/bulk_confirmation.html", context)


def _admin_has(app_label: str, model_name: str) -> bool:
    return any(
        model._meta.app_label == app_label and model._meta.model_name == model_name for model in admin.site._registry
    )


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin):
    list_display = ["status", "queue_display", "days"]
    list_editable = ["days"]
    list_display_links = ["status"]

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "queue":
            choices = [("", "every queue")] + [(name, name) for name in settings.QUEUE_NAMES]
            return forms.ChoiceField(choices=choices, required=False, help_text=db_field.help_text)
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @admin.display(description="queue", ordering="queue")
    def queue_display(self, policy: RetentionPolicy) -> str:
        return policy.queue or "every queue"
