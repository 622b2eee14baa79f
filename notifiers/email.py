"""E-mail over SMTP (aiosmtplib): plain, STARTTLS or implicit TLS, with optional AUTH.

SMTP says itself what is worth retrying: 4xx replies are temporary, 5xx permanent. A refused
connection, a dropped one or a timeout is temporary too. A refused login (530, 534, 535, 538),
a certificate that does not verify or a server lacking what is configured (STARTTLS, AUTH) is
the channel's configuration, not the message's fault: a `ChannelError`, and the outbox holds
the channel until a reload fixes it.
The Message-ID is derived from the notification key, so a copy sent again after a crash is
recognisable as the same message.
"""

from __future__ import annotations

import hashlib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib

from monitord.model import Notification, Secret
from notifiers.base import ChannelError, DeliveryError, connection_failure, hide

AUTH_REFUSED = frozenset({530, 534, 535, 538})  # RFC 4954: auth required, too weak, bad credentials, needs TLS


def _temporary(code: int) -> bool:
    return 400 <= code < 500


def message_id(key: str, sender: str) -> str:
    domain = sender.rpartition("@")[2] or "monitord.invalid"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


def build_message(item: Notification, sender: str) -> EmailMessage:
    """A UTF-8 text message; the stdlib encodes a non-ASCII subject (RFC 2047) when it is sent."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = item.recipient
    msg["Subject"] = item.subject
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = message_id(item.key, sender)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(item.body, charset="utf-8")
    return msg


class SmtpEmail:
    channel = "email"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        from_: str,
        starttls: bool = False,
        tls: bool = False,
        username: str | None = None,
        password: Secret | None = None,
        timeout: float = 10.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port, self.from_ = host, port, from_
        self.starttls, self.tls, self.timeout = starttls, tls, timeout
        self.username, self.password = username, password
        self.tls_context = tls_context

    async def send(self, item: Notification) -> str:
        msg = build_message(item, self.from_)
        try:
            _, response = await aiosmtplib.send(
                msg,
                hostname=self.host,
                port=self.port,
                use_tls=self.tls,
                start_tls=self.starttls,
                username=self.username,
                password=self.password.reveal() if self.password else None,
                timeout=self.timeout,
                tls_context=self.tls_context,
            )
        except aiosmtplib.SMTPRecipientsRefused as e:
            refused = e.recipients[0]
            raise self._error(f"recipient refused: {refused.code} {refused.message}", _temporary(refused.code)) from None
        except aiosmtplib.SMTPResponseException as e:
            if e.code in AUTH_REFUSED:
                raise ChannelError(
                    self._redacted(f"SMTP {e.code} {e.message} (check the username and password)"), cause="credentials"
                ) from None
            raise self._error(f"SMTP {e.code} {e.message}", _temporary(e.code)) from None
        except ssl.SSLCertVerificationError as e:
            raise ChannelError(f"TLS certificate of {self.host} does not verify: {e.verify_message}", cause="config") from None
        except OSError as e:
            reason = f"cannot reach {self.host}:{self.port}: {type(e).__name__}: {e}"
            raise DeliveryError(self._redacted(reason), retryable=True, kind=connection_failure(e)) from None
        except aiosmtplib.SMTPException as e:
            raise ChannelError(
                self._redacted(f"SMTP session failed (check the TLS and AUTH settings): {e}"), cause="config"
            ) from None
        return response or msg["Message-ID"]

    def _error(self, reason: str, retryable: bool) -> DeliveryError:
        """An SMTP reply: 4xx is the server's trouble for now, 5xx refuses the message."""
        return DeliveryError(self._redacted(reason), retryable=retryable, kind="server_error" if retryable else "rejected")

    def _redacted(self, reason: str) -> str:
        """The server's words may echo what it was sent: the password never leaves in a reason."""
        return hide(reason, self.password)

    async def close(self) -> None:
        """Nothing to release: each send uses its own connection."""
