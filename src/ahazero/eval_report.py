"""What ``ahazero eval`` tells its user: the summary, what limited the decoding, and progress lines.

- :func:`decoding_origin`: where the decoding settings came from (the GPU recipe, the CPU
  profile ``cpu_overrides``, or a config without one), where ``max_new_tokens`` came from, and
  the recipe's own ``grpo.max_completion_length`` when the CPU profile cut it.
- :func:`limit_warning`: the warning shown when more than :data:`TRUNCATION_WARN` of the
  answers stopped at ``max_new_tokens`` (they are scored cut off), with how to raise it.
- :func:`render_markdown`: the summary (``eval/<tag>.md``, also printed): the table, the line
  that names the decoding (limit, dtype, profile) and the warning.
- :class:`ProgressLog`: log lines of a long generation (done, elapsed, time left), which show
  in a log file or a pipe where a progress bar does not.

Example:
    >>> origin = DecodingOrigin("CPU profile (cpu_overrides)", "grpo.max_completion_length of the CPU profile", 256)
    >>> print(limit_warning({"n": 200, "max_new_tokens": 48, "truncation_rate": 0.69}, origin))
    69% of the answers (138 of 200) stopped at max_new_tokens=48 (grpo.max_completion_length of the CPU profile) and were scored cut off, which lowers pass@1; raise the limit with --max-new-tokens 256 (the GPU recipe's grpo.max_completion_length)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ahazero.observe import self_check

__all__ = ["TRUNCATION_WARN", "DecodingOrigin", "ProgressLog", "decoding_line", "decoding_origin", "limit_warning",
           "render_markdown"]

logger = logging.getLogger("ahazero.eval")

#: Above this share of answers cut at ``max_new_tokens``, the summary warns.
TRUNCATION_WARN = 0.2

#: ``max_new_tokens`` when neither ``--max-new-tokens`` nor ``grpo.max_completion_length`` gives it.
DEFAULT_MAX_NEW_TOKENS = 512


@dataclass(frozen=True)
class DecodingOrigin:
    """Where an eval's decoding settings came from (for its summary).

    ``profile``: the config profile (``GPU recipe``, ``CPU profile (cpu_overrides)``, ...);
    ``max_new_tokens_from``: what set the token limit; ``recipe_max_new_tokens``: the GPU
    recipe's ``grpo.max_completion_length`` when it is larger than the limit used, else None.
    """

    profile: str
    max_new_tokens_from: str
    recipe_max_new_tokens: int | None = None


def decoding_origin(recipe: Any, used: Any, *, cuda: bool, flag: int | None) -> DecodingOrigin:
    """Where ``used`` (the config as it runs here) took its decoding settings from.

    ``recipe`` is the config file as written (before the CPU profile); ``flag`` the
    ``--max-new-tokens`` given on the command line (None when left out).

    Example:
        >>> from ahazero.config.schema import validate_dict
        >>> from ahazero.training.assemble import resolve_for_device
        >>> recipe = validate_dict({"name": "x", "model": {"name_or_path": "tiny"}, "task": {"name": "arithmetic"},
        ...     "rewards": [{"name": "accuracy"}], "grpo": {"max_completion_length": 256},
        ...     "cpu_overrides": {"grpo.max_completion_length": 48}})
        >>> decoding_origin(recipe, resolve_for_device(recipe, cuda=False), cuda=False, flag=None)
        DecodingOrigin(profile='CPU profile (cpu_overrides)', max_new_tokens_from='grpo.max_completion_length of the CPU profile', recipe_max_new_tokens=256)
        >>> decoding_origin(recipe, recipe, cuda=True, flag=64).max_new_tokens_from
        '--max-new-tokens'
    """
    profiled = not cuda and bool(recipe.cpu_overrides)
    profile = "GPU recipe" if cuda else "CPU profile (cpu_overrides)" if profiled else "CPU, no cpu_overrides"
    used_limit = flag if flag is not None else int(used.grpo.get("max_completion_length", DEFAULT_MAX_NEW_TOKENS))
    if flag is not None:
        source = "--max-new-tokens"
    elif "max_completion_length" not in used.grpo:
        source = "the default"
    elif profiled and used.grpo["max_completion_length"] == recipe.cpu_overrides.get("grpo.max_completion_length"):
        source = "grpo.max_completion_length of the CPU profile"
    else:
        source = "grpo.max_completion_length"
    recipe_limit = int(recipe.grpo.get("max_completion_length", DEFAULT_MAX_NEW_TOKENS))
    return DecodingOrigin(profile, source, recipe_limit if recipe_limit > used_limit else None)


def _worst_truncation(results: dict[str, Any]) -> float | None:
    rates = [results.get("truncation_rate"), (results.get("sampled") or {}).get("behaviour/truncation_rate")]
    rates = [r for r in rates if isinstance(r, int | float)]
    return max(rates) if rates else None


def limit_warning(results: dict[str, Any], origin: DecodingOrigin | None = None) -> str | None:
    """The warning for an eval whose answers hit ``max_new_tokens`` too often (above :data:`TRUNCATION_WARN`).

    Example:
        >>> limit_warning({"n": 10, "max_new_tokens": 512, "truncation_rate": 0.1}) is None
        True
        >>> limit_warning({"n": 10, "max_new_tokens": 64, "truncation_rate": 0.5})[:60]
        '50% of the answers (5 of 10) stopped at max_new_tokens=64 an'
    """
    rate = _worst_truncation(results)
    if rate is None or rate <= TRUNCATION_WARN:
        return None
    limit = int(results["max_new_tokens"])
    source = f" ({origin.max_new_tokens_from})" if origin is not None else ""
    count = f" ({round(rate * results['n'])} of {results['n']})" if results.get("n") else ""
    if origin is not None and origin.recipe_max_new_tokens:
        raise_to = f"{origin.recipe_max_new_tokens} (the GPU recipe's grpo.max_completion_length)"
    else:
        raise_to = f"{2 * limit} (or grpo.max_completion_length=... in the config)"
    return (f"{rate:.0%} of the answers{count} stopped at max_new_tokens={limit}{source} and were scored cut "
            f"off, which lowers pass@1; raise the limit with --max-new-tokens {raise_to}")


def decoding_line(results: dict[str, Any]) -> str:
    """One line naming what decoded: the token limit and where it came from, the dtype, the profile.

    Example:
        >>> decoding_line({"max_new_tokens": 48, "max_new_tokens_from": "--max-new-tokens", "dtype": "float32",
        ...                "profile": "CPU profile (cpu_overrides)"})
        'decoding: greedy, max_new_tokens=48 (--max-new-tokens), float32, CPU profile (cpu_overrides)'
    """
    mode = f"greedy and {results['samples']} samples at temperature {results.get('temperature')}" \
        if results.get("samples") else "greedy"
    limit = f"max_new_tokens={results.get('max_new_tokens', '?')}"
    if results.get("max_new_tokens_from"):
        limit += f" ({results['max_new_tokens_from']})"
    parts = [mode, limit] + [str(results[k]) for k in ("dtype", "profile") if results.get(k)]
    return "decoding: " + ", ".join(parts)


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def render_markdown(results: dict[str, Any]) -> str:
    """The summary as markdown: the headline numbers, what decoded, and the token-limit warning.

    Example:
        >>> print(render_markdown({"model": "m", "tag": "base", "task": "arithmetic", "split": "test",
        ...                        "n": 2, "pass@1": 0.5}).splitlines()[2])
        | pass@1 | 0.500 |
    """
    keys = ["pass@1", "pass@1_in_tags"] + [k for k in results if k.startswith(("pass@", "maj@"))
                                           and k not in ("pass@1", "pass@1_in_tags")] + [
        "sampled_accuracy", "format_rate", "think_tokens_mean", "think_tokens_closed_mean", "reflection_rate",
        "reflection_rate_drgrpo", "language_consistency", "truncation_rate"]
    base = results.get("base") if isinstance(results.get("base"), dict) else None
    if base:
        lines = [f"| metric | {results['tag']} | base model |", "|---|---|---|"]
        lines += [f"| {k} | {_fmt(results.get(k))} | {_fmt(base.get(k))} |" for k in keys if k in results]
    else:
        lines = [f"| metric | {results['tag']} |", "|---|---|"]
        lines += [f"| {k} | {_fmt(results.get(k))} |" for k in keys if k in results]
    lines += self_check.markdown_rows(results, base)
    header = f"**{results['tag']}** ({results['model']}) on `{results['task']}` {results['split']}, n={results['n']}"
    first = results.get("first_step") if isinstance(results.get("first_step"), dict) else None
    if first:
        header += (f"; first training step ({first.get('step')}, sampled, before any update): reflection_rate "
                   f"{_fmt(first.get('reflection_rate'))}, reflection_rate_drgrpo "
                   f"{_fmt(first.get('reflection_rate_drgrpo'))}")
    notes = [header]
    if "max_new_tokens" in results:
        notes.append(decoding_line(results))
    if results.get("limit_warning"):
        notes.append(f"**Warning:** {results['limit_warning']}")
    return "\n".join(lines) + "\n\n" + "\n\n".join(notes) + "\n"


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


class ProgressLog:
    """Log lines of a long generation: one at the start, then at most one every ``every`` seconds.

    Each says how many of ``total`` are done, the time so far and the time left at that pace;
    the last one (all done) is always logged.

    Example:
        >>> now = [0.0]
        >>> lines = []
        >>> log = ProgressLog("greedy (base)", 200, every=30, clock=lambda: now[0], say=lines.append)
        >>> now[0] = 40.0; log.advance(64)
        >>> now[0] = 50.0; log.advance(64)
        >>> now[0] = 120.0; log.advance(72)
        >>> lines
        ['greedy (base): 64/200 problems after 40 s, about 85 s left', 'greedy (base): 200/200 problems after 2.0 min']
    """

    def __init__(self, label: str, total: int, *, every: float = 30.0, clock: Callable[[], float] = time.monotonic,
                 say: Callable[[str], None] | None = None) -> None:
        self.label, self.total, self.every, self.clock = label, total, every, clock
        self.say = say or logger.info
        self.done = 0
        self.start = self.last = clock()

    def advance(self, n: int) -> None:
        """Count ``n`` more problems done; log a line when ``every`` seconds passed or all are done."""
        self.done += n
        now = self.clock()
        finished = self.done >= self.total
        if not finished and now - self.last < self.every:
            return
        self.last = now
        elapsed = now - self.start
        line = f"{self.label}: {self.done}/{self.total} problems after {_minutes(elapsed)}"
        if not finished and self.done:
            left = elapsed / self.done * (self.total - self.done)
            line += f", about {_minutes(round(left))} left"
        self.say(line)
