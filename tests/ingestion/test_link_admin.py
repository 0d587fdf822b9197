from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages

from ingestion.models import Category, LinkStatus
from ingestion.services import NOTION_KIND, PARSE_KIND, SUMMARIZE_KIND
from tasks.models import Task
from tasks.services import task_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    admin = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    return client


@pytest.fixture
def links(parsed_link):
    return [parsed_link(status=LinkStatus.READY, summary="Stars."), parsed_link(status=LinkStatus.FAILED)]


def test_changelist_shows_links_with_status_and_domain(admin_client, links):
    response = admin_client.get("/admin/ingestion/link/?status__exact=failed")

    assert response.status_code == 200
    content = response.content.decode()
    assert "news.example.com" in content
    assert response.context["cl"].result_count == 1


def test_changelist_search_finds_by_url(admin_client, links):
    response = admin_client.get("/admin/ingestion/link/", {"q": links[0].normalized_url})

    assert response.context["cl"].result_count == 1


@pytest.mark.parametrize(
    ("action", "kind", "label"),
    [
        ("reparse", PARSE_KIND, "parse"),
        ("resummarize", SUMMARIZE_KIND, "ai"),
        ("sync_to_notion", NOTION_KIND, "notion"),
    ],
)
def test_actions_queue_one_forced_task_per_selected_link(admin_client, links, notion_on, action, kind, label):
    response = admin_client.post(
        "/admin/ingestion/link/",
        {"action": action, "_selected_action": [link.id for link in links]},
        follow=True,
    )

    assert response.status_code == 200
    tasks = Task.objects.filter(kind=kind)
    assert sorted(tasks.values_list("link_id", flat=True)) == sorted(link.id for link in links)
    if kind != NOTION_KIND:
        assert all(task.args["force"] is True for task in tasks)
    assert f"Queued 2 {label} task(s)." in [str(m) for m in get_messages(response.wsgi_request)]
    assert all(e.actor == "root" for task in tasks for e in task.events.all())


def test_notion_action_without_notion_says_so_and_queues_nothing(admin_client, links, notion_off):
    response = admin_client.post(
        "/admin/ingestion/link/", {"action": "sync_to_notion", "_selected_action": [links[0].id]}, follow=True
    )

    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("Notion is not configured" in m for m in messages)
    assert not Task.objects.exists()


def test_change_page_shows_the_links_tasks_newest_first(admin_client, links):
    link = links[0]
    older = task_create(kind=PARSE_KIND, args={"link_id": link.id}, link_id=link.id)
    newer = task_create(kind=SUMMARIZE_KIND, args={"link_id": link.id}, link_id=link.id)

    response = admin_client.get(f"/admin/ingestion/link/{link.id}/change/")

    assert response.status_code == 200
    content = response.content.decode()
    assert str(newer.id) in content and str(older.id) in content
    assert content.index(str(newer.id)) < content.index(str(older.id))


def test_category_keywords_are_edited_as_a_comma_separated_list(admin_client):
    response = admin_client.post(
        "/admin/ingestion/category/add/",
        {"name": "Astronomy", "description": "Stars", "keywords": "Telescope, stars,, galaxy "},
    )

    assert response.status_code == 302
    assert Category.objects.get(name="Astronomy").keywords == ["telescope", "stars", "galaxy"]
