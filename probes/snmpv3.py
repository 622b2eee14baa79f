"""SNMPv3 requests over pysnmp, imported by probes/snmp.py at the first v3 request only: pysnmp,
the cryptography it brings and its engine are about 18 MB of the daemon's memory, and many
networks poll v1/v2c alone. That first request pays for the import and the engine, once: about
0.15 s of the event loop.

USM keys, engine discovery and reports stay with pysnmp's command generators; the walk loop and
its budgets are probes/snmp.py's, which gets each reply back re-encoded for probes/ber.py.
pysnmp matches v3 replies by msgID and security parameters, not by address (RFC 3412 §7.2.12):
with authNoPriv or authPriv a forged reply fails its HMAC, with noAuthNoPriv it would be accepted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from pysnmp.entity.engine import SnmpEngine
from pysnmp.entity.rfc3413 import cmdgen
from pysnmp.hlapi.v3arch.asyncio import (
    Udp6TransportTarget,
    UdpTransportTarget,
    UsmUserData,
    usmAesCfb128Protocol,
    usmAesCfb256Protocol,
    usmDESPrivProtocol,
    usmHMAC192SHA256AuthProtocol,
    usmHMAC384SHA512AuthProtocol,
    usmHMACMD5AuthProtocol,
    usmHMACSHAAuthProtocol,
)
from pysnmp.hlapi.v3arch.asyncio.cmdgen import LCD
from pysnmp.proto import errind, rfc1902

from monitord.model import Outcome, SnmpAuth
from probes import ber
from probes.ber import Varbind
from probes.snmpbase import Reply, Target

TAGS: dict[Any, int] = {
    rfc1902.Integer32.tagSet: 2,
    rfc1902.OctetString.tagSet: 4,
    rfc1902.ObjectIdentifier.tagSet: 6,
    rfc1902.IpAddress.tagSet: 64,
    rfc1902.Counter32.tagSet: 65,
    rfc1902.Gauge32.tagSet: 66,
    rfc1902.TimeTicks.tagSet: 67,
    rfc1902.Opaque.tagSet: 68,
    rfc1902.Counter64.tagSet: 70,
}
"""pysnmp's types by the BER tags probes/ber.py reads (`probes.snmp.KNOWN`)."""

AUTH_ERRORS = (
    errind.WrongDigest,
    errind.UnknownUserName,
    errind.UnknownSecurityName,
    errind.UnsupportedSecurityLevel,
    errind.AuthenticationFailure,
    errind.AuthenticationError,
    errind.DecryptionError,
    errind.NotInTimeWindow,
    errind.UnknownEngineID,
)

AUTH_PROTOCOLS = {
    "md5": usmHMACMD5AuthProtocol,
    "sha": usmHMACSHAAuthProtocol,
    "sha256": usmHMAC192SHA256AuthProtocol,
    "sha512": usmHMAC384SHA512AuthProtocol,
}
PRIV_PROTOCOLS = {
    "des": usmDESPrivProtocol,
    "aes": usmAesCfb128Protocol,
    "aes256": usmAesCfb256Protocol,  # the key-extension variant most vendors ship (Cisco, Huawei)
}


class V3Sender:
    """The SnmpClient's v3 requests, through one pysnmp engine (more only for clashing users).

    `timeout` and `retries` are fixed: pysnmp keys its per-target configuration on them, so
    varying them per request would register each target again (about 7.5 ms of CPU each).

    An engine holds one set of keys per SNMPv3 user name: configuring the same user with other
    keys replaces them for every agent already using it. So v3 auths that reuse a user name with
    different protocols or keys each get an engine of their own.
    """

    def __init__(self, timeout: float, retries: int) -> None:
        self.timeout = timeout
        self.retries = retries
        self._engines: list[tuple[SnmpEngine, dict[str, tuple[Any, ...]]]] = [(SnmpEngine(), {})]
        self._transports: dict[tuple[str, int], Any] = {}
        self._addresses: dict[tuple[SnmpAuth, str, int], tuple[SnmpEngine, str]] = {}

    def close(self) -> None:
        for engine, _users in self._engines:
            engine.close_dispatcher()

    async def send(self, target: Target, names: Sequence[bytes], repetitions: int | None) -> Reply:
        """GET (repetitions None), GETNEXT (0) or GETBULK (max-repetitions > 0) of OIDs encoded."""
        try:
            engine, address = await self._address(target)
        except Exception as error:  # pysnmp raises PySnmpError and OSError for bad addresses
            return Reply(Outcome.UNREACHABLE, detail=f"{target.address}:{target.port}: {error}")
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()

        def done(engine: Any, handle: Any, indication: Any, status: Any, index: Any, varbinds: Any, context: Any) -> bool:
            if not future.done():
                future.set_result(reply_of(indication, status, index, varbinds))
            return False

        request = [(rfc1902.ObjectName(ber.decode_oid(name)), rfc1902.Null("")) for name in names]
        try:
            if repetitions is None:
                cmdgen.GetCommandGenerator().send_varbinds(engine, address, None, b"", request, done)
            elif repetitions == 0:
                cmdgen.NextCommandGeneratorSingleRun().send_varbinds(engine, address, None, b"", request, done)
            else:
                cmdgen.BulkCommandGeneratorSingleRun().send_varbinds(engine, address, None, b"", 0, repetitions, request, done)
        except Exception as error:  # pysnmp raises StatusInformation from its send path
            return Reply(Outcome.AGENT_ERROR, detail=f"request not sent: {type(error).__name__}")
        return await future

    async def _address(self, target: Target) -> tuple[SnmpEngine, str]:
        """The engine to send with and its name for (auth, address, port), configured once.

        Keyed by the credentials themselves, so a reload that changes an auth's keys uses them.
        """
        key = (target.auth, target.address, target.port)
        found = self._addresses.get(key)
        if found is None:
            transport = self._transports.get((target.address, target.port))
            if transport is None:
                kind = Udp6TransportTarget if ":" in target.address else UdpTransportTarget
                transport = await kind.create((target.address, target.port), timeout=self.timeout, retries=self.retries)
                self._transports[(target.address, target.port)] = transport
            engine = self._engine_for(target.auth)
            name, _params = LCD.configure(engine, _credentials(target.auth), transport, b"")
            found = self._addresses[key] = (engine, name)
        return found

    def _engine_for(self, auth: SnmpAuth) -> SnmpEngine:
        """The first engine where `auth`'s user is unknown or has the same keys."""
        user = auth.user or ""
        keys = (auth.auth_protocol, auth.auth_key, auth.priv_protocol, auth.priv_key)  # Secrets compare by value
        for engine, users in self._engines:
            if users.setdefault(user, keys) == keys:
                return engine
        engine = SnmpEngine()
        self._engines.append((engine, {user: keys}))
        return engine


def convert(oid: Any, value: Any) -> Varbind | None:
    """One pysnmp varbind as plain Python, or None for a type this probe does not read."""
    tag = TAGS.get(value.tagSet)
    if tag is None:
        return None
    if tag in (4, 64, 68):
        plain: int | bytes | tuple[int, ...] = bytes(value.asOctets())
    elif tag == 6:
        plain = tuple(value)
    else:
        plain = int(value)
    return Varbind(tuple(oid), tag, plain)


def reply_of(indication: Any, status: Any, index: Any, varbinds: Any) -> Reply:
    """What pysnmp's callback saw, its varbinds re-encoded for probes/ber.py."""
    if indication is None:
        plain = [_raw(name, value) for name, value in varbinds or ()]
        if any(arc > ber.MAX_SUB_IDENTIFIER for oid, _, _ in plain for arc in oid):
            return Reply(Outcome.AGENT_ERROR, detail="OID sub-identifier above 2**32-1")
        try:
            encoded = ber.encode_varbinds(plain)
        except ValueError as error:  # BerError, or a tag beyond one octet
            return Reply(Outcome.AGENT_ERROR, detail=f"undecodable response: {error}")
        return Reply(Outcome.OK, int(status or 0), int(index or 0), encoded)
    if isinstance(indication, errind.RequestTimedOut):
        return Reply(Outcome.TIMEOUT, detail="no response")
    if isinstance(indication, AUTH_ERRORS):
        return Reply(Outcome.AUTH_FAILURE, detail=str(indication))
    return Reply(Outcome.AGENT_ERROR, detail=str(indication))


def _credentials(auth: SnmpAuth) -> UsmUserData:
    """pysnmp's view of `auth`; the only place v3 secrets are revealed."""
    return UsmUserData(
        auth.user or "",
        authKey=auth.auth_key.reveal() if auth.auth_key else None,
        privKey=auth.priv_key.reveal() if auth.priv_key else None,
        authProtocol=AUTH_PROTOCOLS[auth.auth_protocol] if auth.auth_protocol else None,
        privProtocol=PRIV_PROTOCOLS[auth.priv_protocol] if auth.priv_protocol else None,
    )


def _raw(name: Any, value: Any) -> Varbind:
    """A pysnmp varbind as probes/ber.py decodes one."""
    varbind = convert(name, value)
    if varbind is not None:
        return varbind
    tag = value.tagSet[-1]
    return Varbind(tuple(name), tag.tagClass | tag.tagFormat | tag.tagId, None)
