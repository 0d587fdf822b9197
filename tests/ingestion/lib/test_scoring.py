from __future__ import annotations

import pytest

from ingestion.lib.scoring import score_corpus, score_page, shingles


def test_shingles_are_four_word_token_windows_counted_as_a_multiset():
    assert shingles("a b c d e") == {("a", "b", "c", "d"): 1, ("b", "c", "d", "e"): 1}
    assert shingles("x, x. x! x? x") == {("x", "x", "x", "x"): 2}
    assert shingles("too short") == {}


def test_identical_texts_score_one_and_disjoint_texts_zero():
    text = "one two three four five six"
    assert score_page(text, text).f1 == 1.0
    assert score_page("a b c d", "w x y z").f1 == 0.0


def test_extra_predicted_text_lowers_precision_but_not_recall():
    page = score_page("one two three four five six seven eight", "one two three four five")
    assert page.recall == 1.0
    assert page.precision == pytest.approx(2 / 5)


def test_an_empty_prediction_lowers_recall_and_is_left_out_of_precision():
    corpus = score_corpus([score_page("", "a b c d e"), score_page("f g h i j", "f g h i j")])
    assert corpus.precision == 1.0
    assert corpus.recall == 0.5
    assert corpus.f1 == pytest.approx(2 / 3)
