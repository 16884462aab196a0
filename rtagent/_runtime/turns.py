"""The application's waits on answers: one :class:`Turn` per ``ask()``."""

from __future__ import annotations

import itertools

import anyio

from .._errors import ServerError
from .._session import TurnDone

__all__ = ["Turn", "Turns"]


class Turn:
    """One application wait on an answer (``ask()``)."""

    __slots__ = ("done", "error", "text")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.text = ""
        self.error: BaseException | None = None


class Turns:
    """The turns waiting for their answer, by number (the session names them in
    :class:`~rtagent._session.TurnDone`)."""

    def __init__(self) -> None:
        self._waiting: dict[int, Turn] = {}
        self._ids = itertools.count(1)

    def new(self) -> tuple[int, Turn]:
        turn = next(self._ids)
        waiter = self._waiting[turn] = Turn()
        return turn, waiter

    def forget(self, turn: int) -> None:
        self._waiting.pop(turn, None)

    def done(self, done: TurnDone) -> None:
        """The session answered these turns (or says why it could not)."""
        error = None
        if done.error is not None:
            d = done.error
            error = ServerError(d.message, type=d.type, code=d.code, param=d.param, event_id=d.event_id)
        for turn in done.turns:
            waiter = self._waiting.get(turn)
            if waiter is not None and not waiter.done.is_set():
                waiter.text, waiter.error = done.text, error
                waiter.done.set()

    def close(self, error: BaseException) -> None:
        """The session ended: every turn still waiting gets ``error``."""
        for waiter in self._waiting.values():
            if not waiter.done.is_set():
                waiter.error = error
                waiter.done.set()
