"""The self-check in the readers of finished runs: the report's panel and eval table, the sweep summary."""

from __future__ import annotations

import json
from pathlib import Path

from ahazero.experiments.summary import render_markdown, variant_row
from ahazero.observe.report.build import build_report
from ahazero.observe.report.data import load_run
from ahazero.observe.report.plots import SELF_CHECK_TITLE, plot_self_check

BASE_SC = {"n": 200, "revision_rate": 0.01, "wrong_to_right_rate": 0.005, "right_to_wrong_rate": 0.005,
           "net_corrections_per_100": 0.0, "check_rate": 0.02, "check_agreed_when_right": 1.0,
           "check_disagreed_when_wrong": 0.0, "accuracy_checked": 0.5, "accuracy_unchecked": 0.3,
           "caught_error_rate": 0.0}
FINAL_SC = {**BASE_SC, "check_rate": 0.4, "net_corrections_per_100": 6.5, "revision_rate": 0.1}


def make_run(root: Path, steps: int = 20) -> Path:
    run = root / "sc"
    (run / "eval").mkdir(parents=True)
    (run / "model").mkdir()
    (run / "model" / "config.json").write_text("{}")
    rows = [{"step": s, "reward": 0.5, "behaviour/accuracy": 0.5, "behaviour/format_rate": 0.95,
             "behaviour/think_tokens_closed_mean": 20.0, "behaviour/check_rate": 0.02 * s,
             "behaviour/net_corrections_per_100": 0.3 * s - 1} for s in range(1, steps + 1)]
    (run / "metrics.jsonl").write_text("\n".join(map(json.dumps, rows + [{"step": steps, "train_runtime": 60.0}]))
                                       + "\n")
    (run / "eval" / "base.json").write_text(json.dumps({"tag": "base", "model": "m", "n": 200, "pass@1": 0.3,
                                                        "self_check": BASE_SC}))
    (run / "eval" / "final.json").write_text(json.dumps({"tag": "final", "model": "m", "n": 200, "pass@1": 0.6,
                                                         "self_check": FINAL_SC}))
    return run


def test_the_report_draws_check_rate_and_net_corrections_with_the_base_model(tmp_path):
    run = make_run(tmp_path)
    html = build_report([run]).read_text(encoding="utf-8")
    assert SELF_CHECK_TITLE in html and (run / "report" / "self-check.png").read_bytes()[:4] == b"\x89PNG"
    assert "<th>checked</th><th>net corrections /100</th>" in html and "<td>40.0%</td><td>6.5</td>" in html


def test_no_panel_for_a_run_logged_before_the_measure(tmp_path):
    run = make_run(tmp_path)
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    (run / "metrics.jsonl").write_text("\n".join(json.dumps({k: v for k, v in r.items() if "check" not in k
                                                             and "corrections" not in k}) for r in lines) + "\n")
    assert plot_self_check([load_run(run)]) is None
    assert plot_self_check([load_run(make_run(tmp_path / "again", steps=3))])[:4] == b"\x89PNG"


def test_the_sweep_summary_has_the_self_check_of_base_steps_and_trained_eval(tmp_path):
    run = make_run(tmp_path)
    row = variant_row(run, label="v", values={}, seed=None, base={"pass@1": 0.3, "self_check": BASE_SC})
    assert row["self_check"]["check_rate"] == {"eval_base": 0.02, "first_step": 0.02, "end": 0.4,
                                               "eval_final": 0.4}
    assert row["self_check"]["net_corrections_per_100"]["eval_final"] == 6.5
    info = {"name": "s", "command": "ahazero sweep c.yaml", "config": "c.yaml", "grid": {}, "overrides": [],
            "seeds": None, "notes": []}
    md = render_markdown(info, [row], [{"folder": "sweeps/s/base", "eval": {"n": 200, "self_check": BASE_SC}}])
    assert "| 2.0% · 2.0% → 40.0% · 40.0% | +0.0 · -0.7 → +5.0 · +6.5 |" in md
    assert "| 2.0% | +0.0 |" in md  # the base model's row
    assert "*net corrections /100*" in md
