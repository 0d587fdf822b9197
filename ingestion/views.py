"""The links API: submit, list, detail, import, and the three pipeline-stage endpoints.

Views parse input with their serializer, call one service or selector, and
render the answer; authentication is the project's (token or session).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ingestion import selectors, services
from ingestion.lib.importers import ImportFormatError
from ingestion.serializers import (
    LinkDetailSerializer,
    LinkImportRequestSerializer,
    LinkImportResponseSerializer,
    LinkListQuerySerializer,
    LinkSerializer,
    LinkSubmitRequestSerializer,
    LinkSubmitResponseSerializer,
    StageQueuedResponseSerializer,
    StageRanResponseSerializer,
    StageRequestSerializer,
)
from kbmanager.api import FieldErrorCursorPagination, error_responses
from kbmanager.permissions import require_perms


class NotionNotConfiguredError(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "notion_not_configured"
    default_detail = "Notion is not configured (set NOTION_TOKEN and NOTION_DATABASE_ID)"


class LinkCursorPagination(FieldErrorCursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


def _forbidden(perm: str) -> dict[int, str]:
    return {403: f"Missing the {perm} permission."}


# Every view here has the project's authentication, throttle and renderers, so each may answer 401, 429
# and 406 (an `Accept` nothing renders); one that reads a body also 400, 413 and 415 from the parsers.
_READ_ERRORS = (401, 403, 406, 429)
_BODY_ERRORS = (400, *_READ_ERRORS, 413, 415)

_PaginatedLinks = type(
    "PaginatedLinkList",
    (serializers.Serializer,),
    {
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": LinkSerializer(many=True),
        "__module__": __name__,
    },
)


class LinkListView(APIView):
    """GET lists links (needs ingestion.view_link); POST submits URLs (needs ingestion.add_link)."""

    def get_permissions(self) -> list[Any]:
        perm = "ingestion.add_link" if self.request.method == "POST" else "ingestion.view_link"
        return [require_perms(perm)()]

    @extend_schema(
        parameters=[LinkListQuerySerializer, OpenApiParameter("cursor", str), OpenApiParameter("page_size", int)],
        responses={
            200: _PaginatedLinks,
            **error_responses(
                400,
                *_READ_ERRORS,
                described={400: "Invalid filter or cursor; `detail` names it.", **_forbidden("ingestion.view_link")},
            ),
        },
        summary="List links, newest first",
        operation_id="links_list",
    )
    def get(self, request: Request) -> Response:
        query = LinkListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        links = selectors.links_filter(**query.validated_data)
        paginator = LinkCursorPagination()
        page = paginator.paginate_queryset(links, request, view=self)
        return paginator.get_paginated_response(LinkSerializer(page, many=True).data)

    @extend_schema(
        request=LinkSubmitRequestSerializer,
        responses={
            201: LinkSubmitResponseSerializer,
            **error_responses(
                *_BODY_ERRORS,
                described={
                    400: "Not JSON, or an invalid field (`detail` names it), or more than LINKS_SUBMIT_MAX URLs.",
                    **_forbidden("ingestion.add_link"),
                },
            ),
        },
        summary="Submit URLs; one outcome per URL",
    )
    def post(self, request: Request) -> Response:
        body = LinkSubmitRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        results = services.links_submit(
            urls=body.validated_data["urls"], user=request.user, process=body.validated_data["process"]
        )
        counts = {key: sum(1 for r in results if r["status"] == key) for key in ("created", "duplicate", "invalid")}
        return Response({"results": results, **counts}, status=status.HTTP_201_CREATED)


class LinkDetailView(APIView):
    permission_classes = [require_perms("ingestion.view_link")]

    @extend_schema(
        responses={
            200: LinkDetailSerializer,
            **error_responses(
                *_READ_ERRORS, 404, described={404: "No such link.", **_forbidden("ingestion.view_link")}
            ),
        },
        summary="One link with its recent tasks",
        operation_id="links_detail",
    )
    def get(self, request: Request, link_id: int) -> Response:
        link = selectors.link_detail(link_id=link_id)
        if link is None:
            raise NotFound(f"link {link_id} does not exist")
        return Response(LinkDetailSerializer(link).data)


class LinkImportView(APIView):
    permission_classes = [require_perms("ingestion.add_link")]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": LinkImportRequestSerializer},
        responses={
            201: LinkImportResponseSerializer,
            **error_responses(
                *_BODY_ERRORS,
                described={
                    400: "No file, a file over DATA_UPLOAD_MAX_MEMORY_SIZE or in no known format; `detail` names it.",
                    415: "Not multipart/form-data or application/x-www-form-urlencoded.",
                    **_forbidden("ingestion.add_link"),
                },
            ),
        },
        summary="Import a text, CSV, bookmarks HTML or Pocket export",
    )
    def post(self, request: Request) -> Response:
        body = LinkImportRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        upload = body.validated_data["file"]
        try:
            summary = services.links_import(
                data=upload.read(),
                filename=upload.name or "",
                user=request.user,
                dry_run=body.validated_data["dry_run"],
                process=body.validated_data["process"],
            )
        except ImportFormatError as exc:
            raise ValidationError({"file": [str(exc)]}) from exc
        return Response(summary, status=status.HTTP_201_CREATED)


class _StageView(APIView):
    """Queue (202) or run in the request (200) one pipeline stage for the given links."""

    permission_classes = [require_perms("ingestion.change_link")]
    stage = ""

    def post(self, request: Request) -> Response:
        body = StageRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        params = {
            "link_ids": body.validated_data["link_ids"],
            "stage": self.stage,
            "force": body.validated_data["force"],
            "actor": request.user.get_username(),
        }
        try:
            if body.validated_data["async"]:
                queued = services.links_enqueue_stage(**params)
                tasks = [{"link_id": link_id, "task_id": str(task.id)} for link_id, task in queued]
                return Response({"tasks": tasks}, status=status.HTTP_202_ACCEPTED)
            results = services.links_run_stage_sync(**params)
        except (services.LinksNotFound, services.SyncStageCapExceeded) as exc:
            raise ValidationError({"link_ids": [str(exc)]}) from exc
        except services.NotionNotConfigured as exc:
            raise NotionNotConfiguredError() from exc
        return Response({"results": results}, status=status.HTTP_200_OK)


def _stage_schema(*extra_errors: int) -> Any:
    return extend_schema(
        request=StageRequestSerializer,
        responses={
            202: StageQueuedResponseSerializer,
            200: StageRanResponseSerializer,
            **error_responses(
                *_BODY_ERRORS,
                *extra_errors,
                described={
                    400: "Not JSON, an invalid field (`detail` names it), unknown link ids, or more than "
                    "SYNC_STAGE_MAX_LINKS links with `async: false`.",
                    409: "Notion is not configured (NOTION_TOKEN and NOTION_DATABASE_ID).",
                    **_forbidden("ingestion.change_link"),
                },
            ),
        },
    )


class ParsingSyncView(_StageView):
    stage = "parse"

    @extend_schema(summary="Fetch and extract links again")
    @_stage_schema()
    def post(self, request: Request) -> Response:
        return super().post(request)


class AIProcessView(_StageView):
    stage = "ai"

    @extend_schema(summary="Summarize, categorize and tag links")
    @_stage_schema()
    def post(self, request: Request) -> Response:
        return super().post(request)


class NotionSyncView(_StageView):
    stage = "notion"

    @extend_schema(summary="Create or update the links' Notion pages (409 when Notion is not configured)")
    @_stage_schema(409)
    def post(self, request: Request) -> Response:
        return super().post(request)
