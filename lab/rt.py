"""A real Request Tracker 5 on loopback, for the helpdesk tests and the demo.

Each instance lives in its own state directory: its RT_SiteConfig, SQLite database, log, mail
and auth token. RT's packaged config in /etc is never read (RT_SITE_CONFIG points here).
Packages come from scripts/install-rt.sh.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from monitord.model import Secret

RT_SERVER = Path("/usr/share/request-tracker5/libexec/rt-server")
RT_SETUP_DATABASE = Path("/usr/sbin/rt-setup-database-5")
SCRIPTS = Path(__file__).resolve().parent.parent / "scripts" / "rt"
QUEUE = "Network Outages"
FIELD_QUEUE = "Saha Ekibi"  # dispatch tickets (notifiers.tickets.dispatch.queue)
USERNAME = "monitord"
_LOG_FAILURES = ("[error]", "[critical]", "[alert]", "[emergency]")


class RtError(RuntimeError):
    """RT is missing, or could not be set up or started."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RtServer:
    """One RT instance: `create()` once, then `start()` / `stop()` as often as needed.

    The port is chosen once, so a client configured with `url` finds the helpdesk again after
    a stop and start (the tests use that to play a helpdesk outage).
    """

    def __init__(self, state_dir: Path, port: int | None = None, workers: int = 4) -> None:
        self.state_dir = state_dir.resolve()
        self.port = port or free_port()
        self.workers = workers
        self.url = f"http://127.0.0.1:{self.port}"
        self.queue = QUEUE
        self.username = USERNAME
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def password(self) -> Secret:
        path = self.state_dir / "password"
        return Secret(path.read_text().strip(), f"file:{path}")

    @property
    def token(self) -> Secret:
        path = self.state_dir / "token"
        return Secret(path.read_text().strip(), f"file:{path}")

    @property
    def log(self) -> Path:
        return self.state_dir / "rt.log"

    def create(self) -> None:
        """Write the config and create the database, the queue, the API user and its token."""
        if not (RT_SERVER.exists() and RT_SETUP_DATABASE.exists()):
            raise RtError("Request Tracker 5 is not installed: run scripts/install-rt.sh as root")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "RT_SiteConfig.d").mkdir(exist_ok=True)
        template = (SCRIPTS / "RT_SiteConfig.pm.in").read_text()
        config = template.replace("@DIR@", str(self.state_dir)).replace("@PORT@", str(self.port))
        (self.state_dir / "RT_SiteConfig.pm").write_text(config)
        sendmail = self.state_dir / "sendmail"
        sendmail.write_text(f'#!/bin/sh\ncat >> "{self.state_dir}/mail.out"\n')
        sendmail.chmod(0o755)
        password = self.state_dir / "password"
        password.write_text(secrets.token_urlsafe(16))
        password.chmod(0o600)
        setup_env = self._env() | {
            "MONITORD_RT_PASSWORD": password.read_text(),
            "MONITORD_RT_TOKEN_FILE": str(self.state_dir / "token"),
        }
        # The initialdata goes in a second run: with --datafile, `init` would read it as the schema.
        self._setup(setup_env, "--action", "create,schema,acl,coredata")
        self._setup(setup_env, "--action", "insert", "--datafile", str(SCRIPTS / "initialdata"))
        if not (self.state_dir / "token").exists():
            raise RtError(f"rt-setup-database made no token; see {self.log}")

    def start(self, timeout: float = 30.0) -> None:
        """Start rt-server on 127.0.0.1 and return once REST 2.0 answers."""
        if self._process is not None:
            return
        with open(self.state_dir / "server.log", "ab") as out:
            self._process = subprocess.Popen(
                [str(RT_SERVER), "--host", "127.0.0.1", "--port", str(self.port), "--max-workers", str(self.workers)],
                cwd=self.state_dir,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = (self.state_dir / "server.log").read_text(errors="replace")[-2000:]
                raise RtError(f"rt-server did not come up on {self.url}:\n{tail}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop the server and its workers; the database stays for the next start()."""
        process, self._process = self._process, None
        if process is None:
            return
        # SIGTERM, not SIGINT: rt-server's SIGINT handler chowns /var/lib/request-tracker5.
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:  # it exited by itself (one that failed to start): say why, not this
            process.wait()
            return
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def __enter__(self) -> RtServer:
        if not (self.state_dir / "token").exists():
            self.create()
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def get(self, path: str) -> object:
        """GET a REST 2.0 resource as the API user: for tests that read back what was sent."""
        request = urllib.request.Request(f"{self.url}/REST/2.0/{path}", headers={"Authorization": f"token {self.token.reveal()}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def put(self, path: str, body: object) -> object:
        """PUT a REST 2.0 resource as the API user: for tests that play the helpdesk."""
        request = urllib.request.Request(
            f"{self.url}/REST/2.0/{path}",
            data=json.dumps(body).encode(),
            method="PUT",
            headers={"Authorization": f"token {self.token.reveal()}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def _env(self) -> dict[str, str]:
        return os.environ | {
            "RT_SITE_CONFIG": str(self.state_dir / "RT_SiteConfig.pm"),
            "RT_SITE_CONFIG_DIR": str(self.state_dir / "RT_SiteConfig.d"),
        }

    def _setup(self, env: dict[str, str], *args: str) -> None:
        """Run rt-setup-database; it exits 0 even when initial data rows fail, so read the log."""
        done = subprocess.run(
            [str(RT_SETUP_DATABASE), *args],
            cwd=self.state_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        )
        failures = (
            [line for line in self.log.read_text(errors="replace").splitlines() if any(level in line for level in _LOG_FAILURES)]
            if self.log.exists()
            else []
        )
        if done.returncode or failures:
            detail = "\n".join(failures) or (done.stdout + done.stderr)[-2000:]
            raise RtError(f"rt-setup-database {' '.join(args)} failed:\n{detail}")

    def _answers(self) -> bool:
        try:
            self.get("queues/all")
        except (OSError, ValueError):
            return False
        return True
