"""A real browser (headless Chromium driven by Playwright) on the admin's task browser and on the home page.

It uses Debian's ``chromium`` package at /usr/bin/chromium and never downloads a
browser. Screenshots go to docs/screenshots/, where the README shows them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from ingestion.demo import SITE_DIR, demo_articles, demo_categories
from ingestion.models import Category, Link, LinkStatus
from ingestion.services import PARSE_KIND, links_enqueue_stage, links_submit
from tasks.models import Task, TaskStatus
from tests.conftest import OFFLINE_ENV, ROOT, run_burst_worker

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "docs" / "screenshots"
# Generous bounds for a loaded CI machine; the pages are usually there in well under a second.
PAGE_TIMEOUT_MS = 15_000
PIPELINE_TIMEOUT_MS = 90_000

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Chromium is not installed at /usr/bin/chromium (Debian/Ubuntu: apt-get install chromium)",
    ),
    pytest.mark.django_db(transaction=True),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements/dev.txt)")


@contextmanager
def browser_page() -> Iterator[Any]:
    """A fresh page in headless Chromium, 1440 px wide.

    Playwright's sync API runs an asyncio loop in this thread while it is open,
    and Django's ORM must not be used from such a thread; so tests prepare the
    database before opening the browser and check it after closing it.
    """
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            page = context.new_page()
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            yield page
        finally:
            browser.close()


@pytest.fixture
def admin_user(db: Any) -> User:
    return User.objects.create_superuser("admin", email="admin@example.com", password="demo-password")


@pytest.fixture
def demo_site(web_server: Any, settings: Any) -> Any:
    """Two demo articles and a PDF served on loopback, the host allowed, the demo categories in place."""
    for article in demo_articles():
        web_server.add(article.path, (SITE_DIR / article.path.lstrip("/")).read_bytes())
    web_server.add("/papers/annual-report.pdf", b"%PDF-1.7 not a web page", content_type="application/pdf")
    settings.FETCH_ALLOWED_HOSTS = [web_server.host]
    settings.AI_BACKEND = "local"
    settings.NOTION_TOKEN = settings.NOTION_DATABASE_ID = ""
    for item in demo_categories():
        Category.objects.create(name=item["name"], description=item["description"], keywords=item["keywords"])
    return web_server


def log_in(page: Any, live_server: Any, *, next_path: str) -> None:
    page.goto(f"{live_server.url}/admin/login/?next={next_path}")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "demo-password")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}{next_path.split('?')[0]}*")


def test_an_operator_finds_a_failed_task_reads_its_error_and_cancels_a_queued_one(live_server, admin_user, demo_site):
    # Some history for the task browser: two articles parsed and summarized, a PDF that failed.
    articles = demo_articles()[:2]
    urls = [demo_site.url(a.path) for a in articles] + [demo_site.url("/papers/annual-report.pdf")]
    results = links_submit(urls=urls, user=admin_user)
    run_burst_worker("parsing", "ai")
    failed = Task.objects.get(status=TaskStatus.FAILED)
    assert "unsupported content type application/pdf" in failed.error_message
    # A re-parse queued while no worker listens: it waits in its queue until someone cancels it.
    [(_, queued)] = links_enqueue_stage(link_ids=[results[0]["id"]], stage="parse", force=True, actor="admin")
    assert Task.objects.get(id=queued.id).status == TaskStatus.QUEUED
    task_count = Task.objects.count()

    with browser_page() as page:
        log_in(page, live_server, next_path="/admin/tasks/task/")
        # The admin's navigation sidebar takes a third of the width; the table matters here.
        page.click("#toggle-nav-sidebar")
        page.evaluate("window.scrollTo(0, 0)")
        assert page.locator("#result_list tbody tr").count() == task_count == 6
        page.screenshot(path=SCREENSHOTS / "admin-tasks.png")

        page.goto(f"{live_server.url}/admin/tasks/task/?status__exact=failed")
        rows = page.locator("#result_list tbody tr")
        assert rows.count() == 1
        assert "Failed" in rows.first.inner_text()
        page.screenshot(path=SCREENSHOTS / "admin-tasks-failed.png")

        rows.first.locator("th a").click()
        page.wait_for_url(re.compile(rf"/admin/tasks/task/{failed.id}/change/"))
        detail = page.locator("#content").inner_text()
        assert "unsupported content type application/pdf" in detail
        assert "Timeline, attempt by attempt" in detail
        assert "Retry this task" in detail
        page.screenshot(path=SCREENSHOTS / "admin-task-detail.png", full_page=True)

        page.goto(f"{live_server.url}/admin/tasks/task/{queued.id}/change/")
        page.get_by_role("button", name="Cancel this task").click()
        page.wait_for_selector("ul.messagelist li")
        assert "task cancelled" in page.locator("ul.messagelist").inner_text().lower()
        assert "Cancelled" in page.locator("#content").inner_text()
        page.screenshot(path=SCREENSHOTS / "admin-task-cancelled.png")

    queued.refresh_from_db()
    assert queued.status == TaskStatus.CANCELLED
    assert queued.cancel_requested_by == "admin"
    assert queued.kind == PARSE_KIND


def test_links_pasted_or_uploaded_on_the_home_page_show_up_and_reach_ready_without_a_reload(
    live_server, admin_user, demo_site, start_worker
):
    start_worker("parsing", "ai", env={**OFFLINE_ENV, "FETCH_ALLOWED_HOSTS": demo_site.host})
    articles = demo_articles()[:4]
    urls = [demo_site.url(a.path) for a in articles]
    # A browser's bookmarks export (the Netscape format every browser writes) with the fourth article.
    bookmarks = (
        "<!DOCTYPE NETSCAPE-Bookmark-file-1>\n<TITLE>Bookmarks</TITLE>\n<H1>Bookmarks</H1>\n<DL><p>\n"
        f'<DT><A HREF="{urls[3]}" ADD_DATE="1700000000">Saved for later</A>\n</DL><p>\n'
    )
    with browser_page() as page:
        log_in(page, live_server, next_path="/")
        page.fill("#urls", "\n".join(urls[:3]))
        page.click("#submit-button")
        page.wait_for_function("document.getElementById('submit-result').textContent.includes('3 added')")
        page.set_input_files(
            "#import-file", {"name": "bookmarks.html", "mimeType": "text/html", "buffer": bookmarks.encode()}
        )
        page.click("#import-button")
        page.wait_for_function("document.getElementById('submit-result').textContent.startsWith('Imported')")
        assert "1 added" in page.locator("#submit-result").inner_text()
        # The page refreshes the table by itself every few seconds; nothing here reloads it.
        page.wait_for_function(
            "document.querySelectorAll('#links-body tr[data-status=ready]').length === 4", timeout=PIPELINE_TIMEOUT_MS
        )
        page.screenshot(path=SCREENSHOTS / "home.png", full_page=True)
        rows = {
            int(row.get_attribute("data-link-id")): (
                row.locator("a.title").inner_text(),
                row.locator("td.category").inner_text(),
                set(row.locator(".tag").all_inner_texts()),
            )
            for row in page.locator("#links-body tr").all()
        }
        nav = page.locator("header nav").inner_text()

    assert len(rows) == 4
    for article, url in zip(articles, urls, strict=True):
        link = Link.objects.get(url=url)
        assert link.status == LinkStatus.READY
        title, category, tags = rows[link.id]
        assert title == link.title
        assert category == link.category.name == article.category
        assert tags == set(link.tags.values_list("name", flat=True))
    assert "Admin" in nav
    assert os.path.getsize(SCREENSHOTS / "home.png") > 10_000
