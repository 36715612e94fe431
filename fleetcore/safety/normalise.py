"""Text normalisation for the crisis detector.

People in distress, and jailbreaks, hide intent behind look-alike letters, zero-width
characters, leetspeak, censor stars, spacing and repeated letters. Every trick here maps many
spellings onto one, so the rules in `rules.py` can stay a short list of plain phrases. All
functions are pure, linear in the input, and use only precompiled tables.
"""

from __future__ import annotations

import re
import unicodedata

# Zero-width and invisible formatting characters (and the soft hyphen) that split words
# without showing anything.
_INVISIBLE = dict.fromkeys(
    [
        *range(0x200B, 0x2010),
        *range(0x2060, 0x2065),
        0xFEFF,
        0x00AD,
        0x034F,
        0x180E,
        0x061C,
        0x115F,
        0x1160,
        0x3164,
    ]
)

# Look-alikes (lower case; applied after casefold). Cyrillic and Greek letters that render
# like Latin ones, plus Latin letters NFKD does not decompose.
_CONFUSABLES = str.maketrans(
    {
        # Cyrillic
        "а": "a",
        "в": "b",
        "е": "e",
        "ё": "e",
        "г": "r",
        "д": "d",
        "з": "3",
        "и": "u",
        "і": "i",
        "ї": "i",
        "ј": "j",
        "к": "k",
        "л": "n",
        "м": "m",
        "н": "h",
        "о": "o",
        "п": "n",
        "р": "p",
        "с": "c",
        "т": "t",
        "у": "y",
        "х": "x",
        "ѕ": "s",
        "ԁ": "d",
        "ӏ": "l",
        "ь": "b",
        "ԛ": "q",
        "ԝ": "w",
        "ү": "y",
        "һ": "h",
        "ɡ": "g",
        # Greek
        "α": "a",
        "β": "b",
        "γ": "y",
        "δ": "d",
        "ε": "e",
        "η": "n",
        "ι": "i",
        "κ": "k",
        "μ": "u",
        "ν": "v",
        "ο": "o",
        "ρ": "p",
        "σ": "o",
        "ς": "s",
        "τ": "t",
        "υ": "u",
        "χ": "x",
        "ω": "w",
        "ϲ": "c",
        "ϳ": "j",
        # Latin letters without a decomposition
        "ß": "ss",
        "ø": "o",
        "æ": "ae",
        "œ": "oe",
        "ł": "l",
        "ı": "i",
        "đ": "d",
        "ð": "d",
        "þ": "th",
        "ɑ": "a",
        "ɩ": "i",
        "ɪ": "i",
        "ʏ": "y",
        "ᴀ": "a",
        "ᴇ": "e",
        "ᴏ": "o",
        # Punctuation look-alikes
        "\u2018": "'",
        "\u2019": "'",
        "\u201b": "'",
        "\u2032": "'",
        "`": "'",
        "\u00b4": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
    }
)

_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Fold a message to plain lower-case Latin with single spaces.

    Accents are dropped too (NFKD, then combining marks removed), so the multilingual rules
    are written once without accents and also hold when someone types without them. This
    also removes "Zalgo" combining overlays.
    """
    text = unicodedata.normalize("NFKC", text)
    if not text.isascii():
        # Look-alikes first (they are not ASCII), then decompose accents and keep ASCII:
        # everything left outside ASCII is emoji, symbols or scripts the rules do not
        # cover, and dropping it also closes "k😀ill"-style splits.
        text = text.translate(_INVISIBLE).casefold().translate(_CONFUSABLES)
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = text.lower()
    return _SPACES.sub(" ", text).strip()


# Leetspeak: digits and symbols standing in for letters. Applied to a separate view so
# ordinary numbers in the base view stay numbers.
_LEET = str.maketrans(
    {
        "4": "a",
        "3": "e",
        "1": "i",
        "0": "o",
        "5": "s",
        "7": "t",
        "8": "b",
        "9": "g",
        "6": "g",
        "2": "z",
        "+": "t",
    }
)
_LEET_SYMBOL = re.compile(r"(?<=[a-z0-9])[!|$@](?=[a-z0-9])|(?<=[a-z])[!|$@](?=\W|$)")
_LEET_SYMBOL_MAP = {"!": "i", "|": "l", "$": "s", "@": "a"}
_HAS_LEET = re.compile(r"[a-z][0-9!|$@+]|[0-9!|$@+][a-z]")


def deleet(text: str) -> str:
    """Map leetspeak to letters; returns `text` itself when nothing looks like leet."""
    # Only when some word mixes letters with digits or symbols ("w4n7", "d!e"); then bare
    # digit words ("70" for "to") are mapped too.
    if not _HAS_LEET.search(text):
        return text
    text = _LEET_SYMBOL.sub(lambda m: _LEET_SYMBOL_MAP[m.group()], text)
    return text.translate(_LEET)


# Censored words ("k*ll", "su*c*de", "mys#lf"): a token with star-like characters between
# letters is matched, letter for letter, against a small list of words people censor.
_CENSOR_WORDS = (
    "kill",
    "killing",
    "killed",
    "myself",
    "suicide",
    "suicidal",
    "die",
    "dying",
    "dead",
    "death",
    "self",
    "harm",
    "cut",
    "cutting",
    "life",
    "end",
    "hang",
    "unalive",
    "overdose",
    "wrist",
    "wrists",
    "alive",
    "live",
    "living",
    "want",
    "pills",
    "murder",
)
_CENSOR_BY_LEN: dict[int, tuple[str, ...]] = {}
for _w in _CENSOR_WORDS:
    _CENSOR_BY_LEN[len(_w)] = (*_CENSOR_BY_LEN.get(len(_w), ()), _w)
_CENSORED_TOKEN = re.compile(r"(?<![a-z*#_.])[a-z]*[*#_.%][a-z*#_.%]*[a-z]*(?![a-z*#_.])")
_CENSOR_CHARS = frozenset("*#_.%")


def _uncensor_token(tok: str) -> str:
    if not any(c.isalpha() for c in tok) or len(tok) > 12:
        return tok
    for word in _CENSOR_BY_LEN.get(len(tok), ()):
        hidden = 0
        for a, b in zip(tok, word, strict=True):
            if a in _CENSOR_CHARS:
                hidden += 1
            elif a != b:
                break
        else:
            if 0 < hidden < len(word):
                return word
    return tok


def uncensor(text: str) -> str:
    """Fill in censor stars when the token fits exactly one of a few sensitive words."""
    if not any(c in text for c in "*#%") and "_" not in text:
        return text
    return _CENSORED_TOKEN.sub(lambda m: _uncensor_token(m.group()), text)


# Spaced or dotted single letters: "k i l l", "k.i.l.l", "k-i-l-l". Three or more in a run.
_SPACED_RUN = re.compile(r"(?<![^\s\"'(])(?:[a-z0-9'][ .\-_*]{1,3}){2,}[a-z0-9'](?![a-z0-9])")
_RUN_SEP = re.compile(r"[ .\-_*]+")


def collapse_spaced(text: str) -> tuple[str, list[str]]:
    """Join runs of spaced letters; returns the new text and the joined runs.

    The joined runs lose word boundaries ("iwanttodie"), so callers also match them against
    run-together phrases.
    """
    runs: list[str] = []

    def join(m: re.Match[str]) -> str:
        run = _RUN_SEP.sub("", m.group())
        runs.append(run)
        return run

    return _SPACED_RUN.sub(join, text), runs


_REPEAT3 = re.compile(r"([a-z])\1{2,}")


def squeeze(text: str) -> tuple[str, ...]:
    """Views with letter runs ("dieeeee", "killlll") cut to one and to two letters."""
    if not _REPEAT3.search(text):
        return ()
    return (_REPEAT3.sub(r"\1", text), _REPEAT3.sub(r"\1\1", text))


_LONG_TOKEN = re.compile(r"[a-z']{12,}")


def long_tokens(text: str, limit: int = 64) -> list[str]:
    """Run-together words ("IMTHINKINGABOUTSUICIDE") worth matching without spaces."""
    out: list[str] = []
    for m in _LONG_TOKEN.finditer(text):
        out.append(m.group().replace("'", ""))
        if len(out) >= limit:
            break
    return out


_ROT13 = str.maketrans("abcdefghijklmnopqrstuvwxyz", "nopqrstuvwxyzabcdefghijklm")


def rot13(text: str) -> str:
    return text.translate(_ROT13)


_DOTTED = re.compile(r"(?<=[a-z])[._+~](?=[a-z])")


def undot(text: str) -> str:
    """ "i.want.to.die" -> "i want to die"; returns `text` itself when nothing is dotted."""
    if not _DOTTED.search(text):
        return text
    return _DOTTED.sub(" ", text)
