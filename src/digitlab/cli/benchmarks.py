"""`digitlab bench wild`: the in-the-wild benchmark, from an installed package."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from digitlab.cli.args import MODEL_HELP, Command, add_data_args, non_negative_int


def register(command: Command) -> None:
    p = command("bench", cmd_bench, "measure a model on digits written the way people write them "
                "(rendered from MNIST test digits, and real labelled pictures)", """
digitlab bench wild                                   # the shipped model, 300 images per condition
digitlab bench wild --model runs/X/best.pt --json runs/X/in_the_wild.json   # for `digitlab report`
digitlab bench wild --per-condition 0 --real my-digits/ --failures misread/
""")
    p.add_argument("suite", choices=("wild",), help="wild: naive, plain and digitlab's preprocessing "
                   "on canvases, paper, photos, scans, fonts and numbers")
    p.add_argument("--model", metavar="CHECKPOINT", help=MODEL_HELP)
    p.add_argument("--per-condition", type=non_negative_int, default=300, metavar="N",
                   help="images rendered per condition (default 300; 0: none)")
    p.add_argument("--junk", type=non_negative_int, default=300, metavar="N",
                   help="pictures with no digit rendered (slabs, frames, rules, blots, specks, "
                        "squared paper) to measure how many come back as a digit (default 300; 0: none)")
    p.add_argument("--conditions", nargs="+", metavar="NAME", help="only these conditions")
    p.add_argument("--seed", type=int, default=0, help="rendering seed (default 0)")
    p.add_argument("--real", metavar="DIR", type=Path, help="also score real labelled digits in DIR "
                   "(files named <digit>_*.png; an optional labels.csv: file, source, kind)")
    p.add_argument("--failures", metavar="DIR", type=Path,
                   help="with --real: draw each misread (plain, robust) into DIR/<pipeline>/")
    p.add_argument("--save", metavar="DIR", type=Path, help="also write the rendered images here")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON (what `digitlab "
                   "report --wild` reads; in_the_wild.json beside a checkpoint is found by itself)")
    add_data_args(p)


def cmd_bench(args: argparse.Namespace) -> int:
    from digitlab import data
    from digitlab.predicting.predictor import MIN_CONFIDENCE, Predictor
    from digitlab.reports import wild

    predictor = Predictor.load(args.model)
    results: dict[str, dict] = {}
    if args.per_condition > 0:
        images, labels = data.load_split(data.resolve_root(args.data_dir), train=False)
        start = time.perf_counter()
        results = wild.score_rendered(predictor, images, labels, args.per_condition, args.seed,
                                      args.conditions, args.save)
        print(f"model: {args.model or 'default (shipped)'}; seed {args.seed}; "
              f"{time.perf_counter() - start:.0f} s; accuracy per condition (argmax; 'unsure' = "
              f"robust's confidence below {MIN_CONFIDENCE}, which classify reports as 'no digit')")
        print(wild.format_table("condition", results))
        for name in wild.wild.NUMBERS:
            if name in results:
                print(f"({name}: exact string match; per-digit accuracy "
                      f"{100 * results[name]['robust']['digit_accuracy']:.1f}%; naive and "
                      "plain cannot split numbers)")
    junk = wild.score_junk(predictor, args.junk, args.seed) if args.junk > 0 else None
    if junk is not None:
        print(f"\npictures with no digit read as a digit (confidence at least {MIN_CONFIDENCE}; "
              "'no digit' is right):")
        for kind, row in junk.items():
            print(f"{kind:<44}{row['n']:>5}{100 * row['read_as_digit']:>8.1f}%")
    real = wild.score_real(predictor, args.real, args.failures) if args.real else None
    if real is not None:
        print(wild.format_table(f"real digits in {args.real}", real["all"]))
        print(wild.format_table("per kind", real["kind"]))
        print(wild.format_table("per source", real["source"]))
    if args.json:
        from digitlab.files import write_json

        write_json(args.json, {"model": args.model, "seed": args.seed, "results": results,
                               **({"junk": junk} if junk is not None else {}),
                               **({"real": real} if real is not None else {})})
        print(f"wrote {args.json}")
    return 0
