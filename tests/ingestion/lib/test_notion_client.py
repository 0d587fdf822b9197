from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ingestion.lib.notion import (
    NOTION_VERSION,
    NotionClient,
    NotionError,
    NotionProperties,
    NotionRateLimited,
    text_to_blocks,
)
from ingestion.lib.ratelimit import RedisRateLimiter
from kbmanager.queues import get_redis

SAVED_AT = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)


def client_for(server, **options) -> NotionClient:
    return NotionClient(token=server.token, database_id=server.database_id, base_url=server.base_url, **options)


def upsert(client: NotionClient, *, page_id: str | None = None, body_text: str = "First paragraph.", **fields):
    values = {
        "title": "Indexing in PostgreSQL",
        "url": "https://example.com/postgres",
        "category": "Databases",
        "tags": ["postgresql", "index"],
        "summary": "How indexes work.",
        "saved_at": SAVED_AT,
        "domain": "example.com",
    }
    values.update(fields)
    return client.upsert_page(page_id=page_id, body_text=body_text, **values)


def paragraphs(blocks: list[dict]) -> list[str]:
    return [b["paragraph"]["rich_text"][0]["text"]["content"] for b in blocks if b["type"] == "paragraph"]


def test_blocks_are_summary_heading_divider_article_heading_then_paragraphs():
    blocks = text_to_blocks("The summary.", "One.\n\nTwo\ncontinues.\n\nThree.")
    assert [b["type"] for b in blocks] == [
        "heading_2",
        "paragraph",
        "divider",
        "heading_2",
        "paragraph",
        "paragraph",
        "paragraph",
    ]
    assert blocks[0]["heading_2"]["rich_text"][0]["text"]["content"] == "Summary"
    assert blocks[3]["heading_2"]["rich_text"][0]["text"]["content"] == "Article"
    assert paragraphs(blocks) == ["The summary.", "One.", "Two continues.", "Three."]


def test_a_5000_character_paragraph_is_split_into_pieces_of_at_most_2000_at_word_boundaries():
    words = [f"w{i:05d}" for i in range(715)]  # 7 characters per word with its space: about 5,000 characters
    paragraph = " ".join(words)
    assert len(paragraph) >= 5000

    pieces = paragraphs(text_to_blocks("S.", paragraph))[1:]

    assert len(pieces) == 3
    assert all(len(piece) <= 2000 for piece in pieces)
    assert " ".join(pieces).split() == words  # no word was cut or lost


def test_a_paragraph_without_spaces_is_cut_hard_at_2000():
    pieces = paragraphs(text_to_blocks("S.", "x" * 4500))[1:]
    assert [len(p) for p in pieces] == [2000, 2000, 500]


def test_new_page_has_the_properties_and_body_under_the_data_source(notion_server):
    page = upsert(client_for(notion_server))

    assert list(notion_server.pages) == [page.id]
    assert page.url.startswith("https://www.notion.so/")
    stored = notion_server.pages[page.id]
    assert stored["parent"] == {"type": "data_source_id", "data_source_id": notion_server.data_source_id}
    props = stored["properties"]
    assert props["Name"]["title"][0]["text"]["content"] == "Indexing in PostgreSQL"
    assert props["URL"]["url"] == "https://example.com/postgres"
    assert props["Category"]["select"]["name"] == "Databases"
    assert [t["name"] for t in props["Tags"]["multi_select"]] == ["postgresql", "index"]
    assert props["Summary"]["rich_text"][0]["text"]["content"] == "How indexes work."
    assert props["Saved"]["date"]["start"] == "2025-03-01T12:30:00+00:00"
    assert props["Domain"]["rich_text"][0]["text"]["content"] == "example.com"
    assert "First paragraph." in notion_server.page_text(page.id)
    assert all(r.headers["notion-version"] == NOTION_VERSION for r in notion_server.requests)


def test_property_names_are_configurable_and_long_summary_is_clipped(notion_server):
    names = NotionProperties(title="Title", category="Kind", domain="Site", domain_type="select")
    page = upsert(client_for(notion_server, properties=names), summary="s" * 3000, category="a, b")

    props = notion_server.pages[page.id]["properties"]
    assert set(props) == {"Title", "URL", "Kind", "Tags", "Summary", "Saved", "Site"}
    assert len(props["Summary"]["rich_text"][0]["text"]["content"]) == 2000
    assert props["Kind"]["select"]["name"] == "a b"  # Notion refuses commas in option names
    assert props["Site"]["select"]["name"] == "example.com"


def test_article_with_more_than_100_blocks_is_appended_in_chunks_of_at_most_100(notion_server):
    body = "\n\n".join(f"Paragraph number {i}." for i in range(250))  # 254 blocks with headings and divider

    page = upsert(client_for(notion_server), body_text=body)

    create = notion_server.requests_to("POST", "/v1/pages")
    appends = notion_server.requests_to("PATCH", "/children")
    assert len(create[0].body["children"]) == 100
    assert [len(r.body["children"]) for r in appends] == [100, 54]
    assert all(r.status == 200 for r in notion_server.requests)
    texts = paragraphs(notion_server.pages[page.id]["children"])
    assert texts[1:] == [f"Paragraph number {i}." for i in range(250)]


def test_data_source_id_is_looked_up_once_per_client(notion_server):
    client = client_for(notion_server)
    upsert(client)
    upsert(client)
    assert len(notion_server.requests_to("GET", "/v1/databases/")) == 1


def test_updating_a_page_replaces_its_properties_and_content_without_a_second_page(notion_server):
    client = client_for(notion_server)
    body = "\n\n".join(f"Old paragraph {i}." for i in range(150))
    first = upsert(client, body_text=body)

    second = upsert(client, page_id=first.id, body_text="New body.", category="Performance", tags=["tuning"])

    assert second.id == first.id
    assert list(notion_server.pages) == [first.id]
    props = notion_server.pages[first.id]["properties"]
    assert props["Category"]["select"]["name"] == "Performance"
    assert [t["name"] for t in props["Tags"]["multi_select"]] == ["tuning"]
    assert paragraphs(notion_server.pages[first.id]["children"]) == ["How indexes work.", "New body."]
    # The old 154 blocks were listed over two pages of results and each one deleted.
    assert len(notion_server.requests_to("GET", "/children")) == 2
    assert len(notion_server.requests_to("DELETE", "/v1/blocks/")) == 154


def test_updating_a_page_deleted_in_notion_creates_a_new_one(notion_server):
    client = client_for(notion_server)
    first = upsert(client)
    notion_server.archive_page(first.id)

    second = upsert(client, page_id=first.id)

    assert second.id != first.id
    assert set(notion_server.pages) == {first.id, second.id}


def test_updating_an_unknown_page_creates_a_new_one(notion_server):
    page = upsert(client_for(notion_server), page_id="00000000-0000-0000-0000-000000000000")
    assert list(notion_server.pages) == [page.id]


def test_rate_limit_raises_notion_rate_limited_and_pauses_the_shared_limiter(notion_server):
    limiter = RedisRateLimiter(get_redis(), "test:notion-limiter", rate_per_second=50)
    notion_server.rate_limit_next(1, retry_after=30)

    with pytest.raises(NotionRateLimited) as caught:
        upsert(client_for(notion_server, limiter=limiter))

    assert caught.value.retry_after == 30
    assert len(notion_server.requests) == 1  # no retry loop inside the client
    # Every process sharing the limiter now waits: a slot within the next 5 s is not available.
    other_process_limiter = RedisRateLimiter(get_redis(), "test:notion-limiter", rate_per_second=50)
    with pytest.raises(TimeoutError):
        other_process_limiter.acquire(timeout=5)


def test_rate_limit_while_appending_a_new_page_reports_the_created_page_id(notion_server):
    client = client_for(notion_server)
    client.data_source_id()
    body = "\n\n".join(f"P{i}." for i in range(150))
    # Let the create through, then limit the first append.
    original_handle = notion_server.handle

    def handle(request):
        if request.method == "PATCH":
            notion_server.rate_limit_next(1, retry_after=2)
            notion_server.handle = original_handle
        return original_handle(request)

    notion_server.handle = handle
    with pytest.raises(NotionRateLimited) as caught:
        upsert(client, body_text=body)

    assert caught.value.page_id in notion_server.pages
    # Retrying with that id updates the page instead of creating a duplicate.
    page = upsert(client, page_id=caught.value.page_id, body_text=body)
    assert list(notion_server.pages) == [page.id]
    assert len(paragraphs(notion_server.pages[page.id]["children"])) == 151


def test_every_request_takes_a_slot_from_the_limiter(notion_server):
    limiter = RedisRateLimiter(get_redis(), "test:notion-slots", rate_per_second=10)
    upsert(client_for(notion_server, limiter=limiter), body_text="\n\n".join(f"P{i}." for i in range(450)))

    times = sorted(r.time for r in notion_server.requests)
    assert len(times) == 6  # database lookup, create, four appends
    # At 10 requests per second a 0.25 s window holds at most three slots; one more is tolerated for jitter.
    # Unlimited, all six requests would land within a few milliseconds.
    assert max(sum(1 for t in times if start <= t < start + 0.25) for start in times) <= 4


def test_wrong_token_raises_notion_error_with_notions_message(notion_server):
    client = NotionClient(token="wrong", database_id=notion_server.database_id, base_url=notion_server.base_url)
    with pytest.raises(NotionError, match="API token is invalid") as caught:
        upsert(client)
    assert caught.value.status == 401 and not isinstance(caught.value, NotionRateLimited)


def test_unknown_database_raises_notion_error(notion_server):
    client = NotionClient(token=notion_server.token, database_id="nope", base_url=notion_server.base_url)
    with pytest.raises(NotionError, match="Could not find database"):
        upsert(client)


def test_fake_server_rejects_oversized_requests_like_notion(notion_server):
    # Guards the guard: the fake must fail where real Notion fails, or the chunking tests prove nothing.
    client = client_for(notion_server)
    too_many = [{"type": "divider", "divider": {}}] * 101
    too_long = [{"type": "paragraph", "paragraph": {"rich_text": [{"type": "text", "text": {"content": "x" * 2001}}]}}]
    page = upsert(client)
    for children in (too_many, too_long):
        with pytest.raises(NotionError, match="validation"):
            client._call(lambda children=children: client.client.blocks.children.append(page.id, children=children))
