"""NetBox regions, sites and devices (plain dicts as the REST API returns them) -> monitord's
topology (the `topology:` section's body) and the list of what could not be mapped. Pure: no
HTTP here (monitord/netbox_import.py fetches); tests feed it tables of dicts.

The mapping, decided once:

- a site holding at least one device to watch -> an exchange: id the site's slug, name its name;
- the site's own region (the one set on the site, not its ancestors: monitord has one region
  level, and the region an operator assigns a site is the one they group it by) -> a region: id
  its slug, name its name. A site's nested object names the region only by id, so the region is
  looked up in /api/dcim/regions/;
- a device with status active -> a device: id its name (whitespace runs become '-'), kind from
  its role's slug through the role map (default dslam, olt, cmts, router), address the primary
  IP (`primary_ip`, else `primary_ip4`, else `primary_ip6`) without its prefix length, SNMP auth
  and profiles from custom fields (names configurable) or tags `monitord-auth-<name>` and
  `monitord-profile-<name>`. NetBox 4 names the role `role`, 3.x `device_role`: both are read.

What cannot be mapped is a Problem naming the NetBox object (kind, id, name) and why: a device
without a name or primary IP, a role outside the role map (unless ignored), an id that is not a
valid monitord id, two objects that would get one id, two devices on one address, a site
without a region, an auth or profile given two ways that disagree, profiles without an auth.
Devices with another status, or a role in `ignore_roles`, are skipped and counted, not refused.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from monitord.config.problems import Invalid
from monitord.config.values import host_address, identifier
from monitord.model import DEVICE_KINDS

DEFAULT_ROLES: Mapping[str, str] = {"dslam": "dslam", "olt": "olt", "cmts": "cmts", "router": "router"}
AUTH_TAG = "monitord-auth-"
PROFILE_TAG = "monitord-profile-"
WATCHED_STATUS = "active"
_SPACES = re.compile(r"\s+")
_LIST_SPLIT = re.compile(r"[,\s]+")


@dataclass(frozen=True, slots=True)
class Options:
    """How NetBox's words become monitord's: role slug -> device kind, the custom fields read."""

    roles: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ROLES))
    ignore_roles: frozenset[str] = frozenset()
    auth_field: str = "monitord_snmp_auth"
    profiles_field: str = "monitord_profiles"


@dataclass(frozen=True, slots=True)
class Problem:
    """One NetBox object monitord could not map, and why."""

    kind: str  # "device", "site" or "region"
    netbox_id: Any
    name: str
    message: str

    def __str__(self) -> str:
        return f"NetBox {self.kind} {self.name!r} (id {self.netbox_id}): {self.message}"


@dataclass(frozen=True, slots=True)
class Result:
    topology: dict[str, Any]  # {"regions": [...]}, the `topology:` section's body
    problems: tuple[Problem, ...]
    skipped: Mapping[str, int]  # why -> how many devices were passed over on purpose
    devices: int


def check_roles(roles: Mapping[str, str]) -> list[str]:
    """The role map's faults: a kind monitord does not know."""
    return [
        f"role {slug!r} maps to {kind!r}, not one of {', '.join(DEVICE_KINDS)}"
        for slug, kind in roles.items()
        if kind not in DEVICE_KINDS
    ]


def device_id(name: Any) -> str | None:
    """A device's name as a monitord id: trimmed, whitespace runs as '-' (None: no name)."""
    if not isinstance(name, str) or not name.strip():
        return None
    return _SPACES.sub("-", name.strip())


def map_inventory(
    regions: Sequence[Mapping[str, Any]],
    sites: Sequence[Mapping[str, Any]],
    devices: Sequence[Mapping[str, Any]],
    how: Options = Options(),
) -> Result:
    """The topology for `devices`, each on its site's exchange in its site's region, and the problems."""
    problems: list[Problem] = []
    skipped: dict[str, int] = {}
    regions_by_id = {region.get("id"): region for region in regions}
    sites_by_id = {site.get("id"): site for site in sites}
    candidates: list[tuple[Mapping[str, Any], dict[str, Any], Mapping[str, Any]]] = []
    for device in devices:
        status = _value(device.get("status"))
        role = _slug(device.get("role") or device.get("device_role"))
        why = f"status {status or 'none'}" if status != WATCHED_STATUS else f"role {role}" if role in how.ignore_roles else None
        if why is not None:
            skipped[why] = skipped.get(why, 0) + 1
            continue
        entry, faults = _device(device, role, how)
        site = sites_by_id.get(_ref_id(device.get("site")))
        if site is None:
            faults.append(f"its site {_ref_name(device.get('site'))!r} is not among NetBox's sites")
        problems += [_problem("device", device, fault) for fault in faults]
        if not faults and entry is not None and site is not None:
            candidates.append((device, entry, site))
    by_id = _holders(candidates, "id")
    by_address = _holders(candidates, "address")
    mapped: dict[Any, list[dict[str, Any]]] = {}  # NetBox site id -> devices
    for device, entry, site in candidates:
        clash = [
            f"{what} {entry[key]!r} is also that of {_names_of(others, device)}: each device needs its own"
            for key, what, others in (
                ("id", "its id", by_id[entry["id"]]),
                ("address", "its address", by_address[entry["address"]]),
            )
            if len(others) > 1
        ]
        problems += [_problem("device", device, fault) for fault in clash]
        if not clash:
            mapped.setdefault(site.get("id"), []).append(entry)
    tree, tree_problems = _tree(mapped, sites_by_id, regions_by_id)
    problems += tree_problems
    count = sum(len(exchange["devices"]) for region in tree for exchange in region["exchanges"])
    return Result({"regions": tree}, tuple(problems), skipped, count)


def _holders(candidates: Iterable[tuple[Mapping[str, Any], dict[str, Any], Any]], key: str) -> dict[str, list[Mapping[str, Any]]]:
    held: dict[str, list[Mapping[str, Any]]] = {}
    for device, entry, _ in candidates:
        held.setdefault(entry[key], []).append(device)
    return held


def _names_of(devices: Iterable[Mapping[str, Any]], but: Mapping[str, Any]) -> str:
    return ", ".join(
        f"device {d.get('name')!r} (id {d.get('id')}, site {_ref_name(d.get('site'))!r})" for d in devices if d is not but
    )


def _device(device: Mapping[str, Any], role: str | None, how: Options) -> tuple[dict[str, Any] | None, list[str]]:
    faults: list[str] = []
    name = device_id(device.get("name"))
    if name is None:
        faults.append("it has no name")
    else:
        try:
            identifier(name)
        except Invalid as invalid:
            faults.append(f"its name is not a monitord id: {invalid.message} ({invalid.hint})")
    kind = how.roles.get(role) if role else None
    if kind is None:
        known = ", ".join(sorted(how.roles))
        said = f"its role {role!r} is not in the role map ({known})" if role else "it has no role"
        faults.append(said + "; map it with --role SLUG=KIND or pass it over with --ignore-role SLUG")
    address = _address(device)
    if address is None:
        faults.append("it has no primary IP; set one in NetBox (the management address monitord polls)")
    elif isinstance(address, Invalid):
        faults.append(f"its primary IP {address.message}")
    auth, profiles, snmp_faults = _snmp(device, how)
    faults += snmp_faults
    if faults or name is None or kind is None or not isinstance(address, str):
        return None, faults
    entry: dict[str, Any] = {"id": name, "kind": kind, "address": address}
    if auth is not None:
        entry["snmp"] = auth
    if profiles:
        entry["profiles"] = list(profiles)
    return entry, faults


def _address(device: Mapping[str, Any]) -> str | Invalid | None:
    for key in ("primary_ip", "primary_ip4", "primary_ip6"):
        ip = device.get(key)
        if isinstance(ip, Mapping) and isinstance(ip.get("address"), str):
            try:
                interface = ipaddress.ip_interface(ip["address"])
            except ValueError:
                return Invalid(f"{ip['address']!r} is not an address")
            try:
                return host_address(str(interface.ip))
            except Invalid as invalid:
                return invalid
    return None


def _snmp(device: Mapping[str, Any], how: Options) -> tuple[str | None, tuple[str, ...], list[str]]:
    """The auth name and profiles, from the custom fields or the tags; faults where they disagree."""
    faults: list[str] = []
    fields = device.get("custom_fields") or {}
    tags = [_slug(tag) or "" for tag in device.get("tags") or []]
    tag_auths = [tag[len(AUTH_TAG) :] for tag in tags if tag.startswith(AUTH_TAG)]
    tag_profiles = [tag[len(PROFILE_TAG) :] for tag in tags if tag.startswith(PROFILE_TAG)]
    field_auth = fields.get(how.auth_field)
    if field_auth is not None and not isinstance(field_auth, str):
        faults.append(f"its custom field {how.auth_field} is not text")
        field_auth = None
    auths = {a.strip() for a in ([field_auth] if field_auth and field_auth.strip() else []) + tag_auths}
    if len(auths) > 1:
        faults.append(
            f"its SNMP auth is given as {', '.join(sorted(auths))}: keep one (custom field {how.auth_field} or one tag {AUTH_TAG}<name>)"
        )
    raw_profiles = fields.get(how.profiles_field)
    if raw_profiles is not None and not isinstance(raw_profiles, (str, list)):
        faults.append(f"its custom field {how.profiles_field} is neither text nor a multiple selection")
    field_profiles = _names(raw_profiles)
    if field_profiles and tag_profiles and set(field_profiles) != set(tag_profiles):
        faults.append(f"its profiles differ between custom field {how.profiles_field} and the {PROFILE_TAG}<name> tags")
    profiles = tuple(dict.fromkeys(field_profiles or tag_profiles))
    auth = next(iter(auths)) if len(auths) == 1 else None
    for name in ([auth] if auth else []) + list(profiles):
        try:
            identifier(name)
        except Invalid as invalid:
            faults.append(f"SNMP auth or profile {invalid.message}")
    if profiles and not auths:
        faults.append(f"it has line profiles but no SNMP auth (custom field {how.auth_field} or tag {AUTH_TAG}<name>)")
    return auth, profiles, faults


def _names(value: Any) -> list[str]:
    """A profiles custom field: a text "adsl, vdsl2" or a multiple-selection list."""
    if isinstance(value, str):
        return [name for name in _LIST_SPLIT.split(value) if name]
    if isinstance(value, list):
        return [str(name).strip() for name in value if str(name).strip()]
    return []


def _tree(
    mapped: Mapping[Any, list[dict[str, Any]]], sites: Mapping[Any, Mapping[str, Any]], regions: Mapping[Any, Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], list[Problem]]:
    problems: list[Problem] = []
    tree: dict[Any, dict[str, Any]] = {}
    exchange_ids: dict[str, Mapping[str, Any]] = {}
    region_ids: dict[str, Any] = {}
    for site_id, entries in mapped.items():
        site = sites[site_id]
        held = f"; its {len(entries)} device(s) are not mapped with it"
        region = regions.get(_ref_id(site.get("region")))
        faults = []
        if site.get("region") is None:
            faults.append("it has no region; assign one in NetBox (monitord groups exchanges by region)")
        elif region is None:
            faults.append(f"its region {_ref_name(site.get('region'))!r} is not among NetBox's regions")
        exchange = _slug_id(site, faults)
        if exchange is not None and exchange in exchange_ids:
            faults.append(f"its slug {exchange!r} is already site {exchange_ids[exchange].get('name')!r}'s")
        if faults:
            problems += [_problem("site", site, fault + held) for fault in faults]
            continue
        assert exchange is not None and region is not None
        if region.get("id") not in tree:
            region_faults: list[str] = []
            region_id = _slug_id(region, region_faults)
            if region_id is not None and region_id in region_ids:
                region_faults.append(f"its slug {region_id!r} is already another region's (nested regions may repeat a slug)")
            if region_faults:
                problems += [_problem("region", region, fault) for fault in region_faults]
                tree[region.get("id")] = {}
            else:
                assert region_id is not None
                region_ids[region_id] = region.get("id")
                tree[region.get("id")] = {"id": region_id, "name": _name(region), "exchanges": []}
        node = tree[region.get("id")]
        if not node:
            problems.append(_problem("site", site, f"its region {_ref_name(site.get('region'))!r} is not mapped" + held))
            continue
        exchange_ids[exchange] = site
        node["exchanges"].append({"id": exchange, "name": _name(site), "devices": entries})
    return [node for node in tree.values() if node], problems


def _slug_id(item: Mapping[str, Any], faults: list[str]) -> str | None:
    try:
        return identifier(item.get("slug"))
    except Invalid as invalid:
        faults.append(f"its slug is not a monitord id: {invalid.message}")
        return None


def _name(item: Mapping[str, Any]) -> str:
    name = item.get("name")
    return name.strip() if isinstance(name, str) and name.strip() else str(item.get("slug"))


def _problem(kind: str, item: Mapping[str, Any], message: str) -> Problem:
    return Problem(kind, item.get("id"), str(item.get("name") or item.get("display") or ""), message)


def _value(choice: Any) -> str | None:
    """A NetBox choice field: {"value": "active", "label": "Active"} (a bare string in old versions)."""
    return choice.get("value") if isinstance(choice, Mapping) else choice if isinstance(choice, str) else None


def _slug(ref: Any) -> str | None:
    return ref.get("slug") if isinstance(ref, Mapping) else None


def _ref_id(ref: Any) -> Any:
    return ref.get("id") if isinstance(ref, Mapping) else ref


def _ref_name(ref: Any) -> str:
    return str(ref.get("name") or ref.get("display") or ref.get("id")) if isinstance(ref, Mapping) else str(ref)
