"""Turn a task's problem into the text the model continues.

Two templates:

- ``r1_zero``: DeepSeek-R1-Zero's plain-text template, for base models.
- ``chat``: the tokenizer's chat template with a system prompt, for instruct models.

Both may prefill the assistant turn with ``<think>`` so that the model starts by thinking.
The prefill is recorded in a ``prefill`` dataset column, which rewards prepend to the
completion before parsing (the completion itself holds only generated text).

Example:
    >>> text, prefill = render_prompt("What is 2+3?", template="r1_zero", prefill_think=True)
    >>> text.endswith("Assistant: <think>")
    True
    >>> prefill
    '<think>'
"""

from __future__ import annotations

from typing import Any

__all__ = ["R1_SYSTEM_PROMPT", "R1_ZERO_TEMPLATE", "render_prompt"]

#: The R1-Zero instructions (DeepSeek-R1 paper, Table 1), used as the system prompt for chat models.
R1_SYSTEM_PROMPT = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user with "
    "the answer. The reasoning process and answer are enclosed within <think> </think> and "
    "<answer> </answer> tags, respectively, i.e., <think> reasoning process here </think> "
    "<answer> answer here </answer>."
)

#: The plain-text template of the DeepSeek-R1 paper (Table 1), for base models.
R1_ZERO_TEMPLATE = R1_SYSTEM_PROMPT + " User: {problem}. Assistant:"

THINK_OPEN = "<think>"


def render_prompt(
    problem: str,
    *,
    template: str = "chat",
    tokenizer: Any = None,
    system_prompt: str | None = None,
    prefill_think: bool = True,
) -> tuple[str, str]:
    """Render one problem; return ``(prompt_text, prefill)``.

    ``prompt_text`` already ends with the prefill, so generation continues inside the
    thinking block; ``prefill`` is the part of it that belongs to the assistant's answer.

    Example:
        >>> render_prompt("1+1?", template="r1_zero", prefill_think=False)[0][-22:]
        'User: 1+1?. Assistant:'
    """
    if template == "r1_zero":
        text = R1_ZERO_TEMPLATE.format(problem=problem.strip().rstrip("."))
        prefill = THINK_OPEN if prefill_think else ""
        return (f"{text} {prefill}" if prefill else text), prefill
    if template == "chat":
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise ValueError(
                "prompt.template 'chat' needs a tokenizer with a chat template; "
                "use prompt.template: r1_zero for base models without one"
            )
        messages = [
            {"role": "system", "content": system_prompt if system_prompt is not None else R1_SYSTEM_PROMPT},
            {"role": "user", "content": problem},
        ]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        prefill = THINK_OPEN + "\n" if prefill_think else ""
        return text + prefill, prefill
    raise ValueError(f"unknown prompt template '{template}'; valid choices: chat, r1_zero")
