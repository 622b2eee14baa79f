"""How the command line shows the API's answers in a terminal: tables and short texts."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    for row in [headers, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())


def when(at: float) -> str:
    return datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M")


def show_incidents(incidents: list[dict[str, Any]]) -> None:
    if not incidents:
        print("no incidents")
        return
    rows = [[i["tracking"], i["kind"], i["root"], i["phase"], when(i["opened_at"]), str(len(i["affected"]))] for i in incidents]
    table(["TRACKING", "KIND", "ROOT", "PHASE", "OPENED", "LINES"], rows)


def show_history(incidents: list[dict[str, Any]]) -> None:
    if not incidents:
        print("no incidents")
        return
    rows = [
        [
            i["tracking"],
            i["kind"],
            i["root"],
            i["phase"],
            when(i["opened_at"]),
            when(i["resolved_at"]) if i["resolved_at"] else "-",
            took(i["duration_s"]),
            str(i["lines"]),
        ]
        for i in incidents
    ]
    table(["TRACKING", "KIND", "ROOT", "PHASE", "OPENED", "RESOLVED", "TOOK", "LINES"], rows)


def took(seconds: int) -> str:
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"


def show_windows(windows: list[dict[str, Any]]) -> None:
    if not windows:
        print("no maintenance windows")
        return
    rows = [
        [w["id"], ",".join(w["scope"]), w["start"], w["end"], w["source"], "yes" if w["active"] else "no", w["reason"]]
        for w in windows
    ]
    table(["ID", "SCOPE", "START", "END", "SOURCE", "ACTIVE", "REASON"], rows)


def show_added(w: dict[str, Any]) -> None:
    print(f"added {w['id']}: {', '.join(w['scope'])} from {w['start']} to {w['end']}")


def show_cancelled(c: dict[str, Any]) -> None:
    print(f"cancelled {c['id']}")


def show_incident(i: dict[str, Any]) -> None:
    print(f"{i['tracking']}: {i['kind']} at {i['root']}, {i['phase']}, {len(i['affected'])} lines; stage {i['stage']['id']}")
    if i["acknowledged"]:
        print(f"acknowledged by {i['acknowledged']['by']} at {i['acknowledged']['at']}")
    if i["owner"]:
        owner = i["owner"]
        where = " in the helpdesk" if owner.get("source") == "helpdesk" else ""
        print(f"owner: {owner['name']} (since {owner['at']}, set by {owner['by']}{where})")
    if i.get("ticket_ended"):
        ended = i["ticket_ended"]
        print(f"the helpdesk ended its ticket ({ended['status']}) by {ended['by']} at {ended['at']}; the incident is open")
    if i.get("closed"):
        print(f"closed by hand by {i['closed']['by']} at {i['closed']['at']}: {i['closed']['reason']}")
    for event in i["events"]:
        where = " (helpdesk)" if event.get("source") == "helpdesk" else ""
        print(f"  {event['at']}  {event['by']}{where}: {event['action']}{' ' + event['text'] if event['text'] else ''}")


def show_silences(silences: list[dict[str, Any]]) -> None:
    if not silences:
        print("no silences")
        return
    rows = [[s["id"], scope(s), s["start"], s["end"], s["state"], s["author"], s["comment"][:60]] for s in silences]
    table(["ID", "SCOPE", "START", "END", "STATE", "AUTHOR", "COMMENT"], rows)


def scope(silence: dict[str, Any]) -> str:
    return ",".join([*silence["nodes"], *(f"{k}={v}" for k, v in silence["matchers"].items())])


def show_silenced(s: dict[str, Any]) -> None:
    print(f"added {s['id']}: {scope(s)} from {s['start']} to {s['end']}")


def show_diagnosis(d: dict[str, Any]) -> None:
    tracking = f"  (incident {d['tracking']})" if d["tracking"] else ""
    print(f"{d['subscriber']}: {d['cause'].upper()}{tracking}")
    print(d["summary"])
    print("evidence:")
    for line in d["evidence"]:
        print(f"  - {line}")
    problems = d.get("problems") or []
    if problems:
        print("problems:")
        for line in problems:
            print(f"  {line}")
    print(f"looked in {d['timings_ms']['total'] / 1000:.2f} s")


def show_quality(q: dict[str, Any]) -> None:
    """One row per period, one column per metric: its average, and min..max when they differ."""
    if not q["at"]:
        print(f"no line quality kept for {q['subscriber']} in the period")
        return
    metrics = list(q["series"])
    rows = [[when(at)] + [spread(q["series"][m], i) for m in metrics] for i, at in enumerate(q["at"])]
    table(["PERIOD", *(m.upper() for m in metrics)], rows)


def spread(series: dict[str, list[float | None]], i: int) -> str:
    lo, avg, hi = series["min"][i], series["avg"][i], series["max"][i]
    if avg is None:
        return "-"
    return f"{avg:g}" if lo == hi else f"{avg:g} ({lo:g}..{hi:g})"


def show_flapping(f: dict[str, Any]) -> None:
    if not f["lines"]:
        print(f"no line went bad {f['min_changes']} times or more in the last 24 h")
        return
    table(
        ["SUBSCRIBER", "DEVICE", "TIMES", "LAST"],
        [[x["subscriber"], x["device"] or "-", str(x["changes"]), when(x["last"])] for x in f["lines"]],
    )
    if f["total"] > len(f["lines"]):
        print(f"... and {f['total'] - len(f['lines'])} more")


def show_drifting(d: dict[str, Any]) -> None:
    if not d["lines"]:
        print(f"no line within {d['margin']:g} of a threshold")
        return
    rows = [
        [x["subscriber"], x["device"], x["metric"], f"{x['average']:g}", f"{x['op']} {x['threshold']:g}", f"{x['headroom']:g}"]
        for x in d["lines"]
    ]
    table(["SUBSCRIBER", "DEVICE", "METRIC", "AVERAGE", "THRESHOLD", "HEADROOM"], rows)
    if d["total"] > len(d["lines"]):
        print(f"... and {d['total'] - len(d['lines'])} more")
