"""Reading the files a config names, without trusting what they are.

A config may point a secret at /dev/zero (read until memory runs out) or at a FIFO (open blocks
for ever). Files are opened non-blocking, checked to be regular files with fstat before a byte
is read, and read only up to a size limit.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

SECRET_LIMIT = 64 * 1024
CONFIG_LIMIT = 16 * 1024 * 1024
INVENTORY_LIMIT = 512 * 1024 * 1024


def read_regular_file(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of `path`; OSError (with a `strerror` meant for people) if it is not a regular
    file or holds more than `limit` bytes."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file (a device, FIFO or socket)", str(path))
        chunks, size = [], 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise OSError(errno.EFBIG, f"larger than {_size(limit)}", str(path))
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_regular_text(path: str | os.PathLike[str], limit: int) -> str:
    """`read_regular_file` decoded as UTF-8 (UnicodeDecodeError if it is not)."""
    return read_regular_file(Path(path), limit).decode("utf-8")


def _size(limit: int) -> str:
    for unit, factor in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if limit >= factor:
            return f"{limit // factor} {unit}"
    return f"{limit} bytes"
