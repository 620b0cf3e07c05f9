"""Fetch sources beyond MNIST's: the Debian package, torchvision's dataset classes, offline errors.

No test touches the network or apt: each boundary (`_download`, `_apt_download`,
`_torchvision_split`) is replaced, or the real one runs against fake programs.
"""

import dataclasses
import gzip
import hashlib
import os
import shutil
import stat
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from digitlab import data
from digitlab.data import fetch
from digitlab.errors import DataError
from tests.conftest import make_fake_images, write_fake_mnist

DEBIAN_PATH = data.FASHION_MNIST.debian_path


def fake_fashion(tmp_path):
    """A Fashion-MNIST spec whose checksums are those of fake files; (spec, their folder)."""
    server = tmp_path / "server"
    spec = write_fake_mnist(server)
    return dataclasses.replace(data.FASHION_MNIST, files=spec.files), data.raw_dir(server)


def write_package_tree(root, raw, corrupt=False):
    """What the Debian package installs: usr/share/datasets/fashion-mnist/<name>.gz."""
    folder = root / DEBIAN_PATH
    folder.mkdir(parents=True, exist_ok=True)
    for name in data.FASHION_MNIST.files:
        payload = (raw / name).read_bytes()
        if corrupt and name == data.TRAIN_LABELS:
            payload = payload[:-1] + b"\x07"
        (folder / f"{name}.gz").write_bytes(gzip.compress(payload))
    return folder


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network, no installed package; records the apt calls. Yields the calls list."""
    calls = []

    def no_network(url, dest, timeout=20.0):
        calls.append(url)
        raise OSError("Name or service not known")

    monkeypatch.setattr(fetch, "_download", no_network)
    monkeypatch.setattr(fetch, "DEBIAN_ROOT", tmp_path / "nothing-installed")
    monkeypatch.setattr(data.DatasetSpec, "mirrors", lambda self: ("http://m1/",))
    return calls


def test_fashion_mnist_is_registered_in_torchvision_layout():
    spec = data.get_dataset("fashion-mnist")
    assert spec.classes[7] == "Sneaker" and spec.classes[9] == "Ankle boot"
    assert len(spec.classes) == 10 and spec.folder == "FashionMNIST"
    assert not spec.digits and spec.pipeline == "product"
    assert all(len(sha) == 64 for sha in spec.files.values())
    assert (spec.mean, spec.std) == (0.2860, 0.3530)


def test_torchvision_reads_our_fashion_folder(tmp_path):
    from torchvision.datasets import FashionMNIST

    spec, raw = fake_fashion(tmp_path)
    root = tmp_path / "root"
    shutil.copytree(raw, data.raw_dir(root, spec))
    theirs = FashionMNIST(str(root), train=False, download=False)
    torch.testing.assert_close(theirs.data, data.load_split(root, False, spec)[0])


def test_debian_installed_files_are_used_without_apt(offline, tmp_path, monkeypatch):
    spec, raw = fake_fashion(tmp_path)
    write_package_tree(tmp_path / "system", raw)
    monkeypatch.setattr(fetch, "DEBIAN_ROOT", tmp_path / "system")
    monkeypatch.setattr(fetch, "_apt_download", lambda *a: pytest.fail("apt-get was run"))
    fetch.fetch(tmp_path / "root", spec)
    assert all(p is None for p in data.verify(tmp_path / "root", spec).values())
    assert offline == []  # no mirror tried


def test_debian_package_is_downloaded_and_unpacked(offline, tmp_path, monkeypatch):
    spec, raw = fake_fashion(tmp_path)
    packages = []

    def fake_apt(package, dest_dir):
        packages.append(package)
        write_package_tree(dest_dir / "unpacked", raw)
        return dest_dir / "unpacked"

    monkeypatch.setattr(fetch, "_apt_download", fake_apt)
    folder = fetch.fetch(tmp_path / "root", spec)
    assert packages == ["dataset-fashion-mnist"] and offline == []
    assert sorted(p.name for p in folder.iterdir()) == sorted(spec.files)  # no temp left


def test_corrupt_debian_file_is_refused_and_named(offline, tmp_path, monkeypatch):
    spec, raw = fake_fashion(tmp_path)
    monkeypatch.setattr(fetch, "_apt_download",
                        lambda package, dest: write_package_tree(dest / "u", raw, corrupt=True).parents[3])
    root = tmp_path / "root"
    with pytest.raises(DataError) as info:
        fetch.fetch(root, spec)
    message = str(info.value)
    assert "\n" not in message
    assert f"Debian package ({data.TRAIN_LABELS} from Debian package dataset-fashion-mnist has " \
           "the wrong sha256" in message
    assert "torchvision mirrors (http://m1/" in message
    assert data.verify(root, spec)[data.TRAIN_LABELS] == "missing"  # never renamed into place
    assert not [p for p in data.raw_dir(root, spec).iterdir() if p.name not in spec.files]


def write_fake_program(folder: Path, name: str, script: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_apt_get_missing_says_so(offline, tmp_path, monkeypatch):
    spec, _ = fake_fashion(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(DataError, match=r"Debian package \(apt-get is not installed"):
        fetch.fetch(tmp_path / "root", spec)


def test_apt_get_failure_is_reported_in_one_line(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    write_fake_program(bin_dir, "apt-get", "echo 'E: Unable to locate package nope' >&2; exit 100\n")
    write_fake_program(bin_dir, "dpkg-deb", "exit 0\n")
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(fetch.FetchFailed, match="`apt-get download nope` failed: E: Unable to locate"):
        fetch._apt_download("nope", tmp_path)


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb to build a .deb")
def test_real_apt_boundary_unpacks_a_deb(tmp_path, monkeypatch):
    """The real `_apt_download` with a stand-in apt-get that hands over a .deb built here."""
    spec, raw = fake_fashion(tmp_path)
    tree = tmp_path / "tree"
    write_package_tree(tree, raw)
    write_fake_program(tree / "DEBIAN", "control", "")  # replaced below: control is not a script
    (tree / "DEBIAN" / "control").write_text(
        "Package: dataset-fashion-mnist\nVersion: 1\nArchitecture: all\n"
        "Maintainer: t <t@example.org>\nDescription: test\n")
    (tree / "DEBIAN" / "control").chmod(0o644)
    deb = tmp_path / "dataset-fashion-mnist_1_all.deb"
    assert os.system(f"dpkg-deb --build --root-owner-group {tree} {deb} >/dev/null 2>&1") == 0
    bin_dir = tmp_path / "bin"
    write_fake_program(bin_dir, "apt-get", f"cp {deb} .\n")
    os.symlink(shutil.which("dpkg-deb"), bin_dir / "dpkg-deb")
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setattr(fetch, "DEBIAN_ROOT", tmp_path / "nothing-installed")
    fetch.fetch(tmp_path / "root", spec)
    assert all(p is None for p in data.verify(tmp_path / "root", spec).values())


# ---------------------------------------------------------------- data sets fetched by torchvision


@pytest.mark.parametrize("name", ["kmnist", "emnist-digits", "qmnist"])
def test_offline_error_says_what_was_tried_and_where_files_go(name, tmp_path, monkeypatch):
    def unreachable(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    # Everything below urllib is real, torchvision's own download code included.
    monkeypatch.setattr("urllib.request.urlopen", unreachable)
    monkeypatch.setattr(data.DatasetSpec, "mirrors", lambda self: ("http://m1/",))
    spec = data.get_dataset(name)
    with pytest.raises(DataError) as info:
        fetch.fetch(tmp_path, spec)
    message = str(info.value)
    assert "\n" not in message and f"could not get {name} files" in message
    if spec.torchvision_dataset:
        assert f"torchvision dataset (torchvision.datasets.{spec.torchvision_dataset} could not" in message
        assert str(tmp_path / spec.torchvision_dataset / "raw") in message
    else:
        assert "torchvision mirrors (http://m1/" in message
    assert str(data.raw_dir(tmp_path, spec)) in message and f"--dataset {name}" in message
    for not_a_source in ("Debian package", "npm registry"):  # sources that cannot serve it
        assert not_a_source not in message


def test_emnist_is_converted_to_idx_the_right_way_up(tmp_path, monkeypatch):
    images, labels = make_fake_images(40)
    stored = torch.from_numpy(images).transpose(1, 2)  # EMNIST's files hold images transposed
    splits = []

    def fake_split(spec, root, train):
        splits.append((spec.torchvision_dataset, spec.torchvision_args, train))
        return stored, torch.from_numpy(labels).long()

    monkeypatch.setattr(fetch, "_torchvision_split", fake_split)
    spec = data.get_dataset("emnist-digits")
    fetch.fetch(tmp_path, spec)
    assert splits == [("EMNIST", {"split": "digits"}, True), ("EMNIST", {"split": "digits"}, False)]
    x, y = data.load_split(tmp_path, True, spec)
    np.testing.assert_array_equal(x.numpy(), images)
    np.testing.assert_array_equal(y.numpy(), labels)
    assert all(p is None for p in data.verify(tmp_path, spec).values())


def test_qmnist_keeps_the_class_column(tmp_path, monkeypatch):
    images, labels = make_fake_images(30)
    extra = torch.stack([torch.from_numpy(labels).long(), torch.full((30,), 7), torch.arange(30)], 1)
    monkeypatch.setattr(fetch, "_torchvision_split",
                        lambda spec, root, train: (torch.from_numpy(images), extra))
    spec = data.get_dataset("qmnist")
    fetch.fetch(tmp_path, spec)
    np.testing.assert_array_equal(data.load_split(tmp_path, False, spec)[1].numpy(), labels)


def test_unpinned_files_are_checked_by_structure(tmp_path):
    spec = data.get_dataset("kmnist")
    write_fake_mnist(tmp_path)
    shutil.copytree(data.raw_dir(tmp_path), data.raw_dir(tmp_path, spec))
    assert all(p is None for p in data.verify(tmp_path, spec).values())
    path = data.raw_dir(tmp_path, spec) / data.TEST_IMAGES
    path.write_bytes(path.read_bytes()[:-5])
    assert data.verify(tmp_path, spec)[data.TEST_IMAGES].startswith("corrupt or truncated")
    (data.raw_dir(tmp_path, spec) / data.TEST_LABELS).write_bytes(path.read_bytes())
    assert "bad header" in data.verify(tmp_path, spec)[data.TEST_LABELS]


def test_unpinned_mirror_download_is_checked_against_torchvisions_md5(tmp_path, monkeypatch):
    server = tmp_path / "server"
    write_fake_mnist(server)
    gz = {n: gzip.compress((data.raw_dir(server) / n).read_bytes(), mtime=0) for n in data.MNIST.files}
    md5s = {f"{n}.gz": hashlib.md5(payload).hexdigest() for n, payload in gz.items()}
    md5s[f"{data.TEST_LABELS}.gz"] = "0" * 32  # this one "does not match" torchvision's list
    monkeypatch.setattr(fetch, "_download",
                        lambda url, dest, timeout=20.0: Path(dest).write_bytes(gz[url[10:-3]]))
    monkeypatch.setattr(data.DatasetSpec, "mirrors", lambda self: ("http://m1/",))
    monkeypatch.setattr(data.DatasetSpec, "gz_md5s", lambda self: md5s)
    spec = data.get_dataset("kmnist")
    with pytest.raises(DataError, match=f"{data.TEST_LABELS}.gz from http://m1/ has the wrong md5"):
        fetch.fetch(tmp_path / "root", spec)
    problems = data.verify(tmp_path / "root", spec)
    assert problems[data.TRAIN_IMAGES] is None and problems[data.TEST_LABELS] == "missing"


def test_normalisation_is_computed_where_none_is_pinned():
    images = torch.tensor([[[0, 255]]], dtype=torch.uint8)
    mean, std = data.normalisation(data.get_dataset("kmnist"), images)
    assert mean == pytest.approx(0.5) and std == pytest.approx(0.7071, abs=1e-4)
    assert data.normalisation(data.MNIST, images) == (0.1307, 0.3081)
