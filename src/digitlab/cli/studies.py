"""`digitlab study`: a base run and its variants, or a search, trained through an Optuna study
that any number of workers share, and compared."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from digitlab.cli.args import (
    Command,
    add_data_args,
    add_device_args,
    add_limit_args,
    add_real_args,
    device_of,
    non_negative_int,
    positive_int,
)

if TYPE_CHECKING:
    from digitlab.studies.runner import StudyRun
    from digitlab.studies.spec import StudySpec


def register(command: Command) -> None:
    p = command("study", cmd_study, "a parameter study: a base run and variants (or a search), "
                "trained by any number of workers and compared in figures, a table and a ranking", """
digitlab study part2 --epochs 2                        # the tutorial's part 2, shortened
digitlab study --vary lr=0.1,1,10 --seeds 1 2          # tutorial-mlp, three learning rates
digitlab study my-study.toml --grid --jobs 2
digitlab study part2 --storage postgresql://me@db/studies   # on each machine: shares the runs
digitlab study --vary lr=0.01..3:log --search tpe --trials 12   # TPE, median pruning
digitlab study --vary lr=0.01..3:log --search tpe --val-real my-digits/ --select-by real
optuna-dashboard sqlite:///runs/study-part2/study.db   # watch it (pip install optuna-dashboard)
""")
    p.add_argument("spec", nargs="?", metavar="SPEC",
                   help="a TOML (or YAML) study file, or a shipped study's name (part2)")
    p.add_argument("--vary", action="append", metavar="NAME=V1,V2",
                   help="a factor and its values, or NAME=LOW..HIGH[:log] for a search "
                        "(repeatable; adds to or replaces SPEC's)")
    p.add_argument("--recipe", help="the base recipe without SPEC (default: tutorial-mlp)")
    p.add_argument("--grid", action="store_true", help="every combination, not one at a time")
    p.add_argument("--seeds", type=int, nargs="+", metavar="SEED", help="repeat every run per seed")
    p.add_argument("--epochs", type=positive_int, metavar="N",
                   help="epochs of every run; an epochs factor keeps its ratio to the base")
    p.add_argument("--search", choices=("tpe",),
                   help="draw --trials runs from the factors (ranges or values) with TPE instead of "
                        "planning them, each picked by its validation accuracy")
    p.add_argument("--trials", type=positive_int, default=20, metavar="N",
                   help="trials a search holds, over all its workers (default 20)")
    p.add_argument("--no-prune", action="store_true",
                   help="a search runs every trial to its last epoch (default: median pruning)")
    p.add_argument("--prune-from", type=positive_int, default=1, metavar="EPOCH",
                   help="the first epoch after which a trial whose best validation accuracy is "
                        "below the median of earlier trials' at that epoch is stopped (default 1)")
    p.add_argument("--val-split", type=non_negative_int, default=0, metavar="N",
                   help="hold out the last N training images to pick by (a search's default: 5,000)")
    p.add_argument("--jobs", type=positive_int, metavar="N",
                   help="worker processes here (default: the number of cores)")
    p.add_argument("--threads", type=positive_int, metavar="N",
                   help="torch threads per worker (default: cores ÷ jobs; with one job, torch's "
                        "default); give 1 when other study processes share this machine")
    p.add_argument("--storage", metavar="URL",
                   help="where the trials live, shared by every worker: a database URL, e.g. "
                        "postgresql://USER@HOST/DB (default: sqlite in the study folder)")
    p.add_argument("--heartbeat", type=positive_int, default=10, metavar="S",
                   help="seconds between a worker's heartbeats; one silent for 3 is taken as dead "
                        "and its run retried (kept by the study from its start; default 10)")
    p.add_argument("--out", metavar="DIR", help="study folder (default: runs/study-<name>; for "
                   "--vary without SPEC, a name from the factors and a digest of their values)")
    p.add_argument("--restart", action="store_true",
                   help="take over a study folder that another study (other settings) owns; its "
                        "runs whose settings differ are trained again (default: refused)")
    p.add_argument("--storage-patience", type=positive_int, default=300, metavar="S",
                   help="seconds a worker waits out a lost storage connection, retrying with "
                        "backoff, before it stops (default 300)")
    add_limit_args(p)
    add_real_args(p)
    add_data_args(p)
    add_device_args(p)


def cmd_study(args: argparse.Namespace) -> int:
    from digitlab.data import resolve_root
    from digitlab.studies import runner, spec
    from digitlab.studies.worker import SearchSettings
    from digitlab.training.config import DataConfig

    study = spec.build_spec(args.spec, args.vary, args.grid, args.seeds, args.recipe)
    search = (SearchSettings(args.trials, args.search, not args.no_prune, args.prune_from)
              if args.search else None)
    data = DataConfig(root=resolve_root(args.data_dir), train_limit=args.train_limit,
                      test_limit=args.test_limit, val_split=args.val_split,
                      val_real=tuple(args.val_real or ()), select_by=args.select_by)
    out = Path(args.out) if args.out else runner.default_study_dir(study, search)
    options = runner.StudyOptions(out=out, storage=args.storage, jobs=args.jobs or os.cpu_count() or 1,
                                  threads=args.threads, heartbeat=args.heartbeat, epochs=args.epochs,
                                  device=device_of(args), search=search, restart=args.restart,
                                  patience=args.storage_patience)
    return report(study, runner.run_study(study, data, options), out)


def report(study: StudySpec, run: StudyRun, out: Path) -> int:
    """Summarise the study from its storage; print the ranking; 1 if a run failed."""
    from digitlab.studies import results, search_summary, storage, summary

    found = results.read_results(run)
    table = results.trial_table(found.trials)
    if run.plan:
        written = summary.write_study_summary(study, run.plan, found.records, out, table,
                                              run.data.select_by)
        print(f"study {study.name}: {len(run.plan)} runs, ranked by {summary.ranked_by(written)} "
              f"(points against the reference):\n{summary.format_ranking(written)}")
        print(f"wrote {out / 'summary.md'}, summary.csv and {len(written.figures)} figure(s)")
    else:
        by = run.data.select_by
        rows = search_summary.write_search_summary(study, found, out, table, by)
        pruned = sum(r["state"] == "pruned" for r in rows)
        print(f"search {study.name}: {len(rows)} trials, {pruned} pruned; best by "
              f"{search_summary.objective(by)[1]} accuracy:\n"
              f"{search_summary.format_search_ranking(rows, select_by=by)}")
        print(f"wrote {out / 'summary.md'}, summary.csv and search.png")
    print(f"trials in {storage.shown(run.storage)}, study {run.name}")
    for name, message in found.failed.items():
        print(f"digitlab: error: run {name} failed: {message}", file=sys.stderr)
    return 1 if found.failed else 0
