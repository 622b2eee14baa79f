"""Reading and checking the configuration file and the subscriber inventory.

The steps follow Alertmanager's `Load`: defaults (the dataclass fields), strict decoding (unknown
and duplicate keys are errors), section checks, then cross-references between sections. Nothing
stops at the first problem: `load_config` raises one `ConfigError` listing every problem with
its file, line and key path, so `monitord check` can show an operator all of them at once.
Secrets are only ever named by where they live (`{env: NAME}`, `{file: path}`), never echoed.

Modules: `values` (the value parsers every reader shares), `model` (the checked result),
`decoder` (YAML data with line marks -> problems), one module per group of sections, and `load`.
"""

from monitord.config.layout import SECTION_KEYS
from monitord.config.load import load_config, load_or_report, log_rejected
from monitord.config.model import (
    LINE_FIELDS,
    Config,
    CpeNotices,
    EmailConfig,
    HistoryConfig,
    HttpConfig,
    MetricsConfig,
    NotifiersConfig,
    PollingConfig,
    RetentionConfig,
    RetryConfig,
    SmsConfig,
    SnmpSettings,
    TicketConfig,
    TrapsConfig,
)
from monitord.config.problems import ConfigError, Invalid, Problem, format_problems
from monitord.config.values import identifier, listen, node_ref, parse_duration, text, timestamp

__all__ = [
    "LINE_FIELDS",
    "SECTION_KEYS",
    "Config",
    "ConfigError",
    "CpeNotices",
    "EmailConfig",
    "HistoryConfig",
    "HttpConfig",
    "Invalid",
    "MetricsConfig",
    "NotifiersConfig",
    "PollingConfig",
    "Problem",
    "RetentionConfig",
    "RetryConfig",
    "SmsConfig",
    "SnmpSettings",
    "TicketConfig",
    "TrapsConfig",
    "format_problems",
    "identifier",
    "listen",
    "load_config",
    "load_or_report",
    "log_rejected",
    "node_ref",
    "parse_duration",
    "text",
    "timestamp",
]
