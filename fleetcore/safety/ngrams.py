"""Character n-grams for the crisis detector's second learned reader.

The sentence encoder reads meaning, but only in the languages and registers it was trained
on; phone-chat spellings ("kms", "cant do this nemore"), romanised Hindi or Arabic, leetspeak
and the corpus's minority languages come out of it as noise. Character n-grams read the
surface instead, and a linear model over them learned from the project's own corpus caught
more crisis rows than the encoder alone when a whole corpus round written by other authors
was held out (`tools/safety/train_crisis.py` prints both). The two readers are combined,
not chained.

Featurising is vectorised numpy, not a Python loop over n-grams: a message's 2-5-grams are
hashed with a polynomial over its code points into `BUCKETS` buckets, so a 2 KB message
costs well under a millisecond and training and screening share this one function.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np

BUCKETS = 1 << 18
ORDERS = (2, 3, 4, 5)
_PRIME = np.uint64(1_000_003)
_MIX = np.uint64(0x9E3779B97F4A7C15)
_SPACES = re.compile(r"\s+")
# Zero-width and direction marks split words without showing: "k\u200bill".
_INVISIBLE = dict.fromkeys(
    map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad\u202a\u202b\u202c\u202d\u202e")
)


def fold(text: str) -> str:
    """Lower case, accents and invisible marks dropped, every script kept, single spaces.

    Unlike `normalise.normalise` (which keeps only ASCII for the phrase rules), Devanagari,
    Arabic or Cyrillic stay as they are: they are what this reader learns from.
    """
    text = unicodedata.normalize("NFKD", text.translate(_INVISIBLE).casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " " + _SPACES.sub(" ", text).strip() + " "


def hashed(text: str) -> tuple[np.ndarray, np.ndarray]:
    """(bucket indices, counts) of the folded text's character 2-5-grams, indices sorted."""
    points = np.frombuffer(fold(text).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    parts = []
    with np.errstate(over="ignore"):  # the polynomial hash wraps modulo 2**64 on purpose
        for order in ORDERS:
            width = len(points) - order + 1
            if width <= 0:
                break
            h = np.full(width, order, dtype=np.uint64)
            for k in range(order):
                h = h * _PRIME + points[k : k + width]
            parts.append(h)
        if not parts:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        h = np.concatenate(parts) * _MIX
    idx = (h >> np.uint64(40)).astype(np.int64) & (BUCKETS - 1)
    return np.unique(idx, return_counts=True)


def features(text: str, idf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sparse tf-idf row (indices, values), sublinear counts, unit length."""
    idx, counts = hashed(text)
    values = (1.0 + np.log(counts)) * idf[idx]
    norm = float(np.sqrt(np.dot(values, values)))
    return idx, values / norm if norm > 0 else values
