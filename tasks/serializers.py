"""Input and output serializers of the task API: one pair per view, as the conventions ask."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tasks.models import Task, TaskEvent, TaskStatus
from tasks.registry import kind_names
from tasks.selectors import TIMELINE_EVENT_LIMIT
from tasks.services import BULK_ACTIONS

# --- input --------------------------------------------------------------------


class TaskIdInputSerializer(serializers.Serializer):
    """The task id from the URL, validated so a malformed one is a 400 naming ``id``."""

    id = serializers.UUIDField()


class TaskFilterSerializer(serializers.Serializer):
    """Filters shared by the list and by bulk actions; unknown values are a 400 naming the field."""

    status = serializers.ChoiceField(choices=TaskStatus.choices, required=False)
    queue = serializers.ChoiceField(choices=[], required=False)
    kind = serializers.ChoiceField(choices=[], required=False)
    link = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Read at request time: the registry fills up as apps load, and tests change QUEUE_NAMES.
        self.fields["queue"].choices = list(settings.QUEUE_NAMES)
        self.fields["kind"].choices = kind_names()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        after, before = attrs.get("created_after"), attrs.get("created_before")
        if after and before and after >= before:
            raise serializers.ValidationError({"created_before": "must be later than created_after"})
        return attrs


class TaskBulkInputSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=list(BULK_ACTIONS))
    filter = TaskFilterSerializer(required=False, default=dict)
    dry_run = serializers.BooleanField(required=False, default=False)


# --- output -------------------------------------------------------------------


class TaskEventOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = TaskEvent
        fields = ["event", "created_at", "attempt", "worker_name", "actor", "message"]


class TaskListOutputSerializer(serializers.ModelSerializer):
    link = serializers.IntegerField(source="link_id", allow_null=True)

    class Meta:
        model = Task
        fields = [
            "id",
            "kind",
            "queue",
            "status",
            "link",
            "attempts",
            "max_retries",
            "progress",
            "progress_message",
            "error_message",
            "created_at",
            "enqueued_at",
            "started_at",
            "finished_at",
            "next_retry_at",
        ]


class TaskDetailOutputSerializer(TaskListOutputSerializer):
    args = serializers.JSONField()
    result = serializers.JSONField(allow_null=True)
    events = serializers.SerializerMethodField()

    class Meta(TaskListOutputSerializer.Meta):
        fields = TaskListOutputSerializer.Meta.fields + [
            "args",
            "result",
            "traceback",
            "worker_name",
            "retry_base",
            "cancel_requested_at",
            "cancel_requested_by",
            "events",
        ]

    # drf-spectacular cannot see through a method field; name its shape explicitly.
    @extend_schema_field(TaskEventOutputSerializer(many=True))
    def get_events(self, task: Task) -> list[dict[str, Any]]:
        events = TaskEvent.objects.filter(task_id=task.id).order_by("created_at", "id")[:TIMELINE_EVENT_LIMIT]
        return TaskEventOutputSerializer(events, many=True).data


class TaskBulkOutputSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=list(BULK_ACTIONS))
    dry_run = serializers.BooleanField()
    matched = serializers.IntegerField(help_text="Tasks matching the filter that the action applies to.")
    acted = serializers.IntegerField(help_text="Tasks cancelled or retried by this call.")
    skipped = serializers.IntegerField(help_text="Tasks that changed meanwhile and were left alone.")
    limit = serializers.IntegerField(help_text="Most tasks one call acts on (TASK_BULK_ACTION_LIMIT).")
    truncated = serializers.BooleanField(help_text="More tasks match than one call acts on; call again.")
