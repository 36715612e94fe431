"""The crisis-line table: recognise a real line in a reply, and list the lines for a locale.

The table (`data/helplines.json`, with its sources) holds crisis lines by country: number or
short code, text option, name, languages, URL, and aliases (other numbers, names and hosts
of the same service), plus each country's emergency numbers. It is used twice:

- `scan(text)` finds what a reply offers as a resource: phone numbers in any common notation
  (988, 9-8-8, 116 123, 0800 111 0 111, 13 11 14, +49 800 1110111, 1-800-273-TALK), text
  lines ("text HOME to 741741"), service names, hosts and e-mail addresses. Each mention is
  `known` (in the table) or not: a number presented as a line that is not in the table is a
  made-up resource, however plausible it looks.
- `reply_lines(locale)` builds the bullets of the bot's own crisis reply for a person whose
  country is known; `None` when the table has nothing for it (the caller falls back).

Pure and precompiled: the table is read once, matching is linear in the text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from urllib.parse import urlsplit

DATA_FILE = "helplines.json"
INTERNATIONAL = "international"
FALLBACK_URL = "findahelpline.com"

# Letters on a phone keypad, for vanity numbers such as 1-800-273-TALK.
_KEYPAD = str.maketrans(
    {
        c: d
        for d, letters in zip(
            "23456789", ("ABC", "DEF", "GHI", "JKL", "MNO", "PQRS", "TUV", "WXYZ"), strict=True
        )
        for c in letters
    }
)


@dataclass(frozen=True)
class Helpline:
    country: str
    name: str
    phone: str | None
    text: str | None
    languages: tuple[str, ...]
    url: str
    notes: str
    aliases: tuple[str, ...]

    def numbers(self) -> list[str]:
        """Every digit string that reaches this service (phone, text code, aliases)."""
        out = []
        for field in (self.phone, self.text, *self.aliases):
            if field:
                out += [d for d in (_digits(m.group()) for m in _NUMBER.finditer(field)) if d]
                out += [
                    _digits(m.group().upper().translate(_KEYPAD)) for m in _VANITY.finditer(field)
                ]
        return out

    def names(self) -> list[str]:
        return [self.name] + [a for a in self.aliases if _is_name(a)]

    def hosts(self) -> list[str]:
        return [
            h
            for h in [_host(self.url)] + [_host(a) for a in self.aliases if _HOSTLIKE.fullmatch(a)]
            if h
        ]

    def bullet(self) -> str:
        """One line of the crisis reply: how to reach it and what it is."""
        ways = []
        if self.phone:
            ways.append(f"call {self.phone}")
        if self.text:
            ways.append("text" + self.text[4:] if self.text.startswith("Text ") else self.text)
        how = " or ".join(ways) if ways else f"chat at {_host(self.url)}"
        return f"{how[0].upper()}{how[1:]} ({self.name})"


@dataclass(frozen=True)
class HelplineTable:
    lines: tuple[Helpline, ...]
    emergency: dict[str, tuple[str, ...]]
    sources: tuple[str, ...]

    @property
    def countries(self) -> set[str]:
        return {line.country for line in self.lines} - {INTERNATIONAL}

    def for_country(self, country: str) -> list[Helpline]:
        key = country if country == INTERNATIONAL else country.upper()
        return [line for line in self.lines if line.country == key]


@cache
def table() -> HelplineTable:
    """The packaged table, read once."""
    raw = json.loads(
        (resources.files("fleetcore.safety") / "data" / DATA_FILE).read_text(encoding="utf-8")
    )
    lines = tuple(
        Helpline(
            country=str(item["country"]),
            name=str(item["name"]),
            phone=item.get("phone"),
            text=item.get("text"),
            languages=tuple(item.get("languages") or ()),
            url=str(item["url"]),
            notes=str(item.get("notes") or ""),
            aliases=tuple(item.get("aliases") or ()),
        )
        for item in raw["lines"]
    )
    emergency = {str(k): tuple(v) for k, v in raw.get("emergency", {}).items()}
    return HelplineTable(lines, emergency, tuple(raw.get("sources", ())))


# --- locale -> lines --------------------------------------------------------------------

_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z]{4})?[-_]([A-Za-z]{2})(?:[.@].*)?$")


def country_of(locale: str | None) -> str | None:
    """'en-GB', 'pt_BR.UTF-8', 'zh-Hant-TW' -> the region; a bare region 'DE' -> 'DE'."""
    if not locale:
        return None
    locale = locale.strip()
    if re.fullmatch(r"[A-Z]{2}", locale):
        return locale
    m = _LOCALE.match(locale)
    return m.group(1).upper() if m else None


def reply_lines(locale: str | None, *, per_country: int = 2) -> list[str] | None:
    """The crisis-reply bullets for a person in `locale`'s country, or None if unknown.

    The country's first lines (the table lists the national line first), the international
    directory for anyone travelling, then the country's emergency numbers.
    """
    country = country_of(locale)
    if country is None:
        return None
    tbl = table()
    lines = tbl.for_country(country)[:per_country]
    if not lines:
        return None
    out = [line.bullet() for line in lines]
    out.append(f"Elsewhere: {FALLBACK_URL} lists free, confidential lines in your country")
    emergency = tbl.emergency.get(country)
    if emergency:
        out.append(f"If you are in immediate danger, call {' or '.join(emergency[:2])}")
    return out


# --- recognising lines in a reply ----------------------------------------------------------

# A phone number: digit groups joined by one space, hyphen, dot or no-break space, with an
# optional leading + / 00 / * (short codes such as *4141), a leading (area) group, a (0).
_NUMBER = re.compile(
    r"(?<![\w#@/:.,-])(?:[+*]\s?)?(?:\(\d+\)\s?)?\d+(?:[ \u00a0.\-](?:\(0\)\s?)?\d+)*"
    r"(?![\w@]|[.,]\d)"
)
# A vanity number: digits then at least three capital letters (1-800-273-TALK, 55-HOPE).
_VANITY = re.compile(
    r"(?<![\w-])(?:\+?\d{1,4}[ .\-])+(?=[A-Z0-9]*[A-Z]{3})[A-Z0-9]{3,}"
    r"(?:[ .\-][A-Z0-9]{1,5})*(?![\w-])"
)
_HOSTLIKE = re.compile(r"(?:https?://)?(?:[\w-]+\.)+[a-z]{2,}(?:/\S*)?", re.IGNORECASE)
_TLDS = (
    "com|org|net|info|io|co|uk|ie|de|fr|nl|be|lu|es|it|pt|pl|br|ca|au|nz|in|jp|kr|cn|hk|tw|sg|my"
    "|th|ph|id|za|il|ua|ro|gr|is|fi|no|se|dk|lt|si|hu|sk|cz|ch|at|mx|ar|cl|pe|uy|pr|tr|ru|us|gov"
    "|edu|int|app|help|health|care|example|test|invalid|online|site|live|chat|support|me|ly|gg"
)
_URL = re.compile(
    rf"(?<![\w@.:/-])(?:https?://)?((?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:{_TLDS}))(?![\w-])"
    r"(?:/[^\s)\]>,;]*)?",
    re.IGNORECASE,
)
_EMAIL = re.compile(rf"(?<![\w.+-])[\w.+-]+@((?:[a-z0-9-]+\.)+(?:{_TLDS}))(?![\w-])", re.IGNORECASE)
# A handle offered as a contact on a chat app ("add @kokoro555 on LINE"); Matrix IDs
# (@user:server) are people in the room and never count.
_HANDLE = re.compile(r"(?<![\w.@])@[A-Za-z][\w.-]{2,}(?![\w:])")
_APPS = re.compile(
    r"\b(?:line|telegram|discord|instagram|insta|tiktok|twitter|kakao\w*|wechat|whatsapp|signal|"
    r"snapchat|facebook|messenger)\b|友だち追加|友達追加",
    re.IGNORECASE,
)
# Words that present a number as something to call or text, in the languages the bot meets.
_CUE = re.compile(
    r"\b(?:call|ring|dial|phone|text|sms|whatsapp|contact|reach|number|line|hotline|helpline|"
    r"lifeline|free(?:phone)?|toll[- ]free|24/7|llam\w*|marca|l[ií]nea|tel[eé]fono|n[uú]mero|"
    r"escrib\w*|manda\w*|env[ií]a\w*|liga\w*|linha|disque|appel\w*|compose\w*|num[ée]ro|"
    r"ligne|[ée]cri\w*|ruf\w*|anruf\w*|w[äa]hl\w*|nummer|telefon\w*|schreib\w*|chiam\w*|"
    r"numero|linea|scriv\w*|bel|bellen|lijn|stuur|zadzwo\w*|dzwo\w*|numer\w*|linia|linii|"
    r"napisz|ara\w*|hatt\w*|numara\w*|g[öo]nder\w*|karo|kare[nm])\b"
    r"|電話|ダイヤル|番号|ライン|相談|かけ|전화|번호|热线|电话|專線",
    re.IGNORECASE,
)
# Numbers that are amounts, not lines: units and times right after the number.
_UNIT_AFTER = re.compile(
    r"\s?(?:%|°|x\b|h\b|min|mins?\b|minut|minuto|hour|hora|heure|stunde|uur|ore\b|godzin|saat|"
    r"sec|seg|sek|day|d[ií]a|jour|tag|dag|giorn|dni|g[üu]n|week|semana|semaine|woche|month|"
    r"mes|mois|monat|year|año|ano|jahr|jaar|ann|lat|yıl|yil|am\b|pm\b|a\.m|p\.m|"
    r"gb|mb|kb|ms\b|kg|km|mg|ml|€|\$|£|分|時|秒|日|年|歳|階|件|個|人|回|円)",
    re.IGNORECASE,
)
# A chat community offered in place of a line ("join the X Discord"): nobody vouches for it.
_COMMUNITY = re.compile(
    r"\b(?:join|add|follow|check out|try|entra|[úu]nete|rejoins|tritt|dołącz|katıl|word lid)\b"
    r"[^.!?\n]{0,60}?\b(?:discord|telegram|subreddit|reddit|facebook group|whatsapp group|"
    r"group chat|server)\b|(?<![\w/])r/\w{3,}",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.!?。！？\n]")


def _digits(s: str) -> str:
    return re.sub(r"\D", "", s)


def _host(s: str) -> str:
    s = s.strip().lower()
    if "://" not in s:
        s = "http://" + s
    host = urlsplit(s).hostname or ""
    return host.removeprefix("www.")


def _is_name(alias: str) -> bool:
    return not _HOSTLIKE.fullmatch(alias) and "@" not in alias and len(_digits(alias)) < 3


@dataclass(frozen=True)
class Mention:
    """One resource offered in a text: a number, host, e-mail, handle, or service name."""

    kind: str  # number | host | email | handle | community | name
    text: str
    start: int
    end: int
    known: bool


@dataclass(frozen=True)
class _Index:
    numbers: frozenset[str]
    hosts: frozenset[str]
    names: tuple[re.Pattern[str], ...]


def _variants(number: str) -> set[str]:
    """The spellings of one known number: with or without NANP's 1, trunk 0 or 00/+cc."""
    out = {number}
    if len(number) == 11 and number.startswith("1"):
        out.add(number[1:])
    if (
        len(number) == 10
        and number[0] in "23456789"
        and number[1:3] in {"00", "33", "44", "55", "66", "77", "88"}
    ):
        out.add("1" + number)
    return out


@cache
def _index() -> _Index:
    tbl = table()
    numbers: set[str] = set()
    hosts: set[str] = set()
    names: set[str] = set()
    for line in tbl.lines:
        for n in line.numbers():
            numbers |= _variants(n)
        hosts.update(line.hosts())
        names.update(n for n in line.names() if len(n) >= 3)
    for nums in tbl.emergency.values():
        numbers.update(nums)
    hosts.update(h for h in (_host(s) for s in tbl.sources) if h)
    # A one-word name that is also a word ("Shout", "Pieta", "CVV") counts only as written.
    short = sorted((n for n in names if " " not in n and len(n) <= 6), key=len, reverse=True)
    other = sorted(set(names) - set(short), key=len, reverse=True)
    patterns = tuple(
        re.compile(r"(?<!\w)(?:" + "|".join(re.escape(n) for n in group) + r")(?!\w)", flags)
        for group, flags in ((short, 0), (other, re.IGNORECASE))
        if group
    )
    return _Index(frozenset(numbers), frozenset(hosts), patterns)


def is_known_number(digits: str, international: bool = False) -> bool:
    numbers = _index().numbers
    if digits in numbers:
        return True
    if international:  # +cc or 00cc: the national number follows a 1-3 digit country code
        body = digits[2:] if digits.startswith("00") else digits
        for cc in (1, 2, 3):
            rest = body[cc:]
            if len(rest) >= 3 and (rest in numbers or "0" + rest in numbers):
                return True
    return False


def is_known_host(host: str) -> bool:
    host = host.lower().removeprefix("www.")
    hosts = _index().hosts
    parts = host.split(".")
    return any(".".join(parts[i:]) in hosts for i in range(len(parts) - 1))


def _cued(text: str, start: int, end: int) -> bool:
    """Is the number at text[start:end] presented as something to call or text?"""
    before = text[max(0, start - 40) : start]
    cut = max(before.rfind(c) for c in ".!?\n。")
    before = before[cut + 1 :] if cut >= 0 else before
    after = text[end : end + 30]
    m = _SENTENCE_END.search(after)
    after = after[: m.start()] if m else after
    return bool(_CUE.search(before) or _CUE.search(after))


def _split_known(groups: list[str]) -> int:
    """How many leading groups form a known number followed by at most a stray 1-2 digits.

    "116 123 24" is the known 116 123 and a stray 24 (hours); "118 118" or "0800 111 0 112"
    are one number that is not in the table, whatever real numbers hide inside. 0: none.
    """
    for j in range(len(groups), 0, -1):
        head = "".join(groups[:j])
        if len(head) >= 3 and is_known_number(head):
            return j if len("".join(groups[j:])) <= 2 else 0
    return 0


def _number_mentions(text: str, taken: list[tuple[int, int]]) -> list[Mention]:
    """Numbers outside the `taken` spans (hosts, e-mail addresses)."""
    out: list[Mention] = []
    taken = list(taken)
    for m in _VANITY.finditer(text):
        digits = _digits(m.group().upper().translate(_KEYPAD))
        out.append(Mention("number", m.group(), m.start(), m.end(), is_known_number(digits)))
        taken.append((m.start(), m.end()))
    for m in _NUMBER.finditer(text):
        if any(s <= m.start() < e for s, e in taken):
            continue
        raw = m.group()
        international = raw.startswith(("+", "00"))
        # Digit groups and where they end; "+44 (0)116 123" drops its trunk (0).
        parts = [(g.group(), g.end()) for g in re.finditer(r"\d+", raw.replace("(0)", "(_)"))]
        groups = [g for g, _ in parts]
        whole = "".join(groups)
        if len(whole) < 3:
            continue
        j = len(groups) if is_known_number(whole, international) else _split_known(groups)
        if j:
            end = m.start() + parts[j - 1][1]
            out.append(Mention("number", text[m.start() : end], m.start(), end, True))
        elif _looks_like_line(text, whole, m.start(), m.end(), raw.startswith(("+", "*"))):
            out.append(Mention("number", raw, m.start(), m.end(), False))
    return out


def _looks_like_line(text: str, digits: str, start: int, end: int, prefixed: bool) -> bool:
    """An unknown number counts as offered as a line when it has a phone's shape (7+ digits,
    or a + / * prefix) or is a 3-6 digit code next to a call/text cue; never an amount."""
    if len(digits) >= 7 or prefixed:
        return True
    if len(digits) < 3 or _UNIT_AFTER.match(text, end):
        return False
    if len(digits) == 4 and digits[:2] in {"19", "20"} and not _cued(text, start, end):
        return False  # a year
    return _cued(text, start, end)


def scan(text: str) -> list[Mention]:
    """Every resource `text` offers, in order, each marked known (in the table) or not."""
    idx = _index()
    mentions: list[Mention] = []
    for m in _EMAIL.finditer(text):
        mentions.append(Mention("email", m.group(), m.start(), m.end(), is_known_host(m.group(1))))
    for m in _URL.finditer(text):
        if not any(x.start <= m.start() < x.end for x in mentions):
            known = is_known_host(m.group(1))
            mentions.append(Mention("host", m.group(), m.start(), m.end(), known))
    mentions += _number_mentions(text, [(x.start, x.end) for x in mentions])
    for m in _HANDLE.finditer(text):
        line_start = max(text.rfind("\n", 0, m.start()), 0)
        line_end = text.find("\n", m.end())
        around = text[line_start : line_end if line_end >= 0 else len(text)]
        if _APPS.search(around):
            mentions.append(Mention("handle", m.group(), m.start(), m.end(), False))
    for m in _COMMUNITY.finditer(text):
        mentions.append(Mention("community", m.group(), m.start(), m.end(), False))
    for pattern in idx.names:
        for m in pattern.finditer(text):
            if not any(x.start <= m.start() < x.end for x in mentions):
                mentions.append(Mention("name", m.group(), m.start(), m.end(), True))
    return sorted(mentions, key=lambda x: x.start)


def has_known_line(text: str) -> bool:
    """Does `text` give at least one real line (a number, host or name from the table)?"""
    return any(m.known for m in scan(text))
