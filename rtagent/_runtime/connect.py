"""``connect()``: open a live session for an agent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs, urlsplit

import anyio
from typing_extensions import Unpack

from .. import _otel
from .._agent import DEFAULT_MODEL
from .._endpoint import Endpoint, EndpointOptions
from .._errors import ConfigurationError
from .._retry import RetryPolicy
from .._session import Session
from .._session.history import normalise_history
from .._session.lifecycle import DEFAULT_MAX_DURATION
from .._session.mirror import DEFAULT_MAX_ITEMS
from .._tools import OnInterrupt
from .._transport import WebSocketConfig
from .._usage import Prices
from .approvals import ApprovalHandler
from .driver import SessionEvent
from .journal import ToolJournal
from .session import RealtimeSession, sendable

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectReceiveStream

    from .._agent import Agent
    from .._mcp.source import McpTools

__all__ = ["connect"]


@asynccontextmanager
async def connect(
    agent: Agent,
    *,
    call_id: str | None = None,
    endpoint: Endpoint | None = None,
    retry: RetryPolicy | None = None,
    reconnect: bool = True,
    max_duration: float = DEFAULT_MAX_DURATION,
    planned_rollover: bool = True,
    ws_config: WebSocketConfig | None = None,
    audio_chunk_ms: int = 100,
    event_buffer: int = 256,
    max_items: int = DEFAULT_MAX_ITEMS,
    response_timeout: float | None = 60.0,
    prices: Prices | None = None,
    history: Iterable[Mapping[str, Any]] = (),
    approve: ApprovalHandler | None = None,
    approval_timeout: float | None = 300.0,
    journal: ToolJournal | None = None,
    **options: Unpack[EndpointOptions],
) -> AsyncIterator[RealtimeSession]:
    """Open a live session for ``agent``; it ends when the block does.

    Where to connect comes from ``endpoint``, or from the endpoint options (see
    :meth:`rtagent.Endpoint.resolve`): ``url`` (a Realtime WebSocket URL such as a local
    server's ``server.url``), ``base_url``, ``api_key`` (default ``OPENAI_API_KEY``),
    ``model`` (default: the agent's), ``azure_endpoint`` with ``azure_deployment`` and
    ``azure_api_key`` or ``azure_ad_token``, and ``headers``.

    With ``call_id``, the session attaches to an existing SIP or WebRTC call (a sideband
    connection, ``?call_id=``): the media flows between the caller and the service, and
    this session configures the call and runs its tools. A sideband the server closes
    normally, or one it refuses to re-attach (404), means the call has ended: the session
    ends cleanly (``session.ended`` says so) and is not retried; a dropped sideband of a
    live call re-attaches to it, and nothing is replayed (the conversation lives on the
    server).

    Args:
        agent: the agent whose instructions, tools and settings configure the session.
        call_id: attach to this call instead of starting a new session.
        endpoint: a ready :class:`rtagent.Endpoint` instead of the endpoint options.
        retry: backoff and limits for the first connect and each reconnect.
        reconnect: reconnect and restore the conversation when the connection drops.
        max_duration: roll over to a new connection between responses before this many
            seconds (the server's ``expires_at`` wins when earlier).
        planned_rollover: set False to keep each connection until the server ends it
            (``session_expired``), then reconnect; nothing is lost either way.
        ws_config: WebSocket limits, keepalive and proxy.
        audio_chunk_ms: size of the ``input_audio_buffer.append`` chunks of
            ``session.audio.send()`` (PCM16 at 24 kHz).
        event_buffer: events each iterator may fall behind by; also how many events
            wait for the first ``async for`` (0: none are kept before it).
        max_items: conversation items kept for a reconnect's replay; older ones drop.
        response_timeout: seconds of silence from the server while a response is due
            after which the connection is ended and the request asked again on a new one
            (None: wait forever). To bound a whole ``ask()``, wrap it in
            ``anyio.fail_after(...)``.
        prices: prices per million tokens; ``session.usage.cost`` and the
            ``UsageReported`` notices then carry costs.
        history: a prior conversation to continue: items as ``conversation.item.create``
            takes them (messages, ``function_call`` and ``function_call_output``), or
            ``{"role": "user", "content": "text"}``. They are created first, in order.
        approve: decides calls that need approval (``async def approve(request) -> bool |
            str``; a string rejects with that reason). Default: the agent's ``approve``
            method if it has one, else the application answers ``ApprovalRequested``
            notices with ``session.approve()``/``session.reject()``.
        approval_timeout: seconds a call waits for a decision before it is refused.
        journal: durable records of the tool calls, so that a process taking over this
            session after another died finishes the calls in flight (the worker fleet
            gives each call one; see :mod:`rtagent.worker`).
        **options: the endpoint options above.

    Raises:
        ConfigurationError: no API key for OpenAI's endpoint, or a bad setting.
        HandshakeError: the server refused the connection (e.g. 401), not retried.
        ReconnectFailed: the retry policy gave up.
    """
    if endpoint is None:
        model = agent.model if isinstance(agent.model, str) else DEFAULT_MODEL
        endpoint = Endpoint.resolve(default_model=model, **options)
    tools = agent.load_tools()
    config = agent.session_config(tools)
    config["model"] = endpoint.model  # the one in the URL: a session's model cannot change

    def interrupt_policy(name: str) -> OnInterrupt:
        tool = session.tools.get(name)
        return tool.on_interrupt if tool is not None else "finish"

    seed = sendable(normalise_history(history), "the history")
    if call_id is None:
        query = parse_qs(urlsplit(endpoint.websocket_url()).query)
        call_id = query["call_id"][0] if "call_id" in query else None
    core = Session(
        config,
        sideband=call_id is not None,
        interrupt_policy=interrupt_policy,
        max_duration=max_duration if planned_rollover else None,
        max_items=max_items,
        prices=prices,
        history=seed,
    )
    session = RealtimeSession(
        agent,
        tools,
        core,
        endpoint,
        retry=retry or RetryPolicy(),
        reconnect=reconnect,
        ws_config=ws_config or WebSocketConfig(),
        event_buffer=event_buffer,
        chunk_bytes=max(2, audio_chunk_ms * 48),
        response_timeout=response_timeout,
        approve=approve or getattr(agent, "approve", None),
        approval_timeout=approval_timeout,
        call_id=call_id,
        clock=core.life.clock,
        journal=journal,
    )
    mcp = _mcp_tools(agent)
    # OpenTelemetry spans and metrics, when the application has set OpenTelemetry up.
    telemetry = _otel.session_telemetry(type(agent).__name__, endpoint.model, endpoint.websocket_url())
    # Errors from connecting or from the caller's block are re-raised outside the task
    # group, so callers see them as they are rather than wrapped in an exception group.
    error: BaseException | None = None
    async with anyio.create_task_group() as tg:
        if mcp is not None:
            # The MCP servers run in this task group; each gets its start_timeout, then
            # the session starts with the tools of those that are ready (not connected
            # yet, update_tools only changes the config the first session.update sends).
            await mcp.start(tg)
            await session.update_tools(mcp.merge_into(session.tools))
            mcp.attach(lambda: session.tools, session.update_tools, session._driver.notify)
        if telemetry is not None:
            # A subscription of its own, taken before the first event; it never takes the
            # events kept for the application's first iterator (so never a KeptFrame).
            receive = cast(
                "MemoryObjectReceiveStream[SessionEvent]",
                session._driver.events.subscribe(claim_early=False),
            )
            tg.start_soon(telemetry.consume, receive)
        try:
            await tg.start(session._driver.run)
        except BaseException as exc:
            error = exc
            tg.cancel_scope.cancel()
        else:
            try:
                yield session
            except BaseException as exc:
                error = exc
            finally:
                with anyio.CancelScope(shield=True):
                    await session.aclose()
                    if mcp is not None:
                        await mcp.aclose()
                tg.cancel_scope.cancel()
    if error is not None:
        raise error


def _mcp_tools(agent: Agent) -> McpTools | None:
    """The agent's MCP servers, to start with the session (None when it declares none).

    Raises:
        ConfigurationError: The agent declares MCP servers but the mcp package is missing.
    """
    if not agent.mcp_servers:
        return None
    try:
        from .._mcp.source import McpTools
    except ImportError as exc:
        raise ConfigurationError(
            f"{type(agent).__qualname__}.mcp_servers needs the mcp package: "
            f"pip install 'rtagent[mcp]' ({exc})"
        ) from None
    return McpTools(agent.mcp_servers)
