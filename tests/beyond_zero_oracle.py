"""``ahazero``'s command line with an oracle for the model in ``ahazero sample`` (CPU dry runs only).

``scripts/gpu_beyond_zero.sh`` with ``SMOKE=1`` runs every step on the tiny random model, whose
rejection samples would all be wrong, so the SFT steps after them would have nothing to train
on. With ``AHAZERO="python tests/beyond_zero_oracle.py"`` the sample step's generations come
from this oracle instead (per prompt: the cold-start chain of thought first, which is right,
then a wrong answer; ``tests/stages/test_stages.py`` uses the same oracle); every other command
is unchanged.
"""

from __future__ import annotations

import re
import sys

import ahazero.stages.generate as generate
from ahazero.cli import main
from ahazero.stages.coldstart import chain_of_thought


def oracle(model, tokenizer, prompts, sampling, quiet=False):
    """Per prompt: ``sampling.n`` completions, the first correct and formatted, the rest wrong."""
    out = []
    for prompt in prompts:
        problem = re.search(r"Compute: [^<\n]*", prompt).group(0)
        right = chain_of_thought({"problem": problem}, task="arithmetic")
        out.append([{"text": right if k == 0 else "no idea\n</think>\n<answer>0</answer>", "tokens": 9,
                     "truncated": False} for k in range(sampling.n)])
    return out


if __name__ == "__main__":
    generate.sample_completions = oracle
    sys.exit(main(sys.argv[1:]))
