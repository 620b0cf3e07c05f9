"""The container image's entry point, run the way the image runs it.

Base images cannot be pulled on these machines, so no image is built. Instead: the wheel is
built from this tree, installed into a fresh virtual environment, and the Dockerfile's CMD is
run with the Dockerfile's ENV as a non-root user (`runuser -u nobody` when the tests run as
root; the image's own user, `digitlab`, does not exist here). The wheel is installed without
its dependencies: they come from the project's environment through a .pth file, instead of a
5 GB torch install. The Dockerfile's HEALTHCHECK command is run as written, too.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.service.helpers import RAW, SEVEN, free_port, get, wait_ready

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not hasattr(os, "geteuid"), reason="runs the entry point as a POSIX user")]


@dataclass
class Image:
    """What the Dockerfile's final stage says about running it."""

    env: dict[str, str]
    cmd: list[str]
    healthcheck: list[str]
    user: str


def read_dockerfile(path: Path) -> Image:
    """ENV, CMD, HEALTHCHECK's CMD and USER of the last stage (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    stage = text.split("\nFROM ")[-1]
    env: dict[str, str] = {}
    cmd: list[str] = []
    healthcheck: list[str] = []
    user = "root"
    for line in stage.splitlines():
        keyword, _, rest = line.strip().partition(" ")
        if keyword == "ENV":
            env.update(item.split("=", 1) for item in shlex.split(rest))
        elif keyword == "CMD":
            cmd = json.loads(rest)
        elif keyword == "HEALTHCHECK":
            healthcheck = json.loads(rest.split(" CMD ", 1)[1])
        elif keyword == "USER":
            user = rest.strip()
    return Image(env, cmd, healthcheck, user)


def readable_by(user: str, path: Path) -> bool:
    return subprocess.run(["runuser", "-u", user, "--", "test", "-r", str(path)]).returncode == 0


def python_for(user: str | None, place: Path) -> tuple[Path, dict[str, str]]:
    """An interpreter `user` may run, and the environment it needs.

    This one, unless its installation lies where `user` cannot read (pyenv under /root): then
    a copy made of hard links (same files, same permissions, no space) in a readable folder.
    """
    executable = Path(sys._base_executable if hasattr(sys, "_base_executable") else sys.executable)
    if user is None or readable_by(user, executable.resolve()):
        return executable, {}
    base = Path(sys.base_prefix)
    copy = place / "python"
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    ignore = shutil.ignore_patterns("site-packages", "test", "__pycache__")
    for part in ("bin", "lib"):
        shutil.copytree(base / part, copy / part, ignore=ignore, symlinks=True,
                        copy_function=link_or_copy, dirs_exist_ok=True)
    assert (copy / "lib" / version).is_dir()
    # The interpreter finds libpython through an absolute RUNPATH under base; this comes first.
    return copy / "bin" / executable.resolve().name, {"LD_LIBRARY_PATH": str(copy / "lib")}


def link_or_copy(source: str, destination: str) -> None:
    try:
        os.link(source, destination)
    except OSError:  # another file system
        shutil.copy2(source, destination)


@dataclass
class Installed:
    venv: Path
    wheel: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def installed() -> Iterator[Installed]:
    """The wheel built from this tree, pip-installed into a fresh venv others may read."""
    user = "nobody" if os.geteuid() == 0 else None
    # Nothing of this checkout may leak in: the wheel alone provides digitlab.
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    place = Path(tempfile.mkdtemp(prefix="digitlab-container-"))
    try:
        place.chmod(0o755)
        # Offline with this environment's setuptools; else pip fetches one (the build's requires)
        isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", *isolation,
                        "--wheel-dir", str(place / "dist"), str(ROOT)], check=True, capture_output=True)
        (wheel,) = (place / "dist").glob("digitlab-*.whl")
        python, extra_env = python_for(user, place)
        venv = place / "venv"
        subprocess.run([str(python), "-m", "venv", "--without-pip", str(venv)], check=True,
                       env={**clean, **extra_env})
        site = next((venv / "lib").glob("python*/site-packages"))
        subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                        "install", "--quiet", "--no-deps", "--no-index", str(wheel)], check=True,
                       capture_output=True, env={**clean, **extra_env})
        # The dependencies, from this environment rather than a fresh 5 GB install.
        (site / "project-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        yield Installed(venv, wheel, extra_env)
    finally:
        shutil.rmtree(place, ignore_errors=True)


def test_the_wheel_holds_the_model_and_declares_the_service_dependencies(installed):
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = wheel.namelist()
        metadata = next(wheel.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    assert "digitlab/weights/default.pt" in names and "digitlab/service/static/index.html" in names
    serve = [line for line in metadata.splitlines() if line.startswith("Requires-Dist") and "serve" in line]
    for package in ("fastapi", "uvicorn", "pydantic-settings", "prometheus-client", "swagger-ui-bundle-v2"):
        assert any(package in line for line in serve), package
    imported = subprocess.run([str(installed.venv / "bin" / "python"), "-c",
                               "import digitlab; print(digitlab.__file__)"],
                              capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", **installed.env})
    assert imported.stdout.startswith(str(installed.venv)), imported  # the wheel, not this checkout


def test_the_images_command_serves_as_a_non_root_user(installed):
    image = read_dockerfile(ROOT / "Dockerfile")
    assert image.cmd == ["digitlab", "serve"] and image.user != "root"
    assert image.env["DIGITLAB_HOST"] == "0.0.0.0" and image.env["DIGITLAB_PORT"] == "8000"
    port = str(free_port())  # the image's 8000 may be taken on this machine
    env = {"PATH": f"{installed.venv / 'bin'}:/usr/bin:/bin", **installed.env, **image.env,
           "DIGITLAB_PORT": port}
    as_user = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
    with tempfile.TemporaryDirectory() as cwd:
        os.chmod(cwd, 0o777)
        server = subprocess.Popen([*as_user, "env", "-i", *(f"{k}={v}" for k, v in env.items()),
                                   *image.cmd], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(base, server, None, 180)
            check_the_service(base)
            health = subprocess.run([*as_user, "env", "-i", *(f"{k}={v}" for k, v in env.items()),
                                     *image.healthcheck], capture_output=True, timeout=30)
            assert health.returncode == 0, health.stderr
            assert served_as_non_root(server.pid)
        finally:
            server.terminate()
            output = server.communicate(timeout=60)[0].decode()
    assert "Traceback" not in output, output




def check_the_service(base: str) -> None:
    assert get(base + "/healthz")[0] == 200
    model = json.loads(get(base + "/api/v1/model")[2])
    assert (model["name"], model["recipe"]) == ("bncnn", "robust")  # the model shipped in the wheel
    request = urllib.request.Request(base + "/api/v1/predict", data=SEVEN, headers=RAW)
    with urllib.request.urlopen(request, timeout=60) as response:
        assert json.loads(response.read())["digit"] == 7
    metrics = get(base + "/metrics")[2].decode()
    assert 'digitlab_http_requests_total{method="POST",route="/api/v1/predict",status="200"} 1.0' in metrics
    assert 'name="bncnn"' in metrics


def served_as_non_root(pid: int) -> bool:
    """Every process under `pid` (runuser, then the server) that is not runuser runs as non-root."""
    uids = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split() or [str(pid)]:
        status = Path(f"/proc/{child}/status").read_text()
        uids.append(int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1)))  # type: ignore[union-attr]
    return bool(uids) and all(uid != 0 for uid in uids)
