"""The command line's shared options: where to connect, and which agent to run."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ._agent import DEFAULT_MODEL, Agent
from ._endpoint import Endpoint
from ._errors import ConfigurationError
from ._loading import load_agent

__all__ = [
    "UsageError",
    "add_connection_options",
    "add_endpoint_options",
    "connect_options",
    "endpoint_from",
    "load_cli_agent",
    "model_of",
    "model_option",
]


class UsageError(Exception):
    """Bad or conflicting options (exit status 2)."""


def add_endpoint_options(p: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    g = p.add_argument_group("where to connect")
    g.add_argument(
        "--local", action="store_true", help="use the embedded local server even when OPENAI_API_KEY is set"
    )
    g.add_argument(
        "--url", help="Realtime WebSocket endpoint (default wss://api.openai.com/v1/realtime)"
    )
    g.add_argument(
        "--base-url",
        metavar="URL",
        help="REST base URL instead of --url (default $OPENAI_BASE_URL or https://api.openai.com/v1)",
    )
    g.add_argument("--model", help="model id, or the deployment name on Azure (default: the agent's)")
    g.add_argument("--azure-endpoint", metavar="URL", help="https://<resource>.openai.azure.com")
    g.add_argument("--azure-deployment", metavar="NAME", help="Azure deployment name")
    g.add_argument(
        "--azure-api-key", metavar="KEY", help="Azure key (default $AZURE_OPENAI_API_KEY)"
    )
    return g


def add_connection_options(p: argparse.ArgumentParser) -> None:
    g = add_endpoint_options(p)
    g.add_argument(
        "--retries",
        metavar="N",
        type=int,
        default=None,
        help="connection attempts before giving up (default 8)",
    )


def endpoint_from(args: argparse.Namespace, agent: Agent) -> tuple[Endpoint | None, str]:
    """The endpoint the options name, or None (and why) for the embedded local server."""
    azure = bool(args.azure_endpoint)
    url: str | None = args.url
    if url is None and not (args.local or args.base_url or azure):
        url = os.environ.get("RTAGENT_URL") or None  # options win over the environment
    explicit = bool(url or args.base_url)
    if args.local:
        if explicit or azure:
            raise UsageError("--local cannot be combined with --url, --base-url or --azure-endpoint")
        return None, "--local given"
    if azure:
        if explicit:
            raise UsageError("--azure-endpoint cannot be combined with --url or --base-url")
        if not args.azure_deployment:
            raise UsageError("--azure-endpoint needs --azure-deployment")
    elif args.azure_deployment or args.azure_api_key:
        raise UsageError("--azure-deployment and --azure-api-key need --azure-endpoint")
    if url and args.base_url:
        raise UsageError("--url and --base-url cannot be combined")
    if not azure and not explicit and not os.environ.get("OPENAI_API_KEY"):
        return None, "OPENAI_API_KEY is not set"
    try:
        endpoint = Endpoint.resolve(
            url=url,
            base_url=args.base_url,
            model=model_option(args),
            default_model=model_of(agent),
            azure_endpoint=args.azure_endpoint,
            azure_deployment=args.azure_deployment,
            azure_api_key=args.azure_api_key,
        )
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from exc
    return endpoint, ""


def connect_options(args: argparse.Namespace) -> dict[str, Any]:
    """connect() options besides the endpoint."""
    from ._retry import RetryPolicy

    if args.retries is None:
        return {}
    if args.retries < 1:
        raise UsageError("--retries must be at least 1")
    return {"retry": RetryPolicy(max_attempts=args.retries, initial_delay=0.1, max_delay=2.0)}


def model_option(args: argparse.Namespace) -> str | None:
    """``--model``, else ``RTAGENT_MODEL``, else None (the agent's model)."""
    model: str | None = args.model or os.environ.get("RTAGENT_MODEL") or None
    return model


def model_of(agent: Agent) -> str:
    return agent.model if isinstance(agent.model, str) else DEFAULT_MODEL


def load_cli_agent(spec: str) -> Agent:
    # The `rtagent` script, unlike `python -m`, does not put the current folder on sys.path;
    # add it so `module:Class` finds modules next to the user, as `python -m` would.
    cwd = os.getcwd()
    if "" not in sys.path and cwd not in sys.path:
        sys.path.insert(0, cwd)
    if not spec.strip():
        raise ConfigurationError("empty agent reference")
    return load_agent(spec)
