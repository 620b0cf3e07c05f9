"""A study's folder: which study owns it, and the run folders inside it.

Names that become paths (a study's, a run's) are checked to be one plain path component, and
every run folder is resolved and checked to lie directly inside its study folder before anything
is written or deleted there: a run's name comes from the trial in the storage, which anyone who
can write to a shared database could set to `../../somewhere`.

A study folder records the study that owns it (OWNER_FILE: its name and a key over its spec and
the settings that shape its runs). A different study pointed at the same folder is refused in one
line, unless told to take it over (`--restart`): two studies in one folder would otherwise each
find the other's runs "changed" and delete them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from digitlab.errors import ConfigError
from digitlab.files import write_json

logger = logging.getLogger(__name__)

OWNER_FILE = "study-owner.json"
# One path component of ordinary characters, starting with a letter or digit (so never "." or
# ".."), short enough for any file system.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=+,-]*")
MAX_NAME = 120  # characters


def check_name(name: str, what: str) -> str:
    """`name` if it can be a folder's name; else a one-line ConfigError naming `what` it is."""
    if not isinstance(name, str) or len(name) > MAX_NAME or not NAME_PATTERN.fullmatch(name):
        raise ConfigError(f"{what} {name!r} cannot name a folder: use up to {MAX_NAME} letters, digits "
                          "and . _ = + , - (starting with a letter or digit; no / or ..)")
    return name


def run_folder(out: Path, name: str) -> Path:
    """The folder of run `name` in study folder `out`: checked to be inside it, links resolved."""
    folder = out / check_name(name, "run name")
    if folder.resolve().parent != out.resolve():
        raise ConfigError(f"run folder {folder} leads outside the study folder {out}; refused")
    return folder


def remove_run(out: Path, folder: Path) -> None:
    """Delete run folder `folder`, only if it is a run folder of study folder `out`."""
    if folder.is_symlink() or run_folder(out, folder.name).resolve() != folder.resolve():
        raise ConfigError(f"{folder} is not a run folder of {out}; not deleted")
    shutil.rmtree(folder)


def owner_key(values: dict[str, Any]) -> str:
    """A key over a study's spec and run-shaping settings (JSON-able), equal iff they are."""
    text = json.dumps(values, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def claim(out: Path, study: str, values: dict[str, Any], restart: bool = False) -> None:
    """Record that study `study` (spec and settings `values`) owns folder `out`; refuse, in one
    line, a folder another study owns, unless `restart` (then take it over)."""
    key = owner_key(values)
    mine = {"study": study, "key": key, "spec": values}
    path = out / OWNER_FILE
    try:
        out.mkdir(parents=True, exist_ok=True)
        if _create_whole(path, json.dumps(mine, indent=2, sort_keys=True, default=str) + "\n"):
            return
    except OSError as e:
        raise ConfigError(f"cannot use study folder {out}: {e.strerror or e}") from None
    found = _read_owner(path)
    if found.get("key") == key:
        return
    if not restart:
        raise ConfigError(f"study folder {out} belongs to study {found.get('study', '?')!r} with other "
                          f"settings ({path}); give this study its own --out DIR, or --restart to take "
                          "the folder over (its runs whose settings differ are trained again)")
    logger.warning("study folder %s: taken over from study %r (--restart)", out, found.get("study"))
    write_json(path, mine)


def _create_whole(path: Path, text: str) -> bool:
    """Write `text` to `path` if no file is there, never half-written: False if one was.
    (A hard link fails if the name exists: of two studies started at once, one claims.)"""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def _read_owner(path: Path) -> dict[str, Any]:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read {path} (which study owns this folder): {e}; remove it to "
                          "claim the folder") from None
    return found if isinstance(found, dict) else {}
