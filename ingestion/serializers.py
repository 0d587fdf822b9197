"""Input and output shapes of the links and pipeline-stage API."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers
from rest_framework.fields import empty

from ingestion.models import Link, LinkStatus

# --- strict fields: DRF would quietly turn 5 into "5" and "5" into 5 ----------------


class StrictStringField(serializers.CharField):
    """A string and nothing else (DRF's CharField accepts numbers)."""

    default_error_messages = {"invalid": "Must be a string, got {kind}."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid", kind=type(data).__name__)
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer and nothing else (DRF's IntegerField accepts "5" and true)."""

    default_error_messages = {"not_int": "Must be an integer, got {value!r}."}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("not_int", value=data if isinstance(data, str | int | float | bool | None) else type(data))
        return super().to_internal_value(data)


class FormBooleanField(serializers.BooleanField):
    """A boolean whose default also applies when a multipart form leaves it out.

    DRF treats a boolean missing from form data as an unticked checkbox
    (False), which would turn ``process`` off for every upload that omits it.
    """

    default_empty_html = empty


def _cap_list(values: list[Any], *, what: str) -> list[Any]:
    cap = settings.LINKS_SUBMIT_MAX
    if len(values) > cap:
        raise serializers.ValidationError(f"at most {cap} {what} per request (LINKS_SUBMIT_MAX); got {len(values)}")
    return values


# --- submit and import ------------------------------------------------------------


class LinkSubmitRequestSerializer(serializers.Serializer):
    urls = serializers.ListField(child=StrictStringField(allow_blank=True, trim_whitespace=False), allow_empty=False)
    process = serializers.BooleanField(default=True, help_text="Queue the parse step for new links.")

    def validate_urls(self, value: list[str]) -> list[str]:
        return _cap_list(value, what="URLs")


class LinkSubmitResultSerializer(serializers.Serializer):
    url = serializers.CharField()
    status = serializers.ChoiceField(choices=["created", "duplicate", "invalid"])
    id = serializers.IntegerField(required=False, allow_null=True, help_text="The new or existing link")
    task_id = serializers.UUIDField(required=False, allow_null=True, help_text="The parse task of a new link")
    reason = serializers.CharField(required=False, help_text="Why the URL is invalid")


class LinkSubmitResponseSerializer(serializers.Serializer):
    results = LinkSubmitResultSerializer(many=True)
    created = serializers.IntegerField()
    duplicate = serializers.IntegerField()
    invalid = serializers.IntegerField()


class LinkImportRequestSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="Plain text, CSV with a url column, bookmarks HTML or a Pocket CSV export")
    dry_run = FormBooleanField(default=False)
    process = FormBooleanField(default=True)

    def validate_file(self, value: Any) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if value.size > limit:
            raise serializers.ValidationError(f"the file is {value.size} bytes; the limit is {limit} bytes")
        return value


class LinkImportResponseSerializer(serializers.Serializer):
    format = serializers.CharField()
    dry_run = serializers.BooleanField()
    total = serializers.IntegerField()
    created = serializers.IntegerField()
    duplicate = serializers.IntegerField()
    invalid = serializers.IntegerField()
    error_count = serializers.IntegerField()
    errors = serializers.ListField(child=serializers.CharField())


# --- reading links ------------------------------------------------------------------


class LinkListQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=LinkStatus.choices, required=False)
    category = serializers.CharField(required=False, help_text="Category name or id")
    tag = serializers.CharField(required=False)
    domain = serializers.CharField(required=False)
    q = serializers.CharField(required=False, help_text="Text search over title, URL and summary")


class LinkSerializer(serializers.ModelSerializer):
    category = serializers.CharField(source="category.name", default=None, allow_null=True)
    tags = serializers.SerializerMethodField()

    class Meta:
        model = Link
        fields = [
            "id",
            "url",
            "normalized_url",
            "final_url",
            "domain",
            "status",
            "title",
            "summary",
            "category",
            "tags",
            "language",
            "word_count",
            "notion_page_id",
            "notion_url",
            "last_error",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_tags(self, link: Link) -> list[str]:
        return [tag.name for tag in link.tags.all()]


class LinkTaskSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.CharField()
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    error_message = serializers.CharField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class LinkDetailSerializer(LinkSerializer):
    tasks = LinkTaskSerializer(source="recent_tasks", many=True)

    class Meta(LinkSerializer.Meta):
        fields = [
            *LinkSerializer.Meta.fields,
            "authors",
            "published_at",
            "top_image",
            "text",
            "content_hash",
            "parsed_at",
            "summarized_at",
            "synced_at",
            "tasks",
        ]
        read_only_fields = fields


# --- pipeline stages ------------------------------------------------------------------

# "async" is a Python keyword, so the class is built with type() to give the field that name.
StageRequestSerializer = type(
    "StageRequestSerializer",
    (serializers.Serializer,),
    {
        "link_ids": serializers.ListField(child=StrictIntegerField(min_value=1), allow_empty=False),
        "async": serializers.BooleanField(
            default=True, help_text="Queue one task per link (202), or run the step in the request (200)"
        ),
        "force": serializers.BooleanField(default=False, help_text="Re-run even when nothing changed"),
        "validate_link_ids": lambda self, value: _cap_list(value, what="link ids"),
        "__module__": __name__,
    },
)


class StageTaskSerializer(serializers.Serializer):
    link_id = serializers.IntegerField()
    task_id = serializers.UUIDField()


class StageQueuedResponseSerializer(serializers.Serializer):
    tasks = StageTaskSerializer(many=True)


class StageResultSerializer(serializers.Serializer):
    link_id = serializers.IntegerField()
    ok = serializers.BooleanField()
    status = serializers.CharField(allow_null=True, help_text="The link's status afterwards")
    result = serializers.DictField(required=False)
    error = serializers.CharField(required=False)


class StageRanResponseSerializer(serializers.Serializer):
    results = StageResultSerializer(many=True)
