"""SNMP traps and informs (v2c and v3): a head-end saying something happened, used to recheck it.

A notification is never evidence. Anyone can send a UDP datagram with a forged source address,
and a trap says nothing the next poll will not say better: an accepted notification only makes
the scheduler poll its device at once (`recheck`, the scheduler's `poll_now`), and that poll's
samples decide, through the rules, as any poll's do. So a trap never changes a line state.

A datagram is examined cheapest check first, so that a flood of forged or malformed datagrams
costs a dictionary look-up each and never starves polling: the sender's address must be an
inventory device's (else dropped as `unknown_sender`); then a token bucket per device and one for
all devices (`rate_sender`, `rate_global`); then the message is decoded: v2c with the flat BER
decoder (`malformed`, `community`), v3 by pysnmp's notification receiver, which checks the USM
user, its keys and the time window (`usm`); the user must be the device's (`user`). Only
linkDown/linkUp, coldStart/warmStart and the vendor alarms declared in the device's profiles
(`traps:`) make a recheck (`undeclared`); authentic informs are acknowledged in any case, so
that the device stops resending them.

v3 traps are sent with the device's own engine ID as the authoritative one, which the inventory
does not hold: it is read from the message and the device's user is localised for it, for at
most MAX_ENGINE_IDS engine IDs per device and LEARN_RATE new ones a second in all, as localising
a key takes milliseconds of CPU (`engine_id` beyond that). A forger without the keys gains
nothing from this but filling those places; informs use this receiver's engine ID.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.entity import config as pysnmp_config
from pysnmp.entity.engine import SnmpEngine
from pysnmp.entity.rfc3413 import ntfrcv
from pysnmp.proto.api import v2c

from monitord.model import SnmpAuth, Topology
from monitord.ratelimit import TokenBucket
from probes import ber
from probes.ber import Oid
from probes.profiles import Profile
from probes.snmpv3 import AUTH_PROTOCOLS, PRIV_PROTOCOLS

log = logging.getLogger("monitord.traps")

STANDARD_TRAPS: Mapping[Oid, str] = {
    (1, 3, 6, 1, 6, 3, 1, 1, 5, 1): "coldStart",
    (1, 3, 6, 1, 6, 3, 1, 1, 5, 2): "warmStart",
    (1, 3, 6, 1, 6, 3, 1, 1, 5, 3): "linkDown",
    (1, 3, 6, 1, 6, 3, 1, 1, 5, 4): "linkUp",
}
SNMP_TRAP_OID: Oid = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
MAX_ENGINE_IDS = 4
LEARN_RATE = 1.0


@dataclass(frozen=True, slots=True)
class Sender:
    """One device as a notification sender: who it is, how it authenticates, what it may say."""

    device: str
    auth: SnmpAuth
    traps: Mapping[Oid, str] = field(default_factory=dict)  # the standard ones and its profiles'


@dataclass(frozen=True, slots=True)
class Limits:
    sender_rate: float
    sender_burst: int
    rate: float
    burst: int


def senders(topology: Topology, profiles: Mapping[str, Profile]) -> dict[str, tuple[Sender, ...]]:
    """Address -> the SNMP devices at it (several devices may share one management address)."""
    found: dict[str, list[Sender]] = {}
    for device in topology.devices.values():
        if device.snmp is None:
            continue
        traps = dict(STANDARD_TRAPS)
        for name in device.profiles:
            if name in profiles:
                traps.update(profiles[name].traps)
        found.setdefault(device.address, []).append(Sender(device.id, device.snmp, traps))
    return {address: tuple(group) for address, group in found.items()}


def trap_oid(varbinds: Iterable[tuple[Any, ...]]) -> Oid | None:
    """The value of snmpTrapOID.0: what the notification is (RFC 3416: the second varbind)."""
    for name, *rest in varbinds:
        if tuple(name) == SNMP_TRAP_OID:
            try:
                return tuple(int(arc) for arc in rest[-1])
            except TypeError:  # not an OID: a malformed notification
                return None
    return None


def is_v3(datagram: bytes) -> bool:
    """Whether the message's version field (right after the outer SEQUENCE header) says SNMPv3."""
    if len(datagram) < 2 or datagram[0] != ber.SEQUENCE:
        return False
    at = 2 + (datagram[1] & 0x7F if datagram[1] & 0x80 else 0)
    return datagram[at : at + 3] == b"\x02\x01\x03"


class TrapReceiver(udp.UdpAsyncioTransport):
    """The UDP endpoint. pysnmp's transport class, so that v3 messages go on to its engine."""

    def __init__(
        self,
        senders: Mapping[str, tuple[Sender, ...]],
        limits: Limits,
        recheck: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(loop=asyncio.get_running_loop())
        self.recheck = recheck
        self.clock = clock
        self.received: Counter[str] = Counter()  # accepted, by notification name
        self.dropped: Counter[str] = Counter()  # by reason
        self.informs_answered = 0
        self._limits = limits
        self._global = TokenBucket(limits.rate, limits.burst, clock())
        self._buckets: dict[str, TokenBucket] = {}
        self._engine_ids: dict[str, set[bytes]] = {}
        self._learning = TokenBucket(LEARN_RATE, MAX_ENGINE_IDS, clock())
        self._senders: Mapping[str, tuple[Sender, ...]] = {}
        self._v3_from: tuple[Sender, ...] | None = None
        self._v3_accepted = False
        self._engine = SnmpEngine()
        self._receiver = ntfrcv.NotificationReceiver(self._engine, self._on_v3)
        pysnmp_config.add_transport(self._engine, udp.DOMAIN_NAME, self)
        self._users: dict[tuple[bytes | None, str], tuple[Any, ...]] = {}
        self.replace_senders(senders)

    async def open(self, host: str, port: int) -> int:
        """Listen; returns the port (the OS picks one for port 0)."""
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=(host, port))
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def close(self) -> None:
        self._receiver.close(self._engine)
        self._engine.close_dispatcher()
        if self.transport is not None:
            self.transport.close()

    def replace_senders(self, senders: Mapping[str, tuple[Sender, ...]]) -> None:
        """A reloaded inventory; v3 users are added as needed (pysnmp keeps the old ones)."""
        self._senders = senders
        self._buckets = {a: b for a, b in self._buckets.items() if a in senders}
        for group in senders.values():
            for sender in group:
                if sender.auth.version == "3":
                    self._add_user(sender.auth, None)

    def datagram_received(self, datagram: bytes, address: Any) -> None:
        host = address[0]
        group = self._senders.get(host)
        if group is None:
            self.dropped["unknown_sender"] += 1
            return
        now = self.clock()
        bucket = self._buckets.get(host)
        if bucket is None:
            bucket = self._buckets[host] = TokenBucket(self._limits.sender_rate, self._limits.sender_burst, now)
        if not bucket.take(now):
            self.dropped["rate_sender"] += 1
            return
        if not self._global.take(now):
            self.dropped["rate_global"] += 1
            return
        if is_v3(datagram):
            self._v3(datagram, address, group)
        else:
            self._v2c(datagram, address, group)

    def _v2c(self, datagram: bytes, address: Any, group: tuple[Sender, ...]) -> None:
        try:
            message = ber.decode_notify(datagram)
        except ber.BerError:
            self.dropped["malformed"] += 1
            return
        authentic = [
            s
            for s in group
            if s.auth.version == "2c" and s.auth.community is not None and s.auth.community.reveal().encode() == message.community
        ]
        if not authentic:
            self.dropped["community"] += 1
            return
        if message.pdu == ber.INFORM and self.transport is not None:
            self.transport.sendto(ber.inform_response(datagram, message), address)
            self.informs_answered += 1
        self._accept(authentic, trap_oid(message.varbinds))

    def _v3(self, datagram: bytes, address: Any, group: tuple[Sender, ...]) -> None:
        try:
            engine_id, user = ber.v3_engine_and_user(datagram)
        except ber.BerError:
            self.dropped["malformed"] += 1
            return
        if not user:  # engine ID discovery before an inform: pysnmp reports this engine's ID
            self._to_pysnmp(datagram, address)
            return
        mine = [s for s in group if s.auth.version == "3" and (s.auth.user or "").encode() == user]
        if not mine:
            self.dropped["user"] += 1
            return
        if not self._learn(engine_id, mine):
            self.dropped["engine_id"] += 1
            return
        self._v3_from, self._v3_accepted = tuple(mine), False
        try:
            handled = self._to_pysnmp(datagram, address)
        finally:
            self._v3_from = None
        if handled and not self._v3_accepted:
            self.dropped["usm"] += 1

    def _to_pysnmp(self, datagram: bytes, address: Any) -> bool:
        """Hand a v3 message to pysnmp's engine, which answers informs and discovery itself."""
        try:
            self._callback_function(self, address, datagram)
        except Exception:  # pyasn1 raises more than its own errors on a mangled message
            self.dropped["malformed"] += 1
            return False
        return True

    def _learn(self, engine_id: bytes, mine: list[Sender]) -> bool:
        """Localise the devices' user for the engine ID a v3 trap names, within MAX_ENGINE_IDS."""
        if not engine_id or engine_id == bytes(self._engine.snmpEngineID):
            return True
        unknown = [s for s in mine if engine_id not in self._engine_ids.setdefault(s.device, set())]
        if unknown and (
            any(len(self._engine_ids[s.device]) >= MAX_ENGINE_IDS for s in unknown) or not self._learning.take(self.clock())
        ):
            return False
        for sender in unknown:
            self._engine_ids[sender.device].add(engine_id)
            self._add_user(sender.auth, engine_id)
        return True

    def _add_user(self, auth: SnmpAuth, engine_id: bytes | None) -> None:
        """Localise `auth`'s user for `engine_id` (None: this receiver's own, for informs)."""
        user = auth.user or ""
        keys = (auth.auth_protocol, auth.auth_key, auth.priv_protocol, auth.priv_key)  # Secrets compare by value
        held = self._users.get((engine_id, user))
        if held is not None:
            if held != keys:
                log.warning("SNMPv3 user %r has different keys on different devices: notifications use the first", user)
            return
        self._users[(engine_id, user)] = keys
        pysnmp_config.add_v3_user(
            self._engine,
            user,
            AUTH_PROTOCOLS[auth.auth_protocol] if auth.auth_protocol else pysnmp_config.USM_AUTH_NONE,
            auth.auth_key.reveal() if auth.auth_key else None,
            PRIV_PROTOCOLS[auth.priv_protocol] if auth.priv_protocol else pysnmp_config.USM_PRIV_NONE,
            auth.priv_key.reveal() if auth.priv_key else None,
            **({"securityEngineId": v2c.OctetString(engine_id)} if engine_id is not None else {}),
        )

    def _on_v3(self, engine: Any, state: Any, context_engine: Any, context: Any, varbinds: Any, _: Any) -> None:
        """pysnmp's callback: the message authenticated (and informs are answered by pysnmp)."""
        if self._v3_from is None:
            return
        self._v3_accepted = True
        self._accept(list(self._v3_from), trap_oid((name, value) for name, value in varbinds))

    def _accept(self, authentic: list[Sender], oid: Oid | None) -> None:
        for sender in authentic:
            name = sender.traps.get(oid) if oid is not None else None
            if name is None:
                self.dropped["undeclared"] += 1
                continue
            self.received[name] += 1
            log.debug("%s from device:%s: rechecking it", name, sender.device)
            self.recheck(sender.device)
