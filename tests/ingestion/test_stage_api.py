from __future__ import annotations

import pytest

from ingestion.models import Link, LinkStatus
from ingestion.services import NOTION_KIND, PARSE_KIND, SUMMARIZE_KIND
from tasks.models import Task
from tests.ingestion.conftest import client_for, make_user

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    ("/api/parsing/sync", PARSE_KIND, "parsing"),
    ("/api/ai/process", SUMMARIZE_KIND, "ai"),
    ("/api/notion/sync", NOTION_KIND, "notion"),
]


@pytest.fixture
def two_links(parsed_link):
    return [parsed_link(), parsed_link()]


@pytest.mark.parametrize(("path", "kind", "queue"), ENDPOINTS)
def test_async_stage_answers_202_with_one_queued_task_per_link(api, two_links, notion_on, path, kind, queue):
    ids = [link.id for link in two_links]

    response = api.post(path, {"link_ids": ids, "force": True}, format="json")

    assert response.status_code == 202
    tasks = response.json()["tasks"]
    assert [t["link_id"] for t in tasks] == ids
    for entry in tasks:
        task = Task.objects.get(id=entry["task_id"])
        assert (task.kind, task.queue, task.link_id) == (kind, queue, entry["link_id"])
        assert task.args["link_id"] == entry["link_id"]
        if kind != NOTION_KIND:
            assert task.args["force"] is True


def test_sync_parse_runs_in_the_request_and_queues_the_ai_step(api, fetch_from, astronomy_page):
    link_id = api.post("/api/links/", {"urls": [astronomy_page], "process": False}, format="json").json()["results"][0][
        "id"
    ]

    response = api.post("/api/parsing/sync", {"link_ids": [link_id], "async": False}, format="json")

    assert response.status_code == 200
    [result] = response.json()["results"]
    assert result["ok"] is True and result["status"] == LinkStatus.PARSED
    link = Link.objects.get(id=link_id)
    assert "telescope" in link.text and link.word_count > 50
    assert Task.objects.filter(link_id=link_id, kind=SUMMARIZE_KIND).count() == 1


def test_sync_ai_with_the_local_backend_makes_the_link_ready(api, parsed_link, local_ai, notion_off, astronomy):
    link = parsed_link()

    response = api.post("/api/ai/process", {"link_ids": [link.id], "async": False}, format="json")

    assert response.status_code == 200
    [result] = response.json()["results"]
    assert result["ok"] is True and result["status"] == LinkStatus.READY
    link.refresh_from_db()
    assert link.summary and link.category == astronomy and link.tags.exists()
    assert not Task.objects.filter(kind=NOTION_KIND).exists()


def test_sync_notion_creates_the_page_in_the_request(api, parsed_link, notion_on, notion_server):
    link = parsed_link(summary="Stars formed fast.", status=LinkStatus.READY)

    response = api.post("/api/notion/sync", {"link_ids": [link.id], "async": False}, format="json")

    assert response.status_code == 200
    assert response.json()["results"][0]["status"] == LinkStatus.SYNCED
    link.refresh_from_db()
    assert link.notion_page_id in notion_server.pages


def test_sync_stage_reports_a_failing_link_without_failing_the_request(api, parsed_link, notion_on):
    link = parsed_link(summary="")

    response = api.post("/api/notion/sync", {"link_ids": [link.id], "async": False}, format="json")

    assert response.status_code == 200
    [result] = response.json()["results"]
    assert result["ok"] is False and "no summary" in result["error"]


def test_sync_stage_past_the_cap_is_a_400_that_says_the_cap_and_to_use_async(api, parsed_link, settings):
    settings.SYNC_STAGE_MAX_LINKS = 2
    ids = [parsed_link().id for _ in range(3)]

    response = api.post("/api/ai/process", {"link_ids": ids, "async": False}, format="json")

    assert response.status_code == 400
    message = str(response.json()["detail"]["link_ids"])
    assert "at most 2" in message and '"async": true' in message
    assert not Task.objects.exists()


@pytest.mark.parametrize("path", [p for p, _, _ in ENDPOINTS])
def test_unknown_link_ids_are_a_400_naming_them(api, parsed_link, notion_on, path):
    known = parsed_link().id

    response = api.post(path, {"link_ids": [known, 987654, 987655]}, format="json")

    assert response.status_code == 400
    assert "987654, 987655" in str(response.json()["detail"]["link_ids"])
    assert not Task.objects.exists()


@pytest.mark.parametrize(
    "payload",
    [
        {"link_ids": "1,2"},
        {"link_ids": ["1"]},
        {"link_ids": [1.5]},
        {"link_ids": [True]},
        {"link_ids": [0]},
        {"link_ids": [{"id": 1}]},
        {"link_ids": []},
        {},
    ],
    ids=["string", "string-item", "float", "bool", "zero", "object", "empty", "missing"],
)
def test_malformed_link_ids_are_a_400_naming_the_field(api, payload):
    response = api.post("/api/parsing/sync", payload, format="json")

    assert response.status_code == 400
    assert "link_ids" in response.json()["detail"]


def test_a_non_boolean_async_is_a_400_naming_it(api, parsed_link):
    response = api.post("/api/parsing/sync", {"link_ids": [parsed_link().id], "async": "maybe"}, format="json")

    assert response.status_code == 400
    assert "async" in response.json()["detail"]


def test_ten_thousand_ids_are_a_400_with_the_cap(api, settings):
    response = api.post("/api/parsing/sync", {"link_ids": list(range(1, 10_001))}, format="json")

    assert response.status_code == 400
    assert f"at most {settings.LINKS_SUBMIT_MAX}" in str(response.json()["detail"]["link_ids"])


def test_notion_sync_without_notion_configured_is_a_409(api, parsed_link, notion_off):
    link = parsed_link()
    for run_async in (True, False):
        response = api.post("/api/notion/sync", {"link_ids": [link.id], "async": run_async}, format="json")

        assert response.status_code == 409
        assert response.json()["detail"] == "Notion is not configured (set NOTION_TOKEN and NOTION_DATABASE_ID)"
    assert not Task.objects.exists()


@pytest.mark.parametrize("path", [p for p, _, _ in ENDPOINTS])
def test_stage_endpoints_need_authentication_and_the_change_permission(parsed_link, path):
    link = parsed_link()
    assert client_for(None).post(path, {"link_ids": [link.id]}, format="json").status_code == 401
    reader = client_for(make_user("view_link", "add_link", username="reader"))
    assert reader.post(path, {"link_ids": [link.id]}, format="json").status_code == 403
    assert not Task.objects.exists()
