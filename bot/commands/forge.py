"""Room commands that act on Gitea: `!project`, `!issue`, `!issues`, `!close`, `!comment`.

In a project room every command acts on that project's repo. Each failure is one clear
line, and nothing is half-done: a command either did all of its Gitea writes or says which
one failed.
"""

from __future__ import annotations

import re

from bot.commands import CommandContext, CommandRegistry, UsageError
from bot.pipeline.parse import split_flags
from fleetcore.forge.client import GiteaClient, GiteaError, GiteaUnavailable, NotFound
from fleetcore.projects import REPO_RE, Project, ProjectStore

ISSUE_REF = re.compile(r"^#?(\d{1,9})$")
PAGE_SIZE = 20


def _issue_number(word: str) -> int:
    m = ISSUE_REF.match(word)
    if not m:
        raise UsageError(f"`{word}` is not an issue number (write #12).")
    return int(m.group(1))


def _gitea_error(exc: GiteaError) -> str:
    if isinstance(exc, GiteaUnavailable):
        return f"Gitea is not reachable right now ({exc}). Nothing was changed."
    return f"Gitea refused: {exc}"


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

    @registry.add(
        "project",
        "!project add NAME owner/repo | !project list",
        "create an encrypted room for a Gitea repo, or list projects",
    )
    async def _project(ctx: CommandContext) -> str:
        args = ctx.cmd.args()
        if not args or args[0] == "list":
            rows = projects.all()
            if not rows:
                return "No projects yet. `!project add NAME owner/repo` creates one."
            return "\n".join(
                [f"{len(rows)} project(s):"]
                + [f"- {p.name}: {p.repo} in {p.room_id or '(no room)'}" for p in rows]
            )
        if args[0] != "add" or len(args) != 3:
            raise UsageError("Give a name and a repo.")
        name, repo = args[1], args[2]
        if not REPO_RE.match(repo):
            raise UsageError(f"`{repo}` is not owner/name.")
        if projects.get(name) is not None:
            return f"Project {name} already exists."
        owner, repo_name = repo.split("/", 1)
        try:
            await gitea.get_repo(owner, repo_name)
        except NotFound:
            return f"Gitea has no repo {repo} (or the token cannot see it). Nothing was created."
        except GiteaError as exc:
            return _gitea_error(exc)
        services = ctx.services
        room_id = await services.matrix.create_room(
            name=name,
            topic=f"{gitea_url.rstrip('/')}/{repo}",
            invite=[op for op in services.config.operators if op != services.matrix.nio.user_id],
        )
        projects.add(Project(name, repo, room_id))
        return f"Created project {name} for {repo}: room {room_id} (operators invited)."

    @registry.add(
        "issue",
        "!issue Title [--label X]  (body on the following lines)",
        "open a Gitea issue in this room's repo",
    )
    async def _issue(ctx: CommandContext) -> str:
        project = project_of(ctx)
        words = ctx.cmd.argline
        label = "ready"
        m = re.search(r"(?:^|\s)--label\s+(\S+)\s*$", words)
        if m:
            label = m.group(1)
            words = words[: m.start()]
        title = words.strip()
        if not title:
            raise UsageError("The issue needs a title.")
        owner, repo = project.owner_repo
        try:
            issue = await gitea.create_issue(owner, repo, title, ctx.cmd.body, labels=[label])
        except GiteaError as exc:
            return _gitea_error(exc)
        return f"Opened #{issue.number}: {issue.title}\n{issue.html_url}"

    @registry.add(
        "issues",
        "!issues [open|closed] [--label X] [--page N]",
        "list this room's repo issues",
    )
    async def _issues(ctx: CommandContext) -> str:
        project = project_of(ctx)
        try:
            pos, flags = split_flags(ctx.cmd.args(), {"label", "page"})
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        state = pos[0] if pos else "open"
        if state not in ("open", "closed") or len(pos) > 1:
            raise UsageError("State is open or closed.")
        page = int(flags.get("page", "1")) if flags.get("page", "1").isdigit() else 0
        if page < 1:
            raise UsageError("--page takes a positive number.")
        labels = [flags["label"]] if "label" in flags else None
        owner, repo = project.owner_repo
        try:
            result = await gitea.list_issues_page(
                owner, repo, state=state, labels=labels, page=page, limit=PAGE_SIZE
            )
        except GiteaError as exc:
            return _gitea_error(exc)
        if not result.items:
            return f"No {state} issues" + (f" labelled {labels[0]}." if labels else ".")
        pages = max(1, -(-result.total // PAGE_SIZE))
        lines = [f"{state.capitalize()} issues in {project.repo} (page {page}/{pages}):"]
        lines += [f"- #{i.number} {i.title}" for i in result.items]
        if page < pages:
            lines.append(f"More: `!issues {state} --page {page + 1}`")
        return "\n".join(lines)

    @registry.add("close", "!close #N [reason]", "close an issue, with an optional comment")
    async def _close(ctx: CommandContext) -> str:
        project = project_of(ctx)
        args = ctx.cmd.argline.split(maxsplit=1)
        if not args:
            raise UsageError("Which issue?")
        number = _issue_number(args[0])
        reason = args[1].strip() if len(args) > 1 else ""
        owner, repo = project.owner_repo
        try:
            await gitea.get_issue(owner, repo, number)
            if reason:
                await gitea.create_comment(owner, repo, number, reason)
            await gitea.edit_issue(owner, repo, number, state="closed")
        except NotFound:
            return f"{project.repo} has no issue #{number}."
        except GiteaError as exc:
            return _gitea_error(exc)
        return f"Closed #{number}" + (" with your comment." if reason else ".")

    @registry.add("comment", "!comment #N text", "comment on an issue")
    async def _comment(ctx: CommandContext) -> str:
        project = project_of(ctx)
        args = ctx.cmd.argline.split(maxsplit=1)
        if len(args) < 2 and not ctx.cmd.body:
            raise UsageError("Give the issue and the text.")
        number = _issue_number(args[0])
        text = "\n".join(t for t in (args[1] if len(args) > 1 else "", ctx.cmd.body) if t)
        owner, repo = project.owner_repo
        try:
            comment = await gitea.create_comment(owner, repo, number, text)
        except NotFound:
            return f"{project.repo} has no issue #{number}."
        except GiteaError as exc:
            return _gitea_error(exc)
        return f"Commented on #{number}: {comment.html_url or ''}".rstrip(": ")
