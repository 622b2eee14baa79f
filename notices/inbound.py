"""What a customer's SMS to us says, and what we answer (pure; monitord/sms_inbound.py does the I/O).

A text is read by its first word, folded so that case, Turkish letters and diacritics do not
matter ("durum", "Durum", "DURUM", "İptal", "iptal", "ıptal", "IPTAL" all read alike: Python's
own upper() turns "i" into "I", not "İ", and "İ".lower() into "i" plus a combining dot). The
keywords, Turkish and English:

- `DURUM <number>` / `STATUS <number>`: the public stage of that incident, whoever asks (the
  tracking page shows the same to anyone who types the number); `DURUM` alone, from a phone of
  the inventory: each open incident of that phone's lines, and each repaired one whose follow-up
  still says the line is not right, in that subscriber's own stage (monitord/stages.py
  `of_subscriber`); from any other phone, the help text.
- `IPTAL`, `STOP` (and Twilio's other opt-out words): no more SMS from monitord to this phone;
  `BASLAT`, `START`, `UNSTOP`: SMS again. One confirmation each.
- `1`/`EVET`/`YES`, `2`/`HAYIR`/`NO`: the answer to the last "does it work?" sent to this phone
  (notices/confirm.py); with no such question unanswered they are text like any other.
- `1` to `5`: the score of the repair, when the last question sent to this phone and not
  answered is the survey that follows a "yes" (notices/confirm.py). A number is read by that
  question alone: `1` is "yes" to a "does it work?" and a score of 1 to a survey; any other
  number, or a number with neither question open, is text like any other.
- Anything else gets the help text, at most once per phone per local day (its outbox key
  carries the date), so that two auto-responders cannot keep each other busy.

Nothing in a reply names a subscriber, a line or an address: a stage name and a tracking number
the sender gave or owns. Replies are outbox items (action "reply") keyed by the message's
MessageSid, so a replayed webhook queues nothing twice.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from monitord.model import Language, Line
from notices.confirm import sms_text, survey_question
from notices.plan import Planned, PlanSettings, notification

MAX_TEXT = 1600  # characters of an inbound SMS read at all (Twilio's own limit for a message)
MAX_REPLIES = 3  # open incidents told in answer to one DURUM

_TURKISH = str.maketrans({"ı": "I", "i": "I", "İ": "I", "ş": "S", "Ş": "S", "ğ": "G", "Ğ": "G", "ç": "C", "Ç": "C"})
_KEYWORDS: dict[str, tuple[str, Language | None]] = {
    "DURUM": ("status", "tr"),
    "STATUS": ("status", "en"),
    "IPTAL": ("opt_out", "tr"),
    "STOP": ("opt_out", "en"),
    "STOPALL": ("opt_out", "en"),
    "UNSUBSCRIBE": ("opt_out", "en"),
    "CANCEL": ("opt_out", "en"),
    "END": ("opt_out", "en"),
    "QUIT": ("opt_out", "en"),
    "BASLAT": ("opt_in", "tr"),
    "START": ("opt_in", "en"),
    "UNSTOP": ("opt_in", "en"),
    "EVET": ("yes", "tr"),
    "YES": ("yes", "en"),
    "HAYIR": ("no", "tr"),
    "NO": ("no", "en"),
}
_BETWEEN = re.compile(r"[\s:,;]+")  # what separates the words of a command ("DURUM: ARZ-...", "durum,arz-...")
_NUMBER = re.compile(r"[0-9]+")  # ASCII digits only: int() would also take other scripts' digits

Kind = Literal["status", "opt_out", "opt_in", "yes", "no", "number", "unknown"]
QuestionKind = Literal["confirm", "survey"]
SCORES = ("1", "2", "3", "4", "5")  # a survey's answers, as typed


def fold(text: str) -> str:
    """Upper-case plain Latin: Turkish letters by the Turkish rules, other accents dropped."""
    decomposed = unicodedata.normalize("NFKD", text[:MAX_TEXT].translate(_TURKISH))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return plain.upper().translate(_TURKISH)


@dataclass(frozen=True, slots=True)
class Command:
    kind: Kind
    language: Language | None = None  # the keyword's language; None: no keyword
    argument: str | None = None  # DURUM's word, folded, as typed (odd characters and all: not yet checked); a number's digits

    @property
    def name(self) -> str:
        """What is stored of the message (its text is not)."""
        return self.kind if self.argument is None else f"{self.kind} {self.argument[:40]}"


def read(text: str) -> Command:
    words = [w.strip(".!?") for w in _BETWEEN.split(fold(text)) if w.strip(".!?")]
    if words and _NUMBER.fullmatch(words[0]):
        return Command("number", None, words[0])
    if not words or words[0] not in _KEYWORDS:
        return Command("unknown")
    kind, language = _KEYWORDS[words[0]]
    if kind == "status":
        return Command("status", language, words[1] if len(words) > 1 else None)
    return Command(kind, language)  # type: ignore[arg-type]


def confirms(command: Command) -> bool | None:
    """Whether `command` says service works (`1`, EVET, YES) or not (`2`, HAYIR, NO); None: neither."""
    if command.kind in ("yes", "no"):
        return command.kind == "yes"
    return {"1": True, "2": False}.get(command.argument or "") if command.kind == "number" else None


def score_of(command: Command) -> int | None:
    """The score `command` gives, 1 to 5, or None (another number, or no number)."""
    return int(command.argument) if command.kind == "number" and command.argument in SCORES else None


@dataclass(frozen=True, slots=True)
class Question:
    """The last question sent to a phone and not answered: whose incident, and which."""

    tracking: str
    kind: QuestionKind


@dataclass(frozen=True, slots=True)
class Told:
    """An incident as a reply may name it: its number and its public stage's name in each language."""

    tracking: str
    stage: dict[Language, str]


@dataclass(frozen=True, slots=True)
class Facts:
    """What monitord knows that the answer depends on, gathered by the caller."""

    sid: str
    phone: str
    at: float
    lines: Sequence[Line] = ()  # the inventory's lines with this phone; empty: an unknown number
    asked: Told | None = None  # the incident the number after DURUM names, if it is one
    well_formed: bool = False  # the number after DURUM looks like a tracking number
    open: Sequence[Told] = ()  # the open incidents of `lines`, newest first
    question: Question | None = None  # the last question sent to this phone, unanswered


@dataclass(frozen=True, slots=True)
class Answer:
    opted_out: bool | None  # the sender's new choice, or None: unchanged
    replies: list[Planned]
    works: tuple[str, bool] | None = None  # an answer to the incident's question (notices/confirm.py)
    score: tuple[str, int] | None = None  # a score of the incident's repair, 1 to 5


def answer(command: Command, facts: Facts, settings: PlanSettings) -> Answer:
    language: Language = facts.lines[0].language if facts.lines else (command.language or "tr")

    def reply(template: str, suffix: str, values: dict[str, str] | None = None, key: str | None = None) -> Planned:
        text = lambda: sms_text(f"sms.{template}", language, values or {}, settings)  # noqa: E731
        return notification(key or f"sms-in/{facts.sid}/{suffix}", "sms", facts.phone, "reply", None, text), None

    def status(told: Told) -> Planned:
        return reply("reply_status", told.tracking, {"tracking": told.tracking, "stage": told.stage[language]})

    if command.kind == "opt_out":
        return Answer(True, [reply("opted_out", "opt_out")])
    if command.kind == "opt_in":
        return Answer(False, [reply("opted_in", "opt_in")])
    question = facts.question
    works = confirms(command) if question is not None and question.kind == "confirm" else None
    if question is not None and works is not None:
        if works and settings.survey:  # the survey question, which thanks them first, rather than the thanks
            return Answer(
                None, [(survey_question(question.tracking, facts.phone, language, settings), None)], (question.tracking, True)
            )
        template = "confirm_yes" if works else "confirm_no"
        return Answer(None, [reply(template, "answer", {"tracking": question.tracking})], (question.tracking, works))
    score = score_of(command) if question is not None and question.kind == "survey" else None
    if question is not None and score is not None:
        return Answer(None, [reply("survey_thanks", "answer", {"tracking": question.tracking})], score=(question.tracking, score))
    if command.kind == "status" and command.argument is not None:
        if facts.asked is not None:
            return Answer(None, [status(facts.asked)])
        return Answer(None, [reply("reply_not_found" if facts.well_formed else "reply_malformed", "status")])
    if command.kind == "status" and facts.lines:
        if not facts.open:
            return Answer(None, [reply("reply_none", "status")])
        return Answer(None, [status(t) for t in facts.open[:MAX_REPLIES]])
    day = datetime.fromtimestamp(facts.at, settings.tz).date().isoformat()
    return Answer(None, [reply("help", "help", key=f"sms-help/{facts.phone}/{day}")])
