"""Agents' own Gitea accounts (issue #13) through the fleet's client, against the stand-in that
holds every request and response to Gitea's swagger: users made by the admin, tokens minted
with the admin's basic auth and held to their scopes, collaborators, disabling, revoking."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fleet.sandbox.forge import SandboxForge
from fleetcore.forge.accounts import (
    AGENT_SCOPES,
    AccountConflict,
    agent_full_name,
    check_agent_forge,
    provision_agent_forge,
    revoke_agent_forge,
)
from fleetcore.forge.client import (
    AlreadyExists,
    Forbidden,
    GiteaClient,
    Invalid,
    LoginProhibited,
    MissingScope,
    NotFound,
    Unauthorized,
)
from fleetcore.forge.scopes import InvalidScope, grants, normalize_scopes
from fleettest.gitea_standin import GiteaStandin

ADMIN = ("fleet", "admin-pass-123")
REPO = ("acme", "web")


@pytest.fixture
async def gitea() -> AsyncIterator[GiteaStandin]:
    async with GiteaStandin() as g:
        yield g
        assert g.violations == [], g.violations


@pytest.fixture
async def admin(gitea: GiteaStandin) -> AsyncIterator[GiteaClient]:
    token = gitea.add_user(ADMIN[0], password=ADMIN[1], admin=True)
    gitea.add_repo(*REPO, private=True)
    c = GiteaClient(gitea.url, token, retries=1, backoff_s=0.01)
    yield c
    await c.aclose()


class Agents:
    """Clients carrying agents' tokens, closed at the end of the test."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.clients: list[GiteaClient] = []

    def __call__(self, token: str) -> GiteaClient:
        c = GiteaClient(self.url, token, retries=0)
        self.clients.append(c)
        return c


@pytest.fixture
async def agents(gitea: GiteaStandin) -> AsyncIterator[Agents]:
    made = Agents(gitea.url)
    yield made
    for c in made.clients:
        await c.aclose()


async def _agent_user(admin: GiteaClient, name: str = "wolf-1") -> None:
    await admin.admin_create_user(
        name, f"{name}@fleet.invalid", "agent-pass-123", full_name=agent_full_name(name)
    )


# ---- the client, step by step ------------------------------------------------------------------


async def test_an_agent_comments_and_labels_as_itself(
    gitea: GiteaStandin, admin: GiteaClient, agents: Agents
) -> None:
    user = await admin.admin_create_user("wolf-1", "wolf-1@fleet.invalid", "agent-pass-123")
    assert (user.login, user.is_admin, user.active, user.prohibit_login) == (
        "wolf-1",
        False,
        True,
        False,
    )
    token = await admin.create_token("wolf-1", "hermes-fleet", AGENT_SCOPES, basic_auth=ADMIN)
    assert token.secret and token.secret.endswith(token.last_eight)
    assert token.scopes == ("write:issue", "read:repository", "read:user")  # Gitea's order
    assert await admin.collaborator_permission(*REPO, "wolf-1") == "none"
    assert not await admin.is_collaborator(*REPO, "wolf-1")
    await admin.add_collaborator(*REPO, "wolf-1", "write")
    assert await admin.collaborator_permission(*REPO, "wolf-1") == "write"
    assert await admin.is_collaborator(*REPO, "wolf-1")

    n = gitea.add_issue(*REPO, "task")
    wolf = agents(token.secret)
    assert await wolf.whoami() == "wolf-1"
    comment = await wolf.create_comment(*REPO, n, "on it")
    assert comment.user == "wolf-1"
    await wolf.add_labels(*REPO, n, ["triaged", "assigned:wolf-1"])  # created by the wolf
    stored = gitea.issue(*REPO, n)
    assert stored["comments"][0]["user"] == "wolf-1"
    assert sorted(stored["labels"]) == ["assigned:wolf-1", "triaged"]
    assert await wolf.remove_label(*REPO, n, "assigned:wolf-1")
    # The token reads the repo but cannot act on it as a repository writer.
    assert (await wolf.get_repo(*REPO)).private
    with pytest.raises(MissingScope):
        await wolf.add_collaborator(*REPO, "wolf-1", "admin")


async def test_a_missing_scope_is_a_typed_403(
    gitea: GiteaStandin, admin: GiteaClient, agents: Agents
) -> None:
    await _agent_user(admin)
    await admin.add_collaborator(*REPO, "wolf-1", "write")
    n = gitea.add_issue(*REPO, "task")
    reader = await admin.create_token(
        "wolf-1", "reader", ["read:issue", "read:user"], basic_auth=ADMIN
    )
    wolf = agents(reader.secret)
    assert await wolf.list_comments(*REPO, n) == []
    with pytest.raises(MissingScope, match="write:issue") as caught:
        await wolf.create_comment(*REPO, n, "not allowed")
    assert caught.value.status == 403
    assert isinstance(caught.value, Unauthorized)  # callers that only know 401/403 still work
    with pytest.raises(MissingScope, match="read:repository"):
        await wolf.get_repo(*REPO)
    assert gitea.comments(*REPO, n) == []
    no_user = await admin.create_token("wolf-1", "no-user", ["write:issue"], basic_auth=ADMIN)
    with pytest.raises(MissingScope, match="read:user"):
        await agents(no_user.secret).whoami()


async def test_repository_access_is_enforced_per_collaborator(
    gitea: GiteaStandin, admin: GiteaClient, agents: Agents
) -> None:
    await _agent_user(admin)
    token = await admin.create_token("wolf-1", "t", AGENT_SCOPES, basic_auth=ADMIN)
    wolf = agents(token.secret)
    n = gitea.add_issue(*REPO, "task")
    gitea.add_label(*REPO, "triaged")
    with pytest.raises(NotFound):  # a private repo does not exist for a stranger
        await wolf.get_issue(*REPO, n)
    await admin.add_collaborator(*REPO, "wolf-1", "read")
    assert (await wolf.create_comment(*REPO, n, "reading is enough to comment")).user == "wolf-1"
    with pytest.raises(Forbidden) as caught:
        await wolf.add_labels(*REPO, n, ["triaged"])
    assert not isinstance(caught.value, MissingScope)  # the token may; the user may not
    await admin.add_collaborator(*REPO, "wolf-1", "write")
    await wolf.add_labels(*REPO, n, ["triaged"])
    assert gitea.issue(*REPO, n)["labels"] == ["triaged"]
    with pytest.raises(Invalid):
        await admin.add_collaborator(*REPO, "wolf-1", "owner")
    with pytest.raises(Invalid, match="422"):
        await admin.add_collaborator(*REPO, "nobody", "read")  # Gitea: 422, not 404


async def test_a_disabled_agent_is_refused_and_can_be_enabled_again(
    gitea: GiteaStandin, admin: GiteaClient, agents: Agents
) -> None:
    await _agent_user(admin)
    await admin.add_collaborator(*REPO, "wolf-1", "write")
    token = await admin.create_token("wolf-1", "t", AGENT_SCOPES, basic_auth=ADMIN)
    wolf = agents(token.secret)
    n = gitea.add_issue(*REPO, "task")
    disabled = await admin.admin_edit_user("wolf-1", prohibit_login=True)
    assert disabled.prohibit_login and disabled.active
    with pytest.raises(LoginProhibited, match="disabled"):
        await wolf.whoami()
    with pytest.raises(LoginProhibited):
        await wolf.create_comment(*REPO, n, "after being disabled")
    with pytest.raises(Unauthorized, match="login was rejected"):  # its password too
        await admin.list_tokens("wolf-1", basic_auth=("wolf-1", "agent-pass-123"))
    assert gitea.comments(*REPO, n) == []
    assert (await admin.get_user("wolf-1")).prohibit_login
    await admin.admin_edit_user("wolf-1", prohibit_login=False)
    assert (await wolf.create_comment(*REPO, n, "back")).user == "wolf-1"
    inactive = await admin.admin_edit_user("wolf-1", active=False)
    assert not inactive.active and not inactive.prohibit_login
    with pytest.raises(LoginProhibited):
        await wolf.whoami()
    with pytest.raises(LoginProhibited):  # signs in, then is refused like a token
        await admin.list_tokens("wolf-1", basic_auth=("wolf-1", "agent-pass-123"))


async def test_a_deleted_token_is_refused(
    gitea: GiteaStandin, admin: GiteaClient, agents: Agents
) -> None:
    await _agent_user(admin)
    first = await admin.create_token("wolf-1", "first", AGENT_SCOPES, basic_auth=ADMIN)
    second = await admin.create_token("wolf-1", "second", AGENT_SCOPES, basic_auth=ADMIN)
    listed = await admin.list_tokens("wolf-1", basic_auth=ADMIN)
    assert {t.id for t in listed} == {first.id, second.id}
    assert all(t.secret == "" for t in listed)  # the secret is shown once, at creation
    assert {t.last_eight for t in listed} == {first.last_eight, second.last_eight}
    assert await admin.delete_token("wolf-1", first.id, basic_auth=ADMIN)
    assert not await admin.delete_token("wolf-1", first.id, basic_auth=ADMIN)
    with pytest.raises(Unauthorized, match="token was rejected") as caught:
        await agents(first.secret).whoami()
    assert caught.value.status == 401 and not isinstance(caught.value, Forbidden)
    assert await agents(second.secret).whoami() == "wolf-1"
    assert await admin.delete_token("wolf-1", "second", basic_auth=ADMIN)  # by name
    with pytest.raises(Unauthorized):
        await agents(second.secret).whoami()
    for numeric in ("42", "0x2a", "017"):
        with pytest.raises(Invalid, match="is a number"):
            await admin.delete_token("wolf-1", numeric, basic_auth=ADMIN)
    with pytest.raises(Invalid, match="is a number"):
        await admin.create_token("wolf-1", "0b1", AGENT_SCOPES, basic_auth=ADMIN)
    assert await admin.list_tokens("wolf-1", basic_auth=ADMIN) == []


async def test_tokens_are_managed_with_basic_auth_only(
    gitea: GiteaStandin, admin: GiteaClient
) -> None:
    await _agent_user(admin)
    with pytest.raises(Unauthorized, match="login was rejected"):
        await admin.create_token("wolf-1", "t", AGENT_SCOPES, basic_auth=(ADMIN[0], "wrong"))
    # The agent's own login works too (reqSelfOrAdmin), and another user's does not.
    own = await admin.create_token(
        "wolf-1", "own", ["read:user"], basic_auth=("wolf-1", "agent-pass-123")
    )
    assert own.scopes == ("read:user",)
    await _agent_user(admin, "wolf-2")
    with pytest.raises(Forbidden, match="site admin or be same"):
        await admin.list_tokens("wolf-1", basic_auth=("wolf-2", "agent-pass-123"))
    with pytest.raises(Invalid, match="unknown access token scope"):
        await admin.create_token("wolf-1", "typo", ["write:issues"], basic_auth=ADMIN)
    with pytest.raises(Invalid, match="at least one scope"):
        await admin.create_token("wolf-1", "none", [], basic_auth=ADMIN)


async def test_creating_twice_is_a_clear_already_exists(admin: GiteaClient) -> None:
    await _agent_user(admin)
    with pytest.raises(AlreadyExists, match="already exists") as user_exists:
        await _agent_user(admin)
    assert user_exists.value.status == 422 and isinstance(user_exists.value, Invalid)
    with pytest.raises(Invalid) as email_taken:  # someone else's address: not "ours already"
        await admin.admin_create_user("wolf-2", "wolf-1@fleet.invalid", "agent-pass-123")
    assert not isinstance(email_taken.value, AlreadyExists)
    await admin.create_token("wolf-1", "hermes-fleet", AGENT_SCOPES, basic_auth=ADMIN)
    with pytest.raises(AlreadyExists) as token_exists:
        await admin.create_token("wolf-1", "hermes-fleet", AGENT_SCOPES, basic_auth=ADMIN)
    assert token_exists.value.status == 400


# ---- provisioning, revoking, checking ---------------------------------------------------------


async def test_provision_then_again_changes_nothing(
    gitea: GiteaStandin, admin: GiteaClient, agents: Agents
) -> None:
    gitea.add_repo("acme", "api")
    repos = ["acme/web", "acme/api"]
    first = await provision_agent_forge(admin, ADMIN, "wolf-1", repos)
    assert first.created_user and first.minted and first.token
    assert first.granted == ("acme/web", "acme/api") and first.changed
    assert first.token not in repr(first)  # never in a log line by accident
    n = gitea.add_issue(*REPO, "task")
    wolf = agents(first.token)
    assert (await wolf.create_comment(*REPO, n, "mine")).user == "wolf-1"

    before = len(gitea.requests)
    again = await provision_agent_forge(admin, ADMIN, "wolf-1", repos, token_id=first.token_id)
    assert not again.changed and again.token is None and again.token_id == first.token_id
    writes = [m for m, _ in gitea.requests[before:] if m != "GET"]
    assert writes == ["POST"]  # only the create that answered "already exists"
    assert await wolf.whoami() == "wolf-1"

    # The secret was lost (no token id): the old token is replaced, never left behind.
    rotated = await provision_agent_forge(admin, ADMIN, "wolf-1", repos)
    assert rotated.minted and rotated.token and rotated.token_id != first.token_id
    with pytest.raises(Unauthorized):
        await wolf.whoami()
    assert [t.id for t in await admin.list_tokens("wolf-1", basic_auth=ADMIN)] == [rotated.token_id]


async def test_provision_mends_scopes_and_access(gitea: GiteaStandin, admin: GiteaClient) -> None:
    await _agent_user(admin)
    broad = await admin.create_token("wolf-1", "hermes-fleet", ["all"], basic_auth=ADMIN)
    await admin.add_collaborator(*REPO, "wolf-1", "admin")
    mended = await provision_agent_forge(admin, ADMIN, "wolf-1", ["acme/web"], token_id=broad.id)
    assert mended.minted and not mended.created_user
    assert mended.scopes == normalize_scopes(AGENT_SCOPES)
    assert mended.granted == ("acme/web",)
    assert await admin.collaborator_permission(*REPO, "wolf-1") == "write"


async def test_revoke_deletes_tokens_disables_and_add_enables_again(
    gitea: GiteaStandin, admin: GiteaClient, agents: Agents
) -> None:
    made = await provision_agent_forge(admin, ADMIN, "wolf-1", ["acme/web"])
    assert made.token
    wolf = agents(made.token)
    revoked = await revoke_agent_forge(admin, ADMIN, "wolf-1")
    assert revoked.deleted_tokens == (made.token_id,) and revoked.disabled
    with pytest.raises(Unauthorized):
        await wolf.whoami()
    user = await admin.get_user("wolf-1")
    assert user.prohibit_login
    again = await revoke_agent_forge(admin, ADMIN, "wolf-1")
    assert again.deleted_tokens == () and not again.disabled and not again.missing
    assert (await revoke_agent_forge(admin, ADMIN, "wolf-404")).missing

    back = await provision_agent_forge(admin, ADMIN, "wolf-1", ["acme/web"], token_id=made.token_id)
    assert back.enabled_user and back.minted and back.token and not back.granted
    n = gitea.add_issue(*REPO, "task")
    assert (await agents(back.token).create_comment(*REPO, n, "back")).user == "wolf-1"


async def test_a_user_the_fleet_did_not_make_is_never_adopted(
    gitea: GiteaStandin, admin: GiteaClient
) -> None:
    gitea.add_user("wolf-9")  # a person who happens to have the name
    with pytest.raises(AccountConflict, match="not made by the fleet"):
        await provision_agent_forge(admin, ADMIN, "wolf-9", ["acme/web"])
    with pytest.raises(AccountConflict):
        await revoke_agent_forge(admin, ADMIN, "wolf-9")
    assert len(await admin.list_tokens("wolf-9", basic_auth=ADMIN)) == 1  # its seed token


async def test_doctor_checks_validity_owner_and_scopes(
    gitea: GiteaStandin, admin: GiteaClient, agents: Agents
) -> None:
    made = await provision_agent_forge(admin, ADMIN, "wolf-1", ["acme/web"])
    assert made.token
    wolf = agents(made.token)
    ok = await check_agent_forge(
        wolf, "wolf-1", token_id=made.token_id, admin=admin, admin_auth=ADMIN
    )
    assert ok == []
    gitea.add_repo("acme", "api")
    access = await check_agent_forge(
        wolf,
        "wolf-1",
        token_id=made.token_id,
        admin=admin,
        admin_auth=ADMIN,
        repos=["acme/web", "acme/api"],
    )
    assert access == ["wolf-1 has read access to acme/api; expected write"]  # public: read
    assert await check_agent_forge(wolf, "wolf-1") == []  # without the admin: validity only
    assert await check_agent_forge(wolf, "wolf-2") == [
        "the Gitea token stored for wolf-2 belongs to wolf-1"
    ]

    broad = await admin.create_token("wolf-1", "broad", ["all"], basic_auth=ADMIN)
    found = await check_agent_forge(
        agents(broad.secret), "wolf-1", token_id=broad.id, admin=admin, admin_auth=ADMIN
    )
    assert found == [
        "wolf-1's Gitea token has scopes all; expected write:issue, read:repository, read:user"
    ]
    stale = await check_agent_forge(
        wolf, "wolf-1", token_id=made.token_id + 100, admin=admin, admin_auth=ADMIN
    )
    assert stale == [
        f"wolf-1's Gitea token (id {made.token_id + 100}) is not among the user's tokens"
    ]
    unrecorded = await check_agent_forge(wolf, "wolf-1", admin=admin, admin_auth=ADMIN)
    assert unrecorded == ["no Gitea token id is recorded for wolf-1: run `fleet agent add`"]

    await admin.admin_edit_user("wolf-1", prohibit_login=True)
    assert await check_agent_forge(wolf, "wolf-1") == ["Gitea account wolf-1 is disabled"]
    await revoke_agent_forge(admin, ADMIN, "wolf-1")
    await admin.admin_edit_user("wolf-1", prohibit_login=False)
    assert await check_agent_forge(wolf, "wolf-1") == [
        "wolf-1's Gitea token is rejected (deleted or wrong)"
    ]


async def test_the_sandbox_keeps_agent_accounts_across_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "forge.db"
    async with SandboxForge(db_path=db) as forge:
        token = forge.add_user(ADMIN[0], admin=True)  # as `fleet up` seeds it: password unknown
        forge.set_password(ADMIN[0], ADMIN[1])
        forge.add_repo(*REPO, private=True)
        async with GiteaClient(forge.url, token, retries=0) as c:
            made = await provision_agent_forge(c, ADMIN, "wolf-1", ["acme/web"])
            spare = await c.create_token("wolf-1", "spare", ["read:user"], basic_auth=ADMIN)
            await c.delete_token("wolf-1", spare.id, basic_auth=ADMIN)
            await c.admin_edit_user("wolf-1", prohibit_login=True)
    async with SandboxForge(db_path=db) as forge:
        assert made.token
        async with GiteaClient(forge.url, made.token, retries=0) as wolf:
            with pytest.raises(LoginProhibited):
                await wolf.whoami()
        async with GiteaClient(forge.url, spare.secret, retries=0) as gone:
            with pytest.raises(Unauthorized, match="token was rejected"):
                await gone.whoami()
        async with GiteaClient(forge.url, forge.token(ADMIN[0]), retries=0) as c:
            assert await c.collaborator_permission(*REPO, "wolf-1") == "write"
            tokens = await c.list_tokens("wolf-1", basic_auth=ADMIN)
            assert [(t.id, t.scopes) for t in tokens] == [(made.token_id, made.scopes)]


# ---- scopes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        (["read:issue", "write:issue"], ("write:issue",)),
        (
            ["read:user", "write:issue", "read:repository"],
            ("write:issue", "read:repository", "read:user"),
        ),
        (["all", "read:issue"], ("all",)),
        (["public-only", "all"], ("public-only", "all")),
        (
            [f"write:{c}" for c in ("activitypub", "admin", "misc", "notification")]
            + [f"write:{c}" for c in ("organization", "package", "issue", "repository", "user")],
            ("all",),
        ),
        ([" read:misc ", ""], ("read:misc",)),
        ([], ()),
    ],
)
def test_scopes_are_normalised_as_gitea_does(given: list[str], normal: tuple[str, ...]) -> None:
    assert normalize_scopes(given) == normal


def test_scope_checks() -> None:
    assert grants(["write:issue"], "read:issue")
    assert not grants(["read:issue"], "write:issue")
    assert grants(["all"], "write:admin")
    assert not grants(["write:issue"], "read:repository")
    with pytest.raises(InvalidScope):
        normalize_scopes(["write:issues"])
