"""The wheel, installed into a fresh virtualenv outside the checkout, runs from anywhere.

What a user gets from `pip install hermes-fleet[local]`: the product packages with their data
(SOUL.md, safety-tests.md) and nothing from the tests (no stand-in, no `jsonschema`, no
`../shared`). The build happens in a copy of the sources, the virtualenv has no system
site-packages, and the commands run with the working directory in another temp directory
and the environment cleaned of the checkout (PYTHONPATH, VIRTUAL_ENV, HERMES_SHARED_DIR).

Cost, about two minutes: the dependencies come from the package index, pinned to what the
test venv runs, installed by the test venv's pip into a virtualenv made without its own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("fleet", "fleetcore", "bot", "agents")
BUILD_FILES = ("pyproject.toml", "README.md", "SOUL.md", "safety-tests.md")
_JSONSCHEMA = re.compile(r"^\s*(import|from)\s+jsonschema\b", re.MULTILINE)


def _run(
    args: list[str],
    *,
    timeout: float,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        args,
        cwd=cwd,
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, (
        f"{' '.join(args[:4])} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    )
    return proc


def _copy_sources(dst: Path) -> None:
    dst.mkdir()
    for name in BUILD_FILES:
        shutil.copy2(REPO / name, dst / name)
    for package in PACKAGES:
        shutil.copytree(
            REPO / package,
            dst / package,
            symlinks=True,  # fleetcore/data/*.md link to the root files, copied just above
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )


def _constraints(path: Path) -> Path:
    """The versions the test venv runs, so the wheel is tried with what the suite tried."""
    frozen = _run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"], timeout=120).stdout
    lines = [line for line in frozen.splitlines() if "==" in line and " @ " not in line]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.timeout(900)
def test_the_wheel_runs_fleet_demo_and_safety_screen_outside_the_checkout(
    tmp_path: Path,
) -> None:
    src, dist, venv, elsewhere = (tmp_path / n for n in ("src", "dist", "venv", "elsewhere"))
    _copy_sources(src)
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)],
        timeout=300,
    )
    (wheel,) = dist.glob("hermes_fleet-*.whl")

    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        tops = {n.split("/", 1)[0] for n in names}
        assert tops - {w for w in tops if w.endswith(".dist-info")} == set(PACKAGES)
        assert not [n for n in names if "fleettest" in n or n.startswith("tests/")]
        for name in ("SOUL.md", "safety-tests.md"):  # real copies, not links
            assert whl.read(f"fleetcore/data/{name}") == (REPO / name).read_bytes(), name
        assert "fleet/sandbox/forge.py" in names and "fleet/sandbox/model.py" in names
        # jsonschema comes with matrix-nio and Synapse, but the fleet's own code neither
        # imports it nor reads ../shared (the stand-in's swagger) at run time.
        sources = {n: whl.read(n).decode() for n in names if n.endswith(".py")}
        assert not [n for n, text in sources.items() if re.search(_JSONSCHEMA, text)]
        assert not [n for n, t in sources.items() if "HERMES_SHARED_DIR" in t or "shared/" in t]
        metadata = whl.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
        requires = [r for r in metadata.decode().splitlines() if r.startswith("Requires-Dist")]
        assert requires and not [r for r in requires if "jsonschema" in r and "extra" not in r]

    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], timeout=120)
    assert "include-system-site-packages = false" in (venv / "pyvenv.cfg").read_text()
    python = venv / "bin" / "python"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--constraint",
            str(_constraints(tmp_path / "constraints.txt")),
            f"{wheel}[local]",
        ],
        timeout=600,
    )

    elsewhere.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "HERMES_SHARED_DIR")
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"

    probe = (
        "import importlib.util as u, fleet, fleetcore.data as d\n"
        "import fleet.cli, fleet.local.up, fleet.local.demo, fleet.sandbox.forge\n"
        "import fleet.sandbox.model, bot.app, agents.wolf\n"
        "print(fleet.__file__)\n"
        "print(u.find_spec('fleettest'))\n"
        "print(len(d.read_text(d.SAFETY_TESTS)))\n"
    )
    lines = _run([str(python), "-c", probe], cwd=elsewhere, env=env, timeout=120).stdout
    where, fleettest, tests_len = lines.splitlines()
    assert Path(where).is_relative_to(venv)
    assert fleettest == "None"  # the tests' doubles are not installed
    assert int(tests_len) == len((REPO / "safety-tests.md").read_text(encoding="utf-8"))

    fleet = str(venv / "bin" / "fleet")
    screened = _run(
        [fleet, "safety", "screen"],
        input=json.dumps({"text": "the build is dead"})
        + "\n"
        + json.dumps({"text": "I want to die"})
        + "\n",
        cwd=elsewhere,
        env=env,
        timeout=120,
    )
    verdicts = [json.loads(line) for line in screened.stdout.splitlines()]
    assert [v["is_crisis"] for v in verdicts] == [False, True]

    demo = _run(
        [fleet, "demo", "--state-dir", ".fleet"], cwd=elsewhere, env=env, timeout=300
    ).stdout
    assert "> !ping" in demo and "    pong" in demo
    assert "Opened #4: Search ignores accents" in demo and "💬 alice on #4" in demo
    assert "Burn finished" in demo and "done 4 · failed 0" in demo
    assert "gitea: ok" in demo and "SOUL.md sha256:" in demo
    state = elsewhere / ".fleet"
    assert (state / "gitea" / "forge.db").is_file()
    assert (state / "SOUL.md").read_bytes() == (REPO / "SOUL.md").read_bytes()
