"""Article extraction: the main text and metadata of a fetched HTML page.

Two extractors are available. trafilatura (the default) scores best on the project's
corpus; newspaper3k is kept for comparison and as an alternative. Neither touches the
network here: trafilatura only gets the HTML, and newspaper is given the HTML with image
fetching, memoization and NLP off.

The trafilatura path parses the page once and shares the tree between the metadata and the
text extraction, runs trafilatura's fast cascade, and runs the full cascade (with its
readability and justext fallbacks) only when the fast result looks deficient; see
``_extract_trafilatura`` for the reasons and ``bench/extraction.py`` for the figures.

Both libraries are imported at module import time on purpose: RQ workers import job
modules before forking work-horses, so the (slow) imports happen once per worker.

Plain helper with no Django imports.
"""

from __future__ import annotations

import logging
import re
import string
from collections import Counter
from copy import copy
from dataclasses import dataclass, field
from datetime import date

from htmldate import find_date
from lxml import etree
from lxml.html import HtmlComment, HtmlElement, HtmlEntity, HtmlProcessingInstruction
from lxml.html import fromstring as html_fromstring
from trafilatura import bare_extraction
from trafilatura.metadata import examine_meta, extract_meta_json, extract_title, extract_url
from trafilatura.settings import Document, Extractor, use_config

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


def _trafilatura_options(*, fast: bool) -> Extractor:
    return Extractor(
        config=_TRAFILATURA_CONFIG,
        output_format="python",
        fast=fast,
        precision=TRAFILATURA_OPTIONS["favor_precision"],
        tables=TRAFILATURA_OPTIONS["include_tables"],
        comments=TRAFILATURA_OPTIONS["include_comments"],
        images=TRAFILATURA_OPTIONS["include_images"],
        links=TRAFILATURA_OPTIONS["include_links"],
        dedup=TRAFILATURA_OPTIONS["deduplicate"],
    )


# Built once: trafilatura's Extractor reads its config file values on construction, which
# costs more per page than copying a prepared one and setting the URL.
_FAST_OPTIONS = _trafilatura_options(fast=True)
_FULL_OPTIONS = _trafilatura_options(fast=False)

# The same parser settings as trafilatura's own loader (comments and processing instructions
# dropped), but with lxml's C-level element class lookup instead of lxml.html's Python one:
# trafilatura's XPath expressions create element proxies by the hundred thousand, and the
# Python lookup cost nearly a tenth of the extraction time. Every element still is an
# HtmlElement; only lxml.html's form-specific subclasses are lost, which nothing here uses.
_HTML_PARSER = etree.HTMLParser(
    collect_ids=False, default_doctype=False, encoding="utf-8", remove_comments=True, remove_pis=True
)
_HTML_PARSER.set_element_class_lookup(
    etree.ElementDefaultClassLookup(
        element=HtmlElement, comment=HtmlComment, pi=HtmlProcessingInstruction, entity=HtmlEntity
    )
)
# libxml2 mis-parses a doctype with a slash (an XHTML one) on the first line; trafilatura's
# loader removes it for the same reason.
_SLASHED_DOCTYPE_RE = re.compile(rb"^< ?! ?DOCTYPE[^>]*/[^<>]*>", re.IGNORECASE)

# Elements that trafilatura's tree cleaning deletes with their content before it looks for
# the article (all are in trafilatura.settings.MANUALLY_CLEANED, and none gets the special
# treatment that figure, form and math get there). Deleting them right after the metadata
# has been read, instead of leaving it to trafilatura, does not change the extracted text,
# but it halves the elements that trafilatura's regex XPath prunes on the raw tree and its
# tree copies have to walk. The head (also deleted by trafilatura) loses its meta, title and
# base elements the same way; scripts go too, except JSON-LD ones, which trafilatura reads
# to recognise forum threads.
_NON_ARTICLE_TAGS = (
    "aside",
    "audio",
    "button",
    "canvas",
    "embed",
    "fieldset",
    "footer",
    "iframe",
    "input",
    "label",
    "link",
    "menu",
    "nav",
    "noscript",
    "object",
    "option",
    "picture",
    "select",
    "source",
    "style",
    "svg",
    "textarea",
    "time",
    "video",
)
_JSON_LD_SCRIPTS = etree.XPath('.//script[@type="application/ld+json"]')
_PAGE_TEXT_LENGTH = etree.XPath("string-length(normalize-space(//body))")

# How short a fast result must be before the full cascade is tried: trafilatura's own
# MIN_EXTRACTED_SIZE, below which its cascade also calls an extraction too short and tries
# the justext fallback.
_MIN_EXTRACTED_CHARS = _TRAFILATURA_CONFIG.getint("DEFAULT", "MIN_EXTRACTED_SIZE")
# An article body is normally a large part of a page's visible text; a fast result with less
# than this share of it has likely caught a teaser or a caption rather than the article.
_MIN_PAGE_TEXT_SHARE = 0.1

# C0 control characters other than tab/newline/carriage return. lxml refuses them and
# binary garbage is full of them.
_CONTROL_CHARS_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_CONTROL_BYTES = bytes(code for code in range(0x20) if code not in (0x09, 0x0A, 0x0D))
_BLANK_OR_CONTROL_CHARS = string.whitespace + _CONTROL_BYTES.decode("ascii")
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
    html = html[:MAX_HTML_CHARS]
    if not html.strip(_BLANK_OR_CONTROL_CHARS):
        raise ExtractionError("page is empty")
    try:
        if extractor == "trafilatura":
            article = _extract_trafilatura(html, url)
        else:
            article = _extract_newspaper(_CONTROL_CHARS_RE.sub("", html), url)
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
    """Metadata and text by trafilatura, from one parse of the page.

    trafilatura's full cascade runs its own extractor and then readability and justext on
    every page to compare with them, which took about half of the extraction time. Its fast
    mode runs its own extractor only. The full cascade only prefers another extractor when
    its own result is deficient: short, without paragraph text, dominated by tables, or much
    shorter than what readability finds. So the fast result is kept unless it shows one of
    those signs that can be seen without running readability (:func:`_is_deficient`), and
    only then is the full cascade run, on a fresh parse of the whole page as it would
    otherwise have seen it. On the development corpus this gives the full cascade's text on
    every page at about twice the speed (see bench/extraction.py).
    """
    tree = _parse_html(html)
    if tree is None:
        raise ExtractionError("no article text found")
    root = tree.getroottree().getroot()
    language = _language_code(root.get("lang") if root.tag == "html" else "")
    metadata = _trafilatura_metadata(tree, url)
    _drop_non_article_elements(tree)
    document = _trafilatura_text(tree, url, _FAST_OPTIONS)
    if _is_deficient(document, tree):
        full_tree = _parse_html(html)
        full_document = _trafilatura_text(full_tree, url, _FULL_OPTIONS) if full_tree is not None else None
        document = full_document or document
    if document is None:
        raise ExtractionError("no article text found")
    authors = [a.strip() for a in re.split(r";|\band\b", metadata.author or "") if a.strip()]
    return Article(
        title=metadata.title or "",
        text=document.text or "",
        authors=authors,
        published=metadata.date or None,
        image=metadata.image or "",
        language=language,
    )


def _parse_html(html: str) -> HtmlElement | None:
    """Parse ``html`` the way trafilatura's ``load_html`` does, minus its repeated work.

    The control characters lxml refuses are removed from the UTF-8 bytes (no UTF-8
    multi-byte sequence contains a byte below 0x20), which is several times faster than a
    regex over the text and lets lxml skip its own conversion of a str. Like trafilatura,
    a page that is not recognisably HTML and parses to almost nothing is rejected.
    """
    data = html.encode("utf-8", errors="replace").translate(None, _CONTROL_BYTES)
    beginning = data[:50].lower()
    if b"doctype" in beginning:
        first_line, newline, rest = data.partition(b"\n")
        data = _SLASHED_DOCTYPE_RE.sub(b"", first_line, count=1) + newline + rest
    tree = html_fromstring(data, parser=_HTML_PARSER)
    if tree is None or (b"html" not in beginning and len(tree) < 2):
        return None
    return tree


def _trafilatura_metadata(tree: HtmlElement, url: str) -> Document:
    """The fields of ``trafilatura.extract_metadata`` that an :class:`Article` keeps.

    The same helpers as trafilatura's, on the already parsed tree (none of them changes it),
    with two steps left out because they cost more than they give:

    - extract_metadata also derives the site name, categories, tags and license, which cost
      about half as much as the text extraction and are never used here;
    - when neither the meta tags nor JSON-LD name an author, extract_metadata searches the
      page for a byline (extract_author: a copy of the page and regex XPaths over every
      element), which took about a sixth of all the time. On the development corpus it
      named someone on 25 of the 88 pages: a right person or news agency on about 10, a
      site name or account ("LinkNaija", "Editorial", "Admin") on about 10, and a name with
      words attached ("Phil Helsel is a reporter") on the rest. Authors now come from the
      page's meta tags and JSON-LD only.

    The date search is htmldate's non-extensive one: the extensive one hands free-text dates
    to dateparser, whose first use in a process costs about 2.5 s of CPU to load its language
    data. RQ runs every job in a freshly forked work-horse, so each job that reached it
    paid that again; on the development corpus it dated one page in 88 that is now undated.
    """
    metadata = examine_meta(tree)
    # As in trafilatura: a one-word author from a meta tag is usually a site or a handle.
    if metadata.author and " " not in metadata.author:
        metadata.author = None
    try:
        metadata = extract_meta_json(tree, metadata)
    except Exception:  # trafilatura guards its JSON-LD parsing the same way.
        logger.debug("JSON-LD metadata of %s could not be read", url, exc_info=True)
    metadata.title = metadata.title or extract_title(tree)
    metadata.url = metadata.url or extract_url(tree, url or None)
    metadata.date = find_date(
        tree, url=metadata.url, original_date=True, extensive_search=False, max_date=date.today().isoformat()
    )
    metadata.clean_and_trim()
    return metadata


def _drop_non_article_elements(tree: HtmlElement) -> None:
    """Delete the ``_NON_ARTICLE_TAGS`` elements, the head's metadata and the scripts other than
    JSON-LD ones, keeping tail text."""
    # lxml's strip_elements deletes in one pass in C, but only by tag name: the JSON-LD scripts
    # are renamed for the duration so that it spares them.
    json_ld_scripts = _JSON_LD_SCRIPTS(tree)
    for script in json_ld_scripts:
        script.tag = "json-ld"
    etree.strip_elements(tree, "script", "meta", "title", "base", *_NON_ARTICLE_TAGS, with_tail=False)
    for script in json_ld_scripts:
        script.tag = "script"


def _trafilatura_text(tree: HtmlElement, url: str, options: Extractor) -> Document | None:
    options = copy(options)
    options.url = options.source = url or None
    # bare_extraction works on its own copy of the tree.
    return bare_extraction(tree, options=options)


def _is_deficient(document: Document | None, tree: HtmlElement) -> bool:
    """Whether a fast extraction shows a sign on which trafilatura's full cascade may replace it."""
    if document is None:
        return True
    text_length = len(document.text or "")
    if text_length < _MIN_EXTRACTED_CHARS:
        return True
    body = document.body
    paragraphs = body.findall(".//p")
    if not body.xpath(".//p//text()") or len(body.findall(".//table")) > len(paragraphs):
        return True
    return text_length < _MIN_PAGE_TEXT_SHARE * _PAGE_TEXT_LENGTH(tree)


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
