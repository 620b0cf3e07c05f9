"""Time to accuracy: the tutorial recipe, fed the tutorial's way, against digitlab's recipes.

Everything runs on this machine in one run, each entry in its own process so that its wall
time and peak memory (max RSS) are its own:

* **tutorial, DataLoader** - the reference: PyTorch's official MNIST example as the tutorial
  uses it (`cnn`, Adadelta lr 1.0, StepLR γ 0.7, batch 64, torchvision `datasets.MNIST` with
  `ToTensor()` + `Normalize()`, a `DataLoader` that does not shuffle on CPU, the test set after
  every epoch, its own training and test loops). Its time to 99.2%, 10 of its epochs at the
  time per epoch measured in this run, is the yardstick.
* **tutorial, digitlab** - one epoch of the same recipe through digitlab's pipeline (`digitlab
  train --recipe tutorial`): resident tensors, per-batch normalisation.
* **fast** - `digitlab train --recipe fast`, timed as a whole process (start-up, data loading,
  training, the final test), once per seed.

"time to X" is the training clock (train + test epochs) through the first epoch that reached X;
the last column divides the reference's time to 99.2% by each entry's whole-process time.

The reference needs about 30 minutes on 2 cores for its 14 epochs, so a run times one whole
epoch of it (train + test) and takes how many epochs it needs for 99.0% and 99.2% from the
full run recorded in benchmarks/results/tutorial_reference.json (`--record-reference` makes
that record; without shuffling, the reference is the same computation every time). `--quick`
times only the first `--quick-batches` batches of each tutorial pipeline and one seed of
`fast`, and says so. Results are written as JSON and as a markdown table (`--readme` puts the
table into README.md's performance section).

    python benchmarks/time_to_accuracy.py                     # about 6 minutes on 2 cores
    python benchmarks/time_to_accuracy.py --quick             # about 2 minutes
    python benchmarks/time_to_accuracy.py --record-reference  # the 14-epoch record, ~30 min
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from digitlab.files import write_json
from digitlab.training.runs import load_run

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "time_to_accuracy.json"
RECORD = HERE / "results" / "tutorial_reference.json"
README = HERE.parent / "README.md"
TARGETS = (0.990, 0.992)
# PyTorch's official example, unmodified, first reaches 99.20% after its 10th epoch in a full
# run on this project's machine (issue 16). Our own 14-epoch record of the same computation
# (tutorial_reference.json) peaked at 99.15% and never got there, so 10 epochs is the yardstick
# most favourable to the reference: its time to 99.2% is 10 epochs at the time per epoch
# measured in this run.
REFERENCE_EPOCHS_TO_992 = 10
BEGIN, END = "<!-- time-to-accuracy:begin -->", "<!-- time-to-accuracy:end -->"


# ------------------------------------------------------------------ the reference, in a child


def reference_child(args: argparse.Namespace) -> None:
    """PyTorch's official MNIST example as the tutorial runs it; writes per-epoch JSON.

    Its loops are written here as the example writes them (loss read back every 10 batches for
    the log, test loss summed per batch), so the yardstick is the example itself and not
    digitlab's engine; only the model comes from digitlab's registry (the same Net).
    """
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    from digitlab.data import MNIST_MEAN, MNIST_STD, resolve_root
    from digitlab.devices import resolve_device
    from digitlab.models import create_model

    device = resolve_device(args.device)
    torch.manual_seed(1)
    transform = transforms.Compose([transforms.ToTensor(),
                                    transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))])
    root = str(resolve_root(args.data_dir))
    train_set = datasets.MNIST(root, train=True, download=False, transform=transform)
    test_set = datasets.MNIST(root, train=False, download=False, transform=transform)
    # The example shuffles (with a loader worker and pinned memory) only on CUDA.
    cuda = {"num_workers": 1, "pin_memory": True, "shuffle": True} if device.type == "cuda" else {}
    if args.batches:  # --quick: the first batches only, then the throughput is extrapolated
        train_set = Subset(train_set, range(min(len(train_set), 64 * args.batches)))
    train_loader = DataLoader(train_set, batch_size=64, **cuda)
    test_loader = DataLoader(test_set, batch_size=1000, **cuda)
    model = create_model("cnn").to(device)
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)

    def train_epoch() -> int:
        model.train()
        for batch, (data, target) in enumerate(train_loader):
            data, target = data.to(device), target.to(device)
            optimizer.zero_grad()
            loss = F.nll_loss(model(data), target)
            loss.backward()
            optimizer.step()
            if batch % 10 == 0:
                loss.item()  # the example prints it: a host sync every 10 batches
        return len(train_loader.dataset)  # type: ignore[arg-type]

    def test_epoch() -> float:
        model.eval()
        correct, loss = 0, 0.0
        with torch.no_grad():
            for data, target in test_loader:
                data, target = data.to(device), target.to(device)
                output = model(data)
                loss += F.nll_loss(output, target, reduction="sum").item()
                correct += int(output.argmax(dim=1).eq(target).sum().item())
        return correct / len(test_loader.dataset)  # type: ignore[arg-type]

    epochs, elapsed = [], 0.0
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        samples = train_epoch()
        trained = time.perf_counter() - start
        accuracy = test_epoch() if not args.batches else None
        scheduler.step()
        elapsed += time.perf_counter() - start
        epochs.append({"epoch": epoch, "accuracy": accuracy, "seconds": elapsed,
                       "train_seconds": trained, "images_per_s": samples / trained,
                       "samples": samples})
        print(f"reference epoch {epoch}: " + (f"{100 * accuracy:.2f}%, " if accuracy else "")
              + f"{elapsed:.1f} s", file=sys.stderr, flush=True)
    Path(args.out).write_text(json.dumps({"device": str(device), "epochs": epochs}))


# ------------------------------------------------------------------ running and measuring


def run_child(command: list[str]) -> tuple[float, float, str]:
    """Run `command`; its wall seconds, peak RSS in MB, and stderr's last line on failure."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    stderr = process.stderr.read() if process.stderr else ""
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        tail = stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise SystemExit(f"error: {' '.join(command[:4])}... failed: {tail[0]}")
    return seconds, usage.ru_maxrss / 1024, stderr


def time_to(epochs: list[dict[str, Any]], target: float) -> tuple[float | None, int | None]:
    for e in epochs:
        if e.get("accuracy") is not None and e["accuracy"] >= target:
            return e["seconds"], e["epoch"]
    return None, None


def run_reference(args: argparse.Namespace, folder: Path, epochs: int) -> dict[str, Any]:
    out = folder / "reference.json"
    command = [sys.executable, __file__, "--reference-child", "--out", str(out),
               "--epochs", str(epochs), "--device", args.device]
    if args.quick:
        command += ["--batches", str(args.quick_batches)]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    what = f"first {args.quick_batches} batches" if args.quick else f"{epochs} epoch(s)"
    print(f"training the tutorial recipe the tutorial's way (DataLoader), {what}", flush=True)
    wall, peak, _ = run_child(command)
    record = json.loads(out.read_text())
    first = record["epochs"][0]
    return {"name": "tutorial, DataLoader", "recipe": "tutorial", "pipeline": "dataloader",
            "device": record["device"], "epochs": record["epochs"], "wall_seconds": wall,
            "peak_mb": peak, "images_per_s": first["images_per_s"],
            # a whole epoch: 60,000 images at the measured rate, plus the test when it ran
            "epoch_seconds": 60_000 / first["images_per_s"]
            + (first["seconds"] - first["train_seconds"])}


def with_recorded_epochs(entry: dict[str, Any], test_seconds: float) -> dict[str, Any]:
    """The reference's accuracy per epoch from the recorded full run, at today's epoch time."""
    if not RECORD.is_file():
        raise SystemExit(f"error: no full run of the reference recorded in {RECORD}; "
                         "run this benchmark once with --record-reference")
    recorded = json.loads(RECORD.read_text())
    per_epoch = entry["epoch_seconds"] + test_seconds
    entry = {**entry, "epochs": [{**e, "seconds": e["epoch"] * per_epoch}
                                  for e in recorded["epochs"]]}
    entry["estimated"] = (f"accuracy per epoch from the full run recorded {recorded['date']}, "
                          f"time per epoch ({per_epoch:.1f} s) measured in this run")
    entry["epoch_with_test_seconds"] = per_epoch
    entry["time_to_992"] = REFERENCE_EPOCHS_TO_992 * per_epoch
    return entry


def run_digitlab(args: argparse.Namespace, folder: Path, recipe: str, seed: int,
                 extra: list[str]) -> dict[str, Any]:
    out = folder / f"{recipe}-{seed}"
    command = [sys.executable, "-m", "digitlab", "-q", "train", "--recipe", recipe,
               "--seed", str(seed), "--out", str(out), "--no-progress", "--device", args.device,
               *extra]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    print(f"digitlab train --recipe {recipe} --seed {seed} {' '.join(extra)}".rstrip(), flush=True)
    wall, peak, _ = run_child(command)
    run = load_run(out)
    elapsed, epochs = 0.0, []
    for e in run.history.epochs:
        elapsed += e.seconds
        epochs.append({"epoch": e.epoch, "accuracy": e.accuracy, "seconds": elapsed,
                       "images_per_s": e.images_per_s})
    return {"name": f"{recipe}, digitlab", "recipe": recipe, "pipeline": "digitlab",
            "seed": seed, "device": run.device, "epochs": epochs, "wall_seconds": wall,
            "peak_mb": peak, "images_per_s": statistics.median(e["images_per_s"] for e in epochs),
            "epoch_seconds": run.history.epochs[0].seconds}


# ------------------------------------------------------------------ reporting


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def seconds(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.1f} s"


def table(results: dict[str, Any]) -> str:
    reference = results["entries"][0]
    yardstick = reference["time_to_992"]
    rows = ["| Recipe, pipeline | Seed | Time to 99.0% | Time to 99.2% | Final accuracy | "
            "Images/s (training) | Peak memory | Whole process | Reference's time to 99.2% "
            "÷ whole process |", "|---|---|---|---|---|---|---|---|---|"]
    for e in results["entries"]:
        t990, n990 = time_to(e["epochs"], TARGETS[0])
        t992, n992 = time_to(e["epochs"], TARGETS[1])
        final = e["epochs"][-1].get("accuracy")
        whole = e["wall_seconds"] if not e.get("partial") else None
        ratio = f"**{yardstick / whole:.1f}×**" if whole else "-"
        rows.append(
            f"| {e['name']} | {e.get('seed', '-')} | {seconds(t990)}"
            f"{f' (epoch {n990})' if n990 else ''} | {seconds(t992)}"
            f"{f' (epoch {n992})' if n992 else ''} | "
            f"{'-' if final is None else f'{100 * final:.2f}%'} | {e['images_per_s']:.0f} | "
            f"{e['peak_mb']:.0f} MB | {seconds(whole) if whole else '-'} | {ratio} |")
    notes = [f"CPU: {results['cpu']}, {results['threads']} threads, torch {results['torch']}, "
             f"device {reference['device']}, {results['date']}"
             + (" - **quick run** (partial epochs, one seed)" if results.get("quick") else ""),
             f"Reference: {reference['estimated']}. Its time to 99.2%: {REFERENCE_EPOCHS_TO_992} "
             f"epochs × {reference['epoch_with_test_seconds']:.1f} s = **{yardstick:.0f} s** "
             f"(the official example first reaches 99.20% after epoch {REFERENCE_EPOCHS_TO_992} "
             "in a full run here; the recorded run above never does)."]
    dataloader_epoch = 60_000 / reference["images_per_s"]
    notes.append(f"One epoch of the tutorial `cnn` (training only): {dataloader_epoch:.1f} s "
                 f"through the DataLoader, {results['entries'][1]['epoch_seconds']:.1f} s through "
                 f"digitlab's pipeline (**{results['epoch_ratio']:.2f}×** faster).")
    fast = [e for e in results["entries"] if e["recipe"] == "fast"]
    if fast:
        finals = [e["epochs"][-1]["accuracy"] for e in fast]
        median = statistics.median(e["wall_seconds"] for e in fast)
        notes.append(f"`fast` over {len(fast)} seeds: mean {100 * statistics.mean(finals):.2f}%, "
                     f"lowest {100 * min(finals):.2f}%; whole process median {median:.1f} s: "
                     f"**{yardstick / median:.1f}×** the reference's time to 99.2%.")
    return "\n".join(rows) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"


def write_readme(markdown: str) -> None:
    text = README.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"error: README.md has no {BEGIN} ... {END} block to fill")
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    README.write_text(pattern.sub(lambda _: f"{BEGIN}\n{markdown}{END}", text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few minutes; see the top")
    parser.add_argument("--quick-batches", type=int, default=300, help="--quick: batches timed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="fast's seeds")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default=None, help=f"JSON results (default: {RESULTS}, "
                        "or results/time_to_accuracy-quick.json with --quick)")
    parser.add_argument("--readme", action="store_true", help="write the table into README.md")
    parser.add_argument("--record-reference", action="store_true",
                        help=f"train the reference for 14 epochs and record it in {RECORD.name}")
    parser.add_argument("--reference-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=14, help=argparse.SUPPRESS)
    parser.add_argument("--batches", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reference_child:
        return reference_child(args)
    if args.quick_batches < 10:
        parser.error("--quick-batches must be at least 10")

    import torch

    with tempfile.TemporaryDirectory(prefix="time-to-accuracy-") as tmp:
        folder = Path(tmp)
        if args.record_reference:
            entry = run_reference(args, folder, epochs=14)
            record = {"date": time.strftime("%Y-%m-%d"), "cpu": cpu_name(),
                      "torch": torch.__version__, "device": entry["device"],
                      "epochs": entry["epochs"]}
            write_json(RECORD, record)
            for e in entry["epochs"]:
                print(f"epoch {e['epoch']:>2}: {100 * e['accuracy']:.2f}%, {e['seconds']:.0f} s")
            print(f"wrote {RECORD}")
            return None
        reference = run_reference(args, folder, epochs=1)
        test_seconds = 0.0
        if args.quick:  # the partial epoch had no test: borrow the record's test time
            recorded = json.loads(RECORD.read_text()) if RECORD.is_file() else {"epochs": [{}]}
            first = recorded["epochs"][0]
            test_seconds = first.get("seconds", 0.0) - first.get("train_seconds", 0.0)
        # one epoch of a 14-epoch recipe: its process's wall time says nothing, so no figure
        entries = [{**with_recorded_epochs(reference, test_seconds), "partial": True}]
        ours_epoch = ["--epochs", "1"]
        if args.quick:
            ours_epoch += ["--train-limit", str(64 * args.quick_batches)]
        ours = run_digitlab(args, folder, "tutorial", 1, ours_epoch)
        ours["epoch_seconds"] = 60_000 / ours["images_per_s"]  # training only, as the reference
        if args.quick:  # a partial epoch: its accuracy is moot
            ours["epochs"] = [{**e, "accuracy": None} for e in ours["epochs"]]
        ours["partial"] = True
        entries.append(ours)
        seeds = args.seeds[:1] if args.quick else args.seeds
        entries += [run_digitlab(args, folder, "fast", seed, []) for seed in seeds]
    results = {
        "date": time.strftime("%Y-%m-%d"), "quick": args.quick, "cpu": cpu_name(),
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "epoch_ratio": (60_000 / entries[0]["images_per_s"]) / entries[1]["epoch_seconds"],
        "entries": entries,
    }
    markdown = table(results)
    print()
    print(markdown)
    out = Path(args.out) if args.out else (
        RESULTS.with_name("time_to_accuracy-quick.json") if args.quick else RESULTS)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, results)
    print(f"wrote {out}")
    if args.readme:
        write_readme(markdown)
        print(f"wrote the table into {README}")


if __name__ == "__main__":
    main()
