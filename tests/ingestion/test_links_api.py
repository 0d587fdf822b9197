from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from ingestion.models import Category, Link, LinkStatus, Tag
from tasks.models import Task
from tests.ingestion.conftest import client_for, make_user

pytestmark = pytest.mark.django_db


# --- POST /api/links/ --------------------------------------------------------------------


def test_submit_answers_201_with_one_outcome_per_url_and_counts(api):
    response = api.post(
        "/api/links/",
        {"urls": ["https://example.com/a", "https://EXAMPLE.com/a#x", "mailto:someone@example.com"]},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["created"], body["duplicate"], body["invalid"]) == (1, 1, 1)
    created, duplicate, invalid = body["results"]
    assert created["status"] == "created" and created["task_id"]
    assert duplicate == {"url": "https://EXAMPLE.com/a#x", "status": "duplicate", "id": created["id"]}
    assert invalid["status"] == "invalid" and "mailto" in invalid["reason"]
    assert Task.objects.filter(id=created["task_id"], link_id=created["id"]).exists()


def test_submit_with_process_false_creates_no_task(api):
    response = api.post("/api/links/", {"urls": ["https://example.com/a"], "process": False}, format="json")

    assert response.status_code == 201
    assert response.json()["results"][0]["task_id"] is None
    assert not Task.objects.exists()


@pytest.mark.parametrize(
    "payload",
    [
        {"urls": "https://example.com/a"},
        {"urls": [1, 2]},
        {"urls": [["https://example.com/a"]]},
        {"urls": []},
        {},
    ],
    ids=["string", "numbers", "nested-list", "empty", "missing"],
)
def test_submit_with_bad_urls_is_a_400_naming_the_field(api, payload):
    response = api.post("/api/links/", payload, format="json")

    assert response.status_code == 400
    assert "urls" in response.json()["detail"]
    assert not Link.objects.exists()


def test_submit_past_the_cap_is_a_400_that_says_the_cap(api, settings):
    settings.LINKS_SUBMIT_MAX = 3

    response = api.post("/api/links/", {"urls": [f"https://example.com/{i}" for i in range(4)]}, format="json")

    assert response.status_code == 400
    assert "at most 3" in str(response.json()["detail"]["urls"])
    assert not Link.objects.exists()


def test_submit_needs_authentication_and_the_add_permission(db):
    assert client_for(None).post("/api/links/", {"urls": ["https://a.example/"]}, format="json").status_code == 401
    viewer = client_for(make_user("view_link", username="viewer"))
    assert viewer.post("/api/links/", {"urls": ["https://a.example/"]}, format="json").status_code == 403
    assert not Link.objects.exists()


# --- GET /api/links/ ---------------------------------------------------------------------


@pytest.fixture
def catalogue(db):
    science = Category.objects.create(name="Science")
    sport = Category.objects.create(name="Sport")
    space = Tag.objects.create(name="space")
    now = timezone.now()
    links = {
        "stars": Link.objects.create(
            url="https://news.example.com/stars",
            normalized_url="https://news.example.com/stars",
            domain="news.example.com",
            title="Young stars",
            summary="A cluster of stars formed quickly.",
            status=LinkStatus.READY,
            category=science,
            created_at=now - timedelta(minutes=3),
        ),
        "match": Link.objects.create(
            url="https://sport.example.org/match",
            normalized_url="https://sport.example.org/match",
            domain="sport.example.org",
            title="The final match",
            status=LinkStatus.SYNCED,
            category=sport,
            created_at=now - timedelta(minutes=2),
        ),
        "pending": Link.objects.create(
            url="https://news.example.com/pending",
            normalized_url="https://news.example.com/pending",
            domain="news.example.com",
            status=LinkStatus.NEW,
            created_at=now - timedelta(minutes=1),
        ),
    }
    links["stars"].tags.add(space)
    return links


def _ids(response):
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


def test_list_is_newest_first_with_category_and_tags(api, catalogue):
    response = api.get("/api/links/")

    assert _ids(response) == [catalogue["pending"].id, catalogue["match"].id, catalogue["stars"].id]
    stars = response.json()["results"][2]
    assert stars["category"] == "Science" and stars["tags"] == ["space"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=ready", ["stars"]),
        ("category=science", ["stars"]),
        ("tag=space", ["stars"]),
        ("domain=news.example.com", ["pending", "stars"]),
        ("q=cluster", ["stars"]),
        ("q=final", ["match"]),
        ("q=sport.example", ["match"]),
    ],
)
def test_list_filters(api, catalogue, query, expected):
    assert _ids(api.get(f"/api/links/?{query}")) == [catalogue[name].id for name in expected]


def test_list_filters_category_by_id(api, catalogue):
    category_id = catalogue["match"].category_id
    assert _ids(api.get(f"/api/links/?category={category_id}")) == [catalogue["match"].id]


def test_list_with_an_unknown_status_is_a_400_naming_it(api, catalogue):
    response = api.get("/api/links/?status=exploded")

    assert response.status_code == 400
    assert "status" in response.json()["detail"]


def test_list_pages_with_a_cursor(api, catalogue):
    first = api.get("/api/links/?page_size=2").json()
    second = api.get(first["next"]).json()

    assert [i["id"] for i in first["results"] + second["results"]] == [
        catalogue["pending"].id,
        catalogue["match"].id,
        catalogue["stars"].id,
    ]
    assert second["next"] is None


def test_list_needs_the_view_permission(db, catalogue):
    assert client_for(None).get("/api/links/").status_code == 401
    assert client_for(make_user("add_link", username="adder")).get("/api/links/").status_code == 403


# --- GET /api/links/{id}/ --------------------------------------------------------------------


def test_detail_shows_the_link_and_its_tasks_newest_first(api):
    link_id = api.post("/api/links/", {"urls": ["https://example.com/a"]}, format="json").json()["results"][0]["id"]
    from tasks.services import task_create

    later = task_create(kind="ingestion.summarize_link", args={"link_id": link_id}, link_id=link_id)

    response = api.get(f"/api/links/{link_id}/")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == link_id and body["normalized_url"] == "https://example.com/a"
    assert [t["kind"] for t in body["tasks"]] == ["ingestion.summarize_link", "ingestion.parse_link"]
    assert body["tasks"][0]["id"] == str(later.id)
    assert set(body["tasks"][0]) >= {"id", "kind", "status", "created_at"}


def test_detail_of_an_unknown_link_is_a_404(api):
    response = api.get("/api/links/999999/")

    assert response.status_code == 404
    assert "999999" in response.json()["detail"]


def test_the_schema_documents_the_links_endpoints(api):
    response = api.get("/api/schema/?format=json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "requestBody" in paths["/api/links/"]["post"]
    assert "201" in paths["/api/links/"]["post"]["responses"]
    for path in ("/api/parsing/sync", "/api/ai/process", "/api/notion/sync", "/api/links/import"):
        assert "requestBody" in paths[path]["post"], path
