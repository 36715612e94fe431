"""The crisis detector: normalise, build views, run the phrase rules, take the maximum.

Layers, each there because people and jailbreaks use it to hide intent:

1. Normalisation (`normalise.py`): NFKC, invisible characters, accents, look-alikes, case.
2. Views of the same message: leetspeak and censor stars undone, spaced letters joined,
   repeated letters squeezed, run-together words, and decodings (base64 spans, rot13,
   reversed text). Each view is screened; a hit found only in a transformed view adds the
   reason `obfuscated` (or `encoded_*` / `reversed`).
3. Framing never lowers a verdict: the full text, its last 300 characters and every quoted
   span are screened separately and the maximum wins. Framing words only add `framed`.
4. Levels: `concern` for weak signals (despair, a goodbye, hyperbole), `crisis` for explicit
   first-person risk or two different weak signals together, `imminent` for crisis plus a
   time cue or something already under way.

Long texts are screened in overlapping windows, so work is linear in length and every regex
runs on at most a few kilobytes.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable

from fleetcore.safety import normalise as nm
from fleetcore.safety import rules as R

WINDOW = 4096
OVERLAP = 512
TAIL = 300
MAX_QUOTES = 8
MAX_B64 = 4
MAX_DECODED = 4096

_CLAUSE_END = re.compile(r"[.!?;:\"()\[\]]")
_QUOTED = re.compile(r"\"([^\"]{6,600})\"|'([^']{6,400})'(?![a-z])|\*\*([^*]{6,400})\*\*")
_B64 = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{16,}={0,2}(?![A-Za-z0-9+/=_-])")
_THIRD_SELF = re.compile(
    r"\b(?:kill|killing|hang|hanging|drown|drowning|shoot|shooting|poison|unalive|end|"
    r"ending|cut|cutting|hurt|hurting|harm|harming|burn|burning) (?:him|her|them|it)sel(?:f|"
    r"ves)\b|\bhow (?:would|could|should|does|will) (?:he|she|they) (?:kill|end|hang|do it)\b"
    r"|\b(?:his|her|their) (?:suicide note|goodbye letter)\b|\b(?:he|she|they) (?:wants?|"
    r"plans?|decides?|decided|is going|are going) to (?:die|end (?:it|(?:his|her|their) "
    r"life))\b"
)
_ESCALATION_EXCLUDED = frozenset({"hyperbole", "third_party"})
_FIRST_IN = re.compile(r"\b(?:i|i'm|im|i've|ive|i'd|i'll|me|my|myself)\b")

Hits = dict[str, int]

# Gates reduced to "atoms": gates that contain no shorter gate. A present gate implies one
# of its atoms is present, so checking atoms (plain `in`, C speed) never skips a rule that
# could match, and there are far fewer of them.
_ALL_GATES = {g for r in R.ALL for g in r.gates}
_ATOMS = tuple(sorted(g for g in _ALL_GATES if not any(h != g and h in g for h in _ALL_GATES)))
_RULE_ATOMS = tuple(frozenset(a for g in r.gates for a in _ATOMS if a in g) for r in R.ALL)
_RULES_BY_ATOM: dict[str, tuple[int, ...]] = {
    a: tuple(i for i, atoms in enumerate(_RULE_ATOMS) if a in atoms) for a in _ATOMS
}


def _subject_ok(view: str, start: int) -> bool | None:
    """True if the clause before `start` has no subject or a first-person one.

    Returns None when the clause is about someone else, so the caller can record
    `third_party` instead.
    """
    seg = view[max(0, start - 80) : start]
    cut = -1
    for m in _CLAUSE_END.finditer(seg):
        cut = m.end()
    if cut >= 0:
        seg = seg[cut:]
    last: str | None = None
    for m in R.SUBJECT.finditer(seg):
        last = m.group()
    if last is None or last in R.FIRST_PERSON:
        return True
    return None


def _negated(view: str, start: int) -> bool:
    return R.NEGATION.search(view[max(0, start - 40) : start]) is not None


def _gates_present(view: str) -> frozenset[str]:
    return frozenset(a for a in _ATOMS if a in view)


def _occurrences(view: str, atom: str) -> list[int]:
    out: list[int] = []
    i = view.find(atom)
    while i != -1:
        out.append(i)
        i = view.find(atom, i + 1)
    return out


def _windows_for(view: str, atoms: frozenset[str], cache: dict[str, list[int]]) -> list[str]:
    """Merged slices of `view` around the rule's gate atoms.

    Rules match spans of at most ~150 characters around their gate words, so on long text
    running them only near those words gives the same hits for a fraction of the work.
    """
    pos: list[int] = []
    for a in atoms:
        if a not in cache:
            cache[a] = _occurrences(view, a)
        pos.extend(cache[a])
    pos.sort()
    out: list[str] = []
    lo = hi = -1
    for p in pos:
        left, right = max(0, p - _BEFORE), p + _AFTER
        if lo >= 0 and left <= hi:
            hi = max(hi, right)
            continue
        if lo >= 0:
            out.append(view[lo:hi])
        lo, hi = left, right
    if lo >= 0:
        out.append(view[lo:hi])
    return out


_LOCAL_MIN = 640
_BEFORE, _AFTER = 240, 180


def _run_rules(view: str, hits: Hits) -> None:
    present = _gates_present(view)
    if not present:
        return
    local = len(view) > _LOCAL_MIN
    cache: dict[str, list[int]] = {}
    candidates: set[int] = set()
    for a in present:
        candidates.update(_RULES_BY_ATOM[a])
    for idx in sorted(candidates):
        rule = R.ALL[idx]
        if rule.level == R.CONCERN:
            if f"~r{idx}" in hits:
                continue
        elif hits.get(rule.code, 0) >= rule.level:
            continue
        atoms = _RULE_ATOMS[idx] & present
        if not atoms:
            continue
        pieces = _windows_for(view, atoms, cache) if local else [view]
        third = False
        found = False
        for piece in pieces:
            for n, m in enumerate(rule.rx.finditer(piece)):
                if n >= 8:
                    break
                start = m.start()
                if rule.negatable and _negated(piece, start):
                    continue
                if (
                    rule.subject
                    and _subject_ok(piece, start) is None
                    and not _FIRST_IN.search(m.group())
                ):
                    third = True
                    continue
                found = True
                break
            if found:
                break
        if found:
            hits[rule.code] = max(hits.get(rule.code, 0), rule.level)
            if rule.level == R.CONCERN and rule.code not in _ESCALATION_EXCLUDED:
                # Weak signals escalate when two *different* rules agree.
                hits[f"~r{idx}"] = R.CONCERN
        elif third:
            hits["third_party"] = max(hits.get("third_party", 0), R.CONCERN)


def _compact(tokens: Iterable[str], hits: Hits) -> None:
    for tok in tokens:
        if any(g in tok for g in R.COMPACT_GATES) and R.COMPACT.search(tok):
            hits["intent"] = max(hits.get("intent", 0), R.CRISIS)
            return


def _level(hits: Hits) -> int:
    top = max(hits.values(), default=0)
    weak = [c for c in hits if c.startswith("~r")]
    if top < R.CRISIS and len(weak) >= 2:
        return R.CRISIS
    return top


def _screen_views(views: Iterable[str]) -> Hits:
    hits: Hits = {}
    for v in views:
        _run_rules(v, hits)
    return hits


def _merge(into: Hits, other: Hits, tag: str | None = None) -> None:
    for code, lv in other.items():
        if code not in into or lv > into[code]:
            into[code] = lv
    if tag is not None and _level(other) >= R.CRISIS:
        into[tag] = max(into.get(tag, 0), 0)


def _b64_payloads(raw: str) -> list[str]:
    out: list[str] = []
    for m in _B64.finditer(raw):
        span = m.group()
        if len(span) > 4 * MAX_DECODED:
            span = span[: 4 * MAX_DECODED]
        if not any(c.isdigit() or c.isupper() for c in span) or (
            span.isalpha() and (span.islower() or span.isupper())
        ):
            continue  # ordinary words and identifiers are not worth decoding
        data = span.rstrip("=")
        data += "=" * (-len(data) % 4)
        try:
            decoded = base64.b64decode(data.replace("-", "+").replace("_", "/"), validate=True)
            text = decoded.decode("utf-8")
        except (binascii.Error, ValueError):
            continue
        printable = sum(1 for c in text if c.isprintable() or c in "\n\t")
        if text and printable / len(text) > 0.9 and any(c.isalpha() for c in text):
            out.append(text[:MAX_DECODED])
        if len(out) >= MAX_B64:
            break
    return out


_STOP = frozenset(
    "the to and a of is it you that in for on this my me be are not with have do what can "
    "how was so but all just i'm want will if your at know like get about no would don't "
    "there out up one they from or an we he she help".split()
)
_SEGMENT = re.compile(r"[^.!?:;\"]+")


def _stopwords(words: list[str]) -> int:
    return sum(1 for w in words if w in _STOP)


def _scrambled(base: str) -> list[str]:
    """rot13 / reversed decodings of the segments that read better decoded.

    A segment is decoded when its rot13 or reversal contains more common English words than
    the segment itself; ordinary text never does, so it costs one split per segment.
    """
    out: list[str] = []
    for m in _SEGMENT.finditer(base):
        seg = m.group().strip()
        if len(seg) < 3:
            continue
        words = seg.split()
        plain = _stopwords(words)
        rot = nm.rot13(seg)
        if _stopwords(rot.split()) > plain or len(words) == 1:
            out.append(rot)
        rev = seg[::-1]
        if _stopwords(rev.split()) > plain or len(words) == 1:
            out.append(rev)
        if len(out) >= 16:
            break
    return out


def _reported(base: str, start: int, professional: bool) -> bool:
    """True if the quote opening at `start` is someone else's words, reported or mentioned.

    Outside professional context the segment before the quote (back to the previous
    sentence end) must end in a reporting verb whose nearest subject is someone other than
    the writer: "a caller told me", "she wrote", "my patient keeps saying". In professional
    context (a clinician, volunteer or moderator writing about the work) every quote is
    taken as mentioned unless the writer claims it: "I keep thinking 'I want to die'".
    """
    seg = base[max(0, start - 120) : start]
    cut = 0
    for m in re.finditer(r"[.!?\n]", seg):
        cut = m.end()
    seg = seg[cut:]
    if professional:
        return R.OWN_SPEECH.search(seg) is None
    verb = R.REPORTING_VERB.search(seg)
    if verb is None:
        return False
    before = seg[: verb.start()]
    last: str | None = None
    for m in R.SUBJECT.finditer(before):
        last = m.group()
    if last is not None:
        return last not in R.FIRST_PERSON and last not in {"you", "u", "one"}
    return R.REPORTER_ROLE.search(before) is not None


def _mask_reported(base: str) -> tuple[str, list[str], list[str]]:
    """`base` with reported quotes blanked, the quotes that stay, and the reported ones."""
    kept: list[str] = []
    if R.FRAMING.search(base) or R.ENDORSE.search(base):
        spans = []
    else:
        work = R.PROFESSIONAL.search(base) is not None
        spans = [m.span() for m in _QUOTED.finditer(base) if _reported(base, m.start(), work)]
    for n, m in enumerate(_QUOTED.finditer(base)):
        if n >= MAX_QUOTES:
            break
        if m.span() not in spans:
            kept.append(next(g for g in m.groups() if g is not None))
    if not spans:
        return base, kept, []
    parts: list[str] = []
    last = 0
    for a, b in spans:
        parts.extend((base[last:a], " " * (b - a)))
        last = b
    parts.append(base[last:])
    return "".join(parts), kept, [base[a:b] for a, b in spans]


def screen_hits(raw: str, *, depth: int = 0) -> Hits:
    """Screen one window of text; returns reason code -> level (level 0: a tag)."""
    base, quotes, reported = _mask_reported(nm.normalise(raw))
    hits: Hits = {}
    if reported and _level(_screen_views(reported)) >= R.CONCERN:
        # What was left out is someone else's risk: a gentle check-in, as for any third party.
        hits["third_party"] = R.CONCERN

    # Framing never lowers: the whole text, its tail, and each quoted span are screened on
    # their own, because a quote restarts the clause ("she types: 'I want to die'").
    # Each later stage runs only while the verdict is below crisis: a stage can only add.
    _run_rules(base, hits)
    if _level(hits) < R.CRISIS:
        primary: list[str] = []
        if len(base) > TAIL:
            primary.append(base[-TAIL:])
        primary.extend(quotes)
        _merge(hits, _screen_views(primary))
    if _level(hits) >= R.CRISIS:
        return _tags(base, hits)

    # Obfuscation views: anything they add beyond the plain views is marked `obfuscated`.
    leet = nm.uncensor(nm.deleet(base))
    uncensored = nm.uncensor(base)
    spaced, runs = nm.collapse_spaced(nm.undot(leet))
    extra: list[str] = []
    seen = {base}
    views = (uncensored, leet, nm.undot(leet), spaced, *nm.squeeze(leet), *nm.squeeze(spaced))
    for v in views:
        if v not in seen:
            seen.add(v)
            extra.append(v)
    obf = _screen_views(extra)
    _compact([*runs, *nm.long_tokens(spaced)], obf)
    if _level(obf) > _level(hits):
        _merge(hits, obf)
        hits["obfuscated"] = 0
    elif obf:
        _merge(hits, obf)

    if depth == 0 and _level(hits) < R.CRISIS:
        for payload in _b64_payloads(raw):
            _merge(hits, screen_hits(payload, depth=1), "encoded_base64")
        for view in _scrambled(base):
            _merge(hits, _screen_views([view]), "encoded")

    return _tags(base, hits)


def _tags(base: str, hits: Hits) -> Hits:
    if "third_party" in hits and R.PROFESSIONAL.search(base):
        # Someone else's risk as the subject of one's work: no check-in for the writer.
        del hits["third_party"]
    if R.FRAMING.search(base):
        hits["~framed"] = 0
        if _THIRD_SELF.search(base):
            hits["framed_third_person"] = R.CRISIS
    if R.TIME.search(base):
        hits["~time"] = 0
    return hits


def _windows(text: str) -> Iterable[str]:
    if len(text) <= WINDOW:
        yield text
        return
    # Boundaries snap forward to whitespace (within a few characters) so a window never
    # starts or ends inside a word; the overlap covers any phrase cut at a boundary.
    start = 0
    n = len(text)
    while start < n:
        end = min(n, start + WINDOW)
        if end < n:
            sp = text.find(" ", end, end + 32)
            end = sp if sp != -1 else end
        yield text[start:end]
        if end >= n:
            break
        nxt = end - OVERLAP
        sp = text.find(" ", nxt, nxt + 32)
        start = sp + 1 if sp != -1 else nxt


def analyse(text: str) -> tuple[int, tuple[str, ...]]:
    """Level (0-3) and sorted reason codes for a message of any length."""
    hits: Hits = {}
    for chunk in _windows(text):
        _merge(hits, screen_hits(chunk))
    level = _level(hits)
    if level == 0:
        return 0, ()
    reasons = {c for c in hits if not c.startswith("~")}
    if level >= R.CRISIS:
        if max(hits.values(), default=0) < R.CRISIS:
            reasons.add("escalated")
        if level < R.IMMINENT and "~time" in hits:
            level = R.IMMINENT
            reasons.add("imminent")
        if "~framed" in hits:
            reasons.add("framed")
        if "third_party" in reasons and len(reasons) > 1:
            reasons.discard("third_party")
    else:
        # Tags describe how a crisis was found; without one they mean nothing.
        reasons = {c for c in reasons if hits[c] >= R.CONCERN}
    return level, tuple(sorted(reasons))
