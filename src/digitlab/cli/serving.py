"""`digitlab serve`: the drawing page and the JSON API.

Every setting comes from the environment (DIGITLAB_MODEL, DIGITLAB_PORT, ...; see
digitlab.service.settings) unless a flag gives it. Building the parser imports nothing of
the service (no pydantic, no torch), so flags default to None: "not given".
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from digitlab.cli.args import Command, non_negative_int, positive_int, probability
from digitlab.errors import ConfigError


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 (got {value})")
    return value


# (flag, type, metavar, help): one per setting of digitlab.service.settings.ServiceSettings,
# the flag named after it (tests/service/test_settings.py checks that none is missing).
FLAGS: tuple[tuple[str, Callable[[str], Any], str | None, str], ...] = (
    ("--model", str, "CHECKPOINT", "a .pt from `digitlab train` or `pack` (default: the model "
                                   "shipped with digitlab, also `default`)"),
    ("--line-model", str, "CHECKPOINT", "the line reader numbers are read with (default: the shipped "
     "one; `digitlab train --recipe numbers` makes one)"),
    ("--host", str, None, "address to listen on (default 127.0.0.1)"),
    ("--port", positive_int, None, "port (default 8000)"),
    ("--workers", positive_int, "N", "server processes, each with its own model copy (default 1; use "
                                     "the number of cores for the most requests/s)"),
    ("--min-confidence", probability, "P", "below this the answer is 'no digit' (default 0.5)"),
    ("--max-upload-bytes", positive_int, "N", "larger uploads get 413 (default 5 MiB)"),
    ("--max-pixels", positive_int, "N", "images with more pixels get 413 (default 40,000,000)"),
    ("--max-decoded-bytes", positive_int, "N", "images that take more memory once decoded get 413 "
                                               "(default 64 MiB)"),
    ("--image-threads", positive_int, "N", "threads per worker that read images (default 1)"),
    ("--inline-pixels", non_negative_int, "N", "images of at most N pixels are read on the event "
                                               "loop, not in those threads (default 250000; 0: none)"),
    ("--max-image-requests", positive_int, "N", "image requests per worker at once; more get 503 "
                                                "with Retry-After (default 16)"),
    ("--request-timeout", positive_float, "S", "seconds an image request may take (default 10)"),
    ("--header-timeout", positive_float, "S", "seconds to send a request's headers (default 10)"),
    ("--keep-alive-timeout", positive_int, "S", "seconds an idle connection stays open (default 5)"),
    ("--max-connections", positive_int, "N", "open connections per worker; past it the oldest idle "
                                             "or half-sent one is closed (default 1000)"),
    ("--max-header-bytes", positive_int, "N", "larger request heads get 431 (default 32 KiB)"),
    ("--max-discard-bytes", int, "N", "how much of a refused upload is read so the client sees "
                                      "the error (default 64 MiB)"),
    ("--backlog", positive_int, "N", "connections the kernel queues (default 2048)"),
)


def register(command: Command) -> None:
    p = command("serve", cmd_serve, "serve the drawing page and the JSON API (/api/v1, /docs, /metrics)", """
digitlab serve                                         # then open http://127.0.0.1:8000/
digitlab serve --host 0.0.0.0 --workers 2 --model runs/robust/best.pt
DIGITLAB_WORKERS=2 DIGITLAB_MODEL=runs/robust/best.pt digitlab serve   # the same, from the environment
""")
    for flag, kind, metavar, text in FLAGS:
        env = "DIGITLAB_" + flag[2:].replace("-", "_").upper()
        p.add_argument(flag, type=kind, metavar=metavar, default=None, help=f"{text}; or ${env}")


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from digitlab.service import ServiceSettings, serve
    except ImportError as e:
        raise ConfigError(f"`digitlab serve` needs the web server packages ({e.name} is missing): "
                          "pip install 'digitlab[serve]'") from None

    given = {flag[2:].replace("-", "_"): getattr(args, flag[2:].replace("-", "_")) for flag, *_ in FLAGS}
    serve(ServiceSettings(**{name: value for name, value in given.items() if value is not None}))
    return 0
