"""The task API: thin views that validate input, call one selector or service, and render output."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView

from kbmanager.api import FieldErrorCursorPagination, error_responses
from kbmanager.permissions import require_perms
from tasks.exceptions import TaskConflict, TaskNotFound, TaskStateError
from tasks.models import Task
from tasks.selectors import tasks_filtered
from tasks.serializers import (
    TaskBulkInputSerializer,
    TaskBulkOutputSerializer,
    TaskDetailOutputSerializer,
    TaskFilterSerializer,
    TaskIdInputSerializer,
    TaskListOutputSerializer,
)
from tasks.services import task_cancel, task_retry, tasks_bulk_action

# A bulk request is an action and a handful of filters; anything this big is a mistake or an attack.
MAX_BODY_BYTES = 64 * 1024

CanView = require_perms("tasks.view_task")
CanChange = require_perms("tasks.change_task")


class ConfigurableUserThrottle(UserRateThrottle):
    """DRF's per-user throttle, reading API_THROTTLE_RATE when asked rather than once at import."""

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class TaskActionConflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "the task is not in a state that allows this action"


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    # Every task endpoint can also answer 406 (an Accept header nothing renders).
    return error_responses(
        *codes,
        406,
        described={
            404: "No such task.",
            409: "The task's state does not allow the action, or it changed meanwhile.",
        },
    )


TASK_ID_PARAMETER = OpenApiParameter("task_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="Task id")


def _task_id(raw: str) -> str:
    serializer = TaskIdInputSerializer(data={"id": raw})
    serializer.is_valid(raise_exception=True)
    return str(serializer.validated_data["id"])


class TaskCursorPagination(FieldErrorCursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class ThrottledAPIView(APIView):
    throttle_classes = [ConfigurableUserThrottle]


class TaskListApi(ThrottledAPIView):
    permission_classes = [CanView]
    pagination_class = TaskCursorPagination

    @extend_schema(
        operation_id="tasks_list",
        parameters=[
            TaskFilterSerializer,
            OpenApiParameter("cursor", OpenApiTypes.STR, description="Opaque cursor from `next`/`previous`."),
            OpenApiParameter("page_size", OpenApiTypes.INT, description="Tasks per page (at most 500)."),
        ],
        responses={200: TaskListOutputSerializer(many=True), **_errors(400, 401, 403, 429)},
    )
    def get(self, request: Request) -> Response:
        """Tasks, newest first, filtered by status, queue, kind, link and creation time (cursor pagination)."""
        filters = TaskFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        queryset = tasks_filtered(**filters.validated_data).only(*_LIST_FIELDS)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(TaskListOutputSerializer(page, many=True).data)


_LIST_FIELDS = [name for name in TaskListOutputSerializer.Meta.fields if name != "link"] + ["link_id"]


class TaskDetailApi(ThrottledAPIView):
    permission_classes = [CanView]

    @extend_schema(
        operation_id="tasks_retrieve",
        parameters=[TASK_ID_PARAMETER],
        responses={200: TaskDetailOutputSerializer, **_errors(400, 401, 403, 404, 429)},
    )
    def get(self, request: Request, task_id: str) -> Response:
        """One task with its arguments, result, error and event history."""
        task = Task.objects.filter(id=_task_id(task_id)).first()
        if task is None:
            raise NotFound(f"task {task_id} does not exist")
        return Response(TaskDetailOutputSerializer(task).data)


def _act(request: Request, task_id: str, service: Any) -> Task:
    try:
        return service(task_id=_task_id(task_id), actor=request.user.get_username())
    except TaskNotFound as exc:
        raise NotFound(str(exc)) from None
    except (TaskStateError, TaskConflict) as exc:
        raise TaskActionConflict(str(exc)) from None


class TaskCancelApi(ThrottledAPIView):
    permission_classes = [CanChange]

    @extend_schema(
        operation_id="tasks_cancel",
        request=None,
        parameters=[TASK_ID_PARAMETER],
        responses={200: TaskDetailOutputSerializer, **_errors(400, 401, 403, 404, 409, 429)},
    )
    def post(self, request: Request, task_id: str) -> Response:
        """Cancel a pending, queued or running task; 409 when it has already finished."""
        task = _act(request, task_id, task_cancel)
        return Response(TaskDetailOutputSerializer(task).data, status=status.HTTP_200_OK)


class TaskRetryApi(ThrottledAPIView):
    permission_classes = [CanChange]

    @extend_schema(
        operation_id="tasks_retry",
        request=None,
        parameters=[TASK_ID_PARAMETER],
        responses={202: TaskDetailOutputSerializer, **_errors(400, 401, 403, 404, 409, 429)},
    )
    def post(self, request: Request, task_id: str) -> Response:
        """Queue a failed or cancelled task again; 409 for any other state."""
        task = _act(request, task_id, task_retry)
        return Response(TaskDetailOutputSerializer(task).data, status=status.HTTP_202_ACCEPTED)


class TaskBulkApi(ThrottledAPIView):
    permission_classes = [CanChange]

    @extend_schema(
        operation_id="tasks_bulk",
        request=TaskBulkInputSerializer,
        responses={200: TaskBulkOutputSerializer, **_errors(400, 401, 403, 415, 429)},
    )
    def post(self, request: Request) -> Response:
        """Count, and unless ``dry_run`` cancel or retry, the tasks matching ``filter`` (at most
        TASK_BULK_ACTION_LIMIT per call; ``truncated`` says when to call again)."""
        _reject_big_body(request._request)
        data = TaskBulkInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        result = tasks_bulk_action(
            action=values["action"],
            queryset=tasks_filtered(**values["filter"]),
            actor=request.user.get_username(),
            dry_run=values["dry_run"],
        )
        output = {
            "action": result.action,
            "dry_run": values["dry_run"],
            "matched": result.matched,
            "acted": result.acted,
            "skipped": result.skipped,
            "limit": result.limit,
            "truncated": result.truncated,
        }
        return Response(TaskBulkOutputSerializer(output).data)


def _reject_big_body(request: HttpRequest) -> None:
    # DRF streams the body to its parser without Django's DATA_UPLOAD_MAX_MEMORY_SIZE check.
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise ValidationError({"body": ["invalid Content-Length"]}) from None
    if length > MAX_BODY_BYTES:
        raise ValidationError({"body": [f"request body larger than {MAX_BODY_BYTES} bytes"]})
