"""Subscriber lines, inline or from the CSV file, checked and placed on their devices."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from monitord.config import layout
from monitord.config.decoder import Decoder
from monitord.config.fields import keys_of, parsed_of
from monitord.config.inventory import Inventory
from monitord.config.model import LINE_FIELDS, REQUIRED_LINE_FIELDS
from monitord.config.problems import Invalid, Missing, Problem
from monitord.config.values import (
    phone,
    suggest,
    text,
    unpaired,
)
from monitord.files import INVENTORY_LIMIT, read_regular_file
from monitord.model import Line
from monitord.phone import sms_unreachable

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PhonePolicy:
    """How subscriber numbers are read: `region` for numbers without +, and whether a number no
    SMS can reach (landline, premium rate, not in use) refuses the config or only loses its SMS."""

    region: str = "TR"
    skip_non_mobile: bool = False


def subscriber_phone(value: Any, policy: PhonePolicy) -> tuple[str | None, Invalid | None]:
    """The E.164 number to text, and a warning when `policy` lets a non-mobile number through
    without its SMS; Invalid when the number is refused."""
    if value is None or value == "":
        return None, None
    number = phone(value, policy.region)
    reason = sms_unreachable(number)
    if reason is None:
        return number, None
    shown = repr(text(str(value)))
    if policy.skip_non_mobile:
        return None, Invalid(f"{shown} is {reason}: this line gets no SMS")
    raise Invalid(
        f"{shown} is {reason}: no SMS can reach it", "give a mobile number, leave it empty, or set notifiers.sms.non_mobile: skip"
    )


def _line_checks() -> dict[str, Callable[[Any], Any]]:
    """Each column's parser, as the line model declares it; the phone number is read apart,
    with the subscribers' PhonePolicy."""
    parsers = {key: parsed_of(layout.SubscriberLine, key) for key in keys_of(layout.SubscriberLine) if key != "phone"}
    return {key: parsed.check for key, parsed in parsers.items() if parsed is not None and parsed.check is not None}


_LINE_CHECKS = _line_checks()


def check_line(
    raw: Mapping[str, Any], phones: PhonePolicy = PhonePolicy()
) -> tuple[dict[str, Any], list[tuple[str, Invalid]], list[tuple[str, Invalid]]]:
    """One subscriber row (CSV cells or an inline mapping) -> the Line's fields that are fine,
    the columns at fault, and warnings about columns let through."""
    values: dict[str, Any] = {}
    faults: list[tuple[str, Invalid]] = []
    warnings: list[tuple[str, Invalid]] = []
    try:
        values["phone"], warning = subscriber_phone(raw.get("phone"), phones)
        if warning is not None:
            warnings.append(("phone", warning))
    except Invalid as invalid:
        faults.append(("phone", invalid))
    for column, check in _LINE_CHECKS.items():
        value = raw.get(column)
        if (value is None or value == "") and column in REQUIRED_LINE_FIELDS:
            faults.append((column, Missing()))
            continue
        try:
            values[column] = check(value)
        except Invalid as invalid:
            faults.append((column, invalid))
    if "language" in values:
        values["language"] = values["language"] or "tr"
    if not any(column in ("lat", "lon") for column, _ in faults):
        faults += [(column, unpaired(column)) for column in unpaired_coordinates(values)]
    return values, faults, warnings


def unpaired_coordinates(values: Mapping[str, Any]) -> list[str]:
    """The coordinate missing from a place that gives only one of lat and lon (a point needs both)."""
    lat, lon = values.get("lat"), values.get("lon")
    return ["lon"] if lat is not None and lon is None else ["lat"] if lon is not None and lat is None else []


def read_subscribers(d: Decoder, root: dict[Any, Any], inv: Inventory) -> None:
    path = ("subscribers",)
    section = d.section(root, (), "subscribers", layout.Subscribers)
    if section is None:
        return
    phones = PhonePolicy(d.field(layout.Subscribers, section, path, "phone_region") or "TR", _skips_non_mobile(root))
    for line_path, raw in d.items(section, path, "lines"):
        row = d.mapping(raw, line_path, layout.SubscriberLine)
        if row is None:
            continue
        values, faults, warnings = check_line(row, phones)
        for column, invalid in warnings:
            d.warn(line_path + (column,), invalid.message)
        for column, invalid in faults:
            missing = isinstance(invalid, Missing)
            d.report(line_path + (column,), "missing required key" if missing else invalid.message, invalid.hint)
        for column, message, hint in _place_line(inv, values, not faults, f"{d.file}:{d.doc.line(line_path)}"):
            d.report(line_path + (column,), message, hint)
    csv_file = d.path(section, path, "csv", None)
    if csv_file is not None:
        _read_csv(d, csv_file, inv, phones)


def _skips_non_mobile(root: dict[Any, Any]) -> bool:
    """notifiers.sms.non_mobile, read ahead of its section (which reports it if it is bad)."""
    notifiers = root.get("notifiers")
    sms = notifiers.get("sms") if isinstance(notifiers, dict) else None
    return isinstance(sms, dict) and sms.get("non_mobile") == "skip"


def _place_line(inv: Inventory, values: dict[str, Any], complete: bool, where: str) -> list[tuple[str, str, str | None]]:
    """Cross-references of one line: unique id, known device, and a free port or MAC on it.

    A row with faulty fields still declares its id, so a maintenance scope naming it is not
    reported as a second, misleading problem."""
    if "id" not in values:
        return []
    first = inv.declare("line", values["id"], where)
    if first is not None:
        return [("id", f"duplicate subscriber id {values['id']!r}", f"first defined at {first}")]
    if not complete:
        return []
    # Every line of a device shares its device's id and the language's one string object (each
    # CSV cell is a new string): 100,000 lines keep about 10 MB fewer.
    line = Line(**{**values, "device": sys.intern(values["device"]), "language": sys.intern(values["language"])})
    kind = inv.device_kinds.get(line.device)
    if line.device not in inv.declared["device"]:
        return [("device", f"unknown device {line.device!r}", None)]
    faults: list[tuple[str, str, str | None]] = []
    if kind == "dslam" and line.port is None:
        faults.append(("port", f"a line on dslam {line.device!r} needs its port", None))
    if kind == "olt" and line.port is None and line.serial is None:
        faults.append(("port", f"a line on olt {line.device!r} needs its port or its ONU's serial", None))
    if kind == "cmts" and line.mac is None and line.port is None:
        faults.append(
            (
                "mac",
                f"a line on cmts {line.device!r} needs its modem's MAC address",
                "or, for an upstream channel, its ifIndex as port",
            )
        )
    if line.segment is not None:
        faults += _segment_home(inv, line, kind, where)
    if line.modem is not None:
        faults += _modem_taken(inv, line, where)
    for column, slot in (("port", line.port), ("mac", line.mac), ("serial", line.serial)):
        if slot is not None:
            taken = inv.line_slots.setdefault((line.device, column, slot), line.id)
            if taken != line.id:
                faults.append((column, f"{column} {slot} on {line.device!r} is taken by subscriber {taken!r}", None))
    if not faults:
        inv.lines[line.id] = line
    return faults


def _segment_home(inv: Inventory, line: Line, kind: str | None, where: str) -> list[tuple[str, str, str | None]]:
    """A cable upstream segment sits between one CMTS and its modems: only lines on a cmts name
    one, and every line of a segment is on the same cmts (as a cabinet hangs off one exchange)."""
    if kind != "cmts":
        return [
            ("segment", f"segment {line.segment!r} on {kind} {line.device!r}", "only lines on a cmts are on an upstream segment")
        ]
    segment = line.segment or ""
    inv.declare("segment", segment, where)
    home = inv.segments.setdefault(segment, (line.device, where))
    if home[0] != line.device:
        return [("segment", f"segment {segment!r} is on cmts {home[0]!r}, not {line.device!r}", f"first given at {home[1]}")]
    return []


def _modem_taken(inv: Inventory, line: Line, where: str) -> list[tuple[str, str, str | None]]:
    """A modem's address is pinged in its device's ICMP sweep, keyed by address: shared with the
    head-end it would replace the device's own target, shared with another line one is never pinged."""
    device = inv.addresses.get(line.modem or "")
    if device is not None:
        return [
            ("modem", f"modem {line.modem} is the address of device {device!r}", "a modem and a head-end never share an address")
        ]
    first = inv.modems.setdefault(line.modem or "", (line.id, where))
    if first[0] != line.id:
        return [("modem", f"modem {line.modem} is already the modem of subscriber {first[0]!r}", f"first given at {first[1]}")]
    return []


def _read_csv(d: Decoder, csv_file: Path, inv: Inventory, phones: PhonePolicy) -> None:
    """Check the subscriber CSV; line numbers in problems are the CSV file's own lines."""
    where = str(csv_file)

    def report(line: int | None, column: str, message: str, hint: str | None = None) -> None:
        d.problems.append(Problem(where, line, column, message, hint))

    inv.all_lines_read = False
    try:
        data = read_regular_file(csv_file, INVENTORY_LIMIT)
    except OSError as error:
        d.report(("subscribers", "csv"), f"cannot read {where}: {error.strerror}")
        return
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        report(data.count(b"\n", 0, error.start) + 1, "", "is not UTF-8 text", "save it as CSV UTF-8")
        return
    reader = csv.reader(io.StringIO(content, newline=""))
    try:
        header = [name.strip() for name in next(reader, [])]
        if not _header_ok(header, report):
            return
        width = len(header)
        end = reader.line_num
        for row in reader:
            line, end = end + 1, reader.line_num  # a quoted cell may span lines: report the first
            if not row or row == [""]:
                continue
            if len(row) != width:
                report(line, "", f"row has {len(row)} fields, the header has {width}")
                continue
            values, faults, warnings = check_line(dict(zip(header, row)), phones)
            for column, invalid in warnings:
                d.warnings.append(Problem(where, line, column, invalid.message))
            for column, invalid in faults:
                report(line, column, invalid.message, invalid.hint)
            for column, message, hint in _place_line(inv, values, not faults, f"{where}:{line}"):
                report(line, column, message, hint)
    except csv.Error as error:
        report(reader.line_num, "", f"CSV syntax error: {error}")
        return
    inv.all_lines_read = True


def _header_ok(header: list[str], report: Callable[..., None]) -> bool:
    ok = True
    if not any(header):
        report(1, "header", "the file is empty", f"the first line names the columns: {','.join(LINE_FIELDS)}")
        return False
    for name in REQUIRED_LINE_FIELDS:
        if name not in header:
            report(1, "header", f"missing column {name!r}", f"columns: {','.join(LINE_FIELDS)}")
            ok = False
    for index, name in enumerate(header):
        if name not in LINE_FIELDS:
            report(1, "header", f"unknown column {name!r}", suggest(name, LINE_FIELDS, "known columns:"))
            ok = False
        elif name in header[:index]:
            report(1, "header", f"column {name!r} appears twice")
            ok = False
    return ok
