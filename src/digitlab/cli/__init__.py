"""The `digitlab` command: one parser, one small module per group of subcommands, thin handlers.

Building the parser imports no torch, so `digitlab --help` answers at once; each handler
imports what its command needs.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import sys
from collections.abc import Sequence

from digitlab import __version__
from digitlab.cli import benchmarks, data, evaluation, models, reading, serving, studies, training
from digitlab.cli.args import Command, add_global_args
from digitlab.errors import DigitlabError

logger = logging.getLogger("digitlab")

DESCRIPTION = "Train, evaluate, serve and explain handwritten-digit recognisers on PyTorch."
GROUPS = (data, training, evaluation, models, reading, studies, serving, benchmarks)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="digitlab", description=DESCRIPTION,
        epilog="`digitlab COMMAND --help` shows a command's flags and examples.",
    )
    parser.add_argument("--version", action="version", version=f"digitlab {__version__}")
    add_global_args(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    command = Command(sub)
    for group in GROUPS:
        group.register(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))  # under torchrun, rank 0 speaks for the job
    logging.basicConfig(
        level=logging.WARNING if args.quiet or rank else logging.INFO,
        format="%(message)s" if not rank else f"[rank {rank}] %(message)s",
        stream=sys.stderr, force=True,
    )
    # -v: digitlab's own debug lines, not every library's
    logger.setLevel(logging.DEBUG if args.verbose and not args.quiet else logging.NOTSET)
    code = run_handler(args)
    if argv is None:  # the process's own command line (console script, python -m): it ends now
        # Its objects (some 240,000 once torch is in) need not all be searched for cycles on
        # the way out: the collector's last pass takes ~0.3 s idle, seconds on a busy machine.
        # Exit still runs atexit handlers and finalisers; every file is written and closed.
        gc.freeze()
    return code


def run_handler(args: argparse.Namespace) -> int:
    """The command's exit status; a DigitlabError or file fault as one line on stderr."""
    try:
        return int(args.handler(args))
    except DigitlabError as e:
        print(f"digitlab: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("digitlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `digitlab classify ... | head`: the reader has all it wants
        with contextlib.suppress(OSError, ValueError):  # so that flushing at exit cannot raise again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as e:  # a file fault no command turned into a DigitlabError: still one line
        from digitlab.files import describe_os_error

        print(f"digitlab: error: {describe_os_error(e)}", file=sys.stderr)
        return 1
