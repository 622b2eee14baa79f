"""The `console:` section: the web console's users and sessions; no console when absent."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from monitord import duration as durations
from monitord.config import values
from monitord.config.decoder import Decoder
from monitord.config.fields import DURATION, STRING, Flag, Id, Parsed, Section, choice_of
from monitord.config.model import ConsoleConfig, ConsoleUser
from monitord.config.problems import Invalid
from monitord.console_auth import ROLES, password_line


def stored_password(value: Any) -> str:
    try:
        return password_line(value)
    except ValueError as problem:
        raise Invalid(str(problem), "store the line `monitord passwd` prints, never the password itself") from None


class ConsoleUserItem(Section):
    """One person who signs in to the console"""

    name: Id = Field(description="The user name, as the audit log records it")
    role: Annotated[str, choice_of(*ROLES)] = Field(
        description="noc (acknowledge, notes, silences), helpdesk (lookups) or readonly"
    )
    password: Annotated[str | None, Parsed(STRING, stored_password)] = Field(
        default=None,
        description="The scrypt line `monitord passwd` prints (never the password); absent: signs in only through proxy_header",
    )


class Console(Section):
    """The web console (/console) on the API's listener: the incident board, lookups and silences; off when absent"""

    users: list[ConsoleUserItem] = Field(default=[], description="Who may sign in, with a role each")
    session: Annotated[float, Parsed(DURATION, values.duration(durations.INTERVAL))] = Field(
        default=values.default_of(ConsoleConfig, "session"), description="How long a session lasts from sign-in (default 8h)"
    )
    secure_cookie: Flag = Field(default=False, description="Send the session cookie over https only (behind a TLS proxy)")
    proxy_header: Annotated[str | None, Parsed(STRING, values.text)] = Field(
        default=None,
        description="A reverse proxy's header naming the user it authenticated (e.g. X-Remote-User), believed only "
        "from trusted_proxies; the user must still be listed in users, for the role",
    )
    trusted_proxies: list[Annotated[str, Parsed(STRING, values.ip_address)]] = Field(
        default=[], description="Addresses of the reverse proxies whose proxy_header is believed"
    )


def read_console(d: Decoder, root: dict[Any, Any]) -> ConsoleConfig | None:
    """None (no console) when the section is absent or at fault."""
    if root.get("console") is None:
        return None
    path = ("console",)
    console = d.validated(Console, root["console"], path)
    if console is None:
        return None
    users: dict[str, ConsoleUser] = {}
    for n, user in enumerate(console.users):
        if user.name in users:
            d.report(path + ("users", n, "name"), f"user {user.name!r} is listed twice", "one entry per user")
            return None
        users[user.name] = ConsoleUser(user.name, user.role, user.password)
    if console.proxy_header and not console.trusted_proxies:
        d.report(
            path + ("proxy_header",), "believed from nobody: no trusted_proxies", "list the proxy's addresses in trusted_proxies"
        )
        return None
    return ConsoleConfig(users, console.session, console.secure_cookie, console.proxy_header, tuple(console.trusted_proxies))
