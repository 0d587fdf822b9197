from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tasks.models import Task, TaskStatus

pytestmark = pytest.mark.django_db(transaction=True)


def test_all_six_checks_pass_against_a_live_worker_with_its_scheduler(live_worker):
    live_worker("default")
    out = io.StringIO()
    call_command("check_async_system", "--queue", "default", "--json", "--timeout", "20", stdout=out)
    result = json.loads(out.getvalue())
    assert result["ok"] is True, result
    assert [c["name"] for c in result["checks"]] == [
        "redis connection",
        "queues configured",
        "live worker per queue",
        "canary task",
        "database round trip",
        "retry scheduler",
    ]
    assert all(c["passed"] for c in result["checks"])
    # The canary really ran end to end, and the round trip left no row behind.
    assert list(Task.objects.values_list("kind", "status")) == [("tasks.noop", TaskStatus.COMPLETED)]


def test_a_queue_without_worker_fails_its_checks_and_exits_with_status_1(live_worker, start_process):
    live_worker("default")
    proc = start_process("check_async_system", "--queue", "default", "--queue", "ai", "--timeout", "20")
    assert proc.popen.wait(60) == 1
    output = proc.output()
    assert "PASS  redis connection" in output
    assert "FAIL  live worker per queue  no live worker on ai" in output
    assert "FAIL  canary task            ai: not run, no live worker" in output
    assert "FAIL  retry scheduler" in output and "lock of ai" in output
    assert "PASS  database round trip" in output
    assert "3 of 6 checks failed" in output


def test_every_check_fails_with_a_reason_when_redis_is_down(redis_down):
    out = io.StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("check_async_system", "--json", stdout=out)
    assert excinfo.value.returncode == 1
    checks = {c["name"]: c for c in json.loads(out.getvalue())["checks"]}
    assert checks["redis connection"]["passed"] is False
    assert checks["redis connection"]["reason"].startswith("Redis did not answer")
    assert checks["database round trip"]["passed"] is True


def test_an_unknown_queue_is_a_command_error():
    with pytest.raises(CommandError, match="--queue nope is not configured"):
        call_command("check_async_system", "--queue", "nope")
