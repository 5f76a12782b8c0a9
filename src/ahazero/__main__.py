"""``python -m ahazero`` is the ``ahazero`` command."""

import sys

from ahazero.cli import main

sys.exit(main())
