"""`monitord inventory import netbox`: read regions, sites and devices from NetBox's REST API
(pynetbox), map them (monitord/netbox_map.py) and write the topology as a config fragment that
`topology: {file: FRAGMENT}` includes, or print it.

Nothing is written while any NetBox object cannot be mapped (each is listed with its NetBox id
and name), unless --skip-bad: then the fragment holds what could be mapped and the rest is still
listed. The fragment is replaced atomically (a temporary file renamed over it), so the daemon
never reads half of one; a run that fails leaves the last good fragment in place. A schedule is
the operator's: a systemd timer (or cron) running this command and then reloading the daemon
(docs/operations.md, "Inventory from NetBox").

The token is read from --token-file and sent only in the Authorization header; no message, log
line or report holds it. Exit codes: 0 written (or printed), 1 refused (objects that cannot be
mapped), 2 usage (a bad role map, an unreadable token file), 3 NetBox could not be read
(unreachable, timed out, HTTP error, not a NetBox API).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from monitord.files import SECRET_LIMIT, read_regular_text
from monitord.netbox_map import DEFAULT_ROLES, Options, Result, check_roles, map_inventory

if TYPE_CHECKING:
    import requests

REFUSED, USAGE, UNREADABLE = 1, 2, 3


class NetboxError(Exception):
    """NetBox could not be read; the message says why and what to check, never the token."""


def add_parser(commands: Any) -> None:
    """`inventory import netbox` on the CLI's subcommands."""
    inventory = commands.add_parser("inventory", help="bring the topology in from an inventory system")
    actions = inventory.add_subparsers(dest="action", required=True)
    importing = actions.add_parser("import", help="write the topology from an inventory system as a config fragment")
    sources = importing.add_subparsers(dest="source", required=True)
    netbox = sources.add_parser(
        "netbox",
        help="regions, sites and devices from NetBox's REST API",
        description="Map NetBox's regions (-> regions), sites (-> exchanges) and active devices (-> devices, kind by role) "
        "to monitord's topology. Nothing is written while an object cannot be mapped, unless --skip-bad.",
    )
    netbox.add_argument("--url", required=True, help="NetBox's base URL, e.g. https://netbox.isp.example (without /api)")
    netbox.add_argument("--token-file", required=True, help="a file holding the API token (read-only is enough)")
    netbox.add_argument("--out", help="the fragment to write (replaced atomically); without it the fragment is printed")
    netbox.add_argument("--json", action="store_true", help="print a JSON report instead of text")
    netbox.add_argument(
        "--check",
        metavar="CONFIG",
        help="after writing --out, load CONFIG (which includes it) as `monitord check` does; "
        "if CONFIG refuses it, put the previous fragment back and exit 1",
    )
    netbox.add_argument(
        "--role",
        action="append",
        default=[],
        metavar="SLUG=KIND",
        help="map a NetBox device role slug to a device kind (dslam olt cmts router switch); "
        "repeat it; given, it replaces the default dslam, olt, cmts, router",
    )
    netbox.add_argument("--ignore-role", action="append", default=[], metavar="SLUG", help="pass over devices of this role")
    netbox.add_argument("--auth-field", default="monitord_snmp_auth", help="custom field naming the SNMP auth")
    netbox.add_argument("--profiles-field", default="monitord_profiles", help="custom field listing the line profiles")
    netbox.add_argument("--skip-bad", action="store_true", help="write what can be mapped; list the rest (exit 0)")
    netbox.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each answer (default 30)")
    netbox.add_argument("--page-size", type=int, default=500, help="objects per request (default 500)")


@dataclass(frozen=True, slots=True)
class Fetched:
    regions: list[dict[str, Any]]
    sites: list[dict[str, Any]]
    devices: list[dict[str, Any]]


def fetch(url: str, token: str, timeout: float, page_size: int) -> Fetched:
    """Every region, site and device, each list followed through its pages."""
    import pynetbox  # only this command needs them: not loaded in the daemon
    import requests

    api = pynetbox.api(url, token=token)
    session = api.http_session = requests.Session()
    # requests has no session-wide timeout; every call pynetbox makes gets this one
    session.request = functools.partial(session.request, timeout=timeout)  # type: ignore[method-assign]
    try:
        return Fetched(
            [dict(item) for item in api.dcim.regions.all(limit=page_size)],
            [dict(item) for item in api.dcim.sites.all(limit=page_size)],
            [dict(item) for item in api.dcim.devices.all(limit=page_size)],
        )
    except pynetbox.RequestError as error:
        raise NetboxError(_http_error(url, error.req)) from None
    except pynetbox.ContentError:
        raise NetboxError(f"{url} answered with something other than JSON: is --url NetBox's base URL?") from None
    except requests.Timeout:
        raise NetboxError(f"NetBox at {url} did not answer within {timeout:g}s (--timeout)") from None
    except requests.ConnectionError as error:
        raise NetboxError(f"cannot reach NetBox at {url}: {_reason(error)}") from None
    except requests.RequestException as error:
        raise NetboxError(f"cannot read NetBox at {url}: {type(error).__name__}") from None


def _http_error(url: str, answer: requests.Response) -> str:
    status = answer.status_code
    if status in (401, 403):
        return f"NetBox at {url} refused the token (HTTP {status}): check --token-file and that the token may read dcim"
    if status == 404:
        return f"{answer.url.split('?')[0]} was not found (HTTP 404): --url is NetBox's base URL, without /api"
    if status >= 500:
        return f"NetBox at {url} failed (HTTP {status}); nothing was written, try again later"
    return f"NetBox at {url} answered HTTP {status} {answer.reason}"


def _reason(error: Exception) -> str:
    """The innermost cause, shortly: 'Connection refused', 'Name or service not known'."""
    text = str(error)
    for marker in ("] ", "): "):
        if marker in text:
            text = text.rsplit(marker, 1)[-1]
    return text.rstrip("')\"") or type(error).__name__


def read_token(path: str) -> str:
    try:
        token = read_regular_text(path, SECRET_LIMIT).strip()
    except OSError as error:
        raise NetboxError(f"cannot read the token file {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise NetboxError(f"the token file {path} is not UTF-8 text") from None
    if not token or "\n" in token:
        raise NetboxError(f"the token file {path} is {'empty' if not token else 'not one line'}: put only the token in it")
    return token


def options(args: argparse.Namespace) -> Options:
    roles: dict[str, str] = {}
    for given in args.role:
        slug, sep, kind = given.partition("=")
        if not sep or not slug.strip() or not kind.strip():
            raise NetboxError(f"--role {given!r} is not SLUG=KIND, e.g. --role core-router=router")
        roles[slug.strip()] = kind.strip()
    roles = roles or dict(DEFAULT_ROLES)
    faults = check_roles(roles)
    if faults:
        raise NetboxError("; ".join(faults))
    return Options(roles, frozenset(args.ignore_role), args.auth_field, args.profiles_field)


def fragment(result: Result, url: str, now: datetime) -> str:
    header = (
        f"# monitord topology from NetBox at {url}, {now:%Y-%m-%d %H:%M} UTC: {result.devices} device(s).\n"
        "# Written by `monitord inventory import netbox`; edit NetBox, not this file (the next import replaces it).\n"
        "# Include it with   topology: {file: <this file>}\n"
    )
    return header + yaml.safe_dump(result.topology, sort_keys=False, allow_unicode=True, default_flow_style=False)


def write_atomically(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def run_import(args: argparse.Namespace) -> int:
    if args.timeout <= 0 or not 1 <= args.page_size <= 10_000:
        print("monitord: --timeout must be above 0 and --page-size within 1..10000", file=sys.stderr)
        return USAGE
    try:
        how = options(args)
        token = read_token(args.token_file)
    except NetboxError as error:
        print(f"monitord: {error}", file=sys.stderr)
        return USAGE
    if args.check and not args.out:
        print("monitord: --check needs --out, the fragment CONFIG includes", file=sys.stderr)
        return USAGE
    url = args.url.rstrip("/")
    try:
        fetched = fetch(url, token, args.timeout, args.page_size)
    except NetboxError as error:
        return _report(args, None, str(error), UNREADABLE)
    result = map_inventory(fetched.regions, fetched.sites, fetched.devices, how)
    if result.problems and not args.skip_bad:
        return _report(args, result, "nothing was written: fix these in NetBox, or pass --skip-bad to write the rest", REFUSED)
    text = fragment(result, url, datetime.now(UTC))
    if args.out is None:
        if not args.json:
            sys.stdout.write(text)
        return _report(args, result, None, 0, text if args.json else None)
    out = Path(args.out)
    try:
        previous = out.read_text(encoding="utf-8") if out.exists() else None
        write_atomically(out, text)
        refusal = _checked(args.check, out, result) if args.check else None
        if refusal is not None:
            if previous is None:
                out.unlink()
            else:
                write_atomically(out, previous)
            kept = "the previous fragment is back in place" if previous is not None else "it was removed"
            return _report(args, result, refusal.replace("{kept}", kept), REFUSED)
    except OSError as error:
        return _report(args, result, f"cannot write {args.out}: {error.strerror}", USAGE)
    return _report(args, result, None, 0)


def _checked(config_path: str, out: Path, result: Result) -> str | None:
    """Why CONFIG refuses the new fragment (None: it loads, and holds the fragment's devices)."""
    from monitord.config import ConfigError, format_problems, load_config

    try:
        config = load_config(config_path)
    except ConfigError as error:
        return f"{config_path} refuses the new fragment, so {{kept}}:\n{format_problems(error)}"
    mapped = {d["id"] for r in result.topology["regions"] for e in r["exchanges"] for d in e["devices"]}
    if not mapped <= set(config.topology.devices):
        return (
            f"{config_path} loads but does not include {out} (topology: {{file: {out.name}}}); the previous fragment was put back"
        )
    return None


def _report(args: argparse.Namespace, result: Result | None, error: str | None, code: int, text: str | None = None) -> int:
    if args.json:
        report: dict[str, Any] = {"ok": code == 0, "error": error, "written": args.out if code == 0 and args.out else None}
        if result is not None:
            report |= {
                "devices": result.devices,
                "problems": [
                    {"kind": p.kind, "netbox_id": p.netbox_id, "name": p.name, "message": p.message} for p in result.problems
                ],
                "skipped": dict(result.skipped),
            }
        if text is not None:
            report["fragment"] = text
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return code
    out = sys.stderr
    if result is not None:
        for problem in result.problems:
            print(f"monitord: {problem}", file=out)
        skipped = ", ".join(f"{count} with {why}" for why, count in sorted(result.skipped.items()))
        done = f"wrote {args.out}: " if code == 0 and args.out else ""
        mapped = "mapped" if code == 0 else "could be mapped"
        print(f"monitord: {done}{result.devices} device(s) {mapped}" + (f"; passed over {skipped}" if skipped else ""), file=out)
    if error is not None:
        print(f"monitord: {error}", file=out)
    return code
