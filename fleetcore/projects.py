"""Projects: a name, a Gitea repo and the Matrix room where its work is discussed.

Projects come from the config and from `!project add`; the added ones are persisted (JSON,
0600) so a restart keeps them. A room maps to at most one project, which is how commands
in a project room act on its repo without naming it.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fleetcore.secrets import write_private

if TYPE_CHECKING:
    from fleetcore.config import FleetConfig

REPO_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Project:
    name: str
    repo: str
    room_id: str | None
    privacy: str = "normal"

    @property
    def owner_repo(self) -> tuple[str, str]:
        owner, _, name = self.repo.partition("/")
        return owner, name

    @property
    def sensitive(self) -> bool:
        return self.privacy == "local-only"


class ProjectStore:
    def __init__(self, path: Path, configured: dict[str, Project]) -> None:
        self._path = path
        self._configured = dict(configured)
        self._added: dict[str, Project] = {}
        if path.exists():
            for item in json.loads(path.read_text(encoding="utf-8")):
                project = Project(**item)
                self._added[project.name] = project

    def all(self) -> list[Project]:
        merged = {**self._added, **self._configured}
        return sorted(merged.values(), key=lambda p: p.name)

    def get(self, name: str) -> Project | None:
        return self._configured.get(name) or self._added.get(name)

    def for_room(self, room_id: str) -> Project | None:
        for project in self.all():
            if project.room_id == room_id:
                return project
        return None

    def by_repo(self, repo: str) -> list[Project]:
        return [p for p in self.all() if p.repo.lower() == repo.lower()]

    def add(self, project: Project) -> None:
        if not NAME_RE.match(project.name):
            raise ValueError("project names use letters, digits, - and _ (at most 64)")
        if not REPO_RE.match(project.repo):
            raise ValueError("the repo must be owner/name")
        if self.get(project.name) is not None:
            raise ValueError(f"project {project.name} already exists")
        self._added[project.name] = project
        write_private(self._path, json.dumps([asdict(p) for p in self._added.values()], indent=1))

    def resolve_room(self, alias_or_id: str, room_id: str) -> None:
        """Config may name a room by alias; once resolved, remember its id in memory."""
        for name, project in self._configured.items():
            if project.room_id == alias_or_id:
                self._configured[name] = Project(
                    project.name, project.repo, room_id, project.privacy
                )


def project_store(cfg: FleetConfig) -> ProjectStore:
    configured = {
        name: Project(name, p.repo, p.room, p.privacy) for name, p in cfg.projects.items()
    }
    return ProjectStore(cfg.bot_dir / "projects.json", configured)
