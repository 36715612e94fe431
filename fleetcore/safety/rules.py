"""The phrase rules of the crisis detector, written against normalised text.

Why rules and not keywords: the words ("kill", "die", "suicide") are everywhere in dev chat
and in prevention talk; what marks a person at risk is a first-person construction (I want
to die, how do I kill myself, everyone would be better off without me). Each rule is such a
construction; a rule runs only when one of its cheap gate substrings is present, so ordinary
chat costs a few `in` checks. Every repetition is bounded (`{0,40}`), so no rule can
backtrack catastrophically.

Text reaching these rules has been through `normalise.normalise`: lower case, no accents,
straight apostrophes, single spaces. The multilingual rules are therefore written without
accents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CONCERN, CRISIS, IMMINENT = 1, 2, 3

_MACROS = {
    # reflexive "myself", with common typos and the spaced form
    "ME": r"(?:my ?self|my ?slef|my ?sefl|mself|meself|my ?slf|my own self|mysel)",
    # optional "just/really/honestly/..." between words
    "ADV": r"(?:(?:just|really|honestly|seriously|literally|actually|kinda|kind of|"
    r"truly|so|still|sometimes|often|always|simply|finally|fucking|fr|ngl|lowkey)\s+){0,3}",
    # wanting / needing / wishing
    "WANT": r"(?:want|wanna|wanted|wants|wish|wishing|need|needed|'d like|would like|"
    r"long|longing|crave|craving|yearn|desperately want|ready|prefer)",
    # deciding / going to / planning
    "GOING": r"(?:going|gonna|goin|about|planning|plan|planned|decided|deciding|intend|"
    r"intending|will|'ll|gotta|have|got|ready|determined|prepared|preparing|trying|tried)",
    # ways to kill or harm oneself
    "KILLV": r"(?:kill|killing|kil|off|offing|unalive|unaliving|hang|hanging|drown|drowning|"
    r"shoot|shooting|poison|poisoning|suffocate|suffocating|stab|stabbing|electrocute|"
    r"gas|gassing|murder|murdering|end|ending|destroy|destroying)",
    "HARMV": r"(?:hurt|hurting|harm|harming|cut|cutting|burn|burning|injure|injuring|"
    r"scratch|scratching|punish|punishing|bruise|starve|starving|slice|slicing|carve|"
    r"carving|beat|beating|hit|hitting|bleed|bleeding|mutilate|mutilating)",
    "TIME": r"(?:tonight|today|right now|rn|this (?:evening|weekend|week|morning|afternoon|"
    r"time)|tomorrow|soon|now|in an? (?:hour|minute)|in a few (?:minutes|hours|days))",
    "BODY": r"(?:arms?|wrists?|thighs?|legs?|skin|stomach|veins?|hips?|forearms?|body|flesh)",
    "DIESTRONG": r"(?:not be alive|not exist|stop existing|stop living|stop breathing|"
    r"not wake up|never wake up|sleep forever|disappear forever|cease to exist|end it all|"
    r"end my life|take my (?:own )?life|kill {ME}|"
    r"unalive {ME}|commit suicide|check out for good|go to sleep forever|"
    r"go to sleep and never wake up|fall asleep forever)",
    "DIE": r"(?:die|d1e|be dead|not be alive|not exist|not be here|stop existing|"
    r"stop living|stop breathing|not wake up|never wake up|sleep forever|disappear forever|"
    r"cease to exist|be gone forever|end it all|end it|end things|end everything|end my life|"
    r"take my (?:own )?life|kill {ME}|unalive {ME}|commit suicide|check out for good|"
    r"go to sleep forever|go to sleep and never wake up|fall asleep forever|not live)",
}


def _expand(pattern: str) -> str:
    for _ in range(3):
        pattern = re.sub(r"\{([A-Z]+)\}", lambda m: _MACROS[m.group(1)], pattern)
    return pattern


@dataclass(frozen=True)
class Rule:
    code: str
    level: int
    gates: tuple[str, ...]
    rx: re.Pattern[str]
    # The clause must not have a third-person subject ("she wants to die" is not the
    # sender's own risk); checked in `detector`.
    subject: bool
    # A negation just before the match ("I don't want to die") cancels it.
    negatable: bool


def _r(
    code: str,
    level: int,
    gates: str,
    pattern: str,
    *,
    subject: bool = False,
    negatable: bool = True,
) -> Rule:
    return Rule(
        code, level, tuple(gates.split("|")), re.compile(_expand(pattern)), subject, negatable
    )


# Gate words for the reflexive and for "die"-like phrases (see the macros above).
_ME_G = (
    "myself|my self|mysel|my sel|myslf|my slf|myslef|my slef|mysefl|my sefl|mself|meself|"
    "my own self"
)
_DIE_G = (
    "die|d1e|dead|alive|exist|wake|sleep|forever|end it|end thing|end every|end my|my life|"
    "my own life|suicid|unaliv|not live|be here|breathing|check out"
)

# ---------------------------------------------------------------------------------------
# English
# ---------------------------------------------------------------------------------------
EN: tuple[Rule, ...] = (
    # -- explicit self-directed killing ("kill myself", "hang myself", "end my life") ----
    _r(
        "intent",
        CRISIS,
        _ME_G,
        r"\b{KILLV} {ME}\b(?! (?:in the (?:foot|leg)|laughing|with laughter|over (?:this|that|it)"
        r"|for (?:forgetting|not|being|saying|doing)))",
    ),
    _r(
        "intent",
        CRISIS,
        "life",
        r"\b(?:end|ending|ended|take|taking|took) (?:my|my own|me own) "
        r"(?:own )?life\b",
    ),
    _r(
        "intent",
        CRISIS,
        "life",
        r"\b(?:end|ending|finish|finishing) (?:my|this) (?:miserable |"
        r"pathetic |worthless |fucking )?(?:life|existence)\b(?! (?:cycle|span))",
    ),
    _r(
        "intent",
        CRISIS,
        "suicid",
        r"\b(?:i|i'm|im|i am|i'll|ill|i will|me|myself|gonna|going to|want to|wanna|plan to|"
        r"planning to|decided to|about to|ready to|thinking about|thinking of|considering|"
        r"contemplating|attempt|attempted|attempting|tried|try) (?:to )?(?:commit |committing )?"
        r"(?:suicide|suicidal)\b",
        subject=True,
    ),
    _r(
        "intent",
        CRISIS,
        "suicid",
        r"\b(?:feel|feeling|felt|am|i'm|im|been|get|getting|so|very|"
        r"really|extremely|pretty|kinda|quite) suicidal\b",
        subject=True,
    ),
    _r(
        "intent",
        CRISIS,
        "suicid",
        r"\b(?:my|having|have|had|get|getting|with) (?:\w+ )?"
        r"suicidal (?:thoughts|ideation|urges|feelings|tendencies|plans?)\b",
        subject=True,
    ),
    _r(
        "intent",
        CRISIS,
        "suicid",
        r"\bsuicide (?:is|seems|feels) (?:like )?(?:my|the) "
        r"(?:only|best|last|easiest)\b",
    ),
    _r(
        "intent",
        CRISIS,
        "end it|end thing|end everyth",
        r"\b(?:{WANT}|{GOING}|decision|choice|time) (?:to )?{ADV}end (?:it|it all|things|"
        r"everything)\b(?! (?:here|there|early|at|with|by|for (?:today|now)|on|in|when|after|"
        r"before|cleanly|gracefully)\b)",
        subject=True,
    ),
    _r("intent", CRISIS, "end it all", r"\bend (?:it|this) all\b"),
    # -- wanting to die / not to live -------------------------------------------------
    _r(
        "ideation",
        CRISIS,
        _DIE_G + "|" + _ME_G,
        r"\b(?:{WANT}) (?:to |2 )?{ADV}{DIE}\b(?!t| (?:laughing|of (?:laughter|"
        r"embarrassment|boredom|shame|cringe|curiosity)|from (?:embarrassment|cringe)|"
        r"on (?:this|that) hill|in (?:a|the) (?:game|match|round|level)|in [a-z]+ "
        r"(?:game|level)))",
        subject=True,
    ),
    _r(
        "intent",
        CRISIS,
        _DIE_G + "|" + _ME_G,
        r"\b(?:{GOING}) (?:to |2 |on )?{ADV}{DIESTRONG}\b",
        subject=True,
    ),
    _r(
        "ideation",
        CONCERN,
        "die|dead",
        r"\b(?:{GOING}) (?:to |2 )?{ADV}(?:die|be dead)\b(?!t| (?:laughing|of |from |"
        r"in (?:a|the) (?:game|match|round|level)))",
        subject=True,
    ),
    _r(
        "ideation",
        CRISIS,
        "live|alive|exist|wake|around|be here|go on|keep going|survive",
        r"\b(?:don't|dont|do not|no longer|never|don't really|dont really|dont even|don't even)"
        r" (?:want|wanna|wish|feel like|care) (?:to )?{ADV}(?:live|be alive|exist|wake up|"
        r"go on|keep going|keep living|continue living|be here anymore|be around anymore|"
        r"be here any ?more|stay alive|survive|be on this earth|living)\b",
        subject=True,
        negatable=False,
    ),
    _r(
        "ideation",
        CRISIS,
        "tired|sick|done|exhaust",
        r"\b(?:tired|sick|done|exhausted|weary) (?:of|with) (?:living|life|being alive|"
        r"existing|being here|it all|everything and everyone)\b(?! (?:cycle|style|hacks?))",
        subject=True,
    ),
    _r(
        "ideation",
        CRISIS,
        "dead",
        r"\b(?:rather|better off|happier|prefer to be|prefer being) (?:be )?dead\b",
        subject=True,
    ),
    _r(
        "ideation",
        CRISIS,
        "wish",
        r"\bi (?:wish|wished|hope) (?:i|i'd|id) (?:was|were|had|could|would|never|just)?\s*"
        r"(?:be )?(?:dead|die|died|never (?:been born|born|existed|woken up|wake up)|not exist|"
        r"hadn't been born|wasn't born|weren't born|"
        r"stop existing|disappear|not wake up|fall asleep forever|sleep forever|not be here)\b",
    ),
    _r(
        "ideation",
        CRISIS,
        "wake",
        r"\b(?:sleep|asleep|bed|pills?|tablets?|overdose|take|enough) (?:\w+ ){0,6}"
        r"(?:and |to |so i |i )?(?:never|not|don't|dont|won't|wont) (?:ever )?wake (?:up|again)\b",
        subject=True,
        negatable=False,
    ),
    _r(
        "ideation",
        CRISIS,
        "point|no reason|any reason|the reason|no purpose|the purpose|no use|the use",
        r"\b(?:no|any|what(?:'s| is) the|(?:don't|dont|do not|can't|cant|cannot) see (?:the|any)) "
        r"(?:point|reason|purpose|use)(?: for me)? (?:in |of |to )?"
        r"(?:keep |go on |still )?(?:living|being alive|staying alive|life|going on|to live|"
        r"to go on|in life|"
        r"to keep living|existing|me being alive|me being here|my life)\b",
        subject=True,
        negatable=False,
    ),
    _r(
        "ideation",
        CRISIS,
        "alive|worth living",
        r"\b(?:worth|point in|sense in|reason for) (?:me )?(?:being|staying|to be|to stay|still) "
        r"alive\b|\blife (?:is|isn't|is not) (?:not )?worth living\b|\bnot worth living\b",
    ),
    _r(
        "ideation",
        CRISIS,
        "alive|around",
        r"\b(?:don't|dont|do not|won't|wont|not|never) (?:plan|planning|expect|intend|"
        r"intending|going|gonna|see myself|think i'll|think i will|think ill)? ?"
        r"(?:on |to )?(?:being|be|stay|staying|still be|still being) (?:alive|around|here|"
        r"breathing)\b(?: (?:much longer|by|next|for (?:long|much)|after|tomorrow|in a|anymore))",
        negatable=False,
    ),
    _r(
        "ideation",
        CRISIS,
        "alive|around",
        r"\bwon't be (?:alive|around|here) (?:much|for) (?:longer|long)\b|\b(?:no longer|not) "
        r"be (?:alive|around) (?:by|next|much)",
    ),
    _r(
        "ideation",
        CRISIS,
        "exist|disappear|vanish",
        r"\b(?:{WANT}|could|can|let me) (?:to )?{ADV}(?:stop existing|cease to exist|"
        r"not exist|disappear forever|vanish forever|disappear for good|vanish for good|"
        r"disappear permanently)\b",
        subject=True,
    ),
    _r(
        "ideation",
        CRISIS,
        "want out|want it|want this|want everything",
        r"\b(?:want|need|wish) (?:out|it (?:all )?to (?:end|stop|be over)|this (?:all )?to "
        r"(?:end|stop|be over)|everything to (?:end|stop))\b[^.?!\n]{0,24}\b(?:permanently|"
        r"forever|for good|for ever|once and for all)\b",
        subject=True,
    ),
    _r(
        "ideation",
        CRISIS,
        "want it|want everything|want all|it all to",
        r"\b(?:want|need|wish|just want) (?:it all|everything|all of it|it) (?:all )?to "
        r"(?:end|stop|be over)\b(?! (?:soon|so i can|already|lol))",
        subject=True,
    ),
    _r("ideation", CRISIS, "nothing to live", r"\bnothing (?:left )?to live for\b"),
    _r(
        "ideation",
        CRISIS,
        "thinking|thought|dreaming|fantasi|obsess",
        r"\b(?:thinking|thought|thoughts|think|dreaming|fantasi[sz]ing|obsessing|obsessed) "
        r"(?:about|of|on) (?:suicide|killing {ME}|ending (?:it|it all|my life|things)|dying|"
        r"death|my death|unaliving {ME}|taking my (?:own )?life|not waking up|ways to die|"
        r"jumping (?:off|from|in front)|overdosing|hanging {ME}|hurting {ME}|cutting {ME}|"
        r"(?:how|ways) to (?:end it|kill {ME}|die)|self[- ]?harm(?:ing)?|"
        r"not being (?:alive|here))\b",
        subject=True,
    ),
    # -- burden / others better off -----------------------------------------------------
    _r(
        "burden",
        CRISIS,
        "without me",
        r"\b(?:better|happier|fine|okay|ok|easier|good|alright|all right|relieved) "
        r"(?:off |dran )?(?:\w+ )?without me\b(?! (?:on|in|for) (?:the|this|that|a)\b)",
    ),
    _r(
        "burden",
        CRISIS,
        "if i",
        r"\b(?:nobody|no one|noone|no-one|nobody really|anyone|would anyone|will anyone|"
        r"who would|who'd|who will) (?:even |really |actually )?(?:would |will |'d )?"
        r"(?:even |really )?(?:notice|care|miss me|mourn)\b[^.?!\n]{0,20}\bif (?:i|i'm|im) "
        r"(?:was |were |am |'m )?(?:gone|dead|died|disappeared|not here|not around|killed|"
        r"kill|ended|vanished|didn't wake|didnt wake)",
    ),
    _r(
        "burden",
        CRISIS,
        "miss me",
        r"\b(?:nobody|no one|noone|no-one) (?:would|will|'d) (?:even )?miss me\b",
    ),
    _r(
        "burden",
        CONCERN,
        "burden",
        r"\b(?:i'm|im|i am|i feel like|feel like|being|i've become) (?:such |just |only )?"
        r"(?:a )?(?:burden|waste of (?:space|air|oxygen))\b",
    ),
    # -- self-harm ----------------------------------------------------------------------
    _r(
        "self_harm",
        CRISIS,
        _ME_G,
        r"\b{HARMV} {ME}\b[^.?!\n]{0,30}?\b(?:again|deeper|more|every|tonight|right now|so bad|"
        r"without|can't stop|cant stop|won't stop|badly|until|till)\b",
    ),
    _r(
        "self_harm",
        CRISIS,
        _ME_G,
        r"\b(?:{WANT}|{GOING}|urge to|urges to|keep|kept|still|started|start|been|should i|"
        r"can i|could i|how (?:do|can|should|would) i|how to|best way to|ways to|deserve to|"
        r"stop myself from|help me|me) (?:to )?{ADV}{HARMV} {ME}\b",
        subject=True,
    ),
    _r(
        "self_harm",
        CONCERN,
        _ME_G,
        r"\b(?:hurt|hurting|harm|harming|cut|cutting|burn|burning|injure|punish|punishing|"
        r"mutilate|mutilating|starving) {ME}\b(?! (?:on|shaving|while|when|by accident|"
        r"accidentally|cooking|at the gym|a (?:slice|piece)|some|off))",
    ),
    _r(
        "self_harm",
        CRISIS,
        "harm|injur|mutil",
        r"\b(?:i|me|i'm|im|i've|ive|my|myself|keep|been|started|start|urge to|want to|wanna|"
        r"catches me|catch me|caught me) (?:\w+ ){0,2}self[- ]?(?:harm|harming|harmed|injury|"
        r"injuring|mutilation|mutilating)\b(?! (?:policy|policies|guidelines|disclosures?|"
        r"content|detection|classifier|category|statistics|research|awareness|prevention))",
        subject=True,
    ),
    _r(
        "method",
        CRISIS,
        "harm|injur",
        r"\b(?:how|ways?|methods?|instructions?|tips|guide|tutorial|steps?|techniques?|"
        r"advice) (?:\w+ ){0,2}(?:to|for|on) (?:\w+ )?self[- ]?(?:harm|harming|injur\w*)\b",
    ),
    _r(
        "self_harm",
        CRISIS,
        "harm|injur",
        r"\bself[- ]?(?:harm|harming|injury|injuring) (?:without|so that|so no|and not|and hide|"
        r"deeper|again|tonight|scars? from)\b",
    ),
    _r(
        "self_harm",
        CRISIS,
        "scar|cuts|wound|burns|bruise|marks",
        r"\b(?:hide|hiding|cover|covering|conceal|concealing|explain|explaining) (?:up )?"
        r"(?:my |the |these |fresh |new )?(?:self[- ]?harm |self[- ]?injury )?"
        r"(?:scars|cuts|wounds|burns|bruises|marks)\b",
    ),
    _r(
        "self_harm",
        CRISIS,
        "cutting|cut|burn",
        r"\b(?:cutting|cut|burned|burnt|burning|hurt|hurting|harming) (?:myself )?(?:again|"
        r"(?:a lot|more|deeper) (?:lately|recently|again))\b(?! (?:the|a|an|this|that|some|"
        r"costs?|corners?|prices?|scope|releases?|tickets?|it)\b)",
        subject=True,
    ),
    _r(
        "self_harm",
        CRISIS,
        "cutting|cut|burn|carv|slit|slash|scratch",
        r"\b(?:cut|cutting|burn|burning|carve|carving|slit|slitting|slash|slashing|scratch|"
        r"scratching|slice|slicing|stab|stabbing|bleed) (?:\w+ ){0,3}(?:into |open |up )?"
        r"(?:my|my own) {BODY}\b",
    ),
    _r(
        "self_harm",
        CRISIS,
        "relapse",
        r"\b(?:i|i've|ive|i just|i have) relapsed\b[^.?!\n]{0,20}\b(?:cutting|self|harm|sh)\b|"
        r"\brelapsed (?:on|into) (?:cutting|self[- ]?harm|sh)\b",
    ),
    _r(
        "self_harm",
        CRISIS,
        " sh ",
        r"\b(?:wanna|want to|urge to|urges to|going to|gonna|need to|relapse on|relapsed on|"
        r"i|i've|ive|been) sh (?:again|so bad|tonight|rn|right now|badly)\b",
    ),
    _r(
        "self_harm",
        CRISIS,
        "deserve|need pain|want pain|need the pain|want the pain|feel pain|feel the pain",
        r"\bi (?:deserve|need|want) (?:to feel )?(?:the )?pain\b",
    ),
    # -- method seeking -------------------------------------------------------------------
    _r(
        "method",
        CRISIS,
        "suicid",
        r"\b(?:how|ways?|methods?|means|steps?|instructions?|guide|tutorial|tips?|best|"
        r"easiest|quickest|fastest|painless|least painful|explain|describe|detail|plan|"
        r"help me) (?:\w+ ){0,4}(?:to |do i |can i |should i |would i |does one |do you |"
        r"do people |on how to |for )?(?:commit|committing|carry out|complete) "
        r"suicide\b",
    ),
    _r(
        "method",
        CRISIS,
        "suicid",
        r"\b(?:painless|easiest|quickest|fastest|best|surest|most effective|least painful|"
        r"peaceful|reliable|quiet) (?:\w+ ){0,2}(?:suicide )?(?:method|way|means)s? "
        r"(?:of |for |to )?(?:commit |committing )?suicide\b",
    ),
    _r(
        "method",
        CRISIS,
        _ME_G + "|yourself|oneself|themselves|one's self",
        r"\b(?:ways?|methods?|means|how|place|places|spot|spots|location|bridge|building) "
        r"(?:\w+ ){0,4}to {KILLV} (?:{ME}|yourself|oneself|themselves|one's self)\b",
    ),
    _r(
        "method",
        CRISIS,
        "die|dying|death",
        r"\b(?:painless|painlessly|easiest|easy|quickest|quick|fastest|fast|best|surest|"
        r"peaceful|peacefully|quietest|quiet|least painful|gentlest|simplest|most effective|"
        r"reliable) (?:\w+ ){0,2}(?:way|ways|method|methods|means|death|place) (?:to|of|for) "
        r"(?:die|dying|go)\b(?! (?:in (?:a|the) (?:game|match)|hard))",
    ),
    _r(
        "method",
        CRISIS,
        "die|dying",
        r"\b(?:how (?:do|can|could|should|would|might) (?:i|one|you|someone)|how to|ways? to|"
        r"methods? to|researching|research|looking up|googling|googled) "
        r"(?:\w+ ){0,2}(?:die|dying|end (?:it|my life))\b(?!(?: in| at)? (?:a|the|that|this|my)?"
        r" ?(?:game|level|match|elden|dark souls|minecraft|episode|show|movie|film|book|"
        r"novel))",
        subject=True,
    ),
    _r(
        "method",
        CRISIS,
        "dose|overdos|fatal|lethal|how many|how much",
        r"\b(?:lethal|fatal|deadly|toxic|killing|overdose) (?:dose|doses|amount|amounts|"
        r"quantity|level)\b|\bhow (?:many|much) [^.?!\n]{0,40}\b(?:to|would|will|could|"
        r"does it take to|it takes? to) (?:overdose|kill (?:me|{ME}|a person|someone)|"
        r"be lethal|be fatal|die)\b",
    ),
    _r(
        "method",
        CRISIS,
        "overdos",
        r"\b(?:me|i|i'll|ill|i will|to|gonna|going to|wanna|want to|could|can|should) "
        r"(?:intentionally |just )?overdose(?: on)?\b",
    ),
    _r(
        "method",
        CRISIS,
        "overdos",
        r"\boverdose (?:fastest|quickest|easily|painlessly|on purpose)\b|\b(?:way|ways|how) to "
        r"overdose\b",
    ),
    _r(
        "method",
        CRISIS,
        "pill|tablet|meds|medication|wake",
        r"\bhow (?:many|much) (?:of )?(?:my |these |those |the )?(?:\w+ )?(?:pills|tablets|"
        r"meds|medication|sleeping pills|painkillers|paracetamol|tylenol|ibuprofen|insulin|"
        r"xanax|benzos|opioids)[^.?!\n]{0,40}\b(?:enough|take|would|to)\b[^.?!\n]{0,30}"
        r"\b(?:die|dead|not wake|never wake|kill|lethal|fatal|end it|overdose)\b",
    ),
    _r(
        "method",
        CRISIS,
        "wrist",
        r"\b(?:slit|slitting|cut|cutting|slash|slashing|open|opening) (?:my |your |one's |the )"
        r"?wrists?\b",
    ),
    _r(
        "method",
        CRISIS,
        "noose|rope",
        r"\b(?:tie|tying|make|making) (?:a|the|my) noose\b|\bnoose (?:for|around) (?:me|my)",
    ),
    _r(
        "method",
        CRISIS,
        "hurt",
        r"\b(?:which|what) (?:method|way) (?:hurts|would hurt|is) (?:the )?(?:least|less|"
        r"fastest|quickest|least painful)\b",
    ),
    _r(
        "method",
        CONCERN,
        "fastest way|quickest way|easiest way|best way|painless way|"
        "how to do it|how do i do it|how should i do it|how can i do it",
        r"\b(?:what(?:'s| is) the (?:fastest|quickest|easiest|best|surest|most painless) way"
        r"(?= ?[?.!]|$)|(?:tell|show) me how to do it|how (?:do|should|can) i do it)\b",
    ),
    _r(
        "method",
        CONCERN,
        "bridge|roof|building|train|bus|cliff|ledge|balcony",
        r"\b(?:jump|jumping|leap|leaping|throw myself|throwing myself) (?:off|from) (?:a|the|"
        r"my|this) (?:bridge|roof|building|cliff|ledge|balcony|tower|overpass)\b|"
        r"\b(?:step|stepping|jump|jumping|throw myself|walk|walking) in front of (?:a|the) "
        r"(?:bus|train|car|truck|subway)\b",
    ),
    _r(
        "method",
        CRISIS,
        "plan it|plan my|help me plan",
        r"\bhelp me plan (?:it|my (?:death|suicide|exit))\b",
    ),
    # -- notes and finality ----------------------------------------------------------------
    _r(
        "note",
        CRISIS,
        "note|letter|message",
        r"\b(?:my |a |the )?(?:suicide|goodbye|farewell|good-bye|final|last) (?:note|letter|"
        r"letters|message|messages|notes)\b(?:[^.?!\n]{0,30}\b(?:before i (?:go|die|leave)|kids|"
        r"family|children|wife|husband|parents|mom|dad|mum))?",
        subject=True,
    ),
    _r(
        "note",
        CRISIS,
        "letter|note",
        r"\b(?:written|wrote|writing|write|leave|left|leaving) (?:\w+ ){0,2}(?:letters?|notes?) "
        r"(?:to|for) (?:my|all my|each of my) (?:family|kids|children|wife|husband|parents|mom|"
        r"dad|mum|loved ones|friends|sister|brother|son|daughter)\b",
    ),
    _r(
        "finality",
        CONCERN,
        "goodbye|farewell|good-bye|good bye|bye",
        r"\b(?:goodbye|good-bye|good bye|farewell|bye),? (?:everyone|everybody|all|world|"
        r"guys|y'all|cruel world|forever|for(?: the)? last time)\b|\b(?:this is|it's|its) "
        r"(?:my )?(?:goodbye|farewell)\b|\bsaying (?:my )?(?:goodbyes|goodbye to "
        r"(?:everyone|you all|all of you))\b",
    ),
    _r(
        "finality", CONCERN, "thank", r"\bthank(?:s| you) (?:all |everyone |guys )?for everything\b"
    ),
    _r(
        "finality",
        CONCERN,
        "be around|be here|be online|be alive|be back|if i",
        r"\b(?:won't|wont|will not|not going to) be (?:around|here|online|alive|back) "
        r"(?:after|by|anymore|any more|tomorrow|next|much|for)\b|"
        r"\bif (?:i'm|im|i am|i'm not|im not|i am not|i don't|i dont) (?:not )?"
        r"(?:online|here|around|alive|back|reply|answer|respond)\w* (?:tomorrow|by|in the morning|"
        r"next|again|later)\b",
    ),
    _r(
        "finality",
        CONCERN,
        "did it|do it|done it|go through|going through|is near",
        r"\b(?:finally|actually) (?:did|do|done|go through with) it\b|\bgo(?:ing)? through with "
        r"it\b|\b(?:the end|my end) is near\b",
    ),
    _r(
        "finality",
        CONCERN,
        "my mind|my decision|my peace",
        r"\b(?:i've|ive|i have) made (?:up )?my (?:mind|decision|peace)\b|\bmade my peace\b",
    ),
    _r(
        "finality",
        CONCERN,
        "scared|afraid|fear",
        r"\b(?:not|no longer) (?:scared|afraid|frightened) (?:anymore|any more|of (?:it|dying|"
        r"death) anymore|of dying|of death)\b",
    ),
    _r(
        "finality",
        CONCERN,
        "'s the night|'s the day|is the night|is the day|it's time",
        r"\b(?:tonight|today)(?:'s| is) the (?:night|day)\b|\bit's time\b(?= *[.!]|$)",
    ),
    _r(
        "finality",
        CONCERN,
        "last thing|last time|last commit|last message|last pr|last ship|my last|my final",
        r"\b(?:the )?last (?:thing|time|commit|message|pr|ship) (?:i'll|i will|ill) ever\b|"
        r"\bmy (?:last|final) (?:day|night|words|message)\b(?! (?:at|of|in|on|here|before|with)"
        r")",
    ),
    _r(
        "finality",
        CONCERN,
        "for good|forever|permanently",
        r"\bbefore i (?:go|leave|die|check out)(?: for good| forever| permanently)?\b|"
        r"\b(?:go|leave|gone|leaving) (?:for good|forever|permanently)\b",
    ),
    _r(
        "finality",
        CONCERN,
        "giving away|give away|gave away",
        r"\b(?:giving|give|gave|given) (?:away )?(?:all )?(?:of )?my (?:stuff|things|"
        r"belongings|possessions|cat|dog|pets?|games|clothes|books|savings|money)\b",
    ),
    _r(
        "finality",
        CONCERN,
        "need it|need them|need this|need that|need these|need any|need my|needing",
        r"\b(?:won't|wont|will not|not going to|don't|dont) (?:be )?(?:need|needing) (?:it|them|"
        r"this|that|these|anything|any of (?:it|this|them)|my \w+) (?:anymore|any more|any "
        r"longer|where i'm going|where im going)\b",
    ),
    _r(
        "finality",
        CONCERN,
        "password",
        r"\b(?:here are|here's|heres|sending|giving|leaving|take) (?:you |everyone )?(?:all )?"
        r"my (?:passwords?|logins?|credentials|pins?|bank details)\b",
    ),
    _r(
        "despair",
        CONCERN,
        "anymore|any more|go on|longer",
        r"\b(?:can't|cant|cannot|can not) (?:do|take|handle|bear|live with|go on|keep going|"
        r"continue|stand) (?:this|it|life|living|like this)? ?(?:anymore|any more|any longer|"
        r"much longer)\b|\b(?:can't|cant|cannot) go on\b",
    ),
    _r(
        "despair",
        CONCERN,
        "done",
        r"\b(?:i'm|im|i am) (?:so |just |fucking |completely |totally )?done(?: with "
        r"(?:everything|it all|all of this|everyone|people|trying))?\s*(?:[.!,]|$)|\bi'm done,? "
        r"(?:i'm|im) (?:out|gone)\b",
    ),
    _r(
        "despair",
        CONCERN,
        "pointless|meaningless|hopeless|worthless",
        r"\b(?:life|my life|everything|living|existence|i) (?:is|feels|seems|am|feel) "
        r"(?:so |completely |totally )?(?:pointless|meaningless|hopeless|worthless)\b",
    ),
    _r(
        "despair",
        CONCERN,
        "disappear|vanish",
        r"\b(?:{WANT}) (?:to )?{ADV}(?:disappear|vanish)\b",
        subject=True,
    ),
    # -- happening now -----------------------------------------------------------------------
    _r(
        "in_progress",
        IMMINENT,
        "pill|tablet|meds|bottle",
        r"\b(?:i|i've|ive|i have|i just|just) (?:just )?(?:took|taken|swallowed|downed|had|ate) "
        r"(?:a bunch of|a lot of|all (?:of )?(?:my|the)|too many|a handful of|the whole|"
        r"an entire|every|\d+|twenty|thirty|fifty|a hundred|loads of|so many) (?:\w+ )?"
        r"(?:pills|tablets|meds|medication|bottle|pack|sleeping pills|painkillers)\b",
    ),
    _r(
        "in_progress",
        IMMINENT,
        "roof|bridge|ledge|edge|rail",
        r"\b(?:i'm|im|i am|sitting|standing|i'm sitting|im sitting|i'm standing) (?:\w+ ){0,2}"
        r"(?:on|at|over) (?:the )?(?:edge|ledge|railing|rail|top) of (?:the |a |my )?(?:roof|"
        r"bridge|building|cliff|balcony|tower|parking garage|overpass)\b|\b(?:on|at) the "
        r"(?:roof|bridge|ledge) (?:right now|now|rn)\b",
    ),
    _r(
        "in_progress",
        IMMINENT,
        "call|for help|get help|ambulance|911|police",
        r"\b(?:don't|dont|do not) (?:want (?:anyone|anybody|you) to )?(?:call|get|send) (?:for )?"
        r"(?:help|an ambulance|911|the police|anyone)\b",
        subject=True,
        negatable=False,
    ),
    # -- more burden / method / preparation signals -------------------------------------
    _r(
        "burden",
        CRISIS,
        "if i",
        r"\b(?:better|happier|easier|fine|relieved) (?:off )?if i (?:just |simply )?(?:disappeared|"
        r"vanished|was gone|were gone|died|was dead|were dead|wasn't here|weren't here|wasn't "
        r"around|didn't exist|never existed|killed {ME}|wasn't alive|weren't alive)\b",
    ),
    _r(
        "burden",
        CRISIS,
        "without me",
        r"\b(?:world|everyone|everybody|they|family|kids|people|team|wife|husband|parents) "
        r"(?:\w+ )?(?:would|will|'d) be (?:better|happier|fine|okay) (?:off )?without me\b",
    ),
    _r(
        "method",
        CRISIS,
        "survive",
        r"\b(?:high|tall|deep|strong|fast|enough|much|many|far|long)\b[^.?!\n]{0,30}\b(?:that|so|"
        r"for|to make sure) (?:i|me) (?:wouldn't|won't|would not|will not|don't|dont|do not|"
        r"can't|cannot|couldn't) (?:survive|make it|wake up)\b",
        negatable=False,
    ),
    _r(
        "ideation",
        CRISIS,
        "worth",
        r"\bmy life (?:isn't|is not|ain't|isnt|is) (?:worth (?:anything|nothing|living|saving|"
        r"shit|it)|worthless)\b|\bmy life is worth nothing\b",
    ),
    _r(
        "method",
        CONCERN,
        "jump",
        r"\b(?:i'm|im|i am|i'll|ill|i will) (?:going to|gonna|about to|ready to|just going to) "
        r"jump\b(?! (?:in|on|into|onto|to|ship|start|the gun|at|over|right|back|ahead|through|"
        r"off (?:the )?(?:call|meeting)|between))",
    ),
    _r(
        "in_progress",
        CONCERN,
        "balcony|roof|ledge|edge|bridge|window|tracks",
        r"\b(?:standing|sitting|i'm|im|i am|i'm up|im up) (?:on|at|by|near|over) (?:the |my |a )"
        r"?(?:balcony|roof|rooftop|ledge|edge|bridge|window ?sill|open window|train tracks|"
        r"railway tracks|tracks)\b",
    ),
    _r(
        "method",
        CONCERN,
        "pill|meds|tablet|medication|sleeping",
        r"\b(?:stockpil\w*|hoard\w*|sav(?:ing|ed)|collect(?:ing|ed)|stash\w*|sav(?:ing|ed) up) "
        r"(?:up )?(?:my |all my |the |these |some |enough )?(?:pills|meds|tablets|medication|"
        r"sleeping pills|painkillers)\b|\b(?:pills|meds|tablets|painkillers) (?:saved|stashed|"
        r"stockpiled|hoarded|collected) up\b",
    ),
    _r(
        "method",
        CONCERN,
        "them all|all my|all the|all of|whole bottle",
        r"\b(?:take|swallow|down) (?:them all|all (?:of )?(?:them|my|the|these|those) "
        r"(?:pills|meds|tablets)?|the whole (?:bottle|pack|box))\b",
    ),
    _r(
        "method",
        CONCERN,
        "rope|noose|gun|razor|blade|poison|charcoal|helium",
        r"\b(?:bought|buying|got|have|found|ordered|hid|hidden|keep) (?:a |the |some |my )?"
        r"(?:rope|noose|gun|pistol|razor ?blades?|blades|rat poison|charcoal|helium)\b",
    ),
    _r(
        "finality",
        CONCERN,
        "know what",
        r"\bi know (?:exactly )?what (?:i'm|im|i am|i need|i have) (?:going to |gonna |to )?do"
        r"(?: with (?:it|them))?\b",
    ),
    _r(
        "ideation",
        CRISIS,
        "pain",
        r"\b(?:want|need|wish|just want) (?:the|this|my) pain to (?:stop|end|go away)\b"
        r"[^.?!\n]{0,20}\b(?:forever|permanently|for good|once and for all)\b",
        subject=True,
    ),
    _r(
        "despair",
        CONCERN,
        "pain",
        r"\b(?:want|need|wish|just want) (?:the|this|my) pain to (?:stop|end)\b",
        subject=True,
    ),
    _r(
        "method",
        CRISIS,
        "kill me",
        r"\b(?:what|which|how much|how many) (?:\w+ ){0,2}(?:chemicals?|pills?|drugs?|meds|"
        r"medications?|substances?|poisons?|doses?|amounts?|combination|mix|plants?|gas|"
        r"tablets?) (?:would|will|could|can|might|to) (?:\w+ )?kill me\b",
    ),
    _r(
        "method",
        CRISIS,
        "bleed|long|fast|quick",
        r"\bhow (?:long|fast|quickly|much time) (?:\w+ ){0,4}(?:to |until (?:i|you) )?(?:bleed out|"
        r"bleed to death|suffocate|drown|lose consciousness|die from|die of|die after|die if)\b"
        r"|\bbleed(?:ing)? out\b(?! (?:of|from) (?:the|our|my) (?:budget|cache|margins))",
        subject=True,
    ),
    _r(
        "ideation",
        CRISIS,
        "help me|helping me",
        r"\b(?:help|helping|assist) me (?:to )?{ADV}(?:die|end (?:it|it all|my life)|kill {ME}|"
        r"commit suicide|disappear forever|not wake up|overdose)\b",
    ),
    _r(
        "ideation",
        CRISIS,
        "should|as well|ought|deserve|need to",
        r"\bi (?:should|might as well|may as well|ought to|deserve to|need to) {ADV}"
        r"(?:die|be dead|{DIESTRONG})\b(?!t| (?:laughing|of |from |in (?:a|the) ))",
    ),
    _r(
        "method",
        CRISIS,
        "in my hand",
        r"\b(?:pills|rope|noose|razor|blade|blades|tablets) (?:is |are )?in my hands?\b",
    ),
    _r("method", CONCERN, "in my hand", r"\b(?:knife|gun|pistol|bottle) (?:is )?in my hands?\b"),
    _r(
        "burden",
        CRISIS,
        "miss me|care|notice",
        r"\b(?:would|will|does|do) (?:anyone|anybody|people|they|you|you guys|my family) "
        r"(?:even |really )?(?:miss me|care|notice)\b[^.?!\n]{0,12}\b(?:if|when|after|once) "
        r"(?:i'm|im|i am|i'm not|i)? ?(?:gone|dead|die|died|not here|not around)\b",
    ),
    _r(
        "finality",
        CONCERN,
        "will",
        r"\b(?:writing|wrote|written|made|making|updated|updating|finished) my will\b",
    ),
    _r(
        "finality",
        CONCERN,
        "goodbye|farewell",
        r"\bsaying (?:my )?(?:goodbyes?|farewells?)\b|(?:^|[.!] )(?:goodbye|farewell|bye "
        r"forever)[.! ]*$",
    ),
    _r(
        "finality",
        CONCERN,
        "tell my|sorry|love you all|love you guys|love all|love everyone",
        r"\btell (?:my|the) (?:mom|mum|mother|dad|father|family|kids|wife|husband|parents|"
        r"sister|brother|son|daughter|partner|friends) (?:that )?(?:i'm|im|i am) sorry\b|"
        r"\bi love (?:you all|you guys|all of you|everyone)\b",
    ),
    _r(
        "finality",
        CONCERN,
        "ending it|end it",
        r"\b(?:ending|end) it (?:all )?(?:tonight|today|soon|this week(?:end)?|now|tomorrow)\b",
    ),
    # -- hyperbole and framing (never raise to crisis on their own) -----------------------
    _r(
        "hyperbole",
        CONCERN,
        "kill me|end me|shoot me",
        r"\b(?:kill|end|shoot) me\b(?! (?:a|an|the|your|some|know|when|if|later|after|"
        r"message|msg|text|email|line|dm|pm|ping|link|note)\b)",
    ),
)

# ---------------------------------------------------------------------------------------
# Slang and internet forms
# ---------------------------------------------------------------------------------------
SLANG: tuple[Rule, ...] = (
    _r(
        "slang",
        CRISIS,
        "kms",
        r"\bkms\b(?<![\d.]kms)(?<!\d kms)(?<!aws kms)(?<!gcp kms)(?<!the kms)(?<!a kms)"
        r"(?<!our kms)(?<!drm kms)(?<!via kms)(?<!with kms)(?<!using kms)(?<!use kms)"
        r"(?<!and kms)(?<!your kms)(?<!google kms)(?<!cloud kms)(?<!per kms)(?<!azure kms)"
        r"(?! ?(?:key|keys|encrypt|decrypt|arn|alias|api|policy|policies|grant|service|"
        r"driver|mode|modesetting|server|client|cmk|master|permission|access|signing|sign|"
        r"provider|backend|plugin|config|is |to |for |in |on |\d|/|\.\w|-|:|=|_))",
    ),
    _r(
        "slang",
        CRISIS,
        "kms",
        r"(?<!\w)(?:gonna|going to|wanna|want to|about to|finna|just|"
        r"i|i'll|ill|might|should|could|to|ready to) kms\b",
    ),
    _r(
        "slang",
        CRISIS,
        "unaliv",
        r"\bunaliv(?:e|ing|ed) (?:my ?self|me|myself)\b|\b(?:{WANT}|{GOING}|thinking about|"
        r"thought about|should|could) (?:to |of |about )?{ADV}unaliv(?:e|ing)\b",
        subject=True,
    ),
    _r(
        "slang",
        CRISIS,
        "sewerslide|sewer slide|self delet|self-delet|ctb|catch the bus|rope max|ropemax",
        r"\b(?:sewer ?slide|self[- ]delete|self[- ]deleting|ctb|catch the bus|rope ?maxx?ing|"
        r"commit (?:toaster bath|sewer ?slide))\b(?! (?:button|command|function|method|api|"
        r"endpoint|feature|flag))",
    ),
    _r("slang", CONCERN, "unaliv|sewer", r"\bunaliv(?:e|ed|ing)\b|\bsewer ?slide\b"),
)

# ---------------------------------------------------------------------------------------
# Other languages (accents already stripped)
# ---------------------------------------------------------------------------------------
ES: tuple[Rule, ...] = (
    _r(
        "lang_es",
        CRISIS,
        "morir|muer|matar|suicid|vivir|viviendo|vida|desaparecer",
        r"\b(?:quiero|quisiera|deseo|necesito|voy a|pienso|estoy pensando en|he pensado en|"
        r"pensando en|ganas de|me dan ganas de|prefiero|quiero ya)(?: me)? ?(?:morir(?:me)?|"
        r"matarme|suicidarme|el suicidio|quitarme la vida|acabar con mi vida|acabar con todo|"
        r"desaparecer para siempre|dejar de (?:vivir|existir)|estar muert[oa]|no despertar)\b",
    ),
    _r(
        "lang_es",
        CRISIS,
        "muer|matar|suicid",
        r"\bme (?:quiero|voy a|gustaria) (?:morir|matar|suicidar)\b|\bme (?:voy|quiero) "
        r"(?:a )?(?:matar|suicidar)\b",
    ),
    _r(
        "lang_es",
        CRISIS,
        "vivir|viviendo|seguir",
        r"\b(?:ya )?no (?:quiero|puedo|aguanto|deseo) (?:mas |seguir )?(?:vivir|viviendo|"
        r"seguir vivo|seguir viva|estar vivo|estar viva|existir|seguir aqui|seguir asi)\b|"
        r"\bno quiero (?:seguir )?(?:vivir|viviendo)\b",
    ),
    _r(
        "lang_es",
        CRISIS,
        "sin mi",
        r"\b(?:estarian|estaria|estaran|serian|seria|vivirian) (?:todos )?(?:mejor|mas "
        r"felices) sin mi\b|\b(?:todos|todo el mundo|mi familia) (?:\w+ )?mejor sin mi\b",
    ),
    _r(
        "lang_es",
        CRISIS,
        "extran|notaria|importaria",
        r"\b(?:nadie|ninguno) (?:me )?(?:extranaria|echaria de menos|notaria|lloraria)\b|"
        r"\ba nadie le importaria si (?:me muero|me muriera|desaparezco|desapareciera)\b",
    ),
    _r(
        "lang_es",
        CRISIS,
        "morir|matarme|suicid",
        r"\b(?:forma|manera|modo|metodo)s? (?:\w+ ){0,2}(?:menos doloros[ao]|mas facil|mas "
        r"rapid[ao]|indolor[ao]?|de) (?:de |para )?(?:morir|matarme|suicidarme|quitarme la "
        r"vida)\b|\bcomo (?:puedo |podria )?(?:matarme|suicidarme|quitarme la vida)\b",
    ),
    _r(
        "lang_es",
        CRISIS,
        "cort|dano|lastim",
        r"\b(?:cortarme|hacerme dano|lastimarme|herirme)\b|"
        r"\bme (?:he|volvi a|sigo) (?:cortado|cortando|hecho dano|"
        r"lastimado)\b|\bme corto (?:los brazos|las venas|otra vez)\b",
    ),
    _r(
        "lang_es",
        CRISIS,
        "despedida",
        r"\bcarta (?:de despedida|suicida)\b|\b(?:nota|mensaje) (?:de despedida|suicida)\b",
    ),
    _r("lang_es", CONCERN, "aguanto|puedo mas", r"\bno (?:aguanto|puedo|soporto) mas\b"),
    _r(
        "lang_es",
        CRISIS,
        "muriera|muero|morir",
        r"\bsi (?:me muriera|me muero|muriera|me mato|desapareciera)\b[^.?!\n]{0,30}"
        r"\b(?:nadie|importa|extran|notar)",
    ),
)

FR: tuple[Rule, ...] = (
    _r(
        "lang_fr",
        CRISIS,
        "mourir|suicid|tuer|finir|disparaitre|vivre",
        r"\b(?:je veux|je voudrais|j'ai envie de|envie de|je vais|je pense a|je songe a|"
        r"j'aimerais|je prefere|je compte|j'ai decide de|je dois|besoin de) (?:\w+ )?"
        r"(?:mourir|me suicider|me tuer|en finir|disparaitre pour toujours|ne plus vivre|"
        r"ne plus me reveiller|mettre fin a (?:mes jours|ma vie))\b"
        r"(?! avec (?!(?:la |ma )?vie\b|tout\b))",
    ),
    _r(
        "lang_fr",
        CRISIS,
        "suicid|tuer",
        r"\b(?:me suicider|me tuer|me foutre en l'air|mettre fin a mes jours)\b",
    ),
    _r("lang_fr", CRISIS, "finir", r"\ben finir\b(?! avec (?!(?:la |ma )?vie\b|tout\b))"),
    _r(
        "lang_fr",
        CRISIS,
        "vivre",
        r"\b(?:je ne veux plus|je veux plus|plus envie de|aucune envie de|pas envie de) "
        r"(?:\w+ )?vivre\b",
    ),
    _r(
        "lang_fr",
        CRISIS,
        "sans moi",
        r"\b(?:serai(?:en)?t|serions|serez) (?:tous )?mieux sans moi\b",
    ),
    _r(
        "lang_fr",
        CRISIS,
        "mal|scarif|couper|coupe|brule",
        r"\b(?:je me suis|je me|me) (?:encore |de nouveau )?(?:fait du mal|faire du mal|"
        r"scarifie|scarifier|coupe les veines|couper les veines|mutile|bruler|brule)\b|"
        r"\bje me (?:scarifie|coupe|mutile|brule)\b",
    ),
    _r("lang_fr", CRISIS, "adieu", r"\blettre d'adieu\b|\bmessage d'adieu\b"),
    _r(
        "lang_fr",
        CRISIS,
        "remarquer|manquer",
        r"\bpersonne ne (?:remarquerait|verrait|me regretterait|remarquera)\b|\bje ne "
        r"manquerais a personne\b",
    ),
    _r(
        "lang_fr",
        CRISIS,
        "mourir",
        r"\b(?:facon|maniere|moyen|methode)s? (?:\w+ ){0,2}(?:indolore|rapide|facile|douce)s? "
        r"(?:de|pour) (?:mourir|me suicider|me tuer)\b|\bcomment (?:me suicider|me tuer|"
        r"mourir sans)\b",
    ),
    _r(
        "lang_fr",
        CONCERN,
        "peux plus",
        r"\bje n'en peux plus\b|\bj'en peux plus\b|\bje ne peux plus continuer\b",
    ),
)

DE: tuple[Rule, ...] = (
    _r(
        "lang_de",
        CRISIS,
        "sterben|umbring|leben|tot|selbstmord|suizid|toten",
        r"\bich (?:will|mochte|moechte|werde|wurde gern|wuerde gern|denke daruber nach,?|"
        r"denke dran|plane|habe vor|muss|kann nur noch) (?:\w+ ){0,2}(?:sterben|mich "
        r"umbringen|mich toten|mich totn|tot sein|nicht mehr leben|nicht mehr aufwachen|"
        r"mir das leben nehmen|selbstmord begehen|suizid begehen)\b",
    ),
    _r(
        "lang_de",
        CRISIS,
        "bring|leben|selbstmord|suizid|toten|ritz",
        r"\bmich (?:\w+ )?(?:umzubringen|umbringen|zu toten|toten|selbst verletzen|zu ritzen|"
        r"ritzen)\b|\bmir (?:\w+ )?das leben (?:zu )?nehmen\b|\b(?:an|uber) (?:selbstmord|"
        r"suizid)\b|\bich ritze mich\b|\bselbstmordgedanken\b|\bsuizidgedanken\b",
    ),
    _r(
        "lang_de",
        CRISIS,
        "leben",
        r"\b(?:will|mochte|moechte|kann) nicht mehr leben\b|\bkeine lust mehr (?:zu|auf) "
        r"(?:leben|das leben)\b",
    ),
    _r(
        "lang_de",
        CRISIS,
        "ohne mich",
        r"\b(?:waren|ware|waeren|waere|sind|waer) (?:\w+ )?besser (?:dran |ohne )?ohne mich\b|"
        r"\bbesser dran ohne mich\b",
    ),
    _r("lang_de", CRISIS, "abschied", r"\babschiedsbrief\b|\babschiedsnachricht\b"),
    _r(
        "lang_de",
        CRISIS,
        "vermissen|merken",
        r"\bniemand (?:wurde|wuerde) (?:mich )?(?:vermissen|merken)\b",
    ),
    _r("lang_de", CONCERN, "nicht mehr", r"\bich (?:kann|halte es|halt es) nicht mehr\b"),
)

PT: tuple[Rule, ...] = (
    _r(
        "lang_pt",
        CRISIS,
        "morrer|matar|suicid|vida|viver",
        r"\b(?:quero|queria|vou|preciso|penso em|pensando em|estou pensando em|to pensando em|"
        r"tou pensando em|vontade de|desejo|prefiro) (?:\w+ )?(?:morrer|me matar|matar-me|"
        r"me suicidar|suicidar-me|suicidio|tirar (?:a )?minha (?:propria )?vida|acabar com "
        r"(?:a )?minha vida|acabar com tudo|sumir para sempre|nao acordar mais)\b",
    ),
    _r(
        "lang_pt",
        CRISIS,
        "viver",
        r"\b(?:nao|ja nao) (?:quero|aguento|consigo|suporto) (?:mais )?(?:viver|continuar "
        r"vivendo|continuar vivo|continuar viva|estar vivo|estar viva)\b|\baguento mais viver\b",
    ),
    _r(
        "lang_pt",
        CRISIS,
        "sem mim",
        r"\b(?:estariam|ficariam|seriam|estaria|ficaria|seria) (?:todos )?(?:melhor(?:es)?|mais "
        r"felizes) sem mim\b",
    ),
    _r(
        "lang_pt",
        CRISIS,
        "falta",
        r"\bninguem (?:sentiria|vai sentir|sentira) (?:a )?minha falta\b",
    ),
    _r(
        "lang_pt",
        CRISIS,
        "cort|machuc",
        r"\b(?:me cortar|me machucar|me ferir|me cortando|me machucando)\b|"
        r"\bme (?:cortei|machuquei) de novo\b",
    ),
    _r("lang_pt", CRISIS, "despedida", r"\bcarta (?:de despedida|suicida)\b"),
    _r(
        "lang_pt",
        CRISIS,
        "morrer",
        r"\b(?:jeito|forma|maneira|modo)s? (?:\w+ ){0,2}(?:menos doloros[ao]|mais facil|mais "
        r"rapid[ao]|indolor) (?:de|para) (?:morrer|me matar)\b|\bcomo (?:posso )?(?:me matar|"
        r"me suicidar)\b",
    ),
    _r("lang_pt", CONCERN, "aguento", r"\bnao aguento mais\b"),
)

IT: tuple[Rule, ...] = (
    _r(
        "lang_it",
        CRISIS,
        "morire|uccid|ammazz|suicid|finita|vita",
        r"\b(?:voglio|vorrei|desidero|sto pensando di|penso di|ho deciso di|sto per|mi "
        r"voglio|devo) (?:\w+ )?(?:morire|uccidermi|ammazzarmi|suicidarmi|farla finita|"
        r"togliermi la vita|uccidere|ammazzare|suicidare|sparire per sempre)\b",
    ),
    _r(
        "lang_it",
        CRISIS,
        "suicid|uccid|ammazz|vita|finita",
        r"\b(?:suicidarmi|uccidermi|ammazzarmi|togliermi la vita|farla finita|pensieri "
        r"suicidi)\b",
    ),
    _r("lang_it", CRISIS, "vivere", r"\bnon (?:voglio|ce la faccio a) (?:piu )?vivere\b"),
    _r(
        "lang_it",
        CRISIS,
        "senza di me",
        r"\b(?:starebbero|starebbe|sarebbero|sarebbe) (?:tutti )?meglio senza di me\b",
    ),
    _r(
        "lang_it",
        CRISIS,
        "male|tagli",
        r"\b(?:farmi del male|mi (?:sono )?(?:fatto|fatta) del male|mi taglio|tagliarmi)\b",
    ),
    _r("lang_it", CRISIS, "addio", r"\blettera d'addio\b|\bbiglietto d'addio\b"),
    _r("lang_it", CONCERN, "ce la faccio", r"\bnon ce la faccio piu\b"),
)

NL: tuple[Rule, ...] = (
    _r(
        "lang_nl",
        CRISIS,
        "dood|sterven|leven|zelfmoord|kant|einde|eind",
        r"\bik (?:wil|ga|denk erover|denk eraan|zou willen|wil gewoon) (?:\w+ ){0,2}"
        r"(?:dood|sterven|niet meer leven|zelfmoord plegen|mezelf (?:van kant maken|doden|"
        r"ombrengen|iets aandoen)|er een eind(?:e)? aan maken|niet meer wakker worden)\b",
    ),
    _r(
        "lang_nl",
        CRISIS,
        "mezelf|zelfmoord|eind",
        r"\bmezelf (?:van kant (?:te )?maken|(?:te )?doden|om (?:te )?brengen|iets aan (?:te )?"
        r"doen|snijden|pijn doen)\b|\bzelfmoordgedachten\b|\bdenk(?:en)? aan zelfmoord\b|"
        r"\been eind(?:e)? aan (?:mijn leven|alles) (?:maken|te maken)\b",
    ),
    _r(
        "lang_nl",
        CRISIS,
        "zonder mij",
        r"\b(?:iedereen|ze|mijn familie) (?:is|zijn|zou|zouden|zal) (?:\w+ )?beter af zonder "
        r"mij\b|\bbeter af zonder mij\b",
    ),
    _r("lang_nl", CRISIS, "afscheid", r"\bafscheidsbrief\b"),
    _r("lang_nl", CONCERN, "kan niet meer", r"\bik kan (?:het )?niet meer\b"),
)

ALL: tuple[Rule, ...] = EN + SLANG + ES + FR + DE + PT + IT + NL

# Phrases matched on run-together text ("iwanttokillmyself", "IMTHINKINGABOUTSUICIDE").
# Someone who glues or spaces out letters on purpose is hiding something, so these count as
# crisis; they are specific enough not to appear inside ordinary identifiers.
COMPACT = re.compile(
    r"kill(?:ing)?m(?:y)?self|unalive(?:my)?self|endmylife|endingmylife|takemy(?:own)?life|"
    r"wanttodie(?![st])|wannadie|wanttoendit|wanttoendmylife|iwanttodie|endital|"
    r"thinkingaboutsuicide|thinkingaboutkilling|commit(?:ting)?suicide|mysuicidenote|"
    r"suicidenote|writemysuicide|cutting(?:my)?self|cutmyself|hurtmyself|harmmyself|"
    r"burnmyself|hangmyself|drownmyself|shootmyself|overdoseon|imsuicidal|feelsuicidal|"
    r"dontwanttolive|donotwanttolive|dontwanttobealive|nottobealive|betteroffdead|"
    r"betteroffwithoutme|quieromorir|jeveuxmourir|ichwillsterben|queromorrer|voglio(?:morire)|"
    r"ikwildood|howdoidie|waystodie|painlesswaytodie|lethaldose|gonnakms|wannakms|"
    r"killmyselfpainlessly"
)
COMPACT_GATES = (
    "self",
    "life",
    "die",
    "suicid",
    "end",
    "live",
    "alive",
    "dead",
    "without",
    "morir",
    "mourir",
    "sterben",
    "morrer",
    "morire",
    "dood",
    "dose",
    "kms",
)

# Time and immediacy: turns a crisis into "imminent".
TIME = re.compile(
    r"\b(?:tonight|today|right now|rn|this (?:evening|weekend|morning|afternoon)|tomorrow|"
    r"in an? (?:hour|minute)|in a few (?:minutes|hours)|esta noche|hoy|ahora|ce soir|"
    r"maintenant|aujourd'hui|heute|jetzt|hoje|agora|esta noite|stasera|stanotte|oggi|adesso|"
    r"vanavond|vannacht|vandaag|nu)\b"
)

# Framing (jailbreak, fiction, hypotheticals): recorded as a reason, never a discount.
FRAMING = re.compile(
    r"\b(?:pretend|hypothetical(?:ly)?|roleplay|role-play|role play|in character|"
    r"stay in character|dan|jailbreak|no (?:rules|filters|restrictions)|ignore (?:all )?"
    r"(?:previous|prior) instructions|for a (?:novel|story|book|screenplay|game)|fiction|"
    r"my character|thought experiment|for research|research project|evilbot|developer mode)\b"
)

# Third-person subjects: the clause is about someone else ("my friend wants to die"). A
# fictional "character" is deliberately absent: "my character wants to kill herself" is
# treated as the sender's own payload, since framing never lowers a verdict.
SUBJECT = re.compile(
    r"\b(?:i|i'm|im|i've|ive|i'd|id|i'll|me|we|we're|he|she|they|he's|she's|they're|hes|shes|"
    r"theyre|you|you're|youre|u|someone|somebody|people|person|friend|friends|brother|sister|"
    r"mom|mum|mother|dad|father|son|daughter|wife|husband|partner|coworker|co-worker|"
    r"colleague|user|users|patient|patients|client|clients|kid|kids|child|children|boyfriend|"
    r"girlfriend|bf|gf|teen|teens|student|students|anyone|everyone|one|folks|others|"
    r"employee|employees|man|woman|guy|girl|boy|victim|victims|teenager|teenagers|cousin|"
    r"uncle|aunt|roommate|neighbor|neighbour|classmate|grandma|grandpa|who)\b"
)
FIRST_PERSON = frozenset(
    {"i", "i'm", "im", "i've", "ive", "i'd", "id", "i'll", "me", "we", "we're"}
)

NEGATION = re.compile(
    r"(?:\bdon't|\bdont|\bdo not|\bdoesn't|\bdoesnt|\bdidn't|\bdidnt|\bnever|\bwouldn't|"
    r"\bwouldnt|\bwon't|\bwont|\bwill not|\bnot going to|\bnot gonna|\bnot|\bno (?:intention|"
    r"plans?|desire|wish) (?:of|to)|\bisn't|\bain't|\baren't|\bstopped)"
    r"(?: (?:really|even|ever|actually|at all|want|wanna|plan|planning|going|intend|feel like|"
    r"think|to|have|any|thinking about|been|feeling))* ?$"
)

# Reported speech: a quote introduced by someone else's reporting verb ("a caller told me
# 'I want to die'") is that person's words, and the writer is usually a clinician, a
# crisis-line volunteer or a moderator at work. Such quotes are left out of the rule views.
# Never applied when FRAMING matches (framing never lowers) or when the nearest subject
# before the verb is the writer ("I told her 'I want to die'").
REPORTING_VERB = re.compile(
    r"\b(?:said|says|say|told|tells|tell|wrote|writes|texted|texts|typed|types|messaged|"
    r"posted|shared|disclosed|stated|mentioned|repeated|repeats|kept saying|keeps saying|"
    r"asked|asks|whispered|screamed|cried|admitted|admits|confided|wrote in|replied|"
    r"dijo|me dijo|escribio|conto|a dit|m'a dit|a ecrit|disait|sagte|schrieb|meinte|"
    r"disse|falou|escreveu|ha detto|mi ha detto|scrisse|zei|schreef)\b[^.!?\"\n]{0,24}$"
)
# Someone else's role, in the languages the rules cover, for reporters the English subject
# list does not know.
REPORTER_ROLE = re.compile(
    r"\b(?:caller|callers|texter|texters|patient|patients|client|clients|service user|"
    r"trainee|member|poster|resident|paciente|llamante|cliente|usuario|appelant|appelante|"
    r"patiente|anrufer|anruferin|patientin|klient|klientin|paziente|utente|beller|clienti)\b"
)
# Work with people at risk: where it frames a text, someone else's words of risk are the
# subject of the work, not the writer's own, so they earn no check-in either.
PROFESSIONAL = re.compile(
    r"\b(?:caller|callers|texter|texters|hotline|helpline|crisis line|crisis text line|"
    r"lifeline|samaritans|on shift|my shift|the shift|supervision|supervisor|trainee|"
    r"trainees|clinician|clinicians|clinical|clinic|therapist|therapists|counsell?or|"
    r"counsell?ing|psychiatr\w*|psycholog\w*|social worker|case ?notes?|intake|safety plan|"
    r"risk assessment|patient|patients|client|clients|ward|nurse|nurses|paramedic|"
    r"dispatcher|moderator|moderators|mod queue|volunteer|volunteers|volunteering|"
    r"paciente|pacientes|voluntari[oa]s?|linea de crisis|turno|benevole|ecoutant|"
    r"appelant|patiente|anrufer|telefonseelsorge|klient|klientin|ehrenamt\w*|paziente|"
    r"volontari[oa]|telefono amico|cvv|voluntario)\b"
)
# The writer taking a reported quote as their own ("she wrote 'I want to die' and I feel
# the same"): the quote is then screened as the writer's words.
ENDORSE = re.compile(
    r"\b(?:me too|same here|i feel the same|i feel that too|so do i|i do too|me as well|"
    r"same for me|i relate|that'?s me|that is me|i'?m the same|i am the same|yo tambien|"
    r"moi aussi|ich auch|eu tambem|anch'?io)\b"
)
# In professional context a quote is someone else's words unless the writer says it is
# theirs: a first-person subject with a verb of their own speech or thought right before it.
OWN_SPEECH = re.compile(
    r"\b(?:i|i'm|im|i've|ive|i'd|id|i'll)\b[^.!?\"\n]{0,30}\b(?:said|say|says|told|tell|"
    r"wrote|write|typed|type|texted|text|feel|felt|feeling|think|thought|thinking|keep "
    r"thinking|keep saying|whispered|screamed|cried|admit|admitted|mean|meant)\b"
    r"[^.!?\"\n]{0,24}$"
)
# A concrete plan to meet again ("see you at the offsite", "talk tomorrow"): evidence against
# a goodbye. It only caps the learned stage's finality-like guesses at concern when no rule
# found crisis; the euphemisms for dying ("see you on the other side") are not plans.
FUTURE_PLAN = re.compile(
    r"\b(?:see you|see ya|see u|cya|see everyone|see y'?all|talk to you|talk|catch you|"
    r"meet you)\s+(?:at|on|in|tomorrow|next|later|this|monday|tuesday|wednesday|thursday|"
    r"friday|saturday|sunday|after)\b"
    r"(?!\s+(?:the )?(?:other side|heaven|hell|next life|another life|afterlife|better place|"
    r"next world|stars|sky|forever))"
)

# Evidence against the learned stage's reading, in words that are unambiguous in chat: a
# sign-off for the day ("done for today, bye all", "signing off") and a wish stated in the
# negative ("I don't want to die, I just want this fixed"). Like FUTURE_PLAN they only cap a
# learned-only crisis at concern (a gentle check-in stays), never when a rule found crisis,
# and never for "for good", "forever" or "one last time".
SIGN_OFF = re.compile(
    r"\b(?:done for (?:today|the day|tonight|the night|the week|now)|signing off|logging off|"
    r"heading (?:out|home|off)|calling it a (?:day|night)|off for (?:today|the day|the night|"
    r"the weekend|the week)|clocking out|wrapping up for (?:today|the day)|"
    r"(?:good ?night|gn|bye|later|night) (?:all|everyone|folks|team|y'?all|guys|people))\b"
)
NEGATED_WISH = re.compile(
    r"\b(?:don'?t|do not|never|no longer|not) (?:really |even |actually )?(?:want|wanna|"
    r"plan|planning|intend|going) (?:to )?(?:die|kill myself|end (?:it|my life)|hurt myself)\b"
    r"(?![^.!?\n]{0,40}\bbut\b)"
)
# Words that make any of the above a goodbye after all.
FOR_GOOD = re.compile(
    r"\b(?:for good|forever|permanently|one last|last time|for the last|final|finally|"
    r"never coming back|won'?t be back|not coming back|the end)\b"
)
