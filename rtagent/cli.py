"""The ``rtagent`` command line.

Each subcommand is two functions: ``_add_<name>(subparsers)`` declares its arguments and
``_cmd_<name>(args) -> int`` runs it. Register a new one by adding its ``_add_`` function
to ``_SUBCOMMANDS``.

Errors print one line, ``rtagent: error: ...``, on stderr; the exit status is 2 for usage
errors and 1 for failures. ``--debug`` shows the traceback and debug logs instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .agent import Agent
from .errors import ConfigurationError
from .loading import load_agent
from .plugins import load_plugins

__all__ = ["main"]

_PROG = "rtagent"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``) and return the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    debug: bool = getattr(args, "debug", False)
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if debug:
            traceback.print_exc()
        else:
            print(f"{_PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 1


def _build_parser() -> argparse.ArgumentParser:
    # --debug is accepted before and after the subcommand; SUPPRESS keeps the subparser's
    # default from hiding a --debug given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks and debug logs",
    )
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Function-calling agents on the OpenAI Realtime API.",
        parents=[common],
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(subparsers, common)
    return parser


# -- rtagent tools ---------------------------------------------------------------------------


def _add_tools(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "tools",
        parents=[common],
        help="print the tool schemas an agent or plugin folder would send",
        description=(
            "Print, as JSON, the tool definitions sent in session.update. TARGET is a plugin "
            "folder, an agent file (file.py or file.py:ClassName) or module:ClassName."
        ),
    )
    p.add_argument(
        "target", metavar="TARGET", help="plugin folder, file.py[:Class] or module:Class"
    )
    p.add_argument(
        "--indent", type=int, default=2, help="JSON indentation (default 2; 0 for one line)"
    )
    p.set_defaults(handler=_cmd_tools)


def _cmd_tools(args: argparse.Namespace) -> int:
    target: str = args.target
    if Path(target).is_dir():
        schemas = load_plugins(target).schemas()
    else:
        schemas = _agent(target).tools.schemas()
    _print_json(schemas, args.indent)
    return 0


# -- rtagent config --------------------------------------------------------------------------


def _add_config(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "config",
        parents=[common],
        help="print the session.update event an agent would send",
        description="Print, as JSON, the GA session.update event built from an agent.",
    )
    p.add_argument("target", metavar="AGENT", help="file.py[:Class] or module:Class")
    p.add_argument(
        "--indent", type=int, default=2, help="JSON indentation (default 2; 0 for one line)"
    )
    p.set_defaults(handler=_cmd_config)


def _cmd_config(args: argparse.Namespace) -> int:
    session = _agent(args.target).session_config()
    _print_json({"type": "session.update", "session": session}, args.indent)
    return 0


# -- rtagent serve ---------------------------------------------------------------------------


def _add_serve(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "serve",
        parents=[common],
        help="run the local Realtime test server",
        description="Run the protocol-faithful local Realtime server, for offline development and tests.",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port to listen on (default 8765)")
    p.add_argument("--api-key", default=None, help="require this bearer token from clients")
    p.set_defaults(handler=_cmd_serve)


def _cmd_serve(args: argparse.Namespace) -> int:
    import anyio

    from .local import run_server  # heavy and optional: imported on demand

    print(f"{_PROG}: serving on ws://{args.host}:{args.port}/v1/realtime", file=sys.stderr)
    anyio.run(run_server, args.host, args.port, args.api_key)
    return 0


_SUBCOMMANDS: list[Callable[[Any, argparse.ArgumentParser], None]] = [
    _add_tools,
    _add_config,
    _add_serve,
]


# -- helpers ---------------------------------------------------------------------------------


def _agent(spec: str) -> Agent:
    # The `rtagent` script, unlike `python -m`, does not put the current folder on sys.path;
    # add it so `module:Class` finds modules next to the user, as `python -m` would.
    cwd = os.getcwd()
    if "" not in sys.path and cwd not in sys.path:
        sys.path.insert(0, cwd)
    if not spec.strip():
        raise ConfigurationError("empty agent reference")
    return load_agent(spec)


def _print_json(data: Any, indent: int) -> None:
    sys.stdout.write(json.dumps(data, indent=indent or None, ensure_ascii=False) + "\n")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "; ".join(lines) if len(lines) > 1 else text
