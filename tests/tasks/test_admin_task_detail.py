from __future__ import annotations

from datetime import timedelta

import pytest

from tasks.models import TaskEvent
from tasks.selectors import task_timeline

pytestmark = pytest.mark.django_db


def _history(task, steps):
    for offset, event, attempt in steps:
        TaskEvent.objects.create(
            task=task, event=event, attempt=attempt, created_at=task.created_at + timedelta(seconds=offset)
        )


def test_detail_page_shows_args_result_error_traceback_and_progress(staff_client, make_task):
    task = make_task(
        "failed",
        args={"url": "https://example.com/x"},
        result={"words": 12},
        error_message="ValueError: bad markup",
        traceback="Traceback (most recent call last):\n  File x",
        progress=60,
        progress_message="parsing body",
    )
    response = staff_client.get(f"/admin/tasks/task/{task.id}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    for text in [
        "https://example.com/x",
        "&quot;words&quot;: 12",
        "ValueError: bad markup",
        "most recent call last",
        "parsing body",
        "task-status-failed",
        "/admin/rq/",
    ]:
        assert text in html, text
    assert 'name="_save"' not in html


def test_timeline_groups_events_by_attempt_with_queue_wait_and_run_time(make_task):
    task = make_task("completed")
    _history(
        task,
        [
            (0, "enqueued", 0),
            (2, "started", 1),
            (5, "retry_scheduled", 1),
            (35, "started", 2),
            (36, "completed", 2),
        ],
    )
    first, second = task_timeline(task=task)
    assert (first.number, first.queue_wait_seconds, first.run_seconds) == (1, 2.0, 3.0)
    assert first.outcome == "Retry scheduled"
    assert (second.number, second.queue_wait_seconds, second.run_seconds) == (2, 30.0, 1.0)
    assert [e.event for e in first.events] == ["enqueued", "started", "retry_scheduled"]
    assert second.outcome == "Completed"


def test_timeline_after_a_manual_retry_starts_a_new_attempt(make_task):
    task = make_task("queued")
    _history(task, [(0, "enqueued", 0), (1, "started", 1), (2, "failed", 1), (10, "requeued", 1), (12, "started", 2)])
    first, second = task_timeline(task=task)
    assert first.outcome == "Failed" and first.run_seconds == 1.0
    assert second.queue_wait_seconds == 2.0 and second.run_seconds is None


def test_detail_page_renders_the_timeline(staff_client, make_task):
    task = make_task("completed")
    _history(task, [(0, "enqueued", 0), (1, "started", 1), (4, "completed", 1)])
    html = staff_client.get(f"/admin/tasks/task/{task.id}/change/").content.decode()
    assert "Attempt 1" in html
    assert "queue wait: 1.000 s" in html
    assert "run time: 3.000 s" in html
