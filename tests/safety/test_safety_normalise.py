"""Each normalisation step on its own: these are what make the rules short."""

from __future__ import annotations

from fleetcore.safety import normalise as nm


def test_nfkc_fullwidth_and_case() -> None:
    assert nm.normalise("ＩＷＡＮＴ ＴＯ ＤＩＥ") == "iwant to die"


def test_zero_width_and_soft_hyphen_removed() -> None:
    assert nm.normalise("ki\u200bll my\u200dse\u00adlf\ufeff") == "kill myself"


def test_combining_marks_and_accents_removed() -> None:
    assert nm.normalise("ki\u0301ll\u0336 myse\u0308lf") == "kill myself"
    assert nm.normalise("Não aguento mais, ¿Cómo?") == "nao aguento mais, como?"


def test_confusables_cyrillic_and_greek() -> None:
    # Cyrillic а, е, о, і and Greek ο, ι look like Latin letters.
    assert nm.normalise("kіll mysеlf") == "kill myself"
    assert nm.normalise("suιcιde nοte") == "suicide note"
    assert nm.normalise("ЅUІСІDЕ") == "suicide"


def test_curly_quotes_and_whitespace() -> None:
    assert nm.normalise("I\u2019m   so\n\ttired") == "i'm so tired"


def test_deleet_only_when_leet_present() -> None:
    assert nm.deleet("1 w4n7 70 d13") == "i want to die"
    assert nm.deleet("k!ll mys3lf") == "kill myself"
    assert nm.deleet("port 8080 on pr 42") == "port 8080 on pr 42"  # no mixed tokens


def test_uncensor_fits_sensitive_words_only() -> None:
    assert nm.uncensor("i want to k*ll mys*lf") == "i want to kill myself"
    assert nm.uncensor("thinking about su*c*de") == "thinking about suicide"
    assert nm.uncensor("run make *test*") == "run make *test*"


def test_collapse_spaced_and_dotted_letters() -> None:
    text, runs = nm.collapse_spaced("i w a n t t o d i e")
    assert text == "iwanttodie" and runs == ["iwanttodie"]
    text, _ = nm.collapse_spaced("please k.i.l.l m-y-s-e-l-f now")
    assert text == "please killmyself now"  # runs join; run-together phrases catch them
    assert nm.collapse_spaced("a b")[1] == []  # too short to be a run
    assert nm.undot("i.want.to.d.i.e") == "i want to d i e"


def test_squeeze_repeated_letters() -> None:
    assert "i want to die" in nm.squeeze("i want to dieeeeee")
    assert "kill" in nm.squeeze("killllll")[1]
    assert nm.squeeze("sleep well") == ()


def test_long_tokens_and_rot13() -> None:
    assert nm.long_tokens("imthinkingaboutsuicide!!! ok") == ["imthinkingaboutsuicide"]
    assert nm.rot13(nm.rot13("hello world")) == "hello world"
    assert nm.rot13("v jnag gb qvr") == "i want to die"
