"""`digitlab study`: a base run and its variants, trained and compared."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from digitlab.cli.args import Command, add_data_args, add_device_args, add_limit_args, device_of, positive_int


def register(command: Command) -> None:
    p = command("study", cmd_study, "a parameter study: a base run and variants, trained and "
                "compared in figures, a table and a ranking", """
digitlab study part2 --epochs 2                        # the tutorial's part 2, shortened
digitlab study --vary lr=0.1,1,10 --seeds 1 2          # tutorial-mlp, three learning rates
digitlab study my-study.toml --grid --jobs 2
""")
    p.add_argument("spec", nargs="?", metavar="SPEC",
                   help="a TOML (or YAML) study file, or a shipped study's name (part2)")
    p.add_argument("--vary", action="append", metavar="NAME=V1,V2",
                   help="a factor and its values (repeatable; adds to or replaces SPEC's)")
    p.add_argument("--recipe", help="the base recipe without SPEC (default: tutorial-mlp)")
    p.add_argument("--grid", action="store_true", help="every combination, not one at a time")
    p.add_argument("--seeds", type=int, nargs="+", metavar="SEED", help="repeat every run per seed")
    p.add_argument("--epochs", type=positive_int, metavar="N",
                   help="epochs of every run; an epochs factor keeps its ratio to the base")
    p.add_argument("--jobs", type=positive_int, metavar="N",
                   help="runs at once, each in its own process (default: the number of cores)")
    p.add_argument("--out", metavar="DIR", help="study folder (default: runs/study-<name>)")
    add_limit_args(p)
    add_data_args(p)
    add_device_args(p)


def cmd_study(args: argparse.Namespace) -> int:
    from digitlab.data import resolve_root
    from digitlab.studies import runner, spec, summary
    from digitlab.training.config import DataConfig

    study = spec.build_spec(args.spec, args.vary, args.grid, args.seeds, args.recipe)
    plan = spec.plan_runs(study, epochs=args.epochs, device=device_of(args))
    data_cfg = DataConfig(root=resolve_root(args.data_dir), train_limit=args.train_limit,
                          test_limit=args.test_limit)
    out = Path(args.out) if args.out else runner.default_study_dir(study)
    outcomes = runner.run_study(plan, data_cfg, out, jobs=args.jobs or os.cpu_count() or 1)
    report = summary.write_study_summary(study, plan, out)
    print(f"study {study.name}: {len(plan)} runs, ranked by final test accuracy "
          f"(points against the reference):\n{summary.format_ranking(report)}")
    print(f"wrote {out / 'summary.md'}, summary.csv and {len(report.figures)} figure(s)")
    failed = [o for o in outcomes if o.failed]
    for outcome in failed:
        print(f"digitlab: error: run {outcome.name} failed: {outcome.message}", file=sys.stderr)
    return 1 if failed else 0
