"""``rtagent worker`` and ``rtagent submit``: the command line of a worker fleet on NATS."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable
from functools import partial
from typing import Any

import anyio

from ._agent import Agent
from ._cli_options import (
    UsageError,
    add_connection_options,
    connect_options,
    endpoint_from,
    load_cli_agent,
)
from ._errors import ConfigurationError
from ._redact import redact_url

__all__ = ["add_submit", "add_worker", "fleet_client"]

_NATS_HELP = "the NATS server (default $RTAGENT_NATS or nats://127.0.0.1:4222)"


def _default_nats() -> str:
    return os.environ.get("RTAGENT_NATS") or "nats://127.0.0.1:4222"


def _fleet_module() -> Any:
    try:
        from . import worker
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None
    return worker


def fleet_client(nats_url: str) -> Any:
    """A fleet client for ``rtagent phone --nats``."""
    return _fleet_module().FleetClient(nats_url)


def add_worker(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "worker",
        parents=[common],
        help="run calls from a NATS JetStream queue, as one worker of a fleet",
        description=(
            "Pull calls (and WebSocket sessions) from the fleet's JetStream queue, as many "
            "at once as --capacity: accept a ringing call, attach to it by call_id and run "
            "AGENT until hang-up. SIGTERM stops pulling and lets running calls finish for "
            "--drain-timeout seconds, then hands the rest to other workers. The Calls API "
            "uses the endpoint options (OPENAI_BASE_URL, OPENAI_API_KEY) as connect() does. "
            "Needs: pip install 'rtagent[nats]'."
        ),
    )
    p.add_argument("target", metavar="AGENT", help="file.py[:Class] or module:Class")
    p.add_argument("--nats", metavar="URL", default=None, help=_NATS_HELP)
    p.add_argument("--capacity", type=int, default=10, help="calls run at once (default 10)")
    p.add_argument(
        "--drain-timeout", type=float, default=30.0, metavar="SECONDS",
        help="on SIGTERM, how long running calls may finish before they are handed over (default 30)",
    )
    p.add_argument(
        "--handoff", action="append", default=[], metavar="NAME=AGENT",
        help="an agent a control request may hand a call to (repeatable)",
    )
    p.add_argument("--prefix", default="rtagent", help="the fleet's name prefix in NATS (default rtagent)")
    p.add_argument("--worker-id", help="this worker's name in the registry (default host-pid-suffix)")
    add_connection_options(p)
    p.set_defaults(handler=_cmd_worker, log_level=logging.INFO)


def _cmd_worker(args: argparse.Namespace) -> int:
    fleet = _fleet_module()
    if args.capacity < 1:
        raise UsageError("--capacity must be at least 1")
    agent = load_cli_agent(args.target)
    endpoint, reason = endpoint_from(args, agent)
    if endpoint is None:
        raise UsageError(f"rtagent worker runs real calls, and {reason}: set it, or use --url or --base-url")
    worker = fleet.Worker(
        agent,
        nats_url=args.nats or _default_nats(),
        capacity=args.capacity,
        drain_timeout=args.drain_timeout,
        names=fleet.FleetNames(args.prefix),
        handoffs=_handoffs(args.handoff),
        endpoint=endpoint,
        worker_id=args.worker_id,
        connect_options=connect_options(args),
    )
    print(f"rtagent: worker {worker.worker_id} pulling from {redact_url(args.nats or _default_nats())} "
          f"(capacity {args.capacity})", file=sys.stderr)
    anyio.run(_serve, worker)
    return 0


async def _serve(worker: Any) -> None:
    """Run the worker; the first SIGTERM or Ctrl-C drains it, a second one stops at once."""
    async with anyio.create_task_group() as tg:

        async def signals() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as received:
                async for _ in received:
                    if worker.stopping:
                        tg.cancel_scope.cancel()  # calls still running are handed over
                        return
                    worker.stop()

        tg.start_soon(signals)
        await worker.run()
        tg.cancel_scope.cancel()


def _handoffs(specs: list[str]) -> dict[str, Callable[[], Agent]]:
    out: dict[str, Callable[[], Agent]] = {}
    for spec in specs:
        name, sep, target = spec.partition("=")
        if not sep or not name or not target:
            raise UsageError(f"--handoff takes NAME=AGENT, not {spec!r}")
        load_cli_agent(target)  # fail now, not at the first hand-off
        out[name] = partial(load_cli_agent, target)
    return out


def add_submit(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "submit",
        parents=[common],
        help="queue a call for the worker fleet",
        description=(
            "Queue CALL_ID for the fleet's workers. By default the call is ringing and a worker "
            "accepts it; with --accepted it is live already (a browser call the application "
            "started). The call_id is the message id: submitting it twice queues it once. "
            "Needs: pip install 'rtagent[nats]'."
        ),
    )
    p.add_argument("call_id", metavar="CALL_ID")
    p.add_argument("--nats", metavar="URL", default=None, help=_NATS_HELP)
    p.add_argument("--accepted", action="store_true", help="the call is live already: attach, do not accept")
    p.add_argument("--session", action="store_true", help="CALL_ID names a new WebSocket session, not a call")
    p.add_argument("--prefix", default="rtagent", help="the fleet's name prefix in NATS (default rtagent)")
    p.set_defaults(handler=_cmd_submit)


def _cmd_submit(args: argparse.Namespace) -> int:
    fleet = _fleet_module()
    if args.session and args.accepted:
        raise UsageError("--accepted is for calls, not --session")

    async def submit() -> bool:
        async with fleet.FleetClient(args.nats or _default_nats(), names=fleet.FleetNames(args.prefix)) as client:
            if args.session:
                queued: bool = await client.start_session(args.call_id)
            else:
                queued = await client.submit(args.call_id, accepted=args.accepted)
            return queued

    queued = anyio.run(submit)
    print(f"queued {args.call_id}" if queued else f"{args.call_id} was queued already (a duplicate)")
    return 0
