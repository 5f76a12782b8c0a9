"""scripts/gpu_aha_reflect.sh and scripts/aha_reflect_table.py: valid GPU command lines, a CPU dry run, the table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from gpu_script_commands import check_command, load_script, script_workdir
from helpers import REPO

SCRIPT = "gpu_aha_reflect.sh"
VARIANTS = {"reflect-s0": ("sft", "grpo"), "zero": ("grpo",), "reflect-s2": ("sft", "grpo"),
            "control": ("sft", "grpo"), "reflect-s1": ("sft", "grpo")}
STEPS = (["0-preflight-model", "0-preflight-recipe", "0-preflight-control", "0-preflight-zero", "base-heldout",
          "base-hard", "table"] + list(VARIANTS)
         + [f"{v}-{stage}-{s}" for v, stages in VARIANTS.items() for stage in stages for s in ("heldout", "hard")])


def load_table_module():
    return load_script("aha_reflect_table")


def workdir(tmp_path: Path) -> Path:
    """A copy of the two scripts beside the repository's configs: the script writes runs/ and logs/ there."""
    return script_workdir(tmp_path, SCRIPT, "aha_reflect_table.py")


def run_script(work: Path, ahazero: str, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, "AHAZERO": ahazero, "PYTHON": sys.executable,
            "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO), os.environ.get("PYTHONPATH", "")]), **env}
    return subprocess.run(["bash", str(work / "scripts" / SCRIPT)], cwd=work, env=full, capture_output=True,
                          text=True, timeout=1500)


def status_of(work: Path) -> dict:
    lines = (work / "logs" / "status.txt").read_text().splitlines()
    return {line.split()[1]: line.split()[2] for line in lines if line[:1].isdigit()}


def test_every_gpu_command_line_is_valid_and_the_script_reaches_its_table(tmp_path, monkeypatch):
    work = workdir(tmp_path)
    log = tmp_path / "commands.jsonl"
    fake = f"{sys.executable} {REPO / 'tests' / 'beyond_zero_fake.py'}"
    done = run_script(work, fake, FAKE_AHAZERO_LOG=str(log))
    assert done.returncode == 0, done.stdout + done.stderr
    status = status_of(work)
    assert sorted(status) == sorted(STEPS) and set(status.values()) == {"ok"}, status

    monkeypatch.chdir(work)
    checked = [check_command(json.loads(line)) for line in log.read_text().splitlines()]
    from ahazero.stages.plan import plan_stages
    from ahazero.training.assemble import load_for_device

    recipe = load_for_device(REPO / "configs" / "aha-reflect.yaml", cuda=True)
    pipelines = {cfg.name: (args, plan_stages(cfg, cuda=True, require_inputs=False))
                 for command, args, cfg in checked if command == "stages"}
    assert sorted(pipelines) == sorted(f"ar-{v}" for v in VARIANTS)
    for name, (_, plan) in pipelines.items():  # the same GRPO everywhere, at a fixed step count, no stage evals
        grpo = plan[-1].config
        assert (grpo.grpo, grpo.task, grpo.rewards, grpo.max_train_seconds) == (
            recipe.grpo, recipe.task, recipe.rewards, None), name
        assert not any(s.spec.evaluates for s in plan) and plan[-1].run_dir == Path("runs", name, "grpo")
        seed = int(name[-1]) if "-s" in name else 0
        assert grpo.seed == seed and grpo.task.options()["seed"] == 0  # the held-out sets stay the same
    assert [s.kind for s in pipelines["ar-zero"][1]] == ["grpo"]
    assert pipelines["ar-zero"][1][0].model == "qwen2.5-coder-0.5b-instruct"
    assert pipelines["ar-control"][0].config == "configs/aha-reflect-control.yaml"
    styles = {name: plan[0].spec.style for name, (_, plan) in pipelines.items() if plan[0].kind == "coldstart"}
    assert styles == {"ar-reflect-s0": "reflective", "ar-reflect-s1": "reflective", "ar-reflect-s2": "reflective",
                      "ar-control": "plain"}

    evals = [(args, cfg) for command, args, cfg in checked if command == "eval"]
    assert len(evals) == 2 + 2 * (2 * 4 + 1)
    for args, cfg in evals:  # one eval command: 200 problems, greedy, 1024 tokens, the recipe's prompt and rewards
        assert (args.batch_size, args.max_new_tokens, args.samples, args.split, args.limit) == (200, 1024, 0, "test",
                                                                                               None)
        assert (cfg.prompt, cfg.rewards, cfg.model) == (recipe.prompt, recipe.rewards, recipe.model)
        options = cfg.task.options()
        if args.out.endswith("/hard"):
            assert (options["max_terms"], options["max_value"]) == (5, 999)
            assert {k: v for k, v in options.items() if k not in ("max_terms", "max_value")} == {
                k: v for k, v in recipe.task.options().items() if k not in ("max_terms", "max_value")}
        else:
            assert args.out.endswith("/heldout") and cfg.task == recipe.task
    models = sorted(args.model for args, _ in evals if args.out.endswith("/heldout"))
    assert models == sorted(["base"] + [f"./runs/ar-{v}/{stage}/model" for v, stages in VARIANTS.items()
                                        for stage in stages])

    table = (work / "logs" / "aha_reflect.md").read_text()
    assert "| every variant | before (base model) | 50.0% |" in table
    assert "| (d) reflective cold start alone (the model after (b)'s cold start) | after cold start |" in table
    assert "- FAIL: net corrections >= +5 per 100 after RL: +1.5 (seeds: +1.5, +1.5, +1.5)" in table
    assert (work / "logs" / "aha_reflect-check-rate.png").read_bytes()[:4] == b"\x89PNG"
    assert "  - FAIL: net corrections" in (work / "logs" / "status.txt").read_text()

    again = run_script(work, "false")  # a second run finds everything done and runs nothing but the checks
    status = status_of(work)
    assert again.returncode == 1 and status["0-preflight-model"] == "FAIL", again.stdout  # `false` fails the checks
    again = run_script(work, fake, FAKE_AHAZERO_LOG=str(tmp_path / "again.jsonl"))
    assert again.returncode == 0, again.stdout + again.stderr
    status = status_of(work)
    assert {status[s] for s in STEPS if not s.startswith(("0-", "table"))} == {"done"}, again.stdout
    ran = [json.loads(line)[0] for line in (tmp_path / "again.jsonl").read_text().splitlines()]
    assert sorted(ran) == ["check", "check", "check", "fetch-model"]


def test_only_picks_the_variants_and_refuses_an_unknown_one(tmp_path):
    work = workdir(tmp_path)
    fake = f"{sys.executable} {REPO / 'tests' / 'beyond_zero_fake.py'}"
    done = run_script(work, fake, FAKE_AHAZERO_LOG=str(tmp_path / "c.jsonl"), ONLY="control", PARALLEL="0")
    assert done.returncode == 0, done.stdout + done.stderr
    ran = set(status_of(work))
    assert "control" in ran and "base-hard" in ran and not ran & {"zero", "reflect-s0", "reflect-s1", "reflect-s2"}
    wrong = run_script(work, fake, FAKE_AHAZERO_LOG=str(tmp_path / "c.jsonl"), ONLY="contrl")
    assert wrong.returncode == 2 and "unknown part 'contrl' (choose from: zero reflect control seeds masked)" \
        in wrong.stderr


def test_masked_runs_the_recipe_with_its_slips_out_of_the_loss_and_nothing_else_changed(tmp_path, monkeypatch):
    work = workdir(tmp_path)
    log = tmp_path / "m.jsonl"
    fake = f"{sys.executable} {REPO / 'tests' / 'beyond_zero_fake.py'}"
    done = run_script(work, fake, FAKE_AHAZERO_LOG=str(log), ONLY="masked")
    assert done.returncode == 0, done.stdout + done.stderr
    assert {"masked-s0", "masked-s1", "masked-s2", "0-preflight-masked"} <= set(status_of(work))
    monkeypatch.chdir(work)
    checked = [check_command(json.loads(line)) for line in log.read_text().splitlines()]
    from ahazero.stages.plan import plan_stages
    from ahazero.training.assemble import load_for_device

    recipe = plan_stages(load_for_device(REPO / "configs" / "aha-reflect.yaml", cuda=True), cuda=True,
                         require_inputs=False)
    pipelines = {cfg.name: plan_stages(cfg, cuda=True, require_inputs=False)
                 for command, _, cfg in checked if command == "stages"}
    assert sorted(pipelines) == ["ar-masked-s0", "ar-masked-s1", "ar-masked-s2"]
    for name, plan in pipelines.items():
        assert plan[0].spec.train_on_slips is False and recipe[0].spec.train_on_slips is None
        assert plan[0].spec.model_copy(update={"train_on_slips": None}) == recipe[0].spec
        assert plan[-1].config.grpo == recipe[-1].config.grpo and plan[-1].config.seed == int(name[-1])


def write_eval(folder: Path, tag: str, pass1: float, check: dict | None = None, problems: tuple = ()) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{tag}.json").write_text(json.dumps(
        {"tag": tag, "n": 200, "pass@1": pass1, "reflection_rate_drgrpo": 0.01, "think_tokens_closed_mean": 42.26,
         "self_check": check}))
    (folder / f"{tag}-samples.jsonl").write_text("".join(json.dumps({"problem": p}) + "\n" for p in problems))


def self_check(net: float, rate: float, checked: float | None, unchecked: float | None) -> dict:
    return {"n": 200, "revision_rate": 0.1, "net_corrections_per_100": net, "check_rate": rate,
            "check_agreed_when_right": 0.9, "check_disagreed_when_wrong": 0.4, "accuracy_checked": checked,
            "accuracy_unchecked": unchecked, "caught_error_rate": 0.05}


def test_the_table_reads_the_evals_and_judges_the_targets(tmp_path):
    table = load_table_module()
    runs = tmp_path / "runs"
    for name in ("heldout", "hard"):
        write_eval(runs / "ar-base" / "eval" / name, "base", 0.2, self_check(0.0, 0.0, None, 0.2),
                   problems=("Compute: 1 + 1", "Compute: 7 * 8"))
    # (b): seed 0 meets every target; seed 1 does not; (c) is below both
    for seed, (cold_rate, net, rate, checked, unchecked, final) in {0: (0.4, 8.0, 0.8, 0.9, 0.5, 0.8),
                                                                   1: (0.5, 3.0, 0.45, 0.6, 0.7, 0.7)}.items():
        run = runs / f"ar-reflect-s{seed}"
        for name in ("heldout", "hard"):
            write_eval(run / "sft" / "eval" / name, "sft-final", 0.6, self_check(4.0, cold_rate, 0.7, 0.4))
            write_eval(run / "grpo" / "eval" / name, "grpo-final", final, self_check(net, rate, checked, unchecked))
        (run / "coldstart").mkdir(parents=True)
        (run / "coldstart" / "samples.jsonl").write_text(
            json.dumps({"problem": "Compute: 7 * 8"}) + "\n" + json.dumps({"problem": "Compute: 5 - 3"}) + "\n")
        (run / "grpo" / "metrics.jsonl").write_text("".join(
            json.dumps({"step": s, "behaviour/check_rate": cold_rate + 0.05 * s,
                        "behaviour/net_corrections_per_100": s - 1.0}) + "\n" for s in range(1, 6)))
        (run / "grpo" / "traces").mkdir()
        for step in (1, 2, 5):
            (run / "grpo" / "traces" / f"step-{step:06d}.jsonl").write_text("".join(json.dumps(
                {"step": step, "problem": f"Compute: {step} + 9", "gold": str(step + 9), "prefill": "<think>\n",
                 "completion": f"{step} + 9 = {step}\nWait, {step} + 9 is {step + 9}.</think><answer>{step + 9}</answer>",
                 "correct": True, "self_check": {"caught_error": caught}}) + "\n" for caught in (True, False)))
    for name in ("heldout", "hard"):
        write_eval(runs / "ar-control" / "sft" / "eval" / name, "sft-final", 0.55, self_check(0.0, 0.0, None, 0.55))
        write_eval(runs / "ar-control" / "grpo" / "eval" / name, "grpo-final", 0.72, self_check(0.0, 0.0, None, 0.72))
    for seed, net in ((0, 6.0), (1, 2.0)):  # (e): its own rows, their mean and its own targets
        for name in ("heldout", "hard"):
            run = runs / f"ar-masked-s{seed}"
            write_eval(run / "sft" / "eval" / name, "sft-final", 0.5, self_check(1.0, 0.5, 0.6, 0.3))
            write_eval(run / "grpo" / "eval" / name, "grpo-final", 0.7, self_check(net, 0.6, 0.8, 0.6))
    out = tmp_path / "logs" / "t.md"
    assert table.main(["--runs", str(runs), "--prefix", "ar", "--out", str(out)]) == 0
    text = out.read_text()
    assert "| (e) reflective cold start, slips not trained -> GRPO, seed 1 | end of RL | 70.0% | 10.0% | +2.0 |" in text
    assert "| (e) reflective cold start, slips not trained -> GRPO, mean | end of RL | 70.0% | 10.0% | +4.0 |" in text
    masked = text.split("## The same targets for (e)")[1]
    assert "- FAIL: net corrections >= +5 per 100 after RL: +4.0 (seeds: +6.0, +2.0)" in masked
    assert "- FAIL: held-out accuracy >= variant (c)'s at the end of RL (gap in points): -2.0" in masked
    assert ("| (b) reflective cold start -> GRPO, seed 0 | end of RL | 80.0% | 10.0% | +8.0 | 80.0% | 90.0% | 40.0% | "
            "90.0% | 50.0% | 1.0% | 42.3 | 200 | grpo-final |") in text
    assert "| (b) reflective cold start -> GRPO, mean | end of RL | 75.0% | 10.0% | +5.5 | 62.5% |" in text
    assert "| (a) zero (GRPO from the base model) | end of RL | – |" in text and "| no eval |" in text
    assert "| (d) reflective cold start alone (the model after (b)'s cold start) | after cold start | 60.0% |" in text
    assert "| every variant | before (base model) | 20.0% | 10.0% | +0.0 | 0.0% |" in text
    assert "- PASS: net corrections >= +5 per 100 after RL: +5.5 (seeds: +8.0, +3.0)" in text
    assert "- PASS: checked answers more accurate than unchecked after RL (gap in points): +15.0 (seeds: +40.0, -10.0)" \
        in text
    assert ("- FAIL: check rate at the end of RL >= 1.5x its rate right after the cold start: 1.45x (seeds: 2.00x, "
            "0.90x)") in text
    assert "- PASS: held-out accuracy >= variant (c)'s at the end of RL (gap in points): +3.0 (seeds: +8.0, -2.0)" \
        in text
    assert ("- (b) reflective cold start -> GRPO, seed 0: 2 cold-start problems; 1 in the heldout set (2 problems), "
            "1 in the hard set (2 problems)") in text
    assert "caught errors in the traces of 3 steps" in text and "early, step 1, right (gold 10)" in text
    assert "late, step 5" in text and "  5 + 9 = 5" in text
    for suffix in ("check-rate", "net-corrections"):
        assert (tmp_path / "logs" / f"t-{suffix}.png").read_bytes()[:4] == b"\x89PNG"
    data = json.loads(out.with_suffix(".json").read_text())
    assert [t["passed"] for t in data["targets"]["heldout"]] == [True, True, False, True]
    assert data["targets"]["heldout"][0]["per_seed"] == [8.0, 3.0]


def test_a_table_of_nothing_says_what_is_missing(tmp_path):
    table = load_table_module()
    out = tmp_path / "t.md"
    assert table.main(["--runs", str(tmp_path / "none"), "--out", str(out)]) == 0
    text = out.read_text()
    assert "| every variant | before (base model) | – |" in text and "- n/a: net corrections" in text
    assert "no `behaviour/check_rate` in any GRPO stage's metrics.jsonl" in text and "- no cold-start set" in text


def test_table_docstring_examples(tmp_path, monkeypatch):
    import doctest

    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(load_table_module(), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.slow
def test_the_whole_script_runs_on_a_cpu_with_the_tiny_model(tmp_path, tiny_model_dir):
    """SMOKE=1: every real command at toy size, the stages pipelines included."""
    work = workdir(tmp_path)
    done = run_script(work, f"{sys.executable} -m ahazero", SMOKE="1", WORK=str(work))
    assert done.returncode == 0, done.stdout + done.stderr
    status = status_of(work)
    assert sorted(status) == sorted(STEPS) and set(status.values()) == {"ok"}, status
    table = (work / "logs" / "aha_reflect.md").read_text()
    assert "| (b) reflective cold start -> GRPO, seed 0 | end of RL | 0.0% |" in table
    summary = json.loads((work / "runs" / "ar-reflect-s0" / "coldstart" / "samples.summary.json").read_text())
    assert summary["coldstart"]["style"] == "reflective" and summary["coldstart"]["slipped"] > 0
