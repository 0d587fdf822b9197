from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User

from tasks.models import Task, TaskStatus

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/admin/tasks/task/"


def test_cancel_action_on_selected_tasks_cancels_them_and_records_who(staff_client, make_task):
    selected = [make_task("queued"), make_task("running")]
    untouched = make_task("queued")
    response = staff_client.post(
        URL, {"action": "cancel_selected", "_selected_action": [str(t.id) for t in selected]}, follow=True
    )
    assert "2 tasks cancelled" in response.content.decode()
    for task in selected:
        task.refresh_from_db()
        assert task.status == TaskStatus.CANCELLED
        assert task.cancel_requested_by == "staff"
    assert Task.objects.get(id=untouched.id).status == TaskStatus.QUEUED


def test_retry_action_skips_tasks_it_cannot_retry(staff_client, make_task):
    failed, done = make_task("failed"), make_task("completed")
    response = staff_client.post(
        URL, {"action": "retry_selected", "_selected_action": [str(failed.id), str(done.id)]}, follow=True
    )
    assert "1 tasks retried" in response.content.decode()
    assert Task.objects.get(id=failed.id).status == TaskStatus.QUEUED
    assert Task.objects.get(id=failed.id).events.filter(event="requeued", actor="staff").exists()
    assert Task.objects.get(id=done.id).status == TaskStatus.COMPLETED


def test_bulk_on_the_current_filter_confirms_the_count_then_acts(staff_client, make_task):
    for _ in range(3):
        make_task("failed", queue="parsing")
    other_queue = make_task("failed", queue="ai")
    confirm = staff_client.get(f"{URL}bulk/retry/", {"queue": "parsing"})
    assert confirm.status_code == 200
    assert "This will retry <strong>3</strong>" in confirm.content.decode()
    assert Task.objects.filter(status=TaskStatus.FAILED).count() == 4  # the confirmation page changes nothing

    response = staff_client.post(f"{URL}bulk/retry/?queue=parsing", follow=True)
    assert "3 of 3 matching tasks retried" in response.content.decode()
    assert Task.objects.filter(queue="parsing", status=TaskStatus.QUEUED).count() == 3
    assert Task.objects.get(id=other_queue.id).status == TaskStatus.FAILED


def test_bulk_honours_the_changelist_search(staff_client, make_task):
    hit = make_task("queued", error_message="timeout talking to upstream")
    make_task("queued")
    staff_client.post(f"{URL}bulk/cancel/?q=upstream")
    assert set(Task.objects.filter(status=TaskStatus.CANCELLED).values_list("id", flat=True)) == {hit.id}


def test_changelist_offers_bulk_buttons_with_the_current_filter(staff_client):
    html = staff_client.get(URL, {"status__exact": "failed"}).content.decode()
    assert f"{URL}bulk/retry/?status__exact=failed" in html


def test_detail_page_buttons_cancel_and_retry_one_task(staff_client, make_task):
    task = make_task("queued")
    staff_client.post(f"{URL}{task.id}/act/cancel/")
    assert Task.objects.get(id=task.id).status == TaskStatus.CANCELLED
    response = staff_client.post(f"{URL}{task.id}/act/cancel/", follow=True)
    assert "already cancelled" in response.content.decode()
    staff_client.post(f"{URL}{task.id}/act/retry/")
    assert Task.objects.get(id=task.id).status == TaskStatus.QUEUED


def test_staff_with_view_permission_only_cannot_act(client, make_task):
    user = User.objects.create_user("looker", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_task"))
    client.force_login(user)
    task = make_task("queued")
    assert client.get(URL).status_code == 200
    assert client.post(f"{URL}bulk/cancel/").status_code == 403
    assert client.post(f"{URL}{task.id}/act/cancel/").status_code == 403
    assert Task.objects.get(id=task.id).status == TaskStatus.QUEUED
