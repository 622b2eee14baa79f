"""Message texts from files: the built-in `<language>.yaml` files, then the operator's.

The operator's `templates_dir` holds `tr.yaml` and/or `en.yaml` with only the texts they change
(the rest stay built in). Every text is checked where it is written (file:line): a template
monitord does not render, a placeholder it gets no value for (notices/templates.py FIELDS), a
text that is not a string or `subject:`/`body:`. `sms_budget` then renders each SMS with the
inventory's costliest values (notices/sms_text.py) and refuses one over the segment budget
(`notifiers.sms.segments`; by default one segment where Turkish letters stay GSM-7, else two).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args
from zoneinfo import ZoneInfo

from monitord.builtin import TEMPLATES_DIR
from monitord.config.problems import ConfigError, Problem
from monitord.config.values import suggest
from monitord.files import CONFIG_LIMIT, read_regular_text
from monitord.model import Language, Topology
from monitord.stages import DEFAULT_TABLE, StageTable
from monitord.yamlload import YamlSyntaxError, load_yaml
from notices.segments import Encoding
from notices.sms_text import worst_cost, worst_values
from notices.templates import FIELDS, Template, TemplateError, Templates, placeholders, unknown_placeholders

LANGUAGES: tuple[Language, ...] = get_args(Language)


@dataclass(frozen=True, slots=True)
class TemplateSet:
    templates: Templates
    where: Mapping[tuple[str, Language], tuple[str, int | None]]  # (name, language) -> (file, line) it was written at


def read_templates(folder: Path | None) -> tuple[TemplateSet, list[Problem]]:
    """The built-in texts with those in `folder` over them, and every problem found in either."""
    texts: dict[str, dict[Language, Template]] = {name: {} for name in FIELDS}
    where: dict[tuple[str, Language], tuple[str, int | None]] = {}
    problems: list[Problem] = []
    for language in LANGUAGES:
        for base, required in ((TEMPLATES_DIR, True), (folder, False)):
            if base is None or (not required and not (base / f"{language}.yaml").exists()):
                continue
            _read_file(base / f"{language}.yaml", language, texts, where, problems)
    for name, by_language in texts.items():
        for language in LANGUAGES:
            if language not in by_language:
                problems.append(Problem(str(TEMPLATES_DIR / f"{language}.yaml"), None, name, "missing template"))
    return TemplateSet(texts, where), problems


def _read_file(
    file: Path,
    language: Language,
    texts: dict[str, dict[Language, Template]],
    where: dict[tuple[str, Language], tuple[str, int | None]],
    problems: list[Problem],
) -> None:
    try:
        doc = load_yaml(read_regular_text(file, CONFIG_LIMIT))
    except OSError as error:
        problems.append(Problem(str(file), None, "", f"cannot read the file: {error.strerror}"))
        return
    except UnicodeDecodeError:
        problems.append(Problem(str(file), None, "", "is not UTF-8 text"))
        return
    except YamlSyntaxError as error:
        problems.append(Problem(str(file), error.line, "", f"YAML syntax error: {error.message}"))
        return
    if not isinstance(doc.data, dict):
        problems.append(Problem(str(file), None, "", "expected a mapping of template names to texts"))
        return
    for duplicate in doc.duplicates:
        problems.append(Problem(str(file), duplicate.line, str(duplicate.path[-1]), str(duplicate)))
    for name, value in doc.data.items():
        line = doc.line((name,))
        if name not in FIELDS:
            hint = suggest(str(name), sorted(FIELDS), "known templates:")
            problems.append(Problem(str(file), line, str(name), "unknown template", hint))
            continue
        template = _template(value)
        if template is None:
            problems.append(
                Problem(
                    str(file), line, name, "expected a text, or a mapping with subject and body", "see monitord/builtin/templates"
                )
            )
            continue
        unknown = unknown_placeholders(name, template)
        if unknown:
            known = ", ".join("{" + f + "}" for f in sorted(FIELDS[name]))
            wrong = ", ".join("{" + u + "}" for u in dict.fromkeys(unknown))
            problems.append(
                Problem(
                    str(file),
                    _line_of(doc.lines, name, unknown[0], template),
                    name,
                    f"unknown placeholder {wrong}",
                    f"known: {known}",
                )
            )
            continue
        texts[name][language] = template
        where[(name, language)] = (str(file), line)


def _template(value: Any) -> Template | None:
    if isinstance(value, str):
        return Template("", value)
    if isinstance(value, dict) and set(value) <= {"subject", "body"} and "body" in value:
        subject, body = value.get("subject", ""), value["body"]
        if isinstance(subject, str) and isinstance(body, str):
            return Template(subject, body)
    return None


def _line_of(lines: Mapping[Any, int], name: str, placeholder: str, template: Template) -> int | None:
    """The line a placeholder is on: its key's, plus the lines before it in a block body."""
    if placeholder in placeholders(template.subject) and (name, "subject") in lines:
        return lines[(name, "subject")]
    if (name, "body") in lines:
        before = template.body.split("{" + placeholder + "}")[0].count("\n")
        return lines[(name, "body")] + (1 + before if "\n" in template.body else 0)
    return lines.get((name,))


@functools.cache
def builtin_templates() -> Templates:
    """The texts shipped with monitord (tests, and a config without `templates_dir`)."""
    found, problems = read_templates(None)
    if problems:
        raise ConfigError(problems)
    return found.templates


@dataclass(frozen=True, slots=True)
class SmsBudget:
    encoding: Encoding
    transliterate: bool
    segments: int | None  # None: the default (`limit`)

    @property
    def limit(self) -> int:
        """As configured; by default one segment where Turkish letters stay GSM-7 (the Turkish
        tables, or transliterated), else two: the built-in texts need two in UCS-2."""
        if self.segments is not None:
            return self.segments
        return 1 if self.encoding == "gsm7-turkish" or (self.encoding == "gsm7" and self.transliterate) else 2


def sms_budget(
    texts: TemplateSet, topology: Topology, prefix: str, tz: ZoneInfo, budget: SmsBudget, stages: StageTable = DEFAULT_TABLE
) -> list[Problem]:
    """Each SMS template whose costliest rendering exceeds the budget, at the file and line it was
    written; `sms.stage` with the name of each stage that sends it."""
    sms = [name for name in FIELDS if name.startswith("sms.")]
    areas = [r.name for r in topology.regions.values()] + [e.name for e in topology.exchanges.values()]
    used = {p for name in sms for t in texts.templates[name].values() for p in placeholders(t.body)}
    names = [line.name for line in topology.lines.values()] if "name" in used else []
    problems: list[Problem] = []
    for language in LANGUAGES:
        texting = [stage.name(language) for stage in stages.stages if stage.sms]
        candidates = worst_values(areas, names, prefix, tz, language, texting)
        for name in sorted(sms):
            file, line = texts.where.get((name, language), (str(TEMPLATES_DIR / f"{language}.yaml"), None))
            try:
                worst = worst_cost(name, language, texts.templates, candidates, budget.encoding, budget.transliterate)
            except TemplateError as error:
                problems.append(Problem(file, line, name, str(error)))
                continue
            if worst.cost.segments <= budget.limit:
                continue
            message = (
                f"costs {worst.cost.segments} SMS segments ({worst.cost.units} {worst.cost.scheme} units) at its longest, "
                f"over the budget of {budget.limit}: {worst.text!r}"
            )
            hint = "shorten the text, or set notifiers.sms.segments"
            if budget.encoding == "gsm7" and not budget.transliterate:
                hint = (
                    "Turkish letters force UCS-2 (70 a segment): set notifiers.sms.transliterate: true, "
                    "use a gateway with the Turkish tables, or set notifiers.sms.segments"
                )
            problems.append(Problem(file, line, name, message, hint))
    return problems
