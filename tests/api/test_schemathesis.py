"""Every operation in /api/schema/, driven by schemathesis as an authenticated superuser.

The schema is loaded from the app itself (WSGI, in-process), so the run needs no
server and sees the same database transaction as the test. Each operation gets a
bounded, reproducible number of generated requests; every answer must be free of
5xx errors, have a status the operation documents (``status_code_conformance``)
and match the schema documented for that status.

Every view declares the error statuses it can answer (the ingestion and monitoring
views through ``kbmanager.api.error_responses``, the task views through their own
``_errors``), so an invalid input a view rightly refuses is a documented 4xx. The
answers schemathesis does not provoke (an odd ``Accept``, a wrong ``Content-Type``,
an oversized body) are checked against the schema in ``test_error_statuses.py``.

Nothing is excluded: the stage endpoints run synchronously only for ids that
exist (generated ids do not, so they answer 400), the Notion stage answers 409
when Notion is off (documented), and no endpoint long-polls.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from kbmanager.wsgi import application

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def wsgi_requests_keep_the_test_connection() -> Iterator[None]:
    # Django's test client does the same: a WSGI request must not close the
    # connection that holds the test's transaction when it finishes.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def superuser_token(db: Any) -> str:
    user = User.objects.create_superuser(username="schemathesis", password="pw", email="s@example.com")
    return Token.objects.create(user=user).key


# Loaded at collection through the WSGI app: serving the schema touches no database.
# (schemathesis.pytest.from_fixture does not work with pytest 9 in schemathesis 4.32.5.)
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)
def test_every_operation_answers_without_server_errors_and_as_documented(case: Any, superuser_token: str) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Token {superuser_token}"},
        checks=[not_a_server_error, response_schema_conformance, status_code_conformance],
    )
