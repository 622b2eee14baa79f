"""Samples as a poller writes them to `sample_batches` and the correlator reads them back: one
compact JSON array per batch, each sample an array `[level, id, probe, at, outcome, values,
detail]` (values `{}` and detail `""` when it has none). About 60 bytes a sample; the correlator
rebuilds the very `Sample` the poller's probe made."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from monitord.model import NO_VALUES, NodeRef, Outcome, Sample

_OUTCOMES = {outcome.value: outcome for outcome in Outcome}
_LEVELS = frozenset(("region", "exchange", "cabinet", "device", "line"))


def dump(samples: Iterable[Sample]) -> str:
    rows = [
        [s.target.level, s.target.id, s.probe, s.at, s.outcome.value, dict(s.values) if s.values else {}, s.detail]
        for s in samples
    ]
    return json.dumps(rows, separators=(",", ":"), ensure_ascii=False)


def load(text: str) -> list[Sample]:
    """ValueError for anything but what `dump` wrote."""
    rows: Any = json.loads(text)
    if not isinstance(rows, list):
        raise ValueError("a batch is a JSON array")
    try:
        return [_sample(*row) for row in rows]
    except (TypeError, AttributeError) as error:  # a row of another shape, values not a mapping, ...
        raise ValueError(f"not a sample: {error}") from None


def _sample(level: Any, node: Any, probe: Any, at: Any, outcome: Any, values: Any, detail: Any) -> Sample:
    if level not in _LEVELS or outcome not in _OUTCOMES:
        raise ValueError(f"not a sample: {level!r} {outcome!r}")
    readings = {str(k): float(v) for k, v in values.items()} if values else NO_VALUES
    return Sample(NodeRef(level, str(node)), str(probe), float(at), _OUTCOMES[outcome], readings, str(detail))
