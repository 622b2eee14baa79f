"""Logging: one line per meaningful event, plain or JSON, and never a secret.

Secrets are kept out of messages by construction (model.Secret's repr is redacted); the last step
of every formatted line is the second line of defence: it masks any known secret value that still
slips in, e.g. inside a library's exception text. A reload adds the new config's secrets.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Iterable

from monitord.model import Secret

REDACTED = "<redacted>"
MIN_SECRET = 4  # shorter values would mask ordinary words; config rejects such secrets anyway


class Redactor:
    """Known secret values, masked as they appear in plain text and inside JSON strings."""

    def __init__(self, secrets: Iterable[Secret] = ()) -> None:
        self._raw: set[str] = set()
        self._forms: tuple[str, ...] = ()
        self.remember(secrets)

    def remember(self, secrets: Iterable[Secret]) -> None:
        self._raw |= {s.reveal() for s in secrets if len(s.reveal()) >= MIN_SECRET}
        forms = self._raw | {json.dumps(v, ensure_ascii=False)[1:-1] for v in self._raw}
        self._forms = tuple(sorted(forms, key=len, reverse=True))

    def __call__(self, text: str) -> str:
        for value in self._forms:
            text = text.replace(value, REDACTED)
        return text


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
    """Wraps a formatter so that nothing it writes (message, fields, traceback) holds a secret."""

    def __init__(self, inner: logging.Formatter, redactor: Redactor) -> None:
        super().__init__()
        self.inner = inner
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor(self.inner.format(record))


def setup(*, json_format: bool = False, level: str = "INFO", secrets: Iterable[Secret] = ()) -> None:
    inner = JsonFormatter() if json_format else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(inner, Redactor(secrets)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)
    for noisy in ("pysnmp", "asyncio", "aiohttp.access", "twilio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def remember(secrets: Iterable[Secret]) -> None:
    """After a reload: mask the new config's secrets too (the old ones stay masked)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, RedactingFormatter):
            handler.formatter.redactor.remember(secrets)
