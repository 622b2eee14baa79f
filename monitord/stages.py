"""The stages a customer sees an incident in: one table, with Turkish and English names.

Today the stage follows from the incident's phase alone (the rules engine's detected,
recovering, resolved); `field_team` and `at_exchange` are the helpdesk's stages of issue 12
item 1, named here so that the tracking page, the JSON form and later the stage SMS read the
same words once the helpdesk can set them. A configurable list would replace `STAGES`, keeping
its shape: an id, the names per language, and the phases it stands for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from monitord.model import Incident, Language, Phase


@dataclass(frozen=True, slots=True)
class Stage:
    id: str
    names: Mapping[Language, str]
    phases: frozenset[Phase] = frozenset()  # the engine's phases this stage is derived from
    done: bool = False  # the last stage: nothing more for the customer to wait for

    def name(self, language: Language) -> str:
        return self.names[language]


STAGES: tuple[Stage, ...] = (
    Stage("detected", {"tr": "Arıza tespit edildi", "en": "Fault detected"}, frozenset({Phase.OPEN, Phase.UPDATED})),
    Stage("field_team", {"tr": "Saha ekibinde", "en": "With the field team"}),
    Stage("at_exchange", {"tr": "Santralde işlemde", "en": "Being worked on at the exchange"}),
    Stage("recovering", {"tr": "Onarım doğrulanıyor", "en": "Verifying the repair"}, frozenset({Phase.RECOVERING})),
    Stage("resolved", {"tr": "Çözüldü", "en": "Resolved"}, frozenset({Phase.RESOLVED}), done=True),
)
BY_PHASE: Mapping[Phase, Stage] = {phase: stage for stage in STAGES for phase in stage.phases}


def stage_of(incident: Incident) -> Stage:
    return BY_PHASE[incident.phase]
