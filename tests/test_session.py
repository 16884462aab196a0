"""Sans-I/O tests of the conversation state machine: events in, exact client events out."""

from __future__ import annotations

import json
from typing import Any

from conformance import assert_client_event

from rtagent import events as ev
from rtagent._session import Session


def feed(session: Session, *events: dict[str, Any]) -> None:
    for i, event in enumerate(events):
        event.setdefault("event_id", f"event_s{i}")
        session.receive(ev.parse_server_event(json.dumps(event)))


def sent(session: Session) -> list[dict[str, Any]]:
    """Drain the client events as wire dicts, each validated against the openai types."""
    out = [json.loads(ev.encode_client_event(e)) for e in session.data_to_send()]
    for event in out:
        assert_client_event(event)
    return out


def ready(**kwargs: Any) -> Session:
    s = Session({"type": "realtime", "instructions": "hi"}, id_prefix="t", **kwargs)
    s.resume()
    sent(s)
    s.start_queued()
    return s


def call_item(call_id: str, name: str = "echo", args: str = '{"text":"x"}', status: str = "completed") -> dict[str, Any]:
    return {"type": "function_call", "id": f"item_{call_id}", "call_id": call_id, "name": name,
            "arguments": args, "status": status}


def created(rid: str) -> dict[str, Any]:
    return {"type": "response.created", "response": {"id": rid, "status": "in_progress", "output": []}}


def done(rid: str, status: str = "completed", output: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"type": "response.done", "response": {"id": rid, "status": status, "output": output or []}}


def item_done(rid: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "response.output_item.done", "response_id": rid, "output_index": 0, "item": item}


def added(item_id: str, kind: str = "function_call_output") -> dict[str, Any]:
    return {"type": "conversation.item.added", "item": {"id": item_id, "type": kind}}


def test_first_connection_sends_config_then_nothing_until_asked() -> None:
    """resume() on a fresh session sends exactly the session.update with the config."""
    s = Session({"type": "realtime", "instructions": "hi"}, id_prefix="t")
    s.resume()
    assert sent(s) == [{"type": "session.update", "session": {"type": "realtime", "instructions": "hi"}}]


def test_user_text_then_single_response_create() -> None:
    """A user turn is one item create followed by one response.create."""
    s = ready()
    s.user_text("hello")
    s.request_response()
    out = sent(s)
    assert [e["type"] for e in out] == ["conversation.item.create", "response.create"]
    assert out[0]["item"]["content"] == [{"type": "input_text", "text": "hello"}]
    assert out[1] == {"type": "response.create", "event_id": out[1]["event_id"]}


def test_parallel_calls_get_one_response_create_after_all_outputs() -> None:
    """Two calls in one response: two outputs, then a single response.create, in one batch."""
    s = ready()
    s.request_response()
    sent(s)
    feed(s, created("r1"), item_done("r1", call_item("c1")), item_done("r1", call_item("c2")))
    calls = s.calls_to_run()
    assert [c.call_id for c in calls] == ["c1", "c2"]
    feed(s, done("r1", output=[call_item("c1"), call_item("c2")]))
    assert s.calls_to_run() == []  # response.done repeats the calls; they run once
    s.tool_finished("c2", "two")
    assert [e["type"] for e in sent(s)] == ["conversation.item.create"]
    s.tool_finished("c1", "one")
    out = sent(s)
    assert [e["type"] for e in out] == ["conversation.item.create", "response.create"]
    assert out[0]["item"]["call_id"] == "c1"
    assert out[0]["item"]["output"] == "one"
    assert s.idle is False


def test_output_before_response_done_waits_for_done() -> None:
    """A call that finishes before its response is done does not trigger response.create early."""
    s = ready()
    feed(s, created("r1"), item_done("r1", call_item("c1")))
    s.calls_to_run()
    s.tool_finished("c1", "out")
    assert [e["type"] for e in sent(s)] == ["conversation.item.create"]
    feed(s, done("r1"))
    assert [e["type"] for e in sent(s)] == ["response.create"]


def test_requests_queue_behind_active_response_and_merge() -> None:
    """Requests while a response is active wait for response.done and merge into one."""
    s = ready()
    feed(s, created("r_server"))  # e.g. VAD started a response
    s.user_text("a")
    s.request_response()
    s.user_text("b")
    s.request_response()
    assert [e["type"] for e in sent(s)] == ["conversation.item.create", "conversation.item.create"]
    feed(s, done("r_server"))
    assert [e["type"] for e in sent(s)] == ["response.create"]


def test_never_two_creates_in_flight() -> None:
    """A second request waits until the first response is created and done."""
    s = ready()
    s.request_response({"instructions": "one"})
    s.request_response({"instructions": "two"})
    first = [e for e in sent(s) if e["type"] == "response.create"]
    assert len(first) == 1
    feed(s, created("r1"))
    assert sent(s) == []
    feed(s, done("r1"))
    second = sent(s)
    assert second[0]["response"] == {"instructions": "two"}


def test_server_started_response_after_outputs_satisfies_the_round() -> None:
    """The race: the server starts a response after our outputs; our rejected create is not resent."""
    s = ready()
    feed(s, created("r1"), item_done("r1", call_item("c1")), done("r1"))
    s.calls_to_run()
    s.tool_finished("c1", "out")
    out = sent(s)
    output_id = out[0]["item"]["id"]
    create_id = out[1]["event_id"]
    feed(s, added(output_id), created("r_auto"))
    feed(s, {"type": "error", "error": {"type": "invalid_request_error",
                                        "code": "conversation_already_has_active_response",
                                        "message": "busy", "event_id": create_id}})
    feed(s, done("r_auto"))
    assert sent(s) == []
    assert s.idle


def test_server_response_before_outputs_requeues_our_create() -> None:
    """If the racing response started before our outputs were in, ours is sent after it ends."""
    s = ready()
    feed(s, created("r1"), item_done("r1", call_item("c1")), done("r1"))
    s.calls_to_run()
    s.tool_finished("c1", "out")
    out = sent(s)
    output_id, create_id = out[0]["item"]["id"], out[1]["event_id"]
    feed(s, created("r_vad"), added(output_id))
    feed(s, {"type": "error", "error": {"type": "invalid_request_error",
                                        "code": "conversation_already_has_active_response",
                                        "message": "busy", "event_id": create_id}})
    assert sent(s) == []
    feed(s, done("r_vad"))
    assert [e["type"] for e in sent(s)] == ["response.create"]


def test_duplicate_call_id_runs_once() -> None:
    """The same call_id in two items runs once and gets one output."""
    s = ready()
    dup = call_item("c1")
    dup2 = {**dup, "id": "item_other"}
    feed(s, created("r1"), item_done("r1", dup), item_done("r1", dup2), done("r1"))
    assert len(s.calls_to_run()) == 1
    s.tool_finished("c1", "x")
    s.tool_finished("c1", "x")
    out = sent(s)
    assert [e["type"] for e in out] == ["conversation.item.create", "response.create"]


def test_incomplete_call_in_cancelled_response_does_not_run() -> None:
    """arguments cut by a cancel (status incomplete) are never executed."""
    s = ready()
    feed(s, created("r1"), item_done("r1", call_item("c1", status="incomplete")), done("r1", "cancelled"))
    assert s.calls_to_run() == []
    assert s.idle


def test_interrupt_policies() -> None:
    """cancel -> cancelled, finish -> posted without reply, reply -> posted and replied."""
    policies = {"slow_cancel": "cancel", "slow_finish": "finish", "slow_reply": "reply"}
    for name, policy in policies.items():
        s = ready(interrupt_policy=lambda n: policies[n])  # type: ignore[arg-type,return-value]
        feed(s, created("r1"), item_done("r1", call_item("c1", name=name)), done("r1"))
        s.calls_to_run()
        s.interrupt(server_cancels=True)
        assert s.calls_to_cancel() == (["c1"] if policy == "cancel" else [])
        s.tool_finished("c1", "result")
        kinds = [e["type"] for e in sent(s)]
        expected = ["conversation.item.create"] + (["response.create"] if policy == "reply" else [])
        assert kinds == expected, (policy, kinds)


def test_interrupt_without_server_vad_sends_cancel() -> None:
    """An app-side interrupt cancels the active response by id."""
    s = ready()
    feed(s, created("r1"))
    s.interrupt(server_cancels=False)
    out = sent(s)
    assert len(out) == 1
    assert out[0] == {"type": "response.cancel", "event_id": out[0]["event_id"], "response_id": "r1"}


def test_refused_create_is_reported_and_gate_reopens() -> None:
    """A response.create refused for another reason is recorded and the next request can go."""
    s = ready()
    s.request_response({"max_output_tokens": 0}, turns={7})
    create_id = sent(s)[0]["event_id"]
    feed(s, {"type": "error", "error": {"type": "invalid_request_error", "code": "invalid_value",
                                        "message": "bad", "event_id": create_id}})
    [(turns, error)] = s.finished_turns()
    assert turns == {7} and error is not None and error.code == "invalid_value"
    s.request_response()
    assert [e["type"] for e in sent(s)] == ["response.create"]


def test_connection_lost_and_resume_replays_history_and_requests() -> None:
    """After a drop the new connection gets config, every item once, then the pending request."""
    s = ready()
    s.user_text("weather?")
    s.request_response()
    sent(s)
    assistant = {"type": "message", "id": "item_a1", "role": "assistant", "status": "completed",
                 "content": [{"type": "output_audio", "transcript": "Let me check."}]}
    feed(s, created("r1"), item_done("r1", assistant), item_done("r1", call_item("c1")))
    s.calls_to_run()
    cut = s.connection_lost()
    assert cut == ["a response in progress was cut (its tool calls carry on)"]
    s.tool_finished("c1", "sunny")  # finished while the link was down
    assert not s.connected
    report = s.resume()
    out = sent(s)
    assert [e["type"] for e in out] == ["session.update"] + ["conversation.item.create"] * 4
    replayed = [e["item"] for e in out[1:]]
    assert [i["type"] for i in replayed] == ["message", "message", "function_call", "function_call_output"]
    assert replayed[1]["content"] == [{"type": "output_text", "text": "Let me check."}]
    assert report.items_restored == 4 and report.outputs_restored == 1
    s.start_queued()
    assert [e["type"] for e in sent(s)] == ["response.create"]


def test_history_follows_server_order_by_previous_item_id() -> None:
    """A user item sent while the assistant streams is placed after the assistant item."""
    s = ready()
    u1 = s.user_text("one")
    s.request_response()
    sent(s)
    feed(s, {"type": "conversation.item.added", "previous_item_id": None,
             "item": {"id": u1, "type": "message", "role": "user", "content": []}}, created("r1"),
         {"type": "conversation.item.added", "previous_item_id": u1,
          "item": {"id": "asst", "type": "message", "role": "assistant", "content": []}})
    u2 = s.user_text("two")  # the server already holds `asst` before it
    order_before = list(s.history)
    feed(s, {"type": "conversation.item.added", "previous_item_id": "asst",
             "item": {"id": u2, "type": "message", "role": "user", "content": []}})
    assert order_before == [u1, "asst", u2]
    assert list(s.history) == [u1, "asst", u2]


def test_history_reorders_when_the_server_placed_an_item_earlier() -> None:
    """If the assistant item arrives after our next item was sent, previous_item_id fixes the order."""
    s = ready()
    u1 = s.user_text("one")
    u2 = s.user_text("two")
    feed(s, {"type": "conversation.item.added", "previous_item_id": u1,
             "item": {"id": "asst", "type": "message", "role": "assistant", "content": []}})
    assert list(s.history) == [u1, "asst", u2]
    feed(s, {"type": "conversation.item.added", "previous_item_id": "asst",
             "item": {"id": u2, "type": "message", "role": "user", "content": []}})
    assert list(s.history) == [u1, "asst", u2]


def test_unfinished_server_items_are_not_replayed() -> None:
    """An assistant item cut mid-stream is dropped on reconnect and reported, not replayed."""
    s = ready()
    s.user_text("hi")
    s.request_response()
    sent(s)
    feed(s, created("r1"), {"type": "conversation.item.added", "previous_item_id": None,
                            "item": {"id": "asst", "type": "message", "role": "assistant", "content": []}})
    cut = s.connection_lost()
    assert any("unfinished assistant item asst" in c for c in cut)
    s.resume()
    replayed = [e["item"]["id"] for e in sent(s) if e["type"] == "conversation.item.create"]
    assert "asst" not in replayed and len(replayed) == 1


def test_cancel_waiting_for_a_refused_request_does_not_hit_the_next_response() -> None:
    """A cancel pending on a refused response.create is dropped with it."""
    s = ready()
    s.request_response({"max_output_tokens": 0})
    create_id = sent(s)[0]["event_id"]
    s.cancel_response()
    feed(s, {"type": "error", "error": {"type": "invalid_request_error", "code": "invalid_value",
                                        "message": "bad", "event_id": create_id}})
    s.request_response()
    sent(s)
    feed(s, created("r2"))
    assert sent(s) == []


def test_transcript_arriving_before_item_done_is_kept_for_replay() -> None:
    """Input transcription may beat conversation.item.done; the transcript still replays."""
    s = ready()
    feed(s, {"type": "conversation.item.added", "previous_item_id": None,
             "item": {"id": "u_audio", "type": "message", "role": "user",
                      "content": [{"type": "input_audio"}]}},
         {"type": "conversation.item.input_audio_transcription.completed", "item_id": "u_audio",
          "content_index": 0, "transcript": "what time is it"},
         {"type": "conversation.item.done", "previous_item_id": None,
          "item": {"id": "u_audio", "type": "message", "role": "user", "status": "completed",
                   "content": [{"type": "input_audio"}]}})
    s.connection_lost()
    s.resume()
    items = [e["item"] for e in sent(s) if e["type"] == "conversation.item.create"]
    assert items == [{"type": "message", "id": "u_audio", "role": "user",
                      "content": [{"type": "input_text", "text": "what time is it"}]}]


def test_out_of_band_deltas_do_not_touch_conversation_state() -> None:
    """Audio and text deltas of an out-of-band response leave the barge-in state alone."""
    s = ready()
    s.request_response({"conversation": "none", "metadata": {"rtagent_oob": "1"}})
    sent(s)
    feed(s, {"type": "response.created", "response": {"id": "oob", "status": "in_progress",
                                                      "metadata": {"rtagent_oob": "1"}, "output": []}},
         {"type": "response.output_audio.delta", "response_id": "oob", "item_id": "x",
          "output_index": 0, "content_index": 0, "delta": "AAAA"})
    assert s.current_audio_item is None
    assert s.idle


def test_turns_follow_their_request_through_tool_rounds() -> None:
    """A turn finishes with the response after its tool round, not with an earlier one."""
    s = ready()
    s.user_text("a")
    s.request_response(turns={1})
    sent(s)
    s.user_text("b")
    s.request_response(turns={2})  # queued behind a's response
    assert [e["type"] for e in sent(s)] == ["conversation.item.create"]
    feed(s, created("r1"), item_done("r1", call_item("c1")), done("r1"))
    assert s.finished_turns() == []  # turn 1 waits for its round's reply
    assert [e["type"] for e in sent(s)] == ["response.create"]  # b's request goes next
    s.calls_to_run()
    s.tool_finished("c1", "out")  # round 1 closes; its follow-up waits behind b's response
    assert [e["type"] for e in sent(s)] == ["conversation.item.create"]
    feed(s, created("r2"), done("r2"))
    assert s.finished_turns() == [({2}, None)]
    assert [e["type"] for e in sent(s)] == ["response.create"]
    feed(s, created("r3"), done("r3"))
    assert s.finished_turns() == [({1}, None)]


def test_turn_of_an_interrupted_round_finishes_without_a_reply() -> None:
    """Interrupted with on_interrupt='finish': the turn ends once the output is posted."""
    s = ready()
    s.request_response(turns={5})
    sent(s)
    feed(s, created("r1"), item_done("r1", call_item("c1")), done("r1"))
    s.calls_to_run()
    s.interrupt(server_cancels=True)
    s.tool_finished("c1", "late result")
    assert s.finished_turns() == [({5}, None)]
    assert [e["type"] for e in sent(s)] == ["conversation.item.create"]


def test_missing_previous_item_id_keeps_the_order() -> None:
    """An acknowledgement without previous_item_id never moves an item to the front."""
    s = ready()
    s.user_text("hi")
    feed(s, created("r1"), item_done("r1", call_item("c1")), done("r1"))
    s.calls_to_run()
    s.tool_finished("c1", "out")
    output_id = [e for e in sent(s) if e["type"] == "conversation.item.create"][-1]["item"]["id"]
    feed(s, {"type": "conversation.item.added", "item": {"id": output_id, "type": "function_call_output"}})
    assert [i["type"] for i in s.history.values()] == ["message", "function_call", "function_call_output"]
