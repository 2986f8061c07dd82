"""One run per sync at a time: an exclusive ``flock`` on a lock file next to the warehouse.

The lock dies with the process (even on SIGKILL), so a crashed run never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

from reverse_etl.project import ProjectError


class SyncLocked(ProjectError):
    """Another run of the same sync holds the lock."""


_held: dict[str, tuple[int, int, int]] = {}  # path -> (fd, owning thread, depth)
_guard = threading.Lock()


def lock_path(warehouse_path: Path, sync_name: str) -> Path:
    return warehouse_path.parent / f".{warehouse_path.name}.sync-{sync_name}.lock"


class SyncLock:
    """Exclusive, non-blocking, re-entrant within one thread."""

    def __init__(self, warehouse_path: Path, sync_name: str) -> None:
        self.path = lock_path(Path(warehouse_path), sync_name)
        self.sync_name = sync_name

    def acquire(self) -> None:
        key = str(self.path)
        with _guard:
            held = _held.get(key)
            if held is not None:
                fd, owner, depth = held
                if owner == threading.get_ident():
                    _held[key] = (fd, owner, depth + 1)
                    return
                raise SyncLocked(
                    f"sync '{self.sync_name}' is already running in this process; wait for it to finish"
                )
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
                os.close(fd)
                raise SyncLocked(
                    f"sync '{self.sync_name}' is already running ({holder}); wait for it to finish. "
                    f"The lock is {self.path} and is released when that process exits."
                ) from None
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()}".encode())
            _held[key] = (fd, threading.get_ident(), 1)

    def release(self) -> None:
        key = str(self.path)
        with _guard:
            held = _held.get(key)
            if held is None:
                return
            fd, owner, depth = held
            if depth > 1:
                _held[key] = (fd, owner, depth - 1)
                return
            del _held[key]
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> SyncLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
