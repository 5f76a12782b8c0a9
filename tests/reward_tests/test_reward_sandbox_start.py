"""The verifier's workers start from any kind of program, and a pool that cannot start never zeroes silently.

Each case runs a real program in a subprocess, written the way users write them: a script
without an ``if __name__ == "__main__":`` guard (as most TRL examples are), the same module
run with ``python -m``, and the same code given with ``python -c`` and read from stdin (whose
``__main__``, like a REPL's or a notebook's, has no file).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="POSIX fork server")

# Top-level code, no main guard: the worker side must never run this file again.
UNGUARDED = textwrap.dedent(
    """
    import logging, sys
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    from rewards import get_reward
    reward = get_reward("accuracy")
    print("SCORES", reward(completions=["<answer>2x+1</answer>", "<answer>2x+2</answer>"], answer=["1+2x"] * 2),
          flush=True)
    """
)

BROKEN_START = textwrap.dedent(
    """
    import logging, sys, threading
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    sys.executable = "/nonexistent/python"  # no worker can start
    from rewards import get_reward
    reward = get_reward("accuracy")
    completions, golds = ["<answer>2x+1</answer>", "<answer>2x+2</answer>"], ["1+2x"] * 2
    print("MAIN", reward(completions=completions, answer=golds), flush=True)
    print("AGAIN", reward(completions=["<answer>4x+1</answer>"], answer=["1+4x"]), flush=True)
    out = {}
    completions, golds = ["<answer>3x+1</answer>", "<answer>3x+2</answer>"], ["1+3x"] * 2  # nothing remembered
    thread = threading.Thread(target=lambda: out.setdefault("s", reward(completions=completions, answer=golds)))
    thread.start(); thread.join()
    print("THREAD", out["s"], flush=True)
    """
)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "src")]), "AHAZERO_VERIFIER_WORKERS": "1"}


def test_unguarded_script_module_c_and_stdin_all_score_and_log_no_start_failure(tmp_path):
    (tmp_path / "unguarded.py").write_text(UNGUARDED)
    package = tmp_path / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "train.py").write_text(UNGUARDED)
    runs = {
        "script": ([sys.executable, str(tmp_path / "unguarded.py")], None),
        "-m": ([sys.executable, "-m", "mypkg.train"], None),
        "-c": ([sys.executable, "-c", UNGUARDED], None),
        "stdin": ([sys.executable, "-"], UNGUARDED),
    }
    procs = {
        name: subprocess.Popen(cmd, cwd=tmp_path, env=_env(), text=True, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for name, (cmd, _stdin) in runs.items()
    }
    try:
        for name, proc in procs.items():
            stdout, stderr = proc.communicate(runs[name][1], timeout=180)
            assert proc.returncode == 0, f"{name}: {stderr[-2000:]}"
            assert stdout.count("SCORES") == 1, f"{name} ran its top-level code again:\n{stdout}"
            assert "SCORES [1.0, 0.0]" in stdout, f"{name}: {stdout}\n{stderr[-2000:]}"
            assert "ERROR" not in stderr and "WARNING" not in stderr, f"{name} logged:\n{stderr[-2000:]}"
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


def test_when_no_worker_can_start_the_main_thread_checks_in_process_and_others_fail_loudly(tmp_path):
    result = subprocess.run([sys.executable, "-c", BROKEN_START], cwd=tmp_path, env=_env(), text=True,
                            capture_output=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "MAIN [1.0, 0.0]" in result.stdout  # correct verdicts, checked in this process
    assert "THREAD [0.0, 0.0]" in result.stdout  # no limit can be enforced off the main thread: 0.0 ...
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert any("could not start the verifier server" in line and "/nonexistent/python" in line for line in errors)
    assert "AGAIN [1.0]" in result.stdout
    fallbacks = [line for line in errors if "answer(s) in this process on the main thread" in line]
    assert len(fallbacks) == 1 and "checking 2 answer(s)" in fallbacks[0]  # said once a minute, not every call
    assert any("not the main thread" in line and "2 answer(s) that need sympy scored 0.0" in line
               for line in errors)  # ... and said so
