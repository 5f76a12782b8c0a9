"""Benchmark the isolated accuracy reward on ordinary completions.

Two mixes of ``<think>...</think><answer>...</answer>`` completions, scored in GRPO-shaped
batches (``--prompts`` prompts x ``--generations`` completions sharing one gold):

* ``fast``: mostly number golds (integers, decimals, ``p/q``, ``\\frac{p}{q}``), answered
  right (often in another form), wrong, or not at all, plus ``--algebra-share`` algebraic
  ones (``2x+1`` vs gold ``1+2x``) that need sympy in a worker;
* ``sympy``: algebraic golds only (polynomials, roots, pi, fractions of variables), every
  answer checked by math-verify in a worker.

Also measured: the pool's first start (the fork server importing sympy and math-verify,
then the workers) and the start of a replacement worker after a kill, and, with
``--threads N``, the same mixes scored by N threads at once (each thread its own batches),
which the pool serves in parallel up to its worker count. Prints a table; ``--out`` writes
the numbers as JSON.

Example:
    python scripts/bench_rewards.py --completions 4000 --out bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

THINK = (
    "Let me work through this step by step. First I rewrite the expression, then I simplify "
    "each term and check the arithmetic twice. Wait, let me re-check the second term. "
)


def _number_case(rng: random.Random) -> tuple[str, list[str]]:
    """A number gold and equivalent renderings of it."""
    kind = rng.random()
    if kind < 0.5:
        n = rng.randint(-500, 20_000)
        return str(n), [str(n), f"{n}.0" if rng.random() < 0.2 else str(n)]
    if kind < 0.8:
        p, q = rng.randint(1, 99), rng.randint(2, 40)
        value = Fraction(p, q)
        forms = [f"\\frac{{{value.numerator}}}{{{value.denominator}}}", f"{value.numerator}/{value.denominator}"]
        gold = rng.choice(forms)
        if 10**6 % value.denominator == 0:
            forms.append(str(value.numerator / value.denominator))
        return gold, forms
    cents = rng.randint(1, 99_999)
    text = f"{cents // 100}.{cents % 100:02d}"
    return text, [text, text.rstrip("0") if "." in text else text]


_SQUARE_FREE = (2, 3, 5, 6, 7, 10, 11, 13)


def _algebra_case(rng: random.Random) -> tuple[str, list[str], list[str]]:
    """An algebraic gold (random coefficients, so few answers repeat across prompts), right and wrong forms."""
    a, b = rng.randint(2, 30), rng.randint(1, 40)
    kind = rng.randrange(6)
    if kind == 0:
        return f"{a}x+{b}", [f"{b}+{a}x", f"x \\cdot {a}+{b}"], [f"{a}x+{b + 1}", f"{b}x+{a}"]
    if kind == 1:
        return (f"x^2+{a + b}x+{a * b}", [f"(x+{a})(x+{b})", f"(x+{b})(x+{a})"],
                [f"(x+{a})(x+{b + 1})", f"x^2+{a * b}"])
    if kind == 2:
        r = rng.choice(_SQUARE_FREE)
        return f"{a}\\sqrt{{{r}}}", [f"\\sqrt{{{a * a * r}}}", f"{a}\\cdot\\sqrt{{{r}}}"], [f"\\sqrt{{{a * r}}}"]
    if kind == 3:
        return (f"\\frac{{{a}\\pi}}{{{b + 1}}}", [f"{a}\\pi/{b + 1}", f"\\frac{{{a}}}{{{b + 1}}}\\pi"],
                [f"\\frac{{{b + 1}\\pi}}{{{a}}}"])
    if kind == 4:
        return f"\\frac{{1}}{{x+{a}}}", [f"(x+{a})^{{-1}}", f"\\frac{{2}}{{2x+{2 * a}}}"], [f"\\frac{{1}}{{x-{a}}}"]
    return f"x^{{{a % 5 + 2}}}-{b}", [f"-{b}+x^{{{a % 5 + 2}}}"], [f"x^{{{a % 5 + 2}}}+{b}"]


def _completion(answer: str | None) -> str:
    if answer is None:
        return f"<think>{THINK}I am not sure.</think>"
    return f"<think>{THINK}So the result is {answer}.</think>\n<answer>{answer}</answer>"


def build_batches(mix: str, n: int, generations: int, prompts: int, algebra_share: float, seed: int
                  ) -> list[tuple[list[str], list[str]]]:
    """``(completions, golds)`` batches of ``prompts * generations`` totalling at least ``n`` completions."""
    rng = random.Random(seed)
    batches = []
    total = 0
    while total < n:
        completions, golds = [], []
        for _ in range(prompts):
            if mix == "sympy" or rng.random() < algebra_share:
                gold, forms, wrong = _algebra_case(rng)
            else:
                gold, forms = _number_case(rng)
                wrong = [str(rng.randint(-500, 20_000)) for _ in range(3)]
            for _ in range(generations):
                r = rng.random()
                if r < 0.6:
                    answer = rng.choice(forms)
                elif r < 0.9:
                    answer = rng.choice(wrong)
                else:
                    answer = None
                completions.append(_completion(answer))
                golds.append(gold)
        batches.append((completions, golds))
        total += len(completions)
    return batches


def score_all(reward, batches) -> dict[str, float]:
    count = 0
    correct = 0.0
    start = time.perf_counter()
    for completions, golds in batches:
        scores = reward(completions=completions, answer=golds)
        count += len(scores)
        correct += sum(s or 0.0 for s in scores)
    seconds = time.perf_counter() - start
    return {"completions": count, "seconds": round(seconds, 4), "per_second": round(count / seconds, 1),
            "accuracy": round(correct / count, 4)}


def score_threaded(reward, batches, threads: int) -> dict[str, float]:
    """``score_all`` with the batches dealt round-robin to ``threads`` threads that score at the same time."""
    shares = [batches[i::threads] for i in range(threads)]
    results: list[dict[str, float]] = [{} for _ in range(threads)]
    start = time.perf_counter()
    workers = [threading.Thread(target=lambda i=i: results.__setitem__(i, score_all(reward, shares[i])))
               for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    seconds = time.perf_counter() - start
    count = sum(r["completions"] for r in results)
    correct = sum(r["accuracy"] * r["completions"] for r in results)
    return {"completions": count, "seconds": round(seconds, 4), "per_second": round(count / seconds, 1),
            "accuracy": round(correct / count, 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--completions", type=int, default=4000, help="completions per mix (default 4000)")
    parser.add_argument("--generations", type=int, default=8, help="completions per prompt (default 8)")
    parser.add_argument("--prompts", type=int, default=8, help="prompts per batch (default 8)")
    parser.add_argument("--algebra-share", type=float, default=0.1,
                        help="share of algebraic golds in the fast mix (default 0.1)")
    parser.add_argument("--timeout", type=float, default=2.0, help="per-answer limit in seconds (default 2.0)")
    parser.add_argument("--workers", type=int, default=None, help="verifier workers (default: the pool's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--in-process", action="store_true", help="also time isolate=False for comparison")
    parser.add_argument("--threads", type=int, default=0,
                        help="also score each mix from this many threads at once (default: no)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)

    if args.workers:
        os.environ["AHAZERO_VERIFIER_WORKERS"] = str(args.workers)
    from rewards import get_reward
    from rewards.accuracy import clear_verdict_cache
    from rewards.sandbox import get_pool

    pool = get_pool()
    startup = pool.warm_up()
    [victim, *_] = pool.worker_pids()
    os.kill(victim, signal.SIGKILL)
    time.sleep(0.1)
    restart = pool.warm_up()

    reward = get_reward("accuracy", timeout_seconds=args.timeout)
    results: dict[str, object] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "pool": {"workers": pool.size, "first_start_seconds": round(startup, 3),
                 "replacement_start_seconds": round(restart, 3)},
    }
    for mix in ("fast", "sympy"):
        batches = build_batches(mix, args.completions, args.generations, args.prompts, args.algebra_share,
                                args.seed)
        clear_verdict_cache()  # each run starts without remembered verdicts
        results[mix] = score_all(reward, batches)
        if args.in_process:
            clear_verdict_cache()
            in_process = get_reward("accuracy", timeout_seconds=args.timeout, isolate=False)
            results[f"{mix}_in_process"] = score_all(in_process, batches)
        if args.threads > 1:
            clear_verdict_cache()
            results[f"{mix}_{args.threads}_threads"] = score_threaded(reward, batches, args.threads)
    results["pool"]["stats"] = dict(pool.stats)

    print(f"verifier pool: {pool.size} workers; first start {startup:.2f} s (the fork server imports sympy and "
          f"math-verify), replacement worker {restart:.3f} s")
    for key in [k for k in results if k.startswith(("fast", "sympy"))]:
        r = results[key]
        print(f"{key:>18}: {r['completions']:6d} completions in {r['seconds']:7.3f} s = "
              f"{r['per_second']:9.1f} completions/s (accuracy {r['accuracy']:.2f})")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
