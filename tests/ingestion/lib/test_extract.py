from __future__ import annotations

import os

import pytest
from trafilatura.settings import MANUALLY_CLEANED

from ingestion.lib.extract import (
    _NON_ARTICLE_TAGS,
    EXTRACTORS,
    MAX_HTML_CHARS,
    Article,
    ExtractionError,
    extract_article,
    guess_language,
)
from ingestion.lib.fetch import fetch_url
from ingestion.lib.scoring import corpus_available, load_corpus_html, load_ground_truth, score_corpus, score_page

needs_corpus = pytest.mark.skipif(
    not corpus_available(), reason="extraction corpus not found (set KB_CORPUS_DIR or put it at ../shared/corpus)"
)

PARAGRAPHS = [
    "The city council voted on Tuesday to turn the old railway depot into a public library and workshop space.",
    "Residents had campaigned for years to keep the building, which dates from 1894, from being torn down.",
    "The renovation will cost about twelve million euros and is expected to take two years to complete.",
    "Architects plan to keep the original iron roof and the large arched windows that face the river.",
    "The library will open seven days a week and offer free courses in repair, sewing and woodworking.",
]

ARTICLE_PAGE = f"""<!DOCTYPE html>
<html lang="en-GB">
<head>
  <title>Old depot becomes a library | Example News</title>
  <meta property="og:title" content="Old depot becomes a library">
  <meta name="author" content="Jane Doe">
  <meta property="article:published_time" content="2024-03-05T09:30:00+00:00">
  <meta property="og:image" content="https://news.example/img/depot.jpg">
</head>
<body>
  <nav><a href="/">Home</a> <a href="/politics">Politics</a> <a href="/sport">Sport</a></nav>
  <article>
    <h1>Old depot becomes a library</h1>
    {"".join(f"<p>{p}</p>" for p in PARAGRAPHS)}
  </article>
  <footer>Copyright Example News. All rights reserved. Subscribe to our newsletter.</footer>
</body>
</html>"""

FIRST_CORPUS_PAGES = 6


@pytest.mark.parametrize("extractor", EXTRACTORS)
def test_article_text_and_metadata_are_extracted(extractor):
    article = extract_article(ARTICLE_PAGE, url="https://news.example/depot", extractor=extractor)
    assert isinstance(article, Article)
    for paragraph in PARAGRAPHS:
        assert paragraph in article.text
    assert "Subscribe to our newsletter" not in article.text
    assert "Old depot becomes a library" in article.title
    assert article.authors == ["Jane Doe"]
    assert article.published is not None and article.published.startswith("2024-03-05")
    assert article.image == "https://news.example/img/depot.jpg"
    assert article.language == "en"


@pytest.mark.parametrize("extractor", EXTRACTORS)
def test_language_is_guessed_when_the_page_does_not_declare_it(extractor):
    html = ARTICLE_PAGE.replace(' lang="en-GB"', "")
    assert extract_article(html, extractor=extractor).language == "en"


def test_metadata_is_read_from_json_ld_and_the_text_from_the_same_page():
    json_ld = (
        '<script type="application/ld+json">{"@context": "https://schema.org", "@type": "NewsArticle",'
        ' "headline": "Old depot becomes a library", "datePublished": "2023-11-20T08:00:00Z",'
        ' "author": {"@type": "Person", "name": "John Smith"}}</script>'
    )
    html = ARTICLE_PAGE.replace('<meta name="author" content="Jane Doe">', json_ld).replace(
        '<meta property="article:published_time" content="2024-03-05T09:30:00+00:00">', ""
    )
    article = extract_article(html, url="https://news.example/depot")
    assert article.authors == ["John Smith"]
    assert article.published is not None and article.published.startswith("2023-11-20")
    assert PARAGRAPHS[-1] in article.text


def test_article_text_outside_paragraphs_is_found_by_the_full_cascade():
    # A short paragraph elsewhere and the article as line-broken text in a div, as older
    # CMSs write it: trafilatura's fast mode finds only the paragraph, its full cascade the article.
    html = (
        '<html lang="en"><head><title>Depot</title></head><body>'
        '<div class="intro"><p>Short intro line here.</p></div>'
        f'<div id="text">{"<br>".join(PARAGRAPHS)}</div></body></html>'
    )
    article = extract_article(html, url="https://news.example/depot")
    for paragraph in PARAGRAPHS:
        assert paragraph in article.text


def test_an_xhtml_page_is_extracted():
    xhtml_doctype = (
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"'
        ' "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">'
    )
    article = extract_article(ARTICLE_PAGE.replace("<!DOCTYPE html>", xhtml_doctype))
    assert article.title == "Old depot becomes a library"
    assert PARAGRAPHS[0] in article.text


def test_elements_dropped_before_trafilatura_runs_are_ones_its_cleaning_deletes_anyway():
    # Dropping them early is only harmless while trafilatura deletes them itself, unchanged
    # (figure, form and math get special treatment there and are not dropped early).
    assert set(_NON_ARTICLE_TAGS) <= set(MANUALLY_CLEANED) - {"figure", "form", "math"}


def test_language_guess_tells_common_languages_apart():
    assert guess_language("Der Hund und die Katze sind nicht auf dem Tisch, das ist eine Geschichte von mir.") == "de"
    assert guess_language("Le chat et le chien sont dans la maison, et les enfants ne sont pas pour le jeu.") == "fr"
    assert guess_language("Это не так, и в этом что-то есть: он пришёл к нам из дома по делу.") == "ru"
    assert guess_language("これは日本語の文章です。" * 5) == "ja"
    assert guess_language("12345 !!!") == ""


def test_unknown_extractor_is_an_extraction_error():
    with pytest.raises(ExtractionError, match="unknown extractor 'goose'"):
        extract_article(ARTICLE_PAGE, extractor="goose")


@pytest.mark.parametrize("extractor", EXTRACTORS)
def test_a_page_without_article_text_is_an_extraction_error(extractor):
    html = "<html><head><script>var x = 1;</script></head><body><script>alert(1)</script></body></html>"
    with pytest.raises(ExtractionError, match="no article text found"):
        extract_article(html, extractor=extractor)


PATHOLOGICAL = {
    "empty": "",
    "deep nesting": "<html><body>" + "<div>" * 50_000 + "<p>deep</p>" + "</div>" * 50_000 + "</body></html>",
    "binary garbage": os.urandom(100_000).decode("latin-1"),
    "10 MB of one tag": "<p>" + "a" * 10_000_000 + "</p>",
    "a million open tags": "<b>" * 1_000_000,
    "unterminated attribute": '<html><body><p class="' + "x" * 500_000,
    "nul bytes": "<html><body><p>" + "\x00" * 1000 + "</p></body></html>",
}


@pytest.mark.parametrize("extractor", EXTRACTORS)
@pytest.mark.parametrize("case", list(PATHOLOGICAL))
def test_pathological_html_gives_an_extraction_error_or_a_result(extractor, case):
    try:
        article = extract_article(PATHOLOGICAL[case], extractor=extractor)
    except ExtractionError as exc:
        assert str(exc)
    else:
        assert article.text


def test_oversized_input_is_cut_before_parsing():
    article_html = ARTICLE_PAGE.replace("</body>", "<!--" + "x" * (MAX_HTML_CHARS + 1000) + "--></body>")
    article = extract_article(article_html)
    assert PARAGRAPHS[0] in article.text


@needs_corpus
@pytest.mark.parametrize(("extractor", "minimum_f1"), [("trafilatura", 0.9), ("newspaper", 0.75)])
def test_extractors_recover_the_marked_article_text_of_corpus_pages(extractor, minimum_f1):
    truth = load_ground_truth()
    page_ids = sorted(truth)[:FIRST_CORPUS_PAGES]
    scores = []
    for page_id in page_ids:
        html = load_corpus_html(page_id).decode("utf-8")
        article = extract_article(html, url=truth[page_id]["url"], extractor=extractor)
        scores.append(score_page(article.text, truth[page_id]["articleBody"]))
    assert score_corpus(scores).f1 > minimum_f1


@needs_corpus
def test_a_corpus_page_fetched_over_http_extracts_like_the_saved_file(web_server):
    page_id = sorted(load_ground_truth())[0]
    truth = web_server.add_corpus_page("/story", page_id)
    page = fetch_url(web_server.url("/story"), allowed_hosts=[web_server.host])
    article = extract_article(page.html, url=truth["url"])
    assert score_page(article.text, truth["articleBody"]).f1 > 0.9
    assert article.title
