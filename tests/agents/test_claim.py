"""The claim rule: every wolf reaches the same verdict from the same comments."""

from __future__ import annotations

import itertools

import pytest

from agents.claim import (
    Claim,
    claim_comment_body,
    claim_label,
    decide_after_claim,
    decide_before_claim,
    label_wolf,
    parse_claim,
    still_mine,
)


def claim(cid: int, wolf: str, task: str = "b1-7") -> tuple[int, str]:
    return cid, claim_comment_body(wolf, task)


HUMAN = (5, "I can reproduce this on 2.3.1 too.")


def test_claim_comment_round_trips_and_reads_as_a_sentence() -> None:
    body = claim_comment_body("wolf-1", "b1-7")
    assert parse_claim(body) == Claim("wolf-1", "b1-7")
    assert "<!-- fleet-claim wolf=wolf-1 task=b1-7 -->" in body
    visible = body.split("-->", 1)[1]
    assert "wolf-1" in visible and "triaging" in visible


@pytest.mark.parametrize(
    "body",
    [
        "I claim this",
        "<!-- fleet-claim wolf= task=b1 -->",
        "<!-- fleet-claim wolf=a.b task=b1 -->",
        "&lt;!-- fleet-claim wolf=w task=b1 --&gt;",
        "<!-- fleet-task: b1-7 -->",
    ],
)
def test_parse_claim_ignores_other_text(body: str) -> None:
    assert parse_claim(body) is None


def test_claim_body_refuses_names_that_break_the_marker() -> None:
    with pytest.raises(ValueError):
        claim_comment_body("wolf 1", "b1-7")
    with pytest.raises(ValueError):
        claim_comment_body("wolf-1", "b1 7")


def test_labels() -> None:
    assert claim_label("wolf-1") == "assigned:wolf-1"
    assert label_wolf("assigned:wolf-1") == "wolf-1"
    assert label_wolf("bug") is None and label_wolf("assigned:") is None


# --- before claiming -------------------------------------------------------------------


def test_an_unassigned_issue_proceeds() -> None:
    pre = decide_before_claim("wolf-1", ["bug", "ui"], set())
    assert pre.proceed and not pre.skip and pre.stale_labels == () and pre.reason == "unassigned"


def test_a_live_holder_makes_others_back_off() -> None:
    pre = decide_before_claim("wolf-1", ["bug", "assigned:wolf-2"], {"wolf-2"})
    assert pre.skip and pre.holder == "wolf-2"
    assert pre.reason == "assigned to wolf-2, who is alive"


def test_a_dead_holders_label_is_stale() -> None:
    pre = decide_before_claim("wolf-1", ["assigned:wolf-2", "bug"], lambda name: False)
    assert pre.proceed and pre.stale_labels == ("assigned:wolf-2",)
    assert "wolf-2" in pre.reason


def test_my_own_label_from_an_earlier_delivery_is_no_obstacle() -> None:
    pre = decide_before_claim(
        "wolf-1", ["assigned:wolf-1"], set()
    )  # even if "dead" to the registry
    assert pre.proceed and pre.stale_labels == ()
    assert "earlier delivery" in pre.reason


def test_one_live_holder_among_dead_ones_still_blocks() -> None:
    pre = decide_before_claim("wolf-1", ["assigned:dead", "assigned:wolf-3"], {"wolf-3"})
    assert pre.skip and pre.holder == "wolf-3" and pre.stale_labels == ()


def test_alive_may_be_a_set_or_a_callable() -> None:
    labels = ["assigned:wolf-2"]
    assert decide_before_claim("wolf-1", labels, {"wolf-2"}) == decide_before_claim(
        "wolf-1", labels, lambda n: n == "wolf-2"
    )


# --- after claiming --------------------------------------------------------------------


def test_the_lowest_claim_wins() -> None:
    comments = [HUMAN, claim(10, "wolf-1"), claim(12, "wolf-2")]
    alive = {"wolf-1", "wolf-2"}
    one = decide_after_claim("wolf-1", comments, alive)
    two = decide_after_claim("wolf-2", comments, alive)
    assert one.won and one.winner == "wolf-1" and one.winning_comment_id == 10
    assert not two.won and two.winner == "wolf-1" and two.my_comment_ids == (12,)
    assert two.stale_comment_ids == () and two.stale_labels == ()


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_racing_wolves_agree_whatever_order_they_list_in(order: tuple[int, ...]) -> None:
    """Three wolves claimed at once; each lists the same comments, in any order."""
    comments = [claim(21, "wolf-b"), claim(20, "wolf-c"), claim(22, "wolf-a"), HUMAN]
    alive = {"wolf-a", "wolf-b", "wolf-c"}
    listing = [comments[i] for i in order] + [comments[3]]
    verdicts = {w: decide_after_claim(w, listing, alive) for w in alive}
    assert {v.winner for v in verdicts.values()} == {"wolf-c"}
    assert [w for w, v in verdicts.items() if v.won] == ["wolf-c"]


def test_a_wolf_that_listed_before_a_later_claim_still_agrees() -> None:
    """wolf-1 lists before wolf-2's (later) claim exists: it wins, and so says wolf-2."""
    early = decide_after_claim("wolf-1", [claim(10, "wolf-1")], {"wolf-2"})
    late = decide_after_claim("wolf-2", [claim(10, "wolf-1"), claim(11, "wolf-2")], {"wolf-1"})
    assert early.won and not late.won and late.winner == "wolf-1"


def test_a_dead_wolfs_claim_is_taken_over_and_cleaned() -> None:
    comments = [claim(3, "wolf-dead", "b0-7"), HUMAN, claim(10, "wolf-1"), claim(12, "wolf-2")]
    alive = {"wolf-1", "wolf-2"}
    one = decide_after_claim("wolf-1", comments, alive, label_names=["assigned:wolf-dead"])
    assert one.won and one.winning_comment_id == 10
    assert one.stale_comment_ids == (3,)
    assert one.stale_labels == ("assigned:wolf-dead",)
    assert "wolf-dead" in one.reason
    two = decide_after_claim("wolf-2", comments, alive)
    assert not two.won and two.winner == "wolf-1"
    assert two.stale_comment_ids == ()  # only the winner cleans up


def test_labels_without_a_claim_comment_are_cleaned_by_the_winner() -> None:
    out = decide_after_claim(
        "wolf-1",
        [claim(10, "wolf-1")],
        {"wolf-live"},
        label_names=["assigned:wolf-gone", "assigned:wolf-1", "bug", "assigned:wolf-live"],
    )
    assert out.won and out.stale_comment_ids == ()
    assert out.stale_labels == ("assigned:wolf-gone",)


def test_a_live_label_without_a_claim_comment_blocks_before_claiming() -> None:
    """Its wolf may be between posting and listing, or releasing: don't race it."""
    pre = decide_before_claim("wolf-1", ["assigned:wolf-2"], {"wolf-2"})
    assert pre.skip


def test_my_own_stale_claim_from_an_earlier_delivery_counts_as_mine() -> None:
    """wolf-1 crashed after claiming, restarted (same name) and got the task again."""
    comments = [claim(8, "wolf-1"), claim(11, "wolf-2"), claim(14, "wolf-1")]
    # Before its new heartbeat lands, the registry may not list wolf-1 yet.
    mine = decide_after_claim("wolf-1", comments, {"wolf-2"})
    assert mine.won and mine.winning_comment_id == 8 and mine.my_comment_ids == (8, 14)
    assert mine.stale_comment_ids == ()
    theirs = decide_after_claim("wolf-2", comments, {"wolf-1", "wolf-2"})
    assert not theirs.won and theirs.winner == "wolf-1"


def test_when_my_claim_is_missing_i_do_not_win() -> None:
    out = decide_after_claim("wolf-1", [HUMAN, claim(12, "wolf-2")], {"wolf-2"})
    assert not out.won and out.winner is None and out.my_comment_ids == ()


def test_when_everyone_else_is_dead_i_win_alone() -> None:
    comments = [claim(1, "a"), claim(2, "b"), claim(3, "wolf-1")]
    out = decide_after_claim("wolf-1", comments, set())
    assert out.won and out.stale_comment_ids == (1, 2)
    assert out.stale_labels == ("assigned:a", "assigned:b")


# --- before each write -----------------------------------------------------------------


def test_still_mine_while_my_claim_wins() -> None:
    comments = [HUMAN, claim(10, "wolf-1"), claim(12, "wolf-2")]
    assert still_mine("wolf-1", "b1-7", comments, {"wolf-2"})
    assert not still_mine("wolf-2", "b1-7", comments, {"wolf-1"})


def test_not_mine_once_another_wolf_took_over_and_deleted_my_claim() -> None:
    """My heartbeat lapsed, wolf-2 took over and cleaned up; I am back but must not write."""
    after_takeover = [HUMAN, claim(12, "wolf-2")]
    assert not still_mine("wolf-1", "b1-7", after_takeover, {"wolf-2"})


def test_not_mine_when_only_a_claim_for_another_task_remains() -> None:
    assert not still_mine("wolf-1", "b1-7", [claim(10, "wolf-1", "b0-7")], set())
    assert still_mine("wolf-1", "b1-7", [claim(10, "wolf-1", "b0-7"), claim(11, "wolf-1")], set())


def test_not_mine_when_a_live_earlier_claim_appears() -> None:
    comments = [claim(9, "wolf-2"), claim(10, "wolf-1")]
    assert not still_mine("wolf-1", "b1-7", comments, {"wolf-2"})
    assert still_mine("wolf-1", "b1-7", comments, set())  # wolf-2 died: its claim is stale
