"""The topology (regions, exchanges, devices) and the inventory of declared ids that the
subscribers and maintenance sections cross-reference."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitord.config import layout
from monitord.config.decoder import Decoder
from monitord.config.fields import Section, check_of
from monitord.config.model import SnmpSettings
from monitord.config.problems import Problem
from monitord.config.values import NODE_LEVELS, suggest, unpaired
from monitord.files import CONFIG_LIMIT, read_regular_text
from monitord.model import Device, Exchange, Line, Region
from monitord.yamlload import KeyPath, YamlSyntaxError, load_yaml
from probes.profiles import Profile


class Inventory:
    """What the topology declares, kept even for entries at fault so that references to them
    do not produce a second, misleading "unknown" problem."""

    def __init__(self) -> None:
        self.regions: dict[str, Region] = {}
        self.exchanges: dict[str, Exchange] = {}
        self.devices: dict[str, Device] = {}
        self.lines: dict[str, Line] = {}
        self.declared: dict[str, dict[str, str]] = {level: {} for level in NODE_LEVELS}
        self.device_kinds: dict[str, str] = {}
        self.addresses: dict[str, str] = {}
        self.modems: dict[str, tuple[str, str]] = {}  # address -> (line id, file:line)
        self.segments: dict[str, tuple[str, str]] = {}  # cable upstream segment -> (its cmts, file:line first given)
        self.line_slots: dict[tuple[str, str, object], str] = {}
        self.all_lines_read = True

    def declare(self, level: str, node: str, where: str) -> str | None:
        """Record `node`; return where it was first declared if this is a duplicate."""
        seen = self.declared[level]
        if node in seen:
            return seen[node]
        seen[node] = where
        return None


@dataclass(frozen=True, slots=True)
class Known:
    """What devices may name, from the sections read before the topology; None where that
    section is at fault, so a device naming something in it is not reported a second time."""

    snmp: SnmpSettings | None
    auth_names: set[str] | None
    profiles: Mapping[str, Profile] | None
    profiles_dir: Path | None


def read_topology(d: Decoder, root: dict[Any, Any], known: Known, inv: Inventory) -> None:
    section = d.section(root, (), "topology", layout.Topology)
    if section is None:
        return
    if "topology" not in root:
        d.report(("topology",), "missing required key", "list your regions, exchanges and devices")
        return
    if section.get("file") is None:
        _regions(d, section, ("topology",), known, inv)
        return
    if "regions" in section:
        d.report(("topology", "regions"), "is given with topology.file", "keep one: the regions here, or the file holding them")
        return
    fragment = d.path(section, ("topology",), "file")
    if fragment is not None:
        _included(d, fragment, known, inv)


def _included(d: Decoder, fragment: Path, known: Known, inv: Inventory) -> None:
    """`topology: {file: FRAGMENT}`: the regions read from FRAGMENT, its problems at its own lines."""
    where = ("topology", "file")
    try:
        doc = load_yaml(read_regular_text(fragment, CONFIG_LIMIT))
    except OSError as error:
        d.report(where, f"cannot read {fragment}: {error.strerror}")
        return
    except UnicodeDecodeError:
        d.report(where, f"{fragment} is not UTF-8 text")
        return
    except YamlSyntaxError as error:
        d.problems.append(Problem(str(fragment), error.line, "", f"YAML syntax error: {error.message}"))
        return
    sub = Decoder(doc, str(fragment), fragment.parent, d.environ)
    for duplicate in doc.duplicates:
        sub.report(duplicate.path, f"duplicate key {duplicate.path[-1]!r}", f"first given on line {duplicate.first_line}")
    body = sub.mapping(doc.data, (), layout.Topology)
    if body is not None and "file" in body:
        sub.report(("file",), "a topology file does not include another", "list the regions in it")
    elif body is not None:
        _regions(sub, body, (), known, inv)
    d.problems += sub.problems
    d.warnings += sub.warnings


def _regions(d: Decoder, section: dict[Any, Any], at: KeyPath, known: Known, inv: Inventory) -> None:
    raw_regions = section.get("regions")
    if raw_regions is None or raw_regions == []:
        d.report(at + ("regions",), "missing required key" if raw_regions is None else "must list a region")
    for region_path, raw_region in d.items(section, at, "regions"):
        region = d.mapping(raw_region, region_path, layout.Region)
        if region is None:
            continue
        region_id = _declare(d, inv, "region", layout.Region, region, region_path)
        name = d.field(layout.Region, region, region_path, "name")
        if region_id and name:
            inv.regions[region_id] = Region(region_id, name)
        for exchange_path, raw_exchange in d.items(region, region_path, "exchanges"):
            exchange = d.mapping(raw_exchange, exchange_path, layout.Exchange)
            if exchange is None:
                continue
            exchange_id = _declare(d, inv, "exchange", layout.Exchange, exchange, exchange_path)
            name = d.field(layout.Exchange, exchange, exchange_path, "name")
            if exchange_id and name and region_id:
                inv.exchanges[exchange_id] = Exchange(exchange_id, name, region_id)
            for device_path, raw_device in d.items(exchange, exchange_path, "devices"):
                _device(d, inv, device_path, raw_device, exchange_id, known)


def _declare(d: Decoder, inv: Inventory, level: str, model: type[Section], item: dict[Any, Any], path: KeyPath) -> str | None:
    node = d.field(model, item, path, "id")
    if node is None:
        return None
    first = inv.declare(level, node, f"line {d.doc.line(path + ('id',))}")
    if first is not None:
        d.report(path + ("id",), f"duplicate {level} id {node!r}", f"first defined on {first}")
        return None
    return node


def _device(d: Decoder, inv: Inventory, path: KeyPath, raw: Any, exchange_id: str | None, known: Known) -> None:
    device = d.mapping(raw, path, layout.Device)
    if device is None:
        return
    before = len(d.problems)
    device_id = _declare(d, inv, "device", layout.Device, device, path)
    kind = d.field(layout.Device, device, path, "kind")
    if device_id and kind:
        inv.device_kinds[device_id] = kind
    address = d.field(layout.Device, device, path, "address")
    if address is not None:
        other = inv.addresses.setdefault(address, device_id or "?")
        if other != (device_id or "?"):
            d.report(path + ("address",), f"address {address} is already used by device {other!r}")
    port = d.field(layout.Device, device, path, "port")
    auth_name = d.field(layout.Device, device, path, "snmp")
    if auth_name is not None and known.auth_names is not None and auth_name not in known.auth_names:
        d.report(
            path + ("snmp",),
            f"unknown snmp auth {auth_name!r}",
            suggest(auth_name, sorted(known.auth_names), "define it under snmp.auths; known:"),
        )
    profiles = tuple(_profiles(d, device, path, known))
    if profiles and "snmp" not in device:
        d.report(path + ("profiles",), "line profiles are walked over SNMP", "add snmp: <auth name>")
    cabinet = d.field(layout.Device, device, path, "cabinet")
    if cabinet is not None and exchange_id is not None:
        home = inv.declared["cabinet"].setdefault(cabinet, exchange_id)
        if home != exchange_id:
            d.report(
                path + ("cabinet",),
                f"cabinet {cabinet!r} is already in exchange {home!r}",
                "a street cabinet hangs off one exchange",
            )
    site = {key: d.field(layout.Device, device, path, key) for key in ("location", "lat", "lon")}
    for key, other in (("lat", "lon"), ("lon", "lat")):
        if key not in device and other in device:
            missing = unpaired(key)
            d.report(path + (key,), missing.message, missing.hint)
    if len(d.problems) > before or not (device_id and exchange_id and known.snmp):
        return
    auth = known.snmp.auths.get(auth_name) if auth_name else None
    inv.devices[device_id] = Device(
        sys.intern(device_id),
        kind,
        exchange_id,
        address,
        auth,
        profiles,
        port,
        cabinet,
        site["location"],
        site["lat"],
        site["lon"],
    )


def _profiles(d: Decoder, device: dict[Any, Any], path: KeyPath, known: Known) -> Iterable[str]:
    for item_path, raw in d.items(device, path, "profiles"):
        name = d.check(raw, item_path, check_of(layout.Device, "profiles"))
        if name is None:
            continue
        if known.profiles is None or name in known.profiles:
            yield name
            continue
        hint = suggest(name, sorted(known.profiles), "known:")
        if known.profiles_dir is None:
            hint += "; for your own, set profiles_dir"
        else:
            hint += f"; or add {known.profiles_dir / (name + '.yaml')}"
        d.report(item_path, f"unknown line profile {name!r}", hint)
