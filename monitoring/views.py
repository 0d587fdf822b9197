"""Monitoring endpoints: thin views over ``system_stats()`` and the health verdicts.

``health`` is for load balancers: no authentication, no throttle, two cheap
probes and nothing that helps an attacker. ``health/detailed`` and
``metrics`` need a staff session or ``Authorization: Bearer <METRICS_TOKEN>``.
``workers`` and ``queues`` need the ``tasks.view_task`` permission.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from prometheus_client import CONTENT_TYPE_LATEST
from rest_framework import exceptions, serializers
from rest_framework.authentication import BaseAuthentication, SessionAuthentication, TokenAuthentication
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kbmanager.api import error_responses
from kbmanager.permissions import require_perms
from monitoring.health import cheap_health, health_report
from monitoring.metrics import render_metrics
from monitoring.stats import system_stats

METRICS_TOKEN_AUTH = "metrics-token"


class MetricsScraper:
    """The caller that presented the metrics token: may read monitoring, nothing else."""

    is_authenticated = True
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    username = "metrics-token"

    def has_perms(self, perms: Any) -> bool:
        return False

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False


class MetricsTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer <METRICS_TOKEN>``, compared in constant time. Off while the setting is empty."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[MetricsScraper, str] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        keyword, _, presented = header.partition(" ")
        if keyword != self.keyword:
            return None  # Not ours: another authenticator may know it.
        expected = settings.METRICS_TOKEN
        if not expected or not hmac.compare_digest(presented.strip().encode(), expected.encode()):
            raise exceptions.AuthenticationFailed("invalid metrics token")
        return MetricsScraper(), METRICS_TOKEN_AUTH

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="monitoring"'


class MetricsTokenScheme(OpenApiAuthenticationExtension):
    target_class = MetricsTokenAuthentication
    name = "metricsToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "The METRICS_TOKEN setting."}


class IsStaffOrMetricsToken(BasePermission):
    message = "staff users or the metrics token only"

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.auth == METRICS_TOKEN_AUTH:
            return True
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff)


class PrometheusTextRenderer(BaseRenderer):
    """Lets a client that accepts only text/plain get errors too (as JSON text) instead of a 406."""

    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return data.encode() if isinstance(data, str) else json.dumps(data).encode()


# Every view here negotiates its renderer, so an `Accept` none of them serves is a 406. The health
# and metrics views are not throttled (scrapers and load balancers poll them); workers and queues are.
_PROTECTED_DESCRIPTIONS = {
    401: "No credentials, or a wrong metrics token.",
    403: "Authenticated, but neither staff nor the metrics token.",
}
_PROTECTED_ERRORS = error_responses(401, 403, 406, described=_PROTECTED_DESCRIPTIONS)
_PERM_ERRORS = error_responses(401, 403, 406, 429, described={403: "Missing the tasks.view_task permission."})


class HealthApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(
        summary="Liveness for load balancers: Redis and PostgreSQL answer",
        auth=[],
        responses={
            200: inline_serializer("Healthy", fields={"status": serializers.ChoiceField(choices=["healthy"])}),
            503: inline_serializer(
                "Unhealthy",
                fields={
                    "status": serializers.ChoiceField(choices=["unhealthy"]),
                    "failing": serializers.ListField(child=serializers.ChoiceField(choices=["redis", "postgres"])),
                },
            ),
            **error_responses(406),
        },
    )
    def get(self, request: Request) -> Response:
        failing = cheap_health()
        if failing:
            return Response({"status": "unhealthy", "failing": failing}, status=503)
        return Response({"status": "healthy"})


class ProtectedMonitoringApi(APIView):
    authentication_classes = [MetricsTokenAuthentication, SessionAuthentication]
    permission_classes = [IsStaffOrMetricsToken]
    throttle_classes: list = []


class HealthDetailedApi(ProtectedMonitoringApi):
    @extend_schema(
        summary="Every component's verdict with a reason, and the statistics behind them",
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="Healthy or degraded."),
            503: OpenApiResponse(OpenApiTypes.OBJECT, description="At least one component is unhealthy."),
            **_PROTECTED_ERRORS,
        },
    )
    def get(self, request: Request) -> Response:
        stats = system_stats()
        report = health_report(stats)
        return Response({**report, "stats": stats}, status=503 if report["status"] == "unhealthy" else 200)


class MetricsApi(ProtectedMonitoringApi):
    # The schema offers `?format=json|txt`; any other value is a 406 naming those two (see REST_FRAMEWORK).
    renderer_classes = [JSONRenderer, PrometheusTextRenderer]

    @extend_schema(
        summary="Prometheus text exposition: task, queue and worker metrics plus request metrics",
        responses={
            (200, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description="Prometheus text format 0.0.4."),
            **error_responses(
                401,
                403,
                406,
                described={
                    **_PROTECTED_DESCRIPTIONS,
                    406: "Neither JSON (errors) nor text/plain is acceptable, or an unknown `format`.",
                },
            ),
        },
    )
    def get(self, request: Request) -> HttpResponse:
        return HttpResponse(render_metrics(), content_type=CONTENT_TYPE_LATEST)


WorkerSerializer = inline_serializer(
    "MonitoringWorker",
    many=True,
    fields={
        "name": serializers.CharField(),
        "hostname": serializers.CharField(),
        "pid": serializers.IntegerField(allow_null=True),
        "queues": serializers.ListField(child=serializers.CharField()),
        "state": serializers.CharField(),
        "alive": serializers.BooleanField(),
        "current_task": serializers.CharField(allow_null=True),
        "current_task_kind": serializers.CharField(allow_null=True),
        "last_heartbeat": serializers.DateTimeField(allow_null=True),
        "heartbeat_age_seconds": serializers.FloatField(allow_null=True),
        "birth": serializers.DateTimeField(allow_null=True),
        "successful_jobs": serializers.IntegerField(),
        "failed_jobs": serializers.IntegerField(),
        "working_seconds": serializers.FloatField(),
    },
)


class WorkersApi(APIView):
    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [require_perms("tasks.view_task")]

    @extend_schema(
        summary="Every registered worker: queues, state, current task, heartbeat, job counts",
        responses={
            200: inline_serializer(
                "MonitoringWorkers",
                fields={"redis_up": serializers.BooleanField(), "workers": WorkerSerializer},
            ),
            **_PERM_ERRORS,
        },
    )
    def get(self, request: Request) -> Response:
        stats = system_stats()
        return Response({"redis_up": stats["redis"]["up"], "workers": stats["workers"] or []})


QueueSerializer = inline_serializer(
    "MonitoringQueue",
    many=True,
    fields={
        "name": serializers.CharField(),
        **{
            field: serializers.IntegerField(allow_null=True)
            for field in (
                "queued",
                "running",
                "scheduled",
                "failed_last_hour",
                "failed_total",
                "rq_failed",
                "workers",
                "workers_busy",
                "workers_idle",
                "workers_stale",
            )
        },
        "oldest_queued_age_seconds": serializers.FloatField(allow_null=True),
        "scheduler": serializers.CharField(allow_null=True),
    },
)


class QueuesApi(APIView):
    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [require_perms("tasks.view_task")]

    @extend_schema(
        summary="Per queue: depth, oldest job age, running, scheduled retries, failures, workers, scheduler",
        responses={
            200: inline_serializer(
                "MonitoringQueues",
                fields={"redis_up": serializers.BooleanField(), "queues": QueueSerializer},
            ),
            **_PERM_ERRORS,
        },
    )
    def get(self, request: Request) -> Response:
        stats = system_stats()
        queues = [{"name": name, **q} for name, q in stats["queues"].items()]
        return Response({"redis_up": stats["redis"]["up"], "queues": queues})
