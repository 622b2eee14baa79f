"""The flat sections: http, snmp, polling, metrics, retention and traps."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from monitord import duration as durations
from monitord.config import layout
from monitord.config.decoder import Decoder
from monitord.config.model import (
    HttpConfig,
    MetricsConfig,
    PollingConfig,
    RetentionConfig,
    SnmpSettings,
    TrapsConfig,
)
from monitord.config.values import (
    choice,
    default_of,
    duration,
    identifier,
    integer,
    positive_duration,
    text,
    wrong_type,
)
from monitord.model import Secret, SnmpAuth
from monitord.yamlload import KeyPath


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
    section = d.section(root, (), "snmp", "snmp")
    if section is None:
        return None, None
    before = len(d.problems)
    timeout = d.get(section, path, "timeout", duration(durations.TIMEOUT), default_of(SnmpSettings, "timeout"))
    retries = d.get(section, path, "retries", integer(0, 10), default_of(SnmpSettings, "retries"))
    walk_timeout = d.get(section, path, "walk_timeout", positive_duration, default_of(SnmpSettings, "walk_timeout"))
    walk_max_requests = d.get(
        section, path, "walk_max_requests", integer(1, 1_000_000), default_of(SnmpSettings, "walk_max_requests")
    )
    auths_path = path + ("auths",)
    raw_auths = {} if section.get("auths") is None else section["auths"]
    if not isinstance(raw_auths, dict):
        d.report(auths_path, wrong_type("a mapping of auth names", raw_auths).message)
        return None, None
    auths = {}
    for name, raw in raw_auths.items():
        auth = _snmp_auth(d, auths_path + (name,), name, raw)
        if auth is not None:
            auths[name] = auth
    if len(d.problems) > before:
        return None, set(raw_auths)
    return SnmpSettings(timeout, retries, auths, walk_timeout, walk_max_requests), set(raw_auths)


def _snmp_auth(d: Decoder, path: KeyPath, name: Any, raw: Any) -> SnmpAuth | None:
    before = len(d.problems)
    d.check(name, path, identifier)
    auth = d.mapping(raw, path, "snmp.auths.*")
    if auth is None:
        return None
    version = d.get(auth, path, "version", lambda v: choice(("1", "2c", "3"))(str(v) if isinstance(v, int) else v))
    if version in ("1", "2c"):
        for key in ("user", "auth_protocol", "auth_key", "priv_protocol", "priv_key"):
            if key in auth:
                d.report(path + (key,), f"{key} is for SNMPv3, this auth is version {version}")
        community = d.secret(auth, path, "community", required=True)
        return SnmpAuth(name, version, community=community) if len(d.problems) == before else None
    if version is None:
        return None
    if "community" in auth:
        d.report(path + ("community",), "community is for SNMP versions 1 and 2c", "v3 uses user, auth_key, priv_key")
    user = d.get(auth, path, "user", text)
    auth_protocol = d.get(auth, path, "auth_protocol", _lower(choice(("md5", "sha", "sha256", "sha512"))), None)
    priv_protocol = d.get(auth, path, "priv_protocol", _lower(choice(("des", "aes", "aes256"))), None)
    auth_key = _v3_key(d, auth, path, "auth_key", "auth_protocol")
    priv_key = _v3_key(d, auth, path, "priv_key", "priv_protocol")
    if ("priv_protocol" in auth or "priv_key" in auth) and "auth_protocol" not in auth:
        d.report(path + ("auth_protocol",), "privacy needs authentication", "add auth_protocol and auth_key")
    if len(d.problems) > before:
        return None
    return SnmpAuth(
        name, "3", user=user, auth_protocol=auth_protocol, auth_key=auth_key, priv_protocol=priv_protocol, priv_key=priv_key
    )


def _lower(check: Callable[[Any], str]) -> Callable[[Any], str]:
    return lambda value: check(value.lower() if isinstance(value, str) else value)


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
    return None if metrics is None else MetricsConfig(**metrics.model_dump())


def read_retention(d: Decoder, root: dict[Any, Any]) -> RetentionConfig | None:
    retention = d.validated(layout.Retention, root.get("retention"), ("retention",))
    return None if retention is None else RetentionConfig(**retention.model_dump())


def read_traps(d: Decoder, root: dict[Any, Any]) -> TrapsConfig | None:
    """None (no receiver) when the section is absent or at fault."""
    if root.get("traps") is None:
        return None
    traps = d.validated(layout.Traps, root["traps"], ("traps",))
    if traps is None:
        return None
    host, port = traps.listen
    return TrapsConfig(host, port, **traps.model_dump(exclude={"listen"}))
