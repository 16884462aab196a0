"""Shapes of the GA client events, sessions and items (openai ``types.realtime``).

Only what a GA client may send is accepted; anything else is reported the way
the real server reports it (see :mod:`rtagent.local._validate`).
"""

from __future__ import annotations

from typing import Any

from ._validate import (
    ANY,
    BOOL,
    NUMBER,
    STR,
    AnyOf,
    Dict,
    Int,
    Invalid,
    List,
    Lit,
    Nullable,
    Number,
    Obj,
    Spec,
    Str,
    Tagged,
    join_path,
)

__all__ = [
    "CLIENT_EVENT_TYPES",
    "EVENT_SPECS",
    "ITEM",
    "RESPONSE_PARAMS",
    "SESSION",
]

_STATUS = Lit("completed", "incomplete", "in_progress")
_OBJECT = Lit("realtime.item")

AUDIO_FORMAT: Spec = Tagged(
    {
        "audio/pcm": Obj({"type": STR, "rate": Int(24000, 24000)}),
        "audio/pcmu": Obj({"type": STR}),
        "audio/pcma": Obj({"type": STR}),
    }
)

_SERVER_VAD = Obj(
    {
        "type": STR,
        "threshold": Number(0.0, 1.0),
        "prefix_padding_ms": Int(0),
        "silence_duration_ms": Int(0),
        "idle_timeout_ms": Nullable(Int(0)),
        "create_response": BOOL,
        "interrupt_response": BOOL,
    }
)
_SEMANTIC_VAD = Obj(
    {
        "type": STR,
        "eagerness": Lit("low", "medium", "high", "auto"),
        "create_response": BOOL,
        "interrupt_response": BOOL,
    }
)
TURN_DETECTION: Spec = Nullable(Tagged({"server_vad": _SERVER_VAD, "semantic_vad": _SEMANTIC_VAD}))

_TRANSCRIPTION = Obj(
    {
        "model": STR,
        "language": STR,
        "prompt": STR,
        "delay": Lit("minimal", "low", "medium", "high", "xhigh"),
        "keywords": List(STR),
        "languages": List(STR),
    }
)
_NOISE = Obj({"type": Lit("near_field", "far_field"), "strength": NUMBER})
_VOICE = AnyOf(STR, Obj({"id": STR}, required=["id"]))

_AUDIO = Obj(
    {
        "input": Obj(
            {
                "format": AUDIO_FORMAT,
                "noise_reduction": Nullable(_NOISE),
                "transcription": Nullable(_TRANSCRIPTION),
                "turn_detection": TURN_DETECTION,
            }
        ),
        "output": Obj({"format": AUDIO_FORMAT, "voice": _VOICE, "speed": Number(0.25, 1.5)}),
    }
)

_FUNCTION_TOOL = Obj(
    {"type": STR, "name": Str(64), "description": Str(1024), "parameters": Dict()},
    required=["name"],
)
_MCP_TOOL = Obj(
    {
        "type": STR,
        "server_label": STR,
        "server_url": STR,
        "server_description": STR,
        "connector_id": STR,
        "authorization": STR,
        "headers": Dict(STR),
        "allowed_tools": ANY,
        "require_approval": ANY,
        "allowed_callers": ANY,
        "defer_loading": BOOL,
        "tunnel_id": STR,
    },
    required=["server_label"],
)
TOOLS: Spec = List(Tagged({"function": _FUNCTION_TOOL, "mcp": _MCP_TOOL}), max_items=128)
TOOL_CHOICE: Spec = AnyOf(
    Lit("none", "auto", "required"),
    Tagged(
        {
            "function": Obj({"type": STR, "name": STR}, required=["name"]),
            "mcp": Obj({"type": STR, "server_label": STR, "name": STR}, required=["server_label"]),
        }
    ),
)
MAX_OUTPUT_TOKENS: Spec = AnyOf(Int(1, 4096), Lit("inf"))
_MODALITIES = List(Lit("text", "audio"), min_items=1, max_items=1)
_PROMPT = Obj({"id": STR, "variables": Dict(), "version": Nullable(STR)}, required=["id"])
_REASONING = Obj({"effort": Lit("minimal", "low", "medium", "high", "xhigh")})

SESSION: Spec = Obj(
    {
        "type": Lit("realtime"),
        "model": STR,
        "instructions": STR,
        "output_modalities": _MODALITIES,
        "audio": _AUDIO,
        "tools": TOOLS,
        "tool_choice": TOOL_CHOICE,
        "max_output_tokens": MAX_OUTPUT_TOKENS,
        "tracing": Nullable(
            AnyOf(Lit("auto"), Obj({"workflow_name": STR, "group_id": STR, "metadata": ANY}))
        ),
        "truncation": AnyOf(
            Lit("auto", "disabled"),
            Obj(
                {
                    "type": Lit("retention_ratio"),
                    "retention_ratio": Number(0.0, 1.0),
                    "token_limits": Obj({"post_instructions": Int(0)}),
                },
                required=["type", "retention_ratio"],
            ),
        ),
        "include": Nullable(List(Lit("item.input_audio_transcription.logprobs"))),
        "prompt": Nullable(_PROMPT),
        "reasoning": _REASONING,
        "parallel_tool_calls": BOOL,
    },
    required=["type"],
)

# --- conversation items (GA ConversationItem union, minus the server's MCP items) --------------------------


def _content_part(allowed: tuple[str, ...]) -> Spec:
    parts: dict[str, Spec] = {
        "input_text": Obj({"type": STR, "text": STR}, required=["text"]),
        "input_audio": Obj({"type": STR, "audio": STR, "transcript": Nullable(STR)}),
        "input_image": Obj(
            {"type": STR, "image_url": STR, "detail": Lit("auto", "low", "high")},
            required=["image_url"],
        ),
        "output_text": Obj({"type": STR, "text": STR}, required=["text"]),
        "output_audio": Obj({"type": STR, "audio": STR, "transcript": Nullable(STR)}),
    }
    return Tagged({k: parts[k] for k in allowed})


def _message_roles(value: dict[str, Any], path: tuple[str | int, ...]) -> None:
    allowed = {
        "system": ("input_text",),
        "user": ("input_text", "input_audio", "input_image"),
        "assistant": ("output_text", "output_audio"),
    }[value["role"]]
    List(_content_part(allowed)).check(value["content"], (*path, "content"))


_COMMON = {"id": Str(32), "object": _OBJECT, "status": _STATUS}
_MESSAGE = Obj(
    {"type": STR, "role": Lit("user", "assistant", "system"), "content": List(ANY), **_COMMON},
    required=["role", "content"],
    extra=_message_roles,
)
_FUNCTION_CALL = Obj(
    {"type": STR, "name": STR, "arguments": STR, "call_id": STR, **_COMMON},
    required=["name", "arguments"],
)
_FUNCTION_CALL_OUTPUT = Obj(
    {"type": STR, "call_id": STR, "output": STR, **_COMMON}, required=["call_id", "output"]
)
# A hosted MCP tool's approval request is answered with this item (the other MCP items
# are the server's own).
_MCP_APPROVAL_RESPONSE = Obj(
    {"type": STR, "id": Str(32), "approval_request_id": STR, "approve": BOOL,
     "reason": Nullable(STR)},
    required=["approval_request_id", "approve"],
)
ITEM: Spec = Tagged(
    {
        "message": _MESSAGE,
        "function_call": _FUNCTION_CALL,
        "function_call_output": _FUNCTION_CALL_OUTPUT,
        "mcp_approval_response": _MCP_APPROVAL_RESPONSE,
    }
)
_ITEM_OR_REF = Tagged(
    {
        "message": _MESSAGE,
        "function_call": _FUNCTION_CALL,
        "function_call_output": _FUNCTION_CALL_OUTPUT,
        "item_reference": Obj({"type": STR, "id": STR}, required=["id"]),
    }
)


def _metadata_values(value: dict[str, Any], path: tuple[str | int, ...]) -> None:
    for k, v in value.items():
        if len(k) > 64:
            p = join_path((*path, k))
            raise Invalid("invalid_value", f"Invalid '{p}': metadata key too long.", p)
        Str(512).check(v, (*path, k))


RESPONSE_PARAMS: Spec = Obj(
    {
        "conversation": Lit("auto", "none"),
        "input": List(_ITEM_OR_REF),
        "instructions": STR,
        "tools": TOOLS,
        "tool_choice": TOOL_CHOICE,
        "output_modalities": _MODALITIES,
        "max_output_tokens": MAX_OUTPUT_TOKENS,
        "audio": Obj({"output": Obj({"format": AUDIO_FORMAT, "voice": _VOICE})}),
        "metadata": Nullable(Dict(STR, max_items=16)),
        "prompt": Nullable(_PROMPT),
        "reasoning": _REASONING,
        "parallel_tool_calls": BOOL,
    }
)

_EID = {"type": STR, "event_id": STR}
EVENT_SPECS: dict[str, Spec] = {
    "session.update": Obj({**_EID, "session": SESSION}, required=["session"]),
    "input_audio_buffer.append": Obj({**_EID, "audio": STR}, required=["audio"]),
    "input_audio_buffer.commit": Obj(_EID),
    "input_audio_buffer.clear": Obj(_EID),
    "output_audio_buffer.clear": Obj(_EID),
    "conversation.item.create": Obj(
        {**_EID, "previous_item_id": Nullable(STR), "item": ITEM}, required=["item"]
    ),
    "conversation.item.retrieve": Obj({**_EID, "item_id": STR}, required=["item_id"]),
    "conversation.item.delete": Obj({**_EID, "item_id": STR}, required=["item_id"]),
    "conversation.item.truncate": Obj(
        {**_EID, "item_id": STR, "content_index": Int(0), "audio_end_ms": Int(0)},
        required=["item_id", "content_index", "audio_end_ms"],
    ),
    "response.create": Obj({**_EID, "response": RESPONSE_PARAMS}),
    "response.cancel": Obj({**_EID, "response_id": STR}),
}
CLIENT_EVENT_TYPES: tuple[str, ...] = tuple(EVENT_SPECS)
