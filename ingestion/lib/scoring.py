"""Shingle-overlap scoring of extracted article text, as the extraction benchmark defines it,
and access to the development corpus it is scored on.

Shared by ``bench/extraction.py`` and the extractor tests so both measure the same thing.
The rule (see the corpus README): tokens are ``\\w+`` matches, texts become multisets of
4-token shingles, and per page precision and recall come from the multiset overlap.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_TOKEN_RE = re.compile(r"\w+")
SHINGLE_SIZE = 4


def shingles(text: str, *, size: int = SHINGLE_SIZE) -> Counter[tuple[str, ...]]:
    """Multiset of consecutive ``size``-token shingles of ``text``."""
    tokens = _TOKEN_RE.findall(text or "")
    return Counter(tuple(tokens[i : i + size]) for i in range(len(tokens) - size + 1))


@dataclass(frozen=True)
class PageScore:
    """Overlap counts of one page, already divided by ``tp + fp + fn`` so every page weighs the same."""

    tp: float
    fp: float
    fn: float

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp > 0 else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn > 0 else None

    @property
    def f1(self) -> float:
        p, r = self.precision or 0.0, self.recall or 0.0
        return 2 * p * r / (p + r) if p + r else 0.0


def score_page(predicted: str, expected: str) -> PageScore:
    """Score one extracted text against the text a person marked as the article body."""
    pred, true = shingles(predicted), shingles(expected)
    tp = sum((pred & true).values())
    fp = sum((pred - true).values())
    fn = sum((true - pred).values())
    total = tp + fp + fn
    if total == 0:
        return PageScore(0.0, 0.0, 0.0)
    return PageScore(tp / total, fp / total, fn / total)


@dataclass(frozen=True)
class CorpusScore:
    precision: float
    recall: float
    f1: float
    pages: int


def score_corpus(pages: Iterable[PageScore]) -> CorpusScore:
    """Mean precision and recall over pages (skipping undefined ones) and their harmonic mean."""
    precisions: list[float] = []
    recalls: list[float] = []
    count = 0
    for page in pages:
        count += 1
        if page.precision is not None:
            precisions.append(page.precision)
        if page.recall is not None:
            recalls.append(page.recall)
    precision = sum(precisions) / len(precisions) if precisions else 0.0
    recall = sum(recalls) / len(recalls) if recalls else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return CorpusScore(precision=precision, recall=recall, f1=f1, pages=count)


# --- The development corpus -----------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[2]
CORPUS_SPLIT = "article-extraction-dev"


def corpus_dir() -> Path:
    """Where the corpus lives: ``$KB_CORPUS_DIR`` or ``<repo>/../shared/corpus`` (it is not in the repository)."""
    override = os.environ.get("KB_CORPUS_DIR")
    return Path(override) if override else REPO_ROOT.parent / "shared" / "corpus"


def corpus_available() -> bool:
    return (corpus_dir() / CORPUS_SPLIT / "ground-truth.json").is_file()


def load_ground_truth() -> dict[str, dict[str, str]]:
    """``{page_id: {"articleBody": ..., "url": ...}}`` of the development split."""
    return json.loads((corpus_dir() / CORPUS_SPLIT / "ground-truth.json").read_text(encoding="utf-8"))


def load_corpus_html(page_id: str) -> bytes:
    """The saved page as (decompressed) UTF-8 bytes."""
    return gzip.decompress((corpus_dir() / CORPUS_SPLIT / "html" / f"{page_id}.html.gz").read_bytes())
