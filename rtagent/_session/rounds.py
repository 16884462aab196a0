"""Tool rounds: the calls of one response, until every output is posted.

A round is the set of ``function_call`` items of one response. Its calls run as soon as
each item is complete; when the response is done and every output is posted, the round
asks for exactly one follow-up response (never one per call), which answers the turns
the round carried. This module is the only owner of per-call state, and it forgets a
call as soon as its output is posted: a session of 100,000 calls keeps nothing per call
here (whether a ``call_id`` was answered before is the conversation mirror's business).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from .._tools import OnInterrupt
from .actions import CancelCall

__all__ = ["Round", "ToolRounds"]


@dataclass(slots=True, eq=False)
class Round:
    """The tool calls of one response and what became of them."""

    response_id: str
    turns: set[int] = field(default_factory=set)
    """The application turns that end only with this round's follow-up."""
    pending: dict[str, OnInterrupt] = field(default_factory=dict)
    """Calls still running (or waiting for their output), with their interrupt policy."""
    text: str = ""
    """What the response said besides its calls (the answer if no reply follows)."""
    response_done: bool = False
    interrupted: bool = False
    reply_after_interrupt: bool = False
    repeats_only: bool = True
    """Every call in it had been answered before (none of them runs)."""
    after_repeats: bool = False
    """Its response followed a round of repeats only (ends the turn if it repeats again)."""


class ToolRounds:
    """Rounds by response id, and the round of each pending call.

    Args:
        policy: what a tool does on interruption, by tool name.
    """

    def __init__(self, policy: Callable[[str], OnInterrupt]) -> None:
        self._policy = policy
        self._rounds: dict[str, Round] = {}
        self._round_of: dict[str, Round] = {}

    def __bool__(self) -> bool:
        return bool(self._rounds)

    def __contains__(self, response_id: object) -> bool:
        return response_id in self._rounds

    def __iter__(self) -> Iterator[Round]:
        return iter(list(self._rounds.values()))

    def get(self, response_id: str) -> Round | None:
        return self._rounds.get(response_id)

    def is_pending(self, call_id: str) -> bool:
        return call_id in self._round_of

    def policy_of(self, call_id: str) -> OnInterrupt | None:
        rnd = self._round_of.get(call_id)
        return rnd.pending.get(call_id) if rnd is not None else None

    def open(self, response_id: str, turns: set[int], *, after_repeats: bool) -> Round:
        """The round of ``response_id``, created with these turns if it is new."""
        rnd = self._rounds.get(response_id)
        if rnd is None:
            rnd = self._rounds[response_id] = Round(
                response_id, turns, after_repeats=after_repeats
            )
        return rnd

    def policy(self, name: str) -> OnInterrupt:
        """What the tool ``name`` does when interrupted."""
        return self._policy(name)

    def add(self, rnd: Round, call_id: str, name: str) -> None:
        """A new call of ``rnd`` starts running."""
        rnd.pending[call_id] = self._policy(name)
        rnd.repeats_only = False
        self._round_of[call_id] = rnd

    def finished(self, call_id: str) -> Round | None:
        """The call's output is posted; returns its round (None if not pending)."""
        rnd = self._round_of.pop(call_id, None)
        if rnd is not None:
            rnd.pending.pop(call_id, None)
        return rnd

    def interrupt(self) -> list[CancelCall]:
        """The user barged in or the app cancelled: apply each running call's policy."""
        cancels: list[CancelCall] = []
        for rnd in self._rounds.values():
            rnd.interrupted = True
            for call_id, policy in rnd.pending.items():
                if policy == "cancel":
                    cancels.append(CancelCall(call_id))
                elif policy == "reply":
                    rnd.reply_after_interrupt = True
        return cancels

    def closable(self, rnd: Round) -> bool:
        return rnd.response_done and not rnd.pending

    def close(self, rnd: Round) -> None:
        self._rounds.pop(rnd.response_id, None)

    def connection_lost(self) -> list[Round]:
        """Responses cut by the drop never get their ``response.done``: mark them done.

        Returns the rounds that can close now (no call pending).
        """
        for rnd in self._rounds.values():
            rnd.response_done = True
        return [rnd for rnd in self._rounds.values() if not rnd.pending]
