"""A stand-in for NetBox's REST API in the tests: replays the documented responses kept in
tests/fixtures/netbox/ (NetBox 4.3 shapes) from a threaded http.server on 127.0.0.1.

It does what a client of NetBox depends on and nothing more: `Authorization: Token <token>`
checked on every call (403 {"detail": "Invalid token"} as NetBox answers otherwise), each list
served a page at a time by `limit` and `offset` with `count`, and `next` / `previous` URLs
pointing back at this server, `/api/` answering with an API-Version header. `fail_with` makes
every list answer an HTTP error instead (a NetBox in trouble). Each request is recorded.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).parent / "fixtures" / "netbox"
LISTS = {
    "/api/dcim/regions/": "dcim_regions.json",
    "/api/dcim/sites/": "dcim_sites.json",
    "/api/dcim/devices/": "dcim_devices.json",
}


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def lists(extra_devices: tuple[str, ...] = ()) -> dict[str, list[dict[str, Any]]]:
    """Each list's objects from the replayed responses, plus single-device responses appended."""
    objects = {path: fixture(name)["results"] for path, name in LISTS.items()}
    objects["/api/dcim/devices/"] += [fixture(f"dcim_device_{name}.json") for name in extra_devices]
    return objects


@dataclass
class Replay:
    token: str
    objects: Mapping[str, list[dict[str, Any]]]
    fail_with: int | None = None
    url: str = ""
    requests: list[str] = field(default_factory=list)


def _handler(replay: Replay) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            replay.requests.append(self.path)
            if self.headers.get("Authorization") != f"Token {replay.token}":
                return self._answer(403, {"detail": "Invalid token"})
            if parts.path == "/api/":
                return self._answer(200, {"dcim": f"{replay.url}/api/dcim/"}, {"API-Version": "4.3"})
            if parts.path not in replay.objects:
                return self._answer(404, {"detail": "Not found."})
            if replay.fail_with is not None:
                return self._answer(replay.fail_with, {"detail": "Internal server error"})
            query = parse_qs(parts.query)
            limit = int(query.get("limit", ["50"])[0]) or 50
            offset = int(query.get("offset", ["0"])[0])
            objects = replay.objects[parts.path]
            here = f"{replay.url}{parts.path}"
            after = offset + limit
            self._answer(
                200,
                {
                    "count": len(objects),
                    "next": f"{here}?limit={limit}&offset={after}" if after < len(objects) else None,
                    "previous": (f"{here}?limit={limit}" + (f"&offset={offset - limit}" if offset > limit else ""))
                    if offset
                    else None,
                    "results": objects[offset:after],
                },
            )

        def _answer(self, status: int, body: Any, headers: Mapping[str, str] = {}) -> None:
            data = json.dumps(body, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextmanager
def serving(replay: Replay) -> Iterator[Replay]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(replay))
    replay.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield replay
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
