"""`python -m digitlab` (also what `torchrun -m digitlab` starts)."""

import sys

from digitlab.cli import main

if __name__ == "__main__":  # not when a spawned worker process imports this module (macOS, Windows)
    sys.exit(main())
