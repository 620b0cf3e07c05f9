"""The tutorial reproduced, as a picture: test accuracy against training time for the tutorial
recipe (PyTorch's MNIST example: its 14 epochs, recorded by `time_to_accuracy.py
--record-reference`, timed per epoch in the same run as the rest) and for `digitlab train
--recipe fast` (three seeds), from benchmarks/results/time_to_accuracy.json.

    python benchmarks/plot_tutorial.py                 # writes docs/tutorial-accuracy.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from matplotlib.figure import Figure

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "time_to_accuracy.json"
OUT = HERE.parent / "docs" / "tutorial-accuracy.png"
TARGET = 0.992  # the tutorial's accuracy: what `fast` is timed to reach


def plot(results: dict) -> Figure:
    fig = Figure(figsize=(7, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for entry in results["entries"]:
        epochs = entry["epochs"]
        if entry["pipeline"] == "dataloader":
            label, style = "tutorial (PyTorch's example, 14 epochs)", dict(color="tab:gray", marker="o")
        elif entry["recipe"] == "fast":
            label, style = f"digitlab fast, seed {entry.get('seed', '?')}", dict(marker="s")
        else:
            continue  # the one-epoch timing of the tutorial through digitlab's pipeline
        seconds = [e["seconds"] for e in epochs]
        ax.plot(seconds, [100 * e["accuracy"] for e in epochs], label=label, **style)
    ax.axhline(100 * TARGET, color="tab:red", lw=0.8, ls="--", label="99.2%")
    ax.set(xscale="log", xlabel="seconds of training (log scale)", ylabel="test accuracy (%)",
           ylim=(98, 99.6), title="MNIST test accuracy against training time")
    fig.text(0.01, 0.01, f"{results['cpu']}, {results['threads']} threads, {results['date']}",
             ha="left", va="bottom", fontsize=7, color="gray")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    plot(json.loads(args.results.read_text())).savefig(args.out, dpi=100)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
