"""The forge area of the bot: client, projects, room commands, webhook receiver, health.

Assembled by `BotApp` only when `gitea:` is configured, so a fleet without a forge has no
forge commands in `!help` and `!status` says `gitea: not configured`.
"""

from __future__ import annotations

import logging

from bot.commands import CommandRegistry
from bot.commands import forge as forge_commands
from bot.forge.webhooks import Dispatcher, Outbox, WebhookReceiver, WebhookServer
from bot.matrix.client import MatrixShell
from bot.pipeline.message import Reply
from bot.services import BotServices
from fleetcore.config import FleetConfig
from fleetcore.forge.client import GiteaError, client_from_config
from fleetcore.log import fields
from fleetcore.projects import project_store

log = logging.getLogger("hermes.forge")


class ForgeArea:
    def __init__(self, cfg: FleetConfig, matrix: MatrixShell) -> None:
        assert cfg.gitea is not None
        self.cfg = cfg
        self.matrix = matrix
        self.client = client_from_config(cfg)
        self.projects = project_store(cfg)
        self.private_repos: set[str] = set()
        self.webhooks: WebhookServer | None = None
        self.outbox: Outbox | None = None

    def register(self, registry: CommandRegistry, services: BotServices) -> None:
        assert self.cfg.gitea is not None
        forge_commands.register(registry, self.client, self.projects, self.cfg.gitea.url)
        services.health["gitea"] = self.health
        services.extras["gitea"] = self.client
        services.extras["projects"] = self.projects

    async def start(self) -> None:
        """Resolve configured room aliases, learn which repos are private, open the webhook."""
        for project in self.projects.all():
            if project.room_id and project.room_id.startswith("#"):
                resp = await self.matrix.nio.room_resolve_alias(project.room_id)
                room_id = getattr(resp, "room_id", None)
                if room_id:
                    self.projects.resolve_room(project.room_id, room_id)
                else:
                    log.warning("project_room_unresolved", extra=fields(project=project.name))
            owner, name = project.owner_repo
            try:
                if (await self.client.get_repo(owner, name)).private:
                    self.private_repos.add(project.repo.lower())
            except GiteaError as exc:
                log.warning(
                    "project_repo_unchecked", extra=fields(project=project.name, error=str(exc))
                )
        hook = self.cfg.gitea.webhook if self.cfg.gitea else None
        if hook is not None:
            self.outbox = Outbox(self.cfg.bot_dir / "webhooks.db")
            dispatcher = Dispatcher(self.outbox, self._send, hook.batch_window_s)
            receiver = WebhookReceiver(hook.secret.get(), self.projects, self.outbox, dispatcher)
            try:
                receiver.own_login = await self.client.whoami()
            except GiteaError as exc:
                log.warning("gitea_whoami_failed", extra=fields(error=str(exc)))
            self.webhooks = WebhookServer(receiver, hook.host, hook.port)
            await self.webhooks.start()

    def is_sensitive_room(self, room_id: str) -> bool:
        """Local-only projects and private repos never reach a provider that logs prompts."""
        project = self.projects.for_room(room_id)
        if project is None:
            return False
        return project.sensitive or project.repo.lower() in self.private_repos

    async def _send(self, room_id: str, text: str, txn_id: str) -> bool:
        return await self.matrix.send(Reply(room_id, text), txn_id=txn_id) is not None

    async def health(self) -> tuple[bool, str]:
        try:
            version = await self.client.version()
        except GiteaError as exc:
            return False, str(exc)
        return True, f"Gitea {version}"

    async def close(self) -> None:
        if self.webhooks is not None:
            await self.webhooks.stop()
        if self.outbox is not None:
            self.outbox.close()
        await self.client.aclose()
