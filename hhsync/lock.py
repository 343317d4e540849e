"""One lock per fabric: an flock on a file in the state directory. The kernel drops an flock
when its process dies, so a lock left by a killed run never blocks the next one."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hhsync.errors import BusyError, HhsyncError

POLL = 0.2


def state_dir(configured: Path | None) -> Path:
    """[run] state_dir, else $STATE_DIRECTORY (systemd), else /var/lib/hhsync when writable,
    else the user's state directory."""
    if configured is not None:
        return configured
    if env := os.environ.get("STATE_DIRECTORY"):
        return Path(env.split(":")[0])
    system = Path("/var/lib/hhsync")
    if os.access(system if system.exists() else system.parent, os.W_OK):
        return system
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "hhsync"


@contextmanager
def fabric_lock(directory: Path, fabric: str, wait: float) -> Iterator[None]:
    """Hold fabric's lock; wait up to `wait` seconds for another run, then raise BusyError."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / f"{fabric}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        raise HhsyncError(f"cannot create the lock file in {directory}: {e.strerror}") from None
    try:
        give_up = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= give_up:
                    raise BusyError(
                        f"another run of fabric {fabric} holds its lock "
                        f"({directory / f'{fabric}.lock'}); waited {wait:g}s"
                    ) from None
                time.sleep(POLL)
        yield
    finally:
        os.close(fd)  # releases the flock
