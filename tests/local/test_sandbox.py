"""The sandbox components `fleet up` ships: the forge (SQLite, stable port) and the model.

These run the product classes as `fleet up` does, without the tests' swagger referee, and
check what a user of the sandbox relies on: that what they filed survives a restart, that
the forge comes back on its port, and that the model answers in the real wire format.
"""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import httpx
import openai
import pytest

from agents.rubric import check_triage
from agents.triage import issue_sources, triage_prompt
from fleet.sandbox.forge import SANDBOX_VERSION, SandboxForge
from fleet.sandbox.model import MODEL_ID, SandboxModel, triage_reply
from fleetcore import data
from fleetcore.forge.client import GiteaClient, NotFound
from fleetcore.soul import Soul

REPO = Path(__file__).resolve().parents[2]


async def test_the_forge_keeps_everything_across_a_restart_on_its_port(tmp_path: Path) -> None:
    db = tmp_path / "gitea" / "forge.db"
    forge = SandboxForge(db_path=db)
    await forge.start()
    port = forge.port
    token = forge.add_user("fleet", admin=True)
    forge.add_repo("acme", "web")
    async with GiteaClient(forge.url, token, retries=0) as api:
        issue = await api.create_issue("acme", "web", "Persist me", "body", labels=["ready"])
        comment = await api.create_comment("acme", "web", issue.number, "a comment")
        await api.edit_issue("acme", "web", issue.number, body="edited", content_version=0)
        hook = await api.create_hook("acme", "web", "http://127.0.0.1:9/hook", "s3cret")
    await forge.stop()
    forge.close()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600  # tokens and passwords live here

    again = SandboxForge(db_path=db, port=port)
    await again.start()
    try:
        assert again.port == port
        async with GiteaClient(again.url, token, retries=0) as api:
            assert await api.version() == SANDBOX_VERSION
            stored = await api.get_issue("acme", "web", issue.number)
            assert (stored.title, stored.body, stored.label_names) == (
                "Persist me",
                "edited",
                ["ready"],
            )
            assert stored.content_version == 1
            assert [c.id for c in await api.list_comments("acme", "web", issue.number)] == [
                comment.id
            ]
            assert [h.id for h in await api.list_hooks("acme", "web")] == [hook.id]
            later = await api.create_comment("acme", "web", issue.number, "after the restart")
            assert later.id > comment.id  # ids go on from where they were
            with pytest.raises(NotFound):
                await api.get_issue("acme", "web", issue.number + 1)
    finally:
        await again.stop()
        again.close()


async def test_a_taken_port_falls_back_to_a_free_one_or_fails_when_asked(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        async with SandboxForge(db_path=tmp_path / "f.db", port=busy) as forge:
            assert forge.port != busy
            async with httpx.AsyncClient() as http:
                r = await http.get(f"{forge.url}/api/v1/version")
            assert r.json() == {"version": SANDBOX_VERSION}
        with pytest.raises(OSError):
            SandboxForge(port=busy, port_fallback=False)


async def test_the_model_answers_in_openai_format_with_a_rubric_valid_triage() -> None:
    from fleetcore.forge.models import Issue

    title, body = "Editor loses the draft on save", "Press Save, reload: gone."
    issue = Issue(7, title, body, "open", (), "", 7)
    prompt = triage_prompt("operator/sandbox", issue, [])
    async with SandboxModel() as model:
        client = openai.AsyncOpenAI(base_url=model.base_url, api_key="sandbox", max_retries=0)
        try:
            reply = await client.chat.completions.create(
                model=MODEL_ID,
                messages=[
                    {"role": "system", "content": Soul.packaged().text},
                    {"role": "user", "content": prompt},
                ],
            )
            models = await client.models.list()
            with pytest.raises(openai.BadRequestError):
                await client.chat.completions.create(model=MODEL_ID, messages=[])
        finally:
            await client.close()
    assert [m.id for m in models.data] == [MODEL_ID]
    text = reply.choices[0].message.content or ""
    assert reply.choices[0].finish_reason == "stop" and reply.usage is not None
    assert '"Editor loses the draft on save"' in text
    result = check_triage(text, issue_sources(issue, []))
    assert result.ok, result.problems
    assert model.requests == 1
    assert "Evidence:" in triage_reply({"messages": []})  # no title: still well formed


def test_package_data_is_the_repository_files() -> None:
    """SOUL.md and safety-tests.md are edited at the root; the package reads the same bytes."""
    for name in (data.SOUL, data.SAFETY_TESTS):
        assert data.read_bytes(name) == (REPO / name).read_bytes(), name
    assert Soul.packaged() == Soul.load(REPO / "SOUL.md")
