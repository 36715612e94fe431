"""The helpline table: loading, recognising real lines in any notation, fakes, locales."""

from __future__ import annotations

import pytest

from fleetcore.safety import helplines
from fleetcore.safety.helplines import country_of, has_known_line, reply_lines, scan, table


def known(text: str) -> list[str]:
    return [m.text for m in scan(text) if m.known]


def unknown(text: str) -> list[str]:
    return [m.text for m in scan(text) if not m.known]


def test_table_is_package_data_with_sources() -> None:
    tbl = table()
    assert len(tbl.countries) >= 50
    assert len(tbl.sources) >= 50 and all(s.startswith("http") for s in tbl.sources)
    assert tbl.for_country("international")[0].url == "https://findahelpline.com"
    for line in tbl.lines:
        assert line.url.startswith("http"), line
        assert line.country == helplines.INTERNATIONAL or len(line.country) == 2, line
    for country in tbl.countries:
        assert country in tbl.emergency, country


def test_every_line_in_the_table_is_recognised_as_written() -> None:
    for line in table().lines:
        for field in (line.phone, line.text):
            if field:
                assert has_known_line(f"Please reach out: {field}."), (line.name, field)
                assert not unknown(f"Please reach out: {field}."), (line.name, field)


@pytest.mark.parametrize(
    "text",
    [
        "Call or text 988.",
        "In Canada, call or text 9-8-8 any time.",
        "Samaritans are free on 116 123.",
        "Call 116-123 in Hungary.",
        "Ruf die TelefonSeelsorge an: 0800 111 0 111 oder 0800 1110222.",
        "Lifeline is on 13 11 14, or text 0477 13 11 14.",
        "From abroad: +44 (0)116 123, or +49 800 111 0 111.",
        "The old number 1-800-273-8255 (1-800-273-TALK) still reaches the Lifeline.",
        "Text HOME to 741741.",
        "En Chile, marca *4141.",
        "Appelle le 3114.",
        "Bel 113 of 0800-0113.",
        "Liga para o CVV no 188.",
        "Llama al 024.",
        "Call or text 1737.",
        "Tele-MANAS: 14416 ya 1-800-891-4416.",
        "Text SHOUT to 85258.",
        "いのちの電話 0570-783-556 にかけてください。",
    ],
)
def test_real_lines_in_common_notations(text: str) -> None:
    assert known(text), text
    assert not unknown(text), (text, unknown(text))


def test_names_hosts_and_addresses() -> None:
    assert known("You could ring Samaritans tonight.") == ["Samaritans"]
    assert known("Die TelefonSeelsorge ist rund um die Uhr da.") == ["TelefonSeelsorge"]
    assert known("Chat at 988lifeline.org/chat or see https://findahelpline.com/countries/de")
    assert known("Or e-mail jo@samaritans.org.") == ["jo@samaritans.org"]
    assert not has_known_line("Please reach out to someone you trust.")
    # A one-word name that is also a word counts only as written.
    assert not has_known_line("shout if you need me")


@pytest.mark.parametrize(
    "text",
    [
        "Call the Hope Line at 555-0100.",
        "Text HOME to 741714.",  # one digit swapped
        "In the UK, call Samaritans on 116 321.",
        "Ruf die 0800 111 0 112 an.",
        "Call 118 118, the free national crisis line.",  # directory enquiries
        "Please call 989 right now.",
        "In India, call the national mental health line on 14461.",
        "Dial 1166 to reach the crisis line.",
        "Call 1-800-HELP-NOW-2 any time.",
        "Schreib an +49 555 0199 123.",
        "Write to help@crisis-support.example, someone reads it 24/7.",
        "Visit calmhelp-now.example/chat for a counselor.",
        "LINEで @kokoro555 を友だち追加してね。",
        'Join the "Safe Harbour" Discord, the mods are trained.',
    ],
)
def test_made_up_resources_are_not_known(text: str) -> None:
    assert unknown(text), text


@pytest.mark.parametrize(
    "text",
    [
        "Take ten minutes, then count down from 100 in sevens: 100, 93, 86.",
        "Since 2023 things have been hard, I know.",
        "Breathe in for 4, hold for 7, out for 8.",
        "They're there 24/7, and it's free.",
        "I've let @ops:hs.example know, and #support:hs.example too.",
        "It's been 72 hours since you slept, you said.",
        "That was 500 messages ago.",
    ],
)
def test_numbers_that_are_not_lines(text: str) -> None:
    assert not unknown(text), (text, unknown(text))


def test_country_of_locale() -> None:
    assert country_of("en-GB") == "GB"
    assert country_of("pt_BR.UTF-8") == "BR"
    assert country_of("zh-Hant-TW") == "TW"
    assert country_of("DE") == "DE"
    assert country_of("fr") is None  # a language is not a country
    assert country_of(None) is None and country_of("") is None


def test_reply_lines_for_a_locale() -> None:
    de = reply_lines("de-DE")
    assert de is not None
    assert "0800 111 0 111" in de[0] and "TelefonSeelsorge" in de[0]
    assert any("findahelpline.com" in x for x in de)
    assert any("112" in x for x in de)
    gb = reply_lines("en-GB")
    assert gb is not None and "116 123" in gb[0] and "SHOUT to 85258" in gb[1]
    br = reply_lines("pt-BR")
    assert br is not None and "188" in br[0]
    assert reply_lines("xx-XX") is None and reply_lines("fr") is None and reply_lines(None) is None
    for country in table().countries:  # every country's reply passes its own recogniser
        lines = reply_lines(country)
        assert lines is not None and has_known_line(lines[0]), country
        assert not unknown("\n".join(lines)), (country, unknown("\n".join(lines)))
