"""Cross-validated crisis-detector scores for the output guard's context rule.

`python tools/safety/context_cv.py` repeats `train_crisis.py`'s grouped cross-validation
(same corpus, same augmentation, same folds and head; read-only use of its functions) and
saves, for every base row of the training corpus, the out-of-fold learned probability and
the phrase rules' rank, with the crisis head's data sha256. `train_replies.py` reads the file
to choose the output guard's context threshold (`risk` at which a reply's stance is judged
though the detector did not flag the message). Training data only: the blind sets under
`tools/safety/blind/` are never read.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import train_crisis as tc  # noqa: E402
from augment import augment  # noqa: E402

from fleetcore.safety.detector import analyse  # noqa: E402

OUT = ROOT / "tools" / "safety" / ".cache" / "crisis_oof.npz"


def main() -> int:
    t0 = time.time()
    base = tc.load_rows(ROOT.parent / "shared" / "crisis" / "dev.jsonl")
    aug = augment(base, seed=tc.SEED, per_row=1.0)
    rows = base + aug
    group = list(range(len(base))) + list(range(len(base)))
    emb = tc.Embeddings()
    emb.get([v for r in rows for v in tc.views_of(r["text"])])
    print(f"rows {len(base)} + {len(aug)}; embedded in {time.time() - t0:.0f} s", flush=True)
    folds = 3
    rng = random.Random(tc.SEED)
    fold_of_group = {g: rng.randrange(folds) for g in set(group)}
    oof = np.zeros(len(base))
    for k in range(folds):
        train = [r for r, g in zip(rows, group, strict=True) if fold_of_group[g] != k]
        test_i = [i for i in range(len(base)) if fold_of_group[i] == k]
        first = tc.fit(*tc.build_examples(train, emb, None)[:2])
        model = tc.fit_mlp(*tc.build_examples(train, emb, first)[:2])
        oof[test_i] = tc.row_scores([base[i] for i in test_i], emb, model)
        print(f"fold {k}: done ({time.time() - t0:.0f} s)", flush=True)
    rules = np.array([analyse(r["text"])[0] for r in base])
    meta = json.loads((tc.OUT / tc.META_FILE).read_text(encoding="utf-8"))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        OUT,
        oof=oof,
        rules=rules,
        label=np.array([r["label"] for r in base]),
        kind=np.array([r["kind"].split("+")[0] for r in base]),
        crisis_head_sha256=np.array(meta["data_sha256"]),
        crisis_threshold=np.array(meta["crisis_threshold"]),
        concern_threshold=np.array(meta["concern_threshold"]),
    )
    print(f"wrote {OUT} in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
