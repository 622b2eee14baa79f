"""SNMP traps and informs: net-snmp's own `snmptrap` and `snmpinform` (v2c and v3) make the
sending device be rechecked at once, never change a state by themselves, and a flood of forged
or malformed datagrams is counted and dropped while polling keeps its schedule."""

from __future__ import annotations

import asyncio
import random
import re
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.isp import write_config
from monitord.config import ConfigError, load_config
from monitord.demo import until
from monitord.model import Device, NodeRef, Outcome, Sample, Secret, SnmpAuth, Topology
from probes import ber
from probes.profile_files import BUILTIN_DIR, ProfileError, load_profiles
from probes.scheduler import Job, Scheduler
from probes.traps import Limits, TrapReceiver, senders
from tests.blocks import own_base
from tests.ops_fixtures import daemons, short_dir, wait_async, worlds  # noqa: F401

LINK_DOWN, LINK_UP, COLD_START = "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.6.3.1.1.5.4", "1.3.6.1.6.3.1.1.5.1"
CARD_FAILED = "1.3.6.1.4.1.99999.2.1.7"  # a vendor alarm, declared in the test profile
DSLAM, OLT = "besiktas-dslam-01", "besiktas-olt-01"
COMMUNITY = DSLAM  # careless, but it must work (and not hide the device's name in logs)
V3 = ("-u", "noc-traps", "-l", "authPriv", "-a", "SHA", "-A", "authpass123", "-x", "AES", "-X", "privpass123")
GENEROUS = Limits(sender_rate=100.0, sender_burst=100, rate=1000.0, burst=1000)


def inventory(tmp_path: Path) -> tuple[Topology, dict]:
    """The DSLAM (v2c, at 127.0.0.1, with a vendor profile declaring an alarm) and the OLT (v3, at 127.0.0.2)."""
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / "vendor-dslam.yaml").write_text(
        f"name: vendor-dslam\nextends: adsl\ntraps:\n  - oid: {CARD_FAILED}\n    meaning: line card failed\n"
    )
    profiles = load_profiles([BUILTIN_DIR, folder])
    v2 = SnmpAuth("dslam-v2", "2c", community=Secret(COMMUNITY, "env:C"))
    v3 = SnmpAuth(
        "olt-v3",
        "3",
        user="noc-traps",
        auth_protocol="sha",
        auth_key=Secret("authpass123", "env:A"),
        priv_protocol="aes",
        priv_key=Secret("privpass123", "env:P"),
    )
    devices = {
        DSLAM: Device(DSLAM, "dslam", "besiktas", "127.0.0.1", v2, ("vendor-dslam",)),
        OLT: Device(OLT, "olt", "besiktas", "127.0.0.2", v3, ()),
    }
    return Topology({}, {}, devices, {}), profiles


@pytest.fixture
async def receiving(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[tuple[TrapReceiver, int, list[str]]]]]:
    opened: list[TrapReceiver] = []

    async def start(
        limits: Limits = GENEROUS, recheck: Callable[[str], None] | None = None
    ) -> tuple[TrapReceiver, int, list[str]]:
        topology, profiles = inventory(tmp_path)
        rechecked: list[str] = []
        receiver = TrapReceiver(senders(topology, profiles), limits, recheck or rechecked.append)
        opened.append(receiver)
        return receiver, await receiver.open("127.0.0.1", 0), rechecked

    yield start
    for receiver in opened:
        receiver.close()


async def run(*command: str) -> int:
    """The command's exit status; what it said on stderr is printed, for a failure's report."""
    process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, said = await process.communicate()
    if said:
        print(" ".join(command[:2]), "said:", said.decode(errors="replace"))
    assert process.returncode is not None
    return process.returncode


async def settled(receiver: TrapReceiver, seen: int) -> None:
    """Wait until the receiver has counted `seen` datagrams (snmptrap does not wait for them)."""
    await until(lambda: sum(receiver.received.values()) + sum(receiver.dropped.values()) >= seen, 5, f"{seen} datagrams")


async def test_net_snmp_traps_and_informs_recheck_the_sending_device(receiving) -> None:
    receiver, port, rechecked = await receiving()
    to = f"127.0.0.1:{port}"
    assert await run("snmptrap", "-v", "2c", "-c", COMMUNITY, to, "", LINK_DOWN, "1.3.6.1.2.1.2.2.1.1.7", "i", "7") == 0
    await settled(receiver, 1)
    assert rechecked == [DSLAM]
    # an inform waits for its Response: the exit status says it came (within 15 s, once: a resent
    # inform would be counted twice)
    assert await run("snmpinform", "-v", "2c", "-c", COMMUNITY, "-t", "15", "-r", "0", to, "", LINK_UP) == 0
    assert await run("snmptrap", "-v", "2c", "-c", COMMUNITY, to, "", CARD_FAILED) == 0
    await settled(receiver, 3)
    assert await run("snmptrap", "-v", "3", "--clientaddr=127.0.0.2", "-e", "0x80001f8880aabbccdd", *V3, to, "", COLD_START) == 0
    await settled(receiver, 4)
    assert await run("snmpinform", "-v", "3", "--clientaddr=127.0.0.2", "-t", "15", "-r", "0", *V3, to, "", LINK_DOWN) == 0
    assert rechecked == [DSLAM, DSLAM, DSLAM, OLT, OLT]
    assert receiver.received == {"linkDown": 2, "linkUp": 1, "line card failed": 1, "coldStart": 1}
    assert receiver.informs_answered == 1 and not receiver.dropped

    wrong_key = ("-u", "noc-traps", "-l", "authPriv", "-a", "SHA", "-A", "not-the-key", "-x", "AES", "-X", "privpass123")
    assert await run("snmptrap", "-v", "2c", "-c", "public", to, "", LINK_DOWN) == 0  # wrong community
    assert await run("snmptrap", "-v", "2c", "-c", COMMUNITY, to, "", "1.3.6.1.4.1.99999.2.1.8") == 0  # undeclared
    assert (
        await run("snmptrap", "-v", "2c", "-c", COMMUNITY, "--clientaddr=127.0.0.3", to, "", LINK_DOWN) == 0
    )  # not in the inventory
    assert (
        await run("snmptrap", "-v", "3", "--clientaddr=127.0.0.2", "-e", "0x80001f8880aabbccdd", *wrong_key, to, "", LINK_DOWN)
        == 0
    )
    assert (
        await run(
            "snmptrap",
            "-v",
            "3",
            "--clientaddr=127.0.0.2",
            "-e",
            "0x80001f8880aabbccdd",
            *V3[:1],
            "intruder",
            *V3[2:],
            to,
            "",
            LINK_DOWN,
        )
        == 0
    )
    assert await run("snmpinform", "-v", "2c", "-c", "public", "-t", "0.5", "-r", "0", to, "", LINK_UP) != 0  # never answered
    await settled(receiver, 11)
    assert receiver.dropped == {"community": 2, "undeclared": 1, "unknown_sender": 1, "usm": 1, "user": 1}
    assert rechecked == [DSLAM, DSLAM, DSLAM, OLT, OLT] and receiver.informs_answered == 1


async def test_rate_limits_per_sender_and_overall(receiving) -> None:
    receiver, port, rechecked = await receiving(Limits(sender_rate=0.001, sender_burst=3, rate=0.001, burst=5))
    to = f"127.0.0.1:{port}"
    for _ in range(5):
        assert await run("snmptrap", "-v", "2c", "-c", COMMUNITY, to, "", LINK_DOWN) == 0
    for _ in range(3):
        assert await run("snmptrap", "-v", "3", "--clientaddr=127.0.0.2", "-e", "0x80001f8880aabbccdd", *V3, to, "", LINK_UP) == 0
    await settled(receiver, 8)
    assert rechecked == [DSLAM] * 3 + [OLT] * 2
    assert receiver.dropped == {"rate_sender": 2, "rate_global": 1}


FLOOD = """
import socket, sys, time
port, lines = int(sys.argv[1]), open(sys.argv[2]).read().split()
sockets = {}
for address in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
    sockets[address] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sockets[address].bind((address, 0))
for n, line in enumerate(lines):
    address, datagram = line.split("/")
    sockets[address].sendto(bytes.fromhex(datagram), ("127.0.0.1", port))
    if n % 200 == 199:
        time.sleep(0.005)  # about 20,000 a second: far more than any head-end sends
"""


def forgeries(real_trap: bytes, count: int) -> list[tuple[str, bytes]]:
    """(source address, datagram): unknown senders, a wrong community, truncated and random bytes,
    absurd lengths and v3 headers from known ones, and a few real traps among them."""
    wrong_community = real_trap.replace(COMMUNITY.encode(), b"x" * len(COMMUNITY))
    kinds = [
        ("127.0.0.3", real_trap),
        ("127.0.0.1", wrong_community),
        ("127.0.0.1", real_trap[: len(real_trap) // 2]),
        ("127.0.0.1", b"\x30\x84\xff\xff\xff\xff\x02\x01\x01"),
        ("127.0.0.2", b"\x30\x10\x02\x01\x03" + bytes(range(11))),
        ("127.0.0.1", bytes((i * 37) % 256 for i in range(97))),
    ]
    datagrams = [kinds[i % len(kinds)] for i in range(count)]
    for i in range(0, count, 1000):
        datagrams[i] = ("127.0.0.1", real_trap)
    return datagrams


async def capture_trap() -> bytes:
    """What net-snmp's snmptrap puts on the wire for a linkDown from the DSLAM."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.settimeout(5)
    try:
        assert await run("snmptrap", "-v", "2c", "-c", COMMUNITY, f"127.0.0.1:{sink.getsockname()[1]}", "", LINK_DOWN) == 0
        return sink.recv(2048)
    finally:
        sink.close()


async def test_a_flood_of_forged_and_malformed_traps_is_dropped_and_polling_keeps_its_schedule(receiving, tmp_path) -> None:
    interval, devices = 0.1, 20
    polls: dict[str, int] = {}

    def job(device: str) -> Job:
        async def poll() -> list[Sample]:
            polls[device] = polls.get(device, 0) + 1
            return [Sample(NodeRef("device", device), "icmp", time.time(), Outcome.OK)]

        return Job(f"icmp:{device}", device, "icmp", interval, poll)

    async def sink(samples: list[Sample]) -> None:
        pass

    scheduler = Scheduler([job(DSLAM), job(OLT), *(job(f"dev-{i}") for i in range(devices - 2))], sink, jitter=0.0)
    limits = Limits(sender_rate=1.0, sender_burst=5, rate=100.0, burst=200)
    receiver, port, _ = await receiving(limits, scheduler.poll_now)
    count = 20_000
    flood = tmp_path / "flood.txt"
    datagrams = forgeries(await capture_trap(), count)
    flood.write_text("\n".join(f"{address}/{datagram.hex()}" for address, datagram in datagrams))
    runner = asyncio.create_task(scheduler.run_forever())
    await asyncio.sleep(1.0)

    lags: list[float] = []

    async def watch_the_loop() -> None:
        while True:
            started = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append(time.monotonic() - started - 0.01)

    watcher = asyncio.create_task(watch_the_loop())
    before, started = dict(polls), time.monotonic()
    flooder = await asyncio.create_subprocess_exec(sys.executable, "-c", FLOOD, str(port), str(flood))
    assert await flooder.wait() == 0
    await asyncio.sleep(0.3)
    elapsed = time.monotonic() - started
    during = {device: polls[device] - before.get(device, 0) for device in polls}
    watcher.cancel()
    scheduler.stop()
    await runner

    counted = sum(receiver.received.values()) + sum(receiver.dropped.values())
    print(
        f"flood: {count} sent in {elapsed:.2f} s, counted {counted}, {dict(receiver.dropped)}, {dict(receiver.received)}, "
        f"polls per device {min(during.values())}..{max(during.values())} (expected {elapsed / interval:.1f}), "
        f"loop lag ms p50 {sorted(lags)[len(lags) // 2] * 1000:.1f} p99 {sorted(lags)[len(lags) * 99 // 100] * 1000:.1f} "
        f"max {max(lags) * 1000:.1f}"
    )
    # The kernel drops what the socket buffer cannot hold while a busy machine keeps the receiver off the CPU.
    # The kinds of datagram take turns in the flood, so those drops take about the same share of each kind.
    assert 0.5 * count <= counted <= count
    share = counted / count
    unknown = sum(address == "127.0.0.3" for address, _ in datagrams)
    assert receiver.dropped["unknown_sender"] >= 0.9 * share * unknown
    # the known senders' floods stop at their buckets, before decoding
    assert receiver.dropped["rate_sender"] >= 0.9 * share * (count - unknown)
    assert set(receiver.dropped) <= {"unknown_sender", "rate_sender", "community", "malformed", "user"}
    assert receiver.received["linkDown"] <= limits.sender_burst + limits.sender_rate * elapsed + 1
    expected = elapsed / interval
    assert min(during.values()) >= 0.8 * expected - 1, (during, expected)  # every device still polled on schedule
    assert max(during.values()) <= expected + limits.sender_burst + limits.sender_rate * elapsed + 2, (during, expected)
    assert max(lags) < 0.25, max(lags)


async def test_mangled_notifications_are_dropped_by_reason_and_never_raise(receiving) -> None:
    """Real v2c and v3 traps with random bytes changed or cut off, past generous rate limits."""
    receiver, _, rechecked = await receiving(Limits(1e6, 10**6, 1e6, 10**6))
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    to = f"127.0.0.1:{sink.getsockname()[1]}"
    assert await run("snmptrap", "-v", "3", "--clientaddr=127.0.0.2", "-e", "0x80001f8880aabbccdd", *V3, to, "", COLD_START) == 0
    assert await run("snmptrap", "-v", "2c", "-c", COMMUNITY, to, "", COLD_START) == 0
    originals = [(sink.recv(4096), "127.0.0.2"), (sink.recv(4096), "127.0.0.1")]
    sink.close()
    rng = random.Random(10)
    for original, sender in originals:
        for _ in range(2000):
            mangled = bytearray(original)
            for _ in range(rng.randint(1, 4)):
                mangled[rng.randrange(len(mangled))] = rng.randrange(256)
            receiver.datagram_received(
                bytes(mangled[: rng.randint(0, len(mangled))] if rng.random() < 0.2 else mangled), (sender, 40000)
            )
    assert sum(receiver.received.values()) + sum(receiver.dropped.values()) >= 4000
    assert receiver.dropped["malformed"] > 1000 and receiver.dropped["usm"] > 200 and receiver.dropped["community"] > 100
    assert len(rechecked) == sum(receiver.received.values()) < 2000


@given(st.binary(max_size=300))
def test_decoding_any_bytes_as_a_notification_fails_only_with_ber_error(data: bytes) -> None:
    for decode in (ber.decode_notify, ber.v3_engine_and_user):
        try:
            decode(data)
        except ber.BerError:
            pass


def test_traps_config_defaults_and_mistakes(tmp_path: Path) -> None:
    base = (Path(__file__).parent.parent / "config" / "example.yaml").read_text()
    env = {
        "MONITORD_SNMP_COMMUNITY": "public",
        "MONITORD_OLT_AUTH_KEY": "authpass123",
        "MONITORD_OLT_PRIV_KEY": "privpass123",
        "TWILIO_AUTH_TOKEN": "0123456789abcdef0123456789abcdef",
        "MONITORD_SMTP_PASSWORD": "smtp-pass",
        "MONITORD_RT_TOKEN": "rt-token",
    }
    for name in ("example-subscribers.csv",):
        (tmp_path / name).write_text((Path(__file__).parent.parent / "config" / name).read_text())
    (tmp_path / "profiles").mkdir()
    path = tmp_path / "config.yaml"
    start = base.index("\ntraps:")
    base = base[:start] + base[base.index("\n\n", start) :]
    path.write_text(base)
    assert load_config(path, env).traps is None
    path.write_text(base + "\ntraps:\n  listen: 127.0.0.1:9162\n  rate: 50\n")
    traps = load_config(path, env).traps
    assert traps is not None and (traps.host, traps.port, traps.rate, traps.sender_rate, traps.burst) == (
        "127.0.0.1",
        9162,
        50.0,
        0.2,
        500,
    )
    lines = base.count("\n")
    path.write_text(base + "\ntraps:\n  listen: 127.0.0.1:9162\n  sender_burst: 0\n  flood: yes\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env)
    found = {(p.key, p.line) for p in caught.value.problems}
    assert found == {("traps.sender_burst", lines + 4), ("traps.flood", lines + 5)}, caught.value.problems


def test_profile_traps_are_checked(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: bad\nextends: adsl\ntraps:\n  - oid: linkDown\n    meaning: x\n")
    with pytest.raises(ProfileError, match=r"bad.yaml:4: traps\[0\].oid: 'linkDown' is not a numeric OID"):
        load_profiles([BUILTIN_DIR, tmp_path])


@pytest.mark.xdist_group("lab-world-1")  # see LAB_WORLDS in tests/conftest.py
async def test_the_daemon_rechecks_a_device_at_once_on_its_trap_and_changes_nothing_by_it(worlds, daemons) -> None:
    world = await worlds(own_base(220))
    write_config(
        world.isp.root,
        traps={"listen": "127.0.0.1:0"},
        polling={"icmp_interval": "1h", "line_interval": "1h", "optical_interval": "1h"},
    )
    dslam = min(d.id for d in world.isp.devices.values() if d.kind == "dslam")
    device = world.isp.devices[dslam]
    daemon = await daemons(world.config)
    found = re.search(r"receiving SNMP traps and informs on 127\.0\.0\.1:(\d+)", daemon.log())
    assert found, daemon.log()
    to = f"127.0.0.1:{found.group(1)}"

    async def polls() -> float:
        _, text = await daemon.get("/metrics")
        pattern = rf'monitord_device_polls_total\{{device="{re.escape(dslam)}",outcome="\w+",probe="icmp"\}} (\S+)'
        return sum(float(n) for n in re.findall(pattern, text))

    for trap in (LINK_DOWN, COLD_START, LINK_UP):
        seen = await polls()
        assert (
            await run("snmptrap", "-v", "2c", "-c", device.community or "", f"--clientaddr={device.address}", to, "", trap) == 0
        )
        await wait_async(lambda: polls_above(polls, seen), 5, f"an ICMP poll of {dslam} after {trap}")
    assert await run("snmptrap", "-v", "2c", "-c", "public", f"--clientaddr={device.address}", to, "", LINK_DOWN) == 0
    _, text = await daemon.get("/metrics")
    assert 'monitord_traps_received_total{trap="linkDown"} 1.0' in text
    await wait_async(lambda: metric_present(daemon, 'monitord_traps_dropped_total{reason="community"} 1.0'), 5, "the drop")
    _, incidents = await daemon.get("/api/incidents")
    assert incidents == []  # linkDown from a device whose polls answer: a recheck, nothing more
    assert await daemon.stop() == 0


async def polls_above(polls: Callable[[], Awaitable[float]], seen: float) -> bool:
    return await polls() > seen


async def metric_present(daemon, line: str) -> bool:
    _, text = await daemon.get("/metrics")
    return line in text
