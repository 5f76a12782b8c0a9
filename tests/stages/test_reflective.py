"""Reflective cold-start sets: slips the check catches, right final answers, a matched control, the options."""

from __future__ import annotations

import json
import random
import re
from fractions import Fraction

import pytest
from helpers import CANONICAL, CONTROL, NO_SLIP, REPO, base_config

from ahazero.cli import main
from ahazero.config.schema import ConfigError, validate_dict
from ahazero.config.stage_schema import SLIP_KINDS
from ahazero.stages.coldstart import chain_of_thought, coldstart, coldstart_request
from ahazero.stages.reflective import Slip, plan_slips, possible_slips, worked_solution, write_trace
from ahazero.stages.samples import read_samples
from ahazero.tasks import get_task

RECIPE_REWARDS = [{"name": "accuracy"}, {"name": "think_format", "weight": 0.5, "require_answer_tags": True},
                  {"name": "language_consistency", "weight": 0.1}]

TASKS = {"arithmetic": {"max_terms": 4}, "chain": {"min_steps": 3, "max_steps": 6},
         "linear_equation": {}}

_ANSWER = re.compile(r"^So the answer is (.+)\.$")


def answers(text: str) -> list[str]:
    """The answers a trace states, in order ("So the answer is N.")."""
    return [m.group(1) for line in text.splitlines() if (m := _ANSWER.match(line))]


def check_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("Let me check")]


def agrees(line: str) -> bool:
    return line.endswith("checks out.")


def rows(task: str, n: int = 60, seed: int = 5) -> list[dict]:
    return [dict(r) for r in get_task(task, num_train=n, num_test=0, seed=seed, **TASKS[task]).load("train")]


def test_the_contracts_canonical_trace_and_its_slip_free_and_plain_versions():
    solution = worked_solution({"problem": "Compute: (47 + 38) * 2"}, task="arithmetic")
    assert Slip("carry", 0, Fraction(75)) in possible_slips(solution, "carry")
    assert write_trace(solution, style="reflective", slip=Slip("carry", 0, Fraction(75))) == CANONICAL
    assert write_trace(solution, style="reflective") == NO_SLIP
    assert write_trace(solution, style="plain") == CONTROL


@pytest.mark.parametrize("task", sorted(TASKS))
@pytest.mark.parametrize("kind", SLIP_KINDS)
def test_each_slip_kind_gives_a_wrong_first_answer_that_the_written_check_disagrees_with(task, kind):
    made = 0
    for row in rows(task):
        solution = worked_solution(row, task=task)
        for slip in possible_slips(solution, kind):
            text = write_trace(solution, style="reflective", slip=slip)
            first, final = answers(text)
            checks = check_lines(text)
            assert Fraction(first) != Fraction(row["answer"]) and Fraction(final) == Fraction(row["answer"]), text
            assert len(checks) == 2 and not agrees(checks[0]) and agrees(checks[1]), text
            assert (", but " in checks[0]) or "is wrong" in checks[0], text
            wait = text.splitlines()[text.splitlines().index(checks[0]) + 1]
            assert re.fullmatch(r"Wait, .+ is .+, not .+\. Let me redo it\.", wait), text
            assert text.endswith(f"</think>\n<answer>{row['answer']}</answer>")
            made += 1
    assert made >= 5, f"only {made} {kind} slips in 60 {task} problems"


def test_the_slips_look_like_their_kind():
    solution = worked_solution({"problem": "Compute: 52 - 38 + 61 * 7"}, task="arithmetic")
    # Step 1: 52 - 38 = 14, Step 2: 61 * 7 = 427, Step 3: 14 + 427 = 441
    values = {kind: [(s.step, str(s.value)) for s in possible_slips(solution, kind)] for kind in SLIP_KINDS}
    # a borrow forgotten (24), a carry dropped (431); 6 * 7 only carries into a new leading digit, never dropped
    assert values["carry"] == [(0, "24"), (2, "431")]
    assert values["sign"] == [(0, "90")]  # the subtracted number added
    assert values["swap"] == [(0, "41"), (1, "247"), (1, "472"), (2, "414")]  # two neighbouring digits swapped


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_trace_of_a_reflective_set_ends_right_and_the_control_has_no_check(task, tmp_path):
    cfg = validate_dict(base_config(task={"name": task, "num_train": 300, "num_test": 2, **TASKS[task]},
                                    rewards=RECIPE_REWARDS, output_root=str(tmp_path)))
    reflective = coldstart(cfg, coldstart_request(n=200, style="reflective"), out=tmp_path / "r.jsonl")
    plain = coldstart(cfg, coldstart_request(n=200, style="plain"), out=tmp_path / "p.jsonl")
    r_records, p_records = read_samples(reflective["files"][0]), read_samples(plain["files"][0])
    assert len(r_records) == len(p_records) == 200  # coldstart raises if the rewards reject any one
    for r, p in zip(r_records, p_records):
        assert r["id"] == p["id"] and r["correct"] and p["correct"] and r["formatted"]
        assert answers(r["completion"])[-1] == answers(p["completion"])[0] == r["answer"]
        assert p["slip"] is None and p["style"] == "plain" and r["style"] == "reflective"
        assert not check_lines(p["completion"]) and "Wait" not in p["completion"] and p["reflections"] == []
        assert len(answers(p["completion"])) == 1
        # the same traces without the checks: the reflective trace's last attempt, check line removed
        last = r["completion"].split("Let me redo it.\n")[-1].splitlines()
        body = [line for line in last if not line.startswith("Let me check")]
        assert p["completion"].splitlines()[-len(body):] == body
        assert len(answers(r["completion"])) == (2 if r["slip"] else 1)
        assert agrees(check_lines(r["completion"])[-1])


def test_the_share_of_slips_and_of_each_kind_is_what_was_asked(tmp_path):
    cfg = validate_dict(base_config(task={"name": "arithmetic", "num_train": 600, "num_test": 2, "max_terms": 4},
                                    rewards=RECIPE_REWARDS, output_root=str(tmp_path)))
    summary = coldstart(cfg, coldstart_request(n=450, style="reflective"), out=tmp_path / "r.jsonl")
    info = summary["coldstart"]
    assert (info["n"], info["slipped"], info["slip_fraction"]) == (450, 135, 0.3)
    assert abs(info["slipped_fraction"] - 0.3) < 0.01
    assert all(abs(count - 45) <= 1 for count in info["slips"].values()), info["slips"]
    records = read_samples(summary["files"][0])
    assert sum(r["slip"] is not None for r in records) == 135
    written = json.loads((tmp_path / "r.summary.json").read_text())["coldstart"]
    assert written == info and set(written) >= {"style", "seed", "slip_kinds", "checked"}

    only_sign = coldstart(cfg, coldstart_request(n=100, style="reflective", slip_fraction=0.3, slip_kinds=["sign"]),
                          out=tmp_path / "s.jsonl")["coldstart"]
    assert only_sign["slips"] == {"sign": 30}
    none = coldstart(cfg, coldstart_request(n=50, style="reflective", slip_fraction=0.0), out=tmp_path / "n.jsonl")
    assert none["coldstart"]["slipped"] == 0
    assert all(len(check_lines(r["completion"])) == 1 for r in read_samples(none["files"][0]))


def test_too_few_problems_that_can_take_a_slip_gives_fewer_and_says_so(tmp_path, caplog):
    solutions = [worked_solution({"problem": f"Compute: {a} * 0"}, task="arithmetic") for a in range(11, 15)]
    assert plan_slips(solutions, fraction=1.0, kinds=list(SLIP_KINDS), rng=random.Random(0)) == [None] * 4
    cfg = validate_dict(base_config(task={"name": "arithmetic", "num_train": 100, "num_test": 2},
                                    rewards=RECIPE_REWARDS, output_root=str(tmp_path)))
    request = coldstart_request(n=100, style="reflective", slip_fraction=0.9, slip_kinds=["sign"])
    with caplog.at_level("WARNING", logger="ahazero.stages.coldstart"):
        made = coldstart(cfg, request, out=tmp_path / "s.jsonl")["coldstart"]["slipped"]
    assert 0 < made < 90 and f"only {made} of the 100 problems could take a slip of the kinds sign" in caplog.text


def test_the_linear_equation_check_substitutes_x_back():
    solution = worked_solution({"problem": "Solve for x: 3x + 7 = x - 5"}, task="linear_equation")
    right = write_trace(solution, style="reflective")
    assert check_lines(right) == ["Let me check by substituting x = -6: the left side is 3 * (-6) + 7 = -11, the "
                                  "right side is (-6) - 5 = -11. Both sides agree, so it checks out."]
    slip = next(s for s in possible_slips(solution, "sign") if s.step == 1)  # -5 - 7 written as 12
    wrong = write_trace(solution, style="reflective", slip=slip)
    assert "2x = -5 - 7 = 12\nDivide both sides by 2: x = 12 / 2 = 6\nSo the answer is 6." in wrong
    assert check_lines(wrong)[0] == ("Let me check by substituting x = 6: the left side is 3 * 6 + 7 = 25, the right "
                                     "side is 6 - 5 = 1. They differ, so x = 6 is wrong.")
    assert "Wait, -5 - 7 is -12, not 12. Let me redo it." in wrong
    for row in rows("linear_equation"):  # every check puts the candidate into both sides of the equation
        text = write_trace(worked_solution(row, task="linear_equation"), style="reflective")
        x = answers(text)[0]
        line = check_lines(text)[0]
        assert line.startswith(f"Let me check by substituting x = {x}:")
        left, right = row["problem"].removeprefix("Solve for x: ").split(" = ")
        for side, said in zip((left, right), re.findall(r"side is ([^,]+?)(?:, the|\. )", line)):
            if "x" in side:
                assert (f"({x})" if x.startswith("-") or "/" in x else x) in said, (side, said)


def test_todays_checked_style_is_unchanged_and_now_reads_chain_sentences():
    assert chain_of_thought({"problem": "Compute: 92 * (12 + 44)"}, task="arithmetic").splitlines()[3] == (
        "Let me check by undoing each step: 5152 / 56 = 92, 56 - 44 = 12. Every step checks out.")
    text = chain_of_thought({"problem": "Start with 9. Add 1, then divide by 2. What is the result?"}, task="chain")
    assert text.splitlines()[:3] == ["Compute (9 + 1) / 2 step by step.", "Step 1: 9 + 1 = 10", "Step 2: 10 / 2 = 5"]


@pytest.mark.parametrize(("given", "message"), [
    ({"style": "plain", "slip_fraction": 0.2}, "'slip_fraction' applies only to style 'reflective'"),
    ({"slip_kinds": ["sign"]}, "'slip_kinds' applies only to style 'reflective' (this stage's style is 'checked')"),
    ({"style": "reflective", "slip_fraction": 1.5}, "--slip-fraction: Input should be less than or equal to 1"),
    ({"style": "reflective", "slip_kinds": ["sign", "sign"]}, "slip_kinds repeats a kind"),
    ({"style": "reflective", "slip_kinds": []}, "--slip-kinds: List should have at least 1 item"),
    ({"style": "wild"}, "--style: Input should be 'plain', 'checked' or 'reflective'"),
])
def test_bad_options_are_one_line_errors_naming_the_option(given, message):
    with pytest.raises(ConfigError) as err:
        coldstart_request(**given)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_stage_gives_the_defaults_and_the_command_line_wins(tmp_path):
    cfg = validate_dict(base_config(stages=[{"name": "c", "kind": "coldstart", "n": 9, "style": "reflective",
                                             "slip_fraction": 0.5, "slip_kinds": ["swap"], "seed": 4}]))
    spec = cfg.stages[0]
    assert coldstart_request(spec) == coldstart_request(n=9, style="reflective", slip_fraction=0.5,
                                                        slip_kinds=["swap"], seed=4)
    assert coldstart_request(spec, style="plain").slip_kinds == ()  # a plain set drops the stage's slips
    assert coldstart_request(spec, n=3, seed=None).n == 3
    with pytest.raises(ConfigError, match="'style' does not apply to a grpo stage"):
        validate_dict(base_config(stages=[{"name": "g", "kind": "grpo", "style": "plain"}]))


def test_the_command_takes_the_options_and_refuses_bad_ones_with_exit_2(tmp_path, capsys):
    config = REPO / "configs" / "aha-reflect.yaml"
    out = tmp_path / "set.jsonl"
    assert main(["coldstart", str(config), "--n", "30", "--slip-fraction", "0.5", "--slip-kinds", "carry, swap",
                 "--seed", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "style reflective: 15 of 30 traces (50.0%) with a slip the check catches" in printed
    summary = json.loads(out.with_name("set.summary.json").read_text())["coldstart"]
    assert (summary["seed"], set(summary["slips"])) == (3, {"carry", "swap"})
    assert main(["coldstart", str(config), "--style", "plain", "--n", "4", "--out", str(tmp_path / "p.jsonl")]) == 0
    assert "style plain" in capsys.readouterr().out
    assert main(["coldstart", str(config), "--slip-kinds", "carry,typo", "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "--slip-kinds: Input should be 'carry', 'sign' or 'swap'" in capsys.readouterr().err
    assert not (tmp_path / "x.jsonl").exists()
    countdown = ["coldstart", str(REPO / "configs" / "countdown.yaml"), "--style", "reflective", "--n", "2",
                 "--out", str(tmp_path / "c.jsonl")]
    assert main(countdown) == 2
    assert "the plain and reflective styles write traces for arithmetic, chain, linear_equation" in (
        capsys.readouterr().err)


def test_a_coldstart_stage_writes_its_set_and_records_the_slips(tmp_path, tiny_model_dir):
    from ahazero.stages.runner import run_stages

    cfg = validate_dict(base_config(name="p", output_root=str(tmp_path), logging={"report_to": []},
                                    task={"name": "arithmetic", "num_train": 40, "num_test": 2}, rewards=RECIPE_REWARDS,
                                    stages=[{"name": "c", "kind": "coldstart", "n": 20, "style": "reflective",
                                             "slip_fraction": 0.5, "seed": 7},
                                            {"name": "s", "kind": "sft"}]))
    root = run_stages(cfg, cuda=False, stop_after="c")
    record = json.loads((root / "c" / "stage.json").read_text())
    assert record["kept"] == 20 and record["coldstart"]["slipped"] == 10 and record["coldstart"]["seed"] == 7
    assert sum(r["slip"] is not None for r in read_samples(root / "c" / "samples.jsonl")) == 10
    assert "20 examples, style reflective: 10 of 20 traces (50.0%) with a slip" in (root / "report.md").read_text()


@pytest.mark.parametrize("task", sorted(TASKS))
def test_the_self_check_measure_reads_the_sets_as_the_contract_says(task):
    """Each slipped trace: a caught error, first answer wrong, final right; the rest: one agreeing check; plain: none."""
    from ahazero.observe.self_check import measure_self_checks
    from rewards import get_reward

    problems = rows(task, n=40)
    solutions = [worked_solution(r, task=task) for r in problems]
    slips = plan_slips(solutions, fraction=0.5, kinds=list(SLIP_KINDS), rng=random.Random(1))
    grader = get_reward("accuracy", isolate=False)
    for style in ("reflective", "plain"):
        texts = ["<think>\n" + write_trace(s, style=style, slip=slip if style == "reflective" else None)
                 for s, slip in zip(solutions, slips)]
        for read, slip, text in zip(measure_self_checks(texts, problems, grader=grader), slips, texts):
            assert read.final_correct is True, text
            if style == "plain":
                assert (read.checked, read.revised, len(read.candidates)) == (False, False, 1), text
            elif slip is None:
                assert read.checked and [c["agreed"] for c in read.checks] == [True] and not read.revised, text
            else:
                assert (read.first_correct, read.revised, read.caught_error) == (False, True, True), text
                assert [c["agreed"] for c in read.checks] == [False, True] and len(read.candidates) == 2, text
