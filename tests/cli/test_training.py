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
