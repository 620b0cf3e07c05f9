"""Start-up and wrap-up of `digitlab train --recipe fast`, as a whole process, old against new.

Each run is the real command, `python -m digitlab train --recipe fast --out TMP --no-progress`,
in a fresh process. Its overhead is what the process spends outside its epochs:

    overhead = wall clock of the whole process − the epochs' `seconds` in metrics.json

(each epoch's `seconds` is its training plus its test pass, as the final line's "N s" sums
them), so it is the start-up (imports, data, model, optimiser, first batch) plus the wrap-up
(checkpoints, metrics, plot, exit). `result` is when the final line appeared on stdout, from
the start of the process; `after` is what the process still did after that line; `cpu` its
user + system CPU time (all threads: the epochs' included), which a busy machine disturbs less.

With `--baseline REF` the ref's `src` is exported with `git archive` into a temporary folder
and each round runs the two trees one after the other, alternating which goes first; it prints
the medians per tree and the ratio. `--train-limit N` shortens the epochs (a quick look: the
data is read the same way, but the plot and the checkpoints are smaller) and `--extra` passes
more flags. It asserts nothing about time: the machine may be busy, so quote the medians of
one run, old and new measured together.

    python benchmarks/startup.py [--runs 3] [--baseline main] [--train-limit N]

Where the time went (py-spy record --nonblocking and `python -X importtime`, main @ 878a7b3,
2-core Xeon shared with other jobs, so the figures are rough): `import torch` ~1.2-1.8 s (not
avoidable: the command trains with it); `import torch._dynamo` ~1.2 s (3 s under py-spy), pulled
in by torch.optim's Optimizer.__init__ (add_param_group is wrapped in torch._disable_dynamo,
which imports dynamo on its first call) — and dynamo imports sympy and onnx; matplotlib
~0.5 s, imported before training by the CLI handler; the plot ~0.3-1 s; data, model,
checkpoints and metrics ~0.3 s. docs/benchmarks.md has the before/after figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def export(ref: str, into: Path) -> Path:
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def run_once(src: Path, out: Path, extra: list[str]) -> dict[str, float]:
    """One whole `digitlab train --recipe fast` process: wall, epochs, overhead, result, after."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = [sys.executable, "-m", "digitlab", "train", "--recipe", "fast", "--out", str(out),
               "--no-progress", *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True) as process:
        assert process.stdout is not None
        result = None
        for line in process.stdout:
            if "test accuracy" in line:
                result = time.perf_counter() - start
        code = process.wait()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if code:
        raise SystemExit(f"{' '.join(command)} failed with exit status {code}")
    metrics = json.loads((out / "metrics.json").read_text())
    epochs = sum(e["seconds"] for e in metrics["epochs"])
    if not (out / "performance.png").is_file():
        raise SystemExit(f"{out} has no performance.png")
    result = wall if result is None else result
    return {"wall": wall, "epochs": epochs, "overhead": wall - epochs, "result": result,
            "after": wall - result, "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="processes per tree (default 3)")
    parser.add_argument("--baseline", metavar="REF", help="also measure this git ref's src")
    parser.add_argument("--train-limit", type=int, metavar="N", help="shorten the epochs")
    parser.add_argument("--extra", default="", help="more flags for `digitlab train`")
    args = parser.parse_args()
    extra = args.extra.split() + (["--train-limit", str(args.train_limit)]
                                  if args.train_limit else [])
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"new": ROOT / "src"}
        if args.baseline:
            trees = {"old": export(args.baseline, Path(tmp) / "old"), **trees}
        results: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
        for round_ in range(args.runs):
            order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
            for name in order:
                measured = run_once(trees[name], Path(tmp) / f"run-{name}-{round_}", extra)
                results[name].append(measured)
                print(f"round {round_ + 1} {name}: " + ", ".join(
                    f"{k} {v:.2f} s" for k, v in measured.items()), flush=True)
    keys = ("wall", "epochs", "overhead", "result", "after", "cpu")
    print(f"\nmedians of {args.runs} run(s), seconds")
    print(f"{'tree':6s}" + "".join(f"{k:>10s}" for k in keys))
    medians = {name: {k: statistics.median(r[k] for r in runs) for k in keys}
               for name, runs in results.items()}
    for name, values in medians.items():
        print(f"{name:6s}" + "".join(f"{values[k]:10.2f}" for k in keys))
    if "old" in medians:
        old, new = medians["old"]["overhead"], medians["new"]["overhead"]
        print(f"overhead old/new: {old / new:.2f}x ({old - new:.2f} s less)")


if __name__ == "__main__":
    main()
