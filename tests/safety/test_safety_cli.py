"""`fleet safety screen`: JSON lines in, one verdict per line out, errors in place."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from fleetcore.safety.cli import screen_main

REPO = Path(__file__).resolve().parents[2]


def _run(monkeypatch: pytest.MonkeyPatch, data: str, argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdin", io.StringIO(data))
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    rc = screen_main(argv)
    return rc, out.getvalue(), err.getvalue()


def test_json_lines_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    data = (
        "\n".join(
            json.dumps({"text": t}) for t in ["kill -9 1234", "I want to die", "Je veux mourir"]
        )
        + "\n"
    )
    rc, out, err = _run(monkeypatch, data, [])
    lines = [json.loads(x) for x in out.splitlines()]
    assert rc == 0 and err == ""
    assert [x["is_crisis"] for x in lines] == [False, True, True]
    assert set(lines[1]) == {"is_crisis", "level", "reasons"}
    assert lines[1]["level"] in ("crisis", "imminent") and lines[1]["reasons"]


def test_bad_lines_reported_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    data = '{"text": "hello"}\nnot json\n{"nope": 1}\n{"text": "I want to die"}\n'
    rc, out, err = _run(monkeypatch, data, [])
    lines = [json.loads(x) for x in out.splitlines()]
    assert rc == 1
    assert len(lines) == 4
    assert "error" in lines[1] and lines[1]["line"] == 2
    assert "error" in lines[2] and lines[2]["line"] == 3
    assert lines[3]["is_crisis"] is True
    assert "line 2" in err and "line 3" in err


def test_plain_mode_subprocess() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "fleetcore.safety.cli", "--plain"],
        input="the build is dead\ni w a n t t o d i e\n",
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [x["is_crisis"] for x in lines] == [False, True]
