from __future__ import annotations

import pytest

from ingestion.lib.ai import (
    PROMPT_VERSION,
    AIError,
    AIRateLimited,
    CategoryInfo,
    LocalBackend,
    OpenAIBackend,
    make_backend,
    parse_json_object,
)

CATEGORIES = [
    CategoryInfo(name="Databases", description="Storing and querying data", keywords=["postgresql"]),
    CategoryInfo(name="Cooking", description="Recipes"),
]
ARTICLE = "PostgreSQL indexes speed up queries. Databases need careful tuning. " * 20


def backend_for(server, **overrides) -> OpenAIBackend:
    options = {"api_key": "", "base_url": server.base_url, "model": "test-model", "timeout": 5.0}
    options["input_char_budget"] = overrides.pop("input_char_budget", 12000)
    options.update(overrides)
    return OpenAIBackend(**options)


def analyze(backend, text: str = ARTICLE, existing_tags: list[str] | None = None):
    return backend.analyze(
        title="Tuning PostgreSQL", text=text, categories=CATEGORIES, existing_tags=existing_tags or ["sql"]
    )


def test_structured_request_carries_the_strict_schema_with_the_category_enum(openai_server):
    result = analyze(backend_for(openai_server))

    assert len(openai_server.requests) == 1
    body = openai_server.requests[0].body
    assert body["model"] == "test-model"
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    assert schema["properties"]["category"]["enum"] == ["Databases", "Cooking", "Uncategorized"]
    assert set(schema["required"]) == {"summary", "category", "tags", "language"}
    assert schema["additionalProperties"] is False
    system = openai_server.requests[0].system_content
    assert "only from the list" in system and "existing tags" in system and "3 to 5" in system
    assert "sql" in openai_server.requests[0].user_content

    assert result.category == "Databases"
    assert 1 <= len(result.tags) <= 5 and all(t == t.lower() for t in result.tags)
    assert result.summary.startswith("PostgreSQL indexes speed up queries.")
    assert result.language == "en"
    assert result.model == "test-model"


def test_article_text_is_truncated_to_the_budget_at_a_word_boundary(openai_server):
    words = [f"word{i:04d}" for i in range(2000)]
    analyze(backend_for(openai_server, input_char_budget=1000), text=" ".join(words))

    sent = openai_server.requests[0].user_content.split("Article:\n", 1)[1]
    assert 900 <= len(sent) <= 1000
    assert sent.split()[-1] in words  # the last word is whole, not cut in the middle
    assert "word1999" not in sent


def test_empty_api_key_with_a_base_url_sends_a_placeholder_key(openai_server):
    analyze(backend_for(openai_server))
    assert openai_server.requests[0].headers["authorization"].startswith("Bearer ")


def test_server_without_schema_support_gets_a_plain_json_request_and_fenced_reply_is_parsed(openai_server):
    openai_server.mode = "no_schema"
    openai_server.categories = ["Databases", "Cooking"]
    backend = backend_for(openai_server)

    result = analyze(backend)

    assert [r.response_format_type for r in openai_server.requests] == ["json_schema", "json_object"]
    assert "JSON object only" in openai_server.requests[1].system_content
    assert result.category == "Databases"
    assert result.summary.startswith("PostgreSQL indexes")


def test_second_call_to_a_server_without_schema_support_skips_the_schema_attempt(openai_server):
    openai_server.mode = "no_schema"
    backend = backend_for(openai_server)
    analyze(backend)
    openai_server.requests.clear()

    analyze(backend)

    assert [r.response_format_type for r in openai_server.requests] == ["json_object"]


def test_non_json_answer_to_a_schema_request_falls_back_and_fails_clearly_when_still_not_json(openai_server):
    openai_server.reply_content = "I am sorry, I cannot help with that."
    backend = backend_for(openai_server)

    with pytest.raises(AIError, match="no JSON object"):
        analyze(backend)

    assert [r.response_format_type for r in openai_server.requests] == ["json_schema", "json_object"]


def test_category_outside_the_list_becomes_uncategorized_and_tags_are_cleaned(openai_server):
    openai_server.reply_content = (
        '{"summary": "S.", "category": "Gardening", "tags": [" SQL ", "sql", "Index", "a", "b", "c", "d"],'
        ' "language": "EN"}'
    )
    result = analyze(backend_for(openai_server))
    assert result.category == "Uncategorized"
    assert result.tags == ["sql", "index", "a", "b", "c"]
    assert result.language == "en"


def test_category_matching_ignores_case(openai_server):
    openai_server.reply_content = '{"summary": "S.", "category": "databases", "tags": ["x"], "language": "en"}'
    assert analyze(backend_for(openai_server)).category == "Databases"


def test_answer_without_tags_is_an_error(openai_server):
    openai_server.reply_content = '{"summary": "S.", "category": "Cooking", "tags": [" "], "language": "en"}'
    with pytest.raises(AIError, match="no tags"):
        analyze(backend_for(openai_server))


def test_rate_limit_raises_ai_rate_limited_with_the_servers_delay(openai_server):
    openai_server.rate_limit_next(1, retry_after=7)
    with pytest.raises(AIRateLimited) as caught:
        analyze(backend_for(openai_server))
    assert caught.value.retry_after == 7
    assert len(openai_server.requests) == 1  # the SDK did not retry on its own


def test_rate_limit_prefers_retry_after_ms_and_defaults_to_twenty_seconds(openai_server):
    backend = backend_for(openai_server)
    openai_server.rate_limit_next(1, retry_after=7, retry_after_ms=1500)
    with pytest.raises(AIRateLimited) as caught:
        analyze(backend)
    assert caught.value.retry_after == 1.5

    openai_server.rate_limit_next(1, retry_after=None)
    with pytest.raises(AIRateLimited) as caught:
        analyze(backend)
    assert caught.value.retry_after == 20


def test_timeout_raises_ai_error_saying_so(openai_server):
    openai_server.latency = 2
    with pytest.raises(AIError, match="timed out") as caught:
        analyze(backend_for(openai_server, timeout=0.3))
    assert not isinstance(caught.value, AIRateLimited)


def test_server_error_raises_ai_error_with_status(openai_server):
    openai_server.fail_next(1, status=503)
    with pytest.raises(AIError, match="503"):
        analyze(backend_for(openai_server))
    assert len(openai_server.requests) == 1


def test_unreachable_server_raises_ai_error():
    backend = OpenAIBackend(api_key="", base_url="http://127.0.0.1:9/v1", model="m", timeout=2, input_char_budget=1000)
    with pytest.raises(AIError, match="could not connect"):
        analyze(backend)


def test_parse_json_object_tolerates_fences_and_chatter():
    assert parse_json_object('Sure!\n```json\n{"a": 1}\n```\nBye') == {"a": 1}
    assert parse_json_object('prefix {"a": {"b": [1, 2]}} suffix {"c": 3}') == {"a": {"b": [1, 2]}}
    with pytest.raises(AIError):
        parse_json_object("[1, 2, 3]")


def test_make_backend_builds_the_configured_backend(openai_server):
    assert isinstance(make_backend(backend="local"), LocalBackend)
    backend = make_backend(backend="openai", base_url=openai_server.base_url, timeout=5)
    assert isinstance(backend, OpenAIBackend) and backend.model == "gpt-4o-mini"
    with pytest.raises(ValueError, match="unknown AI backend"):
        make_backend(backend="magic")
    assert PROMPT_VERSION
