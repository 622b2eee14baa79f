"""Silences in the API's words (docs/openapi.yaml): a POSTed body checked into a `Silence`, and
a silence shown as JSON. Pure; the handlers are monitord/http.py's, beside the other routes.

Every problem is refused with the field at fault and nothing is stored: an empty silence (no node
and no matcher would mute every incident: say so with a matcher per region instead), a matcher on
an unknown label or value, a node not in the inventory, an end before the start or already past,
a silence longer than MAX_SILENCE, an author or a comment that is empty or too long.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from monitord.config import Invalid, identifier, node_ref, parse_duration, text, timestamp
from monitord.model import IncidentKind, NodeRef, Silence, Topology
from notices.silences import MATCHER_LABELS

SILENCE_FIELDS = ("id", "nodes", "matchers", "start", "end", "duration", "author", "comment")
MAX_NODES = 200
MAX_SILENCE = 31 * 86400.0  # a longer mute is a maintenance question, or a change to the inventory
MAX_AHEAD = 366 * 86400.0
MAX_AUTHOR = 64  # characters
MAX_COMMENT = 2000


class BadSilence(ValueError):
    """The field at fault and why: a 400 in the API."""


def parse_silence(body: Any, topology: Topology, zone: str, known: Callable[[NodeRef, Topology], NodeRef], now: float) -> Silence:
    """A silence from a POSTed JSON object. `known(node)` checks a node against the inventory
    (raising Invalid). BadSilence names the first bad field."""
    if not isinstance(body, dict):
        raise BadSilence("body: expected a JSON object with nodes or matchers, end or duration, author and comment")
    unknown = sorted(set(body) - set(SILENCE_FIELDS))
    if unknown:
        raise BadSilence(f"{unknown[0]}: unknown field; known: {', '.join(SILENCE_FIELDS)}")
    nodes = _nodes(body.get("nodes"), topology, known)
    matchers = _matchers(body.get("matchers"), topology)
    if not nodes and not matchers:
        raise BadSilence("matchers: a silence needs nodes or matchers (an empty one would mute every incident)")
    tz = ZoneInfo(zone)
    start = _check("start", timestamp(tz), body["start"]) if body.get("start") not in (None, "") else now
    if body.get("end") not in (None, "") and body.get("duration") not in (None, ""):
        raise BadSilence("duration: give end or duration, not both")
    if body.get("end") not in (None, ""):
        end = _check("end", timestamp(tz), body["end"])
    elif body.get("duration") not in (None, ""):
        end = start + _check("duration", parse_duration, body["duration"])
    else:
        raise BadSilence("end: required (or duration, e.g. 2h)")
    if end <= start:
        raise BadSilence("end: the silence ends before it starts")
    if end <= now:
        raise BadSilence("end: already past")
    if end - start > MAX_SILENCE:
        raise BadSilence(f"end: a silence lasts at most {MAX_SILENCE / 86400:g} days")
    if start - now > MAX_AHEAD:
        raise BadSilence(f"start: at most {MAX_AHEAD / 86400:g} days ahead")
    author = _bounded("author", body.get("author"), MAX_AUTHOR)
    comment = _bounded("comment", body.get("comment"), MAX_COMMENT)
    if body.get("id") is not None:
        silence_id = _check("id", identifier, body["id"])
    else:
        silence_id = f"silence-{datetime.fromtimestamp(start, tz):%Y%m%d-%H%M}-{secrets.token_hex(2)}"
    return Silence(silence_id, nodes, matchers, start, end, author, comment, now)


def _check(name: str, check: Any, value: Any) -> Any:
    try:
        return check(value)
    except Invalid as problem:
        raise BadSilence(f"{name}: {problem.message}" + (f" ({problem.hint})" if problem.hint else "")) from None


def _bounded(name: str, value: Any, limit: int) -> str:
    if value in (None, ""):
        raise BadSilence(f"{name}: required")
    if isinstance(value, str) and len(value) > limit:
        raise BadSilence(f"{name}: at most {limit} characters, not {len(value)}")
    return str(_check(name, text, value))


def _nodes(value: Any, topology: Topology, known: Callable[[NodeRef, Topology], NodeRef]) -> tuple[NodeRef, ...]:
    if value in (None, []):
        return ()
    if not isinstance(value, list):
        raise BadSilence('nodes: expected a list like ["device:sisli-dslam-01", "line:s1"]')
    if len(value) > MAX_NODES:
        raise BadSilence(f"nodes: at most {MAX_NODES}; silence a wider node (exchange, region) instead")
    return tuple(dict.fromkeys(_check(f"nodes[{n}]", lambda v: known(node_ref(v), topology), v) for n, v in enumerate(value)))


def _matchers(value: Any, topology: Topology) -> tuple[tuple[str, str], ...]:
    """`{"region": "marmara", "kind": "outage"}`: every one must hold."""
    if value in (None, {}):
        return ()
    if not isinstance(value, dict):
        raise BadSilence('matchers: expected an object like {"region": "marmara", "kind": "outage"}')
    known: dict[str, Any] = {
        "region": topology.regions,
        "exchange": topology.exchanges,
        "device": topology.devices,
        "kind": {k.value for k in IncidentKind},
    }
    out = []
    for label, wanted in sorted(value.items()):
        if label not in MATCHER_LABELS:
            raise BadSilence(f"matchers.{label}: unknown label; known: {', '.join(MATCHER_LABELS)}")
        if not isinstance(wanted, str) or not wanted.strip():
            raise BadSilence(f"matchers.{label}: expected a non-empty string")
        if wanted not in known[label]:
            hint = f" (one of {', '.join(sorted(known[label]))})" if label == "kind" else ""
            raise BadSilence(f"matchers.{label}: no {label} {wanted!r}{hint}")
        out.append((label, wanted))
    return tuple(out)


def silence_json(silence: Silence, zone: str, now: float) -> dict[str, Any]:
    state = "planned" if now < silence.start else "active" if now < silence.end else "expired"
    return {
        "id": silence.id,
        "nodes": [str(n) for n in silence.nodes],
        "matchers": dict(silence.matchers),
        "start": _iso(silence.start, zone),
        "end": _iso(silence.end, zone),
        "author": silence.author,
        "comment": silence.comment,
        "created_at": _iso(silence.created_at, zone),
        "state": state,
        "expired_by": silence.expired_by,
    }


def _iso(at: float, zone: str) -> str:
    return datetime.fromtimestamp(at, ZoneInfo(zone)).isoformat(timespec="seconds")
