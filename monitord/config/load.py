"""`load_config`: read the file, decode every section, cross-reference, and raise every problem."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from datetime import UTC
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from monitord.builtin import PROFILES_DIR
from monitord.config import layout
from monitord.config.cluster import read_cluster
from monitord.config.console import read_console
from monitord.config.decoder import Decoder
from monitord.config.inventory import Inventory, Known, read_topology
from monitord.config.maintenance import read_maintenance
from monitord.config.model import Config, TicketConfig
from monitord.config.notifiers import read_notifiers
from monitord.config.problems import ConfigError, Problem, format_problems
from monitord.config.rules import RulesConfigError, parse_rules
from monitord.config.sections import (
    read_history,
    read_http,
    read_metrics,
    read_polling,
    read_retention,
    read_snmp,
    read_traps,
)
from monitord.config.stages import read_stages
from monitord.config.subscribers import read_subscribers
from monitord.config.templates import SmsBudget, read_templates, sms_budget
from monitord.config.tracking import read_tracking
from monitord.config.values import default_of
from monitord.files import CONFIG_LIMIT, read_regular_text
from monitord.model import MaintenanceWindow, StateServer, Topology
from monitord.stages import StageTable
from monitord.yamlload import KeyPath, YamlSyntaxError, load_yaml
from probes.profile_files import ProfileError, load_profiles
from probes.profiles import Profile
from rules.config import RulesConfig


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """Load and check `path`; raise ConfigError listing every problem found.

    `environ` (default: the process environment) is where `{env: NAME}` secrets are read.
    """
    source = Path(path)
    file = str(source)
    try:
        doc = load_yaml(read_regular_text(source, CONFIG_LIMIT))
    except OSError as error:
        raise ConfigError([Problem(file, None, "", f"cannot read the file: {error.strerror}")]) from None
    except UnicodeDecodeError:
        raise ConfigError([Problem(file, None, "", "is not UTF-8 text")]) from None
    except YamlSyntaxError as error:
        raise ConfigError([Problem(file, error.line, "", f"YAML syntax error: {error.message}")]) from None
    decoder = Decoder(doc, file, source.parent, os.environ if environ is None else environ)
    for duplicate in doc.duplicates:
        decoder.report(
            duplicate.path,
            f"duplicate key {duplicate.path[-1]!r}",
            f"first given on line {duplicate.first_line}; YAML would silently keep only the last",
        )
    config = _decode(decoder, source)
    if config is None:
        raise ConfigError(decoder.problems)
    return config


def log_rejected(error: ConfigError) -> None:
    """A reload's refusal, problem by problem, for any role: the running config stays."""
    log = logging.getLogger("monitord")
    for problem in error.problems:
        log.error("reload rejected: %s", problem)
    log.error("reload rejected: %d problem(s); the running config stays in force", len(error.problems))


def load_or_report(path: str | Path) -> Config | None:
    """The checked config, or None once its problems are printed (to stderr): for commands."""
    try:
        return load_config(path)
    except ConfigError as error:
        print(format_problems(error), file=sys.stderr)
        return None


def _decode(d: Decoder, source: Path) -> Config | None:
    root = d.mapping(d.doc.data, (), layout.ConfigFile)
    if root is None:
        return None
    if not root:
        d.report((), "the file is empty", "start from config/example.yaml")
        return None
    state = _state(d, root)
    prefix = d.field(layout.ConfigFile, root, (), "tracking_prefix")
    zone_name = d.field(layout.ConfigFile, root, (), "timezone")
    profiles_dir = d.path(root, (), "profiles_dir", None)
    if profiles_dir is not None and not profiles_dir.is_dir():
        d.report(("profiles_dir",), f"{profiles_dir} is not a directory")
        profiles_dir = None
    templates_dir = d.path(root, (), "templates_dir", None)
    if templates_dir is not None and not templates_dir.is_dir():
        d.report(("templates_dir",), f"{templates_dir} is not a directory")
        templates_dir = None
    texts, text_problems = read_templates(templates_dir)
    d.problems += text_problems
    http = read_http(d, root)
    snmp, auth_names = read_snmp(d, root)
    polling = read_polling(d, root)
    metrics = read_metrics(d, root)
    retention = read_retention(d, root)
    traps = read_traps(d, root)
    cluster = read_cluster(d, root)
    tracking = read_tracking(d, root)
    console = read_console(d, root)
    stages = read_stages(d, root)
    profiles = _profiles(d, profiles_dir)
    history = read_history(d, root, profiles)
    inventory = Inventory()
    read_topology(d, root, Known(snmp, auth_names, profiles, profiles_dir), inventory)
    read_subscribers(d, root, inventory)
    rules = _rules(d, root.get("rules"))
    notifiers = read_notifiers(d, root, inventory.declared["region"])
    sms = notifiers.sms if notifiers else None
    if tracking and tracking.public_url and not (sms and sms.kind == "twilio"):
        d.report(
            ("tracking", "public_url"), "inbound SMS need Twilio", "set notifiers.sms (kind twilio): its auth_token signs them"
        )
    if sms and sms.confirm_after is not None and not (tracking and tracking.public_url):
        d.report(
            ("notifiers", "sms", "confirm_after"), "no answer could reach monitord", "set tracking.public_url (Twilio's webhook)"
        )
    if sms and sms.survey and sms.confirm_after is None:
        d.report(("notifiers", "sms", "survey"), 'the survey follows a "yes" to the repair question', "set confirm_after too")
    zone = ZoneInfo(zone_name) if zone_name else UTC
    grace = rules.maintenance_grace if rules else default_of(MaintenanceWindow, "grace")
    maintenance = read_maintenance(d, root, zone, inventory, grace)
    if (
        d.problems
        or rules is None
        or profiles is None
        or state is None
        or prefix is None
        or zone_name is None
        or http is None
        or snmp is None
        or polling is None
        or metrics is None
        or retention is None
        or history is None
        or notifiers is None
        or cluster is None
        or stages is None
    ):
        return None
    _stage_refs(d, notifiers.tickets, stages)
    if d.problems:
        return None
    topology = Topology(inventory.regions, inventory.exchanges, inventory.devices, inventory.lines)
    if notifiers.sms is not None:
        sms = notifiers.sms
        budget = SmsBudget(sms.encoding, sms.transliterate, sms.segments)
        d.problems += sms_budget(texts, topology, prefix, ZoneInfo(zone_name), budget, stages)
        if d.problems:
            return None
    return Config(
        source=source,
        state_file=state[0],
        state_server=state[1],
        tracking_prefix=prefix,
        timezone=zone_name,
        http=http,
        snmp=snmp,
        polling=polling,
        topology=topology,
        rules=rules,
        profiles=profiles,
        notifiers=notifiers,
        maintenance=maintenance,
        profiles_dir=profiles_dir,
        metrics=metrics,
        retention=retention,
        history=history,
        traps=traps,
        cluster=cluster,
        tracking=tracking,
        console=console,
        stages=stages,
        warnings=tuple(d.warnings),
        templates=texts.templates,
        templates_dir=templates_dir,
    )


def _stage_refs(d: Decoder, tickets: TicketConfig | None, stages: StageTable) -> None:
    """The stages `notifiers.tickets.stage_sync` and `dispatch` name are in `stages:`."""
    sync = tickets.stage_sync if tickets else None
    dispatch = tickets.dispatch if tickets else None
    named: list[tuple[KeyPath, str]] = (
        [] if dispatch is None else [(("notifiers", "tickets", "dispatch", "stage"), dispatch.stage)]
    )
    if sync is not None:
        path = ("notifiers", "tickets", "stage_sync")
        named += [(path + ("status", status), stage) for status, stage in sync.status.items()]
        named += [(path + ("owner",), sync.owner)] if sync.owner else []
    for where, stage in named:
        if stage not in stages.by_id:
            d.report(where, f"no stage {stage!r}", f"one of {', '.join(stages.by_id)} (stages:)")


def _state(d: Decoder, root: dict[Any, Any]) -> tuple[Path | None, StateServer | None] | None:
    """Where the state lives: `state_file` (a SQLite file) or `state` (a PostgreSQL database,
    its password in `state_password` or PGPASSFILE), exactly one of the two."""
    given = {key for key in ("state_file", "state") if root.get(key) is not None}
    if given == {"state_file", "state"}:
        d.report(
            ("state",), "state_file and state are both given", "keep one: state_file for a SQLite file, state for PostgreSQL"
        )
        return None
    if given == {"state"}:
        url = d.field(layout.ConfigFile, root, (), "state")
        refused = len(d.problems)
        password = d.secret(root, (), "state_password")
        return None if url is None or len(d.problems) > refused else (None, StateServer(url, password))
    if root.get("state_password") is not None:
        d.report(
            ("state_password",),
            "is only read with state (a PostgreSQL database)",
            "remove it, or give state instead of state_file",
        )
    if not given:
        missing = "missing required key" if "state_file" not in root else "needs a value"
        d.report(("state_file",), missing, "or state: postgresql://USER@HOST:PORT/DATABASE to keep the state in PostgreSQL")
        return None
    path = d.path(root, (), "state_file")
    return None if path is None else (path, None)


def _profiles(d: Decoder, profiles_dir: Path | None) -> Mapping[str, Profile] | None:
    """The built-in line profiles and the operator's, read once here for the daemon to use."""
    try:
        return load_profiles([PROFILES_DIR] + ([profiles_dir] if profiles_dir else []))
    except ProfileError as error:
        d.report(("profiles_dir",), str(error))
        return None


def _rules(d: Decoder, raw: Any) -> RulesConfig | None:
    """`rules:` over the bundled defaults (monitord/config/rules.py), each problem at its line."""
    try:
        return parse_rules(raw)
    except RulesConfigError as error:
        for key_path, message, hint in error.problems:
            d.report(("rules", *key_path), message, hint)
        return None
