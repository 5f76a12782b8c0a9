"""Cross-checks before any model loads: rewards, tasks, columns, GRPO settings, run directory."""

from __future__ import annotations

import os

import pytest
from helpers import REPO, base_config

from ahazero.config.schema import ConfigError, validate_dict
from ahazero.config.validate import build_grpo_config, check_config


def check(**changes):
    return check_config(validate_dict(base_config(**changes)), cuda=False)


def test_valid_config_resolves_everything(tmp_path):
    checked = check(output_root=str(tmp_path))
    assert [f.__name__ for f in checked.reward_funcs] == ["accuracy", "think_format"]
    assert checked.reward_weights == [1.0, 0.5]
    assert checked.grpo_args.reward_weights == [1.0, 0.5]
    assert checked.grpo_args.output_dir == str(tmp_path / "t" / "checkpoints")
    assert checked.grpo_args.use_cpu and not checked.grpo_args.bf16
    assert checked.grpo_args.seed == 0 and checked.task.seed == 0


def test_unknown_reward_names_valid_choices():
    with pytest.raises(ConfigError) as err:
        check(rewards=[{"name": "acuracy"}])
    msg = str(err.value)
    assert msg.startswith("rewards.0.name")
    for name in ("accuracy", "think_format", "language_consistency", "countdown"):
        assert name in msg


def test_unknown_reward_option_names_valid_options():
    with pytest.raises(ConfigError, match=r"rewards.0.*require_answer_tagz.*require_answer_tags"):
        check(rewards=[{"name": "think_format", "require_answer_tagz": True}])


def test_bad_dotted_reward_path():
    with pytest.raises(ConfigError, match="rewards.0"):
        check(rewards=[{"name": "no_such_module_xyz:func"}])


def test_reward_needing_a_missing_column():
    with pytest.raises(ConfigError, match=r"rewards.0 \('countdown'\) needs dataset column\(s\) numbers, target"):
        check(rewards=[{"name": "countdown"}])


def test_unknown_task_and_option():
    with pytest.raises(ConfigError, match=r"task.name.*arithmetic"):
        check(task={"name": "arithmatic"})
    with pytest.raises(ConfigError, match=r"task.*max_termz"):
        check(task={"name": "arithmetic", "max_termz": 3})


def test_unknown_grpo_key_suggests_close_match():
    with pytest.raises(ConfigError, match=r"unknown key 'grpo.learning_rat'.*did you mean 'learning_rate'"):
        check(grpo={"learning_rat": 1e-6})


def test_grpo_wrong_type():
    with pytest.raises(ConfigError, match=r"grpo.learning_rate: expected float"):
        check(grpo={"learning_rate": "fast"})
    with pytest.raises(ConfigError, match=r"grpo.max_steps: expected int"):
        check(grpo={"max_steps": 2.5})


def test_grpo_keys_owned_by_ahazero():
    with pytest.raises(ConfigError, match=r"grpo.output_dir is set by ahazero"):
        check(grpo={"output_dir": "/tmp/x"})
    with pytest.raises(ConfigError, match=r"grpo.reward_weights.*weight"):
        check(grpo={"reward_weights": [1.0]})


def test_batch_not_divisible_by_generations():
    with pytest.raises(ConfigError, match=r"divisible by num_generations \(3\)"):
        check(grpo={"num_generations": 3, "per_device_train_batch_size": 8})


def test_single_generation_rejected():
    with pytest.raises(ConfigError, match=r"grpo.num_generations: 1 is out of range; valid: an integer >= 2"):
        check(grpo={"num_generations": 1, "per_device_train_batch_size": 8})


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_root_nonroot(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(ConfigError, match="output_root"):
        check(output_root=str(locked / "runs"))


def test_output_root_under_a_file(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="output_root: cannot write"):
        check(output_root=str(blocker / "runs"))


def test_bf16_on_gpu_by_default():
    cfg = validate_dict(base_config())
    # cuda=True cannot be built without a GPU, but bf16 stays off for the CPU profile
    assert build_grpo_config(cfg, cuda=False).bf16 is False


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
@pytest.mark.parametrize("gpu_profile", [True, False], ids=["gpu-profile", "cpu-profile"])
def test_shipped_configs_pass_every_check(path, gpu_profile, tmp_path):
    from ahazero.config.schema import load_config
    from ahazero.training.assemble import resolve_for_device

    cfg = resolve_for_device(load_config(path, [f"output_root={tmp_path}"]), cuda=gpu_profile)
    # TRL's batch-size rules are checked for both profiles (a GPU config is built with use_cpu here)
    checked = check_config(cfg, cuda=False)
    assert checked.reward_funcs and checked.task.name == cfg.task.name


def test_default_recipe_requires_one_answer_block():
    from ahazero.config.schema import load_config

    checked = check_config(load_config(REPO / "configs" / "default.yaml"), cuda=False)
    fmt = next(f for f in checked.reward_funcs if f.__name__ == "think_format")
    good = "<think>\n44 * 6 = 264\n</think>\n<answer>264</answer>"
    scratch = "<think>\ncomputing\n</think>\n<answer>44 * 6</answer>\n<answer>264</answer>"
    assert fmt(completions=[good, scratch, good + "\n```"]) == [1.0, 0.0, 0.0]


# Numbers TRL accepts and then crashes on, or trains something else with.

@pytest.mark.parametrize(
    ("grpo", "message"),
    [
        ({"per_device_train_batch_size": 0}, "grpo.per_device_train_batch_size: 0 is out of range; valid: an integer >= 1"),
        ({"per_device_train_batch_size": -8}, "grpo.per_device_train_batch_size: -8 is out of range"),
        ({"max_completion_length": -1}, "grpo.max_completion_length: -1 is out of range; valid: an integer >= 1"),
        ({"learning_rate": float("nan")}, "grpo.learning_rate: nan is out of range; valid: a finite number > 0"),
        ({"learning_rate": float("inf")}, "grpo.learning_rate: inf is out of range"),
        ({"learning_rate": -1}, "grpo.learning_rate: -1 is out of range"),
        ({"max_steps": -5}, "grpo.max_steps: -5 is out of range; valid: a positive number of steps; to train by "
                            "epochs leave max_steps out (or -1) and set grpo.num_train_epochs"),
        ({"max_steps": 0}, "grpo.max_steps: 0 is out of range"),
        ({"num_generations": 0}, "grpo.num_generations: 0 is out of range; valid: an integer >= 2"),
        ({"temperature": 0.0}, "grpo.temperature: 0.0 is out of range"),
        ({"gradient_accumulation_steps": 0}, "grpo.gradient_accumulation_steps: 0 is out of range"),
        ({"num_iterations": 0}, "grpo.num_iterations: 0 is out of range"),
        ({"num_train_epochs": 0}, "grpo.num_train_epochs: 0 is out of range; valid: a finite number > 0"),
        ({"steps_per_generation": 0}, "grpo.steps_per_generation: 0 is out of range"),
        ({"top_p": 1.5}, "grpo.top_p: 1.5 is out of range; valid: a finite number > 0 and <= 1"),
        ({"generation_kwargs": {"top_k": float("nan")}}, "grpo.generation_kwargs: holds NaN"),
    ],
)
def test_grpo_numbers_out_of_range(grpo, message):
    with pytest.raises(ConfigError) as info:
        check(grpo={"num_generations": 4, "per_device_train_batch_size": 8, **grpo})
    assert str(info.value).startswith(message)


def test_overrides_from_the_command_line_are_ranged_too():
    from ahazero.config.schema import apply_overrides

    cfg = apply_overrides(validate_dict(base_config()), ["grpo.learning_rate=.nan"])
    with pytest.raises(ConfigError, match=r"^grpo.learning_rate: nan is out of range"):
        check_config(cfg, cuda=False)


def test_training_by_epochs_is_still_possible():
    args = check(grpo={"num_generations": 4, "per_device_train_batch_size": 8, "num_train_epochs": 2}).grpo_args
    assert args.max_steps == -1 and args.num_train_epochs == 2
    args = check(grpo={"num_generations": 4, "per_device_train_batch_size": 8, "max_steps": -1}).grpo_args
    assert args.max_steps == -1 and args.num_train_epochs == 1


def test_every_reward_weight_zero_is_nothing_to_learn_from():
    with pytest.raises(ConfigError, match=r"^rewards: every weight is 0, so every advantage is 0"):
        check(rewards=[{"name": "accuracy", "weight": 0}, {"name": "think_format", "weight": 0.0}])
    assert check(rewards=[{"name": "accuracy", "weight": 0}, {"name": "think_format", "weight": -0.5}])


# Where a run may be written.

@pytest.mark.parametrize("root", ["/etc", "/usr/local/runs", "/proc", "/sys/kernel", "/dev"])
def test_output_root_in_a_system_folder(root):
    with pytest.raises(ConfigError, match=r"^output_root: the run directory .* would be inside the system folder /"):
        check(output_root=root)


def test_output_root_at_the_filesystem_root():
    with pytest.raises(ConfigError, match=r"^output_root: '/' is the filesystem root"):
        check(output_root="/")
    with pytest.raises(ConfigError, match=r"^output_root: '/tmp/..' is the filesystem root"):
        check(output_root="/tmp/..")


def test_output_root_through_a_symlink_into_a_system_folder(tmp_path):
    (tmp_path / "runs").symlink_to("/etc")
    with pytest.raises(ConfigError, match=r"inside the system folder /etc"):
        check(output_root=str(tmp_path / "runs"))
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "t").symlink_to("/usr/lib")  # the run folder itself is a link
    with pytest.raises(ConfigError, match=r"inside the system folder /usr"):
        check(output_root=str(tmp_path / "ok"))


def test_run_directory_that_is_some_other_folder(tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "pyproject.toml").write_text("[project]\n")
    with pytest.raises(ConfigError, match=r"^name: the run directory .*/t is a folder that holds no run "
                                          r"\(pyproject.toml\); choose another name= or output_root="):
        check(output_root=str(tmp_path))
    (tmp_path / "t" / "pyproject.toml").unlink()
    (tmp_path / "t" / "eval").mkdir()  # `ahazero eval --model base` leaves only this
    assert check(output_root=str(tmp_path))


def test_run_directory_that_is_a_file(tmp_path):
    (tmp_path / "t").write_text("x")
    with pytest.raises(ConfigError, match=r"^name: the run directory .*/t exists and is not a folder"):
        check(output_root=str(tmp_path))


# Local data files are checked before any model loads.

def local_task(path, **options) -> dict:
    return {"name": "local", "train_path": str(path), **options}


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "folder", "empty", "random-bytes", "fake-parquet"])
def test_local_data_file_that_is_not_data(tmp_path, kind):
    path = {"dev-zero": "/dev/zero", "fifo": tmp_path / "fifo.jsonl", "folder": tmp_path / "dir.jsonl",
            "empty": tmp_path / "empty.jsonl", "random-bytes": tmp_path / "random.jsonl",
            "fake-parquet": tmp_path / "fake.parquet"}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind in ("random-bytes", "fake-parquet"):
        path.write_bytes(bytes((i * 167 + 13) % 256 for i in range(4096)))
    expected = {
        "dev-zero": "task.train_path: /dev/zero is a character device, not a data file; expected a .jsonl, .json "
                    "or .parquet file of rows",
        "fifo": f"task.train_path: {path} is a named pipe (FIFO), not a data file",
        "folder": f"task.train_path: {path} is a folder, not a data file",
        "empty": f"task.train_path: {path} is empty; expected a .jsonl, .json or .parquet file of rows",
        "random-bytes": f"task.train_path: {path}: byte 1 is not UTF-8 text; expected JSON text",
        "fake-parquet": f"task.train_path: {path}: not a readable Parquet file (",
    }[kind]
    with pytest.raises(ConfigError) as info:
        check(task=local_task(path), output_root=str(tmp_path))
    assert str(info.value).startswith(expected)


def test_local_data_missing_columns_are_named_up_front(tmp_path):
    data = tmp_path / "qa.jsonl"
    data.write_text('{"question": "1+1", "value": 2}\n')
    with pytest.raises(ConfigError, match=r"^task.train_path: .*qa.jsonl: missing column\(s\) 'problem', 'answer'; "
                                          r"the data has columns: question, value$"):
        check(task=local_task(data), output_root=str(tmp_path))
    with pytest.raises(ConfigError, match=r"^task.test_path: data file not found: .*nope.parquet"):
        check(task=local_task(data, problem_column="question", answer_column="value",
                              test_path=str(tmp_path / "nope.parquet")), output_root=str(tmp_path))
    assert check(task=local_task(data, problem_column="question", answer_column="value", test_size=1),
                 output_root=str(tmp_path))
