"""``RealtimeSession``: the application's handle on a live session.

A thin façade: each method turns the application's wish into an input of the sans-I/O
session and has the driver execute the resulting actions. Create one with
:func:`rtagent.connect`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic_core import PydanticSerializationError, to_json

from .. import _events as ev
from .._endpoint import Endpoint
from .._errors import ConfigurationError, InputError
from .._invoke import ToolContext
from .._notices import EventsDropped
from .._retry import RetryPolicy
from .._session import Session
from .._session.gate import MARKER
from .._session.history import image_message, transcript, transcript_text
from .._tools import ToolRegistry
from .._transport import WebSocketConfig
from .._usage import UsageLedger
from .approvals import ApprovalHandler, Approvals
from .audio import AudioHub, SessionAudio
from .broadcaster import Broadcaster
from .driver import Driver, KeptFrame, SessionEvent, State
from .journal import ToolJournal

if TYPE_CHECKING:
    from .._agent import Agent

__all__ = ["RealtimeSession", "SessionStats"]

logger = logging.getLogger("rtagent.session")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SessionStats:
    """Counters of a live session."""

    reconnects: int
    """New connections that carried the session on (rollovers included)."""
    skipped_frames: int
    """Frames or events that could not be handled and were skipped."""
    running_tools: int
    """Tool calls running now."""


class RealtimeSession:
    """A live Realtime session for one agent. Create it with :func:`rtagent.connect`.

    Tool calls are run and answered on their own; use :meth:`ask` for request/response
    code, or iterate the session (``async for event in session``) for every server event
    and runtime notice. ``session.audio`` sends and receives audio.
    """

    def __init__(
        self,
        agent: Agent,
        tools: ToolRegistry,
        core: Session,
        endpoint: Endpoint,
        *,
        retry: RetryPolicy,
        reconnect: bool,
        ws_config: WebSocketConfig,
        event_buffer: int,
        chunk_bytes: int,
        response_timeout: float | None,
        approve: ApprovalHandler | None,
        approval_timeout: float | None,
        call_id: str | None,
        clock: Callable[[], float],
        journal: ToolJournal | None = None,
    ) -> None:
        self.agent = agent
        self.tools = tools
        self._core = core
        hub = AudioHub()
        events: Broadcaster[SessionEvent | KeptFrame] = Broadcaster(
            event_buffer, early=True, dropped_notice=EventsDropped
        )
        self._driver: Driver = Driver(
            core,
            endpoint,
            retry=retry,
            reconnect=reconnect,
            ws_config=ws_config,
            tools=lambda: self.tools,
            context=lambda call: ToolContext(
                call.call_id, call.name, self, self.agent, self._driver.desk.reporter(call)
            ),
            events=events,
            audio=hub,
            call_id=call_id,
            approvals=Approvals(approve, approval_timeout, lambda n: self._driver.notify(n)),
            response_timeout=response_timeout,
            clock=clock,
            journal=journal,
        )
        self.audio = SessionAudio(self._driver, hub, chunk_bytes)
        """Audio in and out: ``send``, ``commit``, ``clear``, ``played``, ``add_sink``, ``output``."""

    def __repr__(self) -> str:
        return f"<RealtimeSession agent={type(self.agent).__name__} state={self.state}>"

    # -- state -------------------------------------------------------------------------

    @property
    def state(self) -> State:
        """``"connecting"``, ``"open"``, ``"reconnecting"`` or ``"closed"``."""
        return self._driver.state

    @property
    def call_id(self) -> str | None:
        """The SIP/WebRTC call this session is attached to (None for a plain session)."""
        return self._driver.call_id

    @property
    def ended(self) -> str | None:
        """Why the session ended on the server's side without an error ("the call ended")."""
        return self._driver.ended

    @property
    def history(self) -> list[dict[str, Any]]:
        """The conversation as this client knows it (what a reconnect replays)."""
        return self._core.history

    @property
    def config(self) -> dict[str, Any]:
        """The session config as sent (the server's effective one: ``server_config``)."""
        return self._core.config

    @property
    def server_config(self) -> dict[str, Any]:
        """The server's effective session config, from its last ``session.updated``."""
        return self._core.server_config

    @property
    def usage(self) -> UsageLedger:
        """Tokens used so far: ``usage.total``, ``usage.last_turn``, recent responses and
        turns, and ``usage.cost`` when ``connect(prices=...)`` was given."""
        return self._core.usage

    @property
    def stats(self) -> SessionStats:
        driver = self._driver
        return SessionStats(driver.reconnects, driver.skipped_frames, driver.desk.running)

    # -- conversation ------------------------------------------------------------------

    async def ask(self, text: str) -> str:
        """Send a user message, run every tool round, return the text that answers it.

        Raises:
            ServerError: the response failed or the server refused to start it.
            ReconnectFailed: the connection was lost and could not be restored.
            SessionClosed: the session has ended.
        """
        self._driver.check_open()
        message = _user_message(text)
        turn, waiter = self._driver.turns.new()
        try:
            core = self._core
            await self._driver.execute(core.add_item(message) + core.request_response(turns={turn}))
            await waiter.done.wait()
        finally:
            self._driver.turns.forget(turn)
        if waiter.error is not None:
            raise waiter.error
        return waiter.text

    async def send_text(self, text: str) -> None:
        """Add a user message and request a response; returns at once."""
        self._driver.check_open()
        message = _user_message(text)
        core = self._core
        await self._driver.execute(core.add_item(message) + core.request_response())

    async def add_item(self, item: Mapping[str, Any]) -> str:
        """Add any conversation item (e.g. a system message) without requesting a response.

        Returns the item's id (one is chosen when the item has none).
        """
        self._driver.check_open()
        wire = sendable(dict(item), "the item")
        wire.setdefault("id", self._core.ids.item())
        await self._driver.execute(self._core.add_item(wire))
        return str(wire["id"])

    async def send_image(
        self,
        image: bytes,
        *,
        mime: str = "image/png",
        text: str | None = None,
        detail: Literal["auto", "low", "high"] = "auto",
        respond: bool = True,
    ) -> None:
        """Show the model an image (PNG or JPEG bytes), with optional text.

        Args:
            image: the encoded image.
            mime: ``"image/png"`` or ``"image/jpeg"``.
            text: words to go with it, in the same user message.
            detail: how closely the model looks (``"auto"``, ``"low"``, ``"high"``).
            respond: request a response about it (else it only joins the conversation).
        """
        self._driver.check_open()
        message = sendable(image_message(image, mime, text, detail), "the image message")
        core = self._core
        actions = core.add_item(message)
        if respond:
            actions += core.request_response()
        await self._driver.execute(actions)

    def transcript(self, format: Literal["json", "text"] = "json") -> Any:
        """The conversation so far, with tool calls, their outputs and timestamps.

        ``"json"`` gives a list of JSON-ready entries (``kind``: ``message``, ``tool_call``,
        ``tool_output``; ``at``: ISO time), ``"text"`` one line per item. It covers what
        the session keeps for replay (the last ``max_items`` items).
        """
        entries = transcript(self._core.mirror.items.values(), self._core.mirror.times)
        return transcript_text(entries) if format == "text" else entries

    def approve(self, call_id: str) -> bool:
        """Approve a call that waits for a person (see ``ApprovalRequested``).

        Returns False when no call with that id is waiting (decided, timed out, unknown).
        """
        return self._driver.approvals.decide(call_id, True)

    def reject(self, call_id: str, reason: str | None = None) -> bool:
        """Refuse a call that waits for a person; the model is told, with ``reason``."""
        return self._driver.approvals.decide(call_id, False, reason)

    async def create_response(self, **overrides: Any) -> None:
        """Request a response with per-response overrides; queued while one is active.

        ``conversation="none"`` makes an out-of-band response that runs beside others and
        stays out of the conversation.

        Raises:
            ConfigurationError: ``metadata`` has no room for rtagent's request key.
        """
        self._driver.check_open()
        metadata = overrides.get("metadata")
        if isinstance(metadata, Mapping) and len(metadata) >= 16 and MARKER not in metadata:
            raise ConfigurationError(
                f"metadata holds at most 16 pairs and rtagent adds one ({MARKER!r}): pass 15 or fewer"
            )
        options = sendable(dict(overrides), "the response options") or None
        await self._driver.execute(self._core.request_response(options))

    async def cancel(self) -> None:
        """Interrupt: cancel the active response and apply each running tool's ``on_interrupt``."""
        await self._driver.execute(self._core.cancel())

    # -- configuration -----------------------------------------------------------------

    async def update(self, **session_fields: Any) -> None:
        """Change session settings live (``session.update`` with just these fields)."""
        self._driver.check_open()
        fields = sendable(session_fields, "the session settings")
        await self._driver.execute(self._core.update_config(fields))

    async def update_tools(self, tools: ToolRegistry | Iterable[Any]) -> None:
        """Replace the session's tools live (the agent's hosted MCP servers stay)."""
        registry = tools if isinstance(tools, ToolRegistry) else ToolRegistry(tools)
        self.tools = registry
        await self.update(tools=[*self.agent.hosted_tools(), *registry.schemas()])

    async def handoff(self, agent: Agent) -> None:
        """Hand the conversation to another agent: its instructions and tools take over."""
        tools = agent.load_tools()
        config = agent.session_config(tools)
        config.pop("model", None)  # the model of a session cannot change
        self.agent, self.tools = agent, tools
        await self.update(**config)

    # -- events and the end ------------------------------------------------------------

    async def __aiter__(self) -> AsyncGenerator[SessionEvent, None]:
        """Every server event and runtime notice, in order (``async for event in session``)."""
        driver = self._driver
        receive = driver.events.subscribe()
        try:
            async with receive:
                async for event in receive:
                    # A kept frame (see KeptFrame) parsed once already: it parses again.
                    yield ev.parse_server_event(event) if isinstance(event, (str, bytes)) else event
        finally:
            driver.events.unsubscribe(receive)
        if driver.error is not None and not driver.user_closed:
            raise driver.error

    async def aclose(self) -> None:
        """End the session (close handshake); tools still running are cancelled."""
        await self._driver.aclose()

def _user_message(text: str) -> dict[str, Any]:
    if not isinstance(text, str):
        raise InputError(f"the message must be a str, not {type(text).__name__}")
    message = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    return sendable(message, "the message")


def sendable(value: T, what: str) -> T:
    """``value`` if it can travel as JSON text; :class:`InputError` before anything is sent.

    Lone surrogates (text decoded with ``surrogateescape``, sliced UTF-16) cannot be encoded
    as UTF-8, and ``nan``/``inf`` are not JSON: the server would refuse the event, or the
    conversation mirror would hold what no connection can replay.
    """
    try:
        json.loads(to_json(value), parse_constant=_not_json)
    except (PydanticSerializationError, ValueError) as exc:
        raise InputError(f"{what} cannot be sent: {_why(exc)}") from None
    return value


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


def _why(exc: Exception) -> str:
    text = str(exc)
    if "surrogates not allowed" in text:
        return "it contains lone surrogates (invalid Unicode)"
    return text.removeprefix("Error serializing to JSON: ")
