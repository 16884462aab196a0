"""The ``rtagent`` command line.

Each subcommand is two functions: ``_add_<name>(subparsers)`` declares its arguments and
``_cmd_<name>(args) -> int`` runs it. Register a new one by adding its ``_add_`` function
to ``_SUBCOMMANDS``.

Exit status: 0 when all went well; 1 a failure while running (a connection refused or lost
for good, a turn that failed); 2 something to fix in the command or its files (bad or
conflicting options, a missing file or folder, an agent or plugin that cannot be loaded);
130 when the user quit with Ctrl-C. Errors print one line, ``rtagent: error: ...``, on
stderr; ``--debug`` shows the traceback and debug logs instead.

Environment defaults: ``RTAGENT_URL`` for ``--url``, ``RTAGENT_MODEL`` for ``--model``,
and ``RTAGENT_LOG`` for the log level (``debug``, ``info``, ``warning``, ``error``; the
default is ``warning``, and ``info`` for ``serve``). Options win over the environment.
Secrets (API keys) are masked in every log line.

``chat`` and ``token`` talk to the embedded local server when ``OPENAI_API_KEY`` is not set
(or with ``--local``), so they work on a fresh machine with no key.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path
from typing import Any

from ._agent import Agent
from ._cli_fleet import add_submit, add_worker
from ._cli_options import (
    UsageError,
    add_connection_options,
    add_endpoint_options,
    connect_options,
    endpoint_from,
    load_cli_agent,
    model_of,
    model_option,
)
from ._endpoint import Endpoint
from ._errors import (
    ClientSecretError,
    ConfigurationError,
    HandshakeError,
    PluginLoadError,
    ReconnectFailed,
    SessionRefused,
    ToolDefinitionError,
    first_error,
)
from ._plugins import load_plugins

__all__ = ["main"]

_PROG = "rtagent"
_LOCAL_KEY = "sk-local"
_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR, "critical": logging.CRITICAL}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``) and return the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    debug: bool = getattr(args, "debug", False)
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        try:
            _configure_logging(args)
            _tolerant_stdio()
            return handler(args)
        except BaseException as exc:
            error = first_error(exc)  # never show "unhandled errors in a TaskGroup"
            if error is exc:
                raise
            raise error from None
    except KeyboardInterrupt:
        return _INTERRUPTED
    except (UsageError, ConfigurationError, PluginLoadError, ToolDefinitionError) as exc:
        # The user can fix these by changing the command line or the agent file.
        if debug:
            traceback.print_exc()
        else:
            print(f"{_PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
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
        epilog=(
            "environment: RTAGENT_URL (default --url), RTAGENT_MODEL (default --model), "
            "RTAGENT_LOG (log level), OPENAI_API_KEY. Exit status: 0 ok, 1 failure, "
            "2 usage or configuration error, 130 Ctrl-C."
        ),
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"{_PROG} {_version()}")
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
        schemas = load_cli_agent(target).load_tools().schemas()
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
    agent = load_cli_agent(args.target)
    session = agent.session_config(agent.load_tools())
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
    p.add_argument(
        "--ui",
        action="store_true",
        help="serve a live inspector page of the connections on 127.0.0.1 (URL printed)",
    )
    p.add_argument(
        "--ui-port", metavar="PORT", type=int, default=0, help="the inspector's port (default: a free one)"
    )
    p.set_defaults(handler=_cmd_serve, log_level=logging.INFO)


def _cmd_serve(args: argparse.Namespace) -> int:
    import anyio

    from .local import run_server  # heavy and optional: imported on demand

    key = " (clients must send the API key)" if args.api_key else ""
    print(f"{_PROG}: serving on ws://{args.host}:{args.port}/v1/realtime{key}", file=sys.stderr)
    if args.ui:
        anyio.run(_serve_with_ui, args)
    else:
        anyio.run(run_server, args.host, args.port, args.api_key)
    return 0


async def _serve_with_ui(args: argparse.Namespace) -> None:
    from ._inspect import open_inspector
    from .local import LocalRealtimeServer

    async with (
        LocalRealtimeServer(api_key=args.api_key, host=args.host, port=args.port) as server,
        open_inspector(port=args.ui_port, title="rtagent serve") as inspector,
    ):
        print(server.url, flush=True)
        print(f"{_PROG}: inspector: {inspector.url}", file=sys.stderr, flush=True)
        await inspector.watch_server(server)


# -- rtagent chat ----------------------------------------------------------------------------


def _add_chat(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "chat",
        parents=[common],
        help="chat with an agent in the terminal (local server when no API key is set)",
        description=(
            "Chat with an agent: its replies stream as they arrive and each tool call is shown "
            "on one line (arguments, result, duration). Without OPENAI_API_KEY (or with "
            "--local) the embedded local server answers with rule-based replies. Standard "
            "input may be piped: one message a line, each answered in full, exit at EOF. "
            "Ctrl-C cancels the current reply; a second Ctrl-C or Ctrl-D quits."
        ),
        epilog=(
            "exit status: 0 ok, 1 failure (connection or a reply failed), 2 usage or "
            "configuration error (bad option, agent or file), 130 quit with Ctrl-C. "
            "environment: RTAGENT_URL, RTAGENT_MODEL, RTAGENT_LOG (see rtagent --help)"
        ),
    )
    p.add_argument("target", metavar="AGENT", nargs="?", help="file.py[:Class] or module:Class")
    p.add_argument(
        "--demo", action="store_true", help="chat with the built-in demo agent (a pirate with three tools)"
    )
    p.add_argument(
        "--plugins", metavar="DIR", action="append", default=[], help="add the tools of a plugin folder (repeatable)"
    )
    p.add_argument(
        "--inspect",
        action="store_true",
        help="serve a live inspector page of the session on 127.0.0.1 (URL printed)",
    )
    p.add_argument(
        "--inspect-port", metavar="PORT", type=int, default=0, help="the inspector's port (default: a free one)"
    )
    add_connection_options(p)
    voice = p.add_argument_group("voice")
    voice.add_argument(
        "--audio-in", metavar="WAV", type=Path, help="send this WAV file as your turn, then exit"
    )
    voice.add_argument(
        "--audio-out", metavar="WAV", type=Path, help="ask for spoken replies and write them to this WAV file"
    )
    voice.add_argument(
        "--mic",
        action="store_true",
        help="live microphone and speaker (needs: pip install 'rtagent[voice]')",
    )
    p.set_defaults(handler=_cmd_chat)


def _cmd_chat(args: argparse.Namespace) -> int:
    import anyio

    from ._chat import ChatOptions, run_chat

    if args.mic and args.audio_in is not None:
        raise UsageError("--mic and --audio-in cannot be combined")
    if args.demo:
        if args.target is not None:
            raise UsageError("give AGENT or --demo, not both")
        from ._demo import DemoPirate

        agent: Agent = DemoPirate()
    elif args.target is None:
        raise UsageError("chat needs an AGENT (file.py[:Class] or module:Class), or --demo")
    else:
        agent = load_cli_agent(args.target)
    endpoint, reason = endpoint_from(args, agent)
    if args.plugins:
        for folder in args.plugins:
            if not Path(folder).is_dir():
                raise UsageError(f"--plugins {folder}: no such folder")
        agent.plugins = [*agent.plugins, *args.plugins]
        agent.load_tools()  # a broken plugin is reported now, before connecting
    options = ChatOptions(
        connect=connect_options(args),
        endpoint=endpoint,
        model=model_option(args),
        local_reason=reason,
        audio_in=args.audio_in,
        audio_out=args.audio_out,
        mic=args.mic,
        inspect=args.inspect,
        inspect_port=args.inspect_port,
        show_logs=_shows_logs(args),
    )
    with _quiet(args):
        status: int = anyio.run(partial(run_chat, agent, options))
    return status


# -- rtagent token ---------------------------------------------------------------------------


def _add_token(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "token",
        parents=[common],
        help="mint an ephemeral client secret for a browser or other untrusted client",
        description=(
            "Mint an ephemeral client secret bound to AGENT's session config "
            "(POST /v1/realtime/client_secrets) and print it as JSON. Without OPENAI_API_KEY "
            "(or with --local) an embedded local server mints it: such a secret is only a "
            "demonstration, as that server stops when the command ends (use --base-url with "
            "`rtagent serve` for a usable local one)."
        ),
    )
    p.add_argument("target", metavar="AGENT", help="file.py[:Class] or module:Class")
    p.add_argument(
        "--expires-in", metavar="SECONDS", type=int, default=600, help="lifetime, 10 to 7200 (default 600)"
    )
    add_endpoint_options(p)
    p.add_argument(
        "--indent", type=int, default=2, help="JSON indentation (default 2; 0 for one line)"
    )
    p.set_defaults(handler=_cmd_token)


def _cmd_token(args: argparse.Namespace) -> int:
    import anyio

    from ._secrets import acreate_client_secret, create_client_secret

    agent = load_cli_agent(args.target)
    endpoint, reason = endpoint_from(args, agent)
    if endpoint is not None:
        with _quiet(args):
            secret = create_client_secret(
                agent, endpoint=endpoint, expires_after_seconds=args.expires_in
            )
        _print_json(
            {"value": secret.value, "expires_at": secret.expires_at, "session": secret.session},
            args.indent,
        )
        return 0

    async def mint_locally() -> dict[str, Any]:
        from .local import LocalRealtimeServer

        async with LocalRealtimeServer() as server:
            local = Endpoint.resolve(base_url=server.http_url, api_key=_LOCAL_KEY, model=model_option(args),
                                     default_model=model_of(agent))
            secret = await acreate_client_secret(
                agent, endpoint=local, expires_after_seconds=args.expires_in
            )
        return {
            "value": secret.value,
            "expires_at": secret.expires_at,
            "session": secret.session,
            "local": True,
            "note": "minted by the embedded local server (no OPENAI_API_KEY); not valid anywhere else",
        }

    print(f"{_PROG}: {reason}: minting a local secret with the embedded local server",
          file=sys.stderr)
    with _quiet(args):
        minted = anyio.run(mint_locally)
    _print_json(minted, args.indent)
    return 0


# -- rtagent phone ---------------------------------------------------------------------------


def _add_phone(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "phone",
        parents=[common],
        help="answer phone (SIP) calls with an agent: serve the incoming-call webhook",
        description=(
            "Serve the incoming-call webhook (realtime.call.incoming) with uvicorn: each "
            "verified call is accepted with AGENT's session config, attached to by call_id, "
            "and run until hang-up, its tools on this machine. Point your OpenAI project's "
            "webhook at http://HOST:PORT/webhook. With --nats, calls are queued for a worker "
            "fleet instead (rtagent worker) and no AGENT is needed. Needs: pip install "
            "'rtagent[phone]' (and 'rtagent[nats]' for --nats)."
        ),
    )
    p.add_argument("target", metavar="AGENT", nargs="?", help="file.py[:Class] or module:Class")
    p.add_argument("--nats", metavar="URL", help="queue calls on this NATS server for rtagent worker")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    p.add_argument("--path", default="/webhook", help="where webhooks arrive (default /webhook)")
    p.add_argument(
        "--webhook-secret", metavar="SECRET", help="signing secret (default $OPENAI_WEBHOOK_SECRET)"
    )
    add_endpoint_options(p)
    p.set_defaults(handler=_cmd_phone)


def _cmd_phone(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from .calls import phone_app
    except ImportError as exc:
        raise ConfigurationError("rtagent phone needs: pip install 'rtagent[phone]'") from exc
    if args.nats:
        if args.target:
            raise UsageError("with --nats the workers run the agent: give no AGENT")
        from ._cli_fleet import fleet_client

        app = phone_app(queue=fleet_client(args.nats), webhook_secret=args.webhook_secret, path=args.path)
    else:
        if not args.target:
            raise UsageError("phone needs an AGENT (file.py[:Class] or module:Class), or --nats")
        agent = load_cli_agent(args.target)
        endpoint, reason = endpoint_from(args, agent)
        if endpoint is None:
            raise UsageError(f"rtagent phone answers real calls, and {reason}: set it, or use --base-url")
        app = phone_app(agent, webhook_secret=args.webhook_secret, path=args.path, endpoint=endpoint)
    print(f"{_PROG}: answering calls at http://{args.host}:{args.port}{args.path}", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info" if getattr(args, "debug", False) else "warning")
    return 0


_SUBCOMMANDS: list[Callable[[Any, argparse.ArgumentParser], None]] = [
    _add_chat,
    _add_tools,
    _add_config,
    _add_serve,
    _add_token,
    _add_phone,
    add_worker,
    add_submit,
]


# -- helpers ---------------------------------------------------------------------------------


@contextmanager
def _quiet(args: argparse.Namespace) -> Iterator[None]:
    """Interactive commands report retries, reconnects and errors themselves, one line each."""
    logger = logging.getLogger(_PROG)
    level = logger.level
    if not _shows_logs(args):
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)  # main() may be called in-process (tests, other launchers)


def _shows_logs(args: argparse.Namespace) -> bool:
    """Whether the user asked for logs (``--debug`` or ``RTAGENT_LOG``)."""
    return bool(getattr(args, "debug", False) or os.environ.get("RTAGENT_LOG"))


def _log_level(args: argparse.Namespace) -> int:
    if getattr(args, "debug", False):
        return logging.DEBUG
    raw = os.environ.get("RTAGENT_LOG", "").strip()
    if not raw:
        default: int = getattr(args, "log_level", logging.WARNING)
        return default
    if raw.lower() in _LEVELS:
        return _LEVELS[raw.lower()]
    if raw.isdigit():
        return int(raw)
    raise UsageError(f"RTAGENT_LOG must be one of {', '.join(_LEVELS)} (got {raw!r})")


def _configure_logging(args: argparse.Namespace) -> None:
    """Log to stderr at the chosen level, with every known secret masked."""
    root = logging.getLogger()
    existing = list(root.handlers)
    level = _log_level(args)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if existing:
        # Someone configured logging already (an embedding program, pytest): keep their
        # handlers, and still let rtagent's records through at the chosen level.
        if level < logging.WARNING:
            logging.getLogger(_PROG).setLevel(level)
        return
    secrets = [
        getattr(args, "api_key", None),
        getattr(args, "azure_api_key", None),
        os.environ.get("OPENAI_API_KEY"),
        os.environ.get("AZURE_OPENAI_API_KEY"),
    ]
    redact = _Redact([s for s in secrets if s])
    for handler in root.handlers:
        handler.addFilter(redact)


class _Redact(logging.Filter):
    """Masks secrets in log messages (defence in depth: nothing should log them)."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        masked = message
        for secret in self.secrets:
            masked = masked.replace(secret, "***")
        if masked != message:
            record.msg, record.args = masked, None
        return True


def _tolerant_stdio() -> None:
    """Undecodable input bytes and unprintable characters become replacement characters."""
    for stream in (sys.stdin, sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            with suppress(ValueError, OSError):  # closed, or detached by the host program
                stream.reconfigure(errors="replace")


def _version() -> str:
    # The version lives in the package root, above this module: read it on demand.
    import rtagent

    return rtagent.__version__


def _print_json(data: Any, indent: int) -> None:
    sys.stdout.write(json.dumps(data, indent=indent or None, ensure_ascii=False) + "\n")


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, HandshakeError):
        return f"the server refused the connection (HTTP {exc.status_code}): {_body_message(exc.body)}"
    if isinstance(exc, SessionRefused):
        code = f" ({exc.code})" if exc.code else ""
        return f"the server refused the session{code}: {exc.message}"
    if isinstance(exc, ClientSecretError):
        return f"the server refused to mint a secret (HTTP {exc.status_code}): {exc.message}"
    if isinstance(exc, ReconnectFailed):
        last = _one_line(exc.last_error) if exc.last_error is not None else "no error kept"
        return f"could not connect after {exc.attempts} attempt(s): {last}"
    text = str(exc).strip() or type(exc).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "; ".join(lines) if len(lines) > 1 else text


def _body_message(body: bytes) -> str:
    """The ``error.message`` of an OpenAI-style JSON error body, else the body's text."""
    try:
        message = json.loads(body)["error"]["message"]
        if isinstance(message, str) and message:
            return message
    except (ValueError, KeyError, TypeError):
        pass
    text = " ".join(body.decode("utf-8", "replace").split())
    return text[:200] or "no details"
