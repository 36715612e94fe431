"""The async shell: login, the sync loop, and who may read what (the crypto side of sending).

What the bot posts leaves through `bot.matrix.sender` only; this shell is the `RoomKeys` it
asks before each send, and the place its device and identity notices come from.

nio does the protocol (sync parsing, Olm/Megolm); this module decides *when*: one sync at a
time, then crypto housekeeping, then every event of that batch is decrypted, written to the
inbox and handed to the pipeline, which queues it and returns at once; only then the sync
token is saved. The loop never waits on a handler, so one slow room cannot stall the others,
and the inbox is what makes restarts lose nothing and repeat nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from nio import (
    AsyncClient,
    AsyncClientConfig,
    Event,
    InviteMemberEvent,
    JoinError,
    LocalProtocolError,
    LoginError,
    MatrixRoom,
    MegolmEvent,
    RoomCreateError,
    RoomMessageText,
    ShareGroupSessionResponse,
    SyncError,
    SyncResponse,
    WhoamiResponse,
)

from bot.matrix.sender import Sender, patiently
from bot.matrix.state import BotState, Session, load_session, save_session
from bot.matrix.trust import IdentityTrust, sender_device, trust_pass
from bot.pipeline.decrypt import from_event
from bot.pipeline.message import Incoming, Undecryptable
from bot.pipeline.report import txn_id
from fleetcore.config import FleetConfig
from fleetcore.log import fields
from fleetcore.metrics import Metrics

log = logging.getLogger(__name__)

# Both take a message and return at once: the pipeline queues, the sync loop never waits.
MessageSink = Callable[[Incoming], None]
UndecryptableSink = Callable[[Undecryptable], None]


class MatrixError(RuntimeError):
    """A homeserver answer we cannot work around (bad credentials, no such room...)."""


@dataclass
class _Pending:
    room: MatrixRoom
    event: RoomMessageText | MegolmEvent
    # Seen before (a key arrived late, or left in the inbox by an earlier run).
    retry: bool = False


def store_dir(cfg: FleetConfig) -> Path:
    return cfg.bot_dir / "store"


def session_path(cfg: FleetConfig) -> Path:
    return cfg.bot_dir / "session.json"


def client_config(encryption: bool = True) -> AsyncClientConfig:
    return AsyncClientConfig(
        store_sync_tokens=False,  # we save it ourselves, after handling the batch
        encryption_enabled=encryption,
        # A 429 comes back to us: the sender waits it out (`bot.matrix.sender`), and other
        # calls go through `patiently`.
        max_limit_exceeded=0,
        request_timeout=60,
    )


async def login(cfg: FleetConfig) -> AsyncClient:
    """Log in once per device: later starts restore the saved session and crypto store."""
    os.umask(0o077)
    store = store_dir(cfg)
    store.mkdir(parents=True, exist_ok=True, mode=0o700)
    m = cfg.matrix
    client = AsyncClient(m.homeserver, m.user_id, store_path=str(store), config=client_config())
    try:
        await _login(cfg, client, load_session(session_path(cfg)))
        for path in store.iterdir():
            path.chmod(0o600)
        if client.should_upload_keys:
            await client.keys_upload()
    except BaseException:
        await client.close()
        raise
    return client


async def _login(cfg: FleetConfig, client: AsyncClient, session: Session | None) -> None:
    m = cfg.matrix
    path = session_path(cfg)
    if session is not None and session.user_id == m.user_id:
        client.restore_login(session.user_id, session.device_id, session.access_token)
        who = await client.whoami()
        if not isinstance(who, WhoamiResponse):
            raise MatrixError(
                f"saved session for {m.user_id} was rejected ({who}); delete "
                f"{path} to log in again as a new device"
            )
        log.info("session_restored", extra=fields(user=m.user_id, device=session.device_id))
    elif m.access_token is not None:
        token = m.access_token.get()
        client.access_token = token
        who = await client.whoami()
        if not isinstance(who, WhoamiResponse) or not who.device_id:
            raise MatrixError(f"access token for {m.user_id} was rejected")
        client.restore_login(m.user_id, who.device_id, token)
        save_session(path, Session(m.user_id, who.device_id, token))
    else:
        assert m.password is not None  # the config model requires a token or a password
        password = m.password.get()
        resp = await patiently(lambda: client.login(password, device_name=m.device_name), "login")
        if isinstance(resp, LoginError):
            raise MatrixError(f"login as {m.user_id} failed: {resp.message}")
        save_session(path, Session(m.user_id, resp.device_id, resp.access_token))
        log.info("logged_in", extra=fields(user=m.user_id, device=resp.device_id))


class MatrixShell:
    """Built on a logged-in client (`login`); owns the sync loop, trust and the `Sender`."""

    def __init__(
        self,
        cfg: FleetConfig,
        state: BotState,
        client: AsyncClient,
        identity_trust: IdentityTrust | None,
        metrics: Metrics,
    ) -> None:
        self.cfg = cfg
        self.state = state
        self.nio = client
        self._pending: list[_Pending] = []
        # Events we could not decrypt yet, retried after each sync until a key arrives
        # (bounded, oldest dropped): the sender was told and keys were requested.
        self._awaiting_keys: dict[str, _Pending] = {}
        self._stop = asyncio.Event()
        self.synced = asyncio.Event()
        # Set once the first sync batch has gone through the pipeline; stays set.
        self.ready = asyncio.Event()
        self.operators = frozenset(cfg.operators)
        # None under the TOFU policy: devices are trusted on sight, identities not checked.
        self.identity_trust = identity_trust
        self._identity_stale = True
        # Key sharing and trust decisions are one at a time (they touch every room's
        # devices); the send itself is ordered per room, so rooms never wait on each other.
        self._crypto_lock = asyncio.Lock()
        self._announcements: list[tuple[str, str, str]] = []
        # Devices whose blacklisting `one_off` has lifted for one crisis reply: trust
        # housekeeping leaves them alone until it puts the blacklist back itself.
        self._reaching: set[tuple[str, str]] = set()
        self.sender = Sender(client, state, self, metrics)
        self._resending: asyncio.Task[None] | None = None
        self._notices: set[asyncio.Task[str | None]] = set()
        client.add_event_callback(self._on_invite, InviteMemberEvent)
        client.add_event_callback(self._on_message, (RoomMessageText, MegolmEvent))

    @property
    def device_id(self) -> str:
        return str(self.nio.device_id)

    async def close(self) -> None:
        # Unfinished sends stay staged in the outbox: the next start sends them.
        for task in [self._resending, *self._notices]:
            if task is not None:
                task.cancel()
        await self.nio.close()

    async def health(self) -> tuple[bool, str]:
        try:
            resp = await asyncio.wait_for(self.nio.whoami(), 5)
        except (TimeoutError, OSError) as exc:
            return False, type(exc).__name__
        ok = getattr(resp, "user_id", None) == self.cfg.matrix.user_id
        return ok, "reachable" if ok else str(resp)

    def stop(self) -> None:
        self._stop.set()

    # -- sync loop -----------------------------------------------------------------------

    async def run(self, on_message: MessageSink, on_undecryptable: UndecryptableSink) -> None:
        """Sync forever; a failed sync backs off and retries (homeservers restart too)."""
        client = self.nio
        since = self.state.sync_token
        first = True
        backoff = 1.0
        while not self._stop.is_set():
            timeout = 0 if first else self.cfg.matrix.sync_timeout_ms
            try:
                resp = await client.sync(timeout=timeout, since=since, full_state=first)
            except (TimeoutError, OSError) as exc:
                resp = SyncError(str(exc))
            if not isinstance(resp, SyncResponse):
                log.warning("sync_failed", extra=fields(error=str(resp), retry_in_s=backoff))
                try:
                    await asyncio.wait_for(self._stop.wait(), backoff)
                except TimeoutError:
                    pass
                backoff = min(backoff * 2, 60.0)
                continue
            backoff = 1.0
            await self._housekeeping()
            batch, self._pending = self._pending, []
            if since is None:
                # A new device's first sync: the timeline is history from before this
                # device existed (undecryptable for it, and not addressed to it).
                batch = []
            if first:
                batch = self._left_in_inbox() + batch
                # Rooms are known now; messages an earlier run staged go first in each room.
                self._resending = asyncio.create_task(
                    self.sender.resend_unsent(), name="outbox-resend"
                )
            batch = self._keys_arrived() + batch
            for item in batch:
                await self._dispatch(item, on_message, on_undecryptable)
            since = resp.next_batch
            self.state.save_sync_token(since)
            first = False
            self.ready.set()
            self.synced.set()
            self.synced.clear()

    async def _housekeeping(self) -> None:
        """Keys first, so a message from a brand-new device can be attributed to it."""
        client = self.nio
        if client.should_upload_keys:
            await client.keys_upload()
        if client.should_query_keys:
            await client.keys_query()
            self._identity_stale = True
        if client.should_claim_keys:
            await client.keys_claim(client.get_users_for_key_claiming())
        await client.send_to_device_messages()
        await self._refresh_identities()
        await self.apply_trust()
        await self._flush_announcements()

    async def _refresh_identities(self) -> None:
        """Cross-signing keys are outside nio: fetch them when device lists changed."""
        if self.identity_trust is None or not self._identity_stale:
            return
        operators_seen: set[str] = set()
        for room in self.nio.rooms.values():
            operators_seen.update(u for u in room.users if u in self.operators)
        try:
            await self.identity_trust.refresh(operators_seen)
            self._identity_stale = False
        except Exception:
            log.exception("identity_refresh_failed")

    def _left_in_inbox(self) -> list[_Pending]:
        """Messages an earlier run queued but did not finish: handled now, in their order."""
        left = []
        for room_id, source in self.state.inbox():
            room = self.nio.rooms.get(room_id)
            event = Event.parse_event(source)
            if room is None or not isinstance(event, RoomMessageText | MegolmEvent):
                continue
            left.append(_Pending(room, event, retry=True))
        if left:
            log.info("inbox_resumed", extra=fields(count=len(left)))
        return left

    def _keys_arrived(self) -> list[_Pending]:
        """Events whose room key arrived since we last tried, now decrypted."""
        ready = []
        for event_id, item in list(self._awaiting_keys.items()):
            assert isinstance(item.event, MegolmEvent)
            try:
                decrypted = self.nio.decrypt_event(item.event)
            except Exception:
                continue
            del self._awaiting_keys[event_id]
            if isinstance(decrypted, RoomMessageText):
                ready.append(_Pending(item.room, decrypted, retry=True))
        return ready

    async def _dispatch(
        self, item: _Pending, on_message: MessageSink, on_undecryptable: UndecryptableSink
    ) -> None:
        event: Event = item.event
        if not item.retry and self.state.was_handled(event.event_id):
            return
        joined = self.state.joined_at(item.room.room_id)
        if joined is not None and event.server_timestamp < joined:
            return  # history from before we were invited: not addressed to us
        source = event.source
        if isinstance(event, MegolmEvent):
            # A key may have arrived in this very sync (to-device events come first).
            try:
                # Whatever it is: from_event takes m.text only, and an encrypted notice
                # must be ignored, not answered as "undecryptable".
                event = self.nio.decrypt_event(event)
            except Exception:
                pass
        msg = from_event(item.room, event, self.nio.user_id, self.resolve_device)
        if msg is None:
            return
        if isinstance(msg, Undecryptable):
            assert isinstance(event, MegolmEvent)
            self.state.mark_handled(event.event_id)
            self._awaiting_keys[event.event_id] = item
            while len(self._awaiting_keys) > 200:
                self._awaiting_keys.pop(next(iter(self._awaiting_keys)))
            on_undecryptable(msg)
            try:
                await self.nio.request_room_key(event)
            except LocalProtocolError:
                pass  # already requested for this session: one request is enough
            return
        # The inbox keeps the event as it came (ciphertext in an encrypted room), never
        # the decrypted body; a restart decrypts it again from nio's key store.
        if self.state.queue(event.event_id, item.room.room_id, source) or item.retry:
            on_message(msg)

    async def _on_message(self, room: MatrixRoom, event: RoomMessageText | MegolmEvent) -> None:
        self._pending.append(_Pending(room, event))

    async def _on_invite(self, room: MatrixRoom, event: InviteMemberEvent) -> None:
        if event.state_key != self.nio.user_id or event.membership != "invite":
            return
        if event.sender not in self.operators:
            log.info("invite_declined", extra=fields(room=room.room_id, inviter=event.sender))
            await patiently(lambda: self.nio.room_leave(room.room_id), "leave")
            return
        resp = await patiently(lambda: self.nio.join(room.room_id), "join")
        if isinstance(resp, JoinError):
            log.warning("join_failed", extra=fields(room=room.room_id, error=resp.message))
            return
        self.state.record_join(room.room_id, int(time.time() * 1000) - 2000)
        log.info("joined", extra=fields(room=room.room_id, inviter=event.sender))

    # -- trust ---------------------------------------------------------------------------

    def resolve_device(self, user_id: str, sender_key: str | None) -> tuple[str | None, bool]:
        return sender_device(self.nio, user_id, sender_key)

    async def apply_trust(self) -> None:
        """Decide every known device of every room member before anything is encrypted.

        The one trust path (`bot.matrix.trust.trust_pass`): identity, policy, nio's store,
        each change logged with the reason that decided it. Announcements of new operator
        devices are queued, not sent here: this runs inside the send path, which must not
        re-enter itself.
        """
        done = trust_pass(
            self.nio,
            self.state,
            self.operators,
            self.cfg.matrix.trust.policy,
            self.identity_trust,
            # Mid crisis reply: `one_off` restores these devices' blacklist itself.
            skip=self._reaching,
        )
        if done.identity_stale:
            self._identity_stale = True  # a device the last keys query did not know
        self._announcements += [(n.user_id, n.device_id, n.fingerprint) for n in done.new_devices]

    async def _flush_announcements(self) -> None:
        pending, self._announcements = self._announcements, []
        for user_id, device_id, fp in pending:
            await self._announce_new_device(user_id, device_id, fp)
        if self.identity_trust is not None:
            for notice in self.identity_trust.take_announcements():
                await self._identity_notice(notice)

    async def _announce_new_device(self, user_id: str, device_id: str, fp: str) -> None:
        text = (
            f"Operator {user_id} has a new device {device_id} (key {fp}). It is trusted under "
            f"the `{self.cfg.matrix.trust.policy.value}` policy; if this wasn't you, tell the "
            "other operators now."
        )
        ops = self.cfg.operators_room
        rooms = [ops] if ops else [r for r, room in self.nio.rooms.items() if user_id in room.users]
        for room_id in rooms:
            about = f"{room_id}\0{user_id}\0{device_id}\0{fp}"
            # Sent from the sync loop's housekeeping: queued, never awaited there.
            self._notice(room_id, text, txn_id("device", about))

    async def _identity_notice(self, text: str) -> None:
        ops = self.cfg.operators_room
        for room_id in [ops] if ops else self.joined_rooms():
            # One notice per identity change and room, even when re-sent after a crash.
            self._notice(room_id, text, txn_id("identity", f"{room_id}\0{text}"))

    def _notice(self, room_id: str, text: str, txn: str) -> None:
        """Notices leave on their own task: housekeeping runs on the sync loop, which must
        not stall while a rate-limited notice waits its turn (`bot.matrix.sender`)."""
        task = asyncio.create_task(self.sender.text(room_id, text, txn), name="notice")
        self._notices.add(task)
        task.add_done_callback(self._notices.discard)

    # -- what the sender needs (`bot.matrix.sender.RoomKeys`) ----------------------------

    async def prepare(self, room_id: str) -> None:
        await self._prepare_room(room_id)

    async def decide(self) -> None:
        async with self._crypto_lock:
            await self.apply_trust()

    @asynccontextmanager
    async def one_off(self, room_id: str, writer: str) -> AsyncIterator[None]:
        """A Megolm session for one message `writer` can read, whatever their trust.

        Why: the trust policy blacklists every device it does not trust, so an ordinary send
        never gives a non-operator's device the room key, and a person in crisis who is not
        an operator would get a reply their client cannot decrypt. Megolm cannot add readers
        for one message inside a session (whoever holds a session's key reads every later
        message in it), so this one reply gets a Megolm session of its own:

        1. rotate the room's outbound session (`Olm.rotate_outbound_group_session`): the
           reply starts a session no earlier or later message uses;
        2. lift the blacklist on the writer's devices for this send only (`ignore_device`:
           they get keys but are not marked verified) and `share_group_session`: the new
           session goes to the room's devices that are not blacklisted, that is the
           writer's and those the policy already trusts (the operators'); every other
           member's devices stay blacklisted and get nothing;
        3. the sender's `room_send` (inside this block): the session is shared, so nio only
           encrypts with it;
        4. rotate again and blacklist the writer's devices again, so the room's next
           message starts a fresh session shared by the policy alone.

        The sender holds the room's turn, which keeps this room's other sends out of the
        one-off session; the crypto lock keeps every other key share (in any room) from
        seeing the lifted blacklist, and trust housekeeping on the sync loop skips the
        devices in `_reaching` meanwhile. A 429 leaves this block before its wait, so no
        other room waits on a rate-limited crisis reply. Public nio API only. Rejected:
        `room_send(ignore_unverified_devices=True)` (nio skips blacklisted devices, and it
        would leave the writer in the room's session for good); a to-device message
        (clients do not show it in the room); lifting the blacklist for the room's ordinary
        session (the writer would read what follows).

        When the room is not encrypted, or the policy already trusts every device of the
        writer (an operator), this is an ordinary send.
        """
        client = self.nio
        olm = client.olm
        room = client.rooms.get(room_id)
        if room is None or not room.encrypted or olm is None:
            yield
            return
        async with self._crypto_lock:
            await self.apply_trust()  # decide what appeared since the room was prepared
            lifted = [
                d
                for d in client.device_store.active_user_devices(writer)
                if olm.is_device_blacklisted(d)
            ]
            if not lifted:
                yield
                return
            self._reaching = {(writer, d.id) for d in lifted}
            olm.rotate_outbound_group_session(room_id)
            try:
                for device in lifted:
                    while olm.is_device_blacklisted(device):
                        client.unblacklist_device(device)
                    client.ignore_device(device)
                shared = await client.share_group_session(room_id)
                reached = (
                    sorted(d for u, d in shared.users_shared_with if u == writer)
                    if isinstance(shared, ShareGroupSessionResponse)
                    else []
                )
                yield
            finally:
                olm.rotate_outbound_group_session(room_id)
                for device in lifted:
                    client.blacklist_device(device)
                self._reaching = set()
        log.info(
            "crisis_reply_one_off_session",
            extra=fields(room=room_id, user=writer, devices=len(lifted), reached=len(reached)),
        )
        if not reached:
            log.warning(
                "crisis_reply_unreached",
                extra=fields(room=room_id, user=writer, devices=len(lifted)),
            )

    async def _prepare_room(self, room_id: str) -> None:
        """Decide every device and share the room key before the send, one room at a time."""
        client = self.nio
        async with self._crypto_lock:
            room = client.rooms.get(room_id)
            if room is not None and room.encrypted and not room.members_synced:
                await client.joined_members(room_id)
            if client.should_query_keys:
                await client.keys_query()
                self._identity_stale = True
            await self._refresh_identities()
            await self.apply_trust()
            olm = client.olm
            if room is not None and room.encrypted and olm is not None:
                if olm.should_share_group_session(room_id):
                    await client.share_group_session(room_id)

    async def create_room(
        self, name: str, topic: str, invite: list[str], encrypted: bool = True
    ) -> str:
        initial_state = []
        if encrypted:
            initial_state.append(
                {
                    "type": "m.room.encryption",
                    "state_key": "",
                    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
                }
            )
        resp = await patiently(
            lambda: self.nio.room_create(
                name=name, topic=topic, invite=invite, initial_state=initial_state
            ),
            "create_room",
        )
        if isinstance(resp, RoomCreateError):
            raise MatrixError(f"could not create room {name!r}: {resp.message}")
        self.state.record_join(resp.room_id, int(time.time() * 1000) - 2000)
        return str(resp.room_id)

    def joined_rooms(self) -> list[str]:
        return list(self.nio.rooms)

    def homeserver_name(self) -> str:
        return self.cfg.matrix.user_id.split(":", 1)[1]
