"""`digitlab pack` and `export`: a trained model made ready to ship or to run elsewhere."""

from __future__ import annotations

import argparse

from digitlab.cli.args import Command, add_data_args, add_device_args, device_of, positive_int


def register(command: Command) -> None:
    p = command("pack", cmd_pack, "write a slim copy of a checkpoint for inference, with its "
                "training record (and a fitted temperature)", """
digitlab pack runs/robust/last.pt --out model.pt --calibrate
""")
    p.add_argument("checkpoint", help="a .pt from `digitlab train`")
    p.add_argument("--out", required=True, metavar="PT", help="where to write the slim .pt")
    p.add_argument("--calibrate", action="store_true",
                   help="fit a temperature on the validation split (the last 5,000 training "
                        "images) so that confidences match accuracy, and store it")
    add_data_args(p)
    add_device_args(p)

    p = command("export", cmd_export, "export a checkpoint to ONNX or TorchScript, checked against "
                "PyTorch on the test set before it is written", """
digitlab export model.pt --format onnx --out model.onnx
digitlab export model.pt --format torchscript --out model.ts --input uint8
""")
    p.add_argument("checkpoint", help="a .pt from `digitlab train` or `digitlab pack`")
    p.add_argument("--format", required=True, choices=("onnx", "torchscript"))
    p.add_argument("--out", required=True, metavar="FILE", help="where to write (.onnx or .pt)")
    p.add_argument("--input", default="float", choices=("float", "uint8"),
                   help="the graph's input: float pixels in [0, 1] (default) or uint8 0-255")
    p.add_argument("--check-limit", type=positive_int, metavar="N",
                   help="check on the first N test digits only (default: all 10,000)")
    add_data_args(p)


def cmd_pack(args: argparse.Namespace) -> int:
    from digitlab.training.packing import pack_checkpoint

    calibration = None
    if args.calibrate:
        from digitlab.data import resolve_root
        from digitlab.reports.checkpoint_temperature import fit_checkpoint_temperature
        from digitlab.training.config import DataConfig

        calibration = fit_checkpoint_temperature(
            args.checkpoint, DataConfig(root=resolve_root(args.data_dir)), device=device_of(args))
        seen = {True: "", False: " (the model was trained on them)",
                None: " (the model may have been trained on them)"}[calibration["held_out"]]
        print(f"temperature {calibration['temperature']:.3f}, fitted on the "
              f"{calibration['validation']}{seen}: validation NLL {calibration['nll_before']:.4f} "
              f"→ {calibration['nll_after']:.4f}")
    record = pack_checkpoint(args.checkpoint, args.out, calibration)
    print(f"wrote {args.out} ({record['bytes'] / 1e6:.2f} MB, test accuracy "
          f"{100 * (record['test_accuracy'] or 0):.2f}%) and its training record")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from digitlab.checkpoints.format import load_model
    from digitlab.data import get_dataset, load_split, resolve_root
    from digitlab.export.exporter import export_model

    model, checkpoint = load_model(args.checkpoint, "cpu")
    spec = get_dataset(checkpoint.dataset)
    images, _ = load_split(resolve_root(args.data_dir), train=False, spec=spec, limit=args.check_limit)
    check = export_model(model, checkpoint, args.out, args.format, images.float() / 255,
                         input_dtype=args.input)
    print(f"wrote {args.out} ({args.format}, {args.input} N×28×28 input): same predictions as "
          f"PyTorch on {check.images} test digits, largest probability difference "
          f"{check.max_difference:.1e}")
    return 0
