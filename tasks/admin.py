from __future__ import annotations

from django.contrib import admin

from tasks.models import Task, TaskEvent


class TaskEventInline(admin.TabularInline):
    model = TaskEvent
    extra = 0
    can_delete = False
    readonly_fields = ["created_at", "event", "attempt", "worker_name", "actor", "message"]
    fields = readonly_fields


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "queue", "status", "attempts", "progress", "created_at"]
    list_filter = ["status", "queue", "kind"]
    inlines = [TaskEventInline]
