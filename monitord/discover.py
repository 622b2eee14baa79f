"""`monitord discover ADDRESS --auth NAME` and `monitord check --probe CONFIG`: which line profiles
fit a device, asked of the device (probes/discovery.py), with the config's SNMP auths, timeouts,
retries, walk budgets and polling's concurrency limits.

discover prints an inventory snippet (a device entry as `topology: ... devices:` takes it) with
the fitting profiles and the lines each would produce, or `--json`. check --probe asks every SNMP
device of the inventory and flags a device whose assigned profile finds no table (it would poll
NO_TABLE on every line) and profiles that would fit but are not assigned. Exit codes: 0 fine,
1 a device that did not answer or an assigned profile without a table (or a config problem),
2 usage (an unknown auth, an address that is not one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from monitord.config import Invalid, load_or_report
from monitord.config.values import host_address, suggest
from monitord.model import Device, Line, Outcome
from monitord.polling import snmp_client
from probes.discovery import LINE_CAP, Discovery, Fit, Slots, discover, first_columns
from probes.profiles import Profile, line_key
from probes.snmpbase import Target

if TYPE_CHECKING:
    from monitord.config import Config

DEFAULT_CONFIG = "/etc/monitord/monitord.yaml"
KINDS = {
    "gpon-axos": "olt",
    "docsis-cmts": "cmts",
    "adsl": "dslam",
    "vdsl2": "dslam",
    "shdsl": "dslam",
    "huawei-optics": "router",
}
USAGE = 2


def add_parser(commands: Any) -> None:
    """`discover` on the CLI's subcommands."""
    parser = commands.add_parser("discover", help="ask a device which line profiles fit it; print an inventory snippet")
    parser.add_argument("address", help="the device's management address (IPv4 or IPv6)")
    parser.add_argument("--auth", required=True, help="an auth under the config's snmp.auths")
    parser.add_argument("--port", type=int, default=161, help="SNMP port (default 161)")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help=f"the daemon's config file (default {DEFAULT_CONFIG})")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")


def run_discover(args: argparse.Namespace) -> int:
    try:
        address = host_address(args.address)
    except Invalid as problem:
        print(f"monitord: {args.address!r} is not an address: {problem.message}", file=sys.stderr)
        return USAGE
    if not 1 <= args.port <= 65535:
        print(f"monitord: --port {args.port} is out of range (1..65535)", file=sys.stderr)
        return USAGE
    config = load_or_report(args.config)
    if config is None:
        return 1
    auth = config.snmp.auths.get(args.auth)
    if auth is None:
        known = sorted(config.snmp.auths)
        hint = suggest(args.auth, known, "known:") if known else "the config defines none under snmp.auths"
        print(f"monitord: unknown auth {args.auth!r} in {args.config}: {hint}", file=sys.stderr)
        return USAGE
    target = Target(address, args.port, auth)
    found = asyncio.run(_discover_all(config, [target]))[0]
    if args.json:
        print(json.dumps(_as_json(target, found, config.profiles), indent=2, ensure_ascii=False))
    elif found.outcome is Outcome.OK:
        print(snippet(target, found, config.profiles))
    if found.outcome is not Outcome.OK:
        print(f"monitord: {_at(address, args.port)}: {_failure(found, config, hint=True)}", file=sys.stderr)
        return 1
    return 0


def run_probe(path: str, *, as_json: bool) -> int:
    """`check --probe`: every SNMP device of the inventory against its assigned profiles."""
    config = load_or_report(path)
    if config is None:
        return 1
    devices = [device for device in config.topology.devices.values() if device.snmp is not None]
    found = asyncio.run(_discover_all(config, [Target.of(device) for device in devices]))
    lines: dict[str, list[Line]] = {}
    for line in config.topology.lines.values():
        lines.setdefault(line.device, []).append(line)
    verdicts = [
        _verdict(device, discovery, config, lines.get(device.id, [])) for device, discovery in zip(devices, found, strict=True)
    ]
    bad = [v for v in verdicts if v.problem]
    if as_json:
        print(json.dumps({"ok": not bad, "devices": [v.as_json() for v in verdicts]}, indent=2, ensure_ascii=False))
    else:
        for verdict in verdicts:
            for text in verdict.lines():
                print(text, file=sys.stderr if verdict.problem else sys.stdout)
        print(f"{path}: probed {_count(len(verdicts), 'SNMP device')}: {len(bad)} with problems")
    return 1 if bad else 0


async def _discover_all(config: Config, targets: list[Target]) -> list[Discovery]:
    client = snmp_client(config.snmp, max_varbinds=LINE_CAP)
    slots = Slots(config.polling.max_in_flight, config.polling.per_device_in_flight)
    try:
        return list(await asyncio.gather(*(discover(client, target, config.profiles, slots=slots) for target in targets)))
    finally:
        client.close()


def _failure(found: Discovery, config: Config, *, hint: bool = False) -> str:
    if found.outcome is Outcome.TIMEOUT:
        tries = config.snmp.retries + 1
        text = f"no answer (timeout: {tries} tries of {config.snmp.timeout:g} s)"
        if hint:
            text += (
                ": is the address right, the agent running and its ACL open to this host? A wrong v1/v2c community looks the same"
            )
        return text
    if found.outcome is Outcome.AUTH_FAILURE:
        return f"SNMPv3 authentication refused: {found.detail}"
    return f"{found.outcome.value}: {found.detail}".rstrip(": ")


def chosen(fits: tuple[Fit, ...], profiles: Mapping[str, Profile]) -> tuple[list[Fit], dict[str, list[str]]]:
    """The fits to assign, and per kept fit the others that find exactly its tables (a profile
    that extends another, such as adsl-wholedb: only one of them belongs on a device)."""
    kept: list[Fit] = []
    alike: dict[str, list[str]] = {}
    seen: dict[tuple[Any, ...], str] = {}
    for fit in fits:
        tables = first_columns(profiles[fit.profile])
        if tables in seen:
            alike[seen[tables]].append(fit.profile)
            continue
        seen[tables] = fit.profile
        alike[fit.profile] = []
        kept.append(fit)
    return kept, alike


def _at(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _lines(fit: Fit) -> str:
    return ("at least " if fit.capped else "") + _count(fit.lines, "line") + (f" ({fit.detail})" if fit.detail else "")


def snippet(target: Target, found: Discovery, profiles: Mapping[str, Profile]) -> str:
    """A device entry for `topology.regions[].exchanges[].devices`, with what was found as comments."""
    kept, alike = chosen(found.fits, profiles)
    kind = next((KINDS[fit.profile] for fit in kept if fit.profile in KINDS), "router")
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", found.sys_name).strip("-.")[:64] or f"device-{target.address}".replace(":", "-")
    out = [
        f"# {_at(target.address, target.port)}  sysObjectID {found.sys_object_id or '(none)'}",
        f"# sysDescr: {' '.join(found.sys_descr.split())[:200] or '(none)'}",
    ]
    for fit in kept:
        also = f"; {', '.join(alike[fit.profile])} finds the same tables (choose one)" if alike[fit.profile] else ""
        out.append(f"# {fit.profile}: {_lines(fit)}{also}")
    if not kept:
        out.append("# no profile finds a table here: ICMP only, or write a profile for its tables (profiles_dir)")
    out += [
        f"- id: {json.dumps(name)}",
        f"  kind: {kind}  # guessed: dslam, olt, cmts, router or switch",
        f"  address: {json.dumps(target.address)}",
    ]
    if target.port != 161:
        out.append(f"  port: {target.port}")
    out.append(f"  snmp: {json.dumps(target.auth.name)}")
    if kept:
        out.append(f"  profiles: [{', '.join(fit.profile for fit in kept)}]")
    return "\n".join(out)


def _as_json(target: Target, found: Discovery, profiles: Mapping[str, Profile]) -> dict[str, Any]:
    kept, _alike = chosen(found.fits, profiles)
    return {
        "address": target.address,
        "port": target.port,
        "auth": target.auth.name,
        "outcome": found.outcome.value,
        "detail": found.detail,
        "sys_object_id": found.sys_object_id,
        "sys_descr": found.sys_descr,
        "sys_name": found.sys_name,
        "profiles": [{"name": f.profile, "lines": f.lines, "capped": f.capped, "detail": f.detail} for f in found.fits],
        "suggested": [fit.profile for fit in kept],
        "no_rows": list(found.absent),
        "requests": found.requests,
    }


@dataclass(frozen=True, slots=True)
class Verdict:
    device: Device
    found: Discovery
    failure: str = ""  # the device did not answer
    empty: tuple[str, ...] = ()  # assigned profiles that find no table
    unassigned: tuple[Fit, ...] = ()  # profiles that would fit too
    rowless: Mapping[str, tuple[Line, ...]] = field(default_factory=dict)  # assigned profile -> inventory lines without a row

    @property
    def problem(self) -> bool:
        return bool(self.failure or self.empty)

    def lines(self) -> list[str]:
        where = f"device {self.device.id} ({_at(self.device.address, self.device.port)})"
        if self.failure:
            return [f"{where}: not probed: {self.failure}"]
        shown = [f"{where}: {self.found.sys_descr.split(chr(10))[0][:80] or self.found.sys_object_id or '?'}"]
        for fit in self.found.fits:
            if fit.profile in self.device.profiles:
                shown.append(f"  {fit.profile}: OK, {_lines(fit)}")
                missing = self.rowless.get(fit.profile, ())
                if missing:
                    named = ", ".join(f"{line.id} ({_where(line)})" for line in missing[:5])
                    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
                    shown.append(f"    no row for {_count(len(missing), 'inventory line')} (would poll not_found): {named}{more}")
        for name in self.empty:
            shown.append(f"  {name}: finds no table here: every line of this device would poll no_table")
        if self.unassigned:
            others = ", ".join(f"{fit.profile} ({_lines(fit)})" for fit in self.unassigned)
            shown.append(f"  would fit too: {others}")
        return shown

    def as_json(self) -> dict[str, Any]:
        return {
            "device": self.device.id,
            "address": self.device.address,
            "port": self.device.port,
            "outcome": self.found.outcome.value,
            "failure": self.failure,
            "sys_object_id": self.found.sys_object_id,
            "sys_descr": self.found.sys_descr,
            "assigned": list(self.device.profiles),
            "no_table": list(self.empty),
            "fits": [{"name": f.profile, "lines": f.lines, "capped": f.capped} for f in self.found.fits],
            "would_fit": [fit.profile for fit in self.unassigned],
            "rowless_lines": {name: [line.id for line in missing] for name, missing in self.rowless.items()},
        }


def _where(line: Line) -> str:
    if line.port is not None:
        return f"port {line.port}"
    return f"mac {line.mac}" if line.mac else f"serial {line.serial}" if line.serial else "no port, mac or serial"


def _verdict(device: Device, found: Discovery, config: Config, lines: list[Line]) -> Verdict:
    """What to say of `device`; its `lines` are the inventory's lines on it."""
    if found.outcome is not Outcome.OK:
        return Verdict(device, found, failure=_failure(found, config))
    rowless = {}
    for fit in found.fits:
        if fit.profile in device.profiles and not fit.capped and not fit.detail:
            profile = config.profiles[fit.profile]
            missing = tuple(line for line in lines if line_key(profile, line) not in fit.keys)
            if missing:
                rowless[fit.profile] = missing
    fitting = {fit.profile for fit in found.fits}
    empty = tuple(name for name in device.profiles if name not in fitting)
    kept, alike = chosen(found.fits, config.profiles)
    assigned = set(device.profiles)
    unassigned = tuple(fit for fit in kept if not ({fit.profile, *alike[fit.profile]} & assigned))
    return Verdict(device, found, empty=empty, unassigned=unassigned, rowless=rowless)
