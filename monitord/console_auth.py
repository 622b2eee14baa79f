"""Who may use the web console, and how they stay signed in (monitord/console.py serves it).

Passwords are kept only as scrypt lines (`monitord passwd` prints one): a stolen config gives a
slow guess per password, never the password. A session is a random id in an HttpOnly,
SameSite=Strict cookie, looked up here (server-side, in memory: a restart signs everyone out),
and ends `ConsoleConfig.session` after sign-in; each session has its own CSRF token that every
form carries and every POST must return. Sign-in attempts are limited per client address and
per user name, so guessing costs minutes per handful of tries. Pure but for the clock given in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from monitord.ratelimit import TokenBucket

ROLES = ("noc", "helpdesk", "readonly")
CAN: dict[str, frozenset[str]] = {  # what each role may change; every role may read
    "noc": frozenset({"ack", "take", "note", "silence", "expire_silence", "plan_maintenance", "cancel_maintenance"}),
    "helpdesk": frozenset(),
    "readonly": frozenset(),
}
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # about 16 MiB and tens of milliseconds per try
SCRYPT_MAX_N = 2**20
MAX_PASSWORD = 1024  # characters: a longer one is refused before it is hashed
MAX_SESSIONS = 10_000  # the oldest are forgotten beyond
LOGIN_RATE = 1 / 30  # failed sign-ins a second, after the burst, per client address and per user name
LOGIN_BURST_USER = 5  # failed sign-ins in a row for one user name
LOGIN_BURST_ADDRESS = 20  # ... and from one address (an office behind one NAT address)
MAX_TRACKED = 10_000  # client addresses and names remembered for the sign-in limit


def hash_password(password: str, salt: bytes | None = None) -> str:
    """`scrypt$N$r$p$salt$hash`, salt and hash in base64: the line a user's `password` holds."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    encode = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${encode(salt)}${encode(digest)}"


def password_line(value: str) -> str:
    """Check a stored line's form (the config's parser reports it): ValueError for anything else,
    a plaintext password above all."""
    parts = value.split("$") if isinstance(value, str) else []
    if len(parts) != 6 or parts[0] != "scrypt":
        raise ValueError("not a password hash (scrypt$N$r$p$salt$hash)")
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, digest = base64.b64decode(parts[4], validate=True), base64.b64decode(parts[5], validate=True)
    except ValueError:
        raise ValueError("not a password hash: N, r and p are numbers, salt and hash base64") from None
    if not (2**10 <= n <= SCRYPT_MAX_N and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16):
        raise ValueError(f"scrypt N={n} r={r} p={p}: N a power of two from 1024 to {SCRYPT_MAX_N}, r 1-32, p 1-16")
    if len(salt) < 8 or len(digest) < 16:
        raise ValueError("a salt of at least 8 bytes and a hash of at least 16 bytes are required")
    return value


def verify_password(password: str, line: str) -> bool:
    """Whether `password` is the one `line` was made from (constant-time comparison)."""
    if len(password) > MAX_PASSWORD:
        return False
    _, n, r, p, salt, digest = line.split("$")
    expected = base64.b64decode(digest)
    given = hashlib.scrypt(
        password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected), maxmem=2**30
    )
    return hmac.compare_digest(given, expected)


def allowed(role: str, action: str) -> bool:
    return action in CAN.get(role, frozenset())


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    user: str
    role: str
    csrf: str
    expires: float


@dataclass(slots=True)
class Sessions:
    """Signed-in users by session id, in memory; an expired session is gone when next looked up."""

    lifetime: float
    by_id: dict[str, Session] = field(default_factory=dict)

    def open(self, user: str, role: str, now: float) -> Session:
        """A new session; the expired ones are forgotten here, so that unused ones do not pile up."""
        for gone in [s.id for s in self.by_id.values() if s.expires <= now]:
            del self.by_id[gone]
        if len(self.by_id) >= MAX_SESSIONS:
            for old in list(self.by_id)[: MAX_SESSIONS // 2]:
                del self.by_id[old]
        session = Session(secrets.token_urlsafe(32), user, role, secrets.token_urlsafe(32), now + self.lifetime)
        self.by_id[session.id] = session
        return session

    def get(self, session_id: str | None, now: float) -> Session | None:
        session = self.by_id.get(session_id or "")
        if session is not None and session.expires <= now:
            del self.by_id[session.id]
            return None
        return session

    def close(self, session_id: str) -> None:
        self.by_id.pop(session_id, None)


def csrf_ok(session: Session, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), session.csrf.encode())


@dataclass(slots=True)
class LoginLimit:
    """Failed sign-ins, limited per client address and per user name (a slow guess from many
    addresses): a person who types the password right is never held up by the limit."""

    buckets: dict[str, TokenBucket] = field(default_factory=dict)

    def allowed(self, client: str, user: str, now: float) -> bool:
        return all(self._bucket(key, burst, now).available(now) for key, burst in self._keys(client, user))

    def failed(self, client: str, user: str, now: float) -> None:
        for key, burst in self._keys(client, user):
            self._bucket(key, burst, now).take(now)

    @staticmethod
    def _keys(client: str, user: str) -> tuple[tuple[str, int], ...]:
        return (f"addr:{client}", LOGIN_BURST_ADDRESS), (f"user:{user.lower()[:64]}", LOGIN_BURST_USER)

    def _bucket(self, key: str, burst: int, now: float) -> TokenBucket:
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) >= MAX_TRACKED:
                for old in list(self.buckets)[: MAX_TRACKED // 2]:
                    del self.buckets[old]
            bucket = self.buckets[key] = TokenBucket(LOGIN_RATE, burst, now)
        return bucket
