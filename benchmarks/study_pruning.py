"""What median pruning saves a search: `digitlab study --search tpe --trials 12` on tutorial-mlp,
then the same 12 trials (the same settings, enqueued in a fresh study) with pruning off.

Both run in this process, one after the other, one worker each; the figures are the trials
pruned, the epochs trained, and the time: the trials' own training time, the whole search's wall
clock and its CPU time (on a machine others share, wall time swings with their load; CPU time
much less), pruned against unpruned. It also says whether pruning cost the search its best
trial (whether a pruned trial would have ranked first had it run to the end).

    python benchmarks/study_pruning.py --threads 1          # 12 trials, 5 epochs, full MNIST: ~8 min
    python benchmarks/study_pruning.py --train-limit 15000  # 10,000 training images: quicker
    python benchmarks/study_pruning.py --epochs 14          # the recipe's own epochs: long on a CPU
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

from digitlab.data import default_root
from digitlab.studies import storage
from digitlab.studies.runner import StudyOptions, run_study
from digitlab.studies.spec import parse_spec
from digitlab.studies.trials import RUN, record_of
from digitlab.studies.worker import SearchSettings
from digitlab.training.config import DataConfig

SPACE = {"lr": {"low": 0.003, "high": 10.0, "log": True}, "batch_size": [32, 64, 128, 256]}


def search(out: Path, args: argparse.Namespace, prune: bool, replay: list[dict] | None) -> dict:
    """Run the search into `out`; with `replay`, enqueue those params first (a fresh study that
    trains exactly them). The trials' figures and the wall clock."""
    spec = parse_spec({"name": "pruning", "base": {"recipe": "tutorial-mlp"}, "vary": SPACE})
    data = DataConfig(root=default_root(), train_limit=args.train_limit or None,
                      test_limit=args.test_limit or None, val_split=args.val_split)
    if replay is not None:
        study, _ = storage.create_or_join(storage.default_storage(out), "pruning-search", "search",
                                          storage.HEARTBEAT)
        for params in replay:
            study.enqueue_trial(params)
        storage.mark_planned(study)
    options = StudyOptions(out=out, jobs=1, threads=args.threads, epochs=args.epochs,
                           device=args.device,
                           search=SearchSettings(args.trials, prune=prune, seed=args.seed,
                                                 prune_from=args.prune_from))
    start, cpu = time.perf_counter(), time.process_time()
    run_study(spec, data, options)  # one worker: in this process, so its CPU time is ours
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    optuna = storage.import_optuna()
    trials = optuna.load_study(study_name="pruning-search",
                               storage=storage.default_storage(out)).get_trials()
    rows = []
    for t in sorted(trials, key=lambda t: t.number):
        record = record_of(t)
        assert record is not None, f"trial {t.number} kept no record ({t.user_attrs.get(RUN)})"
        rows.append({"trial": t.number, "params": t.params, "state": t.state.name,
                     "epochs": len(record.history.epochs), "seconds": record.history.total_seconds,
                     "val_accuracy": record.history.epochs[-1].val_accuracy})
    return {"wall_s": wall, "cpu_s": cpu, "trials": rows}


def describe(params: dict) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def report(pruned: dict, full: dict) -> dict:
    cut = [p for p in pruned["trials"] if p["state"] == "PRUNED"]
    best = max(full["trials"], key=lambda r: r["val_accuracy"])
    print(f"{'trial':>5}  {'params':<28} {'pruned run':>18} {'unpruned run':>20}")
    for p, f in zip(pruned["trials"], full["trials"], strict=True):
        mark = f"pruned at {p['epochs']}" if p["state"] == "PRUNED" else f"{p['epochs']} epochs"
        print(f"{p['trial']:>5}  {describe(p['params']):<28} {mark:>12} {100 * p['val_accuracy']:5.2f}%"
              f" {f['epochs']:>6} epochs {100 * f['val_accuracy']:5.2f}%"
              + ("  <- best unpruned" if f is best else ""))
    figures = {
        "trials": len(pruned["trials"]), "pruned": len(cut),
        "epochs_pruned": sum(p["epochs"] for p in pruned["trials"]),
        "epochs_unpruned": sum(f["epochs"] for f in full["trials"]),
        "train_s_pruned": sum(p["seconds"] for p in pruned["trials"]),
        "train_s_unpruned": sum(f["seconds"] for f in full["trials"]),
        "wall_s_pruned": pruned["wall_s"], "wall_s_unpruned": full["wall_s"],
        "cpu_s_pruned": pruned["cpu_s"], "cpu_s_unpruned": full["cpu_s"],
        "best_trial_pruned": best["trial"] in {p["trial"] for p in cut},
    }
    print(f"\n{figures['pruned']} of {figures['trials']} trials pruned; epochs trained "
          f"{figures['epochs_pruned']} vs {figures['epochs_unpruned']} "
          f"({1 - figures['epochs_pruned'] / figures['epochs_unpruned']:.0%} fewer)")
    labels = {"train_s": "trials' training time", "wall_s": "search wall clock",
              "cpu_s": "search CPU time (what a shared machine's load disturbs least)"}
    for what, label in labels.items():
        a, b = figures[f"{what}_pruned"], figures[f"{what}_unpruned"]
        print(f"{label}: {a:.0f} s pruned vs {b:.0f} s unpruned: {1 - a / b:.0%} saved ({b / a:.2f}x)")
    print("pruning " + ("cut the best trial" if figures["best_trial_pruned"] else
                        f"kept the best trial (trial {best['trial']}, {describe(best['params'])}, "
                        f"{100 * best['val_accuracy']:.2f}% validation)"))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--train-limit", type=int, default=0,
                        help="first N training images, the validation split among them (0: all)")
    parser.add_argument("--test-limit", type=int, default=0)
    parser.add_argument("--val-split", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1, help="TPE's seed: both searches alike")
    parser.add_argument("--prune-from", type=int, default=1,
                        help="the first epoch after which a trial may be pruned")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    with tempfile.TemporaryDirectory(prefix="study-pruning-") as folder:
        pruned = search(Path(folder) / "pruned", args, prune=True, replay=None)
        params = [row["params"] for row in pruned["trials"]]
        full = search(Path(folder) / "unpruned", args, prune=False, replay=params)
    figures = report(pruned, full)
    if args.json:
        args.json.write_text(json.dumps({"settings": vars(args) | {"json": None}, **figures,
                                         "pruned_run": pruned, "unpruned_run": full}, indent=2,
                                        default=str) + "\n")


if __name__ == "__main__":
    main()
