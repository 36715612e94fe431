"""The forge area of the bot: client, projects, room commands, webhook receiver, health.

Assembled by `BotApp` only when `gitea:` is configured, so a fleet without a forge has no
forge commands in `!help` and `!status` says `gitea: not configured`.
"""

from __future__ import annotations

import logging

from bot.commands import CommandRegistry
from bot.commands import forge as forge_commands
from bot.forge.webhooks import Dispatcher, Outbox, Send, WebhookReceiver, WebhookServer
from bot.matrix.client import MatrixShell
from bot.services import BotServices
from fleetcore.config import FleetConfig
from fleetcore.forge.client import GiteaClient, GiteaError, client_from_config
from fleetcore.log import fields
from fleetcore.projects import ProjectStore, project_store

log = logging.getLogger("hermes.forge")


class ForgeArea:
    """Built whole by `open`: rooms resolved, private repos known, webhook listening."""

    def __init__(
        self,
        cfg: FleetConfig,
        client: GiteaClient,
        projects: ProjectStore,
        private_repos: set[str],
        webhooks: WebhookServer | None,
        outbox: Outbox | None,
    ) -> None:
        self.cfg = cfg
        self.client = client
        self.projects = projects
        self.private_repos = private_repos
        self.webhooks = webhooks  # None: no `webhook:` configured
        self.outbox = outbox

    @classmethod
    async def open(cls, cfg: FleetConfig, matrix: MatrixShell) -> ForgeArea:
        """Resolve configured room aliases, learn which repos are private, open the webhook."""
        assert cfg.gitea is not None
        client = client_from_config(cfg)
        projects = project_store(cfg)
        outbox = None
        try:
            private_repos = await _private_repos(client, projects, matrix)
            hook = cfg.gitea.webhook
            webhooks = None
            if hook is not None:
                try:
                    own_login: str | None = await client.whoami()
                except GiteaError as exc:
                    log.warning("gitea_whoami_failed", extra=fields(error=str(exc)))
                    own_login = None
                outbox = Outbox(cfg.bot_dir / "webhooks.db")
                dispatcher = Dispatcher(outbox, _sender(matrix), hook.batch_window_s)
                receiver = WebhookReceiver(
                    hook.secret.get(),
                    projects,
                    outbox,
                    dispatcher,
                    own_login,
                    read_timeout_s=hook.read_timeout_s,
                )
                webhooks = WebhookServer(receiver, hook.host, hook.port)
                await webhooks.start()
        except BaseException:
            if outbox is not None:
                outbox.close()
            await client.aclose()
            raise
        return cls(cfg, client, projects, private_repos, webhooks, outbox)

    def register(self, registry: CommandRegistry, services: BotServices) -> None:
        assert self.cfg.gitea is not None
        forge_commands.register(registry, self.client, self.projects, self.cfg.gitea.url)
        services.health["gitea"] = self.health
        services.extras["gitea"] = self.client
        services.extras["projects"] = self.projects

    def is_sensitive_room(self, room_id: str) -> bool:
        """Local-only projects and private repos never reach a provider that logs prompts."""
        project = self.projects.for_room(room_id)
        if project is None:
            return False
        return project.sensitive or project.repo.lower() in self.private_repos

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


async def _private_repos(
    client: GiteaClient, projects: ProjectStore, matrix: MatrixShell
) -> set[str]:
    private = set()
    for project in projects.all():
        if project.room_id and project.room_id.startswith("#"):
            resp = await matrix.nio.room_resolve_alias(project.room_id)
            room_id = getattr(resp, "room_id", None)
            if room_id:
                projects.resolve_room(project.room_id, room_id)
            else:
                log.warning("project_room_unresolved", extra=fields(project=project.name))
        owner, name = project.owner_repo
        try:
            if (await client.get_repo(owner, name)).private:
                private.add(project.repo.lower())
        except GiteaError as exc:
            log.warning(
                "project_repo_unchecked", extra=fields(project=project.name, error=str(exc))
            )
    return private


def _sender(matrix: MatrixShell) -> Send:
    async def send(room_id: str, text: str, txn_id: str) -> bool:
        return await matrix.sender.text(room_id, text, txn_id) is not None

    return send
