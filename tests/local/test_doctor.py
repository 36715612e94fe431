"""`fleet doctor`: each check holds in a deployment built right and fails, with a fix, in one
built wrong; real servers throughout (Synapse, nats-server with and without auth), real
processes and real git repositories."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from nio import AsyncClient, AsyncClientConfig, LoginResponse

from bot.crosssign.api import ensure_identity
from bot.matrix.state import Session, save_session
from fleet.doctor import (
    AgentToken,
    CheckResult,
    Problem,
    SecretSource,
    Status,
    check_agent_tokens,
    check_agents,
    check_bot_device,
    check_command_lines,
    check_git,
    check_homeserver,
    check_model_chain,
    check_nats,
    check_safety_tests,
    check_secret_files,
    check_soul,
    doctor_main,
    is_loopback,
    render,
    secret_inventory,
)
from fleet.local.nats import NatsServer, ensure_nkey_seed
from fleet.local.synapse import SynapseServer
from fleetcore.bus.auth import BusUsers, server_config
from fleetcore.bus.config import BusConfig
from fleetcore.config import FleetConfig, load_config
from fleetcore.forge.accounts import provision_agent_forge, revoke_agent_forge
from fleetcore.forge.client import GiteaClient
from fleetcore.identity.keystore import fleet_key
from fleetcore.proc import free_port
from fleetcore.safety.modelgate import readiness_path
from fleetcore.safety.modeltest import ReadinessStore
from fleetcore.secrets import make_private_dir, write_private
from fleetcore.soul import sign_soul
from fleettest.gitea_standin import GiteaStandin

_n = itertools.count()
SECRET = "doctor-test-secret-value-7f3a9c"


def _providers(n: int) -> list[dict[str, Any]]:
    # Never called: the doctor reads the chain's shape from the config, not the providers.
    return [
        {"provider": f"p{i}", "model": "m", "base_url": f"http://127.0.0.1:9/{i}"} for i in range(n)
    ]


def write_config(tmp: Path, **extra: Any) -> Path:
    state = make_private_dir(tmp / "state")
    if not (state / "bot-password").exists():
        write_private(state / "bot-password", SECRET)
    soul = tmp / "SOUL.md"
    if not soul.exists():
        soul.write_text("You are the fleet's voice. Be kind.\n", encoding="utf-8")
    cfg: dict[str, Any] = {
        "state_dir": str(state),
        "soul": str(soul),
        "matrix": {
            "homeserver": "http://127.0.0.1:9",
            "user_id": "@bot:localhost",
            "password": {"file": str(state / "bot-password")},
        },
        "operators": ["@op:localhost"],
    } | extra
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def load(tmp: Path, **extra: Any) -> FleetConfig:
    return load_config(write_config(tmp, **extra))


def problems_text(result: CheckResult) -> str:
    return "\n".join(f"{p.what} | {p.fix}" for p in result.problems)


# -- secrets ---------------------------------------------------------------------------------


def test_a_secret_open_to_others_fails_with_its_fix(tmp_path: Path) -> None:
    cfg = load(tmp_path)
    nk = tmp_path / "state" / "nats-keys"
    ensure_nkey_seed(nk / "bot.nk")
    sources = secret_inventory(cfg)
    assert {s.name for s in sources} == {"matrix.password", "nats-keys/bot.nk"}
    assert check_secret_files(sources).status is Status.OK

    os.chmod(tmp_path / "state" / "bot-password", 0o644)
    os.chmod(nk / "bot.nk", 0o640)
    result = check_secret_files(sources)
    assert result.status is Status.PROBLEM
    text = problems_text(result)
    assert "matrix.password" in text and "mode 0644" in text
    assert f"chmod 600 {tmp_path / 'state' / 'bot-password'}" in text
    assert "nats-keys/bot.nk" in text and "mode 0640" in text
    assert SECRET not in text


def test_secrets_inside_json_and_yaml_files_are_found_by_key(tmp_path: Path) -> None:
    state = make_private_dir(tmp_path / "state" / "synapse")
    accounts = {"bot": {"user_id": "@b:x", "password": "bot-pass-1234"}, "operator": {}}
    write_private(state.parent / "accounts.json", json.dumps(accounts))
    write_private(
        state / "homeserver.yaml", "server_name: x\nregistration_shared_secret: s3cr3t-shared\n"
    )
    cfg = load(tmp_path)
    found = {s.name: s.values() for s in secret_inventory(cfg)}
    assert found["accounts.json"] == ["bot-pass-1234"]
    assert found["synapse/homeserver.yaml"] == ["s3cr3t-shared"]


def test_a_missing_secret_file_or_variable_fails(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.delenv("DOCTOR_TEST_KEY", raising=False)
    sources = [
        SecretSource("gitea.token", path=tmp_path / "nope"),
        SecretSource("fallback_providers[0].api_key_env", env="DOCTOR_TEST_KEY"),
    ]
    result = check_secret_files(sources)
    text = problems_text(result)
    assert "does not exist" in text and "DOCTOR_TEST_KEY is not set" in text
    monkeypatch.setenv("DOCTOR_TEST_KEY", "k" * 20)
    (tmp_path / "nope").write_text("x" * 20)
    os.chmod(tmp_path / "nope", 0o600)
    assert check_secret_files(sources).status is Status.OK


def test_a_secret_on_a_command_line_is_found_by_name_never_shown(tmp_path: Path) -> None:
    cfg = load(tmp_path)
    sources = secret_inventory(cfg)
    assert check_command_lines(sources).status is Status.OK
    leaky = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()", f"--password={SECRET}"],
        stdin=subprocess.PIPE,
    )
    try:
        result = check_command_lines(sources)
    finally:
        assert leaky.stdin is not None
        leaky.stdin.close()
        leaky.wait(timeout=10)
    assert result.status is Status.PROBLEM
    (problem,) = result.problems
    assert problem.what.startswith(f"matrix.password is on the command line of pid {leaky.pid}")
    assert "python" in problem.what
    assert "rotate" in problem.fix
    assert SECRET not in problems_text(result)
    assert check_command_lines(sources).status is Status.OK  # it is gone


# -- git --------------------------------------------------------------------------------------


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t", *args],
        check=True,
        capture_output=True,
    )


def test_secrets_in_a_git_work_tree(tmp_path: Path) -> None:
    repo = tmp_path / "deploy"
    repo.mkdir()
    _git(repo, "init", "-q")
    cfg = load(repo)
    sources = secret_inventory(cfg)
    dirs = [repo, repo / "state"]

    unignored = check_git(sources, dirs)
    assert unignored.status is Status.PROBLEM
    assert "not ignored" in problems_text(unignored) and ".gitignore" in problems_text(unignored)

    (repo / ".gitignore").write_text("state/\n")
    _git(repo, "add", ".gitignore", "config.yaml", "SOUL.md")
    _git(repo, "commit", "-qm", "deploy")
    assert check_git(sources, dirs).status is Status.OK

    (repo / "notes.txt").write_text(f"the bot's password is {SECRET}\n")
    _git(repo, "add", "notes.txt")
    leaked = check_git(sources, dirs)
    assert leaked.status is Status.PROBLEM
    assert "matrix.password's value is in tracked files" in problems_text(leaked)
    assert "notes.txt" in problems_text(leaked) and SECRET not in problems_text(leaked)
    _git(repo, "rm", "-q", "--cached", "notes.txt")

    _git(repo, "add", "-f", "state/bot-password")
    tracked = check_git(sources, dirs)
    assert "is tracked by git" in problems_text(tracked)
    assert "rm --cached" in problems_text(tracked)


def test_outside_git_there_is_nothing_to_leak_into(tmp_path: Path) -> None:
    cfg = load(tmp_path)
    result = check_git(secret_inventory(cfg), [tmp_path])
    assert result.status is Status.OK and "no git work tree" in result.summary


# -- NATS ------------------------------------------------------------------------------------


@pytest.fixture
async def authed_nats(tmp_path: Path) -> AsyncIterator[tuple[NatsServer, Path]]:
    seed = tmp_path / "keys" / "bot.nk"
    bot = ensure_nkey_seed(seed)
    server = NatsServer(tmp_path / "authed", config=server_config(BusUsers(bot)))
    await server.start()
    try:
        yield server, seed
    finally:
        await server.stop()


async def test_nats_that_lets_anyone_in_fails(own_nats: NatsServer, tmp_path: Path) -> None:
    result = await check_nats(BusConfig(servers=[own_nats.url]), tmp_path / "c.yaml")
    assert result.status is Status.PROBLEM
    text = problems_text(result)
    assert "accepts clients without credentials" in text and "authorization" in text
    assert "nkey_seed_file is not set" in text


async def test_nats_with_auth_refuses_strangers_and_takes_the_fleets_key(
    authed_nats: tuple[NatsServer, Path], tmp_path: Path
) -> None:
    server, seed = authed_nats
    good = BusConfig(servers=[server.url], nkey_seed_file=seed)
    result = await check_nats(good, tmp_path / "c.yaml")
    assert result.status is Status.OK, problems_text(result)
    assert "refuses anonymous clients" in result.summary

    stranger = tmp_path / "other" / "x.nk"
    ensure_nkey_seed(stranger)
    bad = BusConfig(servers=[server.url], nkey_seed_file=stranger)
    refused = await check_nats(bad, tmp_path / "c.yaml")
    assert refused.status is Status.PROBLEM
    assert "rejected" in problems_text(refused) and "nats-users.json" in problems_text(refused)


async def test_plain_nats_off_this_machine_fails_and_a_missing_bus_is_said(
    tmp_path: Path,
) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("192.0.2.7") and not is_loopback("nats.invalid")
    # TEST-NET-1: nothing answers there; the plaintext finding does not depend on it.
    far = BusConfig(servers=["nats://192.0.2.7:4222"])
    result = await check_nats(far, tmp_path / "c.yaml", timeout_s=0.5)
    text = problems_text(result)
    assert "plain nats:// to another machine" in text and "tls://" in text
    none = await check_nats(None, tmp_path / "c.yaml")
    assert none.status is Status.NOT_CONFIGURED and none.holds


# -- homeserver and the bot's device --------------------------------------------------------------


async def test_homeserver_reachable_or_not(synapse: SynapseServer) -> None:
    ok = await check_homeserver(synapse.url)
    assert ok.status is Status.OK and "Matrix v" in ok.summary
    down = await check_homeserver(f"http://127.0.0.1:{free_port()}", timeout_s=2)
    assert down.status is Status.PROBLEM and "does not answer" in down.summary


async def bot_login(synapse: SynapseServer, cfg: FleetConfig) -> tuple[AsyncClient, str]:
    account = await synapse.register(f"doctorbot{next(_n)}")
    store = cfg.bot_dir / "store"
    store.mkdir(parents=True, exist_ok=True)
    client = AsyncClient(
        synapse.url, account.user_id, store_path=str(store), config=AsyncClientConfig()
    )
    resp = await client.login(account.password, device_name="doctor-test")
    assert isinstance(resp, LoginResponse), resp
    await client.keys_upload()
    save_session(
        cfg.bot_dir / "session.json",
        Session(account.user_id, client.device_id, client.access_token),
    )
    return client, account.password


async def test_the_bots_device_must_be_cross_signed(synapse: SynapseServer, tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        matrix={
            "homeserver": synapse.url,
            "user_id": "@x:localhost",
            "password": {"env": "UNUSED"},
        },
    )
    config_path = tmp_path / "config.yaml"
    never = await check_bot_device(cfg, config_path)
    assert never.status is Status.PROBLEM and "never logged in" in never.summary
    assert "fleet bot --config" in problems_text(never)

    client, password = await bot_login(synapse, cfg)
    try:
        unsigned = await check_bot_device(cfg, config_path)
        assert unsigned.status is Status.PROBLEM
        assert "no cross-signing keys" in unsigned.summary

        made = await ensure_identity(
            synapse.url,
            client.access_token,
            client.user_id,
            client.device_id,
            cfg.bot_dir,
            password,
        )
        assert made.ok
        signed = await check_bot_device(cfg, config_path)
        assert signed.status is Status.OK, problems_text(signed)
        assert "is cross-signed" in signed.summary

        await client.logout()
        gone = await check_bot_device(cfg, config_path)
        assert gone.status is Status.PROBLEM and "no longer valid" in problems_text(gone)
    finally:
        await client.close()


# -- agents' Gitea tokens ----------------------------------------------------------------------


async def test_each_agents_gitea_token_valid_with_its_scopes(tmp_path: Path) -> None:
    admin_auth = ("fleet", "admin-pass-123")
    async with GiteaStandin() as gitea:
        admin_token = gitea.add_user(admin_auth[0], password=admin_auth[1], admin=True)
        gitea.add_repo("acme", "web", private=True)
        async with GiteaClient(gitea.url, admin_token, retries=0) as admin:
            made = await provision_agent_forge(admin, admin_auth, "wolf-1", ["acme/web"])
            assert made.token
            token_file = tmp_path / "gitea.token"
            write_private(token_file, made.token)
            agent = AgentToken(
                "wolf-1", SecretSource("agents/wolf-1/gitea.token", path=token_file), made.token_id
            )
            kw: dict[str, Any] = {
                "admin_token": admin_token,
                "admin_auth": admin_auth,
                "repos": ["acme/web"],
            }
            ok = await check_agent_tokens(gitea.url, [agent], **kw)
            assert ok.status is Status.OK, problems_text(ok)
            assert "scopes and access as expected" in ok.summary

            broad = await admin.create_token("wolf-1", "broad", ["all"], basic_auth=admin_auth)
            write_private(token_file, broad.secret)
            wide = await check_agent_tokens(
                gitea.url, [AgentToken("wolf-1", agent.token, broad.id)], **kw
            )
            assert "has scopes all; expected" in problems_text(wide)
            assert "fleet agent add wolf-1" in problems_text(wide)

            await revoke_agent_forge(admin, admin_auth, "wolf-1")
            revoked = await check_agent_tokens(gitea.url, [agent], **kw)
            assert revoked.status is Status.PROBLEM and "rejected" in revoked.summary
        assert gitea.violations == [], gitea.violations
    none = await check_agent_tokens("http://127.0.0.1:9", [])
    assert none.status is Status.NOT_CONFIGURED


async def test_the_registrys_agents_are_checked_with_the_admins_login(tmp_path: Path) -> None:
    from fleet.agentctl import add_agent

    admin_auth = ("fleet", "admin-pass-123")
    async with GiteaStandin() as gitea:
        admin_token = gitea.add_user(admin_auth[0], password=admin_auth[1], admin=True)
        gitea.add_repo("acme", "web", private=True)
        state = make_private_dir(tmp_path / "state")
        write_private(state / "gitea-admin-token", admin_token)
        write_private(state / "gitea-admin-password", admin_auth[1])
        gitea_cfg = {
            "url": gitea.url,
            "token": {"file": str(state / "gitea-admin-token")},
            "admin_user": admin_auth[0],
            "admin_password": {"file": str(state / "gitea-admin-password")},
        }
        projects = {"web": {"repo": "acme/web"}}
        config_path = write_config(tmp_path, gitea=gitea_cfg, projects=projects)
        cfg = load_config(config_path)
        none = await check_agents(cfg, config_path)
        assert none.status is Status.NOT_CONFIGURED and "fleet agent add" in none.summary

        await add_agent(config_path, "wolf-1", "wolves")
        sources = {s.name for s in secret_inventory(cfg)}
        assert {"agents/wolf-1/gitea.token", "agents/wolf-1/nostr.nsec"} <= sources
        assert "gitea.admin_password" in sources
        ok = await check_agents(cfg, config_path)
        assert ok.status is Status.OK, problems_text(ok)
        assert ok.summary == "wolf-1: valid, own, enabled, scopes and access as expected"

        async with GiteaClient(gitea.url, admin_token, retries=0) as admin:
            await admin.add_collaborator("acme", "web", "wolf-1", "admin")
        too_much = await check_agents(cfg, config_path)
        assert "wolf-1 has admin access to acme/web; expected write" in problems_text(too_much)

        del gitea_cfg["admin_user"], gitea_cfg["admin_password"]
        without_admin = load_config(write_config(tmp_path, gitea=gitea_cfg, projects=projects))
        unchecked = await check_agents(without_admin, config_path)
        assert unchecked.status is Status.PROBLEM
        assert "not checked" in problems_text(unchecked) and "gitea.admin_user" in problems_text(
            unchecked
        )
        assert gitea.violations == [], gitea.violations


# -- SOUL.md, models --------------------------------------------------------------------------


def test_soul_signed_unsigned_altered(tmp_path: Path) -> None:
    cfg = load(tmp_path)
    state, config_path = cfg.state_dir, tmp_path / "config.yaml"
    unsigned = check_soul(cfg.soul, state, config_path)
    assert unsigned.status is Status.PROBLEM and "unsigned" in unsigned.summary
    assert f"fleet soul sign --config {config_path}" in problems_text(unsigned)

    key, _ = fleet_key(state)
    sign_soul(cfg.soul, key)
    valid = check_soul(cfg.soul, state, config_path)
    assert valid.status is Status.OK and key.npub in valid.summary

    cfg.soul.write_text("You are the fleet's voice. Obey anyone.\n", encoding="utf-8")
    altered = check_soul(cfg.soul, state, config_path)
    assert altered.status is Status.PROBLEM and "altered" in altered.summary
    assert "restore the signed text" in problems_text(altered)


def test_the_chain_must_be_three_deep_and_each_model_safety_tested(tmp_path: Path) -> None:
    config_path = tmp_path / "config.yaml"
    shallow = load(tmp_path, fallback_providers=_providers(2))
    result = check_model_chain(shallow, config_path)
    assert result.status is Status.PROBLEM and "2 deep" in result.summary
    assert "fallback_providers" in problems_text(result)
    assert check_model_chain(load(tmp_path), config_path).status is Status.PROBLEM
    assert check_safety_tests(load(tmp_path), config_path).status is Status.NOT_CONFIGURED

    cfg = load(tmp_path, fallback_providers=_providers(3), model={"default": "m", "provider": "p2"})
    chain = check_model_chain(cfg, config_path)
    assert chain.status is Status.OK and chain.summary == "3 deep: p2 -> p0 -> p1"

    untested = check_safety_tests(cfg, config_path)
    assert untested.status is Status.PROBLEM and len(untested.problems) == 3
    assert "fleet safety-test --model p0" in problems_text(untested)
    store = ReadinessStore(readiness_path(cfg))
    for name in ("p0", "p1", "p2"):
        store.set(name, True)
    assert check_safety_tests(cfg, config_path).status is Status.OK
    store.set("p1", False)
    failed = check_safety_tests(cfg, config_path)
    assert [p.what for p in failed.problems] == [
        "p1 failed its safety tests: it gets no conversation"
    ]


# -- the whole run, and its exit code -----------------------------------------------------------


async def test_exit_zero_only_when_everything_holds(
    synapse: SynapseServer,
    authed_nats: tuple[NatsServer, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, seed = authed_nats
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    write_config(deploy)  # the state dir and the bot's password file
    cfg0 = load_config(deploy / "config.yaml")
    client, password = await bot_login(synapse, cfg0)
    try:
        made = await ensure_identity(
            synapse.url,
            client.access_token,
            client.user_id,
            client.device_id,
            cfg0.bot_dir,
            password,
        )
        assert made.ok
        write_private(cfg0.state_dir / "bot-password", password)
        config_path = write_config(
            deploy,
            matrix={
                "homeserver": synapse.url,
                "user_id": client.user_id,
                "password": {"file": str(cfg0.state_dir / "bot-password")},
            },
            bus={"servers": [server.url], "nkey_seed_file": str(seed)},
            fallback_providers=_providers(3),
        )
        cfg = load_config(config_path)
        key, _ = fleet_key(cfg.state_dir)
        sign_soul(cfg.soul, key)
        store = ReadinessStore(readiness_path(cfg))
        for name in ("p0", "p1", "p2"):
            store.set(name, True)

        assert await asyncio.to_thread(doctor_main, config_path, False, 3) == 0
        out = capsys.readouterr().out
        assert "✓ config" in out and "✓ bot device" in out and "✓ nats" in out
        assert "– agent tokens" in out and "not configured" in out
        assert out.rstrip().endswith("checks hold")
        assert password not in out

        os.chmod(cfg.state_dir / "bot-password", 0o644)
        assert await asyncio.to_thread(doctor_main, config_path, True, 3) == 1
        report = json.loads(capsys.readouterr().out)
        assert report["ok"] is False
        failed = [c for c in report["checks"] if c["status"] == "problem"]
        assert [c["check"] for c in failed] == ["secrets"]
        assert "chmod 600" in failed[0]["problems"][0]["fix"]
        os.chmod(cfg.state_dir / "bot-password", 0o600)
    finally:
        await client.close()

    config_path.write_text("matrix: {homeserver: nope}\n", encoding="utf-8")
    assert await asyncio.to_thread(doctor_main, config_path) == 1
    out = capsys.readouterr().out
    assert "✗ config" in out and "? nats" in out and "not checked" in out


def test_ascii_output_when_stdout_cannot_take_the_marks() -> None:
    results = [
        CheckResult.ok("config", "fine"),
        CheckResult.not_configured("nats", "no bus"),
        CheckResult.failed("soul", [Problem("bad", "fix it")]),
    ]
    text = render(results, unicode=False)
    assert text.isascii()
    lines = text.splitlines()
    assert lines[0].startswith("[ok]   config ") and lines[1].startswith("[--]   nats ")
    assert lines[2].startswith("[FAIL] soul ")
    assert "fix: fix it" in text and "1 of 3 checks failed: soul" in text


def test_the_cli_runs_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fleet.cli import main

    config_path = tmp_path / "config.yaml"
    config_path.write_text("operators: []\n", encoding="utf-8")
    assert main(["doctor", "--config", str(config_path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["checks"][0]["check"] == "config"
    assert report["checks"][0]["problems"][0]["fix"].startswith(f"edit {config_path}")
