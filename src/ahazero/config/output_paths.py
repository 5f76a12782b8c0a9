"""Where a command may write: one check of every output path, before any model loads.

An output folder (``--out`` of ``eval``, ``sweep``, ``report``; a run directory) may be
written when it is a folder or can be created: the nearest part of the path that exists is
a folder (not a file, not a symlink to nowhere or a symlink loop), writable, on a disk with
free space, not inside a system folder (:data:`SYSTEM_FOLDERS`, also after resolving
symlinks) and not on a special filesystem (``proc``, ``sysfs``, ...). An output file
(``--out`` of ``sample``, ``coldstart``, ``calibrate``, ``report --out x.html``) must also
not be a folder or a special file, and an existing file is replaced only with
``--overwrite``. Every refusal is one line naming the flag, the path and what to do.

Example:
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "notes.md").write_text("mine")
    >>> check_output_file(folder / "notes.md")
    Traceback (most recent call last):
    ...
    ahazero.config.output_paths.OutputPathError: --out .../notes.md: the file exists; pass --overwrite to replace it, or give another --out
    >>> check_output_folder(folder / "notes.md" / "eval")
    Traceback (most recent call last):
    ...
    ahazero.config.output_paths.OutputPathError: --out .../notes.md/eval: .../notes.md is a file, not a folder
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Sequence
from pathlib import Path

from ahazero.cache.paths import file_kind
from ahazero.config.schema import ConfigError

__all__ = ["SPECIAL_FILESYSTEMS", "SYSTEM_FOLDERS", "OutputPathError", "broken_symlink", "check_output_file",
           "check_output_files", "check_output_folder", "folder_problem", "system_folder"]

#: Folders nothing is written into (nor anything below them).
SYSTEM_FOLDERS = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run",
                  "/sbin", "/sys", "/usr", "/var/lib", "/var/log", "/var/cache", "/var/spool", "/var/run",
                  "/System", "/Library", "/private/etc", "/private/var/db")

#: Filesystems of the kernel's own, wherever they are mounted: a file there is not a file.
SPECIAL_FILESYSTEMS = frozenset({
    "proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "debugfs", "tracefs", "securityfs", "pstore",
    "bpf", "configfs", "fusectl", "mqueue", "hugetlbfs", "binfmt_misc", "efivarfs", "autofs", "rpc_pipefs",
    "nsfs", "selinuxfs"})


class OutputPathError(ConfigError):
    """An output path a command cannot (or may not) write; the message names the flag and the path."""


def _inside(path: Path, folder: str) -> bool:
    parts = Path(folder).parts
    return path.parts[: len(parts)] == parts


def system_folder(path: str | Path) -> str | None:
    """The system folder ``path`` lies in (as written or with symlinks resolved), or None.

    Example:
        >>> system_folder("/proc/self/x"), system_folder("runs/demo")
        ('/proc', None)
    """
    for candidate in (Path(os.path.abspath(path)), Path(os.path.realpath(path))):
        for folder in SYSTEM_FOLDERS:
            if _inside(candidate, folder):
                return folder
    return None


def _filesystem_type(path: Path) -> str | None:
    """The filesystem type of the mount holding ``path`` (Linux: from /proc/self/mounts), or None."""
    try:
        with open("/proc/self/mounts", encoding="utf-8") as fh:
            mounts = [line.split() for line in fh]
    except OSError:
        return None
    real = os.path.realpath(path)
    best, kind = "", None
    for fields in mounts:
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
        if (real == point or real.startswith(point.rstrip("/") + "/")) and len(point) > len(best):
            best, kind = point, fields[2]
    return kind


def broken_symlink(path: str | Path) -> str | None:
    """What is wrong when ``path`` is a symlink that leads nowhere (a loop, or a missing target); else None.

    Example:
        >>> import os, tempfile
        >>> link = os.path.join(tempfile.mkdtemp(), "runs")
        >>> os.symlink("/no/such/folder", link)
        >>> broken_symlink(link)
        '.../runs is a symlink to /no/such/folder, which does not exist'
    """
    path = Path(path)
    if not path.is_symlink():
        return None
    try:
        os.stat(path)
    except OSError as err:
        target = os.readlink(path)
        if err.errno == errno.ELOOP:
            return f"{path} is a symlink loop (it points to {target}, which leads back to it)"
        return f"{path} is a symlink to {target}, which does not exist"
    return None


def _existing_part(path: Path) -> tuple[Path | None, str | None]:
    """The nearest part of ``path`` that exists (itself or an ancestor), or why the path cannot be followed."""
    probe = path
    while True:
        if os.path.lexists(probe):
            problem = broken_symlink(probe)
            return (None, problem) if problem else (probe, None)
        if probe.parent == probe:
            return None, f"no part of {path} exists"
        probe = probe.parent


#: What ahazero adds to a file's name for its temp file and lock (``.<name>.<random>.tmp``, ``.<name>.lock``).
NAME_ROOM = 16


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return 255


def _long_name(name: str, limit: int, room: int = 0) -> str | None:
    size = len(name.encode("utf-8", errors="surrogateescape"))
    if size + room <= limit:
        return None
    extra = f", and ahazero adds {room} for its temp and lock files" if room else ""
    return f"the name {name[:20]}... is too long ({size} bytes; this filesystem allows {limit}{extra})"


def folder_problem(path: str | Path, *, space: bool = True) -> str | None:
    """Why a folder cannot be written at ``path`` (created when missing), or None when it can.

    With ``space`` a disk without a free byte is a problem too (a training run instead
    watches its disk while it writes, and says so when it fills).

    Example:
        >>> import tempfile
        >>> folder_problem(tempfile.mkdtemp() + "/new/eval") is None
        True
        >>> folder_problem("/proc/ahazero")
        'inside the system folder /proc; give a folder of your own'
    """
    path = Path(path)
    folder = system_folder(path)
    if folder is not None:
        return f"inside the system folder {folder}; give a folder of your own"
    existing, problem = _existing_part(path)
    if problem is not None:
        return problem
    assert existing is not None
    if not existing.is_dir():
        kind = file_kind(existing.stat().st_mode)
        return f"{existing} is a {'file' if kind == 'regular file' else kind}, not a folder"
    limit = _name_max(existing)
    for part in path.relative_to(existing).parts if path != existing else ():
        problem = _long_name(part, limit)
        if problem is not None:
            return problem
    fs = _filesystem_type(existing)
    if fs in SPECIAL_FILESYSTEMS:
        return f"{existing} is on the kernel's {fs} filesystem, where no file can be written"
    if not os.access(existing, os.W_OK | os.X_OK):
        try:
            read_only = bool(os.statvfs(existing).f_flag & os.ST_RDONLY)
        except OSError:
            read_only = False
        return f"{existing} is {'on a read-only filesystem' if read_only else 'not writable (permissions)'}"
    try:
        full = space and shutil.disk_usage(existing).free == 0
    except OSError:
        full = False
    if full:
        return f"the disk holding {existing} is full; free space on it, or choose a folder on another disk"
    return None


def check_output_folder(path: str | Path, *, flag: str = "--out") -> Path:
    """``path`` as a :class:`Path` when a folder may be written there; else :class:`OutputPathError`.

    Example:
        >>> check_output_folder("/proc/eval")
        Traceback (most recent call last):
        ...
        ahazero.config.output_paths.OutputPathError: --out /proc/eval: inside the system folder /proc; give a folder of your own
    """
    path = Path(path)
    problem = folder_problem(path)
    if problem is not None:
        raise OutputPathError(f"{flag} {path}: {problem}")
    return path


def check_output_file(path: str | Path, *, flag: str = "--out", overwrite: bool = False) -> Path:
    """``path`` as a :class:`Path` when a file may be written there; else :class:`OutputPathError`.

    An existing regular file is replaced only with ``overwrite``; a folder, a special file or
    a symlink to nowhere never is.

    Example:
        >>> import tempfile
        >>> check_output_file(tempfile.mkdtemp(), flag="--out")
        Traceback (most recent call last):
        ...
        ahazero.config.output_paths.OutputPathError: --out ...: a folder; give a file name in it (e.g. .../samples.jsonl)
    """
    path = Path(path)
    if os.path.lexists(path):
        problem = broken_symlink(path)
        if problem is not None:
            raise OutputPathError(f"{flag} {path}: {problem}")
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise OutputPathError(f"{flag} {path}: a folder; give a file name in it (e.g. {path / 'samples.jsonl'})")
        if not stat.S_ISREG(mode):
            raise OutputPathError(f"{flag} {path}: a {file_kind(mode)}, not a file that can be replaced")
        if not overwrite:
            raise OutputPathError(f"{flag} {path}: the file exists; pass --overwrite to replace it, or give another "
                                  f"{flag}")
    problem = folder_problem(path.parent)
    if problem is None:
        existing, _ = _existing_part(path.parent)
        problem = _long_name(path.name, _name_max(existing or path.parent), NAME_ROOM)
    if problem is not None:
        raise OutputPathError(f"{flag} {path}: {problem}")
    return path


def check_output_files(paths: Sequence[str | Path], *, flag: str = "--out", overwrite: bool = False) -> list[Path]:
    """:func:`check_output_file` for every file one output writes (a samples file and its siblings).

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp()
        >>> [p.name for p in check_output_files([d + "/s.jsonl", d + "/s.summary.json"])]
        ['s.jsonl', 's.summary.json']
    """
    return [check_output_file(p, flag=flag, overwrite=overwrite) for p in paths]
