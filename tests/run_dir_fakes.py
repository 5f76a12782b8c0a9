"""Stand-ins for what a run directory meets in the wild: another writer holding its lock, a full disk."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import types
from pathlib import Path

from helpers import REPO

LOCKER = """
import sys, time
from ahazero.observe.run_lock import RunLock
RunLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(120)
"""


def hold_lock(root: Path) -> subprocess.Popen:
    """Another process that takes the run's lock and keeps it until killed (the caller kills it)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO)]))
    child = subprocess.Popen([sys.executable, "-c", LOCKER, str(root)], stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout.readline().strip() == "locked"
    return child


def full_disk_os(after_bytes: int = 100) -> types.SimpleNamespace:
    """``os`` whose ``write`` fills the disk after ``after_bytes`` bytes (ENOSPC)."""
    budget = [after_bytes]

    def write(fd, data):
        if budget[0] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = os.write(fd, bytes(data[: budget[0]]))
        budget[0] -= n
        return n

    fake = types.SimpleNamespace(**{k: getattr(os, k) for k in dir(os) if not k.startswith("__")})
    fake.write = write
    return fake
