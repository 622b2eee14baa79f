"""Types of probes/_ber.c, the C part of probes/ber.py."""

from collections.abc import Sequence
from typing import Any

BerError: type[ValueError]

def read_response(data: bytes, /) -> tuple[int, bytes, int, int, int, int]: ...
def rates(values: Sequence[int], bits: bytes, previous: Any, times: Any, now: float, scale: float, /) -> list[float | None]: ...

class Walk:
    """The columns of one walk, each the contents octets of its OID. `feed(data, at, active)`
    reads a reply's varbinds from `at` (a `Header.varbinds_at`), the columns `active` (numbers)
    asked in that order: it raises `BerError` on a malformed list, else returns (varbinds,
    values of unknown types skipped, columns done, None) or, if a name did not increase, with
    (that name, the column's last name) last and the walk over. `last(column)` is the name to
    ask next; `cells(column)` its (indexes, tags, values) so far."""

    def __init__(self, prefixes: Sequence[bytes], /) -> None: ...
    def feed(self, data: bytes, at: int, active: list[int], /) -> tuple[int, int, list[int], tuple[bytes, bytes] | None]: ...
    def last(self, column: int, /) -> bytes: ...
    def cells(self, column: int, /) -> tuple[list[tuple[int, ...]], bytes, list[Any]]: ...
