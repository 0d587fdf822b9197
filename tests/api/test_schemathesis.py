"""Every operation in /api/schema/, driven by schemathesis as an authenticated superuser.

The schema is loaded from the app itself (WSGI, in-process), so the run needs no
server and sees the same database transaction as the test. Each operation gets a
bounded, reproducible number of generated requests; every answer must be free of
5xx errors, match its documented schema and use a documented status code.

Nothing is excluded: the stage endpoints run synchronously only for ids that
exist (generated ids do not, so they answer 400), the Notion stage answers 409
when Notion is off (documented), and no endpoint long-polls.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import User
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from kbmanager.wsgi import application

pytestmark = pytest.mark.django_db


@pytest.fixture
def api_schema() -> Any:
    return schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture
def superuser_token(db: Any) -> str:
    user = User.objects.create_superuser(username="schemathesis", password="pw", email="s@example.com")
    return Token.objects.create(user=user).key


schema = schemathesis.pytest.from_fixture("api_schema")


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
