"""The session config of one connection: GA defaults, ``session.update`` merging and its rules.

``session.created`` reports the full default session; a ``session.update`` changes only
the fields it sends (PROTOCOL.md §5). An object whose ``type`` changes (``server_vad`` ->
``semantic_vad``) is replaced and completed with that type's defaults. The model cannot
change, the voice cannot change once the model has answered with audio, and tracing
cannot change once enabled. A new session starts with its model's defaults
(:mod:`~._models`), and an enabled input transcription is completed with ``language``
and ``prompt`` set to ``null``, as ``session.updated`` shows it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from ._models import BUILTIN_INSTRUCTIONS, DEFAULT_MODEL, ModelDefaults, defaults_for
from ._validate import Invalid
from ._wire import Event, Ids, server_event

__all__ = [
    "DEFAULT_MODEL",
    "SessionConfig",
    "check_session_update",
    "default_session",
    "merge_session",
]



def _server_vad(defaults: ModelDefaults) -> dict[str, Any]:
    return {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": defaults.silence_duration_ms,
        "idle_timeout_ms": None,
        "create_response": True,
        "interrupt_response": True,
    }


_TYPED_DEFAULTS: dict[str, Callable[[ModelDefaults], dict[str, Any]]] = {
    "server_vad": _server_vad,
    "semantic_vad": lambda _: {
        "type": "semantic_vad",
        "eagerness": "auto",
        "create_response": True,
        "interrupt_response": True,
    },
    "audio/pcm": lambda _: {"type": "audio/pcm", "rate": 24000},
}

# Objects without a ``type`` that the server completes when they are first set.
_KEYED_DEFAULTS: dict[str, Callable[[], dict[str, Any]]] = {
    "transcription": lambda: {"language": None, "prompt": None},
}


def default_session(model: str, session_id: str, expires_at: int) -> dict[str, Any]:
    """The full default GA session a new connection reports in ``session.created``."""
    defaults = defaults_for(model)
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id,
        "model": model,
        "output_modalities": ["audio"],
        "instructions": BUILTIN_INSTRUCTIONS,
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": expires_at,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": _server_vad(defaults),
            },
            "output": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "voice": defaults.voice,
                "speed": 1.0,
            },
        },
        "include": None,
    }


def merge_session(
    current: Any, update: Any, defaults: ModelDefaults | None = None, key: str = ""
) -> Any:
    """Deep-merge a session.update into the session: only the fields sent change.

    An object whose ``type`` changes (e.g. server_vad -> semantic_vad) is replaced
    and completed with that type's defaults (those of ``defaults``, the session's
    model); an input transcription that is switched on is completed with nulls.
    """
    if not isinstance(update, dict):
        return copy.deepcopy(update)
    if defaults is None:
        model = current.get("model") if isinstance(current, dict) else None
        defaults = defaults_for(str(model or DEFAULT_MODEL))
    if not isinstance(current, dict) or update.get("type", current.get("type")) != current.get(
        "type"
    ):
        typed = _TYPED_DEFAULTS.get(str(update.get("type")))
        if typed is not None:
            return merge_session(typed(defaults), update, defaults)
        merged = copy.deepcopy(update)
        for name, value in _KEYED_DEFAULTS.get(key, dict)().items():
            merged.setdefault(name, value)
        return merged
    merged = dict(current)
    for name, value in update.items():
        merged[name] = merge_session(current.get(name), value, defaults, name)
    return merged


def check_session_update(session: dict[str, Any], update: dict[str, Any], *, spoke: bool) -> None:
    """Reject a (schema-valid) session.update the real server refuses.

    Args:
        session: the current effective session.
        update: the ``session`` object of the client event.
        spoke: whether the model has already answered with audio on this connection.

    Raises:
        Invalid: the update changes the model, the voice after audio, or enabled tracing.
    """
    if "model" in update and update["model"] != session["model"]:
        raise Invalid(
            "invalid_value",
            f"Cannot update a session's model (it is '{session['model']}').",
            "session.model",
        )
    voice = update.get("audio", {}).get("output", {}).get("voice")
    if voice is not None and spoke and voice != session["audio"]["output"]["voice"]:
        raise Invalid(
            "cannot_update_voice",
            "Cannot update a session's voice after the model has responded with audio.",
            "session.audio.output.voice",
        )
    if (
        "tracing" in update
        and session.get("tracing") is not None
        and update["tracing"] != session["tracing"]
    ):
        raise Invalid(
            "invalid_value", "Tracing cannot be modified once enabled.", "session.tracing"
        )


class SessionConfig:
    """The effective session of one connection, and the events that report it.

    Args:
        ids: id factory (the session id and event ids).
        model: the ``model`` query parameter.
        expires_at: the session's end, in Unix seconds.
        overrides: initial session fields (from an ephemeral client secret).
    """

    def __init__(
        self,
        ids: Ids,
        model: str,
        expires_at: int,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        self._ids = ids
        self.session: dict[str, Any] = default_session(model, ids.new("sess"), expires_at)
        if overrides:
            self.session = merge_session(self.session, overrides)

    def created(self) -> Event:
        """``session.created``: the full effective session."""
        return server_event(self._ids, "session.created", session=copy.deepcopy(self.session))

    def update(self, update: dict[str, Any], *, spoke: bool) -> Event:
        """Apply a ``session.update``; return ``session.updated``.

        Raises:
            Invalid: see :func:`check_session_update`; the session is unchanged.
        """
        check_session_update(self.session, update, spoke=spoke)
        if update.get("instructions") == "":
            # Recorded: empty instructions leave the model's built-in ones in place.
            update = {**update, "instructions": BUILTIN_INSTRUCTIONS}
        self.session = merge_session(self.session, update)
        return server_event(self._ids, "session.updated", session=copy.deepcopy(self.session))

    # ---- what the other parts read ---------------------------------------------------------

    def turn_detection(self) -> dict[str, Any] | None:
        """``audio.input.turn_detection``, or None when VAD is off."""
        td = self.session["audio"]["input"].get("turn_detection")
        return td if isinstance(td, dict) else None

    def input_format(self) -> str:
        """The ``type`` of ``audio.input.format`` (``audio/pcm``, ``audio/pcmu``, ``audio/pcma``)."""
        return str(self.session["audio"]["input"].get("format", {}).get("type", "audio/pcm"))

    def transcribes_input(self) -> bool:
        """Whether input audio transcription is on."""
        return bool(self.session["audio"]["input"].get("transcription"))

    def transcription_model(self) -> str:
        """The input transcription model (``""`` when transcription is off)."""
        transcription = self.session["audio"]["input"].get("transcription") or {}
        return str(transcription.get("model") or "")
