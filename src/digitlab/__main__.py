"""`python -m digitlab` (also what `torchrun -m digitlab` starts)."""

import sys

from digitlab.cli import main

sys.exit(main())
