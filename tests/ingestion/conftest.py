"""Fixtures for the ingestion tests: API users, pipeline settings, and article pages."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from ingestion.models import Category, Link, LinkStatus
from ingestion.services import content_hash_of

LINK_PERMS = ("view_link", "add_link", "change_link")

ASTRONOMY_PARAGRAPHS = [
    "Astronomy researchers using the new southern telescope have mapped a cluster of young stars that formed far "
    "faster "
    "than current models of galaxy evolution predict.",
    "The survey measured the light of more than two thousand stars and found that most of them ignited within "
    "a few hundred thousand years of each other, a blink in astronomical terms.",
    "Researchers say the telescope observations challenge the idea that star formation proceeds slowly in dense "
    "molecular clouds, and they plan follow-up observations with radio telescopes next winter.",
    "The team published its catalogue openly so that other observatories can test competing explanations of the "
    "burst, including shock waves from nearby supernova explosions.",
]


def article_html(title: str, paragraphs: list[str]) -> str:
    """A small but realistic article page that both extractors can read."""
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta property="og:title" content="{html.escape(title)}">
<meta name="author" content="Ada Observer">
<meta property="article:published_time" content="2024-03-05T10:00:00Z">
</head><body>
<header><nav><a href="/">Home</a> <a href="/science">Science</a></nav></header>
<main><article><h1>{html.escape(title)}</h1>
<p class="byline">By Ada Observer</p>
{body}
</article></main>
<footer><p>Copyright 2024 Example Science News. All rights reserved.</p></footer>
</body></html>"""


def make_user(*perms: str, username: str = "editor") -> User:
    user = User.objects.create_user(username=username, password="pw")
    if perms:
        user.user_permissions.set(Permission.objects.filter(content_type__app_label="ingestion", codename__in=perms))
    return user


def client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def editor(db: Any) -> User:
    return make_user(*LINK_PERMS)


@pytest.fixture
def api(editor: User) -> APIClient:
    """An API client holding every link permission."""
    return client_for(editor)


@pytest.fixture
def astronomy(db: Any) -> Category:
    return Category.objects.create(
        name="Astronomy", description="Stars, planets and telescopes", keywords=["telescope", "stars", "galaxy"]
    )


@pytest.fixture
def astronomy_page(web_server: Any) -> str:
    """URL of an astronomy article served on loopback."""
    web_server.add("/news/young-stars", article_html("A cluster of stars that grew up too fast", ASTRONOMY_PARAGRAPHS))
    return web_server.url("/news/young-stars")


@pytest.fixture
def fetch_from(settings: Any, web_server: Any) -> Any:
    settings.FETCH_ALLOWED_HOSTS = [web_server.host]
    return settings


@pytest.fixture
def openai_settings(settings: Any, openai_server: Any) -> Any:
    settings.AI_BACKEND = "openai"
    settings.OPENAI_BASE_URL = openai_server.base_url
    settings.OPENAI_API_KEY = "test-key"
    settings.OPENAI_MODEL = "test-model"
    return settings


@pytest.fixture
def local_ai(settings: Any) -> Any:
    settings.AI_BACKEND = "local"
    return settings


@pytest.fixture
def notion_on(settings: Any, notion_server: Any) -> Any:
    settings.NOTION_TOKEN = notion_server.token
    settings.NOTION_DATABASE_ID = notion_server.database_id
    settings.NOTION_BASE_URL = notion_server.base_url
    settings.NOTION_ENABLED = True
    # High enough that the shared limiter never slows a test down.
    settings.NOTION_RATE_LIMIT = 50.0
    return settings


@pytest.fixture
def notion_off(settings: Any) -> Any:
    settings.NOTION_TOKEN = ""
    settings.NOTION_DATABASE_ID = ""
    settings.NOTION_ENABLED = False
    return settings


@pytest.fixture
def parsed_link(db: Any) -> Callable[..., Link]:
    """Create a link that has been parsed (text and hash set) without fetching anything."""
    counter = iter(range(1, 10_000))

    def create(text: str = " ".join(ASTRONOMY_PARAGRAPHS), **fields: Any) -> Link:
        n = next(counter)
        values = {
            "url": f"https://news.example.com/article-{n}",
            "normalized_url": f"https://news.example.com/article-{n}",
            "domain": "news.example.com",
            "title": "A cluster of stars that grew up too fast",
            "text": text,
            "content_hash": content_hash_of(text),
            "status": LinkStatus.PARSED,
        }
        values.update(fields)
        return Link.objects.create(**values)

    return create
