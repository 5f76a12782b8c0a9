"""Bad paths and model arguments, as a hostile user gives them: one line (exit 2), before any model loads.

The output-path check (:mod:`ahazero.config.output_paths`) and the model-argument check
(:mod:`ahazero.models.model_argument`) are shared by every command; the CLI cases check that each
command uses them (eval, sample, coldstart, calibrate, report, sweep, bench) and that nothing is written or
loaded when they refuse.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import struct
import types
from pathlib import Path

import pytest
import yaml
from helpers import base_config

from ahazero.cache import atomic_files
from ahazero.cache.atomic_files import FileWriteError, atomic_write_text
from ahazero.cli import main
from ahazero.config import output_paths
from ahazero.config.output_paths import (
    OutputPathError,
    check_output_file,
    check_output_folder,
    folder_problem,
)
from ahazero.config.schema import ConfigError, validate_dict
from ahazero.models import loading
from ahazero.models.loading import load_model_and_tokenizer
from ahazero.models.model_argument import (
    ModelArgumentError,
    ModelLoadError,
    check_model_argument,
    model_argument_problem,
)

MINE = "my own notes\n"


def write_config(tmp_path: Path, **changes) -> str:
    path = tmp_path / "c.yaml"
    data = base_config(output_root=str(tmp_path / "runs"), logging={"report_to": []},
                       grpo={"num_generations": 2, "per_device_train_batch_size": 2, "max_steps": 1,
                             "max_completion_length": 4, "save_steps": 1, "gradient_checkpointing": False})
    data.update(changes)
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.fixture
def no_model_loads(monkeypatch):
    """Fail the test if any model loads (every refusal here comes before)."""
    monkeypatch.setattr(loading, "load_model_and_tokenizer", lambda *a, **k: pytest.fail("a model loaded"))


def read_only(monkeypatch, folder: Path, *, filesystem: bool = True) -> None:
    """Make ``folder`` unwritable for the output-path check: a read-only filesystem, or no permission."""
    fake = types.SimpleNamespace(**vars(os))
    fake.access = lambda p, mode, **kw: False if Path(p) == folder else os.access(p, mode, **kw)
    fake.statvfs = lambda p: types.SimpleNamespace(f_flag=os.ST_RDONLY if filesystem else 0)
    monkeypatch.setattr(output_paths, "os", fake)


def disk_full(monkeypatch, folder: Path) -> None:
    """Make the disk holding ``folder`` full, for the output-path check."""
    usage = types.SimpleNamespace(total=10**9, used=10**9, free=0)
    fake = types.SimpleNamespace(disk_usage=lambda p: usage if Path(p) == folder else shutil.disk_usage(p))
    monkeypatch.setattr(output_paths, "shutil", fake)


def failing_fsync(monkeypatch) -> None:
    """A disk that fills while a result file is written (what fsync says then)."""
    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic_files, "os", types.SimpleNamespace(**{**vars(os), "fsync": fsync}))


def one_line(capsys, prefix: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err
    assert lines and lines[-1].startswith(prefix), err
    return lines[-1]


# --- the output-path check --------------------------------------------------------------------


def test_an_existing_file_is_replaced_only_with_overwrite(tmp_path):
    mine = tmp_path / "notes.jsonl"
    mine.write_text(MINE)
    with pytest.raises(OutputPathError, match=r"--out .*notes.jsonl: the file exists; pass --overwrite"):
        check_output_file(mine)
    assert check_output_file(mine, overwrite=True) == mine
    assert check_output_file(tmp_path / "new" / "deeper" / "s.jsonl") == tmp_path / "new" / "deeper" / "s.jsonl"


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: (d / "f.txt").write_text("x") and d / "f.txt" / "s.jsonl", r"f.txt is a file, not a folder"),
    (lambda d: (d / "f.txt").write_text("x") and d / "f.txt" / "a" / "b" / "s.jsonl", r"f.txt is a file, not a folder"),
    (lambda d: (d / "dir").mkdir() or d / "dir", r"a folder; give a file name in it"),
    (lambda d: os.mkfifo(d / "pipe") or d / "pipe", r"a named pipe \(FIFO\), not a file that can be replaced"),
    (lambda d: os.symlink("/no/such/place", d / "link") or d / "link" / "s.jsonl",
     r"link is a symlink to /no/such/place, which does not exist"),
    (lambda d: os.symlink("/no/such/place", d / "link") or d / "link", r"a symlink to /no/such/place"),
    (lambda d: (os.symlink(d / "b", d / "a"), os.symlink(d / "a", d / "b")) and d / "a" / "s.jsonl",
     r"a is a symlink loop"),
    (lambda d: Path("/proc/ahazero.jsonl"), r"inside the system folder /proc"),
    (lambda d: Path("/sys/kernel/s.jsonl"), r"inside the system folder /sys"),
    (lambda d: Path("/etc/ahazero/s.jsonl"), r"inside the system folder /etc"),
])
def test_an_output_file_that_cannot_be_written_is_one_line(tmp_path, make, message):
    with pytest.raises(OutputPathError, match=message) as err:
        check_output_file(make(tmp_path))
    assert "\n" not in str(err.value) and str(err.value).startswith("--out ")


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: (d / "f.md").write_text("x") and d / "f.md", r"--out .*f.md: .*f.md is a file, not a folder$"),
    (lambda d: (d / "f.md").write_text("x") and d / "f.md" / "eval", r"f.md is a file, not a folder"),
    (lambda d: os.symlink("/no/such/place", d / "runs") or d / "runs" / "eval", r"symlink to /no/such/place"),
    (lambda d: os.symlink("loop", d / "loop") or d / "loop" / "x", r"loop is a symlink loop"),
    (lambda d: Path("/proc/self/eval"), r"inside the system folder /proc"),
    (lambda d: Path("/dev/shm/../eval"), r"inside the system folder /dev"),
])
def test_an_output_folder_that_cannot_be_written_is_one_line(tmp_path, make, message):
    with pytest.raises(OutputPathError, match=message):
        check_output_folder(make(tmp_path))


def test_read_only_unwritable_full_and_special_folders_are_refused(tmp_path, monkeypatch):
    target = tmp_path / "out" / "s.jsonl"
    read_only(monkeypatch, tmp_path)
    assert folder_problem(target.parent) == f"{tmp_path} is on a read-only filesystem"
    read_only(monkeypatch, tmp_path, filesystem=False)
    assert folder_problem(target.parent) == f"{tmp_path} is not writable (permissions)"
    monkeypatch.undo()

    disk_full(monkeypatch, tmp_path)
    with pytest.raises(OutputPathError, match=r"the disk holding .* is full; free space on it"):
        check_output_file(target)
    assert folder_problem(target.parent, space=False) is None  # a run directory: training watches its disk
    monkeypatch.undo()

    monkeypatch.setattr(output_paths, "_filesystem_type", lambda p: "proc")  # /proc mounted somewhere else
    with pytest.raises(OutputPathError, match=r"on the kernel's proc filesystem, where no file can be written"):
        check_output_folder(tmp_path / "eval")


def test_a_name_too_long_for_the_filesystem_is_refused_before_any_work(tmp_path, capsys, no_model_loads):
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    with pytest.raises(OutputPathError, match=rf"is too long \({limit - 10} bytes; this filesystem allows {limit}, "
                                              r"and ahazero adds 16 for its temp and lock files\)"):
        check_output_file(tmp_path / ("a" * (limit - 16) + ".jsonl"))
    with pytest.raises(OutputPathError, match=rf"is too long \({limit + 1} bytes; this filesystem allows {limit}\)$"):
        check_output_folder(tmp_path / "new" / ("b" * (limit + 1)) / "eval")
    config = write_config(tmp_path)
    assert main(["coldstart", config, "--n", "2", "--out", str(tmp_path / ("d" * (limit - 6) + ".jsonl"))]) == 2
    assert "is too long" in one_line(capsys, "path error: --out ")
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 1, "reward": 0.5}\n')
    assert main(["report", str(run), "--out", str(tmp_path / ("c" * (limit - 5) + ".html"))]) == 2
    assert "is too long" in one_line(capsys, "path error: --out ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml", "run"]


@pytest.mark.skipif(not os.path.exists("/proc/self/mounts"), reason="Linux only")
def test_the_filesystem_type_is_read_from_the_mount_table():
    assert output_paths._filesystem_type(Path("/proc/self")) == "proc"


def test_a_write_that_fails_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    path.write_text("old\n")
    failing_fsync(monkeypatch)
    with pytest.raises(FileWriteError, match=r"cannot write .*summary.json: No space left on device; free space on "
                                             r"that disk, then run the command again"):
        atomic_write_text(path, "new\n")
    assert path.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


# --- the model-argument check -----------------------------------------------------------------


@pytest.fixture
def models(tmp_path, tiny_model_dir) -> Path:
    """Broken copies of the tiny model, and files that are no model at all."""
    root = tmp_path / "models"
    root.mkdir()
    for name in ("good", "truncated", "no-weights", "bad-config", "list-config", "unknown-arch", "bad-tokenizer"):
        shutil.copytree(tiny_model_dir, root / name)
    weights = root / "truncated" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    (root / "no-weights" / "model.safetensors").unlink()
    (root / "bad-config" / "config.json").write_text('{"model_type": "qwen2", ')
    (root / "list-config" / "config.json").write_text("[1, 2]")
    config = json.loads((root / "unknown-arch" / "config.json").read_text())
    (root / "unknown-arch" / "config.json").write_text(json.dumps({**config, "model_type": "no-such-architecture"}))
    tokenizer = root / "bad-tokenizer" / "tokenizer.json"
    tokenizer.write_text(tokenizer.read_text()[:300])
    (root / "empty").mkdir()
    (root / "no-config").mkdir()
    (root / "no-config" / "weights.bin").write_bytes(b"x")
    (root / "notes.md").write_text(MINE)
    (root / "garbage.gguf").write_bytes(b"not a gguf file at all")
    (root / "magic.gguf").write_bytes(b"GGUF" + struct.pack("<I", 3) + bytes(32))
    os.symlink(root / "nowhere", root / "dangling")
    os.symlink(root / "loop-b", root / "loop-a")
    os.symlink(root / "loop-a", root / "loop-b")
    return root


@pytest.mark.parametrize(("name", "message"), [
    ("notes.md", r"notes.md: a file, not a model; give a model folder \(config.json and weights\), a .gguf file, "
                 r"a hub id \(org/name\) or a named model \(.*tiny\)"),
    ("empty", r"empty: an empty folder, not a model"),
    ("no-config", r"no-config: a folder without config.json \(weights.bin\), not a model"),
    ("bad-config", r"bad-config: config.json is damaged or unreadable \(not JSON\)"),
    ("list-config", r"list-config: config.json is damaged \(not a JSON object\)"),
    ("no-weights", r"no-weights: the model weights are not usable: no model weights"),
    ("truncated", r"truncated: the model weights are not usable: model.safetensors: truncated \(its tensors end "
                  r"at byte \d+, the file has 5000\)"),
    ("garbage.gguf", r"garbage.gguf: not a GGUF file \(it does not start with the GGUF magic bytes\)"),
    ("dangling", r"dangling: .*dangling is a symlink to .*nowhere, which does not exist"),
    ("loop-a", r"loop-a: .*loop-a is a symlink loop"),
    ("missing-folder/", r"missing-folder/: no such file or folder"),
])
def test_a_model_argument_that_names_nothing_loadable_is_one_line(models, name, message):
    with pytest.raises(ModelArgumentError, match=message) as err:
        check_model_argument(str(models / name) if name != "missing-folder/" else "./missing-folder/")
    assert "\n" not in str(err.value)


def test_what_a_model_argument_may_be(models, monkeypatch):
    assert check_model_argument("tiny") == "named"
    assert check_model_argument(str(models / "good")) == "folder"
    assert check_model_argument(str(models / "magic.gguf")) == "gguf"  # the magic is right: loading says the rest
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    assert check_model_argument("Qwen/Qwen2.5-0.5B-Instruct") == "hub"  # online: the shape is enough
    assert "not a named model, a local file or folder, or a hub id" in model_argument_problem("no such/model")
    assert model_argument_problem("").startswith("empty;")


def test_a_hub_id_offline_must_be_in_the_local_cache(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelArgumentError, match=r"--model Qwen/No-Such-Model: not a named model or local path, and "
                                                 r"as a hub id it is not in the local Hugging Face cache while "
                                                 r"HF_HUB_OFFLINE is set; fetch it while online"):
        check_model_argument("Qwen/No-Such-Model")
    with pytest.raises(ModelArgumentError, match=r"did you mean the named model 'tiny'\?"):
        check_model_argument("tinyy")
    assert model_argument_problem("Qwen/No-Such-Model", hub=False) is None


@pytest.mark.parametrize(("name", "message"), [
    ("unknown-arch", r"cannot load the model .*unknown-arch: .*no-such-architecture"),
    ("bad-tokenizer", r"cannot load the tokenizer of .*bad-tokenizer: "),
    ("magic.gguf", r"cannot load the model .*magic.gguf: "),
])
def test_what_only_loading_finds_is_one_line_too(models, name, message):
    assert check_model_argument(str(models / name)) in ("folder", "gguf")  # passes the checks before loading
    with pytest.raises(ModelLoadError, match=message) as err:
        load_model_and_tokenizer(str(models / name))
    assert "\n" not in str(err.value)


# --- every command, from the command line -----------------------------------------------------


@pytest.mark.parametrize("name", ["notes.md", "empty", "bad-config", "no-weights", "truncated", "garbage.gguf",
                                  "dangling", "unknown-arch", "bad-tokenizer"])
def test_eval_model_arguments_exit_2_with_one_line(tmp_path, models, capsys, name):
    config = write_config(tmp_path)
    assert main(["eval", config, "--model", str(models / name), "--limit", "1"]) == 2
    line = one_line(capsys, "model error: ")
    assert name in line
    assert not (tmp_path / "runs" / "t" / "eval").exists()


def test_eval_hub_id_offline_exits_2_before_loading(tmp_path, capsys, no_model_loads):
    assert main(["eval", write_config(tmp_path), "--model", "Qwen/No-Such-Model"]) == 2
    assert "HF_HUB_OFFLINE is set" in one_line(capsys, "model error: --model Qwen/No-Such-Model: ")


def test_sample_and_calibrate_check_their_model_before_loading(tmp_path, models, capsys, no_model_loads):
    config = write_config(tmp_path)
    assert main(["sample", config, "--model", str(models / "truncated"), "--n", "2"]) == 2
    assert "model.safetensors: truncated" in one_line(capsys, "model error: --model ")
    assert main(["calibrate", config, "--model", str(models / "empty"), "--k", "2"]) == 2
    assert "an empty folder, not a model" in one_line(capsys, "model error: --model ")
    assert main(["train", config, f"model.name_or_path={models / 'garbage.gguf'}"]) == 2
    assert "not a GGUF file" in one_line(capsys, "model error: model.name_or_path ")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.jsonl"))


#: (command line after the config, where its output goes); {out} is the --out value.
COMMANDS = {
    "eval": (["eval", "{cfg}", "--model", "base", "--limit", "1", "--out", "{out}"], "folder"),
    "sample": (["sample", "{cfg}", "--model", "base", "--n", "2", "--prompts", "1", "--out", "{out}"], "file"),
    "coldstart": (["coldstart", "{cfg}", "--n", "2", "--out", "{out}"], "file"),
    "calibrate": (["calibrate", "{cfg}", "--k", "2", "--limit", "1", "--out", "{out}"], "file"),
    "report": (["report", "{run}", "--out", "{out}"], "folder"),
    "sweep": (["sweep", "{cfg}", "--grid", "seed=1,2", "--out", "{out}"], "folder"),
    "bench": (["bench", "{cfg}", "--backends", "hf", "--steps", "1", "--warmup", "0", "--out", "{out}"], "file"),
}


@pytest.fixture
def report_run(tmp_path) -> Path:
    run = tmp_path / "runs" / "done"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text('{"step": 1, "reward": 0.5}\n{"step": 2, "reward": 0.7}\n')
    return run


def run_command(command: str, cfg: str, run: Path, out: Path | str, *extra: str) -> int:
    argv, _ = COMMANDS[command]
    return main([a.replace("{cfg}", cfg).replace("{run}", str(run)).replace("{out}", str(out)) for a in argv]
                + list(extra))


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(("place", "message"), [
    ("under-a-file", r"notes.md is a file, not a folder"),
    ("proc", r"inside the system folder /proc"),
    ("dangling", r"is a symlink to /no/such/place, which does not exist"),
])
def test_every_command_refuses_an_unwritable_out_in_one_line(tmp_path, report_run, capsys, no_model_loads,
                                                             command, place, message):
    import re

    notes = tmp_path / "notes.md"
    notes.write_text(MINE)
    os.symlink("/no/such/place", tmp_path / "gone")
    name = "s.jsonl" if COMMANDS[command][1] == "file" else "out"
    out = {"under-a-file": notes / name, "proc": Path("/proc") / name, "dangling": tmp_path / "gone" / name}[place]
    assert run_command(command, write_config(tmp_path), report_run, out) == 2
    assert re.search(message, one_line(capsys, "path error: --out "))
    assert notes.read_text() == MINE


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_out_onto_an_existing_file_is_refused_and_the_file_kept(tmp_path, report_run, capsys, no_model_loads,
                                                                   command):
    notes = tmp_path / "notes.jsonl"
    notes.write_text(MINE)
    assert run_command(command, write_config(tmp_path), report_run, notes) == 2
    line = one_line(capsys, "path error: --out ")
    if COMMANDS[command][1] == "file":
        assert line.endswith("the file exists; pass --overwrite to replace it, or give another --out")
    else:
        assert line.endswith("notes.jsonl is a file, not a folder")
    assert notes.read_text() == MINE


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_full_or_read_only_folder_is_refused_before_any_work(tmp_path, report_run, capsys, no_model_loads,
                                                               monkeypatch, command):
    folder = tmp_path / "outputs"
    folder.mkdir()
    out = folder / ("s.jsonl" if COMMANDS[command][1] == "file" else "out")
    config = write_config(tmp_path)
    disk_full(monkeypatch, folder)
    assert run_command(command, config, report_run, out) == 2
    assert "is full; free space on it" in one_line(capsys, "path error: --out ")
    read_only(monkeypatch, folder)
    assert run_command(command, config, report_run, out) == 2
    assert f"{folder} is on a read-only filesystem" in one_line(capsys, "path error: --out ")
    assert list(folder.iterdir()) == []


def test_a_disk_that_fills_while_eval_writes_is_one_line(tmp_path, capsys, tiny_model_dir, monkeypatch):
    failing_fsync(monkeypatch)
    out = tmp_path / "eval"
    assert main(["eval", write_config(tmp_path), "--model", "base", "--limit", "1", "--out", str(out)]) == 2
    assert "No space left on device; free space on that disk, then run the command again" in one_line(
        capsys, f"write error: cannot write {out}/base-samples.jsonl: ")
    assert list(out.iterdir()) == []  # no temp file left behind


def test_report_rewrites_its_own_report_but_not_a_foreign_file(tmp_path, report_run, capsys):
    pytest.importorskip("matplotlib")
    page = tmp_path / "page.html"
    assert main(["report", str(report_run), "--out", str(page)]) == 0
    capsys.readouterr()
    assert main(["report", str(report_run), "--out", str(page)]) == 0  # a report: rewritten
    capsys.readouterr()
    page.write_text("<p>" + MINE)
    assert main(["report", str(report_run), "--out", str(page)]) == 2
    assert one_line(capsys, "path error: --out ").endswith("pass --overwrite to replace it, or give another --out")
    assert page.read_text() == "<p>" + MINE
    assert main(["report", str(report_run), "--out", str(page), "--overwrite"]) == 0
    assert 'content="ahazero report"' in page.read_text()


# --- run directories and stages ---------------------------------------------------------------


@pytest.mark.parametrize("command", ["train", "check"])
def test_output_root_a_dangling_symlink_or_a_loop_is_one_line(tmp_path, capsys, no_model_loads, command):
    os.symlink("/no/such/place", tmp_path / "gone")
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    config = write_config(tmp_path)
    assert main([command, config, f"output_root={tmp_path / 'gone'}"]) == 2
    assert "gone is a symlink to /no/such/place, which does not exist" in one_line(capsys, "config error: output_root:")
    assert main([command, config, f"output_root={tmp_path / 'loop'}"]) == 2
    assert "loop is a symlink loop" in one_line(capsys, "config error: output_root:")


@pytest.mark.parametrize("name", ["report.md", "config.yaml", "run.json", "report", "stage.json", "metrics.jsonl"])
def test_a_stage_named_like_a_file_of_the_run_is_refused(tmp_path, capsys, name):
    config = write_config(tmp_path, stages=[{"name": name, "kind": "grpo"}])
    assert main(["stages", config]) == 2
    line = one_line(capsys, "config error: ")
    assert f"'{name}' is taken by a file or folder of the stages run itself" in line
    assert not (tmp_path / "runs").exists()
    with pytest.raises(ConfigError, match="is taken"):
        validate_dict(base_config(stages=[{"name": name, "kind": "sft"}]))


def test_the_reserved_stage_names_cover_every_run_entry():
    from ahazero.config.run_paths import RUN_ENTRIES
    from ahazero.config.stage_schema import RESERVED_STAGE_NAMES

    assert set(RUN_ENTRIES) <= RESERVED_STAGE_NAMES
