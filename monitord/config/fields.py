"""What the section models in layout.py are made of: `Parsed` fields read by the parsers of
values.py, the `Section` base (unknown keys forbidden), and walks over the models that map a
pydantic error location back to its section."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler, GetJsonSchemaHandler, Tag, model_validator
from pydantic.fields import FieldInfo
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from monitord import duration as durations
from monitord.config import values
from monitord.config.problems import Invalid


def shared(name: str) -> dict[str, str]:
    """A reference to one of schema.py's shared definitions (duration, secret, id, ...)."""
    return {"x-shared": name}


@dataclass(frozen=True, slots=True, eq=False)  # hashed by identity: typing hashes Annotated metadata
class Parsed:
    """Field metadata: the value is read by `check` (one of values.py's parsers, whose messages
    `check` shows) and documented by `schema`; no check: documented here, checked by the module
    that walks the section."""

    schema: Mapping[str, Any]
    check: Callable[[Any], Any] | None = None
    hint: str | None = None  # for a required key that is missing or has no value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        check, hint = self.check, self.hint
        if check is None and hint is None:
            return core_schema.any_schema()

        def read(value: Any) -> Any:
            if value is None:
                raise Invalid("needs a value", hint)
            return value if check is None else check(value)

        return core_schema.no_info_plain_validator_function(read)

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return dict(self.schema)


STRING = {"type": "string"}
BOOLEAN = {"type": "boolean"}
DURATION = shared("duration")
SECRET = shared("secret")
ID = shared("id")

Interval = Annotated[float, Parsed(DURATION, values.duration(durations.INTERVAL))]
Timeout = Annotated[float, Parsed(DURATION, values.duration(durations.TIMEOUT))]
Positive = Annotated[float, Parsed(DURATION, values.positive_duration)]
Kept = Annotated[float, Parsed(DURATION, values.retention_period)]
Flag = Annotated[bool, Parsed(BOOLEAN, values.boolean)]
Listen = Annotated[tuple[str, int], Parsed(STRING, values.listen)]
Text = Annotated[str, Parsed(STRING, values.text)]
Secret = Annotated[Any, Parsed(SECRET)]
Id = Annotated[str, Parsed(ID, values.identifier)]
MaybeId = Annotated[str | None, Parsed(ID, values.identifier)]
MaybeText = Annotated[str | None, Parsed(STRING, values.text)]


def int_range(low: int, high: int) -> Parsed:
    return Parsed({"type": "integer", "minimum": low, "maximum": high}, values.integer(low, high))


def rate_range(low: float, high: float) -> Parsed:
    return Parsed({"type": "number", "exclusiveMinimum": 0, "maximum": high}, values.number(low, high))


def lowered_choice(*options: str) -> Parsed:
    return Parsed({"enum": list(options)}, values.lowered(values.choice(options)))


def choice_of(*options: str) -> Parsed:
    return Parsed({"enum": list(options)}, values.choice(options))


class Section(BaseModel):
    """Unknown keys are errors; a key written without a value (`key:`) takes its default."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)

    @model_validator(mode="before")
    @classmethod
    def _empty_is_default(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        fields = _fields(cls)
        return {key: value for key, value in data.items() if value is not None or key not in fields or fields[key].is_required()}


def keys_of(model: type[BaseModel]) -> tuple[str, ...]:
    """The keys `model` accepts, as written in the file (`from`, not `from_`)."""
    return tuple(_fields(model))


def _fields(model: type[BaseModel]) -> dict[str, FieldInfo]:
    return {field.alias or name: field for name, field in model.model_fields.items()}


def _unwrap(annotation: Any) -> Any:
    """`X | None` -> X."""
    args = get_args(annotation)
    if get_origin(annotation) in (Union, UnionType) and type(None) in args:
        return next(arg for arg in args if arg is not type(None))
    return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def model_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The section model that holds the key at `loc` (a pydantic error location), if any."""
    current = _walk(model, loc[:-1])[1]
    return current if _is_model(current) else None


def file_path(model: type[BaseModel], loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """A pydantic error location as a key path in the file: without the tags pydantic adds for
    the member of a tagged union it tried, and without its `[key]` marker for a mapping key."""
    return _walk(model, loc)[0]


def _walk(model: type[BaseModel], loc: tuple[str | int, ...]) -> tuple[tuple[str | int, ...], Any]:
    """The key path of `loc` in the file, and the annotation of what it leads to."""
    current: Any = model
    kept: list[str | int] = []
    for part in loc:
        current = _unwrap(current)
        members = _tagged(current)
        if members:
            current = members.get(str(part))
            continue
        if part == "[key]":
            continue
        kept.append(part)
        if _is_model(current):
            field = _fields(current).get(str(part))
            current = None if field is None else field.annotation
        elif get_origin(current) in (list, dict):
            current = get_args(current)[-1]
        else:
            current = None
    return tuple(kept), _unwrap(current)


def _tagged(annotation: Any) -> dict[str, Any]:
    """Tag -> model of a tagged union (`Annotated[Annotated[A, Tag("a")] | ..., Discriminator(...)]`)."""
    if get_origin(annotation) is not Annotated:
        return {}
    members: dict[str, Any] = {}
    for member in get_args(get_args(annotation)[0]):
        tags = [item.tag for item in getattr(member, "__metadata__", ()) if isinstance(item, Tag)]
        if tags:
            members[tags[0]] = get_args(member)[0]
    return members


def parsed_of(model: type[BaseModel], key: str) -> Parsed | None:
    """The `Parsed` metadata of the field `key` (as written in the file) of `model`, or of its
    items when it is a list."""
    field = _fields(model).get(key)
    if field is None:
        return None
    metadata = list(field.metadata)
    if get_origin(field.annotation) is list:
        metadata += getattr(get_args(field.annotation)[0], "__metadata__", ())
    parsed = [item for item in metadata if isinstance(item, Parsed)]
    return parsed[0] if parsed else None


def check_of(model: type[BaseModel], key: str) -> Callable[[Any], Any]:
    """The parser the field `key` of `model` (or each of its items) is read with."""
    parsed = parsed_of(model, key)
    if parsed is None or parsed.check is None:
        raise LookupError(f"{model.__name__}.{key} names no parser")
    return parsed.check


def default_in(model: type[BaseModel], key: str) -> Any:
    """The default of the field `key`; REQUIRED when it has none."""
    field = _fields(model)[key]
    return REQUIRED if field.is_required() else field.get_default(call_default_factory=True)


REQUIRED: Any = object()


def missing_hint(model: type[BaseModel], loc: tuple[str | int, ...]) -> str | None:
    """The hint a missing key's field gives (a secret says how to write one)."""
    holder = model_at(model, loc)
    parsed = None if holder is None else parsed_of(holder, str(loc[-1]))
    return None if parsed is None else parsed.hint


def section_keys(model: type[BaseModel], path: str = "") -> dict[str, tuple[str, ...]]:
    """The keys each section accepts, keyed by its path (`[]`: every list item, `*`: every mapping value)."""
    found = {path: keys_of(model)}
    for key, field in _fields(model).items():
        inner, suffix = _unwrap(field.annotation), ""
        while get_origin(inner) in (list, dict):
            suffix += "[]" if get_origin(inner) is list else ".*"
            inner = _unwrap(get_args(inner)[-1])
        if _is_model(inner):
            found |= section_keys(inner, f"{path}.{key}{suffix}" if path else f"{key}{suffix}")
    return found
