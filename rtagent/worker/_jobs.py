"""A job: one call (or one WebSocket session) for the fleet to run, as queued in NATS."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .._errors import ConfigurationError
from ._names import check_id

__all__ = ["Job", "JobKind"]

JobKind = Literal["call", "session"]


class Job(BaseModel):
    """What a worker is asked to run.

    Attributes:
        id: the ``call_id`` of a SIP/WebRTC call, or the application's id of a WebSocket
            session (also the id its control and events subjects use).
        kind: ``"call"`` (the conversation lives on the service; the worker attaches by
            ``call_id``) or ``"session"`` (a WebSocket session the worker opens; its
            history is kept in the journal so another worker can continue it).
        accepted: a call that is already live (e.g. a browser call the application
            started); otherwise it is ringing and the worker accepts it.
        history: a session's opening conversation (as ``connect(history=...)`` takes it).
        metadata: anything the application wants a worker (or its agent factory) to see,
            such as the SIP headers of an incoming call.
        submitted_at: when the job was queued (seconds since the epoch).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    v: Literal[1] = 1
    id: str
    kind: JobKind = "call"
    accepted: bool = False
    history: list[dict[str, Any]] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    submitted_at: float = Field(default_factory=time.time)

    @model_validator(mode="after")
    def _valid_id(self) -> Job:
        check_id(self.id, "call_id" if self.kind == "call" else "session id")
        return self

    def encode(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def decode(cls, data: bytes) -> Job:
        """Raises ConfigurationError on a message that is not a valid job."""
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "the job"
            raise ConfigurationError(f"not a valid rtagent job: {where}: {first['msg']}") from None
