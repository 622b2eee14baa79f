"""Walking the YAML data with its line marks: strict mappings, checked values and secrets,
each problem recorded with file:line and key path."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from monitord.config.fields import REQUIRED, Section, check_of, default_in, file_path, keys_of, missing_hint, model_at
from monitord.config.model import SECRET_HINT
from monitord.config.problems import Invalid, Problem, dotted
from monitord.config.values import ENV_NAME, suggest, text, wrong_type
from monitord.files import SECRET_LIMIT, read_regular_text
from monitord.model import Secret
from monitord.yamlload import Document, KeyPath

T = TypeVar("T")
M = TypeVar("M", bound=Section)


class Decoder:
    """Walks the YAML data, collecting Problems; each section method returns None when at fault."""

    def __init__(self, doc: Document, file: str, base: Path, environ: Mapping[str, str]) -> None:
        self.doc = doc
        self.file = file
        self.base = base
        self.environ = environ
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def report(self, path: KeyPath, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(self.file, self.doc.line(path), dotted(path), message, hint))

    def warn(self, path: KeyPath, message: str) -> None:
        self.warnings.append(Problem(self.file, self.doc.line(path), dotted(path), message))

    def mapping(self, value: Any, path: KeyPath, model: type[Section]) -> dict[Any, Any] | None:
        """Strict decoding of a section walked by hand: a mapping whose keys `model` all declares."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.report(path, wrong_type("a mapping", value).message)
            return None
        allowed = keys_of(model)
        for key in value:
            if key not in allowed:
                self.report(path + (key,), f"unknown key {key!r}", suggest(key, allowed, "known keys:"))
        return value

    def validated(self, model: type[M], raw: Any, path: KeyPath) -> M | None:
        """`raw` (None: every default) checked by its pydantic `model`, each error reported at
        its file:line with the message of the value parser that refused it."""
        try:
            return model.model_validate({} if raw is None else raw)
        except ValidationError as error:
            for where, message, hint in explain(model, error):
                self.report(path + where, message, hint)
            return None

    def section(self, parent: dict[Any, Any], path: KeyPath, key: str, model: type[Section]) -> dict[Any, Any] | None:
        return self.mapping(parent.get(key), path + (key,), model)

    def items(self, parent: dict[Any, Any], path: KeyPath, key: str) -> list[tuple[KeyPath, Any]]:
        value = parent.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.report(path + (key,), wrong_type("a list", value).message, "write one item per '- ' line")
            return []
        return [(path + (key, index), item) for index, item in enumerate(value)]

    def check(self, value: Any, path: KeyPath, check: Callable[[Any], T]) -> T | None:
        try:
            return check(value)
        except Invalid as invalid:
            self.report(path, invalid.message, invalid.hint)
            return None

    def get(self, parent: dict[Any, Any], path: KeyPath, key: str, check: Callable[[Any], T], default: Any = REQUIRED) -> Any:
        """The checked value of `key`, `default` when it is absent, None when it is at fault."""
        value = parent.get(key)
        if value is None:
            if default is REQUIRED:
                self.report(path + (key,), "missing required key" if key not in parent else "needs a value")
                return None
            return default
        return self.check(value, path + (key,), check)

    def field(self, model: type[Section], parent: dict[Any, Any], path: KeyPath, key: str, default: Any = None) -> Any:
        """`key` of a section walked by hand, read by the parser its `model` declares; absent:
        `default` if given, else the model's default ("missing required key" when it has none)."""
        return self.get(parent, path, key, check_of(model, key), default_in(model, key) if default is None else default)

    def path(self, parent: dict[Any, Any], path: KeyPath, key: str, default: Any = REQUIRED) -> Path | None:
        value = self.get(parent, path, key, text, default)
        return None if value is None else self.base / value

    def secret(self, parent: dict[Any, Any], path: KeyPath, key: str, required: bool = False) -> Secret | None:
        """Read `{env: NAME}` or `{file: path}`. Messages name the source, never the value."""
        value = parent.get(key)
        here = path + (key,)
        if value is None:
            if required:
                self.report(here, "missing required key" if key not in parent else "needs a value", SECRET_HINT)
            return None
        if not isinstance(value, dict):
            inline = isinstance(value, (str, int, float))
            self.report(here, "secrets must not be written inline" if inline else "expected a secret", SECRET_HINT)
            return None
        if len(value) != 1 or not {"env", "file"} >= set(value):
            self.report(here, "a secret has exactly one key, env or file", SECRET_HINT)
            return None
        if "env" in value:
            name = value["env"]
            if not isinstance(name, str) or ENV_NAME.fullmatch(name) is None:
                self.report(here + ("env",), "is not an environment variable name", "letters, digits and _")
                return None
            content = self.environ.get(name)
            if not content:
                state = "not set" if content is None else "empty"
                self.report(here + ("env",), f"environment variable {name} is {state}")
                return None
            return Secret(content, f"env:{name}")
        if not isinstance(value["file"], str) or not value["file"].strip():
            self.report(here + ("file",), "expected a file path")
            return None
        file_name = self.check(value["file"], here + ("file",), text)
        if file_name is None:
            return None
        secret_file = self.base / file_name
        try:
            content = read_regular_text(secret_file, SECRET_LIMIT).strip()
        except OSError as error:
            self.report(here + ("file",), f"cannot read secret file {secret_file}: {error.strerror}")
            return None
        except UnicodeDecodeError:
            self.report(here + ("file",), f"secret file {secret_file} is not UTF-8 text")
            return None
        if not content or "\n" in content:
            self.report(
                here + ("file",),
                f"secret file {secret_file} is {'empty' if not content else 'not one line'}",
                "put only the secret in it",
            )
            return None
        return Secret(content, f"file:{secret_file}")


def explain(model: type[Section], error: ValidationError) -> list[tuple[KeyPath, str, str | None]]:
    """pydantic's errors as (key path inside the section, message, hint), in the words of the
    value parser that refused each value."""
    explained: list[tuple[KeyPath, str, str | None]] = []
    for detail in error.errors(include_url=False):
        where = file_path(model, tuple(detail["loc"]))
        cause = detail.get("ctx", {}).get("error")
        if isinstance(cause, Invalid):
            explained.append((where + cause.at, cause.message, cause.hint))
        elif detail["type"] == "missing":
            explained.append((where, "missing required key", missing_hint(model, detail["loc"])))
        elif detail["type"] in ("extra_forbidden", "invalid_key"):  # invalid: a key YAML read as a number
            holder = model_at(model, detail["loc"])
            known = suggest(where[-1], keys_of(holder) if holder else (), "known keys:")
            explained.append((where, f"unknown key {where[-1]!r}", known))
        elif detail["type"] in ("model_type", "dict_type", "model_attributes_type"):
            explained.append((where, wrong_type("a mapping", detail["input"]).message, None))
        elif detail["type"] == "list_type":
            explained.append((where, wrong_type("a list", detail["input"]).message, "write one item per '- ' line"))
        elif detail["type"] == "union_tag_invalid":
            tags = detail["ctx"]["expected_tags"].replace("'", "")
            explained.append((where + ("kind",), f"unknown rule kind {detail['ctx']['tag']!r}", f"one of: {tags}"))
        else:
            explained.append((where, detail["msg"], None))
    return explained
