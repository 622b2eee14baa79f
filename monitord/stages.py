"""The stages a customer sees an incident in: one configurable table, with Turkish and English names.

The rules engine sets three stages by itself, from an incident's phase (`ENGINE_STAGES`:
detected, recovering, resolved); the others (by default `field_team` and `at_exchange`) are set
from the helpdesk (monitord/rtsync.py). A helpdesk stage stands until the engine resolves the
incident (`current`). The table is the config's `stages:` list (monitord/config/stages.py), in
the order the tracking page shows them; `DEFAULT_STAGES` when the list is not given.

A subscriber's part in an incident has a stage of its own (`of_subscriber`), which differs from
the incident's in two cases. A line that came back while the incident goes on (a regional fault
shrinks) is "recovering" while the engine still holds it and "resolved" once it left the
incident. A line whose subscriber said the repair did not help, or that the probes saw not
recovered, has a follow-up ticket (notices/confirm.py): the stage the helpdesk gives that ticket
is theirs, even though their incident is resolved. A follow-up the helpdesk ends brings the
subscriber back to "resolved" only when the engine sees their line up (docs/decisions.md,
"A subscriber's stage"): a click in the helpdesk never tells a customer their service is back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from monitord.model import Incident, IncidentKind, Language, Phase, Status

ENGINE_STAGES: Mapping[Phase, str] = {
    Phase.OPEN: "detected",
    Phase.UPDATED: "detected",
    Phase.RECOVERING: "recovering",
    Phase.RESOLVED: "resolved",
}
"""The stage each phase of the engine stands for: these ids must be in every stage table."""

ENGINE_STAGE_IDS: tuple[str, ...] = ("detected", "recovering", "resolved")


@dataclass(frozen=True, slots=True)
class StageChange:
    """One row of an incident's stage history: who set which stage when."""

    tracking: str
    stage: str  # a stage id
    source: str  # "engine" or "helpdesk"
    actor: str  # "monitord", or the helpdesk's user (RT: the ticket's owner or the last updater)
    at: float


@dataclass(frozen=True, slots=True)
class PartChange:
    """One row of a subscriber's stage history within an incident: their follow-up ticket's stage."""

    tracking: str
    line: str
    stage: str  # a stage id; "resolved": the helpdesk ended the follow-up ticket
    source: str  # "helpdesk"
    actor: str
    at: float


@dataclass(frozen=True, slots=True)
class Part:
    """What sets one subscriber's stage in an incident besides the incident's own stage."""

    affected: bool  # still one of the incident's lines (`Incident.affected`)
    back: bool  # the engine sees the line without the incident's fault (`line_back`)
    followup: str | None = None  # the last stage the helpdesk gave their follow-up ticket, if any


def line_back(kind: IncidentKind, status: Status) -> bool:
    """The line no longer has the incident's fault: up for an outage (even if degraded), good for a degradation."""
    return status is Status.OK or (status is Status.DEGRADED and kind is not IncidentKind.DEGRADATION)


@dataclass(frozen=True, slots=True)
class Stage:
    id: str
    names: Mapping[Language, str]
    sms: bool = False  # a change to this stage sends the affected customers the `sms.stage` text
    helpdesk: frozenset[str] = frozenset()  # the helpdesk's words for it (lower case): a Stage field's value or a status

    @property
    def phases(self) -> frozenset[Phase]:
        return frozenset(p for p, s in ENGINE_STAGES.items() if s == self.id)

    @property
    def done(self) -> bool:
        """The last stage: nothing more for the customer to wait for."""
        return self.id == "resolved"

    def name(self, language: Language) -> str:
        return self.names[language]


DEFAULT_STAGES: tuple[Stage, ...] = (
    Stage("detected", {"tr": "Arıza tespit edildi", "en": "Fault detected"}),
    Stage("field_team", {"tr": "Saha ekibinde", "en": "With the field team"}, helpdesk=frozenset({"saha", "field"})),
    Stage(
        "at_exchange",
        {"tr": "Santralde işlemde", "en": "Being worked on at the exchange"},
        helpdesk=frozenset({"santral", "exchange"}),
    ),
    Stage("recovering", {"tr": "Onarım doğrulanıyor", "en": "Verifying the repair"}),
    Stage("resolved", {"tr": "Çözüldü", "en": "Resolved"}),
)


@dataclass(frozen=True, slots=True)
class StageTable:
    stages: tuple[Stage, ...] = DEFAULT_STAGES
    by_id: Mapping[str, Stage] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", {s.id: s for s in self.stages})

    def of_phase(self, phase: Phase) -> Stage:
        return self.by_id[ENGINE_STAGES[phase]]

    def current(self, incident: Incident, helpdesk: str | None = None) -> Stage:
        """The stage shown: the engine's, but a stage the helpdesk set (`helpdesk`, its id)
        stands until the engine resolves the incident."""
        if incident.phase is Phase.RESOLVED or helpdesk is None or helpdesk not in self.by_id:
            return self.of_phase(incident.phase)
        return self.by_id[helpdesk]

    def of_subscriber(self, incident: Stage, part: Part) -> Stage:
        """A subscriber's stage in an incident whose stage is `incident` (module docstring)."""
        if part.followup == "resolved":
            return self.by_id["resolved" if part.back else "detected"]
        if part.followup is not None:
            return self.by_id.get(part.followup, self.by_id["detected"])  # a stage since taken out of the table
        if incident.done or not part.affected:
            return self.by_id["resolved"]
        return self.by_id["recovering"] if part.back else incident

    def of_number(self, asked: Incident, shown: Incident, helpdesk: str | None = None) -> Stage:
        """The stage tracking number `asked` stands at, when `shown` is the incident it leads to: its
        own, or the wider incident it was merged into. There its lines are a part like a subscriber's:
        once none of them is in `shown` any more (they came back while the wider fault goes on, and
        were told so), the number is resolved, not the stage of other people's fault."""
        stage = self.current(shown, helpdesk)
        if asked.tracking == shown.tracking:
            return stage
        return self.of_subscriber(stage, Part(affected=not asked.affected.isdisjoint(shown.affected), back=False))

    def from_helpdesk(self, word: str) -> Stage | None:
        """The stage a helpdesk value names: a stage's id, one of its names or one of its `helpdesk` words."""
        said = word.strip().casefold()
        for stage in self.stages:
            if said == stage.id.casefold() or said in stage.helpdesk or said in (n.casefold() for n in stage.names.values()):
                return stage
        return None


DEFAULT_TABLE = StageTable()
STAGES = DEFAULT_STAGES


def stage_of(incident: Incident, table: StageTable = DEFAULT_TABLE, helpdesk: str | None = None) -> Stage:
    return table.current(incident, helpdesk)
