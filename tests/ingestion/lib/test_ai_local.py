from __future__ import annotations

import pytest

from ingestion.lib.ai import AIError, CategoryInfo, LocalBackend, detect_language

ARTICLE = """\
PostgreSQL is an open source relational database. Its query planner chooses between index scans and sequential scans.
The weather in the city was pleasant on the day of the conference.
Indexes make PostgreSQL queries fast, but every index slows down writes to the database.
A B-tree index suits equality and range queries, while a GIN index suits full text search.
The speaker also mentioned that coffee was served in the hallway.
Vacuum keeps PostgreSQL tables healthy by reclaiming space left behind by updates and deletes.
Partitioning splits a large table so that queries touch only the relevant partitions of the database.
Attendees later went to dinner at a small restaurant near the venue.
Choosing the right index for the workload is the most important database tuning decision.
"""

CATEGORIES = [
    CategoryInfo(name="Cooking", keywords=["recipe", "restaurant dish", "oven"]),
    CategoryInfo(name="Databases", description="Storing data", keywords=["postgresql", "index", "sql"]),
    CategoryInfo(name="Travel", keywords=["flight", "hotel"]),
]


def analyze(text: str = ARTICLE, title: str = "Indexing in PostgreSQL", **kwargs):
    kwargs.setdefault("categories", CATEGORIES)
    kwargs.setdefault("existing_tags", [])
    return LocalBackend().analyze(title=title, text=text, **kwargs)


def test_the_same_input_always_gives_the_same_result():
    assert analyze() == analyze() == analyze()


def test_summary_is_three_to_five_sentences_taken_from_the_text_in_document_order():
    summary = analyze().summary
    sentences = [line.strip() for line in ARTICLE.replace(". ", ".\n").splitlines() if line.strip()]
    picked = [s for s in sentences if s in summary]
    assert 3 <= len(picked) <= 5
    assert " ".join(picked) == summary
    assert len(summary) <= 800


def test_summary_prefers_sentences_about_the_topic_over_small_talk():
    summary = analyze().summary
    assert "coffee" not in summary and "dinner" not in summary and "weather" not in summary
    assert "PostgreSQL" in summary


def test_summary_of_long_text_stays_within_800_characters():
    long_sentence = "PostgreSQL " + " ".join(f"index{i}" for i in range(300)) + "."
    summary = analyze(text=(long_sentence + " ") * 10).summary
    assert 0 < len(summary) <= 800


def test_category_is_chosen_by_keyword_counts_with_word_boundaries():
    assert analyze().category == "Databases"
    # "oven" inside "proven" must not count as a cooking keyword.
    assert analyze(text="A proven approach. It was proven again. Proven.", title="Notes").category == "Uncategorized"


def test_category_name_itself_counts_as_a_keyword():
    result = analyze(text="Our travel plans for the summer.", title="Summer", categories=[CategoryInfo(name="Travel")])
    assert result.category == "Travel"


def test_no_matching_keyword_gives_uncategorized():
    assert analyze(categories=[CategoryInfo(name="Gardening", keywords=["tomato"])]).category == "Uncategorized"
    assert analyze(categories=[]).category == "Uncategorized"


def test_three_to_five_lower_case_unique_tags_without_stopwords():
    tags = analyze().tags
    assert 3 <= len(tags) <= 5
    assert len(set(tags)) == len(tags)
    assert all(tag == tag.lower() for tag in tags)
    assert not {"the", "and", "that", "but"} & set(tags)
    assert "postgresql" in tags and "index" in tags


def test_existing_tags_found_in_the_text_come_first():
    tags = analyze(existing_tags=["Vacuum", "Kubernetes", "b-tree"]).tags
    assert tags[:2] == ["vacuum", "b-tree"] or tags[:2] == ["b-tree", "vacuum"]
    assert "kubernetes" not in tags


@pytest.mark.parametrize(
    ("text", "language"),
    [
        (ARTICLE, "en"),
        (
            "Die Datenbank ist schnell, und der Index hilft bei der Suche nach den Daten, wenn es groß ist.",
            "de",
        ),
        ("La base de données est rapide et les index sont utiles pour les requêtes dans une grande table.", "fr"),
        (
            "La base de datos es rápida y los índices son útiles para las consultas en una tabla con el plan.",
            "es",
        ),
        ("База данных работает быстро, и индекс помогает при поиске, если таблица большая и это так.", "ru"),
        ("PostgreSQL MySQL SQLite Redis", ""),
    ],
)
def test_language_is_guessed_from_stopwords(text, language):
    assert detect_language(text) == language
    assert analyze(text=text).language == language


def test_empty_text_is_an_error_and_short_text_still_works():
    with pytest.raises(AIError, match="no text to summarize"):
        analyze(text="   \n ")
    result = analyze(text="PostgreSQL indexes.", title="")
    assert result.summary == "PostgreSQL indexes."
    assert result.category == "Databases"
    assert result.tags and result.model == "local-extractive-1"
