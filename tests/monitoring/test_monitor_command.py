from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from tasks.services import TaskSpec, task_create, tasks_create_bulk
from tests.conftest import run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def _queue_figures(output: str, queue: str, *, table: bool = False) -> list[str]:
    """The figures of a queue's row: a plain line starting with its name, or a table row "│ name │ ..."."""
    for line in output.splitlines():
        if table and "│" not in line:
            continue
        cells = [c.strip() for c in line.strip().strip("│").split("│")] if table else line.split()
        if cells and cells[0] == queue:
            return [c for c in cells[1:] if c and not set(c) <= set("█·")]
    raise AssertionError(f"no row for {queue} in:\n{output}")


@pytest.fixture
def some_work() -> None:
    task_create(kind="tests.permanent_fail")
    task_create(kind="tests.echo")
    run_burst_worker("default")
    tasks_create_bulk(specs=[TaskSpec(kind="tests.echo", queue="parsing") for _ in range(5)])


def test_monitor_once_prints_queues_health_and_recent_failures(some_work):
    output = _run("monitor", "--once")
    assert "queue:parsing" in output and "no live worker consumes queue parsing; 5 job(s) waiting" in output
    assert "unsupported input, retrying will not help" in output  # the recent failure and its error
    assert "tests.permanent_fail" in output
    assert "completed 1" in output and "failed 1" in output
    assert "█" in output  # the parsing backlog bar
    assert output.rstrip().endswith("overall unhealthy")


def test_monitor_json_prints_the_statistics_for_scripts(some_work):
    data = json.loads(_run("monitor", "--json"))
    assert data["queues"]["parsing"]["queued"] == 5
    assert data["queues"]["default"]["failed_total"] == 1
    assert data["tasks"]["by_status"]["completed"] == 1
    assert data["recent_failures"][0]["kind"] == "tests.permanent_fail"
    assert data["health"]["components"]["queue:parsing"]["status"] == "unhealthy"
    assert data["redis"]["up"] and data["postgres"]["up"]


def test_start_workers_stats_and_monitor_once_print_the_same_figures(some_work):
    stats_output = _run("start_workers", "--stats")
    monitor_output = _run("monitor", "--once")
    for queue in ("parsing", "ai", "notion", "default"):
        figures = _queue_figures(stats_output, queue)
        assert len(figures) == 8, (queue, figures)
        assert _queue_figures(monitor_output, queue, table=True) == figures
    assert _queue_figures(stats_output, "parsing")[2] == "5"


def test_monitor_rejects_a_non_positive_interval():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--interval"):
        call_command("monitor", "--interval", "0")
