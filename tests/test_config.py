"""Configuration loading: the example loads, and every kind of mistake is reported where it is."""

from __future__ import annotations

import json
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from monitord.builtin import PROFILES_DIR
from monitord.config import (
    LINE_FIELDS,
    SECTION_KEYS,
    ConfigError,
    CpeNotices,
    HistoryConfig,
    Problem,
    format_problems,
    load_config,
    parse_duration,
)
from monitord.config.rules import parse_rules
from monitord.config.schema import render as render_schema
from monitord.model import NodeRef, Secret
from monitord.phone import normalize_email, normalize_phone
from monitord.yamlload import YamlSyntaxError, load_yaml

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config" / "example.yaml"
EXAMPLE_ENV = {
    "MONITORD_SNMP_COMMUNITY": "public",
    "MONITORD_OLT_AUTH_KEY": "authpass123",
    "MONITORD_OLT_PRIV_KEY": "privpass123",
    "TWILIO_AUTH_TOKEN": "0123456789abcdef0123456789abcdef",
    "MONITORD_SMTP_PASSWORD": "smtp-pass",
    "MONITORD_RT_TOKEN": "rt-token",
}

BASE = """\
state_file: state.db
tracking_prefix: ARZ
timezone: Europe/Istanbul
http:
  listen: 127.0.0.1:0
  token: {file: secrets/api.token}
snmp:
  timeout: 2s
  retries: 1
  auths:
    v2:
      version: 2c
      community: {env: COMMUNITY}
    v3:
      version: 3
      user: monitor
      auth_protocol: sha
      auth_key: {file: secrets/auth.key}
      priv_protocol: aes
      priv_key: {env: PRIV_KEY}
polling:
  icmp_interval: 30s
  jitter: 0.1
topology:
  regions:
    - id: marmara
      name: Marmara
      exchanges:
        - id: sisli
          name: Şişli
          devices:
            - id: dslam-1
              kind: dslam
              address: 127.0.10.1
              snmp: v2
              profiles: [adsl, if-mib]
              cabinet: k12
            - id: olt-1
              kind: olt
              address: 127.0.10.2
              port: 1161
              snmp: v3
              profiles: [gpon-axos]
        - id: kadikoy
          name: Kadıköy
          devices:
            - id: cmts-1
              kind: cmts
              address: "::1"
              snmp: v2
            - id: rtr-1
              kind: router
              address: 127.0.10.4
subscribers:
  csv: subs.csv
  lines:
    - id: "900001"
      name: Eczane
      device: rtr-1
      phone: 0532 555 12 34
      email: eczane@example.com
rules:
  settle: 60s
notifiers:
  sms:
    account_sid: AC0123456789abcdef0123456789abcdef
    auth_token: {env: TWILIO_TOKEN}
    from: "+908501234567"
    quiet_hours: "22:00-08:00"
  email:
    host: 127.0.0.1
    username: noc
    password: {file: secrets/smtp.password}
    from: monitord@isp.example
    noc: [noc@isp.example]
  tickets:
    kind: rt
    url: http://127.0.0.1:8080
    queue: Network Outages
    token: {env: RT_TOKEN}
maintenance:
  - id: mw-1
    scope: [exchange:sisli, line:100001]
    start: 2026-12-01T01:00:00+03:00
    end: 2026-12-01T04:00:00+03:00
    reason: Yazılım güncellemesi
"""

CSV = """\
id,name,phone,email,language,device,port,mac,modem
100001,Ayşe Yılmaz,0532 123 45 67,ayse@example.com,tr,dslam-1,1,,
100002,John Smith,+44 7911 123456,,en,olt-1,7,,
100003,Ali Çelik,5441234567,,tr,cmts-1,,00:1A:2B:3C:4D:5E,127.0.11.1
"""

ENV = {
    "COMMUNITY": "public",
    "PRIV_KEY": "privpass123",
    "TWILIO_TOKEN": "twilio-token",
    "RT_TOKEN": "rt-token",
    "SHORT_KEY": "abc",
}
SECRET_FILES = {"api.token": "api-token\n", "auth.key": "authpass123\n", "smtp.password": "smtp-pass\n", "empty": "\n"}


def write(folder: Path, config: str = BASE, subscribers: str = CSV) -> Path:
    (folder / "secrets").mkdir(exist_ok=True)
    for name, content in SECRET_FILES.items():
        (folder / "secrets" / name).write_text(content)
    (folder / "subs.csv").write_text(subscribers, encoding="utf-8")
    path = folder / "config.yaml"
    path.write_text(config, encoding="utf-8")
    return path


def problems_of(path: Path, environ: dict[str, str] = ENV) -> tuple[Problem, ...]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ)
    return caught.value.problems


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


# --- the good cases --------------------------------------------------------------------------


def test_example_loads_with_the_documented_environment() -> None:
    config = load_config(EXAMPLE, EXAMPLE_ENV)
    topology = config.topology
    assert len(topology.regions) == 2 and len(topology.exchanges) == 3
    assert {d.kind for d in topology.devices.values()} == {"dslam", "olt", "cmts", "router"}
    csv_rows = (EXAMPLE.parent / "example-subscribers.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert len(topology.lines) == len(csv_rows) + 1
    assert all(re.fullmatch(r"\+\d{8,15}", line.phone) for line in topology.lines.values() if line.phone)
    assert {line.language for line in topology.lines.values()} == {"tr", "en"}
    assert topology.ancestors(NodeRef("line", "100001")) == (
        NodeRef("device", "sisli-dslam-01"),
        NodeRef("cabinet", "sisli-k12"),
        NodeRef("exchange", "sisli"),
        NodeRef("region", "ist-avrupa"),
    )
    assert config.snmp.auths["olt-v3"].priv_key == Secret("privpass123", "env:MONITORD_OLT_PRIV_KEY")
    assert config.notifiers.sms is not None and config.notifiers.sms.from_ == "+908501234567"
    assert config.maintenance[0].end - config.maintenance[0].start == 3 * 3600
    assert config.state_file == Path("/var/lib/monitord/monitord.db")


def test_example_names_every_environment_variable_it_needs() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    used = {name for line in text.splitlines() for name in re.findall(r"\{env: (\w+)\}", line.split("#")[0])}
    documented = set(re.findall(r"(\w+)=", text.split("# Check it with:")[1].split("\n\n")[0]))
    assert used == documented == set(EXAMPLE_ENV)


def test_base_loads_and_decodes_every_section(tmp_path: Path) -> None:
    config = load_config(write(tmp_path), ENV)
    assert config.source == tmp_path / "config.yaml"
    assert (config.http.host, config.http.port, config.http.token) == ("127.0.0.1", 0, Secret("api-token", "x"))
    assert config.snmp.auths["v3"].auth_key == Secret("authpass123", "x")
    assert config.polling.icmp_interval == 30 and config.polling.line_interval == 60
    assert config.topology.devices["olt-1"].port == 1161
    assert config.topology.devices["cmts-1"].address == "::1"
    assert config.topology.devices["rtr-1"].snmp is None
    lines = config.topology.lines
    assert lines["100001"].phone == "+905321234567"
    assert lines["100002"].phone == "+447911123456" and lines["100002"].language == "en"
    assert lines["100003"].mac == "00:1a:2b:3c:4d:5e" and lines["100003"].port is None
    assert lines["900001"].phone == "+905325551234"
    assert config.rules.settle == 60.0 and config.rules == parse_rules({"settle": "60s"})
    sms = config.notifiers.sms
    assert sms is not None and sms.quiet_hours is not None and str(sms.quiet_hours[0]) == "22:00:00"
    assert config.notifiers.email is not None and config.notifiers.email.port == 587
    assert config.notifiers.tickets is not None and config.notifiers.tickets.queue == "Network Outages"
    assert config.maintenance[0].scope == (NodeRef("exchange", "sisli"), NodeRef("line", "100001"))
    assert config.maintenance[0].grace == 900


# --- one mistake, one problem, in the right place --------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    old: str
    new: str
    key: str
    at: str | None  # the text on the reported line (first occurrence after the edit)
    fragment: str
    file: str = "config.yaml"


DEV0 = "topology.regions[0].exchanges[0].devices[0]"
DEV1 = "topology.regions[0].exchanges[0].devices[1]"
CMTS = "topology.regions[0].exchanges[1].devices[0]"
RTR = "topology.regions[0].exchanges[1].devices[1]"
NEW_DEVICE = "              address: 127.0.10.4\n"
LINE0 = "      email: eczane@example.com\n"

CASES = [
    Case(
        "unknown top-level key",
        "timezone: Europe/Istanbul\n",
        "timezone: Europe/Istanbul\ntimezon: UTC\n",
        "timezon",
        "timezon: UTC",
        "unknown key 'timezon' (hint: did you mean 'timezone'?)",
    ),
    Case(
        "unknown device key",
        "              cabinet: k12\n",
        "              cabinet: k12\n              adress: x\n",
        f"{DEV0}.adress",
        "adress: x",
        "did you mean 'address'?",
    ),
    Case(
        "duplicate YAML key",
        "  retries: 1\n",
        "  retries: 1\n  retries: 2 # again\n",
        "snmp.retries",
        "retries: 2 # again",
        "duplicate key 'retries'",
    ),
    Case(
        "YAML syntax error",
        "  retries: 1\n",
        "  retries: 1\n   timeout: 3s\n",
        "",
        "   timeout: 3s",
        "YAML syntax error: mapping values are not allowed",
    ),
    Case(
        "missing required top-level key", "tracking_prefix: ARZ\n", "", "tracking_prefix", "state_file:", "missing required key"
    ),
    Case("missing required device key", "              kind: router\n", "", f"{RTR}.kind", "- id: rtr-1", "missing required key"),
    Case("wrong type", "  retries: 1", "  retries: one", "snmp.retries", "retries: one", "expected an integer, got 'one'"),
    Case(
        "section of the wrong type",
        "http:\n  listen: 127.0.0.1:0\n  token: {file: secrets/api.token}\n",
        "http: 9177\n",
        "http",
        "http: 9177",
        "expected a mapping, got an integer (9177)",
    ),
    Case(
        "id that YAML made a number",
        '    - id: "900001"',
        "    - id: 900001",
        "subscribers.lines[0].id",
        "- id: 900001",
        "expected a string, got an integer (900001) (hint: put it in quotes)",
    ),
    Case(
        "line on an unknown device",
        "      device: rtr-1",
        "      device: rtr-9",
        "subscribers.lines[0].device",
        "device: rtr-9",
        "unknown device 'rtr-9'",
    ),
    Case(
        "device with an unknown snmp auth",
        "              snmp: v3",
        "              snmp: v4",
        f"{DEV1}.snmp",
        "snmp: v4",
        "unknown snmp auth 'v4'",
    ),
    Case(
        "unknown line profile",
        "[gpon-axos]",
        "[gpon-axis]",
        f"{DEV1}.profiles[0]",
        "[gpon-axis]",
        "unknown line profile 'gpon-axis' (hint: did you mean 'gpon-axos'?",
    ),
    Case(
        "profiles without snmp",
        NEW_DEVICE,
        NEW_DEVICE + "              profiles: [if-mib]\n",
        f"{RTR}.profiles",
        "profiles: [if-mib]",
        "line profiles are walked over SNMP",
    ),
    Case(
        "duplicate exchange id",
        "        - id: kadikoy",
        "        - id: sisli",
        "topology.regions[0].exchanges[1].id",
        "- id: sisli\n          name: Kadıköy",
        "duplicate exchange id 'sisli'",
    ),
    Case(
        "duplicate device id",
        NEW_DEVICE,
        NEW_DEVICE + "            - id: olt-1\n              kind: switch\n              address: 127.0.10.5\n",
        "topology.regions[0].exchanges[1].devices[2].id",
        "- id: olt-1\n              kind: switch",
        "duplicate device id 'olt-1'",
    ),
    Case(
        "duplicate device address",
        NEW_DEVICE,
        NEW_DEVICE + "            - id: sw-1\n              kind: switch\n              address: 127.0.010.4x\n",
        "topology.regions[0].exchanges[1].devices[2].address",
        "127.0.010.4x",
        "is not an IP address",
    ),
    Case(
        "same address twice",
        NEW_DEVICE,
        NEW_DEVICE + "            - id: sw-1\n              kind: switch\n              address: 0:0::1\n",
        "topology.regions[0].exchanges[1].devices[2].address",
        "0:0::1",
        "address ::1 is already used by device 'cmts-1'",
    ),
    Case(
        "cabinet in two exchanges",
        '              address: "::1"\n',
        '              address: "::1"\n              cabinet: k12\n',
        f"{CMTS}.cabinet",
        "cabinet: k12\n              snmp",
        "cabinet 'k12' is already in exchange 'sisli'",
    ),
    Case(
        "bad IP address",
        "address: 127.0.10.2",
        "address: 127.0.10.300",
        f"{DEV1}.address",
        "127.0.10.300",
        "'127.0.10.300' is not an IP address (hint: write an IPv4 or IPv6 literal",
    ),
    Case("bad port", "port: 1161", "port: 70000", f"{DEV1}.port", "port: 70000", "70000 is out of range"),
    Case(
        "bad listen address",
        "listen: 127.0.0.1:0",
        "listen: localhost:9177",
        "http.listen",
        "localhost",
        "'localhost' is not an IP address",
    ),
    Case(
        "unknown device kind",
        "kind: router",
        "kind: ruter",
        f"{RTR}.kind",
        "ruter",
        "'ruter' is not one of dslam, olt, cmts, router, switch (hint: did you mean 'router'?)",
    ),
    Case(
        "bad phone",
        "phone: 0532 555 12 34",
        "phone: 0532 555 12",
        "subscribers.lines[0].phone",
        "0532 555 12",
        "'0532 555 12' is not a phone number: a Turkish number starting with 0 has 11 digits, not 9",
    ),
    Case(
        "bad e-mail",
        "eczane@example.com",
        "eczane@example",
        "subscribers.lines[0].email",
        "eczane@example",
        "'eczane@example' is not an e-mail address",
    ),
    Case(
        "bad language",
        LINE0,
        LINE0 + "      language: de\n",
        "subscribers.lines[0].language",
        "language: de",
        "'de' is not one of tr, en",
    ),
    Case(
        "duplicate subscriber id",
        LINE0,
        LINE0 + '    - id: "900001"\n      name: İkinci\n      device: rtr-1\n',
        "subscribers.lines[1].id",
        '- id: "900001"\n      name: İkinci',
        "duplicate subscriber id '900001'",
    ),
    Case(
        "line on a cmts without mac",
        LINE0,
        LINE0 + '    - id: "900002"\n      name: Kablo\n      device: cmts-1\n',
        "subscribers.lines[1].mac",
        '- id: "900002"',
        "needs its modem's MAC address",
    ),
    Case(
        "bad duration",
        "timeout: 2s",
        "timeout: 5 minutes",
        "snmp.timeout",
        "5 minutes",
        "'5 minutes' is not a duration (hint: write 30s, 5m, 2h, 1d or 1h30m)",
    ),
    Case(
        "negative duration", "icmp_interval: 30s", "icmp_interval: -3s", "polling.icmp_interval", "-3s", "'-3s' is not a duration"
    ),
    Case("number out of range", "jitter: 0.1", "jitter: 1.5", "polling.jitter", "1.5", "1.5 is out of range"),
    Case(
        "bad timezone",
        "Europe/Istanbul",
        "Europe/Istambul",
        "timezone",
        "Istambul",
        "'Europe/Istambul' is not a time zone (hint: did you mean 'Europe/Istanbul'?)",
    ),
    Case(
        "bad tracking prefix",
        "tracking_prefix: ARZ",
        "tracking_prefix: arz-",
        "tracking_prefix",
        "arz-",
        "'arz-' is not a tracking prefix",
    ),
    Case(
        "bad quiet hours",
        '"22:00-08:00"',
        '"22:00-25:00"',
        "notifiers.sms.quiet_hours",
        "25:00",
        "'22:00-25:00' is not a time range",
    ),
    Case(
        "inline secret",
        "auth_token: {env: TWILIO_TOKEN}",
        "auth_token: abc123",
        "notifiers.sms.auth_token",
        "abc123",
        "secrets must not be written inline (hint: use {env: NAME} or {file: path})",
    ),
    Case(
        "secret with an extra key",
        "{env: RT_TOKEN}",
        "{env: RT_TOKEN, value: x}",
        "notifiers.tickets.token",
        "RT_TOKEN, value",
        "a secret has exactly one key",
    ),
    Case(
        "secret env var not set",
        "{env: RT_TOKEN}",
        "{env: RT_TOKEN_MISSING}",
        "notifiers.tickets.token.env",
        "RT_TOKEN_MISSING",
        "environment variable RT_TOKEN_MISSING is not set",
    ),
    Case(
        "secret file missing",
        "secrets/smtp.password",
        "secrets/nope.password",
        "notifiers.email.password.file",
        "nope.password",
        "secrets/nope.password: No such file or directory",
    ),
    Case(
        "secret file empty",
        "file: secrets/api.token",
        "file: secrets/empty",
        "http.token.file",
        "secrets/empty",
        "secrets/empty is empty",
    ),
    Case(
        "secret file is a folder",
        "file: secrets/api.token",
        "file: secrets",
        "http.token.file",
        "file: secrets}",
        "Is a directory",
    ),
    Case(
        "v2c auth with a v3 key",
        "      version: 2c\n",
        "      version: 2c\n      user: monitor\n",
        "snmp.auths.v2.user",
        "user: monitor\n      community",
        "user is for SNMPv3, this auth is version 2c",
    ),
    Case(
        "v3 auth missing its privacy key",
        "      priv_key: {env: PRIV_KEY}\n",
        "",
        "snmp.auths.v3.priv_key",
        "    v3:",
        "missing required key (priv_key and priv_protocol go together)",
    ),
    Case(
        "v3 bad protocol",
        "auth_protocol: sha",
        "auth_protocol: sha1",
        "snmp.auths.v3.auth_protocol",
        "sha1",
        "'sha1' is not one of md5, sha, sha256, sha512 (hint: did you mean 'sha'?)",
    ),
    Case(
        "v3 key too short",
        "{env: PRIV_KEY}",
        "{env: SHORT_KEY}",
        "snmp.auths.v3.priv_key",
        "SHORT_KEY",
        "env:SHORT_KEY is shorter than 8 characters",
    ),
    Case(
        "snmp version 2",
        "version: 2c",
        "version: 2",
        "snmp.auths.v2.version",
        "version: 2",
        "'2' is not one of 1, 2c, 3 (hint: did you mean '2c'?)",
    ),
    Case("bad sender number", '"+908501234567"', '"12345"', "notifiers.sms.from", '"12345"', "is not a phone number"),
    Case(
        "bad account sid",
        "AC0123456789abcdef0123456789abcdef",
        "AC123",
        "notifiers.sms.account_sid",
        "AC123",
        "'AC123' is not a Twilio account SID",
    ),
    Case(
        "starttls and tls",
        "    host: 127.0.0.1\n",
        "    host: 127.0.0.1\n    tls: true\n    starttls: true\n",
        "notifiers.email.starttls",
        "starttls: true",
        "starttls and tls cannot both be true",
    ),
    Case("rt without queue", "    queue: Network Outages\n", "", "notifiers.tickets.queue", "  tickets:", "missing required key"),
    Case(
        "unknown key in a nested section",
        '    quiet_hours: "22:00-08:00"\n',
        '    quiet_hours: "22:00-08:00"\n    retry:\n      max_backof: 2m\n',
        "notifiers.sms.retry.max_backof",
        "max_backof: 2m",
        "unknown key 'max_backof' (hint: did you mean 'max_backoff'?)",
    ),
    Case(
        "unknown key in an snmp auth",
        "      version: 2c\n",
        "      version: 2c\n      comunity: public\n",
        "snmp.auths.v2.comunity",
        "comunity: public",
        "unknown key 'comunity' (hint: did you mean 'community'?)",
    ),
    Case(
        "missing required secret",
        "    auth_token: {env: TWILIO_TOKEN}\n",
        "",
        "notifiers.sms.auth_token",
        "  sms:",
        "missing required key (hint: use {env: NAME} or {file: path})",
    ),
    Case(
        "a list that is not one",
        "    noc: [noc@isp.example]\n",
        "    noc: noc@isp.example\n",
        "notifiers.email.noc",
        "noc: noc@isp.example",
        "expected a list, got 'noc@isp.example' (hint: write one item per '- ' line)",
    ),
    Case(
        "bad url",
        "url: http://127.0.0.1:8080",
        "url: 127.0.0.1:8080",
        "notifiers.tickets.url",
        "url: 127",
        "'127.0.0.1:8080' is not an http(s) URL",
    ),
    Case(
        "cluster advertise not a URL",
        "  jitter: 0.1\n",
        "  jitter: 0.1\ncluster:\n  advertise: noc-1:9177\n",
        "cluster.advertise",
        "advertise: noc-1",
        "'noc-1:9177' is not an http(s) URL",
    ),
    Case(
        "rules not a mapping", "rules:\n  settle: 60s\n", "rules: [settle]\n", "rules", "rules:", "expected a mapping, got a list"
    ),
    Case(
        "maintenance ends before it starts",
        "end: 2026-12-01T04:00:00+03:00",
        "end: 2026-12-01T00:30:00+03:00",
        "maintenance[0].end",
        "end: 2026",
        "the window ends before it starts",
    ),
    Case(
        "maintenance scope names an unknown node",
        "exchange:sisli",
        "exchange:sisly",
        "maintenance[0].scope[0]",
        "scope:",
        "unknown exchange 'sisly' (hint: did you mean 'sisli'?)",
    ),
    Case(
        "maintenance scope with a bad level",
        "line:100001",
        "street:100001",
        "maintenance[0].scope[1]",
        "scope:",
        "'street' is not a topology level",
    ),
    Case(
        "duplicate maintenance window",
        "    reason: Yazılım güncellemesi\n",
        "    reason: Yazılım güncellemesi\n  - id: mw-1\n    scope: [device:olt-1]\n"
        "    start: 2026-12-02T01:00:00+03:00\n    end: 2026-12-02T02:00:00+03:00\n",
        "maintenance[1].id",
        "- id: mw-1\n    scope: [device",
        "duplicate maintenance window id 'mw-1'",
    ),
    Case(
        "missing subscriber CSV",
        "csv: subs.csv",
        "csv: nope.csv",
        "subscribers.csv",
        "nope.csv",
        "nope.csv: No such file or directory",
    ),
    Case(
        "CSV header missing a column",
        "language,device,port",
        "language,port",
        "header",
        "id,name",
        "missing column 'device'",
        file="subs.csv",
    ),
    Case(
        "CSV header with an unknown column",
        "phone,email",
        "phnoe,email",
        "header",
        "id,name",
        "unknown column 'phnoe' (hint: did you mean 'phone'?)",
        file="subs.csv",
    ),
    Case(
        "CSV bad phone",
        "+44 7911 123456",
        "+44 20",
        "phone",
        "100002",
        "'+44 20' is not a phone number: an international number has 8 to 15 digits, not 4",
        file="subs.csv",
    ),
    Case(
        "CSV row with too many fields",
        "127.0.11.1",
        "127.0.11.1,extra",
        "",
        "100003",
        "row has 10 fields, the header has 9",
        file="subs.csv",
    ),
    Case(
        "CSV duplicate id", "100002,John", "100001,John", "id", "100001,John", "duplicate subscriber id '100001'", file="subs.csv"
    ),
    Case(
        "CSV two lines on one port",
        "en,olt-1,7",
        "en,dslam-1,1",
        "port",
        "100002",
        "port 1 on 'dslam-1' is taken by subscriber '100001'",
        file="subs.csv",
    ),
    Case(
        "metrics ticket link without the tracking number",
        "polling:\n  icmp_interval: 30s",
        "metrics:\n  ticket_link: https://rt.example/Search/Simple.html\npolling:\n  icmp_interval: 30s",
        "metrics.ticket_link",
        "ticket_link:",
        "ticket_link has no {tracking}",
    ),
    Case(
        "history metric no profile reads",
        "polling:\n  icmp_interval: 30s",
        "history:\n  metrics: [snr_margin_down_db, snr_margn_down_db]\npolling:\n  icmp_interval: 30s",
        "history.metrics[1]",
        "metrics:",
        "no line profile reads 'snr_margn_down_db' (hint: did you mean 'snr_margin_down_db'?)",
    ),
    Case(
        "history 5-minute roll-ups kept too long",
        "polling:\n  icmp_interval: 30s",
        "history:\n  five_minutes: 400d\npolling:\n  icmp_interval: 30s",
        "history.five_minutes",
        "five_minutes:",
        "'400d' is longer than allowed (hint: use 1d to 90d)",
    ),
    Case("CSV bad MAC", "00:1A:2B:3C:4D:5E", "00:1A:2B:3C:4D", "mac", "100003", "is not a MAC address", file="subs.csv"),
    Case("CSV unknown device", "tr,cmts-1", "tr,cmts-9", "device", "100003", "unknown device 'cmts-9'", file="subs.csv"),
    Case("CSV missing name", "100002,John Smith", "100002,", "name", "100002", "missing required value", file="subs.csv"),
    Case("CSV line on a dslam without port", "dslam-1,1,,", "dslam-1,,,", "port", "100001", "needs its port", file="subs.csv"),
    Case(
        "CSV line on an olt without port or serial",
        "olt-1,7,,",
        "olt-1,,,",
        "port",
        "100002",
        "needs its port or its ONU's serial",
        file="subs.csv",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_one_mistake_gives_one_problem_at_its_place(tmp_path: Path, case: Case) -> None:
    original = CSV if case.file == "subs.csv" else BASE
    assert original.count(case.old) == 1, "the edit must be unambiguous"
    edited = original.replace(case.old, case.new)
    path = write(tmp_path, edited if case.file == "config.yaml" else BASE, edited if case.file == "subs.csv" else CSV)
    problems = problems_of(path)
    assert len(problems) == 1, "\n".join(map(str, problems))
    [problem] = problems
    assert problem.file == str(tmp_path / case.file)
    assert problem.key == case.key
    assert problem.line == (None if case.at is None else line_of(edited, case.at))
    assert case.fragment in str(problem)


def test_there_are_at_least_30_distinct_mistakes() -> None:
    assert len({(case.key, case.fragment) for case in CASES}) == len(CASES) >= 30


def test_keys_and_sections_of_the_wrong_kind_in_model_checked_sections(tmp_path: Path) -> None:
    edited = BASE.replace("  jitter: 0.1\n", "  jitter: 0.1\n  5: fast\n").replace("  auths:\n", "  auths: [v2]\n  auths_:\n")
    problems = [str(p) for p in problems_of(write(tmp_path, edited))]
    config = tmp_path / "config.yaml"
    keys = ", ".join(field for field in SECTION_KEYS["polling"])
    assert f"{config}:{line_of(edited, '5: fast')}: polling[5]: unknown key 5 (hint: known keys: {keys})" in problems
    assert f"{config}:{line_of(edited, 'auths: [v2]')}: snmp.auths: expected a mapping, got a list" in problems


def test_problem_reads_like_a_compiler_error() -> None:
    problem = Problem("config.yaml", 42, "topology.regions[0].address", "'10.0.0.300' is not an IP address", "fix it")
    assert str(problem) == "config.yaml:42: topology.regions[0].address: '10.0.0.300' is not an IP address (hint: fix it)"
    assert str(Problem("subs.csv", None, "", "is not UTF-8 text")) == "subs.csv: is not UTF-8 text"


def test_every_problem_in_a_file_is_reported(tmp_path: Path) -> None:
    config = (
        BASE.replace("timezone: Europe/Istanbul", "timezone: Mars/Olympus")
        .replace("address: 127.0.10.2", "address: 10.0.0.300")
        .replace("      device: rtr-1", "      device: rtr-9")
        .replace("{env: RT_TOKEN}", "hunter2")
        .replace("exchange:sisli", "exchange:nowhere")
    )
    subscribers = CSV.replace("0532 123 45 67", "call me").replace("dslam-1,1", "dslam-1,x")
    path = write(tmp_path, config, subscribers)
    problems = problems_of(path)
    assert [(Path(p.file).name, p.key) for p in problems] == [
        ("config.yaml", "timezone"),
        ("config.yaml", f"{DEV1}.address"),
        ("config.yaml", "subscribers.lines[0].device"),
        ("subs.csv", "phone"),
        ("subs.csv", "port"),
        ("config.yaml", "notifiers.tickets.token"),
        ("config.yaml", "maintenance[0].scope[0]"),
    ]
    with pytest.raises(ConfigError) as caught:
        load_config(path, ENV)
    text = format_problems(caught.value)
    assert text.splitlines()[:-1] == [str(p) for p in problems]
    assert text.endswith("7 problems found")


def test_secret_values_never_appear_in_problems(tmp_path: Path) -> None:
    secret = "Zebra-7731-gizli"
    path = write(
        tmp_path,
        BASE.replace("auth_protocol: sha", "auth_protocol: sha1")  # beside the file secret
        .replace("version: 2c", "version: 2")  # beside the env secret
        .replace("file: secrets/api.token", "file: secrets/short.token")
        .replace("{env: TWILIO_TOKEN}", secret)  # inline
        .replace("{env: RT_TOKEN}", f"{{env: {secret}}}")  # the value as a name
        .replace("{env: PRIV_KEY}", f"{{env: PRIV_KEY, value: {secret}}}")
        .replace("{file: secrets/smtp.password}", f"{{file: secrets/smtp.password, {secret}: 1}}"),
    )
    (tmp_path / "secrets" / "auth.key").write_text(secret + "\n")
    (tmp_path / "secrets" / "short.token").write_text(f"\n{secret}\n{secret}\n")
    problems = problems_of(path, ENV | {"COMMUNITY": secret})
    assert [p.key for p in problems] == [
        "http.token.file",
        "snmp.auths.v2.version",
        "snmp.auths.v3.auth_protocol",
        "snmp.auths.v3.priv_key",
        "notifiers.sms.auth_token",
        "notifiers.email.password",
        "notifiers.tickets.token.env",
    ]
    with pytest.raises(ConfigError) as caught:
        load_config(path, ENV | {"COMMUNITY": secret})
    assert secret not in format_problems(caught.value)
    assert secret not in repr(caught.value.problems)


def test_csv_from_a_spreadsheet(tmp_path: Path) -> None:
    """A byte order mark, quoted commas and a cell spanning two lines keep line numbers right."""
    rows = CSV.replace("100002,John Smith,+44 7911 123456", '100002,"Smith, John\nJr.",+44').replace("5441234567", "544")
    path = write(tmp_path, BASE, "\ufeff" + rows)
    assert [(p.line, p.key) for p in problems_of(path)] == [
        (line_of(rows, "100002"), "phone"),
        (line_of(rows, "100003"), "phone"),
    ]
    path = write(tmp_path, BASE, "\ufeff" + rows.replace(",544,", ",5441234567,").replace(",+44,", ",+44 7911 123456,"))
    assert load_config(path, ENV).topology.lines["100002"].name == "Smith, John\nJr."


FLAGGED_CSV = """\
id,name,phone,email,language,device,port,mac,modem,sms_opt_out,prefer_email
100001,Ayşe Yılmaz,0532 123 45 67,ayse@example.com,tr,dslam-1,1,,,EVET,
100002,John Smith,+44 7911 123456,john@example.com,en,olt-1,7,,,no,Yes
100003,Ali Çelik,5441234567,,tr,cmts-1,,00:1A:2B:3C:4D:5E,127.0.11.1,HAYIR,1
"""


def test_opt_out_and_email_preference_columns_are_optional(tmp_path: Path) -> None:
    inline = BASE.replace(
        "      email: eczane@example.com\n",
        "      email: eczane@example.com\n      sms_opt_out: true\n      prefer_email: hayır\n",
    )
    lines = load_config(write(tmp_path, inline, FLAGGED_CSV), ENV).topology.lines
    assert {i: (line.sms_opt_out, line.prefer_email) for i, line in lines.items()} == {
        "100001": (True, False),
        "100002": (False, True),
        "100003": (False, True),
        "900001": (True, False),
    }
    plain = load_config(write(tmp_path), ENV).topology.lines
    assert not any(line.sms_opt_out or line.prefer_email for line in plain.values())


def test_a_bad_yes_no_value_is_named_with_its_place(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        BASE.replace("      device: rtr-1\n", "      device: rtr-1\n      prefer_email: sometimes\n"),
        FLAGGED_CSV.replace(",no,Yes", ",maybe,Yes"),
    )
    hint = "(hint: write yes/no, true/false, 1/0 or evet/hayır; empty means no)"
    assert [str(p) for p in problems_of(path)] == [
        f"{path}:{line_of(BASE, 'device: rtr-1') + 1}: subscribers.lines[0].prefer_email: 'sometimes' is not yes or no {hint}",
        f"{tmp_path / 'subs.csv'}:3: sms_opt_out: 'maybe' is not yes or no {hint}",
    ]


def test_csv_that_is_not_text_or_not_csv(tmp_path: Path) -> None:
    path = write(tmp_path)
    (tmp_path / "subs.csv").write_bytes(CSV.encode() + "100004,Şule,,,tr,rtr-1,,,\n".encode("iso-8859-9"))
    assert [str(p) for p in problems_of(path)] == [f"{tmp_path / 'subs.csv'}:5: is not UTF-8 text (hint: save it as CSV UTF-8)"]
    (tmp_path / "subs.csv").write_text(CSV + '100004,"' + "x" * 200_000 + '",,,tr,rtr-1,,,\n')
    [problem] = problems_of(path)
    assert (problem.line, problem.message) == (5, "CSV syntax error: field larger than field limit (131072)")


def test_maintenance_of_an_unknown_subscriber_line(tmp_path: Path) -> None:
    [problem] = problems_of(write(tmp_path, BASE.replace("line:100001", "line:100009")))
    assert (problem.key, problem.message) == ("maintenance[0].scope[1]", "unknown subscriber line '100009'")


def test_maintenance_grace_defaults_from_the_rules(tmp_path: Path) -> None:
    config = BASE.replace("  settle: 60s\n", "  settle: 60s\n  maintenance_grace: 30m\n").replace(
        "    reason: Yazılım güncellemesi\n",
        "    reason: Yazılım güncellemesi\n  - id: mw-2\n    scope: [device:olt-1]\n"
        "    start: 2026-12-02T01:00:00\n    end: 2026-12-02T02:00:00\n    grace: 0s\n",
    )
    first, second = load_config(write(tmp_path, config), ENV).maintenance
    assert (first.grace, second.grace) == (1800, 0)
    assert second.start == first.start + 86400  # no offset: read in the configured time zone (+03:00)


def test_walk_and_job_budgets_default_and_can_be_set(tmp_path: Path) -> None:
    config = load_config(write(tmp_path), ENV)
    assert (config.snmp.walk_timeout, config.snmp.walk_max_requests, config.polling.job_timeout) == (30, 5000, None)
    assert config.job_timeout == 30 + 3 * 2 * (1 + 1)
    edited = BASE.replace("  retries: 1\n", "  retries: 1\n  walk_timeout: 10s\n  walk_max_requests: 800\n")
    config = load_config(write(tmp_path, edited.replace("  jitter: 0.1\n", "  jitter: 0.1\n  job_timeout: 1m\n")), ENV)
    assert (config.snmp.walk_timeout, config.snmp.walk_max_requests, config.job_timeout) == (10, 800, 60)
    [problem] = problems_of(write(tmp_path, edited.replace("walk_max_requests: 800", "walk_max_requests: 0")))
    assert problem.key == "snmp.walk_max_requests" and "0 is out of range" in str(problem)


def test_problems_found_in_order_of_checking_sections(tmp_path: Path) -> None:
    path = write(tmp_path, "- just\n- a list\n")
    assert [str(p) for p in problems_of(path)] == [f"{path}:1: expected a mapping, got a list"]
    path.write_text("")
    assert "the file is empty" in str(problems_of(path)[0])


def test_unreadable_config(tmp_path: Path) -> None:
    [problem] = problems_of(tmp_path / "missing.yaml")
    assert problem.file == str(tmp_path / "missing.yaml") and "No such file or directory" in problem.message
    (tmp_path / "latin1.yaml").write_bytes("timezone: İstanbul".encode("iso-8859-9"))
    assert "not UTF-8" in str(problems_of(tmp_path / "latin1.yaml")[0])


def test_profiles_dir_adds_profiles(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "zyxel-ies.yaml").write_text("name: zyxel-ies\nextends: adsl\n")
    config = BASE.replace("[gpon-axos]", "[gpon-axos, zyxel-ies]")
    assert problems_of(write(tmp_path, config))[0].message == "unknown line profile 'zyxel-ies'"
    loaded = load_config(write(tmp_path, "profiles_dir: profiles\n" + config), ENV)
    assert loaded.topology.devices["olt-1"].profiles == ("gpon-axos", "zyxel-ies")
    assert loaded.profiles_dir == tmp_path / "profiles"
    assert loaded.profiles["zyxel-ies"].columns() == loaded.profiles["adsl"].columns()


def test_a_broken_profile_is_a_problem_of_the_config(tmp_path: Path) -> None:
    """Profiles are read once, by load_config: `check` shows their problems, the daemon uses the result."""
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "zyxel-ies.yaml").write_text("name: zyxel-ies\nextends: adsl\nextends: vdsl2\n")
    [problem] = problems_of(write(tmp_path, "profiles_dir: profiles\n" + BASE))
    assert (problem.key, problem.line) == ("profiles_dir", 1)
    assert f"{tmp_path / 'profiles' / 'zyxel-ies.yaml'}:3: duplicate key 'extends' (first given on line 2)" in problem.message


def test_every_profile_shipped_in_the_package_is_accepted(tmp_path: Path) -> None:
    shipped = sorted(path.stem for path in PROFILES_DIR.glob("*.yaml"))
    names = shipped or ["adsl"]
    loaded = load_config(write(tmp_path, BASE.replace("[adsl, if-mib]", f"[{', '.join(names)}]")), ENV)
    assert loaded.topology.devices["dslam-1"].profiles == tuple(names)


def test_yaml_anchors_merge_without_false_duplicates(tmp_path: Path) -> None:
    config = BASE.replace(
        "            - id: olt-1\n              kind: olt\n",
        "            - &olt\n              id: olt-1\n              kind: olt\n",
    ).replace(NEW_DEVICE, NEW_DEVICE + "            - <<: *olt\n              id: olt-2\n              address: 127.0.10.9\n")
    loaded = load_config(write(tmp_path, config), ENV)
    assert loaded.topology.devices["olt-2"].profiles == ("gpon-axos",)
    assert loaded.topology.devices["olt-2"].exchange == "kadikoy"


# --- the YAML loader -------------------------------------------------------------------------


def test_yaml_lines_of_deep_paths() -> None:
    doc = load_yaml(BASE)
    path = ("topology", "regions", 0, "exchanges", 1, "devices", 1, "address")
    assert doc.lines[path] == line_of(BASE, "address: 127.0.10.4")
    assert doc.line(path[:-1] + ("missing",)) == line_of(BASE, "- id: rtr-1")
    assert doc.lines[("subscribers", "lines", 0)] == line_of(BASE, '- id: "900001"')


def test_yaml_duplicates_and_syntax_errors() -> None:
    doc = load_yaml("a:\n  b: 1\n  c: 2\n  b: 3\n")
    assert doc.data == {"a": {"b": 3, "c": 2}}
    assert [(d.path, d.line, d.first_line) for d in doc.duplicates] == [(("a", "b"), 4, 2)]
    with pytest.raises(YamlSyntaxError) as caught:
        load_yaml("a: [1, 2\nb: 3\n")
    assert caught.value.line == 2 and "from line 1" in caught.value.message
    with pytest.raises(YamlSyntaxError, match="refers to itself"):
        load_yaml("a: &x [*x]\n")
    with pytest.raises(YamlSyntaxError, match="single document"):
        load_yaml("a: 1\n---\nb: 2\n")


# --- size ------------------------------------------------------------------------------------


def test_100000_subscribers_load_quickly(tmp_path: Path) -> None:
    rng = random.Random(7)
    formats = ("0532 {a} {b} {c}", "532{a}{b}{c}", "+90 (532) {a}-{b}-{c}", "90532{a}{b}{c}", "")
    rows = ["id,name,phone,email,language,device,port,mac,modem"]
    for n in range(100_000):
        a, b, c = f"{n // 10000:03d}", f"{n // 100 % 100:02d}", f"{n % 100:02d}"
        number_text = rng.choice(formats).format(a=a, b=b, c=c)
        device, port = ("dslam-1", n + 1) if n % 2 else ("olt-1", n + 1)
        rows.append(
            f"{100_001 + n},Abone {n},{number_text},abone{n}@example.com.tr,{rng.choice('tr en'.split())}," f"{device},{port},,"
        )
    (tmp_path / "big.csv").write_text("\n".join(rows) + "\n")
    path = write(tmp_path, BASE.replace("csv: subs.csv", "csv: big.csv"))
    started = time.process_time()  # CPU, not wall: other work on the machine does not count
    config = load_config(path, ENV)
    elapsed = time.process_time() - started
    assert len(config.topology.lines) == 100_001
    assert config.topology.lines["200000"].port == 100_000
    # A bound against a load that grows faster than the lines, not a benchmark: it took 10.1 CPU-s alone
    # and 11.7 in the suite on the slowest machine kind seen (2026-12-07), where the old bound of 10 failed
    assert elapsed < 15, f"{elapsed:.1f} CPU-s"


# --- pure checks -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "written, e164",
    [
        ("0532 123 45 67", "+905321234567"),
        ("5321234567", "+905321234567"),
        ("+90 (532) 123-45-67", "+905321234567"),
        ("905321234567", "+905321234567"),
        ("0090 532 123 45 67", "+905321234567"),
        ("(0532) 123 45 67", "+905321234567"),
        ("0212 555 12 34", "+902125551234"),
        ("+90 312 444 55 66", "+903124445566"),
        ("0850 123 45 67", "+908501234567"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+1 (415) 555-0100", "+14155550100"),
        ("  +49.151.23456789 ", "+4915123456789"),
    ],
)
def test_phone_numbers_normalised(written: str, e164: str) -> None:
    assert normalize_phone(written) == e164


@pytest.mark.parametrize(
    "written, reason",
    [
        ("", "is empty"),
        ("call me", "only digits"),
        ("0532 123 45", "11 digits, not 9"),
        ("532 123 45 6", "10 digits after 0 or +90, not 9"),
        ("+90 532 123 45 678", "10 digits after 0 or +90, not 11"),
        ("0632 123 45 67", "no Turkish area or mobile code starts with 6"),
        ("+1234567", "8 to 15 digits, not 7"),
        ("+1234567890123456", "8 to 15 digits, not 16"),
        ("+0532 123 45 67", "never starts with 0"),
        ("٠٥٣٢١٢٣٤٥٦٧", "only digits"),
        ("+90 532 123 45 67 ext 2", "only digits"),
    ],
)
def test_bad_phone_numbers_say_why(written: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        normalize_phone(written)


@pytest.mark.parametrize(
    "written, expected",
    [
        ("ayse@example.com.tr", "ayse@example.com.tr"),
        (" Ayse.Yilmaz+noc@Example.COM ", "Ayse.Yilmaz+noc@example.com"),
        ("no-at-sign.example.com", None),
        ("two@@example.com", None),
        ("a b@example.com", None),
        ("ayse@localhost", None),
        ("ayse@-example.com", None),
        ("ayse.@example.com", None),
        ("ayse@example.c", None),
    ],
)
def test_email_check(written: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(ValueError):
            normalize_email(written)
    else:
        assert normalize_email(written) == expected


@pytest.mark.parametrize(
    "written, seconds",
    [
        ("30s", 30),
        ("5m", 300),
        ("2h", 7200),
        ("1d", 86400),
        ("1h30m", 5400),
        ("250ms", 0.25),
        (90, 90),
        (1.5, 1.5),
    ],
)
def test_durations(written: Any, seconds: float) -> None:
    assert parse_duration(written) == seconds


# --- the schema for editors ------------------------------------------------------------------


def _schema() -> dict[str, Any]:
    return json.loads((REPO / "config" / "schema.json").read_text(encoding="utf-8"))


def _schema_sections(schema: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """Every object in the schema that lists properties, keyed like SECTION_KEYS."""
    found: dict[str, tuple[str, ...]] = {}

    def resolve(node: dict[str, Any]) -> dict[str, Any] | None:
        ref = node.get("$ref")
        if ref == "#/$defs/secret":
            return None
        return schema["$defs"][ref.rsplit("/", 1)[1]] if ref else node

    def walk(node: dict[str, Any] | None, path: str) -> None:
        if node is None:
            return
        if "properties" in node:
            found[path] = tuple(node["properties"])
            for key, child in node["properties"].items():
                walk(resolve(child), f"{path}.{key}" if path else key)
        if isinstance(node.get("items"), dict):
            walk(resolve(node["items"]), path + "[]")
        if isinstance(node.get("additionalProperties"), dict):
            walk(resolve(node["additionalProperties"]), path + ".*")

    walk(schema, "")
    return found


def test_schema_documents_exactly_the_keys_the_loader_accepts() -> None:
    schema = _schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    documented = {path: set(keys) for path, keys in _schema_sections(schema).items()}
    accepted = {path: set(keys) for path, keys in SECTION_KEYS.items()}
    assert documented == accepted
    assert set(schema["$defs"]["secret"]["properties"]) == {"env", "file"}
    assert set(SECTION_KEYS["subscribers.lines[]"]) == set(LINE_FIELDS)


def test_the_committed_schema_is_the_one_the_section_models_generate() -> None:
    """Regenerate with `python -m monitord.config.schema > config/schema.json`."""
    assert (REPO / "config" / "schema.json").read_text(encoding="utf-8") == render_schema()


def test_example_uses_only_keys_the_schema_documents() -> None:
    sections = _schema_sections(_schema())
    data = load_yaml(EXAMPLE.read_text(encoding="utf-8")).data
    seen: set[str] = set()

    def walk(value: Any, path: str) -> None:
        if isinstance(value, list):
            for item in value:
                walk(item, path + "[]")
        elif isinstance(value, dict) and path in sections:
            seen.add(path)
            assert set(value) <= set(sections[path]), path
            for key, child in value.items():
                walk(child, f"{path}.{key}" if path else key)
        elif isinstance(value, dict) and path.endswith(".auths"):
            for child in value.values():
                walk(child, path + ".*")

    walk(data, "")
    assert seen == set(sections)


def test_rules_section_problems_carry_file_and_line(tmp_path):
    """`rules:` is merged over the bundled defaults; its problems still come out with the config's line."""
    source = Path(__file__).resolve().parents[1] / "config" / "example.yaml"
    text = source.read_text(encoding="utf-8")
    assert "\n  settle: 60s\n" in text
    bad = text.replace("\n  settle: 60s\n", "\n  settle: soon\n", 1)
    target = tmp_path / "example.yaml"
    target.write_text(bad, encoding="utf-8")
    for extra in source.parent.glob("example-*.csv"):
        (tmp_path / extra.name).write_text(extra.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(target, environ=EXAMPLE_ENV)
    [problem] = [p for p in raised.value.problems if p.key.startswith("rules")]
    assert problem.key == "rules.settle"
    assert problem.line == bad.splitlines().index("  settle: soon") + 1


def test_who_hears_of_a_silent_modem_is_configured_and_checked(tmp_path: Path) -> None:
    """notifiers.cpe: defaults (customer told, no ticket, no NOC e-mail), overrides, and a bad value at its line."""
    assert load_config(write(tmp_path), ENV).notifiers.cpe == CpeNotices(customers=True, ticket=False, noc=False)
    text = BASE.replace("  tickets:\n", "  cpe:\n    customers: false\n    noc: true\n  tickets:\n")
    assert load_config(write(tmp_path, text), ENV).notifiers.cpe == CpeNotices(customers=False, ticket=False, noc=True)
    bad = BASE.replace("  tickets:\n", "  cpe:\n    ticket: maybe\n    nock: true\n  tickets:\n")
    found = {(p.line, p.key) for p in problems_of(write(tmp_path, bad))}
    assert found == {(line_of(bad, "ticket: maybe"), "notifiers.cpe.ticket"), (line_of(bad, "nock"), "notifiers.cpe.nock")}


def test_an_onu_line_may_name_its_serial_instead_of_a_port(tmp_path: Path) -> None:
    """OLTs that index ONUs by serial number (ufiber-onu): the line's optional `serial` column is
    its key there, unique per device like a port."""
    rows = CSV.replace(
        "id,name,phone,email,language,device,port,mac,modem\n", "id,name,phone,email,language,device,port,mac,modem,serial\n"
    )
    rows = (
        rows.replace(",en,olt-1,7,,\n", ",en,olt-1,,,,UBNT20731888\n")
        .replace("127.0.11.1\n", "127.0.11.1,\n")
        .replace(",tr,dslam-1,1,,\n", ",tr,dslam-1,1,,,\n")
    )
    line = load_config(write(tmp_path, BASE, rows), ENV).topology.lines["100002"]
    assert (line.port, line.serial) == (None, "UBNT20731888")


def test_history_defaults_and_a_band_metric(tmp_path: Path) -> None:
    assert load_config(write(tmp_path), ENV).history == HistoryConfig()
    edited = BASE.replace(
        "polling:\n  icmp_interval: 30s",
        "history:\n  hourly: 30d\n  metrics: [snr_margin_ds1_db, rate_down_bps, rate_down_bps]\npolling:\n  icmp_interval: 30s",
    )
    history = load_config(write(tmp_path, edited), ENV).history
    assert (history.hourly, history.metrics) == (30 * 86400.0, ("snr_margin_ds1_db", "rate_down_bps"))  # a VDSL2 band's, once
