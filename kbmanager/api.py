"""API plumbing shared by every app: JSON errors for everything DRF raises."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from rest_framework import status
from rest_framework.exceptions import APIException
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
