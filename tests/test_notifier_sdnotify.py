"""`monitord run --role notifier` as systemd runs it (systemd/monitord@.service): a real process
on a real PostgreSQL (tests/pg_fixtures.py) and the local Twilio, a notify socket of the test's
own standing in for systemd's. READY once it delivers, WATCHDOG pings, STATUS with what it sent,
RELOADING/READY around a SIGHUP that takes new credentials, a broken config survived, STOPPING
and exit 0 on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.isp import build_sample_isp, write_config
from lab.twilio import TwilioLab
from monitord.demo import until
from monitord.model import StateServer
from monitord.notifier_role import status_line
from monitord.outbox import DeliveryCounts
from monitord.store import Store
from tests.ops_fixtures import NotifySocket, short_dir  # noqa: F401  (fixture)
from tests.outbox_fixtures import queue, sms, twilio, twilio_section  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parent.parent
WATCHDOG_USEC = 400_000  # pings every 0.2 s


def test_status_line_names_the_channels_what_was_sent_and_what_is_held() -> None:
    counts = {
        "sms": DeliveryCounts(sent=3, failed_by=Counter(timeout=1)),
        "email": DeliveryCounts(sent=2, dead_by=Counter(rejected=1)),
    }
    assert status_line(counts, []) == "STATUS=delivering email, sms: 5 sent, 1 failed attempts, 1 dead letters"
    assert status_line(counts, ["sms"]).endswith("1 dead letters; held: sms")
    assert status_line({}, []) == "STATUS=delivering nothing: no notifier configured"


@pytest.fixture
def notify_socket(short_dir: Path) -> Iterator[NotifySocket]:  # noqa: F811  (short_dir is a fixture)
    sock = NotifySocket(short_dir / "notify.sock")
    yield sock
    sock.close()


def after(messages: list[dict[str, str]], start: int, field: str) -> int | None:
    """The index of the first message from `start` on that carries `field`, if any."""
    return next((i for i in range(start, len(messages)) if field in messages[i]), None)


async def test_the_notifier_role_speaks_sd_notify_reloads_on_sighup_and_survives_a_broken_config(
    tmp_path: Path, pg_database: StateServer, twilio: TwilioLab, notify_socket: NotifySocket
) -> None:
    isp = build_sample_isp(tmp_path, base="127.6.45")
    write_config(tmp_path, {"sms": twilio_section(tmp_path, twilio)}, state=pg_database.url, state_file=None)
    store = Store.open(pg_database)
    queue(store, [sms(i) for i in range(3)])
    env = {
        **os.environ,
        "NOTIFY_SOCKET": str(notify_socket.path),
        "WATCHDOG_USEC": str(WATCHDOG_USEC),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    env.pop("WATCHDOG_PID", None)
    log = tmp_path / "notifier.log"
    with log.open("wb") as sink:
        worker = subprocess.Popen(
            [sys.executable, "-m", "monitord.cli", "run", "--role", "notifier", str(isp.config)],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
            env=env,
        )
    messages = notify_socket.drain

    def sent(n: int) -> bool:
        return len(twilio.messages) >= n and store.depth() == 0

    async def hang_up(what: str) -> None:
        """SIGHUP, then RELOADING=1 and READY=1 after it."""
        before = len(messages())
        worker.send_signal(signal.SIGHUP)
        await until(
            lambda: (r := after(messages(), before, "RELOADING")) is not None and after(messages(), r + 1, "READY"), 20, what
        )

    try:
        ready = await until(lambda: after(messages(), 0, "READY") is not None or worker.poll() is not None, 20, "READY=1")
        assert worker.poll() is None, log.read_text()
        ready = after(messages(), 0, "READY")
        assert ready is not None and messages()[ready]["STATUS"].startswith("delivering sms: ")
        await until(lambda: sent(3), 20, "the three queued SMS")
        await until(
            lambda: any(m.get("STATUS", "").endswith(": 3 sent, 0 failed attempts, 0 dead letters") for m in messages()),
            10,
            "the STATUS after three sends",
        )
        pings = len(messages())
        await until(lambda: sum("WATCHDOG" in m for m in messages()[pings:]) >= 3, 10, "WATCHDOG=1 pings")

        # SIGHUP with a new token (and a new SMS rate, which needs a restart): RELOADING, READY,
        # and the next SMS goes out under the new token only.
        new_token = "rotated-lab-token-0123456789"
        write_config(tmp_path, {"sms": twilio_section(tmp_path, twilio, rate=25)})
        (tmp_path / "secrets" / "twilio.token").write_text(new_token + "\n", encoding="utf-8")
        await hang_up("RELOADING=1 then READY=1")
        twilio.auth_token = new_token  # the old token is refused from now on
        queue(store, [sms(3)])
        await until(lambda: sent(4), 20, "an SMS under the new token")
        text = log.read_text()
        warning = next(line for line in text.splitlines() if "take effect at the next restart" in line)
        assert "SMS rate" in warning and "polling" not in warning
        assert new_token not in text

        # A broken config: logged, the running one kept, still alive and delivering.
        isp.config.write_text("notifiers: [\n", encoding="utf-8")
        await hang_up("READY=1 after the rejected reload")
        assert worker.poll() is None
        assert "reload rejected" in log.read_text()
        queue(store, [sms(4)])
        await until(lambda: sent(5), 20, "an SMS after the rejected reload")

        before = len(messages())
        worker.send_signal(signal.SIGTERM)
        await until(lambda: worker.poll() is not None, 20, "the exit after SIGTERM")
        assert worker.returncode == 0, log.read_text()
        stopping = after(messages(), before, "STOPPING")
        assert stopping is not None and after(messages(), stopping, "READY") is None
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        store.close()
    assert sorted(m.body for m in twilio.messages) == sorted(n.body for n in [sms(i) for i in range(5)])
    assert "Traceback" not in log.read_text()
