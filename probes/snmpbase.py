"""What the SNMP client (probes/snmp.py) and its v3 sender (probes/snmpv3.py) hand each other:
where a request goes and with which credentials (`Target`), and what came back, still encoded
(`Reply`). Apart from both, so that neither module needs the other to be imported: the v3 sender
is loaded by the client at its first v3 request only."""

from __future__ import annotations

from dataclasses import dataclass

from monitord.model import Device, Outcome, SnmpAuth


@dataclass(frozen=True, slots=True)
class Target:
    address: str
    port: int
    auth: SnmpAuth
    device_class: str = ""  # what the client counts its datagrams under (`SnmpCounts`): the device's kind

    @classmethod
    def of(cls, device: Device) -> Target:
        if device.snmp is None:
            raise ValueError(f"device {device.id} has no SNMP access")
        return cls(device.address, device.port, device.snmp, device.kind)


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply's status and its varbinds, still encoded: a VarBindList at `at` in `data`."""

    outcome: Outcome
    error_status: int = 0
    error_index: int = 0
    data: bytes = b"\x30\x00"
    at: int = 0
    detail: str = ""
