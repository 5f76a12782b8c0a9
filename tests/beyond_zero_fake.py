"""A stand-in ``ahazero`` for testing ``scripts/gpu_beyond_zero.sh``'s GPU command lines quickly.

Records each command line (one JSON list per line in ``$FAKE_AHAZERO_LOG``) and writes what the
real command would leave for the script's next steps: a run directory's ``model/`` and
``metrics.jsonl`` (train, sft), a samples file and its summary (sample, coldstart), an eval JSON
(eval). Standard library only, so it starts in milliseconds; the test then checks every
recorded command with ahazero's own parser and config checks.
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
    elif command == "eval":
        out, model = Path(option(argv, "--out")), option(argv, "--model")
        out.mkdir(parents=True, exist_ok=True)
        tag = tag_of(model)
        (out / f"{tag}.json").write_text(json.dumps(
            {"model": model, "tag": tag, "n": 200, "pass@1": 0.5, "format_rate": 1.0, "think_tokens_mean": 20.0,
             "think_tokens_closed_mean": 19.0, "reflection_rate": 0.0, "truncation_rate": 0.0}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
