"""The console's passwords, sessions, sign-in limit and `console:` section (pure, no daemon)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from monitord.config import load_config
from monitord.console import query_problem
from monitord.console_auth import LoginLimit, Sessions, allowed, csrf_ok, hash_password, password_line, verify_password
from monitord.model import AuditEntry
from monitord.store import Store
from tests.outbox_fixtures import store  # noqa: F401  (fixture)
from tests.test_config import BASE, ENV, line_of, problems_of, write

HASH = hash_password("correct horse battery staple", salt=b"0123456789abcdef")


def test_a_password_is_kept_as_a_salted_slow_hash() -> None:
    again = hash_password("correct horse battery staple")
    assert HASH.startswith("scrypt$16384$8$1$") and "correct" not in HASH
    assert again != HASH  # a salt of its own per user
    assert verify_password("correct horse battery staple", HASH) and verify_password("correct horse battery staple", again)
    assert not verify_password("correct horse battery stapler", HASH)
    assert not verify_password("x" * 100_000, HASH)  # refused before hashing
    assert password_line(HASH) == HASH
    for bad in ("hunter2", "scrypt$16384$8$1$c2FsdA==", "scrypt$1000$8$1$MDEyMzQ1Njc4OWFiY2RlZg==$" + "A" * 44):
        with pytest.raises(ValueError):
            password_line(bad)


def test_sessions_expire_and_carry_their_own_csrf_token() -> None:
    sessions = Sessions(lifetime=60.0)
    first, second = sessions.open("ayse", "noc", now=0.0), sessions.open("mehmet", "helpdesk", now=0.0)
    assert first.id != second.id and first.csrf != second.csrf
    assert sessions.get(first.id, now=59.0) == first
    assert sessions.get(first.id, now=60.0) is None and first.id not in sessions.by_id
    assert sessions.get("forged", now=1.0) is None and sessions.get(None, now=1.0) is None
    assert csrf_ok(second, second.csrf) and not csrf_ok(second, first.csrf) and not csrf_ok(second, None)
    sessions.open("ali", "noc", now=120.0)  # opening one forgets the expired
    assert second.id not in sessions.by_id


def test_roles() -> None:
    assert allowed("noc", "ack") and allowed("noc", "silence") and allowed("noc", "note")
    assert not any(allowed(role, action) for role in ("helpdesk", "readonly", "nobody") for action in ("ack", "note", "silence"))


def test_failed_sign_ins_are_limited_per_user_and_per_address() -> None:
    limit = LoginLimit()
    for _ in range(5):
        assert limit.allowed("10.0.0.1", "ayse", 0.0)
        limit.failed("10.0.0.1", "ayse", 0.0)
    assert not limit.allowed("10.0.0.2", "ayse", 0.0)  # the name, from another address too
    assert limit.allowed("10.0.0.1", "mehmet", 0.0)  # the address is not yet spent for another name
    assert limit.allowed("10.0.0.2", "ayse", 30.0)  # one more try after 30 s
    for n in range(20):
        limit.failed("10.0.0.9", f"user{n}", 100.0)
    assert not limit.allowed("10.0.0.9", "someone-else", 100.0)


def test_lookup_queries_are_bounded() -> None:
    assert query_problem("ARZ-2026-000123") is None and query_problem("+90 532 123 45 67") is None
    assert "at most 64 characters, not 10,000" in str(query_problem("1" * 10_000))
    for sql in ("1' OR '1'='1", "s1; DROP TABLE incidents", "s1--'", "a/*b*/", 's1"'):
        assert "only letters, digits" in str(query_problem(sql)), sql


CONSOLE = f"""console:
  users:
    - {{name: ayse, role: noc, password: "{HASH}"}}
    - {{name: gozlemci, role: readonly}}
  session: 2h
  proxy_header: X-Remote-User
  trusted_proxies: [127.0.0.1]
"""


def test_the_console_section(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE + CONSOLE), ENV)
    console = config.console
    assert console is not None and console.session == 7200.0 and console.trusted_proxies == ("127.0.0.1",)
    assert console.users["ayse"].role == "noc" and console.users["ayse"].password == HASH
    assert console.users["gozlemci"].password is None
    assert load_config(write(tmp_path, BASE), ENV).console is None


@pytest.mark.parametrize(
    ("wrong", "right", "needle", "message"),
    [
        (f'password: "{HASH}"', "password: hunter2", "password: hunter2", "not a password hash"),
        ("role: noc", "role: admin", "role: admin", "admin"),
        ("name: gozlemci", "name: ayse", "name: ayse, role: readonly", "listed twice"),
        ("trusted_proxies: [127.0.0.1]\n", "", "proxy_header", "no trusted_proxies"),
    ],
)
def test_console_problems_name_file_and_line(tmp_path: Path, wrong: str, right: str, needle: str, message: str) -> None:
    text = BASE + CONSOLE.replace(wrong, right)
    found = problems_of(write(tmp_path, text))
    assert [(p.line, message in p.message) for p in found] == [(line_of(text, needle), True)], found
    assert "hunter2" not in str(found)  # a plaintext password is never repeated back


MONITORD = [sys.executable, "-c", "import sys; from monitord.cli import main; sys.exit(main())"]


def test_passwd_prints_a_hash_line() -> None:
    done = subprocess.run([*MONITORD, "passwd"], input="s3cret pass\ns3cret pass\n", capture_output=True, text=True, check=True)
    line = done.stdout.strip()
    assert verify_password("s3cret pass", password_line(line)) and "s3cret" not in done.stdout
    entry = subprocess.run(
        [*MONITORD, "passwd", "--user", "ayse", "--role", "noc"],
        input="s3cret pass\ns3cret pass\n",
        capture_output=True,
        text=True,
        check=True,
    )
    assert entry.stdout.startswith('- {name: ayse, role: noc, password: "scrypt$')
    for typed, why in (("s3cret pass\ns3cret past\n", "do not match"), ("short\nshort\n", "8 to 1024")):
        refused = subprocess.run([*MONITORD, "passwd"], input=typed, capture_output=True, text=True)
        assert refused.returncode == 1 and why in refused.stderr and refused.stdout == ""


def test_the_audit_log_keeps_who_when_and_what(store: Store) -> None:  # noqa: F811  (SQLite and PostgreSQL)
    entries = [
        AuditEntry("ayse", "noc", 1000.0, "sign_in", "", "127.0.0.1"),
        AuditEntry("ayse", "noc", 1001.5, "ack", "ARZ-2026-000001"),
        AuditEntry("ayse", "noc", 1002.0, "note", "ARZ-2026-000001", "Ekip yolda"),
    ]
    for entry in entries:
        store.add_audit(entry)
    assert store.audit() == entries[::-1]
    assert store.audit(limit=1) == [entries[-1]]
