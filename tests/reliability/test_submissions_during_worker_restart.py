"""The web process (gunicorn, as deployed) takes 5,000 link submissions while a worker is killed and restarted.

All 5,000 links are submitted and must be in PostgreSQL. To keep the test
within a CI budget, only two requests ask for processing (200 links, so 400
parse and AI jobs); the rest are stored with ``process: false``. What is under
test is the web answering and storing everything while a worker dies and the
supervisor replaces it, and every task created meanwhile ending after a reconcile.
"""

from __future__ import annotations

import os
import signal
import threading

import pytest
import requests
from django.contrib.auth.models import Permission, User
from django.db.models import Count
from rest_framework.authtoken.models import Token
from rq import Worker

from ingestion.models import Link
from kbmanager.queues import get_redis
from tasks.models import Task, TaskStatus
from tests.conftest import wait_for
from tests.reliability.conftest import reconcile_until_all_finished

pytestmark = pytest.mark.django_db(transaction=True)

REQUESTS = 50
URLS_PER_REQUEST = 100
PROCESSED_EVERY = 25  # requests 0 and 25 ask for the pipeline to run

PAGE = (
    "<!doctype html><html><head><title>Tiny page</title></head><body><article><h1>Tiny page</h1>"
    "<p>A short article served on loopback so that parsing succeeds quickly and the local AI has words to count. "
    "Telescopes, stars and galaxies make the summary about astronomy.</p></article></body></html>"
)


def _token_for_submitter() -> str:
    user = User.objects.create_user(username="submitter", password="pw")
    user.user_permissions.add(Permission.objects.get(content_type__app_label="ingestion", codename="add_link"))
    return Token.objects.create(user=user).key


def _parsing_workers() -> list[Worker]:
    return [w for w in Worker.all(connection=get_redis()) if "parsing" in w.queue_names()]


def test_every_submission_is_stored_and_every_task_ends_while_a_worker_is_killed(
    web_server, start_gunicorn, start_process, settings
):
    settings.RECONCILE_PENDING_AFTER = 1
    settings.TASK_RETRY_DELAYS = [0]
    web_server.add("/page", PAGE)
    pipeline_env = {
        "FETCH_ALLOWED_HOSTS": web_server.host,
        "AI_BACKEND": "local",
        "NOTION_TOKEN": "",
        "NOTION_DATABASE_ID": "",
        "TASK_RETRY_DELAYS": "0",
    }
    token = _token_for_submitter()
    _web, base_url = start_gunicorn(env=pipeline_env)
    supervisor = start_process(
        "start_workers",
        env={
            **pipeline_env,
            "WORKER_COUNT_PARSING": "1",
            "WORKER_COUNT_AI": "1",
            "WORKER_COUNT_NOTION": "0",
            "WORKER_COUNT_DEFAULT": "0",
            "WORKER_HEARTBEAT_INTERVAL": "1",
            "RECONCILE_INTERVAL": "2",
        },
    )
    first = wait_for(_parsing_workers, timeout=60, what="the parsing worker")[0]

    answers: list[tuple[int, dict]] = []
    errors: list[str] = []
    lock = threading.Lock()

    def submit(indexes: range) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        for index in indexes:
            urls = [web_server.url(f"/page?n={index * URLS_PER_REQUEST + i}") for i in range(URLS_PER_REQUEST)]
            body = {"urls": urls, "process": index % PROCESSED_EVERY == 0}
            try:
                response = session.post(f"{base_url}/api/links/", json=body, timeout=60)
                with lock:
                    answers.append((response.status_code, response.json()))
            except Exception as exc:  # recorded and asserted on below
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=submit, args=(range(start, REQUESTS, 4),)) for start in range(4)]
    for thread in threads:
        thread.start()

    # Kill the parsing worker (and any horse it runs) while submissions are coming in.
    wait_for(lambda: Task.objects.filter(kind="ingestion.parse_link").exists(), timeout=60, what="a parse task")
    os.kill(first.pid, signal.SIGKILL)
    wait_for(
        lambda: any(w.name != first.name for w in _parsing_workers()),
        timeout=60,
        what="the supervisor to start a new parsing worker",
    )

    for thread in threads:
        thread.join(300)
    assert not errors, errors[:5]
    assert sorted({status for status, _ in answers}) == [201]
    created = sum(body["created"] for _, body in answers)
    assert created == REQUESTS * URLS_PER_REQUEST
    assert Link.objects.count() == created  # every accepted link is in PostgreSQL

    processed = {r["task_id"] for _, body in answers for r in body["results"] if r.get("task_id")}
    assert len(processed) == REQUESTS // PROCESSED_EVERY * URLS_PER_REQUEST
    # Parse tasks create the AI tasks; wait for all of them to end (the supervisor's reconciler runs too).
    reconcile_until_all_finished(list(Task.objects.values_list("id", flat=True)), timeout=180)
    wait_for(lambda: Task.objects.count() == 2 * len(processed), timeout=30, what="an AI task per parsed link")
    reconcile_until_all_finished(list(Task.objects.values_list("id", flat=True)), timeout=120)
    statuses = dict(Task.objects.values_list("status").annotate(n=Count("id")).order_by())
    assert statuses == {TaskStatus.COMPLETED: 2 * len(processed)}, statuses
    assert supervisor.alive()
