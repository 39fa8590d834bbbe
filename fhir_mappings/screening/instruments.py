"""The screening instruments Tandem administers: items, answers, scores, bands and codes, in one table.

Codes: LOINC codes are used only where confirmed (clinical.md [C], or checked against published LOINC-coded
questionnaires). Where a code is not confirmed (marked [?] in clinical.md) the item carries no code rather than a
wrong one; its linkId and text identify it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LOINC = "http://loinc.org"
TANDEM_ANSWERS = "https://tandem.health/fhir/CodeSystem/answer"
QUESTIONNAIRE_BASE = "https://tandem.health/fhir/Questionnaire"


@dataclass(frozen=True)
class Answer:
    code: str
    display: str
    score: int
    system: str = LOINC


@dataclass(frozen=True)
class Item:
    link_id: str
    text: str
    answers: tuple[Answer, ...]
    loinc: str | None = None
    #: Not part of the total (e.g. the PHQ-9 difficulty question).
    scored: bool = True
    #: Shown only when another item has one of these answers: (linkId, answer codes).
    enable_when: tuple[str, tuple[str, ...]] | None = None


@dataclass(frozen=True)
class Band:
    low: int
    high: int
    label: str


@dataclass(frozen=True)
class Instrument:
    key: str
    name: str
    title: str
    items: tuple[Item, ...]
    preamble: str
    panel_loinc: str | None
    total_loinc: str | None
    total_display: str
    max_total: int
    bands: tuple[Band, ...] = ()
    #: Total at or above which the screen is positive (None: not decided by the total alone).
    positive_at: int | None = None
    #: How many scored items may be missing and still allow a (prorated) total; see scoring.py.
    max_missing: int = 0
    version: str = "1.0.0"
    #: linkId → answer scores at or above which it is a safety flag.
    safety_items: dict[str, int] = field(default_factory=dict)
    copyright: str | None = None
    #: False for a skeleton whose wording may not be distributed (EPDS): items are named by number only.
    ships_wording: bool = True

    @property
    def url(self) -> str:
        return f"{QUESTIONNAIRE_BASE}/{self.key}"

    @property
    def canonical(self) -> str:
        return f"{self.url}|{self.version}"

    @property
    def scored_items(self) -> tuple[Item, ...]:
        return tuple(item for item in self.items if item.scored)

    def item(self, link_id: str) -> Item | None:
        return next((item for item in self.items if item.link_id == link_id), None)

    def band(self, total: int | None) -> str | None:
        if total is None:
            return None
        return next((band.label for band in self.bands if band.low <= total <= band.high), None)


# --- answer lists -----------------------------------------------------------------------------------

FREQUENCY = (
    Answer("LA6568-5", "Not at all", 0),
    Answer("LA6569-3", "Several days", 1),
    Answer("LA6570-1", "More than half the days", 2),
    Answer("LA6571-9", "Nearly every day", 3),
)
DIFFICULTY = (
    Answer("not-difficult", "Not difficult at all", 0, TANDEM_ANSWERS),
    Answer("somewhat-difficult", "Somewhat difficult", 0, TANDEM_ANSWERS),
    Answer("very-difficult", "Very difficult", 0, TANDEM_ANSWERS),
    Answer("extremely-difficult", "Extremely difficult", 0, TANDEM_ANSWERS),
)
YES_NO = (Answer("LA33-6", "Yes", 1), Answer("LA32-8", "No", 0))


def _local(*pairs: tuple[str, int]) -> tuple[Answer, ...]:
    """Answers without a confirmed LOINC answer code: a local code, the published wording and score."""
    return tuple(
        Answer(f"a{index}-{score}", display, score, TANDEM_ANSWERS)
        for index, (display, score) in enumerate(pairs)
    )


DEPRESSION_BANDS = (
    Band(0, 4, "minimal"),
    Band(5, 9, "mild"),
    Band(10, 14, "moderate"),
    Band(15, 19, "moderately severe"),
    Band(20, 27, "severe"),
)
PHQ9_ITEMS = (
    ("44250-9", "Little interest or pleasure in doing things"),
    ("44255-8", "Feeling down, depressed, or hopeless"),
    ("44259-0", "Trouble falling or staying asleep, or sleeping too much"),
    ("44254-1", "Feeling tired or having little energy"),
    ("44251-7", "Poor appetite or overeating"),
    ("44258-2", "Feeling bad about yourself — or that you are a failure or have let yourself or your family down"),
    ("44252-5", "Trouble concentrating on things, such as reading the newspaper or watching television"),
    ("44253-3", "Moving or speaking so slowly that other people could have noticed? Or the opposite — being so "
                "fidgety or restless that you have been moving around a lot more than usual"),
    ("44260-8", "Thoughts that you would be better off dead, or of hurting yourself in some way"),
)  # fmt: skip
PHQ_COPYRIGHT = (
    "PHQ and GAD-7: developed by Drs. Spitzer, Williams, Kroenke and colleagues; no permission required."
)

PHQ9 = Instrument(
    key="phq9",
    name="PHQ-9",
    title="Patient Health Questionnaire (PHQ-9)",
    preamble="Over the last 2 weeks, how often have you been bothered by any of the following problems?",
    items=(
        *(Item(f"phq9-{n}", text, FREQUENCY, loinc) for n, (loinc, text) in enumerate(PHQ9_ITEMS, start=1)),
        Item(
            "phq9-difficulty",
            "If you checked off any problems, how difficult have these problems made it for "
            "you to do your work, take care of things at home, or get along with other people?",
            DIFFICULTY,
            "69722-7",
            scored=False,
        ),
    ),  # fmt: skip
    panel_loinc="44249-1",
    total_loinc="44261-6",
    total_display="PHQ-9 total score",
    max_total=27,
    bands=DEPRESSION_BANDS,
    positive_at=10,
    max_missing=2,
    safety_items={"phq9-9": 1},
    copyright=PHQ_COPYRIGHT,
)

TEEN_ITEMS = (
    "Feeling down, depressed, irritable, or hopeless",
    "Little interest or pleasure in doing things",
    "Trouble falling asleep, staying asleep, or sleeping too much",
    "Poor appetite, weight loss, or overeating",
    "Feeling tired, or having little energy",
    "Feeling bad about yourself — or feeling that you are a failure, or that you have let yourself or your "
    "family down",
    "Trouble concentrating on things like school work, reading, or watching TV",
    "Moving or speaking so slowly that other people could have noticed? Or the opposite — being so fidgety or "
    "restless that you were moving around a lot more than usual",
    "Thoughts that you would be better off dead, or of hurting yourself in some way",
)
PHQ9_TEEN = Instrument(
    key="phq9-teen",
    name="PHQ-9 (teen)",
    title="PHQ-9 modified for teens (PHQ-A)",
    preamble="How often have you been bothered by each of the following symptoms during the past two weeks?",
    # Item-level LOINC codes for the teen form are not confirmed: linkIds only.
    items=tuple(Item(f"phq9teen-{n}", text, FREQUENCY) for n, text in enumerate(TEEN_ITEMS, start=1)),
    panel_loinc=None,  # [?] in clinical.md
    total_loinc="89204-2",
    total_display="PHQ-9 modified for teens total score",
    max_total=27,
    bands=DEPRESSION_BANDS,
    positive_at=10,
    max_missing=2,
    safety_items={"phq9teen-9": 1},
    copyright=PHQ_COPYRIGHT,
)

PHQ2 = Instrument(
    key="phq2",
    name="PHQ-2",
    title="Patient Health Questionnaire (PHQ-2)",
    preamble="Over the last 2 weeks, how often have you been bothered by the following problems?",
    items=(
        Item("phq2-1", PHQ9_ITEMS[0][1], FREQUENCY, PHQ9_ITEMS[0][0]),
        Item("phq2-2", PHQ9_ITEMS[1][1], FREQUENCY, PHQ9_ITEMS[1][0]),
    ),
    panel_loinc=None,  # 55757-9 is [?] in clinical.md
    total_loinc="55758-7",
    total_display="PHQ-2 total score",
    max_total=6,
    bands=(Band(0, 2, "negative"), Band(3, 6, "positive")),
    positive_at=3,
    copyright=PHQ_COPYRIGHT,
)

GAD7 = Instrument(
    key="gad7",
    name="GAD-7",
    title="Generalized Anxiety Disorder (GAD-7)",
    preamble="Over the last 2 weeks, how often have you been bothered by the following problems?",
    items=tuple(
        Item(f"gad7-{n}", text, FREQUENCY, loinc)
        for n, (loinc, text) in enumerate(
            [
                ("69725-0", "Feeling nervous, anxious, or on edge"),
                ("68509-9", "Not being able to stop or control worrying"),
                ("69733-4", "Worrying too much about different things"),
                ("69734-2", "Trouble relaxing"),
                ("69735-9", "Being so restless that it is hard to sit still"),
                ("69689-8", "Becoming easily annoyed or irritable"),
                ("69736-7", "Feeling afraid, as if something awful might happen"),
            ],
            start=1,
        )
    ),
    panel_loinc="69737-5",
    total_loinc="70274-6",
    total_display="GAD-7 total score",
    max_total=21,
    bands=(Band(0, 4, "minimal"), Band(5, 9, "mild"), Band(10, 14, "moderate"), Band(15, 21, "severe")),
    positive_at=10,
    max_missing=2,
    copyright=PHQ_COPYRIGHT,
)

# EPDS ships as a skeleton (the CamCOPS pattern): the Royal College of Psychiatrists requires written permission to
# distribute its wording in software, so no item or answer wording is here — only the scoring rules. The clinician
# reads each question from the practice's licensed copy and picks the answer by its printed position. Items 1, 2
# and 4 score 0-3 top to bottom; items 3 and 5-10 are reverse-scored (3-0).
EPDS_REVERSED = frozenset({3, 5, 6, 7, 8, 9, 10})
_POSITIONS = ("1st printed answer", "2nd printed answer", "3rd printed answer", "4th printed answer")
EPDS_LICENCE = (
    "EPDS © Royal College of Psychiatrists (Cox, Holden and Sagovsky, 1987). Its wording is not shipped with "
    "Tandem: written permission from the RCPsych is needed to distribute it. Use the practice's licensed copy."
)
EPDS = Instrument(
    key="epds",
    name="EPDS",
    title="Edinburgh Postnatal Depression Scale (EPDS)",
    preamble="Read each question and its answers to the caregiver from the practice's licensed EPDS copy, then "
    "choose the answer by its printed position (first to fourth).",
    items=tuple(
        Item(
            f"epds-{n}",
            f"EPDS question {n} (wording from the licensed copy)",
            _local(*((d, 3 - i if n in EPDS_REVERSED else i) for i, d in enumerate(_POSITIONS))),
        )
        for n in range(1, 11)
    ),  # fmt: skip
    panel_loinc="71354-5",
    total_loinc="99046-5",
    total_display="Edinburgh Postnatal Depression Scale total score",
    max_total=30,
    bands=(
        Band(0, 9, "depression unlikely"),
        Band(10, 12, "possible depression"),
        Band(13, 30, "probable depression"),
    ),
    positive_at=10,
    safety_items={"epds-10": 1},
    copyright=EPDS_LICENCE,
    ships_wording=False,
)

AUDIT_C = Instrument(
    key="audit-c",
    name="AUDIT-C",
    title="Alcohol Use Disorders Identification Test – Consumption (AUDIT-C)",
    preamble="Please answer about your drinking in the past year.",
    items=(
        Item(
            "auditc-1",
            "How often do you have a drink containing alcohol?",
            _local(
                ("Never", 0),
                ("Monthly or less", 1),
                ("2-4 times a month", 2),
                ("2-3 times a week", 3),
                ("4 or more times a week", 4),
            ),
        ),
        Item(
            "auditc-2",
            "How many standard drinks containing alcohol do you have on a typical day?",
            _local(("1 or 2", 0), ("3 or 4", 1), ("5 or 6", 2), ("7 to 9", 3), ("10 or more", 4)),
        ),
        Item(
            "auditc-3",
            "How often do you have six or more drinks on one occasion?",
            _local(
                ("Never", 0),
                ("Less than monthly", 1),
                ("Monthly", 2),
                ("Weekly", 3),
                ("Daily or almost daily", 4),
            ),
        ),
    ),  # fmt: skip
    panel_loinc="72109-2",
    total_loinc="75626-2",
    total_display="AUDIT-C total score",
    max_total=12,
    positive_at=None,  # by sex: ≥4 men, ≥3 women (scoring.py)
)

HUNGER_VITAL_SIGN = Instrument(
    key="hunger-vital-sign",
    name="Hunger Vital Sign",
    title="Hunger Vital Sign",
    preamble="Please tell us whether each statement was often true, sometimes true, or never true for your "
    "household in the last 12 months.",
    items=(
        Item(
            "hvs-1",
            "Within the past 12 months we worried whether our food would run out before we got money to "
            "buy more.",
            _local(("Often true", 2), ("Sometimes true", 1), ("Never true", 0)),
            "88122-7",
        ),
        Item(
            "hvs-2",
            "Within the past 12 months the food we bought just didn't last and we didn't have money to "
            "get more.",
            _local(("Often true", 2), ("Sometimes true", 1), ("Never true", 0)),
            "88123-5",
        ),
    ),  # fmt: skip
    panel_loinc="88121-9",
    total_loinc="88124-3",  # the derived food insecurity risk
    total_display="Food insecurity risk [HVS]",
    max_total=4,
    positive_at=1,  # either item "often" or "sometimes" true
)

_CSSRS_Q6 = (
    Answer("yes-3-months", "Yes, in the past 3 months", 2, TANDEM_ANSWERS),
    Answer("yes-lifetime", "Yes, but more than 3 months ago", 1, TANDEM_ANSWERS),
    Answer("no", "No", 0, TANDEM_ANSWERS),
)
CSSRS = Instrument(
    key="cssrs-screener",
    name="C-SSRS screener",
    title="Columbia Suicide Severity Rating Scale – screener (recent)",
    preamble="Ask questions 1 and 2. If the answer to question 2 is yes, ask questions 3, 4 and 5. Always ask "
    "question 6. Questions 1-5 are about the past month.",
    items=(
        Item(
            "cssrs-1",
            "Have you wished you were dead or wished you could go to sleep and not wake up?",
            YES_NO,
        ),
        Item("cssrs-2", "Have you actually had any thoughts of killing yourself?", YES_NO),
        Item(
            "cssrs-3",
            "Have you been thinking about how you might do this?",
            YES_NO,
            enable_when=("cssrs-2", ("LA33-6",)),
        ),
        Item(
            "cssrs-4",
            "Have you had these thoughts and had some intention of acting on them?",
            YES_NO,
            enable_when=("cssrs-2", ("LA33-6",)),
        ),
        Item(
            "cssrs-5",
            "Have you started to work out or worked out the details of how to kill yourself? Do you "
            "intend to carry out this plan?",
            YES_NO,
            enable_when=("cssrs-2", ("LA33-6",)),
        ),
        Item(
            "cssrs-6",
            "Have you ever done anything, started to do anything, or prepared to do anything to end "
            "your life?",
            _CSSRS_Q6,
        ),
    ),  # fmt: skip
    panel_loinc="93373-9",
    total_loinc="93374-7",  # the risk level
    total_display="C-SSRS screener risk level",
    max_total=0,
    copyright="C-SSRS: The Columbia Lighthouse Project; free for clinical use.",
)

INSTRUMENTS: dict[str, Instrument] = {
    instrument.key: instrument
    for instrument in (PHQ9, PHQ9_TEEN, PHQ2, GAD7, EPDS, AUDIT_C, HUNGER_VITAL_SIGN, CSSRS)
}

#: Total-score codes read as each instrument's history (teen PHQ-9 results count as PHQ-9).
HISTORY_CODES: dict[str, tuple[str, ...]] = {
    "PHQ-9": ("44261-6", "89204-2"),
    "GAD-7": ("70274-6",),
    "EPDS": ("99046-5",),
}


def instrument_for(key: str | None) -> Instrument | None:
    return INSTRUMENTS.get(key or "")
