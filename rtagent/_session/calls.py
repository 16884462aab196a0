"""Tool calls, from a complete item to the one follow-up response of their round.

:class:`Calls` decides what happens to each call of a session: it runs once its item is
complete (a ``call_id`` runs once, however often it is seen), its output is posted when
it finishes, the round asks for exactly one ``response.create`` once its last output is
posted, an interruption applies each tool's policy, a background tool's result and a
running tool's progress wait for a moment when no response runs, and calls that another
process started before it died can be resumed (re-run, or answered with what is known).
Per-call state lives in :class:`~rtagent._session.rounds.ToolRounds`; the conversation
in :class:`~rtagent._session.mirror.ConversationMirror`.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable
from typing import Any

from .. import _events as ev
from .._tools import OnInterrupt
from .actions import Action, CancelCall, RunCall, ToolCall
from .gate import ResponseGate
from .mirror import ConversationMirror
from .rounds import Round, ToolRounds

__all__ = ["Calls"]

logger = logging.getLogger("rtagent.session")


class Calls:
    """The tool-call side of a session; every input returns the session's next actions.

    Args:
        out: the session's pending actions (appended to).
        new_item_id: makes a client item id.
        gate: the response gate (a closed round requests its follow-up there).
        rounds: per-call state.
        mirror: the conversation (whether a ``call_id`` was answered before).
        create_item: records and sends a client item.
        finish: ends application turns with their answer text.
        take: the session's actions so far (after the gate is pumped).
    """

    def __init__(
        self,
        out: list[Action],
        new_item_id: Callable[[], str],
        gate: ResponseGate,
        rounds: ToolRounds,
        mirror: ConversationMirror,
        *,
        create_item: Callable[[dict[str, Any]], None],
        finish: Callable[[Iterable[int], str], None],
        take: Callable[[], list[Action]],
    ) -> None:
        self._out = out
        self._new_item_id = new_item_id
        self._gate = gate
        self.rounds = rounds
        self._mirror = mirror
        self._create_item = create_item
        self._finish = finish
        self._take = take
        self.background: dict[str, OnInterrupt] = {}
        """Background calls still running after their interim output, with their policy."""
        self._late: list[dict[str, Any]] = []
        """Results of background tools, waiting for a moment when no response runs."""
        self._progress: tuple[str, str] | None = None
        self._resumed = itertools.count(1)

    # -- from the server -----------------------------------------------------------------

    def ready(self, item: ev.Item, response_id: str) -> None:
        """A ``function_call`` (or ``mcp_approval_request``) item is complete: run it once."""
        mcp = item.type == "mcp_approval_request"
        call_id = item.id if mcp else item.call_id
        if not call_id or self.rounds.is_pending(call_id):
            return  # a call_id runs once, however often it is seen
        rnd = self.rounds.get(response_id)
        if rnd is None:
            turns: set[int] = set()
            after_repeats = False
            active = self._gate.active
            if active is not None and active.id == response_id:
                # The round's follow-up response answers these turns now.
                turns, active.turns = active.turns, set()
                after_repeats = active.request is not None and active.request.after_repeats
            rnd = self.rounds.open(response_id, turns, after_repeats=after_repeats)
        if not mcp:
            self._mirror.remember(item)
        if self._mirror.answered(call_id):
            logger.info("call %s was answered before; it does not run again", call_id)
            return
        self.rounds.add(rnd, call_id, item.name or "")
        self._out.append(RunCall(ToolCall(
            call_id, item.name or "", item.arguments or "", item.id, response_id,
            kind="mcp_approval" if mcp else "function", server_label=item.server_label,
        )))

    def close_if_done(self, rnd: Round) -> None:
        """Close a round whose response is done and whose outputs are all posted."""
        if not self.rounds.closable(rnd):
            return
        self.rounds.close(rnd)
        interrupted = rnd.interrupted and not rnd.reply_after_interrupt
        if interrupted or (rnd.repeats_only and rnd.after_repeats):
            # No reply follows: what was said besides the calls is the answer.
            if rnd.turns:
                self._finish(rnd.turns, rnd.text)
        else:
            self._gate.request(None, rnd.turns, after_repeats=rnd.repeats_only)

    def interrupt(self) -> None:
        """The user barged in or the application cancelled: apply each call's policy."""
        self._out.extend(self.rounds.interrupt())
        self._out.extend(
            CancelCall(call_id) for call_id, policy in self.background.items() if policy == "cancel"
        )

    # -- from the tools ------------------------------------------------------------------

    def finished(self, call_id: str, output: str, *, background: bool = False) -> list[Action]:
        """Post a call's output; the round asks for its reply once it is complete.

        ``background``: the output is an interim one; the tool keeps running and its result
        comes with :meth:`background_done` (an interruption still applies its policy).
        """
        return self._take() if self._post(call_id, output, background=background) else []

    def approval_decided(
        self, request_id: str, approved: bool, reason: str | None = None
    ) -> list[Action]:
        """Answer a hosted MCP tool's ``mcp_approval_request`` (``mcp_approval_response``)."""
        rnd = self.rounds.finished(request_id)
        if rnd is None:
            return []
        item: dict[str, Any] = {
            "type": "mcp_approval_response", "id": self._new_item_id(),
            "approval_request_id": request_id, "approve": approved,
        }
        if reason:
            item["reason"] = reason
        self._create_item(item)
        self.close_if_done(rnd)
        return self._take()

    def background_done(self, call_id: str, name: str, output: str) -> list[Action]:
        """A background tool finished: its result joins the conversation and the model
        speaks about it, once no response is running (never racing one)."""
        self._late_result(call_id, name, output)
        return self._take()

    def _late_result(self, call_id: str, name: str, output: str) -> None:
        self.background.pop(call_id, None)
        text = f"The background task {name} (call {call_id}) finished. Its result: {output}"
        self._late.append({
            "type": "message", "role": "system", "id": self._new_item_id(),
            "content": [{"type": "input_text", "text": text}],
        })

    def progress(self, call_id: str, text: str) -> list[Action]:
        """Say how a running tool is going, out of band, once no response is talking
        (the latest report wins; none is said once the call has finished)."""
        self._progress = (call_id, text)
        return self._take()

    def deliver_late(self) -> None:
        """What waits for a moment when no response runs: background results, progress."""
        if self._late:
            for item in self._late:
                self._create_item(item)
            self._late.clear()
            self._gate.request()
        progress, self._progress = self._progress, None
        if progress is not None:
            call_id, text = progress
            if self.rounds.is_pending(call_id) or call_id in self.background:
                self._gate.request({
                    "conversation": "none", "input": [],
                    "instructions": f"Tell the user briefly, in your own words: {text}",
                })

    def _post(self, call_id: str, output: str, *, background: bool = False) -> bool:
        policy = self.rounds.policy_of(call_id)
        rnd = self.rounds.finished(call_id)
        if rnd is None:
            logger.debug("output for call %s ignored: not running", call_id)
            return False
        if background and policy is not None:
            self.background[call_id] = policy
        self._create_item({
            "type": "function_call_output", "id": self._new_item_id(),
            "call_id": call_id, "output": output,
        })
        self.close_if_done(rnd)
        return True

    # -- from another process ------------------------------------------------------------

    def resume(self, calls: Iterable[tuple[ToolCall, str | None]]) -> list[Action]:
        """Take over calls that a process which died had started, as one round.

        Each call comes with its output when it is known (it is posted as is) or None
        (the call runs here). A re-attached sideband replays nothing, so the model would
        otherwise wait for these outputs forever. Once every output is posted, one
        ``response.create`` follows, as for any round. A background call whose interim
        output was posted (``interim_posted``) joins no round: it runs again as a
        background call, or its known result comes as a late message.
        """
        rnd = self.rounds.open(f"resumed_{next(self._resumed)}", set(), after_repeats=False)
        rnd.response_done = True
        known: list[tuple[str, str]] = []
        for call, output in calls:
            call_id = call.call_id
            if self.rounds.is_pending(call_id) or call_id in self.background:
                continue
            if call.interim_posted:
                if output is None:
                    self.background[call_id] = self.rounds.policy(call.name)
                    self._out.append(RunCall(call))
                else:
                    self._late_result(call_id, call.name, output)
                continue
            if self._mirror.answered(call_id):
                continue
            self.rounds.add(rnd, call_id, call.name)
            if output is None:
                self._out.append(RunCall(call))
            else:
                known.append((call_id, output))
        if not rnd.pending:
            self.rounds.close(rnd)  # nothing to answer: no response is owed
            return self._take()
        for call_id, output in known:
            self._post(call_id, output)
        return self._take()
