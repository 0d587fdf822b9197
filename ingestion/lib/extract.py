"""Article extraction: the main text and metadata of a fetched HTML page.

Two extractors are available. trafilatura (the default) scores best on the project's
corpus; newspaper3k is kept for comparison and as an alternative. Neither touches the
network here: trafilatura only gets the HTML, and newspaper is given the HTML with image
fetching, memoization and NLP off.

Both libraries are imported at module import time on purpose: RQ workers import job
modules before forking work-horses, so the (slow) imports happen once per worker.

Plain helper with no Django imports.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field

import trafilatura
from trafilatura.settings import use_config

try:
    # newspaper3k's import needs lxml_html_clean with lxml >= 5.2; without it only
    # the trafilatura extractor is usable, which is the default anyway.
    import newspaper
    from newspaper.configuration import Configuration as NewspaperConfiguration
except ImportError as exc:  # pragma: no cover - the requirements pin both
    newspaper = None
    NewspaperConfiguration = None
    _NEWSPAPER_IMPORT_ERROR: str = str(exc)
else:
    _NEWSPAPER_IMPORT_ERROR = ""

logger = logging.getLogger(__name__)

EXTRACTORS = ("trafilatura", "newspaper")
# Pages bigger than this are cut before parsing: real articles are far smaller, and
# parse time and memory grow with the input (a 10 MB page of one tag must not stall a worker).
MAX_HTML_CHARS = 5_000_000

# trafilatura settings chosen on the development corpus (see bench/extraction.py):
# favor_precision drops boilerplate blocks the default keeps; tables carry article
# content on many pages, comments never do.
TRAFILATURA_OPTIONS = {
    "favor_precision": True,
    "include_tables": True,
    "include_comments": False,
    "include_images": False,
    "include_links": False,
    "deduplicate": False,
}
_TRAFILATURA_CONFIG = use_config()
# The signal-based timeout only works in the main thread; the queue's job timeout bounds us instead.
_TRAFILATURA_CONFIG.set("DEFAULT", "EXTRACTION_TIMEOUT", "0")

# C0 control characters other than tab/newline/carriage return. lxml refuses them and
# binary garbage is full of them.
_CONTROL_CHARS_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_WORD_RE = re.compile(r"[^\W\d_]+", re.UNICODE)
_BLANK_LINES_RE = re.compile(r"\n{3,}")

# A few of the most frequent words of each language, enough to tell them apart on an
# article-length text when the page does not declare its language.
_STOPWORDS = {
    "en": {"the", "and", "of", "to", "in", "is", "that", "for", "it", "with", "was", "on", "as", "are", "this"},
    "de": {"der", "die", "und", "das", "ist", "nicht", "ein", "eine", "zu", "mit", "den", "auf", "sich", "von"},
    "fr": {"le", "la", "les", "et", "des", "est", "une", "un", "du", "que", "pour", "dans", "pas", "sur", "qui"},
    "es": {"el", "la", "los", "las", "y", "que", "del", "en", "un", "una", "por", "con", "para", "es", "se"},
    "it": {"il", "la", "di", "che", "e", "un", "una", "per", "non", "sono", "della", "del", "con", "gli", "nel"},
    "pt": {"o", "a", "os", "as", "de", "que", "do", "da", "em", "um", "uma", "para", "com", "não", "é"},
    "nl": {"de", "het", "een", "en", "van", "is", "dat", "niet", "op", "te", "zijn", "voor", "met", "ook"},
    "ru": {"и", "в", "не", "на", "что", "с", "по", "это", "как", "к", "из", "у", "за", "от", "о"},
}
_SCRIPT_LANGUAGES = (
    ("ja", re.compile(r"[\u3040-\u30ff]")),
    ("ko", re.compile(r"[\uac00-\ud7af]")),
    ("zh", re.compile(r"[\u4e00-\u9fff]")),
    ("ar", re.compile(r"[\u0600-\u06ff]")),
    ("he", re.compile(r"[\u0590-\u05ff]")),
    ("el", re.compile(r"[\u0370-\u03ff]")),
)


class ExtractionError(Exception):
    """No article could be extracted; ``str(exc)`` says why."""


@dataclass
class Article:
    """An extracted article. ``published`` is an ISO 8601 date or datetime string, or None."""

    title: str = ""
    text: str = ""
    authors: list[str] = field(default_factory=list)
    published: str | None = None
    image: str = ""
    language: str = ""


def extract_article(html: str, *, url: str = "", extractor: str = "trafilatura") -> Article:
    """Extract the main article of ``html`` (fetched from ``url``) or raise :class:`ExtractionError`.

    ``extractor`` is one of :data:`EXTRACTORS`. The input is capped at
    :data:`MAX_HTML_CHARS` before parsing; any failure inside the extractor library
    (pathological markup, recursion limits) becomes an ExtractionError rather than a crash.
    """
    if extractor not in EXTRACTORS:
        raise ExtractionError(f"unknown extractor {extractor!r}; choose one of {', '.join(EXTRACTORS)}")
    if isinstance(html, bytes):
        html = html.decode("utf-8", errors="replace")
    html = _sanitize(html)
    if not html.strip():
        raise ExtractionError("page is empty")
    try:
        if extractor == "trafilatura":
            article = _extract_trafilatura(html, url)
        else:
            article = _extract_newspaper(html, url)
    except ExtractionError:
        raise
    except RecursionError:
        raise ExtractionError("page is nested too deeply to parse") from None
    except Exception as exc:  # The libraries raise many types on broken markup; report, never crash.
        logger.debug("extractor %s failed on %s", extractor, url, exc_info=True)
        raise ExtractionError(f"{extractor} could not parse the page: {type(exc).__name__}: {exc}") from None

    article.text = _tidy_text(article.text)
    if not article.text:
        raise ExtractionError("no article text found")
    article.title = " ".join(article.title.split())
    article.authors = _unique([" ".join(a.split()) for a in article.authors if a and a.strip()])
    if not article.language:
        article.language = guess_language(article.text)
    return article


def _sanitize(html: str) -> str:
    if len(html) > MAX_HTML_CHARS:
        html = html[:MAX_HTML_CHARS]
    return _CONTROL_CHARS_RE.sub("", html)


def _tidy_text(text: str | None) -> str:
    if not text:
        return ""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return _BLANK_LINES_RE.sub("\n\n", "\n".join(lines)).strip()


def _unique(items: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)


def _extract_trafilatura(html: str, url: str) -> Article:
    document = trafilatura.bare_extraction(
        html,
        url=url or None,
        with_metadata=True,
        config=_TRAFILATURA_CONFIG,
        **TRAFILATURA_OPTIONS,
    )
    if document is None:
        raise ExtractionError("no article text found")
    authors = [a.strip() for a in re.split(r";|\band\b", document.author or "") if a.strip()]
    return Article(
        title=document.title or "",
        text=document.text or "",
        authors=authors,
        published=document.date or None,
        image=document.image or "",
        language=_language_code(getattr(document, "language", None) or _html_lang(html)),
    )


def _extract_newspaper(html: str, url: str) -> Article:
    if newspaper is None:
        raise ExtractionError(f"the newspaper extractor is not available: {_NEWSPAPER_IMPORT_ERROR}")
    config = NewspaperConfiguration()
    config.fetch_images = False
    config.memoize_articles = False
    config.follow_meta_refresh = False
    config.request_timeout = 1  # never used: download() below gets the HTML and makes no request
    # newspaper needs some absolute URL to resolve relative image links against.
    article = newspaper.Article(url or "http://localhost/", config=config)
    article.download(input_html=html)
    article.parse()
    published = article.publish_date.isoformat() if article.publish_date else None
    return Article(
        title=article.title or "",
        text=article.text or "",
        authors=list(article.authors or []),
        published=published,
        image=article.top_image or article.meta_img or "",
        language=_language_code(article.meta_lang or _html_lang(html)),
    )


_HTML_LANG_RE = re.compile(r"<html[^>]*?\slang\s*=\s*[\"']?([a-zA-Z]{2,3})", re.IGNORECASE)


def _html_lang(html: str) -> str:
    match = _HTML_LANG_RE.search(html[:20000])
    return match.group(1) if match else ""


def _language_code(value: str | None) -> str:
    """``en-US`` / ``EN_gb`` -> ``en``; anything that is not a plausible code -> empty."""
    code = re.split(r"[-_]", (value or "").strip().lower(), maxsplit=1)[0]
    return code if code.isalpha() and 2 <= len(code) <= 3 else ""


def guess_language(text: str) -> str:
    """A tiny language guess (ISO 639-1) from the script and the most frequent words; empty if unsure."""
    sample = text[:20000]
    for code, pattern in _SCRIPT_LANGUAGES:
        if len(pattern.findall(sample)) > 20:
            return code
    words = Counter(word.lower() for word in _WORD_RE.findall(sample))
    if not words:
        return ""
    scores = {code: sum(words[w] for w in stopwords) for code, stopwords in _STOPWORDS.items()}
    best, best_score = max(scores.items(), key=lambda item: item[1])
    # Require the stopwords to be a noticeable share of the text before claiming a language.
    return best if best_score >= max(3, 0.05 * sum(words.values())) else ""
