"""A stand-in ``ahazero`` for testing the GPU scripts' command lines quickly (gpu_beyond_zero.sh, gpu_aha_reflect.sh).

Records each command line (one JSON list per line in ``$FAKE_AHAZERO_LOG``) and writes what the
real command would leave for the script's next steps: a run directory's ``model/`` and
``metrics.jsonl`` (train, sft), a samples file and its summary (sample, coldstart), each stage's
folder of a ``stages`` pipeline (a cold-start set, models, the GRPO stage's metrics and traces
with self-check numbers, ``stage.json``), an eval JSON with its samples file (eval). Other
commands (check, fetch-model) only record. Standard library only, so it starts in milliseconds;
the test then checks every recorded command with ahazero's own parser and config checks.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def option(argv: list, flag: str, default: str | None = None) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv else default


def overrides(argv: list) -> dict:
    return dict(a.split("=", 1) for a in argv[2:] if "=" in a and not a.startswith("-"))


def tag_of(model: str) -> str:
    path = Path(model)
    if path.is_dir() and path.name == "model":
        return f"{path.parent.name}-final"
    if path.is_dir() and path.name.startswith("checkpoint-"):
        return f"{path.parent.parent.name}-step-{path.name[11:]}"
    return path.name.replace(".", "_")


def write_stages(root: Path, stages: list) -> None:
    """What ``ahazero stages`` leaves: each stage's output and ``stage.json``; the GRPO stage's curves and traces."""
    for stage in stages:
        folder = root / stage
        folder.mkdir(parents=True, exist_ok=True)
        for run in (root, folder):
            (run / "run.json").write_text("{}")
        if stage == "coldstart":
            (folder / "samples.jsonl").write_text(json.dumps({"id": "p0", "problem": "Compute: 2 + 2"}) + "\n")
        else:
            (folder / "model").mkdir(exist_ok=True)
            (folder / "model" / "config.json").write_text("{}")
        if stage == "grpo":
            steps = [{"step": s, "behaviour/check_rate": 0.2 * s, "behaviour/net_corrections_per_100": 2.0 * s}
                     for s in (1, 2, 3)]
            (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in steps))
            (folder / "traces").mkdir(exist_ok=True)
            for s in (1, 3):
                (folder / "traces" / f"step-{s:06d}.jsonl").write_text(json.dumps(
                    {"step": s, "problem": "Compute: 2 + 2", "gold": "4", "prefill": "<think>\n", "correct": True,
                     "completion": "2 + 2 = 5\nSo the answer is 5.\nWait, 2 + 2 is 4.\n</think>\n<answer>4</answer>",
                     "self_check": {"caught_error": True}}) + "\n")
        (folder / "stage.json").write_text(json.dumps({"stage": stage, "status": "done"}))


def main(argv: list) -> int:
    with open(os.environ["FAKE_AHAZERO_LOG"], "a", encoding="utf-8") as fh:
        fh.write(json.dumps(argv) + "\n")
    command, values = argv[0], overrides(argv)
    if command in ("train", "sft"):
        run = Path("runs") / values["name"]
        (run / "model").mkdir(parents=True, exist_ok=True)
        (run / "model" / "config.json").write_text("{}")
        steps = int(values.get("grpo.max_steps", 20 if command == "train" else 38))
        (run / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss": 0.1}) + "\n"
                                           + json.dumps({"step": steps, "train_runtime": 30.0 + steps}) + "\n")
    elif command in ("sample", "coldstart"):
        out = Path(option(argv, "--out"))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"id": "p0", "problem": "Compute: 1 + 1", "prefill": "<think>\n",
                                   "completion": "1 + 1 = 2\n</think>\n<answer>2</answer>"}) + "\n")
        out.with_name(out.stem + ".summary.json").write_text(json.dumps(
            {"sampled": 2400, "kept": 550, "prompts": 300, "prompts_kept": 280, "correct_rate": 0.6,
             "generation_seconds": 41.0}))
    elif command == "stages":
        stages = ["grpo"] if values.get("stages", "").startswith("[{name: grpo") else ["coldstart", "sft", "grpo"]
        write_stages(Path(values.get("output_root", "runs")) / values["name"], stages)
    elif command == "eval":
        out, model = Path(option(argv, "--out")), option(argv, "--model")
        out.mkdir(parents=True, exist_ok=True)
        tag = "base" if model == "base" else tag_of(model)
        (out / f"{tag}.json").write_text(json.dumps(
            {"model": model, "tag": tag, "n": 200, "pass@1": 0.5, "format_rate": 1.0, "think_tokens_mean": 20.0,
             "think_tokens_closed_mean": 19.0, "reflection_rate": 0.0, "reflection_rate_drgrpo": 0.0,
             "truncation_rate": 0.0, "self_check": {"n": 200, "net_corrections_per_100": 1.5, "check_rate": 0.25}}))
        (out / f"{tag}-samples.jsonl").write_text(json.dumps({"problem": "Compute: 1 + 1", "correct": True}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
