"""Which wolf works an issue: a race-free claim rule over Gitea comments and labels.

Gitea has no compare-and-set on labels, so labels alone cannot settle a race. Comment ids
can: they grow in creation order, and a wolf lists the comments only after its own claim
comment exists, so every racer sees every earlier claim. The rule "lowest claim comment id
among live wolves (and me) wins" therefore gives the same answer to every wolf:

1. Read the labels. An `assigned:<other>` whose wolf is alive means back off (SKIP).
2. Post `claim_comment_body(me, task_id)` and add the label `assigned:<me>`.
3. List the comments; `decide_after_claim` says who won.

A claim by a dead wolf (heartbeat expired) is stale: it neither blocks nor wins, and the
winner deletes its comment and label. A wolf's own earlier claim (the same wolf restarted
and the task redelivered) counts as its own. On release (work done, or lost) a wolf deletes
its claim comment(s) and removes its label. `still_mine` re-checks before every write.

If wolves disagree about a dying wolf (one still sees it alive, the other not), the worst
case is that both back off; two wolves can never both win while each sees the other alive,
and a wolf always sees itself alive. Pure: the caller does the I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

LABEL_PREFIX = "assigned:"
_NAME = r"[A-Za-z0-9_-]{1,64}"
_NAME_RE = re.compile(rf"^{_NAME}$")
_CLAIM_RE = re.compile(rf"<!--\s*fleet-claim\s+wolf=({_NAME})\s+task=([^\s<>]+)\s*-->")

Alive = Callable[[str], bool] | AbstractSet[str]
Comments = Sequence[tuple[int, str]]


@dataclass(frozen=True)
class Claim:
    wolf: str
    task_id: str


def claim_marker(wolf: str, task_id: str) -> str:
    if not _NAME_RE.match(wolf):
        raise ValueError(f"wolf name {wolf!r} must be 1-64 letters, digits, '-' or '_'")
    if not re.fullmatch(r"[^\s<>]+", task_id):
        raise ValueError(f"task id {task_id!r} cannot go in a claim marker")
    return f"<!-- fleet-claim wolf={wolf} task={task_id} -->"


def claim_comment_body(wolf: str, task_id: str) -> str:
    return (
        f"{claim_marker(wolf, task_id)}\n"
        f"🐺 Wolf `{wolf}` is triaging this issue (task `{task_id}`). "
        "This note disappears when it is done."
    )


def parse_claim(body: str) -> Claim | None:
    match = _CLAIM_RE.search(body)
    return Claim(match.group(1), match.group(2)) if match else None


def claim_label(wolf: str) -> str:
    return f"{LABEL_PREFIX}{wolf}"


def label_wolf(label: str) -> str | None:
    """The wolf an `assigned:<name>` label names, or None for any other label."""
    if not label.startswith(LABEL_PREFIX):
        return None
    name = label[len(LABEL_PREFIX) :]
    return name if _NAME_RE.match(name) else None


def _checker(me: str, alive: Alive) -> Callable[[str], bool]:
    if callable(alive):
        fn = alive
        return lambda name: name == me or bool(fn(name))
    names = alive
    return lambda name: name == me or name in names


@dataclass(frozen=True)
class PreClaim:
    proceed: bool
    reason: str
    # The live wolf the issue is assigned to, when skipping.
    holder: str | None = None
    # `assigned:` labels of dead wolves: remove them once the claim is won.
    stale_labels: tuple[str, ...] = ()

    @property
    def skip(self) -> bool:
        return not self.proceed


def decide_before_claim(me: str, label_names: Iterable[str], alive: Alive) -> PreClaim:
    is_alive = _checker(me, alive)
    holders = [(label, wolf) for label in label_names if (wolf := label_wolf(label)) is not None]
    live = sorted({w for _, w in holders if w != me and is_alive(w)})
    if live:
        return PreClaim(False, f"assigned to {live[0]}, who is alive", holder=live[0])
    stale = tuple(sorted({label for label, w in holders if w != me}))
    if stale:
        reason = f"taking over from dead {', '.join(label_wolf(s) or s for s in stale)}"
    elif any(w == me for _, w in holders):
        reason = "already assigned to me (an earlier delivery)"
    else:
        reason = "unassigned"
    return PreClaim(True, reason, stale_labels=stale)


@dataclass(frozen=True)
class ClaimOutcome:
    won: bool
    # The winning wolf; None when no claim of mine is visible (nothing to win with).
    winner: str | None
    reason: str
    winning_comment_id: int | None = None
    # Every claim comment of mine on the issue: delete them all on release.
    my_comment_ids: tuple[int, ...] = ()
    # Cleanup for the winner only (empty when lost): dead wolves' claims and labels.
    stale_comment_ids: tuple[int, ...] = ()
    stale_labels: tuple[str, ...] = field(default=())


def _claims(comments: Comments) -> list[tuple[int, Claim]]:
    out = [(cid, claim) for cid, body in comments if (claim := parse_claim(body)) is not None]
    return sorted(out, key=lambda pair: pair[0])


def decide_after_claim(
    me: str, comments: Comments, alive: Alive, label_names: Iterable[str] = ()
) -> ClaimOutcome:
    """Who won, judged on a listing made after my own claim comment was created.

    `label_names`, if given, adds dead wolves' labels that have no claim comment left to
    the winner's cleanup.
    """
    is_alive = _checker(me, alive)
    claims = _claims(comments)
    mine = tuple(cid for cid, c in claims if c.wolf == me)
    valid = [(cid, c) for cid, c in claims if is_alive(c.wolf)]
    if not mine:
        return ClaimOutcome(False, None, "my claim comment is not on the issue")
    winner_id, winner = valid[0]  # mine are always valid, so there is at least one
    if winner.wolf != me:
        return ClaimOutcome(
            False,
            winner.wolf,
            f"{winner.wolf} claimed first (comment {winner_id})",
            winning_comment_id=winner_id,
            my_comment_ids=mine,
        )
    stale = [(cid, c) for cid, c in claims if not is_alive(c.wolf)]
    dead = {c.wolf for _, c in stale}
    dead |= {w for label in label_names if (w := label_wolf(label)) and not is_alive(w)}
    reason = "claimed first" + (
        f"; taking over from dead {', '.join(sorted(dead))}" if dead else ""
    )
    return ClaimOutcome(
        True,
        me,
        reason,
        winning_comment_id=winner_id,
        my_comment_ids=mine,
        stale_comment_ids=tuple(cid for cid, _ in stale),
        stale_labels=tuple(claim_label(w) for w in sorted(dead)),
    )


def still_mine(me: str, task_id: str, comments: Comments, alive: Alive) -> bool:
    """Re-check before a write: my claim for this task is still there and still wins.

    It is gone if another wolf took over while my heartbeat had lapsed; then I must not
    write, even though I am alive again.
    """
    if not any(c.wolf == me and c.task_id == task_id for _, c in _claims(comments)):
        return False
    return decide_after_claim(me, comments, alive).won
