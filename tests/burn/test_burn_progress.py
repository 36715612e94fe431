from bot.burn.progress import BurnProgress, DigestClock, ResultLine


def line(n: int, outcome: str = "done") -> ResultLine:
    return ResultLine(n, outcome, f"summary {n}", f"http://g/o/r/issues/{n}", "wolf-1", "p")


def test_progress_counts_once_and_renders_bar_rate_eta() -> None:
    p = BurnProgress("b1", "proj", "http://g/o/r", total=4, started_at=0.0)
    assert p.add(line(1))
    assert not p.add(line(1))  # a redelivered result changes nothing
    p.add(line(2, "failed"))
    text = p.render(now=60.0)
    assert "2/4" in text and "done 1" in text and "failed 1" in text
    assert "rate 2.0/min" in text and "ETA 1m00s" in text
    assert "█" * 10 + "░" * 10 in text


def test_final_render_is_a_summary_with_links() -> None:
    p = BurnProgress("b1", "proj", "http://g/o/r", total=2, started_at=0.0)
    p.add(line(1))
    p.add(line(2, "needs_human"))
    text = p.render(now=10.0)
    assert text.startswith("Burn finished")
    assert "[#1](http://g/o/r/issues/1)" in text and "needs human: [#2]" in text


def test_withdrawn_tasks_complete_a_stopped_burn() -> None:
    p = BurnProgress("b1", "proj", "u", total=5, started_at=0.0)
    p.add(line(1))
    p.withdrawn = 4
    assert p.complete


def test_digests_are_batched() -> None:
    p = BurnProgress("b1", "proj", "u", total=50, started_at=0.0)
    clock = DigestClock(last=0.0, interval_s=30)
    sent = 0
    for i in range(50):
        now = i * 0.2  # 50 results in 10 s
        p.add(line(i))
        final = p.complete
        if clock.due(now, pending=True, final=final):
            assert p.take_digest() is not None
            clock.mark(now)
            sent += 1
    assert sent == 1  # only the final digest
    assert p.take_digest() is None
