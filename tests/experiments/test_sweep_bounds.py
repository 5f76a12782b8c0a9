"""A sweep's size is bounded before anything is expanded or validated per variant, and its keys are checked first."""

from __future__ import annotations

import pytest
from helpers import REPO

import ahazero.experiments.plan as plan_module
from ahazero.cli import main
from ahazero.config.schema import ConfigError
from ahazero.experiments.grid import MAX_VARIANTS, check_size, parse_grid, parse_variant
from ahazero.experiments.plan import build_plan

SMOKE = str(REPO / "configs" / "smoke.yaml")
TEN = ",".join(str(i) for i in range(1, 11))
EIGHT_AXES = ["seed=" + TEN, "task.num_train=" + TEN, "grpo.learning_rate=" + TEN, "grpo.temperature=" + TEN,
              "grpo.beta=" + TEN, "grpo.max_steps=" + TEN, "rewards.0.weight=" + TEN, "rewards.1.weight=" + TEN]


@pytest.fixture
def nothing_expanded(monkeypatch):
    """Fail the test if the plan expands its variants (the refusal must come first)."""
    def refuse(*args, **kwargs):
        raise AssertionError("the grid was expanded")

    monkeypatch.setattr(plan_module, "expand", refuse)


def test_eight_axes_of_ten_values_are_refused_before_expansion(nothing_expanded):
    with pytest.raises(ConfigError) as info:
        build_plan(SMOKE, grid=EIGHT_AXES, cuda=False)
    assert str(info.value) == (f"the sweep would have 100000000 runs: {' x '.join(['10'] * 8)} grid points; a sweep "
                               f"runs at most {MAX_VARIANTS}: split it, or give fewer values or seeds")


def test_many_seeds_are_refused_before_expansion(nothing_expanded):
    with pytest.raises(ConfigError, match=r"^the sweep would have 100000 runs: 1 config x 100000 seeds; a sweep runs "
                                          r"at most 256"):
        build_plan(SMOKE, seeds=100_000, cuda=False)
    with pytest.raises(ConfigError, match=r"would have 300 runs: 3 grid points x 100 seeds"):
        build_plan(SMOKE, grid=["grpo.learning_rate=1e-4,1e-3,1e-2"], seeds=100, cuda=False)
    with pytest.raises(ConfigError, match=r"would have 300 runs: \(2 grid points \+ 1 --variant\) x 100 seeds"):
        build_plan(SMOKE, grid=["grpo.beta=0,0.1"], variants=[["ref", "grpo.beta=0.5"]], seeds=100, cuda=False)


@pytest.mark.parametrize(("bad", "message"), [
    ("grpo.learning_rat=" + TEN, "--grid grpo.learning_rat: unknown key 'grpo.learning_rat' (did you mean "
                                 "'learning_rate'"),
    ("modle.dtype=" + TEN, "--grid modle.dtype: unknown key 'modle' (did you mean 'model'?)"),
    ("grpo.output_dir=" + TEN, "--grid grpo.output_dir: grpo.output_dir is set by ahazero"),
    ("rewards.9.weight=" + TEN, "--grid rewards.9.weight: override 'rewards.9.weight': 'rewards.9' is not an index "
                                "of a 3-item list"),
])
def test_a_mistyped_key_in_a_huge_grid_is_named_before_the_size(nothing_expanded, bad, message):
    with pytest.raises(ConfigError) as info:
        build_plan(SMOKE, grid=[*EIGHT_AXES[:7], bad], cuda=False)
    assert str(info.value).startswith(message)


def test_an_axis_longer_than_a_sweep_is_refused_before_its_values_are_parsed():
    values = ",".join(str(i) for i in range(MAX_VARIANTS + 1))
    with pytest.raises(ConfigError, match=rf"^--grid seed has {MAX_VARIANTS + 1} values; a sweep runs at most "
                                          rf"{MAX_VARIANTS} variants"):
        parse_grid([f"seed={values}"])


def test_the_size_limit_itself():
    axes = parse_grid(["a.x=" + ",".join(map(str, range(16))), "a.y=" + ",".join(map(str, range(16)))])
    assert check_size(axes) == MAX_VARIANTS  # 16 x 16: exactly the limit
    with pytest.raises(ConfigError, match="would have 257 runs"):
        check_size(axes, [parse_variant(["one-more", "a.z=1"])])
    assert check_size([], [parse_variant(["a", "x.y=1"]), parse_variant(["b", "x.y=2"])], seeds=3) == 6


def test_the_command_says_it_on_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["sweep", SMOKE, "--dry-run", *[flag for axis in EIGHT_AXES for flag in ("--grid", axis)]]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("config error: the sweep would have 100000000 runs") and err.count("\n") == 1
    assert main(["sweep", SMOKE, "--seeds", "100000", "--dry-run"]) == 2
    assert "config error: the sweep would have 100000 runs" in capsys.readouterr().err
    assert not (tmp_path / "sweeps").exists()
