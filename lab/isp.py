"""A small made-up Turkish ISP on loopback addresses: config, subscribers, secrets, SNMP data.

`build_sample_isp` writes everything monitord needs into one folder and returns a `LabISP` that
says where each device and line lives, so tests and the demo can start agents (lab.snmp),
change values and silence addresses (lab.faults). The same seed always gives the same ISP.

Addresses: devices get `<base>.1`, `<base>.2`, ...; the modems of the k-th device with lines get
`127.X.(Y+10+k).<port or modem index>` for base `127.X.Y`. Labs that run at the same time need
bases that do not overlap this way (e.g. 127.0.10 and 127.1.10).
"""

from __future__ import annotations

import csv
import io
import random
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from lab.snmp import AgentInfo, CableModem, DslPort, cmts_records, dslam_records, render
from monitord.console_auth import hash_password
from monitord.yamlload import load_yaml

REGIONS: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    (
        "ist-avrupa",
        "İstanbul Avrupa",
        (("sisli", "Şişli"), ("besiktas", "Beşiktaş"), ("bakirkoy", "Bakırköy"), ("kagithane", "Kağıthane")),
    ),
    (
        "ankara",
        "Ankara",
        (("cankaya", "Çankaya"), ("kecioren", "Keçiören"), ("yenimahalle", "Yenimahalle"), ("etimesgut", "Etimesgut")),
    ),
    ("izmir", "İzmir", (("konak", "Konak"), ("karsiyaka", "Karşıyaka"), ("bornova", "Bornova"), ("buca", "Buca"))),
    (
        "ist-anadolu",
        "İstanbul Anadolu",
        (("kadikoy", "Kadıköy"), ("uskudar", "Üsküdar"), ("atasehir", "Ataşehir"), ("umraniye", "Ümraniye")),
    ),
)


def exchange_name(place: str) -> str:
    return f"{place} Santrali"


def area_names() -> list[str]:
    """Every region and exchange name the lab's inventory can hold: what customer texts call the area."""
    return [region for _, region, _ in REGIONS] + [exchange_name(place) for _, _, places in REGIONS for _, place in places]


def inventory_names(repo: Path = Path(__file__).resolve().parent.parent) -> tuple[list[str], list[str]]:
    """(areas, subscriber names): the lab's, and those of config/example.yaml and its CSV, for
    the SMS segment tests and bench/sms_segments.py."""
    example = yaml.safe_load((repo / "config" / "example.yaml").read_text(encoding="utf-8"))
    regions = example["topology"]["regions"]
    areas = area_names() + [r["name"] for r in regions] + [e["name"] for r in regions for e in r["exchanges"]]
    rows = csv.DictReader((repo / "config" / "example-subscribers.csv").read_text(encoding="utf-8").splitlines())
    names = [row["name"] for row in rows] + [line["name"] for line in example["subscribers"]["lines"]]
    names.append(max(FIRST_NAMES, key=len) + " " + max(SURNAMES, key=len))
    return areas, names


FIRST_NAMES = (
    "Mehmet",
    "Ayşe",
    "Fatma",
    "Mustafa",
    "Emine",
    "Ahmet",
    "Hatice",
    "Ali",
    "Zeynep",
    "Hüseyin",
    "Elif",
    "Hasan",
    "İbrahim",
    "Merve",
    "İsmail",
    "Şükrü",
    "Gülşen",
    "Özlem",
    "Çağrı",
    "Ümit",
    "Büşra",
    "Yusuf",
    "Ömer",
    "Esra",
    "Murat",
    "Derya",
    "Kübra",
    "Burak",
    "Seda",
    "Tuğba",
    "Onur",
    "Gökhan",
    "Serkan",
    "Sibel",
    "Deniz",
    "Cem",
    "Ebru",
    "Oğuz",
    "Nilüfer",
    "Barış",
)
SURNAMES = (
    "Yılmaz",
    "Kaya",
    "Demir",
    "Şahin",
    "Çelik",
    "Yıldız",
    "Yıldırım",
    "Öztürk",
    "Aydın",
    "Özdemir",
    "Arslan",
    "Doğan",
    "Kılıç",
    "Aslan",
    "Çetin",
    "Kara",
    "Koç",
    "Kurt",
    "Özkan",
    "Şimşek",
    "Polat",
    "Güneş",
    "Aktaş",
    "Korkmaz",
    "Uçar",
    "Bulut",
    "Tekin",
    "Ünal",
    "Karaca",
)
ENGLISH_FIRST = (
    "James",
    "Oliver",
    "Emily",
    "Sarah",
    "Daniel",
    "Grace",
    "Thomas",
    "Charlotte",
    "Michael",
    "Sophie",
    "David",
    "Hannah",
    "Lucas",
    "Anna",
)
ENGLISH_SURNAMES = (
    "Smith",
    "Walker",
    "Thompson",
    "Wright",
    "Evans",
    "Hughes",
    "Green",
    "Baker",
    "Clarke",
    "Turner",
    "Morgan",
    "Fischer",
)
MOBILE_PREFIXES = (
    501,
    505,
    506,
    507,
    530,
    531,
    532,
    533,
    534,
    535,
    536,
    537,
    538,
    539,
    541,
    542,
    543,
    544,
    545,
    546,
    547,
    548,
    549,
    551,
    552,
    553,
    554,
    555,
    559,
)
SPEED_PROFILES = (8_192_000, 16_384_000, 24_576_000)
ASCII = str.maketrans("çğıİöşüÇĞÖŞÜ", "cgiiosuCGOSU")
CSV_HEADER = ("id", "name", "phone", "email", "language", "device", "port", "mac", "modem")


@dataclass(frozen=True, slots=True)
class LabDevice:
    id: str
    kind: str  # dslam cmts router
    region: str
    exchange: str
    address: str
    port: int  # SNMP UDP port
    community: str | None  # None: answers ICMP only
    data_file: Path | None  # <data_dir>/<address>/<community>.snmprec
    profiles: tuple[str, ...] = ()
    cabinet: str | None = None


@dataclass(frozen=True, slots=True)
class LabLine:
    id: str
    device: str
    row: int  # ifIndex on a DSLAM, docsIfCmtsCmStatusIndex on a CMTS
    modem: str  # loopback address answering ICMP for the subscriber's modem
    port: int | None = None
    mac: str | None = None


@dataclass(frozen=True, slots=True)
class LabISP:
    root: Path
    config: Path
    subscribers: Path
    data_dir: Path  # SNMP data, one folder per agent address
    devices: Mapping[str, LabDevice]
    lines: Mapping[str, LabLine]

    def addresses_under(self, level: str, node_id: str) -> tuple[str, ...]:
        """Every device and modem address at or below a topology node, for silencing an outage.

        `level` is region, exchange, cabinet, device or line, as in model.NodeRef.
        """
        if level == "line":
            return (self.lines[node_id].modem,)
        if level not in ("region", "exchange", "cabinet", "device"):
            raise ValueError(f"unknown level {level!r}")
        field = "id" if level == "device" else level
        devices = [d for d in self.devices.values() if getattr(d, field) == node_id]
        if not devices:
            raise KeyError(f"{level}:{node_id}")
        ids = {d.id for d in devices}
        return tuple(d.address for d in devices) + tuple(line.modem for line in self.lines.values() if line.device in ids)


def build_sample_isp(
    root: Path,
    *,
    regions: int = 2,
    exchanges_per_region: int = 2,
    dslams_per_exchange: int = 1,
    ports_per_dslam: int = 24,
    with_cmts: bool = True,
    modems_per_cmts: int = 20,
    with_routers: bool = True,
    base: str = "127.0.10",
    snmp_port: int = 1161,
    seed: int = 0,
    extra: Mapping[str, Any] | None = None,
) -> LabISP:
    """Write config.yaml, subscribers.csv, secrets/ and snmp/ under `root` (created if needed).

    Defaults: 2 regions x 2 exchanges, one 24-port DSLAM each (85% of ports sold), one CMTS with
    20 modems, one ICMP-only uplink router per exchange: 100 subscribers, 5 SNMP agents.
    `extra` is merged into the config (nested dicts merge, other values replace).
    """
    if not 1 <= regions <= len(REGIONS) or not 1 <= exchanges_per_region <= len(REGIONS[0][2]):
        raise ValueError(f"at most {len(REGIONS)} regions of {len(REGIONS[0][2])} exchanges")
    if not 1 <= ports_per_dslam <= 254 or not 0 <= modems_per_cmts <= 250:
        raise ValueError("ports_per_dslam must be 1..254 and modems_per_cmts 0..250")
    octets = base.split(".")
    if len(octets) != 3 or octets[0] != "127":
        raise ValueError(f"base must be three octets inside 127/8, like 127.0.10: {base!r}")
    rng = random.Random(seed)
    now = time.time()
    root.mkdir(parents=True, exist_ok=True)
    data_dir = root / "snmp"
    shutil.rmtree(data_dir, ignore_errors=True)
    communities = {"dslam": f"ro-{rng.getrandbits(48):012x}", "cmts": f"ro-{rng.getrandbits(48):012x}"}
    people = _People(rng)

    devices: dict[str, LabDevice] = {}
    lines: dict[str, LabLine] = {}
    rows: list[dict[str, str]] = []
    topology: list[dict[str, Any]] = []
    routers: list[tuple[list[dict[str, Any]], str, str]] = []

    def address() -> str:
        host = len(devices) + 1
        if host > 254:
            raise ValueError("more than 254 devices")
        return f"{base}.{host}"

    def modem_block() -> str:
        third = int(octets[2]) + 10 + sum(1 for d in devices.values() if d.kind != "router")
        if third > 255:
            raise ValueError(f"no room for modem addresses above {base}")
        return f"127.{octets[1]}.{third}"

    cmts_exchange = (0, min(1, exchanges_per_region - 1))
    for r, (region_id, region_name, exchange_names) in enumerate(REGIONS[:regions]):
        exchanges: list[dict[str, Any]] = []
        for e, (exchange_id, place) in enumerate(exchange_names[:exchanges_per_region]):
            entries: list[dict[str, Any]] = []
            for k in range(1, dslams_per_exchange + 1):
                block = modem_block()
                device = LabDevice(
                    f"{exchange_id}-dslam-{k:02d}",
                    "dslam",
                    region_id,
                    exchange_id,
                    address(),
                    snmp_port,
                    communities["dslam"],
                    None,
                    ("adsl", "if-mib"),
                    f"{exchange_id}-k{k:02d}",
                )
                ports = _dsl_ports(rng, ports_per_dslam, people, device, block, lines, rows)
                device = _write_agent(
                    data_dir,
                    device,
                    dslam_records(
                        AgentInfo(
                            device.id,
                            "IES-5005 ADSL2+ DSLAM (monitord lab)",
                            "1.3.6.1.4.1.890.1.5.13.7",
                            f"{place} Santrali, saha dolabı {k}",
                            now - rng.uniform(3, 200) * 86400,
                        ),
                        ports,
                        now,
                    ),
                )
                devices[device.id] = device
                entries.append(_device_entry(device, "dslam-v2"))
            if with_cmts and (r, e) == cmts_exchange:
                block = modem_block()
                device = LabDevice(
                    f"{exchange_id}-cmts-01",
                    "cmts",
                    region_id,
                    exchange_id,
                    address(),
                    snmp_port,
                    communities["cmts"],
                    None,
                    ("docsis-cmts",),
                )
                modems = _modems(rng, modems_per_cmts, people, device, block, lines, rows)
                device = _write_agent(
                    data_dir,
                    device,
                    cmts_records(
                        AgentInfo(
                            device.id,
                            "CMTS_V08.02 DOCSIS 3.0 CMTS (monitord lab)",
                            "1.3.6.1.4.1.4998.2.2",
                            f"{place} Santrali",
                            now - rng.uniform(3, 200) * 86400,
                        ),
                        4,
                        modems,
                        now,
                    ),
                )
                devices[device.id] = device
                entries.append(_device_entry(device, "cmts-v2"))
            exchanges.append({"id": exchange_id, "name": exchange_name(place), "devices": entries})
            if with_routers:
                routers.append((entries, region_id, exchange_id))
        topology.append({"id": region_id, "name": region_name, "exchanges": exchanges})
    for entries, region_id, exchange_id in routers:
        device = LabDevice(f"{exchange_id}-rtr-01", "router", region_id, exchange_id, address(), snmp_port, None, None)
        devices[device.id] = device
        entries.append({"id": device.id, "kind": "router", "address": device.address})

    auths = {
        f"{kind}-v2": {"version": "2c", "community": write_secret(root, f"{kind}.community", community)}
        for kind, community in communities.items()
        if any(d.kind == kind for d in devices.values())
    }
    config = {
        "state_file": "state/monitord.db",
        "tracking_prefix": "ARZ",
        "timezone": "Europe/Istanbul",
        "http": {"listen": "127.0.0.1:0", "token": write_secret(root, "api.token", f"{rng.getrandbits(128):032x}")},
        "snmp": {"timeout": "1s", "retries": 1, "auths": auths},
        "polling": {
            "icmp_interval": "10s",
            "line_interval": "15s",
            "optical_interval": "1h",
            "jitter": 0.1,
            "max_in_flight": 64,
            "per_device_in_flight": 2,
        },
        "topology": {"regions": topology},
        "subscribers": {"csv": "subscribers.csv"},
        "console": {"users": [console_user(root, rng, name, role) for name, role in CONSOLE_USERS]},
    }
    _dump(root / "config.yaml", _merge(config, extra or {}))
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_HEADER, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    (root / "subscribers.csv").write_text(out.getvalue(), encoding="utf-8")
    return LabISP(root, root / "config.yaml", root / "subscribers.csv", data_dir, devices, lines)


def write_config(root: Path, notifiers: Mapping[str, Any] | None = None, **overrides: Any) -> Path:
    """Add the notifiers section (pointing at the local peers) and any top-level overrides
    to an existing lab config.yaml; nested dicts merge, other values replace."""
    path = root / "config.yaml"
    config = load_yaml(path.read_text(encoding="utf-8")).data
    changes: dict[str, Any] = dict(overrides)
    if notifiers is not None:
        changes["notifiers"] = notifiers
    _dump(path, _merge(config, changes))
    return path


def write_secret(root: Path, name: str, value: str) -> dict[str, str]:
    """Store a secret under root/secrets (mode 600) and return the config reference to it."""
    folder = root / "secrets"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / name
    path.write_text(value + "\n", encoding="utf-8")
    path.chmod(0o600)
    return {"file": f"secrets/{name}"}


CONSOLE_USERS = (("noc", "noc"), ("helpdesk", "helpdesk"))  # the lab's web console users: name, role


def console_user(root: Path, rng: random.Random, name: str, role: str) -> dict[str, str]:
    """A console user of the lab: its password kept in root/secrets/console-<name> for the demo
    and the tests to sign in with, only its hash in the config."""
    password = f"{name}-{rng.getrandbits(48):012x}"
    write_secret(root, f"console-{name}", password)
    return {"name": name, "role": role, "password": hash_password(password, salt=rng.randbytes(16))}  # same seed, same file


def console_password(root: Path, name: str) -> str:
    return (root / "secrets" / f"console-{name}").read_text(encoding="utf-8").strip()


# --- generation -------------------------------------------------------------------------------


class _People:
    """Subscribers: ~20% English-speaking, mobiles written in the many ways people write them."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.count = 0

    def next(self, device: str, port: str, mac: str, modem: str) -> dict[str, str]:
        rng = self.rng
        self.count += 1
        english = rng.random() < 0.2
        first = rng.choice(ENGLISH_FIRST if english else FIRST_NAMES)
        last = rng.choice(ENGLISH_SURNAMES if english else SURNAMES)
        email = ""
        if english or rng.random() < 0.35:
            handle = f"{first}.{last}".translate(ASCII).lower()
            email = f"{handle}{rng.randrange(100) if rng.random() < 0.4 else ''}@{rng.choice(('example.com', 'example.net', 'example.org'))}"
        phone = _mobile(rng) if not email or rng.random() < 0.93 else ""
        return {
            "id": f"S{100000 + self.count}",
            "name": f"{first} {last}",
            "phone": phone,
            "email": email,
            "language": "en" if english else "tr",
            "device": device,
            "port": port,
            "mac": mac,
            "modem": modem,
        }


def _mobile(rng: random.Random) -> str:
    prefix, number = rng.choice(MOBILE_PREFIXES), f"{rng.randrange(10**7):07d}"
    a, b, c = number[:3], number[3:5], number[5:]
    return rng.choice(
        (
            f"0{prefix} {a} {b} {c}",
            f"{prefix}{number}",
            f"+90 {prefix} {a} {b} {c}",
            f"+90{prefix}{number}",
            f"0 ({prefix}) {a} {b} {c}",
            f"0{prefix}{number}",
        )
    )


def _dsl_ports(
    rng: random.Random,
    count: int,
    people: _People,
    device: LabDevice,
    block: str,
    lines: dict[str, LabLine],
    rows: list[dict[str, str]],
) -> list[DslPort]:
    sold = set(rng.sample(range(1, count + 1), round(count * 0.85)))
    ports = []
    for index in range(1, count + 1):
        if index not in sold:
            ports.append(DslPort(index, "", up=False))
            continue
        row = people.next(device.id, str(index), "", f"{block}.{index}")
        lines[row["id"]] = LabLine(row["id"], device.id, index, row["modem"], port=index)
        rows.append(row)
        attenuation = rng.uniform(12, 48)
        attainable = int(max(3e6, 26e6 - attenuation * 4.2e5) * rng.uniform(0.93, 1.05)) // 1000 * 1000
        rate = min(rng.choice(SPEED_PROFILES), attainable * 9 // 10 // 32000 * 32000)
        busy = rng.uniform(0.01, 0.3)
        ports.append(
            DslPort(
                index,
                row["id"],
                up=True,
                snr_margin_down_db=round(rng.uniform(8.5, 15.0), 1),
                snr_margin_up_db=round(rng.uniform(9.0, 18.0), 1),
                attenuation_down_db=round(attenuation, 1),
                attenuation_up_db=round(attenuation * 0.55, 1),
                attainable_rate_down_bps=attainable,
                attainable_rate_up_bps=rng.randrange(1_000_000, 1_300_000, 4000),
                rate_down_bps=rate,
                rate_up_bps=1_024_000,
                in_octets_per_s=round(1_024_000 / 8 * busy, 1),
                out_octets_per_s=round(rate / 8 * busy, 1),
                resyncs=rng.randrange(1, 6),
                errored_seconds=rng.randrange(0, 40),
            )
        )
    return ports


def _modems(
    rng: random.Random,
    count: int,
    people: _People,
    device: LabDevice,
    block: str,
    lines: dict[str, LabLine],
    rows: list[dict[str, str]],
) -> list[CableModem]:
    """`count` provisioned modems plus two the CMTS sees that are not in the inventory."""
    modems = []
    for index in range(1, count + 3):
        mac = "02:4c:41:{:02x}:{:02x}:{:02x}".format(*rng.randbytes(2), index)
        modem = CableModem(
            index,
            mac,
            f"{block}.{index}",
            3 + index % 4,
            us_rx_power_dbmv=round(rng.uniform(-3, 3), 1),
            us_snr_db=round(rng.uniform(33, 39), 1),
        )
        modems.append(modem)
        if index <= count:
            row = people.next(device.id, "", mac, modem.address)
            lines[row["id"]] = LabLine(row["id"], device.id, index, modem.address, mac=mac)
            rows.append(row)
    return modems


def _write_agent(data_dir: Path, device: LabDevice, records: Mapping[str, tuple[str, str]]) -> LabDevice:
    folder = data_dir / device.address
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{device.community}.snmprec"
    path.write_text(render(records), encoding="ascii")
    return replace(device, data_file=path)


def _device_entry(device: LabDevice, auth: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": device.id,
        "kind": device.kind,
        "address": device.address,
        "port": device.port,
        "snmp": auth,
        "profiles": list(device.profiles),
    }
    if device.cabinet:
        entry["cabinet"] = device.cabinet
    return entry


def _merge(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        old = merged.get(key)
        merged[key] = _merge(old, value) if isinstance(old, Mapping) and isinstance(value, Mapping) else value
    return merged


def _dump(path: Path, config: Mapping[str, Any]) -> None:
    path.write_text(yaml.safe_dump(dict(config), allow_unicode=True, sort_keys=False), encoding="utf-8")
