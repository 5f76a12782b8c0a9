"""The experiments wing: stages above training that prepare runs or run many of them.

``calibrate`` (``ahazero calibrate``: each train problem's pass rate under the base model, for
``task.calibration``), ``grid`` (sweep variants from ``--grid KEY=V1,V2``), ``plan`` (validate
every variant before anything runs; decide what each still needs), ``runner`` (subprocesses,
K at once, each with its own log), ``summary`` (``summary.md`` / ``summary.json`` and the
overlay report) and ``sweep`` (``ahazero sweep``).
It may import training, rollout, models, observe, config, tasks, cache and rewards, never the
commands (``cli``, ``evaluate``, ``bench``): a sweep runs ``ahazero train`` and ``ahazero eval``
as subprocesses, so every variant is an ordinary run.
"""
