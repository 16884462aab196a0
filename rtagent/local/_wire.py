"""What every part of the local engine stamps on what it sends: ids and the event envelope.

Ids have the real service's form: a prefix, ``_`` and 21 random letters and digits
(``item_E6U11eeiqpcw4luxPkEiJ``), 16 for call ids (``call_uMNE0Myi2tDTPu0w``). They come
from a seeded generator shared by a server's connections, so a test that runs the same
exchange twice sees the same ids. Every server event starts with its ``type`` and its own
``event_id``, in that order, as the real server writes them (PROTOCOL.md §3).
"""

from __future__ import annotations

import json
import random
import string
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_DEPTH", "PLAIN", "Event", "Flavor", "Ids", "parse_json", "server_event"]

Event = dict[str, Any]
"""One server event as the JSON object sent on the wire."""

_ALPHABET = string.ascii_letters + string.digits
_LENGTHS = {"call": 16}
"""Random characters after the prefix; 21 unless listed (recorded ids)."""

MAX_DEPTH = 64
"""How deeply a client's JSON may nest (objects and arrays); deeper is refused as invalid."""


def parse_json(data: str | bytes) -> Any:
    """A client's JSON (an event or a request body), refused like invalid JSON when it
    nests deeper than :data:`MAX_DEPTH`: then nothing downstream (validation, echoes)
    can run out of stack, and the parser's own ``RecursionError`` never escapes.

    Raises:
        ValueError: not JSON, or nested too deeply.
    """
    try:
        value = json.loads(data)
    except RecursionError:
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep") from None
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth >= MAX_DEPTH:
                    raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
                stack.append((child, depth + 1))
    return value


class Ids:
    """Seeded factory of real-form ids, shared by every connection of one server.

    Args:
        seed: the generator's seed; the same seed gives the same sequence of ids.
    """

    def __init__(self, seed: int | str | None = 0) -> None:
        self._random = random.Random(seed)

    def new(self, prefix: str) -> str:
        """A fresh id: ``prefix_`` plus 21 random characters (16 for ``call``)."""
        return f"{prefix}_{self.token(_LENGTHS.get(prefix, 21))}"

    def token(self, length: int) -> str:
        """``length`` random letters and digits from the seeded generator."""
        return "".join(self._random.choices(_ALPHABET, k=length))

    def hex(self, length: int) -> str:
        """``length`` random lower-case hex digits (call, webhook and event ids of the Calls API)."""
        return "".join(self._random.choices("0123456789abcdef", k=length))

    def raw(self, length: int) -> bytes:
        """``length`` random bytes (an SDP fingerprint) from the seeded generator."""
        return bytes(self._random.getrandbits(8) for _ in range(length))

    def obfuscation(self, delta: str) -> str:
        """The ``obfuscation`` padding of a delta event.

        The real service pads each streamed delta with random characters so that the
        frame length does not reveal the token: recorded deltas and their padding add up
        to 16 characters (longer ones to the next multiple of 16).
        """
        return self.token(16 - len(delta) % 16)


@dataclass(frozen=True, slots=True)
class Flavor:
    """Which service a connection imitates, where recorded traffic shows they differ.

    Attributes:
        azure: Azure OpenAI (the ``/openai/v1/realtime`` path): ``response.content_part.*``
            events repeat ``part`` as ``content``, and no ``rate_limits.updated`` is sent.
        sideband: a ``?call_id=`` connection to a WebRTC/SIP call: no ``session.created``,
            and output audio is played over the call, so ``output_audio_buffer.started`` /
            ``stopped`` replace the ``response.output_audio.delta`` events.
    """

    azure: bool = False
    sideband: bool = False


PLAIN = Flavor()
"""api.openai.com, a new session."""


def server_event(ids: Ids, type: str, **fields: Any) -> Event:
    """A server event: the ``type``, a fresh ``event_id``, then ``fields`` in order."""
    return {"type": type, "event_id": ids.new("event"), **fields}
