"""``ahazero report``: one self-contained HTML report of one or more runs, in four layers.

``data`` reads a run directory and computes the numbers; ``plots`` draws them as PNGs;
``html`` and ``sections`` turn them into HTML; ``build`` writes the report and holds the
command. Like the rest of :mod:`ahazero.observe`, it imports nothing of training.

Example:
    >>> from ahazero.observe.report import build_report   # doctest: +SKIP
    >>> build_report(["runs/default"])                      # doctest: +SKIP
    PosixPath('runs/default/report/report.html')
"""

from ahazero.observe.report.build import add_parser, build_report, report_paths, run_report
from ahazero.observe.report.data import RunData, load_run
from ahazero.observe.report.html import highlight_html
from ahazero.observe.report.plots import PLOTS

__all__ = ["PLOTS", "RunData", "add_parser", "build_report", "highlight_html", "load_run", "report_paths",
           "run_report"]
