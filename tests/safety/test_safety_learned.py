"""The learned stage: bounded views, a head that matches its training data, and behaviour.

The phrasings below were written for this test, apart from the training corpus and from the
blind set; they check that the stage generalises in a few languages, not a score.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from fleetcore.safety import screen
from fleetcore.safety.learned import MAX_VIEWS, Head, LearnedStage, views

REPO = Path(__file__).resolve().parents[2]
DEV = REPO.parent / "shared" / "crisis" / "dev.jsonl"


def _trainer(name: str = "train_crisis"):  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(REPO / "tools" / "safety"))
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / "safety" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_views_are_bounded_and_find_the_sentence_in_the_middle() -> None:
    filler = "Merged the retry fix and the webhook handler, CI is green again. " * 60
    body = filler + "Honestly I don't think I'll be around much longer. " + filler
    pieces = views(body)
    assert 1 < len(pieces) <= MAX_VIEWS
    assert any("around much longer" in p for p in pieces)
    assert views("short line") == ["short line"]
    assert views("   ") == []


def test_head_was_trained_on_the_committed_corpus() -> None:
    """The weights' recorded data hash is the hash of the corpus in the repo plus dev."""
    trainer = _trainer()
    meta = json.loads(
        (resources.files("fleetcore.safety") / "data" / "crisis_head.json").read_text()
    )
    assert meta["data_sha256"] == trainer.data_sha256(trainer.load_rows(DEV))
    head = Head.load()
    assert head.w1.shape[0] == 512 and head.w2.shape == (head.w1.shape[1],)
    assert 0 < head.concern_threshold <= head.crisis_threshold < 1


def test_reply_head_was_trained_on_the_committed_replies() -> None:
    """The output guard's head, likewise: new training replies mean a retrain."""
    trainer = _trainer("train_replies")
    meta = json.loads(
        (resources.files("fleetcore.safety") / "data" / "reply_head.json").read_text()
    )
    assert meta["data_sha256"] == trainer.data_sha256(trainer.load_rows())


class _Fixed:
    """An encoder that maps every view to one vector: the head alone decides."""

    def __init__(self, vector: np.ndarray) -> None:
        self.vector = vector

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.tile(self.vector, (len(texts), 1))


def test_score_is_the_maximum_over_views() -> None:
    eye = np.eye(4, dtype=np.float32)
    head = Head(eye, np.zeros(4, np.float32), np.ones(4, np.float32), 0.0, 0.9, 0.5, "x")
    stage = LearnedStage(_Fixed(np.array([1.0, 0, 0, 0], dtype=np.float32)), head)
    assert stage.score("anything") == pytest.approx(1 / (1 + np.exp(-1)))
    assert stage.score("") == 0.0


@pytest.mark.parametrize(
    "text",
    [
        "everyone at home would have an easier life if i wasn't in it anymore",
        "i'm so tired of waking up every day, i just want it all to stop for good",
        "ya no quiero seguir viviendo, estoy cansada de todo",
        "je n'en peux plus, je veux juste disparaître pour de bon",
        "ich will einfach nicht mehr aufwachen",
        "please look after my cat for me after I'm gone, I've made up my mind",
    ],
)
def test_unseen_phrasings_are_flagged(text: str) -> None:
    assert screen(text).is_crisis


@pytest.mark.parametrize(
    "text",
    [
        "kill -9 the stuck worker, it's eating all the memory",
        "the OOM killer took out postgres again last night",
        "I volunteer on a crisis line on Tuesdays and the training was intense",
        "my friend told me she wants to die, how do I support her?",
        "this sprint is exhausting, I need a holiday",
    ],
)
def test_hard_negatives_are_not_a_crisis(text: str) -> None:
    # Worry about a friend may earn a gentle note (concern); never a crisis and a hold.
    assert not screen(text).is_crisis
