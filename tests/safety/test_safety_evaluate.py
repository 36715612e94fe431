"""`fleet safety eval`: recall and FPR per kind, gray kinds apart, levels per slice."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from fleetcore.safety import SAFE, Level, Verdict
from fleetcore.safety.evaluate import Row, RowsError, evaluate, parse_rows

REPO = Path(__file__).resolve().parents[2]


def fake(text: str) -> Verdict:
    level = Level(text.split(":")[0])
    return SAFE if level is Level.none else Verdict(level.rank >= 2, level, ("x",))


ROWS = [
    Row("imminent:a", "crisis", "direct", "en"),
    Row("crisis:b", "crisis", "direct", "en"),
    Row("concern:c", "crisis", "passive", "de"),  # concern counts as flagged
    Row("none:d", "crisis", "passive", "de"),
    Row("none:e", "safe", "dev-chat", "en"),
    Row("concern:f", "safe", "dev-chat", "en"),
    Row("none:g", "safe", "dev-chat", "de"),
    Row("none:h", "safe", "dev-chat", "de"),
    Row("crisis:i", "safe", "hyperbole", "en"),
    Row("none:j", "safe", "recovered-past", "en"),
    Row("concern:k", "safe", "third-party", "en"),
]


def test_rates_levels_and_gray_kinds() -> None:
    report = evaluate(ROWS, screen_fn=fake)
    assert report.rows == 11 and report.crisis_rows == 4 and report.safe_rows == 7
    assert (report.recall.hits, report.recall.n) == (3, 4)
    assert (report.fpr_headline.hits, report.fpr_headline.n) == (1, 4)  # dev-chat only
    assert (report.fpr_gray.hits, report.fpr_gray.n) == (2, 3)
    assert (report.fpr_all.hits, report.fpr_all.n) == (3, 7)
    direct, passive = report.crisis
    assert direct.kind == "direct" and direct.rate.value == 1.0
    assert direct.levels == {"none": 0, "concern": 0, "crisis": 1, "imminent": 1}
    assert passive.rate.value == 0.5 and passive.levels["concern"] == 1
    assert [s.kind for s in report.safe] == ["dev-chat"]
    assert [s.kind for s in report.gray] == ["hyperbole", "recovered-past", "third-party"]
    assert report.missed == (4,) and report.false_alarms == (6, 9, 11)
    langs = {s.lang: s for s in report.by_lang}
    assert langs["de"].recall.value == 0.5 and langs["en"].fpr.value == 3 / 5
    data = report.to_json()
    assert data["flagged_means"] == "level >= concern"
    assert json.loads(json.dumps(data))["recall"] == {"rate": 0.75, "flagged": 3, "rows": 4}


def test_bad_rows_are_named_by_line() -> None:
    lines = [
        '{"text": "a", "label": "crisis", "kind": "direct"}',
        "",
        "not json",
        '{"text": 3, "label": "safe"}',
        '{"text": "b", "label": "maybe"}',
    ]
    with pytest.raises(RowsError) as info:
        parse_rows(lines, "x.jsonl")
    problems = info.value.problems
    assert [p.split(":")[0] for p in problems] == ["line 3", "line 4", "line 5"]
    rows = parse_rows(['{"text": "t", "label": "safe"}'])
    assert rows[0].kind == "unspecified" and rows[0].lang is None
    with pytest.raises(RowsError):
        parse_rows([])


def _fleet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleet.cli", "safety", "eval", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )


def test_cli_prints_per_kind_and_json(tmp_path: Path) -> None:
    data = tmp_path / "mine.jsonl"
    data.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"text": "I want to kill myself tonight", "label": "crisis", "kind": "direct"},
                {"text": "kill -9 the stuck worker", "label": "safe", "kind": "dev-chat"},
                {"text": "this meeting could kill me lol", "label": "safe", "kind": "hyperbole"},
            ]
        )
    )
    proc = _fleet(str(data))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert '"flagged" = level concern or above' in out
    assert "recall per crisis kind" in out and "direct" in out
    assert "FPR per safe kind" in out and "dev-chat" in out
    assert "gray kinds, reported apart" in out and "hyperbole" in out
    assert "imminent" in out  # the level columns
    assert "kill myself" not in out  # never the texts
    report = json.loads(_fleet(str(data), "--json").stdout)
    assert report["recall"]["rows"] == 1 and report["gray_kinds"][0]["kind"] == "hyperbole"


def test_cli_refuses_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "x", "label": "unsure"}\n')
    proc = _fleet(str(bad))
    assert proc.returncode == 2 and "line 1" in proc.stderr
    assert _fleet(str(tmp_path / "missing.jsonl")).returncode == 2


def test_bench_uses_it_with_a_file_argument(tmp_path: Path) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text(
        json.dumps({"text": "I want to kill myself", "label": "crisis", "kind": "direct"})
        + "\n"
        + json.dumps({"text": "restart the worker", "label": "safe", "kind": "dev-chat"})
    )
    proc = subprocess.run(
        [sys.executable, "bench/crisis_quality.py", str(data), "--verbose"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "2 rows (1 crisis, 1 safe)" in proc.stdout and "targets (issue 11)" in proc.stdout
    assert "recall direct" in proc.stdout and "FPR dev-chat" in proc.stdout
    spec = importlib.util.spec_from_file_location(
        "crisis_quality", REPO / "bench" / "crisis_quality.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.DEFAULT == REPO / "tools" / "safety" / "blind" / "crisis-blind-v1.jsonl"
