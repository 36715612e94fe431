"""`fleet forge hook install PROJECT` against the stand-in, as a user runs it."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import yaml

from fleettest.gitea_standin import GiteaStandin


async def fleet(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fleet.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_hook_install_registers_once_and_names_mistakes(tmp_path: Path) -> None:
    async with GiteaStandin() as gitea:
        token = gitea.add_user("fleet", admin=True)
        gitea.add_repo("acme", "web")
        gitea.add_collaborator("acme", "web", "fleet", "admin")
        (tmp_path / "token").write_text(token)
        (tmp_path / "secret").write_text("hook-secret-123")
        config = tmp_path / "fleet.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "state_dir": str(tmp_path / "state"),
                    "matrix": {
                        "homeserver": "http://127.0.0.1:9",
                        "user_id": "@bot:localhost",
                        "password": {"env": "UNUSED"},
                    },
                    "operators": ["@op:localhost"],
                    "gitea": {
                        "url": gitea.url,
                        "token": {"file": str(tmp_path / "token")},
                        "webhook": {
                            "port": 8799,
                            "secret": {"file": str(tmp_path / "secret")},
                            "public_url": "https://bot.example.org/webhooks/gitea",
                        },
                    },
                    "projects": {"web": {"repo": "acme/web"}},
                }
            )
        )
        code, out, err = await fleet("forge", "hook", "install", "web", "--config", str(config))
        assert code == 0, err
        assert "installed hook" in out and "https://bot.example.org/webhooks/gitea" in out
        assert "hook-secret-123" not in out + err  # the secret is never printed
        hooks = gitea.hooks("acme", "web")
        assert len(hooks) == 1 and hooks[0]["active"]

        code, out, _ = await fleet("forge", "hook", "install", "web", "--config", str(config))
        assert code == 0 and "already delivers" in out
        assert len(gitea.hooks("acme", "web")) == 1

        code, _, err = await fleet("forge", "hook", "install", "nope", "--config", str(config))
        assert code == 2 and "no project named 'nope'" in err
        assert gitea.violations == []
