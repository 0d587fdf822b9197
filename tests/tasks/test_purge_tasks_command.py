from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from kbmanager.queues import get_queue
from tasks.models import Task
from tasks.retention import purge_cron_scheduler
from tests.conftest import run_burst_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("policies")]


def _run(*args: str) -> str:
    out = StringIO()
    call_command("purge_tasks", *args, stdout=out)
    return out.getvalue()


def test_dry_run_prints_counts_per_status_and_queue_and_a_summary(make_task):
    make_task("completed", queue="parsing", age_days=8)
    make_task("failed", queue="ai", age_days=31)
    make_task("failed", queue="ai", age_days=31)
    lines = _run("--dry-run").splitlines()
    assert lines[0].split() == ["completed", "parsing", "1"]
    assert lines[1].split() == ["failed", "ai", "2"]
    assert lines[-1] == "would delete 3 finished tasks (completed 1, failed 2)"
    assert Task.objects.count() == 3


def test_purge_prints_a_one_line_summary(make_task):
    for _ in range(3):
        make_task("cancelled", age_days=8)
    kept = make_task("queued", age_days=8)
    output = _run("--batch-size", "2").strip()
    assert "\n" not in output
    assert output.startswith("deleted 3 finished tasks (cancelled 3) in 2 batches")
    assert list(Task.objects.values_list("id", flat=True)) == [kept.id]


def test_a_bad_batch_size_names_the_argument():
    with pytest.raises(CommandError, match="--batch-size"):
        _run("--batch-size", "0")


def test_the_rq_cron_registration_enqueues_a_json_job_that_purges(make_task):
    old = make_task("completed", age_days=8)
    scheduler = purge_cron_scheduler(cron="30 3 * * *")
    (cron_job,) = scheduler.get_jobs()
    job = cron_job.enqueue(scheduler.connection)
    assert get_queue("default").count == 1
    run_burst_worker("default")
    job.refresh()
    assert job.get_status() == "finished"
    assert job.return_value().startswith("deleted 1 finished tasks")
    assert not Task.objects.filter(id=old.id).exists()
