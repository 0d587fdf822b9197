"""API plumbing shared by every app: JSON errors for everything DRF raises, and how the schema documents them."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotAcceptable, NotFound, ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.pagination import CursorPagination
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"
    default_detail = "the request body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus a stable ``{"error": ..., "detail": ...}`` shape.

    Validation errors keep DRF's per-field mapping under ``detail`` so a client
    can see which field was wrong.
    """
    if isinstance(exc, RequestDataTooBig):
        # Django would answer its bare HTML 400; a client should learn the body was too big.
        exc = RequestTooLarge()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = getattr(exc, "default_code", None) or "error"
    data = response.data
    if isinstance(data, dict) and set(data) == {"detail"}:
        data = {"error": code, "detail": data["detail"]}
    else:
        data = {"error": code, "detail": data}
    if response.status_code == status.HTTP_401_UNAUTHORIZED and code == "error":
        data["error"] = "not_authenticated"
    response.data = data
    return response


class ErrorSerializer(serializers.Serializer):
    """The body of every error answer, as ``exception_handler`` shapes it."""

    error = serializers.CharField(help_text="A stable code: `invalid`, `not_authenticated`, `throttled`, ...")
    detail = serializers.JSONField(help_text="A message; for `invalid`, each wrong field with its messages.")


# What each error status means wherever it is answered; a view words its own where it can say more.
ERROR_DESCRIPTIONS = {
    400: "Invalid input; `detail` names the field.",
    401: "Not authenticated.",
    403: "Missing permission.",
    404: "Not found.",
    406: "No representation matches the `Accept` header.",
    409: "The current state does not allow the action.",
    413: "The request body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE.",
    415: "Unsupported `Content-Type`.",
    429: "Throttled (API_THROTTLE_RATE, per user).",
}


def error_responses(*codes: int, described: dict[int, str] | None = None) -> dict[int, OpenApiResponse]:
    """``extend_schema`` responses for the error statuses ``codes``, each an ``ErrorSerializer``.

    ``described`` replaces the generic wording of some of them:
    ``responses={200: Out, **error_responses(400, 401, 404, described={404: "No such link."})}``.
    """
    descriptions = {**ERROR_DESCRIPTIONS, **(described or {})}
    return {code: OpenApiResponse(ErrorSerializer, description=descriptions[code]) for code in codes}


class FieldErrorCursorPagination(CursorPagination):
    """Cursor pagination that answers a bad ``cursor`` as bad input naming it (DRF answers 404)."""

    def decode_cursor(self, request: Request) -> Any:
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ValidationError({self.cursor_query_param: ["invalid cursor"]}) from None


class FormatParameterNegotiation(DefaultContentNegotiation):
    """Content negotiation that answers an unknown ``?format=`` with 406 naming the formats on offer.

    DRF answers 404, which suits a ``.json`` URL suffix but not a query parameter.
    """

    def filter_renderers(self, renderers: list[BaseRenderer], format: str) -> list[BaseRenderer]:
        try:
            return super().filter_renderers(renderers, format)
        except Http404:
            offered = ", ".join(renderer.format for renderer in renderers)
            raise NotAcceptable(f"unknown format {format!r}; this endpoint offers: {offered}") from None


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """The 404 for URLs no route matches: JSON under /api/, as every API error, else Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"error": "not_found", "detail": f"no API endpoint at {request.path}"}, status=404)
    return page_not_found(request, exception)
