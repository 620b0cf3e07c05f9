"""`digitlab serve`: the drawing page and the JSON API."""

from __future__ import annotations

import argparse

from digitlab.cli.args import Command, positive_int, probability
from digitlab.errors import ConfigError


def register(command: Command) -> None:
    p = command("serve", cmd_serve, "serve the drawing page and the JSON API (/api/v1, /docs)", """
digitlab serve                                         # then open http://127.0.0.1:8000/
digitlab serve --host 0.0.0.0 --workers 2 --model runs/robust/best.pt
""")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=positive_int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=positive_int, default=1, metavar="N",
                   help="server processes, each with its own model copy (default 1; use the "
                        "number of cores for the most requests/s)")
    p.add_argument("--model", metavar="CHECKPOINT",
                   help="a .pt from `digitlab train` (default: the model shipped with digitlab)")
    p.add_argument("--min-confidence", type=probability, default=0.5, metavar="P",
                   help="below this the answer is 'no digit' (default 0.5)")


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from digitlab.service import ServiceSettings, serve
    except ImportError as e:
        raise ConfigError(f"`digitlab serve` needs the web server packages ({e.name} is missing): "
                          "pip install 'digitlab[serve]'") from None

    settings = ServiceSettings(model=args.model, min_confidence=args.min_confidence)
    serve(settings, host=args.host, port=args.port, workers=args.workers)
    return 0
