"""Where the state lives: `state_file` (SQLite) or `state: postgresql://...`, exactly one, and the
database's password never written in the config nor quoted back."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitord.config import load_config
from monitord.model import Secret, StateServer
from tests.test_config import BASE, ENV, line_of, problems_of, write

URL = "postgresql://monitord@db.isp.example:5432/monitord"


def with_state(lines: str) -> str:
    return BASE.replace("state_file: state.db\n", lines)


def test_a_postgresql_database_instead_of_a_file(tmp_path: Path) -> None:
    (tmp_path / "pg.password").write_text("Sekret-Parola-77\n")
    config = load_config(write(tmp_path, with_state(f"state: {URL}\nstate_password: {{file: pg.password}}\n")), ENV)
    assert config.state == StateServer(URL, Secret("Sekret-Parola-77", "file")) and config.state_file is None
    assert str(config.state) == URL and "Sekret" not in repr(config)


def test_without_a_password_libpq_finds_its_own(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, with_state(f"state: {URL}?sslmode=require\n")), ENV)
    assert config.state == StateServer(f"{URL}?sslmode=require")


def test_the_sqlite_file_stays_the_default(tmp_path: Path) -> None:
    config = load_config(write(tmp_path), ENV)
    assert config.state == tmp_path / "state.db" and config.state_server is None


@pytest.mark.parametrize(
    "lines, key, needle, message",
    [
        (f"state_file: state.db\nstate: {URL}\n", "state", "state: ", "state_file and state are both given"),
        ("", "state_file", None, "missing required key"),
        ("state: /var/lib/monitord/monitord.db\n", "state", "state: ", "is not a PostgreSQL URL"),
        ("state: postgresql://monitord:Hunter2-Secret@db/monitord\n", "state", "state: ", "must not hold the password"),
        ("state: postgresql://db/monitord?password=Hunter2-Secret\n", "state", "state: ", "must not hold the password"),
        ("state: postgresql://db/monitord?nonsense=Hunter2-Secret\n", "state", "state: ", "is not a valid PostgreSQL URL"),
        (
            f"state: {URL}\nstate_password: Hunter2-Secret\n",
            "state_password",
            "state_password",
            "secrets must not be written inline",
        ),
        ("state_file: state.db\nstate_password: {env: PGPW}\n", "state_password", "state_password", "is only read with state"),
    ],
    ids=[
        "both",
        "neither",
        "a-path",
        "password-in-url",
        "password-parameter",
        "bad-parameter",
        "inline-password",
        "password-for-a-file",
    ],
)
def test_mistakes_are_named_at_their_line_and_never_quote_a_password(
    tmp_path: Path, lines: str, key: str, needle: str | None, message: str
) -> None:
    text = with_state(lines)
    [problem] = problems_of(write(tmp_path, text), {**ENV, "PGPW": "x"})
    assert problem.key == key and problem.file == str(tmp_path / "config.yaml")
    if needle is not None:
        assert problem.line == line_of(text, needle)
    assert message in problem.message and "Hunter2" not in str(problem)
