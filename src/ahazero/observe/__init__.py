"""The observe wing: what a run records, and the readers that turn records into insight.

Writing and reading share one format: ``rundir`` (the run directory's files; ``run_lock``
keeps it to one writer, ``checkpoints`` checks a checkpoint can be resumed from,
``run_repair`` puts the folder in order before a resume, ``records`` checks each line a
reader reads), ``behaviours``
(thinking length, reflection phrases, language mix of one completion), ``self_check`` (the
answers a completion states, the checks it makes and whether they work; its rules in
``self_check_reader``, worked arithmetic in ``worked_math``; ``behaviours_cli`` is ``ahazero
behaviours``), ``tracing`` (the
per-step trace writer the trainer calls), ``trace_store`` (reading traces back), ``aha``
(the statistical test for a rise in reflection), ``collapse`` (format or thinking collapse,
judged from the per-step metrics), ``trace_select`` / ``traces_view`` /
``traces_cli`` (``ahazero traces``) and ``report/`` (``ahazero report``).
It may import ``config``, ``tasks``, ``cache`` and the ``rewards`` package, never training,
rollout or models: readers read the run directory, not the trainer, so they work on any run
folder, also one copied from another machine.
"""
