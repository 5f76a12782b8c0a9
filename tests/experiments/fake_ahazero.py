"""A stand-in for ``python -m ahazero`` in sweep tests: ``train`` and ``eval`` write what the real ones write, at once.

``train`` writes the resolved config, three logged steps (format rate 0.5, 0.95, 1.0; closed
thinking 30, 20, 40 tokens), a checkpoint, the ``train_runtime`` line and a final model;
``eval`` writes ``<tag>.json``. ``$FAKE_AHAZERO`` (JSON) changes that per run name:
``{"fail": [names]}`` logs one step and a checkpoint then exits 1; ``{"no_checkpoint": [names]}``
logs one step without a checkpoint then exits 1; ``{"interrupt": [names]}`` logs one step and a
checkpoint, sends SIGTERM to the sweep, and waits to be stopped. Every call is appended to
``$FAKE_AHAZERO_CALLS``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    from ahazero.config.schema import dump_config
    from ahazero.training.assemble import load_for_device

    command, config = argv[0], argv[1]
    overrides = [a for a in argv[2:] if "=" in a and not a.startswith("-")]
    options = {}
    for flag, value in zip(argv, argv[1:]):
        if flag.startswith("--") and not value.startswith("--"):
            options[flag] = value
    with open(os.environ["FAKE_AHAZERO_CALLS"], "a", encoding="utf-8") as fh:
        fh.write(json.dumps(argv) + "\n")
    cfg = load_for_device(config, cuda=False, overrides=overrides)
    run = Path(cfg.run_dir)
    behaviour = json.loads(os.environ.get("FAKE_AHAZERO", "{}"))

    if command == "eval":
        tag = options.get("--model", "final")
        out = Path(options["--out"]) if "--out" in options else run / "eval"
        out.mkdir(parents=True, exist_ok=True)
        result = {"tag": tag, "model": tag, "n": 10, "pass@1": 0.2 if tag == "base" else 0.5, "format_rate": 0.9,
                  "think_tokens_closed_mean": 30.0 if tag == "base" else 45.0, "reflection_rate": 0.2,
                  "reflection_rate_drgrpo": 0.1, "greedy": {"behaviour/accuracy_reflective": 0.5,
                                                            "behaviour/accuracy_non_reflective": 0.25}}
        (out / f"{tag}.json").write_text(json.dumps(result))
        return 0

    assert command == "train", argv
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.yaml").write_text(dump_config(cfg))
    steps = [(1, 0.5, 30.0, 0.25, 0.0), (2, 0.95, 20.0, 0.125, 0.0), (3, 1.0, 40.0, 0.0, 0.125)]
    start = 1
    if "--resume" in argv:
        start = max(int(p.name.split("-")[1]) for p in (run / "checkpoints").glob("checkpoint-*")) + 1
    stop_early = next((k for k in ("fail", "no_checkpoint", "interrupt") if cfg.name in behaviour.get(k, [])), None)
    with (run / "metrics.jsonl").open("a") as fh:
        for step, fmt, think, refl, refl_drgrpo in steps[start - 1:]:
            fh.write(json.dumps({"step": step, "reward": fmt, "behaviour/format_rate": fmt,
                                 "behaviour/think_tokens_closed_mean": think, "behaviour/reflection_rate": refl,
                                 "behaviour/reflection_rate_drgrpo": refl_drgrpo, "step_time": 1.0}) + "\n")
            fh.flush()
            if stop_early != "no_checkpoint":
                (run / "checkpoints" / f"checkpoint-{step}").mkdir(parents=True, exist_ok=True)
                (run / "checkpoints" / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
            if stop_early == "fail" or stop_early == "no_checkpoint":
                print(f"fake failure at step {step}")
                return 1
            if stop_early == "interrupt":
                os.kill(os.getppid(), signal.SIGTERM)
                time.sleep(60)
                return 1
        fh.write(json.dumps({"step": 3, "train_runtime": 123.0}) + "\n")
    (run / "model").mkdir(exist_ok=True)
    (run / "model" / "config.json").write_text("{}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
