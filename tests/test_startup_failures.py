"""Every way the state file can be unusable at start ends `monitord run` with one line naming the
file and what to do, exit code 1, no traceback (issue 9, item 12).

Each fault is made for real: garbage and damaged pages in the file, a schema from the future, an
immutable folder or file (`chattr +i`: the tests run as root, so permissions alone would not stop
them), a file where a folder belongs and the reverse, and a 64 KiB tmpfs that is full.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from monitord.store import MIGRATIONS, Store
from rules.snapshot import Rows
from tests.test_config import BASE, ENV, write

REPO = Path(__file__).resolve().parent.parent
AFRESH = "restore it from a backup, or move it aside to start with no saved state"


@pytest.fixture
def undo() -> Iterator[list[list[str]]]:
    """Commands that take a fault away again (chattr -i, umount), run even when the test fails."""
    commands: list[list[str]] = []
    yield commands
    for command in reversed(commands):
        subprocess.run(command, capture_output=True, check=False)


def _run(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitord.cli", "run", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), **ENV},
    )


def _immutable(path: Path, undo: list[list[str]]) -> None:
    subprocess.run(["chattr", "+i", str(path)], check=True)
    undo.append(["chattr", "-i", str(path)])


def _mount_tmpfs(folder: Path, size: str, undo: list[list[str]]) -> None:
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
    undo.append(["umount", str(folder)])


def _fill(folder: Path) -> None:
    with open(folder / "filler", "wb") as filler:
        with pytest.raises(OSError):
            filler.write(os.urandom(1 << 20))
            filler.flush()


def garbage(state: Path, undo: list[list[str]]) -> None:
    state.parent.mkdir()
    state.write_bytes(os.urandom(16384))


def damaged_pages(state: Path, undo: list[list[str]]) -> None:
    state.parent.mkdir()
    Store.open(state).close()
    data = bytearray(state.read_bytes())
    data[4096:8192] = os.urandom(4096)
    state.write_bytes(bytes(data))


def newer_schema(state: Path, undo: list[list[str]]) -> None:
    state.parent.mkdir()
    with sqlite3.connect(state) as db:
        db.execute("PRAGMA user_version = 99")


def read_only_folder(state: Path, undo: list[list[str]]) -> None:
    state.parent.mkdir()
    _immutable(state.parent, undo)


def missing_folder_that_cannot_be_made(state: Path, undo: list[list[str]]) -> None:
    state.parent.parent.mkdir()
    _immutable(state.parent.parent, undo)


def folder_is_a_file(state: Path, undo: list[list[str]]) -> None:
    state.parent.write_text("not a folder\n")


def state_is_a_folder(state: Path, undo: list[list[str]]) -> None:
    state.mkdir(parents=True)


def read_only_file(state: Path, undo: list[list[str]]) -> None:
    state.parent.mkdir()
    Store.open(state).close()
    for leftover in state.parent.glob("*-*"):
        leftover.unlink()
    _immutable(state, undo)


def full_disk_new_file(state: Path, undo: list[list[str]]) -> None:
    _mount_tmpfs(state.parent, "64k", undo)
    _fill(state.parent)


def full_disk_existing_file(state: Path, undo: list[list[str]]) -> None:
    """A file system the state's size plus a little (the size the schema has now, measured apart),
    then filled: with much more room left before the filling, SQLite meets the full disk first
    in its -shm file and says "disk I/O error" instead."""
    measured = state.parent.with_name("measured.db")
    Store.open(measured).close()
    _mount_tmpfs(state.parent, f"{measured.stat().st_size // 1024 + 224}k", undo)
    Store.open(state).close()
    _fill(state.parent)


def unreadable_snapshot(state: Path, undo: list[list[str]]) -> None:
    state.parent.mkdir()
    store = Store.open(state)
    store.commit_step(Rows({"customer": "Ayşe Yılmaz +905321234567", "timers": []}, {}, {}), [], [], 0.0)
    store.close()


def snapshot_not_json(state: Path, undo: list[list[str]]) -> None:
    state.parent.mkdir()
    Store.open(state).close()
    with sqlite3.connect(state) as db:
        db.execute("INSERT INTO engine_state VALUES (1, '{\"customer\": \"Ayşe Yılmaz +9053212', 0)")


CASES: list[tuple[Callable[[Path, list[list[str]]], None], str, str]] = [
    (garbage, "state/state.db", f"{{state}}: is not a SQLite database; {AFRESH}"),
    (damaged_pages, "state/state.db", f"{{state}}: is damaged (corrupted pages); {AFRESH}"),
    (
        newer_schema,
        "state/state.db",
        f"{{state}}: schema version 99 is newer than this monitord supports ({len(MIGRATIONS)}); upgrade monitord or restore a matching backup",
    ),
    (read_only_folder, "state/state.db", "{state}: cannot be opened; {folder} must be a folder monitord can write in"),
    (
        missing_folder_that_cannot_be_made,
        "var/state/state.db",
        "{state}: cannot create its folder {folder}: Operation not permitted; create it, writable by monitord",
    ),
    (folder_is_a_file, "state/state.db", "{state}: cannot create its folder {folder}: it is not a folder"),
    (state_is_a_folder, "state/state.db", "{state} is a folder; state_file names the SQLite file"),
    (read_only_file, "state/state.db", "{state}: is read-only; monitord must be able to write it and {folder}"),
    (full_disk_new_file, "state/state.db", "{state}: the disk is full; free space on the file system holding {folder}"),
    # SQLite reports the full disk as such here since schema 8 (three more tables change which write fails first).
    (full_disk_existing_file, "state/state.db", "{state}: the disk is full; free space on the file system holding {folder}"),
    (unreadable_snapshot, "state/state.db", f"{{state}}: the saved engine state cannot be read (ValueError); {AFRESH}"),
    (snapshot_not_json, "state/state.db", f"{{state}}: the saved engine state cannot be read (JSONDecodeError); {AFRESH}"),
]


@pytest.mark.parametrize("prepare, state_file, expected", CASES, ids=[case[0].__name__ for case in CASES])
def test_a_state_file_that_cannot_be_used_is_one_clear_line(
    tmp_path: Path, undo: list[list[str]], prepare: Callable[[Path, list[list[str]]], None], state_file: str, expected: str
) -> None:
    config = write(tmp_path, BASE.replace("state_file: state.db", f"state_file: {state_file}"))
    state = tmp_path / state_file
    prepare(state, undo)
    done = _run(config)
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert "ERROR monitord: cannot start: " + expected.format(state=state, folder=state.parent) in line
    assert "Traceback" not in done.stderr and "Ayşe" not in done.stderr and "+9053212" not in done.stderr
