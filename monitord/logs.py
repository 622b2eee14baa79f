"""Logging: one line per meaningful event, plain or JSON, and never a secret.

Secrets are kept out of messages by construction (model.Secret's repr is redacted, and each
adapter masks its own credential in what its peer answers). The last step of every formatted
line masks credentials where they are used, whatever their value: the password of a URL's
userinfo, secret-bearing query parameters and key-values (`token=`, `"password": ...`,
`community=`, `authKey=`), and Authorization header values (Bearer, Basic, token). It never
masks a value wherever its text appears: a community string equal to a device name or a common
word must leave `device:besiktas-dslam-01 is down` readable.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time

REDACTED = "<redacted>"

SECRET_KEYS = (
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "client_secret",
    "token",
    "access_token",
    "auth_token",
    "refresh_token",
    "api_key",
    "apikey",
    "x-api-key",
    "community",
    "community_name",
    "communityname",
    "auth_key",
    "authkey",
    "priv_key",
    "privkey",
    "sig",
    "signature",
)
_QUOTE = r"""(?:\\?["'])?"""
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^\s/?#@:]*)(:[^\s/?#@]*)?@")
_AUTHORIZATION = re.compile(
    rf"(?i)(\b(?:proxy-)?authorization{_QUOTE}\s*[:=]\s*{_QUOTE}(?:(?:bearer|basic|token|digest)\s+)?)"
    r"""((?:[^\s"'\\,}]|\\[^"'])+)"""
)
_SCHEME_CREDENTIAL = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_KEY_VALUE = re.compile(
    rf"(?i)((?<![\w-])(?:{'|'.join(re.escape(k) for k in SECRET_KEYS)}){_QUOTE}\s*[:=]\s*)"
    r"""(?P<quote>\\?["'])?(?(quote)(?:(?!(?P=quote)).)+|(?!<redacted>)[^\s"'\\&,;)}\]]+)"""
)


def _userinfo(match: re.Match[str]) -> str:
    scheme, user, password = match.groups()
    return f"{scheme}{user}:{REDACTED}@" if password is not None else f"{scheme}{REDACTED}@"


def mask_credentials(text: str) -> str:
    """`text` with every credential masked where it is used; nothing else changes."""
    text = _URL_USERINFO.sub(_userinfo, text)
    text = _AUTHORIZATION.sub(lambda m: m.group(1) + REDACTED, text)
    text = _SCHEME_CREDENTIAL.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _KEY_VALUE.sub(lambda m: m.group(1) + (m.group("quote") or "") + REDACTED, text)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; `extra={"fields": {...}}` adds keys for log processors."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class RedactingFormatter(logging.Formatter):
    """Wraps a formatter so that nothing it writes (message, fields, traceback) holds a credential."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return mask_credentials(self.inner.format(record))


def setup(*, json_format: bool = False, level: str = "INFO") -> None:
    inner = JsonFormatter() if json_format else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(inner))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)
    for noisy in ("pysnmp", "asyncio", "aiohttp.access", "twilio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
