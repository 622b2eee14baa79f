"""Reading line profile files (monitord/builtin/profiles/*.yaml and the operator's profiles_dir)
into the `Profile`s that probes/profiles.py decodes with; every error names the file and the key."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar

from monitord.builtin import PROFILES_DIR as BUILTIN_DIR
from monitord.files import CONFIG_LIMIT, read_regular_text
from monitord.yamlload import Document, YamlSyntaxError, load_yaml
from probes.profiles import COMBINE, CONVERT, TEXT_UNITS, Aggregate, Column, IndexPart, Profile, Table, TextNumber
from probes.snmp import Oid, parse_oid


class ProfileError(ValueError):
    """A profile file that cannot be used; the message names the file and the key."""


def load_profiles(dirs: Iterable[Path | str] = (BUILTIN_DIR,)) -> dict[str, Profile]:
    """Every *.yaml in `dirs`; a later directory's profile replaces an earlier one of the same name.

    `extends: <name>` starts from an already loaded profile and `override:` changes columns by
    metric name (e.g. a vendor that reports SNR margin in whole dB: `{snr_margin_down_db: {scale: 1}}`).
    """
    raw: dict[str, tuple[Path, dict[str, Any]]] = {}
    lines: dict[Path, Document] = {}
    for folder in dirs:
        for path in sorted(Path(folder).glob("*.yaml")):
            lines[path] = document_of(path)
            document = lines[path].data
            name = _with_line(lines, partial(_require, path, document, "name", str))
            raw[name] = (path, document)
    profiles: dict[str, Profile] = {}
    resolving: set[str] = set()

    def build(name: str) -> Profile:
        if name in profiles:
            return profiles[name]
        path, document = raw[name]
        if name in resolving:
            raise ProfileError(f"{path}: extends: circular reference through {name!r}")
        resolving.add(name)
        base_name = document.get("extends")
        if base_name is not None:
            if base_name not in raw:
                raise ProfileError(f"{path}: extends: unknown profile {base_name!r}")
            profiles[name] = _extend(path, document, build(base_name))
        else:
            profiles[name] = _profile(path, document)
        return profiles[name]

    for name in raw:
        _with_line(lines, partial(build, name))
    return profiles


T = TypeVar("T")


def _with_line(documents: dict[Path, Document], work: Callable[[], T]) -> T:
    """`work`, its ProfileError "file: key.path: ..." told as "file:line: key.path: ..." (the line
    of that key, or of its nearest ancestor present), as the config's errors are."""
    try:
        return work()
    except ProfileError as error:
        head, _, rest = str(error).partition(": ")
        document = next((found for path, found in documents.items() if str(path) == head), None)
        if document is None or not rest:  # a line given already ("file:3: ..."), or no key path
            raise
        where = rest.split(": ", 1)[0] if ": " in rest else ""
        path: list[str | int] = []
        for part in where.split(".") if where and " " not in where else []:
            name, *indexes = part.replace("]", "").split("[")
            path.append(name)
            path += [int(index) for index in indexes if index.isdigit()]
        raise ProfileError(f"{head}:{document.line(tuple(path)) or 1}: {rest}") from None


PROFILE_KEYS = {"name", "description", "match", "interval", "max_repetitions", "tables", "aggregates", "traps"}
EXTEND_KEYS = {"name", "description", "extends", "override", "traps"}
TABLE_KEYS = {"index", "key", "columns", "join", "get", "skip_rows"}
COLUMN_KEYS = {
    "name",
    "oid",
    "type",
    "scale",
    "unavailable",
    "map",
    "convert",
    "combine",
    "interval",
    "fallback",
    "bits",
    "text",
    "zero",
    "served_as",
}


def _profile(path: Path, document: dict[str, Any]) -> Profile:
    _known(path, "", document, PROFILE_KEYS)
    match = _choice(path, "match", document.get("match", "port"), ("port", "mac", "serial", "device"))
    interval = _require(path, document, "interval", str) if "interval" in document else "line"
    tables = document.get("tables")
    if not isinstance(tables, list) or not tables:
        raise ProfileError(f"{path}: tables: expected a non-empty list")
    built = tuple(_table(path, f"tables[{i}]", table, interval) for i, table in enumerate(tables))
    aggregates = tuple(_aggregate(path, f"aggregates[{i}]", item) for i, item in enumerate(document.get("aggregates") or []))
    repetitions = document.get("max_repetitions", 25)
    if not isinstance(repetitions, int) or repetitions < 1:
        raise ProfileError(f"{path}: max_repetitions: expected a positive integer")
    if match == "mac" and not any(t.key_oid or any(p.kind == "mac" for p in t.index) for t in built):
        raise ProfileError(f"{path}: match: 'mac' needs a table with a mac index or key column")
    if match == "serial" and not any(any(p.kind == "serial" for p in t.index) for t in built):
        raise ProfileError(f"{path}: match: 'serial' needs a table with a serial index")
    return Profile(
        name=document["name"],
        description=str(document.get("description", "")),
        match=match,
        tables=built,
        aggregates=aggregates,
        max_repetitions=repetitions,
        traps=_traps(path, document.get("traps")),
    )


def _traps(path: Path, items: Any) -> dict[Oid, str]:
    """`traps: [{oid: <numeric OID>, meaning: <text>}]`: the vendor alarms that make monitord recheck."""
    if items is None:
        return {}
    if not isinstance(items, list):
        raise ProfileError(f"{path}: traps: expected a list of {{oid, meaning}}")
    traps: dict[Oid, str] = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != {"oid", "meaning"} or not isinstance(item["meaning"], str):
            raise ProfileError(f"{path}: traps[{i}]: expected {{oid: <numeric OID>, meaning: <text>}}")
        oid = _oid(path, f"traps[{i}].oid", item["oid"])
        if oid in traps:
            raise ProfileError(f"{path}: traps[{i}].oid: {item['oid']} is declared twice")
        traps[oid] = item["meaning"]
    return traps


def _table(path: Path, where: str, table: Any, interval: str) -> Table:
    if not isinstance(table, dict):
        raise ProfileError(f"{path}: {where}: expected a mapping")
    _known(path, where, table, TABLE_KEYS)
    spec = table.get("index", "port")
    parts = tuple(_index_part(path, f"{where}.index", item) for item in (spec if isinstance(spec, list) else [spec]))
    if sum(part.kind in ("port", "mac", "serial") for part in parts) > 1:
        raise ProfileError(f"{path}: {where}.index: at most one of port/mac/serial")
    key_oid = None
    if "key" in table:
        key = table["key"]
        if not isinstance(key, dict) or set(key) != {"oid", "type"} or key["type"] != "mac":
            raise ProfileError(f"{path}: {where}.key: expected {{oid: <numeric OID>, type: mac}}")
        key_oid = _oid(path, f"{where}.key.oid", key["oid"])
    columns = table.get("columns")
    if not isinstance(columns, list) or not columns:
        raise ProfileError(f"{path}: {where}.columns: expected a non-empty list")
    labels = {part.name for part in parts if part.kind == "label"}
    built = tuple(_column(path, f"{where}.columns[{i}]", c, interval, labels) for i, c in enumerate(columns))
    join = table.get("join", False)
    if not isinstance(join, bool):
        raise ProfileError(f"{path}: {where}.join: expected true or false")
    get, skip = _get(path, where, table, parts, join)
    return Table(parts, built, key_oid, join, get, skip)


def _get(path: Path, where: str, table: dict[str, Any], parts: tuple[IndexPart, ...], join: bool) -> tuple[Any, Any]:
    """`get: N` (a history table indexed port.N, row N read by GET) and its `skip_rows: {oid, values}`."""
    if "get" not in table:
        if "skip_rows" in table:
            raise ProfileError(f"{path}: {where}.skip_rows: only on a table read by GET (get: <row>)")
        return None, None
    get = table["get"]
    if not isinstance(get, int) or isinstance(get, bool) or get < 0:
        raise ProfileError(f"{path}: {where}.get: expected the row number to read (e.g. 1, the last complete interval)")
    kinds = [part.kind for part in parts]
    if len(kinds) < 2 or kinds[0] != "port" or kinds[-1] != "row" or set(kinds[1:-1]) - {"label"} or not join:
        raise ProfileError(
            f"{path}: {where}.get: needs index [port, row] (labels between) and join: true (it adds to lines the walked tables find)"
        )
    skip = table.get("skip_rows")
    if skip is None:
        return get, None
    if not isinstance(skip, dict) or set(skip) != {"oid", "values"} or not isinstance(skip["values"], list):
        raise ProfileError(f"{path}: {where}.skip_rows: expected {{oid: <numeric OID>, values: [<int>]}}")
    if not skip["values"] or not all(isinstance(v, int) and not isinstance(v, bool) for v in skip["values"]):
        raise ProfileError(f"{path}: {where}.skip_rows.values: expected a list of integers")
    return get, (_oid(path, f"{where}.skip_rows.oid", skip["oid"]), frozenset(skip["values"]))


def _index_part(path: Path, where: str, item: Any) -> IndexPart:
    if item in ("port", "mac", "serial", "row"):
        return IndexPart(item)
    if isinstance(item, dict) and set(item) == {"label", "values"} and isinstance(item["values"], dict):
        try:
            labels = {int(k): str(v) for k, v in item["values"].items()}
        except (TypeError, ValueError):
            raise ProfileError(f"{path}: {where}.values: keys must be integers") from None
        return IndexPart("label", str(item["label"]), labels)
    raise ProfileError(f"{path}: {where}: expected port, mac, serial, row or {{label: <name>, values: {{<int>: <text>}}}}")


def _column(path: Path, where: str, column: Any, interval: str, labels: set[str]) -> Column:
    if not isinstance(column, dict):
        raise ProfileError(f"{path}: {where}: expected a mapping")
    _known(path, where, column, COLUMN_KEYS)
    name = _require(path, column, "name", str, where)
    placeholders = {part.split("}")[0] for part in name.split("{")[1:]}
    if not placeholders <= labels:
        raise ProfileError(f"{path}: {where}.name: {name!r} uses a label the index does not define")
    built = Column(
        name=name,
        oid=_oid(path, f"{where}.oid", column.get("oid")),
        kind=_choice(path, f"{where}.type", column.get("type", "gauge"), ("gauge", "counter")),
        interval=str(column.get("interval", interval)),
    )
    return _apply(path, where, built, {k: v for k, v in column.items() if k not in ("name", "oid", "type", "interval")})


def _apply(path: Path, where: str, column: Column, changes: dict[str, Any]) -> Column:
    """Column fields that an `override` may change as well."""
    fields: dict[str, Any] = {}
    for key, value in changes.items():
        if key == "scale":
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ProfileError(f"{path}: {where}.scale: expected a number")
            fields["scale"] = float(value)
        elif key == "zero":  # what a zero means (on a line that is down, mostly): a reading, or none
            _choice(path, f"{where}.zero", value, ("value", "none"))
        elif key == "unavailable":
            if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
                raise ProfileError(f"{path}: {where}.unavailable: expected a list of integers")
            fields["unavailable"] = frozenset(value)
        elif key == "map":
            if not isinstance(value, dict) or not all(isinstance(v, (int, float)) for v in value.values()):
                raise ProfileError(f"{path}: {where}.map: expected {{<int>: <number>}}")
            try:
                fields["map"] = {int(k): float(v) for k, v in value.items()}
            except (TypeError, ValueError):
                raise ProfileError(f"{path}: {where}.map: keys must be integers") from None
        elif key == "convert":
            fields["convert"] = _choice(path, f"{where}.convert", value, tuple(CONVERT))
        elif key == "combine":
            fields["combine"] = _choice(path, f"{where}.combine", value, tuple(COMBINE))
        elif key == "bits":
            if column.kind != "gauge" or not isinstance(value, list) or not value:
                raise ProfileError(f"{path}: {where}.bits: a gauge's list of BITS positions (0 = the first octet's high bit)")
            if not all(isinstance(bit, int) and not isinstance(bit, bool) and 0 <= bit < 2048 for bit in value):
                raise ProfileError(f"{path}: {where}.bits: positions are integers from 0")
            fields["bits"] = frozenset(value)
        elif key == "text":
            fields["text"] = _text(path, f"{where}.text", value)
        elif key == "served_as":
            if column.kind != "counter":
                raise ProfileError(f"{path}: {where}.served_as: only a counter may be served as an OCTET STRING")
            fields["served_as"] = _choice(path, f"{where}.served_as", value, ("octets", "text"))
        elif key == "fallback":
            if column.kind != "counter":
                raise ProfileError(f"{path}: {where}.fallback: only a counter column may fall back (to a 32-bit counter)")
            fields["fallback"] = _oid(path, f"{where}.fallback", value)
        else:
            raise ProfileError(f"{path}: {where}.{key}: not allowed here")
    if changes.get("zero") == "none":
        fields["unavailable"] = fields.get("unavailable", column.unavailable) | {0}
    built = replace(column, **fields)
    for key, unit in (("text", "the unit converts"), ("bits", "a bit is 1 or 0")):
        if getattr(built, key) and (
            built.kind != "gauge"
            or built.scale != 1.0
            or built.convert
            or built.map is not None
            or (built.bits and built.text is not None)
        ):
            raise ProfileError(f"{path}: {where}.{key}: only on a gauge without scale, convert, map, bits or text ({unit})")
    return built


def _text(path: Path, where: str, value: Any) -> TextNumber:
    """`text: {pattern: <regex with one group>, unit: <unit>}`."""
    if not isinstance(value, dict) or set(value) != {"pattern", "unit"} or not isinstance(value["pattern"], str):
        raise ProfileError(f"{path}: {where}: expected {{pattern: <regular expression with one group>, unit: <unit>}}")
    try:
        groups = re.compile(value["pattern"]).groups
    except re.error as error:
        raise ProfileError(f"{path}: {where}.pattern: {error}") from None
    if groups != 1:
        raise ProfileError(f"{path}: {where}.pattern: needs exactly one group (the number), has {groups}")
    unit = _choice(path, f"{where}.unit", value["unit"], tuple(TEXT_UNITS))
    return TextNumber(value["pattern"], unit)


def _aggregate(path: Path, where: str, item: Any) -> Aggregate:
    fn: Literal["min", "max", "any_nonzero"]
    if isinstance(item, dict) and set(item) == {"name", "any_nonzero"}:
        fn, of, key = "any_nonzero", item["any_nonzero"], "any_nonzero"
    elif isinstance(item, dict) and set(item) == {"name", "worst", "of"}:
        fn, of, key = _choice(path, f"{where}.worst", item["worst"], ("min", "max")), item["of"], "of"
    else:
        raise ProfileError(
            f"{path}: {where}: expected {{name, worst: min|max, of: [metrics]}} or {{name, any_nonzero: [metrics]}}"
        )
    if not isinstance(of, list) or not of:
        raise ProfileError(f"{path}: {where}.{key}: expected a list of metric names")
    return Aggregate(str(item["name"]), fn, tuple(str(name) for name in of))


def _extend(path: Path, document: dict[str, Any], base: Profile) -> Profile:
    _known(path, "", document, EXTEND_KEYS)
    override = document.get("override") or {}
    if not isinstance(override, dict):
        raise ProfileError(f"{path}: override: expected {{<metric name>: {{<field>: <value>}}}}")
    known = {column.name for column in base.columns()}
    for metric, changes in override.items():
        if metric not in known:
            raise ProfileError(f"{path}: override.{metric}: no such metric in {base.name!r}")
        if not isinstance(changes, dict):
            raise ProfileError(f"{path}: override.{metric}: expected a mapping")
    tables = tuple(
        replace(
            table,
            columns=tuple(
                _apply(path, f"override.{c.name}", c, override[c.name]) if c.name in override else c for c in table.columns
            ),
        )
        for table in base.tables
    )
    return replace(
        base,
        name=document["name"],
        description=str(document.get("description", base.description)),
        tables=tables,
        traps={**base.traps, **_traps(path, document.get("traps"))},
    )


def document_of(path: Path) -> Document:
    """The profile file's data (a mapping) and the line of every key."""
    try:
        document = load_yaml(read_regular_text(path, CONFIG_LIMIT))
    except YamlSyntaxError as error:
        raise ProfileError(f"{path}:{error.line}: {error.message}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ProfileError(f"{path}: {error}") from None
    if document.duplicates:
        duplicate = document.duplicates[0]
        raise ProfileError(f"{path}:{duplicate.line}: {duplicate}")
    if not isinstance(document.data, dict):
        raise ProfileError(f"{path}:1: expected a mapping at the top level")
    return document


def _known(path: Path, where: str, mapping: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(map(str, mapping)) - allowed)
    if unknown:
        prefix = f"{where}." if where else ""
        raise ProfileError(f"{path}: {prefix}{unknown[0]}: unknown key")


def _require(path: Path, mapping: dict[str, Any], key: str, kind: type, where: str = "") -> Any:
    value = mapping.get(key)
    if not isinstance(value, kind) or value == "":
        prefix = f"{where}." if where else ""
        raise ProfileError(f"{path}: {prefix}{key}: expected a {kind.__name__}")
    return value


def _choice(path: Path, where: str, value: Any, allowed: tuple[str, ...]) -> Any:
    if value not in allowed:
        raise ProfileError(f"{path}: {where}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _oid(path: Path, where: str, value: Any) -> Oid:
    try:
        oid = parse_oid(value) if isinstance(value, str) else ()
    except ValueError:
        oid = ()
    if len(oid) < 2:
        raise ProfileError(f"{path}: {where}: {value!r} is not a numeric OID")
    return oid
