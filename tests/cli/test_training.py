import json
import subprocess
import sys

import pytest

from digitlab.cli import build_parser
from digitlab.cli.training import configured
from digitlab.data import VALIDATION_SIZE


@pytest.mark.parametrize("flags, held_out", [
    ([], 0),  # the tutorial trains on all 60,000
    (["--val-split"], VALIDATION_SIZE),
    (["--val-split", "300"], 300),
    (["--val-split", "0"], 0),
])
def test_val_split_without_a_number_holds_out_the_validation_split(flags, held_out):
    _, data, _ = configured(build_parser().parse_args(["train", *flags]))
    assert data.val_split == held_out


# Imported by `digitlab train` only after the first batch, if at all: each costs start-up time
# (torch._dynamo ~1.2 s, with sympy and onnx; matplotlib ~0.5 s, for the plot drawn at the end).
HEAVY_MODULES = ("matplotlib", "PIL", "torch._dynamo", "sympy", "onnx", "onnxruntime",
                 "tensorboard", "fastapi", "scipy", "torchvision", "pandas")

TRAIN_AND_LIST_MODULES = """
import dataclasses, json, sys
from digitlab import data
from digitlab.cli import main
from digitlab.training import trainer

heavy, (root, files) = json.loads(sys.argv[1]), json.loads(sys.argv[2])
data.DATASETS["mnist"] = dataclasses.replace(data.MNIST, files=files)  # the fake's checksums
imported = {}
train_one_epoch = trainer.train_one_epoch

def first_batch(*args, **kwargs):
    imported.setdefault("first batch", [m for m in heavy if m in sys.modules])
    return train_one_epoch(*args, **kwargs)

trainer.train_one_epoch = first_batch
code = main(["train", "--recipe", "fast", "--epochs", "1", "--data-dir", root, "--out",
             root + "/run", "--no-progress", "--device", "cpu"])
imported["exit"] = [m for m in heavy if m in sys.modules]
print(json.dumps({"code": code, **imported}))
"""


def test_train_imports_no_heavy_module_before_its_first_batch(fake_mnist):
    """Behaviour, not timing: the modules `train --recipe fast` imports (in a fresh process)."""
    root, spec = fake_mnist
    result = subprocess.run(
        [sys.executable, "-c", TRAIN_AND_LIST_MODULES, json.dumps(HEAVY_MODULES),
         json.dumps([str(root), spec.files])], capture_output=True, text=True, check=True)
    imported = json.loads(result.stdout.splitlines()[-1])
    assert imported["code"] == 0 and imported["first batch"] == []
    assert imported["exit"] == ["matplotlib", "PIL"]  # the plot, drawn after the result line
    assert (root / "run" / "performance.png").is_file()
