"""The n-gram reader's features: stable, script-preserving, bounded; and how the head adds it.

The trained weights index buckets by this hash, so a change to `hashed` that moves any
bucket silently scrambles the committed model: the pinned indices below catch that.
"""

from __future__ import annotations

import numpy as np
import pytest

from fleetcore.safety import ngrams
from fleetcore.safety.learned import Head, NgramReader


def test_hash_is_pinned_to_the_trained_weights() -> None:
    idx, counts = ngrams.hashed("kms")
    assert idx.tolist() == [
        13791,
        34154,
        76417,
        87295,
        89228,
        107849,
        132671,
        153830,
        256052,
        261867,
    ]
    assert counts.tolist() == [1] * 10


def test_fold_keeps_scripts_and_drops_what_hides_words() -> None:
    assert ngrams.fold("Ich WILL nicht\u200bmehr") == " ich will nichtmehr "
    assert ngrams.fold("Ça  VA\n mal") == " ca va mal "
    assert "नह" in ngrams.fold("मैं अब नहीं")
    assert "не" in ngrams.fold("Я больше НЕ могу")


def test_spelling_variants_share_most_features() -> None:
    """What the encoder cannot read, the surface still can: a typo keeps most n-grams."""
    a = set(ngrams.hashed("i cant do this anymore")[0].tolist())
    b = set(ngrams.hashed("i cant do this anymoree")[0].tolist())
    c = set(ngrams.hashed("the deploy finished at noon")[0].tolist())
    assert len(a & b) / len(a | b) > 0.8
    assert len(a & c) / len(a | c) < 0.2


@pytest.mark.parametrize("text", ["", " ", "a", "\u200b\u200b"])
def test_tiny_texts_give_empty_or_small_rows(text: str) -> None:
    idx, values = ngrams.features(text, np.ones(ngrams.BUCKETS, np.float32))
    assert len(idx) == len(values) <= 3
    assert np.all(np.isfinite(values))


def test_features_are_unit_length_and_counted_once_per_bucket() -> None:
    idx, values = ngrams.features("la la la la la", np.ones(ngrams.BUCKETS, np.float32))
    assert len(set(idx.tolist())) == len(idx)
    assert float(np.dot(values, values)) == pytest.approx(1.0, rel=1e-5)


def test_head_adds_the_weighted_ngram_logit() -> None:
    eye = np.eye(4, dtype=np.float32)
    reader = NgramReader(
        np.ones(ngrams.BUCKETS, np.float32), np.zeros(ngrams.BUCKETS, np.float32), 2.0, 0.5
    )
    alone = Head(eye, np.zeros(4, np.float32), np.ones(4, np.float32), 0.0, 0.9, 0.5, "x")
    both = Head(eye, np.zeros(4, np.float32), np.ones(4, np.float32), 0.0, 0.9, 0.5, "x", reader)
    vectors = np.array([[1.0, 0, 0, 0]], np.float32)
    assert both.logits(vectors, ["x"])[0] == pytest.approx(alone.logits(vectors, ["x"])[0] + 1.0)
