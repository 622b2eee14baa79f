"""config/schema.json, generated from the section models in layout.py, for editors:

    python -m monitord.config.schema > config/schema.json

tests/test_config.py checks that the committed file is what this prints.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from monitord.config.layout import ConfigFile

SHARED: dict[str, Any] = {
    "duration": {
        "description": "30s, 5m, 2h, 1d, 1h30m, 250ms (no spaces), or a number of seconds; each key has bounds, see docs/contracts.md",
        "oneOf": [{"type": "string", "pattern": "^(\\d{1,15}(\\.\\d{1,9})?(ms|d|h|m|s))+$"}, {"type": "number", "minimum": 0}],
    },
    "secret": {
        "description": "Never inline: read from an environment variable or a file (relative to the config file)",
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "maxProperties": 1,
        "properties": {
            "env": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
            "file": {"type": "string", "minLength": 1},
        },
    },
    "id": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"},
    "ip": {"type": "string", "description": "IPv4 or IPv6 literal"},
    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
    "phone": {
        "type": ["string", "integer"],
        "description": "E.164, or a national number of subscribers.phone_region (TR: any usual form, 0532 123 45 67); a subscriber's must reach a mobile",
    },
    "email": {"type": "string", "pattern": "^[^@\\s]+@[^@\\s]+\\.[A-Za-z]{2,63}$"},
    "url": {"type": "string", "pattern": "^https?://"},
}
"""The value kinds many keys share; layout.py refers to them by name."""


class _Generator(GenerateJsonSchema):
    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        """`key:` with no value means the default everywhere: no need to say null is allowed."""
        return self.generate_inner(schema["schema"])

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def schema() -> dict[str, Any]:
    generated = _tidy(ConfigFile.model_json_schema(schema_generator=_Generator))
    definitions = generated.pop("$defs")
    generated.pop("description", None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/monitord/monitord/config/schema.json",
        "title": "monitord configuration",
        "description": "Structure of monitord's YAML configuration, for editors. "
        "`monitord check CONFIG` is the authority: it also checks values and cross-references.",
        "$defs": SHARED | definitions,
        **generated,
    }


def _tidy(node: Any) -> Any:
    """Shared kinds become references; titles (the class names) and defaults (in seconds, where
    the descriptions say "default 30s") are left out."""
    if isinstance(node, list):
        return [_tidy(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    if "x-shared" in node:
        out["$ref"] = f"#/$defs/{node['x-shared']}"
    for key, value in node.items():
        if key in ("x-shared", "title", "default"):
            continue
        if key in ("properties", "$defs"):
            out[key] = {name: _tidy(child) for name, child in value.items()}
        else:
            out[key] = _tidy(value)
    return out


def render() -> str:
    return json.dumps(schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(render(), end="")
