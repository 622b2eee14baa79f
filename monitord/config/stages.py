"""The `stages:` list: the stages customers see an incident in, in order (monitord/stages.py).

Absent: the defaults (`DEFAULT_STAGES`). Given: the whole list, which must keep the stages the
rules engine sets (detected, recovering, resolved); ids are unique, and a helpdesk word names
one stage only.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from monitord.config import values
from monitord.config.decoder import Decoder
from monitord.config.fields import STRING, Flag, Id, Interval, MaybeId, Parsed, Positive, Section, Text
from monitord.config.model import StageSyncConfig
from monitord.stages import DEFAULT_STAGES, ENGINE_STAGE_IDS, Stage, StageTable


class StageItem(Section):
    """One stage: its id, its names in Turkish and English, whether reaching it texts the customers"""

    id: Id = Field(description="e.g. field_team; detected, recovering and resolved are set by the rules engine")
    tr: Text = Field(description="Its name in Turkish, as customers read it (tracking page, SMS)")
    en: Text = Field(description="Its name in English")
    sms: Flag = Field(default=False, description="Send the affected customers the sms.stage text when an incident reaches it")
    helpdesk: list[Text] = Field(
        default=[],
        description="The helpdesk's words for it (a ticket's Stage field or status, any case), "
        "beside its id and names, e.g. [saha, 'ekip yolda']",
    )


class StageSync(Section):
    """Read the stages the helpdesk sets back from RT, by polling its REST 2.0 API (docs/decisions.md)"""

    every: Interval = Field(default=values.default_of(StageSyncConfig, "every"), description="Poll RT this often (default 30s)")
    custom_field: Text = Field(
        default=values.default_of(StageSyncConfig, "custom_field"),
        description="The ticket custom field holding a stage: its id, a name or one of its helpdesk words (default Stage)",
    )
    status: dict[Annotated[str, Parsed(STRING, values.text)], Id] = Field(
        default={}, description="A ticket status -> the stage it means, e.g. {stalled: at_exchange}"
    )
    owner: MaybeId = Field(default=None, description="The stage of a ticket someone took (owner other than Nobody)")
    max_backoff: Positive = Field(
        default=values.default_of(StageSyncConfig, "max_backoff"), description="A failing RT is asked again after at most this"
    )


def read_stages(d: Decoder, root: dict[Any, Any]) -> StageTable | None:
    """The stage table; None when the list is at fault."""
    if root.get("stages") is None:
        return StageTable(DEFAULT_STAGES)
    before = len(d.problems)
    stages: list[Stage] = []
    lines: dict[str, int | None] = {}
    words: dict[str, str] = {}
    for path, raw in d.items(root, (), "stages"):
        item = d.validated(StageItem, raw, path)
        if item is None:
            continue
        if item.id in lines:
            d.report(path + ("id",), f"duplicate stage id {item.id!r}", f"first defined on line {lines[item.id]}")
            continue
        lines[item.id] = d.doc.line(path + ("id",))
        said = {item.id, item.tr, item.en, *item.helpdesk}
        for word in (w.casefold() for w in said):
            if word in words and words[word] != item.id:
                d.report(path + ("helpdesk",), f"{word!r} already names stage {words[word]!r}", "a helpdesk word names one stage")
            words.setdefault(word, item.id)
        stages.append(Stage(item.id, {"tr": item.tr, "en": item.en}, item.sms, frozenset(w.casefold() for w in item.helpdesk)))
    for engine_id in ENGINE_STAGE_IDS:
        if engine_id not in lines and len(d.problems) == before:
            d.report(
                ("stages",),
                f"stage {engine_id!r} is missing",
                "the rules engine sets detected, recovering and resolved: keep them",
            )
    return None if len(d.problems) > before else StageTable(tuple(stages))
