"""Article extraction benchmark: precision, recall, F1 and pages/s of each extractor on the dev corpus.

Run from the repository root::

    .venv/bin/python bench/extraction.py [--extractor trafilatura] [--repeat 1]

Scoring follows the corpus README (4-token shingles, per-page normalization, mean
precision and recall, F1 of the means); see ``ingestion/lib/scoring.py``. Timing is
one process, one page after another, after a short warm-up (lazy imports and regex
compilation in the libraries would otherwise be charged to the first pages).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingestion.lib.extract import EXTRACTORS, ExtractionError, extract_article  # noqa: E402
from ingestion.lib.scoring import (  # noqa: E402
    corpus_available,
    corpus_dir,
    load_corpus_html,
    load_ground_truth,
    score_corpus,
    score_page,
)

WARM_UP_PAGES = 3


def run(extractor: str, pages: dict[str, str], truth: dict[str, dict[str, str]], repeat: int) -> dict[str, float]:
    for page_id in list(pages)[:WARM_UP_PAGES]:
        try:
            extract_article(pages[page_id], url=truth[page_id]["url"], extractor=extractor)
        except ExtractionError:
            pass
    texts: dict[str, str] = {}
    failures = 0
    started = time.perf_counter()
    cpu_started = time.process_time()
    for _ in range(repeat):
        for page_id, html in pages.items():
            try:
                texts[page_id] = extract_article(html, url=truth[page_id]["url"], extractor=extractor).text
            except ExtractionError:
                texts[page_id] = ""
                failures += 1
    elapsed = time.perf_counter() - started
    cpu_elapsed = time.process_time() - cpu_started
    score = score_corpus(score_page(texts[pid], truth[pid]["articleBody"]) for pid in pages)
    return {
        "precision": score.precision,
        "recall": score.recall,
        "f1": score.f1,
        "pages_per_second": len(pages) * repeat / elapsed,
        # Pages per CPU second: the wall figure drops when other work shares the machine.
        "pages_per_cpu_second": len(pages) * repeat / cpu_elapsed,
        "failures": failures / repeat,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extractor", choices=EXTRACTORS, action="append", help="default: all")
    parser.add_argument("--repeat", type=int, default=1, help="passes over the corpus for the timing")
    args = parser.parse_args()
    if not corpus_available():
        print(f"corpus not found at {corpus_dir()} (set KB_CORPUS_DIR)", file=sys.stderr)
        return 1
    truth = load_ground_truth()
    pages = {page_id: load_corpus_html(page_id).decode("utf-8", errors="replace") for page_id in sorted(truth)}
    print(f"{len(pages)} pages from {corpus_dir()}")
    # newspaper's date parsing warns about time zone names it does not know; not our concern here.
    warnings.filterwarnings("ignore", module="dateutil")
    print(f"{'extractor':<12} {'precision':>9} {'recall':>7} {'F1':>7} ", end="")
    print(f"{'pages/s':>8} {'pages/cpu-s':>11} {'failed':>6}")
    for extractor in args.extractor or EXTRACTORS:
        r = run(extractor, pages, truth, args.repeat)
        print(
            f"{extractor:<12} {r['precision']:>9.4f} {r['recall']:>7.4f} {r['f1']:>7.4f} "
            f"{r['pages_per_second']:>8.1f} {r['pages_per_cpu_second']:>11.1f} {r['failures']:>6.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
