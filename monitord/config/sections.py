"""The flat sections: http, snmp, polling, metrics, retention, history and traps."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from monitord.config import layout
from monitord.config.decoder import Decoder
from monitord.config.model import (
    HistoryConfig,
    HttpConfig,
    MetricsConfig,
    PollingConfig,
    RetentionConfig,
    SnmpSettings,
    TrapsConfig,
)
from monitord.config.problems import Invalid
from monitord.config.values import (
    default_of,
    identifier,
    snmp_version,
    suggest,
)
from monitord.model import Secret, SnmpAuth
from monitord.yamlload import KeyPath
from probes.profiles import Profile


def read_http(d: Decoder, root: dict[Any, Any]) -> HttpConfig | None:
    path = ("http",)
    raw = root.get("http")
    http = d.validated(layout.Http, raw, path)
    before = len(d.problems)
    token = d.secret(raw, path, "token") if isinstance(raw, dict) else None
    if http is None or len(d.problems) > before:
        return None
    host, port = http.listen or (default_of(HttpConfig, "host"), default_of(HttpConfig, "port"))
    if token is None and not ipaddress.ip_address(host).is_loopback:
        d.report(
            path + ("listen",),
            f"{host} is not a loopback address and no http.token is set: "
            "subscriber data and diagnosis would be open to the network",
            "set http.token, or listen on 127.0.0.1 and put /metrics on metrics.listen",
        )
    return HttpConfig(host, port, token)


def read_snmp(d: Decoder, root: dict[Any, Any]) -> tuple[SnmpSettings | None, set[str] | None]:
    """The settings, and the auth names declared (None if unknowable, so devices do not
    report a second problem for naming one)."""
    path = ("snmp",)
    raw = root.get("snmp")
    snmp = d.validated(layout.Snmp, raw, path)
    written = raw.get("auths") if isinstance(raw, dict) else None
    if not isinstance(written, dict):
        return (None if snmp is None else _settings(snmp, {})), (None if written is not None else set())
    before = len(d.problems)
    secrets = {name: _auth_rules(d, path + ("auths", name), name, auth) for name, auth in written.items()}
    names = set(map(str, written))  # a name YAML read as a number is reported, and still declared
    if snmp is None or len(d.problems) > before:
        return None, names
    auths = {name: _auth(name, auth, *secrets[name]) for name, auth in snmp.auths.items()}
    return _settings(snmp, auths), names


def _settings(snmp: layout.Snmp, auths: dict[str, SnmpAuth]) -> SnmpSettings:
    return SnmpSettings(snmp.timeout, snmp.retries, auths, snmp.walk_timeout, snmp.walk_max_requests)


def _auth_rules(d: Decoder, path: KeyPath, name: Any, auth: Any) -> tuple[Secret | None, Secret | None, Secret | None]:
    """The community or the v3 keys; which keys each version takes, and what goes together."""
    d.check(name, path, identifier)
    if not isinstance(auth, dict):
        return None, None, None
    try:
        version = snmp_version(auth.get("version"))
    except Invalid:
        return None, None, None
    if version in ("1", "2c"):
        for key in ("user", "auth_protocol", "auth_key", "priv_protocol", "priv_key"):
            if key in auth:
                d.report(path + (key,), f"{key} is for SNMPv3, this auth is version {version}")
        return d.secret(auth, path, "community", required=True), None, None
    if "community" in auth:
        d.report(path + ("community",), "community is for SNMP versions 1 and 2c", "v3 uses user, auth_key, priv_key")
    if auth.get("user") is None:
        d.report(path + ("user",), "missing required key" if "user" not in auth else "needs a value")
    auth_key = _v3_key(d, auth, path, "auth_key", "auth_protocol")
    priv_key = _v3_key(d, auth, path, "priv_key", "priv_protocol")
    if ("priv_protocol" in auth or "priv_key" in auth) and "auth_protocol" not in auth:
        d.report(path + ("auth_protocol",), "privacy needs authentication", "add auth_protocol and auth_key")
    return None, auth_key, priv_key


def _auth(
    name: str, auth: layout.SnmpAuth, community: Secret | None, auth_key: Secret | None, priv_key: Secret | None
) -> SnmpAuth:
    if auth.version in ("1", "2c"):
        return SnmpAuth(name, auth.version, community=community)
    return SnmpAuth(
        name,
        "3",
        user=auth.user,
        auth_protocol=auth.auth_protocol,
        auth_key=auth_key,
        priv_protocol=auth.priv_protocol,
        priv_key=priv_key,
    )


def _v3_key(d: Decoder, auth: dict[Any, Any], path: KeyPath, key: str, protocol: str) -> Secret | None:
    """A v3 key comes with its protocol, and net-snmp refuses passphrases under 8 characters."""
    if (key in auth) != (protocol in auth):
        missing = protocol if key in auth else key
        d.report(path + (missing,), f"missing required key ({key} and {protocol} go together)")
        return None
    secret = d.secret(auth, path, key)
    if secret is not None and len(secret.reveal()) < 8:
        d.report(path + (key,), f"{secret.source} is shorter than 8 characters", "SNMPv3 keys need at least 8")
        return None
    return secret


def read_polling(d: Decoder, root: dict[Any, Any]) -> PollingConfig | None:
    polling = d.validated(layout.Polling, root.get("polling"), ("polling",))
    return None if polling is None else PollingConfig(**polling.model_dump())


def read_metrics(d: Decoder, root: dict[Any, Any]) -> MetricsConfig | None:
    metrics = d.validated(layout.Metrics, root.get("metrics"), ("metrics",))
    if metrics is not None and metrics.ticket_link is not None and "{tracking}" not in metrics.ticket_link:
        d.report(("metrics", "ticket_link"), "ticket_link has no {tracking}", "every incident would link to the same page")
        return None
    return None if metrics is None else MetricsConfig(**metrics.model_dump())


def read_retention(d: Decoder, root: dict[Any, Any]) -> RetentionConfig | None:
    retention = d.validated(layout.Retention, root.get("retention"), ("retention",))
    return None if retention is None else RetentionConfig(**retention.model_dump())


def read_history(d: Decoder, root: dict[Any, Any], profiles: Mapping[str, Profile] | None) -> HistoryConfig | None:
    """A metric no line profile reads would be kept as nothing: refused with the known ones."""
    history = d.validated(layout.History, root.get("history"), ("history",))
    if history is None:
        return None
    if profiles is not None:
        names = profile_metrics(profiles)
        read = re.compile("|".join(re.sub(r"\\\{\w+\\\}", r"\\w+", re.escape(name)) for name in names))
        for i, metric in enumerate(history.metrics):
            if not read.fullmatch(metric):
                d.report(("history", "metrics", i), f"no line profile reads {metric!r}", suggest(metric, sorted(names)))
                return None
    return HistoryConfig(**{**history.model_dump(), "metrics": tuple(dict.fromkeys(history.metrics))})


def profile_metrics(profiles: Mapping[str, Profile]) -> set[str]:
    """The metrics the line profiles name: their columns' (some with {label} placeholders) and aggregates'."""
    names = {column.name for profile in profiles.values() for column in profile.columns()}
    return names | {aggregate.name for profile in profiles.values() for aggregate in profile.aggregates}


def read_traps(d: Decoder, root: dict[Any, Any]) -> TrapsConfig | None:
    """None (no receiver) when the section is absent or at fault."""
    if root.get("traps") is None:
        return None
    traps = d.validated(layout.Traps, root["traps"], ("traps",))
    if traps is None:
        return None
    host, port = traps.listen
    return TrapsConfig(host, port, **traps.model_dump(exclude={"listen"}))
