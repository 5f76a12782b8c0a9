"""The stages wing: R1 beyond Zero — rejection sampling, SFT, cold start, and stage pipelines.

``samples`` (the samples file: rejection rules, de-duplication, summary), ``scoring``
(completions -> scored records with the config's rewards), ``generate`` (K completions per
prompt: the graph sampler on a GPU, else ``generate``), ``sample`` (``ahazero sample``, also
from a run's traces), ``sft`` (``ahazero sft`` on TRL's SFTTrainer), ``coldstart`` (a long
chain-of-thought set written from the tasks' own structure: ``worked`` reads a problem into its
steps, ``reflective`` writes the reflective traces with slips their checks catch, and their plain
control), ``plan`` / ``runner`` / ``report`` (``stages:`` in one YAML, run stage by stage,
resumable, reported side by side) and ``cli`` (the commands). It sits above ``training`` and may import every wing below it
(``training``, ``rollout``, ``models``, ``observe``, ``config``, ``tasks``, ``cache``,
``rewards``) and ``ahazero.evaluate``, the held-out evaluation each stage runs.
"""
