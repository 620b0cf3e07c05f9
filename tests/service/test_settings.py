"""Settings from DIGITLAB_* environment variables, overridden by `digitlab serve` flags."""

from __future__ import annotations

import pytest

import digitlab.service
from digitlab.cli import main
from digitlab.cli.serving import FLAGS
from digitlab.errors import ConfigError
from digitlab.service import ServiceSettings


@pytest.fixture
def served(monkeypatch):
    """`digitlab serve` runs with serve() replaced: the settings it would have served with."""
    calls: list[ServiceSettings] = []
    monkeypatch.setattr(digitlab.service, "serve", calls.append)
    return calls


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("DIGITLAB_MODEL", "/models/best.pt")
    monkeypatch.setenv("DIGITLAB_HOST", "0.0.0.0")
    monkeypatch.setenv("DIGITLAB_PORT", "9001")
    monkeypatch.setenv("DIGITLAB_WORKERS", "2")
    monkeypatch.setenv("DIGITLAB_MAX_UPLOAD_BYTES", "1000")
    monkeypatch.setenv("DIGITLAB_REQUEST_TIMEOUT", "2.5")
    settings = ServiceSettings()
    assert (settings.model, settings.host, settings.port, settings.workers) == ("/models/best.pt", "0.0.0.0",
                                                                                 9001, 2)
    assert settings.max_upload_bytes == 1000 and settings.request_timeout == 2.5
    assert ServiceSettings(port=9002).port == 9002  # given in code: wins over the environment


def test_flags_override_the_environment(monkeypatch, served):
    monkeypatch.setenv("DIGITLAB_PORT", "9001")
    monkeypatch.setenv("DIGITLAB_MIN_CONFIDENCE", "0.7")
    monkeypatch.setenv("DIGITLAB_WORKERS", "4")
    assert main(["serve", "--port", "9002", "--workers", "3", "--max-image-requests", "5",
                 "--request-timeout", "1.5"]) == 0
    (settings,) = served
    assert settings.port == 9002 and settings.workers == 3  # flags
    assert settings.min_confidence == 0.7  # the environment, where no flag says otherwise
    assert settings.max_image_requests == 5 and settings.request_timeout == 1.5
    assert settings.max_upload_bytes == ServiceSettings.model_fields["max_upload_bytes"].default


def test_every_setting_has_a_flag():
    flags = {flag[2:].replace("-", "_") for flag, *_ in FLAGS}
    assert flags == set(ServiceSettings.model_fields)


def test_a_bad_value_in_the_environment_is_one_line(monkeypatch, served, capsys):
    monkeypatch.setenv("DIGITLAB_PORT", "eighty")
    assert main(["serve"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("digitlab: error: bad service setting: port (DIGITLAB_PORT)")
    assert error.count("\n") == 1 and served == []


@pytest.mark.parametrize("bad", [{"min_confidence": 1.5}, {"max_upload_bytes": 0}, {"max_pixels": -1},
                                 {"workers": 0}, {"port": 70000}, {"request_timeout": 0},
                                 {"no_such_setting": 1}])
def test_impossible_settings_are_refused(bad):
    with pytest.raises(ConfigError) as caught:
        ServiceSettings(**bad)
    assert "\n" not in str(caught.value) and next(iter(bad)) in str(caught.value)
