from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from ingestion.models import AIResultCache, Category, Link, LinkStatus
from ingestion.services import link_summarize, links_enqueue_stage
from tasks.models import Task, TaskStatus
from tests.conftest import run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_ai_rate_limit_requeues_the_task_after_the_servers_delay(
    parsed_link, openai_settings, openai_server, notion_off
):
    link = parsed_link()
    openai_server.rate_limit_next(1, retry_after=40)
    before = timezone.now()
    [(_, task)] = links_enqueue_stage(link_ids=[link.id], stage="ai", actor="tester")

    run_burst_worker("ai")

    task.refresh_from_db()
    assert task.status == TaskStatus.QUEUED
    assert task.attempts == 1
    assert before + timedelta(seconds=39) <= task.next_retry_at <= timezone.now() + timedelta(seconds=41)
    assert "rate limit" in task.error_message.lower()
    link.refresh_from_db()
    assert link.status != LinkStatus.FAILED
    assert link.last_error
    assert len(openai_server.requests) == 1


def test_the_same_text_is_sent_to_the_ai_server_once(parsed_link, openai_settings, openai_server, notion_off):
    first, second = parsed_link(), parsed_link()

    assert link_summarize(link_id=first.id)["cached"] is False
    assert link_summarize(link_id=second.id)["cached"] is True

    assert len(openai_server.requests) == 1
    first.refresh_from_db()
    second.refresh_from_db()
    assert second.summary == first.summary and second.category == first.category
    assert AIResultCache.objects.get().model == "test-model"


def test_a_changed_category_table_asks_the_ai_server_again_for_the_same_text(
    parsed_link, openai_settings, openai_server, notion_off
):
    first, second, third = parsed_link(), parsed_link(), parsed_link()
    link_summarize(link_id=first.id)
    Category.objects.create(name="Gardening", description="Plants and soil", keywords=["compost"])

    assert link_summarize(link_id=second.id)["cached"] is False
    assert link_summarize(link_id=third.id)["cached"] is True
    assert len(openai_server.requests) == 2
    assert "Gardening" in json.dumps(openai_server.requests[1].body)
    assert "Gardening" not in json.dumps(openai_server.requests[0].body)


def test_a_current_summary_is_not_redone_unless_forced(parsed_link, openai_settings, openai_server, notion_off):
    link = parsed_link()
    link_summarize(link_id=link.id)

    assert "skipped" in link_summarize(link_id=link.id)
    assert link_summarize(link_id=link.id, force=True)["cached"] is False
    assert len(openai_server.requests) == 2


def test_a_category_the_table_does_not_have_becomes_uncategorized(parsed_link, local_ai, notion_off):
    link = parsed_link()

    link_summarize(link_id=link.id)

    link.refresh_from_db()
    assert link.category.name == "Uncategorized"
    assert link.status == LinkStatus.READY


def test_summarizing_a_link_without_text_fails_the_task_for_good(parsed_link, local_ai, notion_off):
    link = parsed_link(text="", content_hash="")
    [(_, task)] = links_enqueue_stage(link_ids=[link.id], stage="ai", actor="tester")

    run_burst_worker("ai")

    task.refresh_from_db()
    assert task.status == TaskStatus.FAILED and task.attempts == 1
    assert "no parsed text" in task.error_message
    assert Link.objects.get(id=link.id).status == LinkStatus.FAILED


def test_the_ai_task_of_a_deleted_link_completes_quietly(parsed_link, local_ai, notion_off):
    link = parsed_link()
    [(_, task)] = links_enqueue_stage(link_ids=[link.id], stage="ai", actor="tester")
    Link.objects.filter(id=link.id).delete()

    run_burst_worker("ai")

    assert Task.objects.get(id=task.id).status == TaskStatus.COMPLETED


def test_a_server_error_is_retried_and_the_last_failure_marks_the_link_failed(
    parsed_link, openai_settings, openai_server, notion_off, settings
):
    settings.MAX_TASK_RETRIES = 1
    settings.TASK_RETRY_DELAYS = [0]
    link = parsed_link()
    openai_server.fail_next(5, status=500)
    [(_, task)] = links_enqueue_stage(link_ids=[link.id], stage="ai", actor="tester")

    run_burst_worker("ai")

    task.refresh_from_db()
    assert task.status == TaskStatus.FAILED and task.attempts == 2
    assert [e.event for e in task.events.all()] == ["enqueued", "started", "retry_scheduled", "started", "failed"]
    link.refresh_from_db()
    assert link.status == LinkStatus.FAILED
    assert "500" in link.last_error
