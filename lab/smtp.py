"""A local SMTP sink (aiosmtpd) for tests and the demo, with faults injected at the protocol level.

It runs on the caller's event loop on 127.0.0.1 with a port the OS picks (aiosmtpd's threaded
Controller cannot use port 0). With `starttls` or `tls` it makes a self-signed certificate at
start; clients trust it through `client_tls_context()`.
"""

from __future__ import annotations

import asyncio
import datetime
import email
import email.policy
import ipaddress
import os
import ssl
import tempfile
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Literal

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True, slots=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    user: str | None  # the AUTH login, if any
    tls: bool


@dataclass(slots=True)
class _Fault:
    code: int
    stage: Literal["rcpt", "data"]
    remaining: int


def self_signed(host: str = "127.0.0.1") -> tuple[bytes, bytes]:
    """A one-day certificate and key (PEM) for `host`, made fresh for each sink."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "monitord lab")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost")]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _server_context(cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory() as tmp:
        cert_file, key_file = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        with open(cert_file, "wb") as f:
            f.write(cert_pem)
        with open(key_file, "wb") as f:
            f.write(key_pem)
        ctx.load_cert_chain(cert_file, key_file)
    return ctx


class SmtpSink:
    """Records every accepted message in `messages`; `fail_next` makes it refuse the next ones."""

    def __init__(
        self,
        *,
        starttls: bool = False,
        tls: bool = False,
        username: str | None = None,
        password: str | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.host, self.port = host, 0
        self.starttls, self.tls = starttls, tls
        self.username, self.password = username, password
        self.messages: list[Received] = []
        self.auth_failures = 0
        self.cert_pem = b""
        self._faults: list[_Fault] = []
        self._context: ssl.SSLContext | None = None
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> SmtpSink:
        if self.starttls or self.tls:
            self.cert_pem, key_pem = self_signed(self.host)
            self._context = _server_context(self.cert_pem, key_pem)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, self.host, self.port, ssl=self._context if self.tls else None)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> SmtpSink:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def client_tls_context(self) -> ssl.SSLContext:
        """A client context that trusts this sink's certificate (and nothing else)."""
        return ssl.create_default_context(cadata=self.cert_pem.decode())

    def fail_next(self, code: int, count: int = 1, stage: Literal["rcpt", "data"] = "data") -> None:
        """Answer `code` (e.g. 421 or 550) at RCPT or DATA for the next `count` messages."""
        self._faults.append(_Fault(code, stage, count))

    def _protocol(self) -> SMTP:
        auth = self.username is not None
        return SMTP(
            _Handler(self),
            hostname="lab-smtp.localhost",
            tls_context=self._context if self.starttls else None,
            require_starttls=self.starttls,
            authenticator=self._authenticate if auth else None,
            auth_required=auth,
            auth_require_tls=not auth or self.starttls or self.tls,
        )

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login.decode() == self.username and data.password.decode() == self.password
        if not ok:
            self.auth_failures += 1
        return AuthResult(success=ok, handled=False, auth_data=data.login.decode() if ok else None)

    def _fault(self, stage: str) -> str | None:
        for fault in self._faults:
            if fault.stage == stage and fault.remaining > 0:
                fault.remaining -= 1
                reason = "try again later" if fault.code < 500 else "mailbox unavailable"
                return f"{fault.code} {reason} (lab fault)"
        return None


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]) -> str:
        fault = self.sink._fault("rcpt")
        if fault:
            return fault
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        fault = self.sink._fault("data")
        if fault:
            return fault
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        self.sink.messages.append(
            Received(
                envelope.mail_from or "",
                tuple(envelope.rcpt_tos),
                message,
                session.auth_data if isinstance(session.auth_data, str) else None,
                server.transport is not None and server.transport.get_extra_info("ssl_object") is not None,
            )
        )
        return f"250 OK queued as lab-{len(self.sink.messages)}"
