"""Typed Realtime events (GA dialect) and their wire encoding.

Server events are parsed with one pydantic discriminated union, in Rust, straight
from the frame's bytes; a type we do not model becomes :class:`UnknownServerEvent`
instead of an error, so a new server event never ends a session. Client events are
small models serialised with ``exclude_none`` (``None`` inside free-form dicts such
as ``session`` is kept, because ``"turn_detection": null`` means something).

Raw dicts do not leave this module except as the declared ``dict`` fields of
free-form payloads (session config, response overrides).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    WrapValidator,
)

from ._errors import ProtocolError

__all__ = [
    "KNOWN_TYPES",
    "ClientEvent",
    "ContentPart",
    "ConversationCreated",
    "ConversationItemAdded",
    "ConversationItemCreate",
    "ConversationItemCreated",
    "ConversationItemDelete",
    "ConversationItemDeleted",
    "ConversationItemDone",
    "ConversationItemInputAudioTranscriptionCompleted",
    "ConversationItemInputAudioTranscriptionDelta",
    "ConversationItemInputAudioTranscriptionFailed",
    "ConversationItemRetrieve",
    "ConversationItemRetrieved",
    "ConversationItemTruncate",
    "ConversationItemTruncated",
    "Error",
    "ErrorDetail",
    "InputAudioBufferAppend",
    "InputAudioBufferClear",
    "InputAudioBufferCleared",
    "InputAudioBufferCommit",
    "InputAudioBufferCommitted",
    "InputAudioBufferDtmfEventReceived",
    "InputAudioBufferSpeechStarted",
    "InputAudioBufferSpeechStopped",
    "InputAudioBufferTimeoutTriggered",
    "Item",
    "McpListToolsCompleted",
    "McpListToolsFailed",
    "McpListToolsInProgress",
    "OutputAudioBufferClear",
    "OutputAudioBufferCleared",
    "OutputAudioBufferStarted",
    "OutputAudioBufferStopped",
    "RateLimitsUpdated",
    "Response",
    "ResponseCancel",
    "ResponseContentPartAdded",
    "ResponseContentPartDone",
    "ResponseCreate",
    "ResponseCreated",
    "ResponseDone",
    "ResponseFunctionCallArgumentsDelta",
    "ResponseFunctionCallArgumentsDone",
    "ResponseMcpCallArgumentsDelta",
    "ResponseMcpCallArgumentsDone",
    "ResponseMcpCallCompleted",
    "ResponseMcpCallFailed",
    "ResponseMcpCallInProgress",
    "ResponseOutputAudioDelta",
    "ResponseOutputAudioDone",
    "ResponseOutputAudioTranscriptDelta",
    "ResponseOutputAudioTranscriptDone",
    "ResponseOutputItemAdded",
    "ResponseOutputItemDone",
    "ResponseOutputTextDelta",
    "ResponseOutputTextDone",
    "ServerEvent",
    "SessionCreated",
    "SessionUpdate",
    "SessionUpdated",
    "UnknownServerEvent",
    "encode_client_event",
    "parse_server_event",
    "peek_type",
]


class _Wire(BaseModel):
    # Servers add fields over time; ignoring them keeps parsing cheap and forward-compatible.
    model_config = ConfigDict(extra="ignore", frozen=False)


T = TypeVar("T")


def _to_none(value: Any) -> None:
    return None


def _to_empty(value: Any) -> list[Any]:
    return []


def _without_none(values: list[Any]) -> list[Any]:
    return [x for x in values if x is not None]


# What the state machine needs is parsed strictly; everything else leniently: a field of an
# unexpected type becomes None (an unusable list entry is dropped), so one odd field never
# costs a whole response.done and leaves a response "active" forever.
#
# Each lenient field is a left-to-right union whose last member takes anything: a value of
# the expected type is validated in Rust as if the field were strict, and Python runs only
# for an odd value (a wrap validator around the field would run Python for every value).
# (None comes before the catch-all so that a null, which is common, runs no Python either.)
_Odd = Annotated[Any, AfterValidator(_to_none)]
if TYPE_CHECKING:
    Lenient = Annotated[T | None, ...]
    LenientList = Annotated[list[T], ...]  # entries are never None
else:
    Lenient = Annotated[Union[T, None, _Odd], Field(union_mode="left_to_right")]  # noqa: RUF036
    LenientList = Annotated[
        Union[
            Annotated[list[Lenient[T]], AfterValidator(_without_none)],
            Annotated[Any, AfterValidator(_to_empty)],
        ],
        Field(union_mode="left_to_right"),
    ]


# --- shared payloads ---------------------------------------------------------------------------


class ContentPart(_Wire):
    """One content part of a message item (``input_text``, ``output_text``, ``output_audio``...)."""

    type: str
    text: Lenient[str] = None
    transcript: Lenient[str] = None
    audio: Lenient[str] = None


class Item(_Wire):
    """A conversation item. One flat model: ``type`` says which fields are meaningful."""

    type: str
    id: str | None = None
    object: Lenient[str] = None
    status: str | None = None
    role: Lenient[str] = None
    content: Lenient[LenientList[ContentPart]] = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: Lenient[str] = None
    phase: Lenient[str] = None
    server_label: Lenient[str] = None
    """Hosted MCP items (``mcp_call``, ``mcp_approval_request``...): the server's label."""
    """gpt-realtime-2.x tags assistant messages ``"commentary"`` (a preamble) or
    ``"final_answer"``."""

    def text(self) -> str:
        """The item's readable text: text parts, else audio transcripts, joined."""
        if not self.content:
            return ""
        return "".join(p.text or p.transcript or "" for p in self.content)

    def to_wire(self) -> dict[str, Any]:
        """The item as ``conversation.item.create`` expects it (no server-only fields)."""
        return self.model_dump(exclude_none=True, exclude={"object", "status", "phase", "server_label"})


class ErrorDetail(_Wire):
    type: Annotated[str, WrapValidator(lambda v, h: v if isinstance(v, str) else "server_error")] = (
        "server_error"
    )
    code: Lenient[str] = None
    message: Annotated[str, WrapValidator(lambda v, h: v if isinstance(v, str) else str(v))] = ""
    param: Lenient[str] = None
    event_id: Lenient[str] = None


class Response(_Wire):
    id: str | None = None
    status: str = "in_progress"
    status_details: Lenient[dict[str, Any]] = None
    output: LenientList[Item] = Field(default_factory=list)
    usage: Lenient[dict[str, Any]] = None
    metadata: Lenient[dict[str, Any]] = None
    conversation_id: Lenient[str] = None


# --- server events ------------------------------------------------------------------------------


class _ServerEvent(_Wire):
    event_id: str | None = None


class SessionCreated(_ServerEvent):
    type: Literal["session.created"]
    session: dict[str, Any]


class SessionUpdated(_ServerEvent):
    type: Literal["session.updated"]
    session: dict[str, Any]


class ConversationCreated(_ServerEvent):
    type: Literal["conversation.created"]
    conversation: dict[str, Any] | None = None


class ConversationItemAdded(_ServerEvent):
    type: Literal["conversation.item.added"]
    item: Item
    previous_item_id: str | None = None


class ConversationItemDone(_ServerEvent):
    type: Literal["conversation.item.done"]
    item: Item
    previous_item_id: str | None = None


class ConversationItemCreated(_ServerEvent):
    """Beta-era name still in the GA union; handled like ``conversation.item.added``."""

    type: Literal["conversation.item.created"]
    item: Item
    previous_item_id: str | None = None


class ConversationItemRetrieved(_ServerEvent):
    type: Literal["conversation.item.retrieved"]
    item: Item


class ConversationItemDeleted(_ServerEvent):
    type: Literal["conversation.item.deleted"]
    item_id: str


class ConversationItemTruncated(_ServerEvent):
    type: Literal["conversation.item.truncated"]
    item_id: str
    content_index: int = 0
    audio_end_ms: int = 0


class ConversationItemInputAudioTranscriptionDelta(_ServerEvent):
    type: Literal["conversation.item.input_audio_transcription.delta"]
    item_id: str
    content_index: int | None = None
    delta: str | None = None


class ConversationItemInputAudioTranscriptionCompleted(_ServerEvent):
    type: Literal["conversation.item.input_audio_transcription.completed"]
    item_id: str
    content_index: int = 0
    transcript: str


class ConversationItemInputAudioTranscriptionFailed(_ServerEvent):
    type: Literal["conversation.item.input_audio_transcription.failed"]
    item_id: str
    content_index: int = 0
    error: ErrorDetail


class InputAudioBufferSpeechStarted(_ServerEvent):
    type: Literal["input_audio_buffer.speech_started"]
    item_id: str
    audio_start_ms: int = 0


class InputAudioBufferSpeechStopped(_ServerEvent):
    type: Literal["input_audio_buffer.speech_stopped"]
    item_id: str
    audio_end_ms: int = 0


class InputAudioBufferCommitted(_ServerEvent):
    type: Literal["input_audio_buffer.committed"]
    item_id: str
    previous_item_id: str | None = None


class InputAudioBufferCleared(_ServerEvent):
    type: Literal["input_audio_buffer.cleared"]


class InputAudioBufferTimeoutTriggered(_ServerEvent):
    type: Literal["input_audio_buffer.timeout_triggered"]
    item_id: str
    audio_start_ms: int = 0
    audio_end_ms: int = 0


class InputAudioBufferDtmfEventReceived(_ServerEvent):
    """A caller pressed a key on a SIP call (the event carries no ``event_id``)."""

    type: Literal["input_audio_buffer.dtmf_event_received"]
    event: str
    """The key: ``"0"``-``"9"``, ``"*"``, ``"#"``, ``"A"``-``"D"``."""
    received_at: Lenient[int] = None


class OutputAudioBufferStarted(_ServerEvent):
    """WebRTC/SIP: the server started playing a response's audio to the caller."""

    type: Literal["output_audio_buffer.started"]
    response_id: Lenient[str] = None


class OutputAudioBufferStopped(_ServerEvent):
    """WebRTC/SIP: the response's audio has been played out."""

    type: Literal["output_audio_buffer.stopped"]
    response_id: Lenient[str] = None


class OutputAudioBufferCleared(_ServerEvent):
    """WebRTC/SIP: queued audio was dropped (barge-in, or ``output_audio_buffer.clear``)."""

    type: Literal["output_audio_buffer.cleared"]
    response_id: Lenient[str] = None


class McpListToolsInProgress(_ServerEvent):
    type: Literal["mcp_list_tools.in_progress"]
    item_id: Lenient[str] = None


class McpListToolsCompleted(_ServerEvent):
    type: Literal["mcp_list_tools.completed"]
    item_id: Lenient[str] = None


class McpListToolsFailed(_ServerEvent):
    type: Literal["mcp_list_tools.failed"]
    item_id: Lenient[str] = None


class ResponseMcpCallArgumentsDelta(_ServerEvent):
    type: Literal["response.mcp_call_arguments.delta"]
    response_id: str
    item_id: str
    output_index: int = 0
    delta: str


class ResponseMcpCallArgumentsDone(_ServerEvent):
    type: Literal["response.mcp_call_arguments.done"]
    response_id: str
    item_id: str
    output_index: int = 0
    arguments: str


class ResponseMcpCallInProgress(_ServerEvent):
    type: Literal["response.mcp_call.in_progress"]
    item_id: str
    output_index: int = 0


class ResponseMcpCallCompleted(_ServerEvent):
    type: Literal["response.mcp_call.completed"]
    item_id: str
    output_index: int = 0


class ResponseMcpCallFailed(_ServerEvent):
    type: Literal["response.mcp_call.failed"]
    item_id: str
    output_index: int = 0


class ResponseCreated(_ServerEvent):
    type: Literal["response.created"]
    response: Response


class ResponseDone(_ServerEvent):
    type: Literal["response.done"]
    response: Response


class ResponseOutputItemAdded(_ServerEvent):
    type: Literal["response.output_item.added"]
    response_id: str
    output_index: int = 0
    item: Item


class ResponseOutputItemDone(_ServerEvent):
    type: Literal["response.output_item.done"]
    response_id: str
    output_index: int = 0
    item: Item


class ResponseContentPartAdded(_ServerEvent):
    type: Literal["response.content_part.added"]
    response_id: str
    item_id: str
    output_index: int = 0
    content_index: int = 0
    part: ContentPart


class ResponseContentPartDone(_ServerEvent):
    type: Literal["response.content_part.done"]
    response_id: str
    item_id: str
    output_index: int = 0
    content_index: int = 0
    part: ContentPart


class ResponseOutputTextDelta(_ServerEvent):
    type: Literal["response.output_text.delta"]
    response_id: str
    item_id: str
    output_index: int = 0
    content_index: int = 0
    delta: str


class ResponseOutputTextDone(_ServerEvent):
    type: Literal["response.output_text.done"]
    response_id: str
    item_id: str
    output_index: int = 0
    content_index: int = 0
    text: str


class ResponseOutputAudioDelta(_ServerEvent):
    type: Literal["response.output_audio.delta"]
    response_id: str
    item_id: str
    output_index: int = 0
    content_index: int = 0
    delta: str


class ResponseOutputAudioDone(_ServerEvent):
    type: Literal["response.output_audio.done"]
    response_id: str
    item_id: str
    output_index: int = 0
    content_index: int = 0


class ResponseOutputAudioTranscriptDelta(_ServerEvent):
    type: Literal["response.output_audio_transcript.delta"]
    response_id: str
    item_id: str
    output_index: int = 0
    content_index: int = 0
    delta: str


class ResponseOutputAudioTranscriptDone(_ServerEvent):
    type: Literal["response.output_audio_transcript.done"]
    response_id: str
    item_id: str
    output_index: int = 0
    content_index: int = 0
    transcript: str


class ResponseFunctionCallArgumentsDelta(_ServerEvent):
    type: Literal["response.function_call_arguments.delta"]
    response_id: str
    item_id: str
    output_index: int = 0
    call_id: str
    delta: str


class ResponseFunctionCallArgumentsDone(_ServerEvent):
    type: Literal["response.function_call_arguments.done"]
    response_id: str
    item_id: str
    output_index: int = 0
    call_id: str
    name: str | None = None
    arguments: str


class RateLimitsUpdated(_ServerEvent):
    type: Literal["rate_limits.updated"]
    rate_limits: LenientList[dict[str, Any]] = Field(default_factory=list)


class Error(_ServerEvent):
    """A server ``error`` event. Most are not fatal: the socket stays open."""

    type: Literal["error"]
    error: ErrorDetail


class UnknownServerEvent(BaseModel):
    """A server event type rtagent does not model; passed through, never fatal."""

    model_config = ConfigDict(extra="ignore")
    type: str
    event_id: str | None = None
    data: dict[str, Any]


_Known = Union[
    SessionCreated,
    SessionUpdated,
    ConversationCreated,
    ConversationItemAdded,
    ConversationItemDone,
    ConversationItemCreated,
    ConversationItemRetrieved,
    ConversationItemDeleted,
    ConversationItemTruncated,
    ConversationItemInputAudioTranscriptionDelta,
    ConversationItemInputAudioTranscriptionCompleted,
    ConversationItemInputAudioTranscriptionFailed,
    InputAudioBufferSpeechStarted,
    InputAudioBufferSpeechStopped,
    InputAudioBufferCommitted,
    InputAudioBufferCleared,
    InputAudioBufferTimeoutTriggered,
    ResponseCreated,
    ResponseDone,
    ResponseOutputItemAdded,
    ResponseOutputItemDone,
    ResponseContentPartAdded,
    ResponseContentPartDone,
    ResponseOutputTextDelta,
    ResponseOutputTextDone,
    ResponseOutputAudioDelta,
    ResponseOutputAudioDone,
    ResponseOutputAudioTranscriptDelta,
    ResponseOutputAudioTranscriptDone,
    ResponseFunctionCallArgumentsDelta,
    ResponseFunctionCallArgumentsDone,
    RateLimitsUpdated,
    Error,
    InputAudioBufferDtmfEventReceived,
    OutputAudioBufferStarted,
    OutputAudioBufferStopped,
    OutputAudioBufferCleared,
    McpListToolsInProgress,
    McpListToolsCompleted,
    McpListToolsFailed,
    ResponseMcpCallArgumentsDelta,
    ResponseMcpCallArgumentsDone,
    ResponseMcpCallInProgress,
    ResponseMcpCallCompleted,
    ResponseMcpCallFailed,
]

_KnownServerEvent = Annotated[_Known, Field(discriminator="type")]

ServerEvent = Union[_Known, UnknownServerEvent]
"""Every server event: a modelled one, or :class:`UnknownServerEvent`."""

_server_adapter: TypeAdapter[Any] = TypeAdapter(_KnownServerEvent)
KNOWN_TYPES = frozenset(
    t.model_fields["type"].annotation.__args__[0]
    for t in _Known.__args__  # type: ignore[attr-defined]
)
_dict_adapter: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])


def parse_server_event(frame: str | bytes) -> ServerEvent:
    """Parse one server frame.

    Raises:
        ProtocolError: the frame is not a JSON object with a string ``type``, or a known
            event type is missing required fields. Unknown types are not errors.
    """
    try:
        return _server_adapter.validate_json(frame)  # type: ignore[no-any-return]
    except ValidationError as exc:
        try:
            data = _dict_adapter.validate_json(frame)
        except ValidationError:
            raise ProtocolError(f"malformed frame: {_clip(frame)}") from exc
        kind = data.get("type")
        if not isinstance(kind, str):
            raise ProtocolError(f"event without a string type: {_clip(frame)}") from exc
        if kind in KNOWN_TYPES:
            detail = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in detail["loc"][1:])
            raise ProtocolError(f"malformed {kind} event: {where}: {detail['msg']}") from exc
        event_id = data.get("event_id")
        return UnknownServerEvent(
            type=kind, event_id=event_id if isinstance(event_id, str) else None, data=data
        )


_TYPE_STR = re.compile(r'"type"\s*:\s*"([^"\\]+)"')
_TYPE_BYTES = re.compile(rb'"type"\s*:\s*"([^"\\]+)"')


def peek_type(frame: str | bytes) -> str | None:
    """The first ``"type"`` value in a frame, found without parsing it.

    A hint for skipping frames nobody needs: it may be a nested object's type (item
    types such as ``message``, never an event name), so only a match against a set
    of event names should lead to skipping.
    """
    if isinstance(frame, str):
        match = _TYPE_STR.search(frame)
        return match.group(1) if match else None
    found = _TYPE_BYTES.search(frame)
    return found.group(1).decode("ascii", "replace") if found else None


def _clip(frame: str | bytes, limit: int = 120) -> str:
    text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
    return text if len(text) <= limit else text[:limit] + "..."


# --- client events ------------------------------------------------------------------------------


class _ClientEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_id: str | None = None


class SessionUpdate(_ClientEvent):
    type: Literal["session.update"] = "session.update"
    session: dict[str, Any]


class ConversationItemCreate(_ClientEvent):
    type: Literal["conversation.item.create"] = "conversation.item.create"
    item: dict[str, Any]
    previous_item_id: str | None = None


class ConversationItemDelete(_ClientEvent):
    type: Literal["conversation.item.delete"] = "conversation.item.delete"
    item_id: str


class ConversationItemRetrieve(_ClientEvent):
    type: Literal["conversation.item.retrieve"] = "conversation.item.retrieve"
    item_id: str


class ConversationItemTruncate(_ClientEvent):
    type: Literal["conversation.item.truncate"] = "conversation.item.truncate"
    item_id: str
    content_index: int = 0
    audio_end_ms: int


class InputAudioBufferAppend(_ClientEvent):
    type: Literal["input_audio_buffer.append"] = "input_audio_buffer.append"
    audio: str


class InputAudioBufferCommit(_ClientEvent):
    type: Literal["input_audio_buffer.commit"] = "input_audio_buffer.commit"


class InputAudioBufferClear(_ClientEvent):
    type: Literal["input_audio_buffer.clear"] = "input_audio_buffer.clear"


class ResponseCreate(_ClientEvent):
    type: Literal["response.create"] = "response.create"
    response: dict[str, Any] | None = None


class OutputAudioBufferClear(_ClientEvent):
    """WebRTC/SIP: stop playing the caller the audio already sent (after ``response.cancel``)."""

    type: Literal["output_audio_buffer.clear"] = "output_audio_buffer.clear"


class ResponseCancel(_ClientEvent):
    type: Literal["response.cancel"] = "response.cancel"
    response_id: str | None = None


ClientEvent = Union[
    SessionUpdate,
    ConversationItemCreate,
    ConversationItemDelete,
    ConversationItemRetrieve,
    ConversationItemTruncate,
    InputAudioBufferAppend,
    InputAudioBufferCommit,
    InputAudioBufferClear,
    ResponseCreate,
    ResponseCancel,
    OutputAudioBufferClear,
]


def encode_client_event(event: ClientEvent) -> str:
    """The event as one JSON text frame (``None`` fields of the event itself omitted)."""
    if type(event) is InputAudioBufferAppend and event.event_id is None:
        # The audio hot path (50 chunks a second per stream): base64 needs no escaping.
        return '{"type":"input_audio_buffer.append","audio":"' + event.audio + '"}'
    return event.model_dump_json(exclude_none=True)
