"""Logging: one line per meaningful event, plain or JSON, and never a secret.

Secrets are kept out of messages by construction (model.Secret's repr is redacted); the filter
below is the second line of defence: it masks any known secret value that still slips into a
record, e.g. inside a library's exception text.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Iterable

from monitord.model import Secret

REDACTED = "<redacted>"


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: Iterable[Secret]) -> None:
        super().__init__()
        self._values = sorted({s.reveal() for s in secrets if len(s.reveal()) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if self._values:
            message = record.getMessage()
            for value in self._values:
                message = message.replace(value, REDACTED)
            record.msg, record.args = message, None
            if record.exc_info and record.exc_info[1] is not None:
                text = logging.Formatter().formatException(record.exc_info)
                for value in self._values:
                    text = text.replace(value, REDACTED)
                record.exc_text, record.exc_info = text, None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_text or record.exc_info:
            entry["exc"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup(*, json_format: bool = False, level: str = "INFO", secrets: Iterable[Secret] = ()) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_format else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("pysnmp", "asyncio", "aiohttp.access", "twilio.http_client"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
