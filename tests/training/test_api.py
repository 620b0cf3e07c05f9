import subprocess
import sys

import pytest

import digitlab
from digitlab.errors import ConfigError
from digitlab.training.api import train_settings
from digitlab.training.runs import RunRecord, load_run


def test_import_digitlab_does_not_import_torch():
    code = "import sys, digitlab; assert callable(digitlab.train); print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_train_from_python_returns_the_run_record(mnist_root, tmp_path):
    record = digitlab.train("fast", tmp_path / "run", data_dir=mnist_root, train_limit=1000,
                            test_limit=500, epochs=1, device="cpu", progress=False)
    assert isinstance(record, RunRecord) and record == load_run(tmp_path / "run")
    assert record.config.recipe == "fast" and record.config.model == "fastcnn"
    assert record.config.epochs == 1 and record.config.lr == 2e-2  # the recipe's, but one epoch
    assert record.data is not None and record.data.train_limit == 1000 and record.data.root == mnist_root
    assert len(record.history.epochs) == 1 and record.history.epochs[0].samples == 1000
    assert 0.1 < record.accuracy <= 1 and (tmp_path / "run" / "best.pt").is_file()


def test_overrides_are_training_settings_and_data_options_are_data(tmp_path):
    config, data = train_settings("tutorial", data_dir=tmp_path, val_split=5000, lr=0.5, model=None,
                                  device="cpu")
    assert (config.lr, config.model, config.device) == (0.5, "cnn", "cpu")  # None: the recipe's
    assert data.root == tmp_path and data.val_split == 5000 and data.train_limit is None
    with pytest.raises(ConfigError, match="unknown training setting.*'epoch'"):
        train_settings("fast", epoch=3)
    with pytest.raises(ConfigError, match="unknown recipe"):
        train_settings("slow")
