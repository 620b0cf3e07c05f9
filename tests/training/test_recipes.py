import pytest

from digitlab.errors import ConfigError
from digitlab.training.recipes import RECIPES, build_config


def test_tutorial_recipe_has_the_tutorials_settings():
    cfg = build_config("tutorial")
    assert (cfg.model, cfg.optimizer, cfg.lr, cfg.gamma, cfg.batch_size, cfg.test_batch_size,
            cfg.epochs, cfg.seed, cfg.log_interval) == ("cnn", "adadelta", 1.0, 0.7, 64, 1000,
                                                         14, 1, 10)


def test_flags_override_the_recipe():
    cfg = build_config("tutorial", model="mlp", epochs=2, lr=None)
    assert cfg.model == "mlp" and cfg.epochs == 2 and cfg.lr == 1.0 and cfg.recipe == "tutorial"


def test_every_recipe_builds_and_unknown_ones_fail():
    for name in RECIPES:
        assert build_config(name).recipe == name
    with pytest.raises(ConfigError, match="unknown recipe"):
        build_config("nope")
