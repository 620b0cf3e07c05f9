"""Accuracy on digits written the way users write them: naive, plain and robust preprocessing.

The benchmark lives in the package (digitlab.reports.wild) so that an installed digitlab runs
it as `digitlab bench wild`; this script is that command, for a source checkout:

    python benchmarks/in_the_wild.py                       # the packaged default model
    python benchmarks/in_the_wild.py --per-condition 300 --real ../shared/real-digits
    python benchmarks/in_the_wild.py --model runs/X/last.pt --per-condition 500 --json out.json
    python benchmarks/in_the_wild.py --per-condition 0 --real DIR --failures out/   # real only
"""

from __future__ import annotations

import sys

from digitlab.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "wild", *sys.argv[1:]]))
