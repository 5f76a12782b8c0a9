"""Imported by the sandbox's fork server before it forks workers: math-verify, sympy and the parser, warm.

Importing this module costs about a second (it is what makes every later worker start in
milliseconds). Nothing else should import it.

>>> import rewards._sandbox_preload
"""

import logging

from rewards._sandbox_worker import warm_up

logging.getLogger("math_verify").setLevel(logging.ERROR)  # "timeout is disabled": the sandbox bounds time
warm_up()
