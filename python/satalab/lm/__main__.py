"""python -m satalab.lm: the satalab-lm command line (satalab/lm/cli.py)."""

import sys

from .cli import main

sys.exit(main())
