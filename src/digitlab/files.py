"""Writing outputs: atomically (a reader never sees a half-written file), and with faults in
one line (`OutputError`: the path and the cause) instead of a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from digitlab.errors import OutputError

# What to do about each cause of a failed write.
_WRITABLE, _SPACE = "choose a folder you can write to", "free some space or write elsewhere"
_ADVICE = {
    errno.EACCES: _WRITABLE, errno.EPERM: _WRITABLE, errno.EROFS: _WRITABLE,
    errno.ENOSPC: _SPACE, errno.EDQUOT: _SPACE, errno.EFBIG: "write elsewhere",
    errno.ENOTDIR: "choose another path", errno.EEXIST: "choose another path",
    errno.EISDIR: "give a file name", errno.ENAMETOOLONG: "choose a shorter path",
}
# torch.save reports a short write (a full disk) as a RuntimeError from its zip writer
_SHORT_WRITE = ("unexpected pos", "PytorchStreamWriter failed", "file write failed")


def describe_os_error(error: OSError, path: str | os.PathLike[str] | None = None) -> str:
    """One line for an OSError: the path (given, else the error's own) and what went wrong."""
    where = path if path is not None else error.filename
    return f"{where}: {_cause(error, where)}" if where is not None else _cause(error, None)


def output_error(error: OSError, path: str | os.PathLike[str]) -> OutputError:
    """An OSError met while writing `path`, as the one-line error the CLI prints: the path,
    the cause and what to do."""
    advice = _ADVICE.get(error.errno or 0)
    return OutputError(f"cannot write {path}: {_cause(error, path)}" + (f"; {advice}" if advice else ""))


def _cause(error: OSError, where: str | os.PathLike[str] | None) -> str:
    if error.errno in (errno.EEXIST, errno.ENOTDIR) and where is not None:
        blocker = _file_in_the_way(Path(where))
        if blocker is not None:
            return f"{'it' if blocker == Path(where) else blocker} is a file, not a folder"
    if error.errno == errno.EISDIR:
        return "it is a folder"
    reason = error.strerror or str(error) or type(error).__name__
    return reason[:1].lower() + reason[1:]


def _file_in_the_way(path: Path) -> Path | None:
    """The first part of `path` that exists as something other than a folder."""
    for part in (*reversed(path.parents), path):
        with contextlib.suppress(OSError):
            if part.exists() and not part.is_dir():
                return part
    return None


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def make_dir(path: str | os.PathLike[str]) -> list[Path]:
    """Create `path` and its missing parents; return those created (outermost first).

    Raises OutputError when it cannot: a file in the way, no permission, a full disk.
    """
    try:
        return _make_dirs(Path(path))
    except OSError as e:
        raise output_error(e, path) from None


def _make_dirs(folder: Path) -> list[Path]:
    missing = [p for p in (folder, *folder.parents) if not p.exists()][::-1]
    folder.mkdir(parents=True, exist_ok=True)
    return missing


@contextlib.contextmanager
def output_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Make the folder `path` for the block's outputs; if the block fails, the folders made
    for it are removed again (when nothing else is in them)."""
    created = make_dir(path)
    try:
        yield Path(path)
    except BaseException:
        remove_empty_dirs(created)
        raise


def remove_empty_dirs(folders: list[Path]) -> None:
    """Remove `folders` (as `make_dir` returned them) that are still empty, innermost first."""
    for folder in reversed(folders):
        with contextlib.suppress(OSError):
            folder.rmdir()


def _is_output_fault(error: BaseException, tmp: Path) -> bool:
    """Whether an error raised while the caller wrote `tmp` is the output's fault (not, say, a
    damaged input file that was being read at the time)."""
    if isinstance(error, RuntimeError):
        return any(marker in str(error) for marker in _SHORT_WRITE)
    if not isinstance(error, OSError) or error.errno not in _ADVICE:
        return False
    return error.filename is None or Path(error.filename).parent == tmp.parent


def _cause_of(error: BaseException, folder: Path) -> OSError:
    """The OSError behind a write that failed (torch.save's RuntimeError says only "unexpected pos")."""
    if isinstance(error, OSError):
        return error
    with contextlib.suppress(OSError):
        if shutil.disk_usage(folder).free == 0:
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return OSError(errno.EIO, f"the file could not be written whole ({' '.join(str(error).split())})")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds.

    On any failure the temporary file (and any folder made for it) is removed; a failure to
    write — no permission, a file where a folder should be, a full disk — is an OutputError
    naming `path` and the cause.
    """
    target = Path(path)
    try:
        created = _make_dirs(target.parent)
    except OSError as e:
        raise output_error(e, target) from None
    tmp: Path | None = None
    try:
        try:
            fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        except OSError as e:
            raise output_error(e, target) from None
        os.close(fd)
        tmp = Path(name)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a finished file gets the usual mode
        try:
            yield tmp
        except (OSError, RuntimeError) as e:
            if _is_output_fault(e, tmp):
                raise output_error(_cause_of(e, target.parent), target) from None
            raise
        try:
            os.replace(tmp, target)
        except OSError as e:
            raise output_error(e, target) from None
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        remove_empty_dirs(created)
        raise


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write `data` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
