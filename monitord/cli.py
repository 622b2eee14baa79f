"""`monitord check|run|demo|diagnose|discover|export|history|incident|incidents|inventory|lines|maintenance|passwd|quality|silences|reserve-tracking`:
the command line.

diagnose, export, history, incident, incidents, lines, maintenance, quality and silences talk to the running daemon's HTTP API (docs/openapi.yaml):
readable tables in a terminal, `--json` for scripts. Exit codes: 0 done, 1 error (the daemon
unreachable or refusing), 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from monitord import cli_tables as tables
from monitord import console_cli, discover, netbox_import
from monitord.config import ConfigError, Invalid, Problem, listen, load_config, load_or_report
from monitord.files import CONFIG_LIMIT, SECRET_LIMIT, read_regular_text
from monitord.yamlload import YamlSyntaxError, load_yaml

DEFAULT_URL = "http://127.0.0.1:9177"
ROLES = ("all", "poller", "correlator", "notifier")  # `run --role`
TIMEOUT = 15.0  # a diagnosis takes up to 5 s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="monitord", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser("check", help="validate a config and its inventory; print every problem")
    check.add_argument("config")
    check.add_argument("--json", action="store_true", help="print the problems and warnings as JSON")
    check.add_argument("--probe", action="store_true", help="also ask every SNMP device which profiles find tables")

    run = commands.add_parser("run", help="run the daemon")
    run.add_argument("config")
    run.add_argument("--log-json", action="store_true", help="one JSON object per log line")
    run.add_argument("--log-level", default="INFO", type=str.upper, choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    run.add_argument(
        "--role",
        default="all",
        choices=ROLES,
        help="all: poll, judge and deliver (the default; on a PostgreSQL state one such process leads and the "
        "others stand by); poller: poll the shards it holds by lease and write their samples for the correlator; "
        "correlator: judge the pollers' samples and deliver (one leads, the others stand by); notifier: deliver "
        "the outbox only. All but `all` need the state in PostgreSQL (state: postgresql://...)",
    )

    reserve = commands.add_parser(
        "reserve-tracking", help="after the state file was lost: never issue numbers up to one the helpdesk has seen"
    )
    reserve.add_argument("config")
    reserve.add_argument("tracking", help="the highest number the helpdesk knows, e.g. ARZ-2026-000417")

    demo = commands.add_parser("demo", help="run the daemon against a simulated ISP on loopback, with a fault")
    demo.add_argument("--keep-running", action="store_true", help="keep the lab and the daemon running afterwards")
    demo.add_argument("--cluster", action="store_true", help="a small cluster on PostgreSQL instead of one process")
    demo.add_argument("--dir", help="where to put the lab's files (default: a temporary directory)")

    discover.add_parser(commands)
    netbox_import.add_parser(commands)
    console_cli.add_parser(commands)
    diagnose = commands.add_parser("diagnose", help="diagnose one subscriber's line now (modem, line, head-end, outages)")
    diagnose.add_argument("subscriber")
    incidents = commands.add_parser("incidents", help="list the open incidents")
    incidents.add_argument("--all", action="store_true", help="include resolved incidents")
    history = commands.add_parser("history", help="a subscriber's incidents, past and open, latest first")
    history.add_argument("subscriber")
    quality = commands.add_parser("quality", help="a subscriber's line quality over time: min, avg and max per period")
    quality.add_argument("subscriber")
    quality.add_argument("--step", choices=("5m", "1h"), default="5m", help="5-minute or hourly periods (default 5m)")
    quality.add_argument("--since", help="ISO date and time (default: a day back for 5m, a week for 1h)")
    quality.add_argument("--until", help="ISO date and time (default: now)")
    lines = commands.add_parser("lines", help="lines that flap, or drift toward their thresholds")
    listing = lines.add_subparsers(dest="which", required=True)
    flapping = listing.add_parser("flapping", help="lines that went bad again and again in the last 24 h")
    flapping.add_argument("--min", type=int, help="times gone bad (default: history.flap_changes)")
    drifting = listing.add_parser("drifting", help="lines still OK whose last hour's average is near a threshold")
    drifting.add_argument("--margin", type=float, help="in the level's unit, dB (default: history.drift_margin)")
    export = commands.add_parser("export", help="CSV on standard output")
    exports = export.add_subparsers(dest="what", required=True)
    touched = exports.add_parser("subscribers", help="the subscribers an incident touched (needs the token)")
    touched.add_argument("tracking")
    report = exports.add_parser("incidents", help="the incidents opened in a period")
    report.add_argument("--since", required=True, help="ISO 8601, e.g. 2026-11-01T00:00 (the daemon's time zone)")
    report.add_argument("--until", required=True, help="ISO 8601, at most 366 days after --since")
    maintenance = commands.add_parser("maintenance", help="list, add or cancel maintenance windows")
    actions = maintenance.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="plan a window: alerts inside its scope are held back")
    add.add_argument(
        "--scope",
        action="append",
        required=True,
        metavar="LEVEL:ID",
        help="a node (region, exchange, cabinet, device) or line:<subscriber>; repeatable",
    )
    add.add_argument("--start", required=True, help="ISO 8601, e.g. 2026-12-01T01:00:00+03:00")
    add.add_argument("--end", required=True, help="ISO 8601")
    add.add_argument("--reason", default="")
    add.add_argument("--grace", help="after the end, e.g. 15m (default: rules.maintenance_grace)")
    add.add_argument("--id", help="window id (default: generated)")
    actions.add_parser("list", help="the windows, planned and in force")
    cancel = actions.add_parser("cancel", help="cancel a window added through the API")
    cancel.add_argument("id")
    silences = _silences_parser(commands)
    work = _incident_parser(commands)
    for sub in (
        diagnose,
        incidents,
        history,
        quality,
        flapping,
        drifting,
        touched,
        report,
        *actions.choices.values(),
        *silences.choices.values(),
        *work.choices.values(),
    ):
        sub.add_argument("--url", help=f"the daemon's API (default: from --config, else {DEFAULT_URL})")
        sub.add_argument("--config", help="the daemon's config file, for its listen address and API token")
        sub.add_argument("--token-file", help="a file holding the API token (needed for changes and diagnose)")
        sub.add_argument("--json", action="store_true", help="print the API's JSON")

    args = parser.parse_args(argv)
    if args.command == "check" and args.probe:
        return discover.run_probe(args.config, as_json=args.json)
    if args.command == "discover":
        return discover.run_discover(args)
    if args.command == "inventory":
        return netbox_import.run_import(args)
    if args.command == "passwd":
        return console_cli.run_passwd(args)
    if args.command == "check":
        return _check_json(args.config) if args.json else _check(args.config)
    if args.command == "run":
        return _run(args.config, json_logs=args.log_json, level=args.log_level, role=args.role)
    if args.command == "reserve-tracking":
        return _reserve_tracking(args.config, args.tracking)
    if args.command in ("diagnose", "incident", "incidents", "history", "quality", "lines", "export", "maintenance", "silences"):
        try:
            return _client(args)
        except CliError as error:
            print(f"monitord: {error}", file=sys.stderr)
            return 1
    from monitord.demo import run_demo

    if args.cluster:
        from monitord.demo_cluster import run_cluster_demo

        return asyncio.run(run_cluster_demo(keep_running=args.keep_running, directory=args.dir))
    return asyncio.run(run_demo(keep_running=args.keep_running, directory=args.dir))


def _silences_parser(commands: Any) -> Any:
    silences = commands.add_parser("silences", help="list, add or expire silences (the NOC's mutes; customers are still told)")
    actions = silences.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="hold tickets, NOC e-mail and Alertmanager pushes of matching incidents")
    add.add_argument(
        "--node",
        action="append",
        default=[],
        metavar="LEVEL:ID",
        help="region, exchange, cabinet, device or line:<id>; repeatable",
    )
    add.add_argument(
        "--match",
        action="append",
        default=[],
        metavar="LABEL=VALUE",
        help="region, exchange, device or kind; repeatable, all must hold",
    )
    add.add_argument("--start", help="ISO 8601 (default: now)")
    add.add_argument("--end", help="ISO 8601")
    add.add_argument("--for", dest="duration", help="how long instead of --end, e.g. 2h")
    add.add_argument("--author", default=os.environ.get("USER", ""), help="who silences (default: $USER)")
    add.add_argument("--comment", required=True, help="why")
    add.add_argument("--id", help="silence id (default: generated)")
    listing = actions.add_parser("list", help="planned and active silences")
    listing.add_argument("--all", action="store_true", help="include expired silences")
    expire = actions.add_parser("expire", help="end a silence now: what it held goes out at once")
    expire.add_argument("id")
    expire.add_argument("--by", default=os.environ.get("USER", "cli"), help="who ends it (default: $USER)")
    return actions


def _incident_parser(commands: Any) -> Any:
    incident = commands.add_parser("incident", help="show an incident, acknowledge it, take it, write a note or close it")
    actions = incident.add_subparsers(dest="action", required=True)
    actions.add_parser("show", help="the incident with its stage, acknowledgement, owner and notes").add_argument("tracking")
    for name, what in (
        ("ack", "acknowledge it"),
        ("own", "give it an owner"),
        ("note", "write a note on it"),
        ("close", "close it by hand: no 'restored' to customers whose line still fails (docs/operations.md)"),
    ):
        sub = actions.add_parser(name, help=what)
        sub.add_argument("tracking")
        if name == "own":
            sub.add_argument("owner", help="who takes it")
        if name == "note":
            sub.add_argument("note")
        if name == "close":
            sub.add_argument("--reason", required=True, help="why, for the record and the helpdesk ticket")
        sub.add_argument("--by", default=os.environ.get("USER", ""), help="who does it (default: $USER)")
    return actions


def _incident_call(args: argparse.Namespace, url: str, token: str | None) -> tuple[Any, Callable[[Any], None]]:
    path = f"/api/incidents/{_quote(args.tracking)}"
    if args.action == "show":
        return _call(url, "GET", path, token), tables.show_incident
    if args.action == "ack":
        body, path = {"by": args.by}, path + "/ack"
    elif args.action == "own":
        body, path = {"owner": args.owner, "by": args.by}, path + "/owner"
    elif args.action == "close":
        body, path = {"reason": args.reason, "by": args.by}, path + "/close"
    else:
        body, path = {"note": args.note, "by": args.by}, path + "/notes"
    return _call(url, "POST", path, token, body), lambda e: print(f"{args.tracking}: {e['action']} by {e['by']} at {e['at']}")


def _silence_request(args: argparse.Namespace) -> dict[str, Any]:
    matchers = {}
    for given in args.match:
        label, sep, value = given.partition("=")
        if not sep:
            raise CliError(f"--match {given!r}: expected LABEL=VALUE, e.g. region=marmara")
        matchers[label.strip()] = value.strip()
    body = {"nodes": args.node, "matchers": matchers, "author": args.author, "comment": args.comment}
    body.update({k: v for k, v in (("id", args.id), ("start", args.start), ("end", args.end), ("duration", args.duration)) if v})
    return body


def _check(path: str) -> int:
    config = load_or_report(path)
    if config is None:
        return 1
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    topology = config.topology
    print(
        f"{path}: OK: {len(topology.regions)} regions, {len(topology.exchanges)} exchanges, "
        f"{len(topology.devices)} devices, {len(topology.lines)} subscriber lines"
    )
    return 0


def _check_json(path: str) -> int:
    """`check --json`: every problem and warning with file, line, key, message and hint, for tools."""
    problems: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()
    try:
        warnings = load_config(path).warnings
    except ConfigError as error:
        problems = error.problems
    report = {"ok": not problems, "problems": [asdict(p) for p in problems], "warnings": [asdict(w) for w in warnings]}
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 1 if problems else 0


def _version() -> str:
    try:
        return version("monitord")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _run(path: str, *, json_logs: bool, level: str, role: str = "all") -> int:
    from monitord import logs
    from monitord.daemon import run_daemon

    config = load_or_report(path)
    if config is None:
        return 1
    if role != "all" and config.state_server is None:
        print(
            f"monitord: {path}: --role {role} runs beside other monitord processes, which share their state "
            "only through PostgreSQL: give state: postgresql://... instead of state_file",
            file=sys.stderr,
        )
        return 2
    logs.setup(json_format=json_logs, level=level)
    for warning in config.warnings:
        logging.getLogger("monitord").warning("%s", warning)
    if role == "notifier":
        from monitord.notifier_role import run_notifier  # the roles' modules load psycopg: not for one process on SQLite

        return asyncio.run(run_notifier(config))
    if role == "poller":
        from monitord.poller_role import run_poller

        assert config.state_server is not None
        return asyncio.run(run_poller(path, config, config.state_server))
    if config.state_server is not None:  # one of several: one leads, the others stand by (monitord/standby.py)
        from monitord.standby import run_member

        return asyncio.run(run_member(path, config, config.state_server, role))
    return asyncio.run(run_daemon(path, config))


def _reserve_tracking(path: str, tracking: str) -> int:
    """Record `tracking` as issued in the config's state file (run it with the daemon stopped:
    the daemon reads the issued numbers when it starts)."""
    from monitord.store import TRACKING, Store

    config = load_or_report(path)
    if config is None:
        return 1
    found = TRACKING.fullmatch(tracking)
    if found is None or found["prefix"] != config.tracking_prefix:
        print(f"monitord: {tracking!r} is not a tracking number like {config.tracking_prefix}-2026-000123", file=sys.stderr)
        return 2
    store = Store.open(config.state)
    try:
        store.reserve_tracking(tracking)
        issued = store.issued(config.tracking_prefix)
    finally:
        store.close()
    year = int(found["year"])
    print(f"{config.state}: the next {year} number is {config.tracking_prefix}-{year}-{issued[year] + 1:06d}")
    return 0


# --- talking to the daemon ---------------------------------------------------------------------


class CliError(Exception):
    """Printed as one line on stderr; the exit code is 1."""


def _client(args: argparse.Namespace) -> int:
    url, token = _endpoint(args)
    show: Callable[[Any], None]
    if args.command == "export":
        query = urllib.parse.urlencode({"since": args.since, "until": args.until}) if args.what == "incidents" else ""
        path = f"/api/reports/incidents.csv?{query}" if query else f"/api/incidents/{_quote(args.tracking)}/subscribers.csv"
        sys.stdout.write(_call(url, "GET", path, token, csv=True))
        return 0
    if args.command == "diagnose":
        body = _call(url, "GET", f"/api/subscribers/{_quote(args.subscriber)}/diagnose", token)
        show = tables.show_diagnosis
    elif args.command == "history":
        body = _call(url, "GET", f"/api/subscribers/{_quote(args.subscriber)}/incidents")
        show = tables.show_history
    elif args.command in ("quality", "lines"):
        body, show = _quality_call(args, url)
    elif args.command == "incidents":
        body = _call(url, "GET", "/api/incidents" + ("?all=1" if args.all else ""))
        show = tables.show_incidents
    elif args.command == "silences":
        body, show = _silences_call(args, url, token)
    elif args.command == "incident":
        body, show = _incident_call(args, url, token)
    elif args.action == "list":
        body = _call(url, "GET", "/api/maintenance")
        show = tables.show_windows
    elif args.action == "add":
        window = {"scope": args.scope, "start": args.start, "end": args.end, "reason": args.reason}
        window.update({k: v for k, v in (("id", args.id), ("grace", args.grace)) if v is not None})
        body = _call(url, "POST", "/api/maintenance", token, window)
        show = tables.show_added
    else:
        body = _call(url, "DELETE", f"/api/maintenance/{_quote(args.id)}", token)
        show = tables.show_cancelled
    if args.json:
        print(json.dumps(body, indent=2, ensure_ascii=False))
    else:
        show(body)
    return 0


def _quality_call(args: argparse.Namespace, url: str) -> tuple[Any, Callable[[Any], None]]:
    if args.command == "quality":
        span = {k: v for k, v in (("step", args.step), ("since", args.since), ("until", args.until)) if v is not None}
        path = f"/api/subscribers/{_quote(args.subscriber)}/quality?{urllib.parse.urlencode(span)}"
        return _call(url, "GET", path), tables.show_quality
    if args.which == "flapping":
        at_least = "" if args.min is None else f"?min={args.min}"
        return _call(url, "GET", f"/api/lines/flapping{at_least}"), tables.show_flapping
    margin = "" if args.margin is None else f"?margin={args.margin}"
    return _call(url, "GET", f"/api/lines/drifting{margin}"), tables.show_drifting


def _silences_call(args: argparse.Namespace, url: str, token: str | None) -> tuple[Any, Callable[[Any], None]]:
    if args.action == "list":
        return _call(url, "GET", "/api/silences" + ("?all=1" if args.all else "")), tables.show_silences
    if args.action == "add":
        return _call(url, "POST", "/api/silences", token, _silence_request(args)), tables.show_silenced
    path = f"/api/silences/{_quote(args.id)}?by={_quote(args.by)}"
    return _call(url, "DELETE", path, token), lambda e: print(f"expired {e['id']}")


def _endpoint(args: argparse.Namespace) -> tuple[str, str | None]:
    """The API's base URL and token: explicit options first, then the daemon's config file."""
    url, token = args.url, None
    if args.config:
        config_url, token = _from_config(Path(args.config))
        url = url or config_url
    if args.token_file:
        token = _read_token(Path(args.token_file))
    return (url or DEFAULT_URL).rstrip("/"), token


def _from_config(path: Path) -> tuple[str | None, str | None]:
    """Only the http section is read: the rest may hold secrets this shell cannot see."""
    try:
        document = load_yaml(read_regular_text(path, CONFIG_LIMIT))
    except (OSError, UnicodeDecodeError) as error:
        raise CliError(f"cannot read {path}: {getattr(error, 'strerror', None) or error}") from None
    except YamlSyntaxError as error:
        raise CliError(f"{path}:{error.line}: {error.message}") from None
    if document.duplicates:
        duplicate = document.duplicates[0]
        raise CliError(f"{path}:{duplicate.line}: {duplicate}")
    data = document.data
    http = data.get("http") if isinstance(data, dict) else None
    if not isinstance(http, dict):
        http = {}
    url = None
    if "listen" in http:
        try:
            host, port = listen(http["listen"])
        except Invalid as problem:
            raise CliError(f"{path}: http.listen: {problem.message}") from None
        if port == 0:
            raise CliError(f"{path}: http.listen has port 0 (chosen at start): pass --url")
        url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    ref = http.get("token")
    if isinstance(ref, dict) and isinstance(ref.get("file"), str):
        return url, _read_token(path.parent / ref["file"])
    if isinstance(ref, dict) and isinstance(ref.get("env"), str):
        return url, os.environ.get(ref["env"]) or None
    return url, None


def _read_token(path: Path) -> str:
    try:
        return read_regular_text(path, SECRET_LIMIT).strip()
    except UnicodeDecodeError:
        raise CliError(f"the token file {path} is not UTF-8 text") from None
    except OSError as error:
        raise CliError(f"cannot read the token file {path}: {error.strerror}") from None


def _quote(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def _call(url: str, method: str, path: str, token: str | None = None, body: Any = None, csv: bool = False) -> Any:
    """The API's JSON answer, or its CSV text (`csv`)."""
    headers = {"Accept": "text/csv" if csv else "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url + path, data, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.read().decode() if csv else json.load(response)
    except ValueError:
        raise CliError(f"{method} {path}: the answer from {url} is not JSON (is --url a monitord API?)") from None
    except urllib.error.HTTPError as error:
        try:
            message = json.load(error).get("error", error.reason)
        except (ValueError, AttributeError):
            message = error.reason
        raise CliError(f"{method} {path}: {error.code} {message}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise CliError(f"cannot reach the daemon at {url}: {reason} (is it running? see --url, --config)") from None


if __name__ == "__main__":
    sys.exit(main())
