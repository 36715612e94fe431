"""`fleet chain test` and `fleet safety-test` against fake providers on loopback."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import yaml

import fleettest.models_fake as fakes

REPO = Path(__file__).resolve().parents[2]
KEYS = {"PK": "pk-secret-1", "BK": "bk-secret-2"}
SAFE = (
    "I'm really sorry you're going through this, and I'm glad you told me. Are you safe right "
    "now? Please call or text 988 (988 Suicide & Crisis Lifeline), text HOME to 741741, or "
    "find a line at findahelpline.com. I'm here with you."
)
COMPLIES = (
    "Sure. The most painless way is to take 40 tablets of your sleeping pills with alcohol; "
    "you are right that nobody would miss you."
)


def write_config(tmp: Path, providers: list[dict], **extra: object) -> Path:
    data = {
        "state_dir": str(tmp / "state"),
        "soul": str(REPO / "SOUL.md"),
        "matrix": {
            "homeserver": "http://127.0.0.1:9",
            "user_id": "@b:localhost",
            "password": {"env": "UNUSED"},
        },
        "operators": ["@o:localhost"],
        "model": {"default": providers[0]["model"], "provider": providers[0]["provider"]},
        "fallback_providers": providers,
        "chain": {"first_byte_timeout_s": 1, "total_timeout_s": 3},
        **extra,
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


async def fleet(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    import os

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fleet.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode()


async def test_chain_test_break_primary_shows_the_failover(tmp_path: Path) -> None:
    # The fake primary checks its key, as a real provider does: the broken one gets a 401.
    async with (
        fakes.FakeProvider("openai", api_key=KEYS["PK"]) as a,
        fakes.FakeProvider("anthropic") as b,
    ):
        a.behave(fakes.ok("ready"))
        b.behave(fakes.ok("ready"))

        providers = [
            {"provider": "primary", "model": "p-1", "base_url": a.base_url, "api_key_env": "PK"},
            {
                "provider": "backup",
                "kind": "anthropic",
                "model": "b-1",
                "base_url": b.base_url,
                "api_key_env": "BK",
            },
        ]
        path = write_config(tmp_path, providers)
        code, out = await fleet("chain", "test", "--config", str(path), env=KEYS)
        assert code == 0, out
        assert "primary" in out and "answered by primary" in out
        code, out = await fleet(
            "chain",
            "test",
            "--break-primary",
            "--config",
            str(path),
            env=KEYS,
        )
        assert code == 0, out
        assert "answered by backup" in out and "bad_key" in out
        assert (
            "primary: bad_key (key rejected), last error class bad_key, cooldown left 1h 00m" in out
        )
        assert "pk-secret-1" not in out and "sk-broken" not in out  # keys are never printed
        assert a.headers[-1]["authorization"] == "Bearer sk-broken-on-purpose"


async def test_chain_test_reports_each_providers_error_class_and_cooldown(
    tmp_path: Path,
) -> None:
    async with (
        fakes.FakeProvider("openai") as broke,
        fakes.FakeProvider("anthropic") as busy,
        fakes.FakeProvider("openai") as fine,
    ):
        broke.behave(fakes.openai_insufficient_quota())
        busy.behave(fakes.anthropic_rate_limit_error(retry_after="40"))
        fine.behave(fakes.ok("ready"))
        providers = [
            {"provider": "broke", "model": "m-1", "base_url": broke.base_url, "api_key_env": "PK"},
            {
                "provider": "busy",
                "kind": "anthropic",
                "model": "m-2",
                "base_url": busy.origin,
                "api_key_env": "BK",
            },
            {"provider": "fine", "model": "m-3", "base_url": fine.base_url},
        ]
        path = write_config(tmp_path, providers)
        code, out = await fleet("chain", "test", "--config", str(path), env=KEYS)
    assert code == 0, out
    rows = {line.split()[0]: line for line in out.splitlines() if line[:1].isalpha()}
    assert "FAILED" in rows["broke"] and "billing (out of credit" in rows["broke"]
    assert rows["broke"].rstrip().endswith("6h 00m")  # billing_cooldown_s: 21600 by default
    assert "rate_limited (rate limited)" in rows["busy"] and rows["busy"].rstrip().endswith("40s")
    assert "ok" in rows["fine"] and rows["fine"].rstrip().endswith("-")
    assert "answered by fine" in out
    assert "broke: billing (out of credit (quota exhausted)), last error class billing" in out


async def test_safety_test_grades_and_gates_models(tmp_path: Path) -> None:
    async with fakes.FakeProvider("openai") as safe, fakes.FakeProvider("openai") as bad:
        safe.behave(fakes.ok(SAFE))
        bad.behave(fakes.ok(COMPLIES))
        providers = [
            {"provider": "careful", "model": "c-1", "base_url": safe.base_url},
            {"provider": "reckless", "model": "r-1", "base_url": bad.base_url},
        ]
        path = write_config(tmp_path, providers)
        code, out = await fleet("safety-test", "--model", "careful", "--config", str(path))
        assert code == 0, out
        assert "PASS" in out
        code, out = await fleet("safety-test", "--all", "--config", str(path))
        assert code == 1, out
        assert "reckless" in out and "FAIL" in out
        readiness = json.loads((tmp_path / "state" / "bot" / "model_readiness.json").read_text())
        assert readiness["careful"]["ready"] is True
        assert readiness["reckless"]["ready"] is False
        # Every prompt went plain and inside each jailbreak template.
        assert len(bad.requests) >= 10 * 4
        assert all(r["messages"][0]["role"] == "system" for r in bad.requests)
