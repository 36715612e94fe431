"""Room commands that act on Gitea: `!project`, `!issue`, `!issues`, `!close`, `!comment`.

In a project room every command acts on that project's repo. Each failure is one clear
line, and nothing is half-done: a command either did all of its Gitea writes or says which
one failed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from bot.commands import (
    ISSUE,
    POSITIVE,
    Arg,
    Body,
    CommandContext,
    CommandRegistry,
    Flag,
    Kind,
    Text,
    UsageError,
    choice,
    matching,
)
from fleetcore.errors import FleetError
from fleetcore.forge.client import GiteaClient, GiteaError, NotFound
from fleetcore.projects import REPO_RE, Project, ProjectStore

PAGE_SIZE = 20
# Gitea keeps an issue title in 255 bytes and cuts a longer one with "…" without a word.
TITLE_MAX_BYTES = 255


def _title(text: str) -> str:
    size = len(text.encode("utf-8"))
    if size > TITLE_MAX_BYTES:
        # Never quote it back: a pasted wall of text would fill the room.
        raise ValueError(
            f"That title is too long for Gitea ({size} bytes; it keeps at most "
            f"{TITLE_MAX_BYTES}, and accented letters and emoji count two to four). Keep the "
            "title short and put the details on the lines below it."
        )
    return text


@contextmanager
def issue_of(project: Project, number: int) -> Iterator[None]:
    """Gitea's NotFound inside, said as the room needs it: which issue is missing where."""
    try:
        yield
    except NotFound:
        raise FleetError(f"{project.repo} has no issue #{number}.") from None


TITLE: Kind[str] = Kind(_title, "Title")
REPO: Kind[str] = Kind(matching(REPO_RE), "owner/repo", "{word} is not owner/name.")
NAME: Kind[str] = Kind(str, "NAME")


def register(
    registry: CommandRegistry,
    gitea: GiteaClient,
    projects: ProjectStore,
    gitea_url: str,
) -> None:
    def project_of(ctx: CommandContext) -> Project:
        project = projects.for_room(ctx.msg.room_id)
        if project is None:
            raise UsageError(
                "This room is not a project room. Use `!project add NAME owner/repo` "
                "to create one, or run the command in a project's room."
            )
        return project

    project = registry.group(
        "project", "create an encrypted room for a Gitea repo, or list projects", when_empty="list"
    )

    @project.command(
        "add",
        "create an encrypted room for a Gitea repo and invite the operators",
        Arg("name", NAME, missing="Give a name and a repo."),
        Arg("repo", REPO, missing="Give a name and a repo."),
    )
    async def _project_add(ctx: CommandContext, name: str, repo: str) -> str:
        if projects.get(name) is not None:
            return f"Project {name} already exists."
        owner, repo_name = repo.split("/", 1)
        try:
            await gitea.get_repo(owner, repo_name)
        except NotFound:
            return f"Gitea has no repo {repo} (or the token cannot see it). Nothing was created."
        services = ctx.services
        room_id = await services.matrix.create_room(
            name=name,
            topic=f"{gitea_url.rstrip('/')}/{repo}",
            invite=[op for op in services.config.operators if op != services.matrix.nio.user_id],
        )
        projects.add(Project(name, repo, room_id))
        return f"Created project {name} for {repo}: room {room_id} (operators invited)."

    @project.command("list", "list the projects and their rooms")
    async def _project_list(ctx: CommandContext) -> str:
        rows = projects.all()
        if not rows:
            return "No projects yet. `!project add NAME owner/repo` creates one."
        return "\n".join(
            [f"{len(rows)} project(s):"]
            + [f"- {p.name}: {p.repo} in {p.room_id or '(no room)'}" for p in rows]
        )

    @registry.command(
        "issue",
        "open a Gitea issue in this room's repo",
        Text("title", TITLE, missing="The issue needs a title."),
        Flag("label", default="ready", metavar="X"),
        Body("body"),
    )
    async def _issue(ctx: CommandContext, title: str, label: str, body: str) -> str:
        owner, repo = project_of(ctx).owner_repo
        issue = await gitea.create_issue(owner, repo, title, body, labels=[label])
        return f"Opened #{issue.number}: {issue.title}\n{issue.html_url}"

    @registry.command(
        "issues",
        "list this room's repo issues",
        Arg("state", choice("open", "closed"), default="open"),
        Flag("label", metavar="X"),
        Flag("page", POSITIVE, default=1),
    )
    async def _issues(ctx: CommandContext, state: str, label: str | None, page: int) -> str:
        project = project_of(ctx)
        owner, repo = project.owner_repo
        labels = [label] if label else None
        result = await gitea.list_issues_page(
            owner, repo, state=state, labels=labels, page=page, limit=PAGE_SIZE
        )
        if not result.items:
            return f"No {state} issues" + (f" labelled {label}." if label else ".")
        pages = max(1, -(-result.total // PAGE_SIZE))
        lines = [f"{state.capitalize()} issues in {project.repo} (page {page}/{pages}):"]
        lines += [f"- #{i.number} {i.title}" for i in result.items]
        if page < pages:
            also = f" --label {label}" if label else ""
            lines.append(f"More: `!issues {state}{also} --page {page + 1}`")
        return "\n".join(lines)

    @registry.command(
        "close",
        "close an issue, with an optional comment",
        Arg("number", ISSUE, missing="Which issue?"),
        Text("reason", default="", metavar="reason", with_body=True),
    )
    async def _close(ctx: CommandContext, number: int, reason: str) -> str:
        project = project_of(ctx)
        owner, repo = project.owner_repo
        with issue_of(project, number):
            await gitea.get_issue(owner, repo, number)
            if reason:
                await gitea.create_comment(owner, repo, number, reason)
        try:
            await gitea.edit_issue(owner, repo, number, state="closed")
        except GiteaError as exc:
            if not reason:
                raise
            # Half done: say which half, not "nothing was changed".
            raise FleetError(f"Commented on #{number}, but Gitea did not close it: {exc}") from exc
        return f"Closed #{number}" + (" with your comment." if reason else ".")

    @registry.command(
        "comment",
        "comment on an issue",
        Arg("number", ISSUE, missing="Give the issue and the text."),
        Text("text", missing="Give the issue and the text.", metavar="text", with_body=True),
    )
    async def _comment(ctx: CommandContext, number: int, text: str) -> str:
        project = project_of(ctx)
        owner, repo = project.owner_repo
        with issue_of(project, number):
            comment = await gitea.create_comment(owner, repo, number, text)
        return f"Commented on #{number}: {comment.html_url or ''}".rstrip(": ")
