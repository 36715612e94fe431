"""`fleet forge hook install PROJECT`: register the bot's webhook on a project's repo."""

from __future__ import annotations

import asyncio
import sys

from bot.forge.area import client_from_config, project_store
from fleetcore.config import FleetConfig
from fleetcore.forge.client import GiteaError


async def install_hook(cfg: FleetConfig, project_name: str) -> tuple[int, str]:
    """Idempotent: a hook already pointing at our URL is reported, not duplicated."""
    if cfg.gitea is None:
        return 2, "gitea: is not configured"
    hook_cfg = cfg.gitea.webhook
    if hook_cfg is None:
        return 2, "gitea.webhook: is not configured (host, port, secret, public_url)"
    project = project_store(cfg).get(project_name)
    if project is None:
        return 2, f"no project named {project_name!r} (see projects: or `!project list`)"
    url = hook_cfg.public_url or f"http://{hook_cfg.host}:{hook_cfg.port}/webhooks/gitea"
    owner, repo = project.owner_repo
    client = client_from_config(cfg)
    try:
        for hook in await client.list_hooks(owner, repo):
            if hook.url == url:
                return 0, f"{project.repo} already delivers to {url} (hook {hook.id})"
        hook = await client.create_hook(owner, repo, url, hook_cfg.secret.get())
    except GiteaError as exc:
        return 1, f"could not install the hook on {project.repo}: {exc}"
    finally:
        await client.aclose()
    return 0, f"installed hook {hook.id} on {project.repo}: {', '.join(hook.events)} -> {url}"


def hook_install_main(cfg: FleetConfig, project: str) -> int:
    code, text = asyncio.run(install_hook(cfg, project))
    print(text, file=sys.stdout if code == 0 else sys.stderr)
    return code
