"""Sans-I/O tests of the session state machine: events in, exact actions out."""

from __future__ import annotations

from typing import Any

from sansio import (
    Feed,
    added,
    call_item,
    created,
    done,
    error,
    item_done,
    key_of,
    message,
    session_created,
)

from rtagent import ConnectionLost, Reconnected, ServerError
from rtagent._session import EndConnection, Ready, Send, ToolCall
from rtagent._session.config import merge_config, server_cancels_on_speech

RACE = "conversation_already_has_active_response"


def ready(**options: Any) -> Feed:
    return Feed(**options).open()


def ask(f: Feed, text: str, turn: int) -> dict[str, Any]:
    """Add a user message, request a response for ``turn``, and let the server acknowledge
    the message; returns the response.create."""
    f.apply(f.session.add_item({"type": "message", "role": "user",
                                "content": [{"type": "input_text", "text": text}]}))
    f.apply(f.session.request_response(turns={turn}))
    out = f.sent()
    item = next(e["item"] for e in out if e["type"] == "conversation.item.create")
    f.feed(added(item["id"], "message", role="user", content=item["content"]))
    return [e for e in out if e["type"] == "response.create"][-1]


# -- handshake --------------------------------------------------------------------------------


def test_handshake_configures_after_session_created_then_is_ready() -> None:
    """session.created -> session.update with the full config -> session.updated -> Ready."""
    f = Feed()
    f.apply(f.session.connection_opened())
    assert f.sent() == []
    f.feed(session_created())
    [update] = f.sent()
    assert update["type"] == "session.update" and update["session"] == {"type": "realtime", "instructions": "hi"}
    assert f.take(Ready) == []
    f.feed({"type": "session.updated", "session": {"type": "realtime"}})
    assert len(f.take(Ready)) == 1


def test_sideband_configures_without_session_created() -> None:
    """A sideband connection sends session.update at once and is ready at session.updated."""
    f = Feed(sideband=True)
    f.apply(f.session.connection_opened())
    assert f.sent_types() == ["session.update"]
    f.feed({"type": "session.updated", "session": {"type": "realtime"}})
    assert len(f.take(Ready)) == 1


def test_nothing_is_requested_until_ready() -> None:
    """A request made while connecting waits for session.updated."""
    f = Feed()
    f.apply(f.session.connection_opened())
    f.apply(f.session.request_response(turns={1}))
    f.feed(session_created())
    assert f.sent_types() == ["session.update"]
    f.feed({"type": "session.updated", "session": {"type": "realtime"}})
    assert f.sent_types() == ["response.create"]


def test_unsolicited_error_during_handshake_is_not_fatal() -> None:
    """rate_limit_exceeded without an event_id right after session.created ends nothing."""
    f = Feed()
    f.apply(f.session.connection_opened())
    f.feed(session_created(), error("rate_limit_exceeded"),
           {"type": "session.updated", "session": {"type": "realtime"}})
    assert f.ends() == [] and len(f.take(Ready)) == 1


def test_refused_config_ends_the_connection_for_good() -> None:
    """An error naming our session.update while configuring is fatal, with the server's words."""
    f = Feed()
    f.apply(f.session.connection_opened())
    f.feed(session_created())
    update_id = f.sent()[0]["event_id"]
    f.feed(error("invalid_value", update_id, "bad voice"))
    [end] = f.ends()
    assert end.kind == "fatal" and isinstance(end.error, ServerError) and end.error.code == "invalid_value"


def test_unsolicited_error_mid_response_does_not_end_the_turn() -> None:
    """server_error with no event_id in the middle of a response leaves the turn running."""
    f = ready()
    key = key_of(ask(f, "hi", 1))
    f.feed(created("r1", key), error("server_error"))
    assert f.turns() == [] and f.ends() == []
    f.feed(done("r1", output=[message("m1", "hello")], key=key))
    assert f.turns() == [({1}, "hello", None)]


# -- the response gate ------------------------------------------------------------------------


def test_user_text_then_single_response_create_with_its_key() -> None:
    """A user turn is one item create followed by one response.create carrying its key."""
    f = ready()
    f.apply(f.session.add_item({"type": "message", "role": "user",
                                "content": [{"type": "input_text", "text": "hello"}]}))
    f.apply(f.session.request_response())
    out = f.sent()
    assert [e["type"] for e in out] == ["conversation.item.create", "response.create"]
    assert out[0]["item"]["content"] == [{"type": "input_text", "text": "hello"}]
    assert out[1]["response"] == {"metadata": {"rtagent_request": "r1"}}


def test_parallel_calls_get_one_response_create_after_all_outputs() -> None:
    """Two calls in one response: two outputs, then a single response.create."""
    f = ready()
    key = key_of(ask(f, "go", 1))
    f.feed(created("r1", key), item_done("r1", call_item("c1")), item_done("r1", call_item("c2")))
    assert [c.call_id for c in f.calls()] == ["c1", "c2"]
    f.feed(done("r1", output=[call_item("c1"), call_item("c2")], key=key))
    assert f.calls() == []  # response.done repeats the calls; they run once
    f.apply(f.session.calls.finished("c2", "two"))
    assert f.sent_types() == ["conversation.item.create"]
    f.apply(f.session.calls.finished("c1", "one"))
    out = f.sent()
    assert [e["type"] for e in out] == ["conversation.item.create", "response.create"]
    assert out[0]["item"]["call_id"] == "c1" and out[0]["item"]["output"] == "one"
    assert not f.session.idle


def test_output_before_response_done_waits_for_done() -> None:
    """A call that finishes before its response is done does not trigger response.create early."""
    f = ready()
    key = key_of(ask(f, "go", 1))
    f.feed(created("r1", key), item_done("r1", call_item("c1")))
    f.calls()
    f.apply(f.session.calls.finished("c1", "out"))
    assert f.sent_types() == ["conversation.item.create"]
    f.feed(done("r1", key=key))
    assert f.sent_types() == ["response.create"]


def test_requests_queue_behind_active_response_and_merge() -> None:
    """Requests while a server response is active wait for response.done and merge into one."""
    f = ready()
    f.feed(created("r_server"))  # e.g. VAD started a response
    for text in ("a", "b"):
        f.apply(f.session.add_item({"type": "message", "role": "user",
                                    "content": [{"type": "input_text", "text": text}]}))
        f.apply(f.session.request_response())
    assert f.sent_types() == ["conversation.item.create", "conversation.item.create"]
    f.feed(done("r_server"))
    assert f.sent_types() == ["response.create"]


def test_never_two_creates_in_flight() -> None:
    """A second request waits until the first response is created and done."""
    f = ready()
    f.apply(f.session.request_response({"instructions": "one"}))
    f.apply(f.session.request_response({"instructions": "two"}))
    [first] = f.sent()
    f.feed(created("r1", key_of(first)))
    assert f.sent() == []
    f.feed(done("r1", key=key_of(first)))
    [second] = f.sent()
    assert second["response"] == {"instructions": "two", "metadata": {"rtagent_request": "r2"}}


def test_server_started_response_after_outputs_satisfies_the_round() -> None:
    """The race: the server starts a response after our outputs; our refused create is not resent."""
    f = ready()
    key = key_of(ask(f, "go", 1))
    f.feed(created("r1", key), item_done("r1", call_item("c1")), done("r1", key=key))
    f.calls()
    f.apply(f.session.calls.finished("c1", "out"))
    out = f.sent()
    output_id, create_id = out[0]["item"]["id"], out[1]["event_id"]
    f.feed(added(output_id), created("r_auto"), error(RACE, create_id))
    f.feed(done("r_auto", output=[message("m", "from the server")]))
    assert f.sent() == []
    assert f.turns() == [({1}, "from the server", None)]
    assert f.session.idle


def test_server_response_before_outputs_requeues_our_create() -> None:
    """If the racing response started before our outputs were in, ours is sent after it ends."""
    f = ready()
    key = key_of(ask(f, "go", 1))
    f.feed(created("r1", key), item_done("r1", call_item("c1")), done("r1", key=key))
    f.calls()
    f.apply(f.session.calls.finished("c1", "out"))
    out = f.sent()
    output_id, create_id = out[0]["item"]["id"], out[1]["event_id"]
    f.feed(created("r_vad"), added(output_id), error(RACE, create_id))
    assert f.sent() == []
    f.feed(done("r_vad", output=[message("m", "vad answer")]))
    [again] = f.sent()
    assert f.turns() == []  # the VAD response did not answer our turn
    f.feed(created("r2", key_of(again)), done("r2", output=[message("m2", "ours")], key=key_of(again)))
    assert f.turns() == [({1}, "ours", None)]


def test_honoured_create_after_a_server_response_is_attributed_by_its_key() -> None:
    """A server response crossing our create, then ours honoured too: each answer to its own."""
    f = ready()
    key = key_of(ask(f, "zero", 0))
    f.feed(created("r0", key), done("r0", output=[message("m", "zero")], key=key))
    assert f.turns() == [({0}, "zero", None)]
    key = key_of(ask(f, "first", 1))
    f.feed(created("r_vad"), done("r_vad", output=[message("m0", "previous answer")]))
    assert f.turns() == []
    f.feed(created("r1", key), done("r1", output=[message("m1", "first answer")], key=key))
    assert f.turns() == [({1}, "first answer", None)]


def test_a_server_that_echoes_no_keys_is_served_by_timing() -> None:
    """Without metadata echoes, the response after our create is ours, unless it is refused."""
    f = ready()
    ask(f, "one", 1)
    f.feed(created("r1"), done("r1", output=[message("m1", "one")]))
    assert f.turns() == [({1}, "one", None)]
    f.apply(f.session.add_item({"type": "message", "role": "user", "content": []}))
    f.apply(f.session.request_response(turns={2}))
    create = f.sent()[-1]
    f.feed(created("r_vad"), error(RACE, create["event_id"]))
    f.feed(done("r_vad", output=[message("m", "the server's")]))
    assert f.turns() == []  # started before our item was in: our request goes again
    [again] = f.sent()
    f.feed(created("r2"), done("r2", output=[message("m2", "two")]))
    assert again["type"] == "response.create" and f.turns() == [({2}, "two", None)]


def test_refused_create_is_reported_and_gate_reopens() -> None:
    """A response.create refused for another reason fails its turns and the next request goes."""
    f = ready()
    f.apply(f.session.request_response({"max_output_tokens": 0}, turns={7}))
    create_id = f.sent()[0]["event_id"]
    f.feed(error("invalid_value", create_id, "bad"))
    assert f.turns() == [({7}, "", "invalid_value")]
    f.apply(f.session.request_response())
    assert f.sent_types() == ["response.create"]


def test_cancel_waiting_for_a_refused_request_does_not_hit_the_next_response() -> None:
    """A cancel pending on a refused response.create is dropped with it."""
    f = ready()
    f.apply(f.session.request_response({"max_output_tokens": 0}))
    create_id = f.sent()[0]["event_id"]
    f.apply(f.session.cancel())
    f.feed(error("invalid_value", create_id))
    f.apply(f.session.request_response())
    [create] = f.sent()
    f.feed(created("r2", key_of(create)))
    assert f.sent() == []


def test_cancel_before_the_response_starts_cancels_it_when_it_does() -> None:
    """cancel() while our create is in flight sends response.cancel at its response.created."""
    f = ready()
    f.apply(f.session.request_response())
    [create] = f.sent()
    f.apply(f.session.cancel())
    assert f.sent() == []
    f.feed(created("r1", key_of(create)))
    [cancel] = f.sent()
    assert cancel["type"] == "response.cancel" and cancel["response_id"] == "r1"


def test_out_of_band_requests_skip_the_gate_and_the_conversation() -> None:
    """conversation="none" goes out even while a response is active, and leaves history alone."""
    f = ready()
    f.feed(created("r_server"))
    f.apply(f.session.request_response({"conversation": "none", "input": []}))
    [oob] = f.sent()
    assert oob["response"]["conversation"] == "none"
    f.feed(created("oob", key_of(oob)),
           {"type": "response.output_audio.delta", "response_id": "oob", "item_id": "x",
            "output_index": 0, "content_index": 0, "delta": "AAAA"},
           item_done("oob", message("x", "classified")), done("oob", key=key_of(oob)))
    assert f.session.history == []
    assert f.session.mirror.audio_item is None


# -- tool rounds ------------------------------------------------------------------------------


def test_duplicate_call_id_in_one_response_runs_once() -> None:
    """The same call_id in two items of one response runs once and gets one output."""
    f = ready()
    key = key_of(ask(f, "go", 1))
    f.feed(created("r1", key), item_done("r1", call_item("c1")),
           item_done("r1", {**call_item("c1"), "id": "item_other"}), done("r1", key=key))
    assert len(f.calls()) == 1
    f.apply(f.session.calls.finished("c1", "x"))
    f.apply(f.session.calls.finished("c1", "x"))
    assert f.sent_types() == ["conversation.item.create", "response.create"]


def test_a_call_id_answered_before_is_not_run_and_the_turn_gets_the_answer() -> None:
    """A later response reusing an answered call_id: no run, no second output, the model answers."""
    f = ready()
    key = key_of(ask(f, "go", 1))
    f.feed(created("r1", key), item_done("r1", call_item("c1")), done("r1", key=key))
    f.calls()
    f.apply(f.session.calls.finished("c1", "out"))
    [_, follow] = f.sent()
    f.feed(created("r2", key_of(follow)),
           item_done("r2", {**call_item("c1"), "id": "item_again"}), done("r2", key=key_of(follow)))
    assert f.calls() == []
    [again] = f.sent()
    assert again["type"] == "response.create"  # no second output, but the model gets to answer
    f.feed(created("r3", key_of(again)), done("r3", output=[message("m", "the answer")], key=key_of(again)))
    assert f.turns() == [({1}, "the answer", None)]


def test_repeated_calls_twice_in_a_row_end_the_turn() -> None:
    """A model that keeps repeating an answered call gets one more chance, then the turn ends."""
    f = ready()
    key = key_of(ask(f, "go", 1))
    f.feed(created("r1", key), item_done("r1", call_item("c1")), done("r1", key=key))
    f.calls()
    f.apply(f.session.calls.finished("c1", "out"))
    create = f.sent()[-1]
    for rid in ("r2", "r3"):
        k = key_of(create)
        f.feed(created(rid, k), item_done(rid, {**call_item("c1"), "id": f"i_{rid}"}), done(rid, key=k))
        out = f.sent()
        if out:
            create = out[-1]
    assert f.turns() == [({1}, "", None)]
    assert f.session.idle


def test_incomplete_call_in_cancelled_response_does_not_run() -> None:
    """Arguments cut by a cancel (status incomplete) are never executed."""
    f = ready()
    f.feed(created("r1"), item_done("r1", call_item("c1", status="incomplete")), done("r1", "cancelled"))
    assert f.calls() == []
    assert f.session.idle


def test_interrupt_policies() -> None:
    """cancel -> cancelled, finish -> posted without reply, reply -> posted and replied."""
    policies = {"slow_cancel": "cancel", "slow_finish": "finish", "slow_reply": "reply"}
    for name, policy in policies.items():
        f = ready(interrupt_policy=lambda n: policies[n])
        f.feed(created("r1"), item_done("r1", call_item("c1", name=name)), done("r1"))
        f.calls()
        f.feed({"type": "input_audio_buffer.speech_started", "item_id": "u", "audio_start_ms": 0})
        assert f.cancels() == (["c1"] if policy == "cancel" else [])
        f.apply(f.session.calls.finished("c1", "result"))
        expected = ["conversation.item.create"] + (["response.create"] if policy == "reply" else [])
        assert f.sent_types() == expected, policy


def test_app_cancel_sends_response_cancel_by_id() -> None:
    """An app-side interrupt cancels the active response by id."""
    f = ready()
    f.feed(created("r1"))
    f.apply(f.session.cancel())
    [cancel] = f.sent()
    assert cancel["type"] == "response.cancel" and cancel["response_id"] == "r1"


def test_speech_started_leaves_the_cancel_to_server_vad_when_it_interrupts() -> None:
    """With interrupt_response (the default) no response.cancel is sent on speech_started."""
    f = ready()
    f.feed(created("r1"), {"type": "input_audio_buffer.speech_started", "item_id": "u"})
    assert f.sent() == []
    g = Feed({"type": "realtime", "audio": {"input": {"turn_detection": {
        "type": "server_vad", "interrupt_response": False}}}}).open()
    g.feed(created("r1"), {"type": "input_audio_buffer.speech_started", "item_id": "u"})
    assert g.sent_types() == ["response.cancel"]


def test_barge_in_truncates_at_the_played_position() -> None:
    """speech_started after audio was received truncates at what was reported as played."""
    f = ready()
    f.feed(created("r1"))
    delta = "A" * 6400  # 4,800 bytes of PCM16: 100 ms
    f.feed({"type": "response.output_audio.delta", "response_id": "r1", "item_id": "a1",
            "output_index": 0, "content_index": 0, "delta": delta}, done("r1"))
    f.session.mirror.report_playback("a1", 40)
    f.feed({"type": "input_audio_buffer.speech_started", "item_id": "u"})
    [truncate] = f.sent()
    assert truncate["type"] == "conversation.item.truncate"
    assert (truncate["item_id"], truncate["audio_end_ms"]) == ("a1", 40)


def test_turns_follow_their_request_through_tool_rounds() -> None:
    """A turn finishes with the response after its tool round, not with an earlier one."""
    f = ready()
    k1 = key_of(ask(f, "a", 1))
    f.apply(f.session.add_item({"type": "message", "role": "user",
                                "content": [{"type": "input_text", "text": "b"}]}))
    f.apply(f.session.request_response(turns={2}))  # queued behind a's response
    assert f.sent_types() == ["conversation.item.create"]
    f.feed(created("r1", k1), item_done("r1", call_item("c1")), done("r1", key=k1))
    assert f.turns() == []  # turn 1 waits for its round's reply
    [b_create] = f.sent()  # b's request goes next
    f.calls()
    f.apply(f.session.calls.finished("c1", "out"))  # round 1 closes; its follow-up waits behind b
    assert f.sent_types() == ["conversation.item.create"]
    f.feed(created("r2", key_of(b_create)), done("r2", output=[message("m2", "B")], key=key_of(b_create)))
    assert f.turns() == [({2}, "B", None)]
    [follow] = f.sent()
    f.feed(created("r3", key_of(follow)), done("r3", output=[message("m3", "A")], key=key_of(follow)))
    assert f.turns() == [({1}, "A", None)]


def test_turn_of_an_interrupted_round_finishes_with_what_was_said() -> None:
    """Interrupted with on_interrupt='finish': the turn ends once the output is posted."""
    f = ready()
    key = key_of(ask(f, "go", 5))
    f.feed(created("r1", key), item_done("r1", message("m1", "Let me look.")),
           item_done("r1", call_item("c1")), done("r1", output=[message("m1", "Let me look."),
                                                               call_item("c1")], key=key))
    f.calls()
    f.apply(f.session.cancel())
    f.apply(f.session.calls.finished("c1", "late result"))
    assert f.turns() == [({5}, "Let me look.", None)]
    assert f.sent_types() == ["conversation.item.create"]


def test_the_final_answer_phase_is_the_answer() -> None:
    """gpt-realtime-2.x: a commentary preamble is not the answer when a final answer exists."""
    f = ready()
    key = key_of(ask(f, "hi", 1))
    f.feed(created("r1", key), done("r1", output=[message("m1", "Checking. ", "commentary"),
                                                   message("m2", "It is 12 degrees.", "final_answer")],
                                    key=key))
    assert f.turns() == [({1}, "It is 12 degrees.", None)]


def test_preamble_and_call_in_one_response_run_the_call() -> None:
    """A spoken preamble still streaming when the call opens: the call runs, the turn continues."""
    f = ready()
    key = key_of(ask(f, "weather?", 1))
    f.feed(created("r1", key),
           added("m1", "message", role="assistant", content=[]),
           added("item_c1", "function_call", call_id="c1", name="echo", arguments=""),
           item_done("r1", message("m1", "I'll check.", "commentary")),
           item_done("r1", call_item("c1")),
           done("r1", output=[message("m1", "I'll check.", "commentary"), call_item("c1")], key=key))
    assert [c.call_id for c in f.calls()] == ["c1"]
    f.apply(f.session.calls.finished("c1", "12 degrees"))
    [_, follow] = f.sent()
    f.feed(created("r2", key_of(follow)),
           done("r2", output=[message("m2", "It is 12 degrees.", "final_answer")], key=key_of(follow)))
    assert f.turns() == [({1}, "It is 12 degrees.", None)]


def test_failed_response_fails_its_turn_with_the_servers_error() -> None:
    """status failed carries status_details.error to the turn; a malformed error is generic."""
    f = ready()
    key = key_of(ask(f, "hi", 1))
    f.feed(created("r1", key), done("r1", "failed", key=key, status_details={
        "type": "failed", "error": {"type": "server_error", "code": "boom", "message": "no"}}))
    assert f.turns() == [({1}, "", "boom")]
    key = key_of(ask(f, "again", 2))
    f.feed(created("r2", key), done("r2", "failed", key=key, status_details={"error": "not an object"}))
    [(turns, _, code)] = f.turns()
    assert turns == {2} and code is None


# -- connections, replay, rollover ------------------------------------------------------------


def test_connection_lost_and_resume_replays_history_and_requests() -> None:
    """After a drop the new connection gets config, every item once, then the pending request."""
    f = ready()
    key = key_of(ask(f, "weather?", 1))
    assistant = {"type": "message", "id": "item_a1", "role": "assistant", "status": "completed",
                 "content": [{"type": "output_audio", "transcript": "Let me check."}]}
    f.feed(created("r1", key), item_done("r1", assistant), item_done("r1", call_item("c1")))
    f.calls()
    f.apply(f.session.connection_lost("reset"))
    [lost] = f.notices()
    assert isinstance(lost, ConnectionLost)
    assert lost.cut_short == ("a response in progress was cut (its tool calls carry on)",)
    f.apply(f.session.calls.finished("c1", "sunny"))  # finished while the link was down
    assert f.sent() == []
    f.apply(f.session.connection_opened())
    f.feed(session_created())
    out = f.sent()
    assert [e["type"] for e in out] == ["session.update"] + ["conversation.item.create"] * 4
    replayed = [e["item"] for e in out[1:]]
    assert [i["type"] for i in replayed] == ["message", "message", "function_call", "function_call_output"]
    assert replayed[1]["content"] == [{"type": "output_text", "text": "Let me check."}]
    f.feed({"type": "session.updated", "session": {"type": "realtime"}})
    [notice] = f.notices()
    assert isinstance(notice, Reconnected)
    assert (notice.items_restored, notice.outputs_restored, notice.planned) == (4, 1, False)
    assert f.sent_types() == ["response.create"]


def test_unfinished_server_items_are_not_replayed() -> None:
    """An assistant item cut mid-stream is dropped on reconnect and reported, not replayed."""
    f = ready()
    ask(f, "hi", 1)
    f.feed(created("r1"), added("asst", "message", role="assistant", content=[]))
    f.apply(f.session.connection_lost("reset"))
    [lost] = f.notices()
    assert any("unfinished assistant item asst" in c for c in lost.cut_short)
    f.apply(f.session.connection_opened())
    f.feed(session_created())
    replayed = [e["item"]["id"] for e in f.sent() if e["type"] == "conversation.item.create"]
    assert "asst" not in replayed and len(replayed) == 1


def test_history_follows_server_order_by_previous_item_id() -> None:
    """A user item sent while the assistant streams is placed after the assistant item."""
    f = ready()
    f.apply(f.session.add_item({"id": "u1", "type": "message", "role": "user", "content": []}))
    f.feed(added("u1", "message", role="user", content=[]), created("r1"),
           added("asst", "message", previous="u1", role="assistant", content=[]))
    f.apply(f.session.add_item({"id": "u2", "type": "message", "role": "user", "content": []}))
    f.feed(added("u2", "message", previous="asst", role="user", content=[]))
    assert [i["id"] for i in f.session.history] == ["u1", "asst", "u2"]


def test_history_reorders_when_the_server_placed_an_item_earlier() -> None:
    """If the assistant item arrives after our next item was sent, previous_item_id fixes the order."""
    f = ready()
    for item_id in ("u1", "u2"):
        f.apply(f.session.add_item({"id": item_id, "type": "message", "role": "user", "content": []}))
    f.feed(added("asst", "message", previous="u1", role="assistant", content=[]))
    assert [i["id"] for i in f.session.history] == ["u1", "asst", "u2"]
    f.feed(added("u2", "message", previous="asst", role="user", content=[]))
    assert [i["id"] for i in f.session.history] == ["u1", "asst", "u2"]


def test_missing_previous_item_id_keeps_the_order() -> None:
    """An acknowledgement without previous_item_id never moves an item to the front."""
    f = ready()
    key = key_of(ask(f, "hi", 1))
    f.feed(created("r1", key), item_done("r1", call_item("c1")), done("r1", key=key))
    f.calls()
    f.apply(f.session.calls.finished("c1", "out"))
    output_id = [e for e in f.sent() if e["type"] == "conversation.item.create"][-1]["item"]["id"]
    f.feed(added(output_id))
    assert [i["type"] for i in f.session.history] == ["message", "function_call", "function_call_output"]


def test_transcript_arriving_before_item_done_is_kept_for_replay() -> None:
    """Input transcription may beat conversation.item.done; the transcript still replays."""
    f = ready()
    f.feed(added("u_audio", "message", role="user", content=[{"type": "input_audio"}]),
           {"type": "conversation.item.input_audio_transcription.completed", "item_id": "u_audio",
            "content_index": 0, "transcript": "what time is it"},
           {"type": "conversation.item.done", "previous_item_id": None,
            "item": {"id": "u_audio", "type": "message", "role": "user", "status": "completed",
                     "content": [{"type": "input_audio"}]}})
    f.apply(f.session.connection_lost("reset"))
    f.apply(f.session.connection_opened())
    f.feed(session_created())
    items = [e["item"] for e in f.sent() if e["type"] == "conversation.item.create"]
    assert items == [{"type": "message", "id": "u_audio", "role": "user",
                      "content": [{"type": "input_text", "text": "what time is it"}]}]


def test_session_expired_ends_the_connection_to_carry_on() -> None:
    """The server's session_expired error ends this connection; the session goes on."""
    f = ready()
    f.feed(error("session_expired", message="Your session hit the maximum duration of 60 minutes."))
    [end] = f.ends()
    assert end.kind == "expired"


def test_rollover_deadline_comes_from_expires_at_on_the_injected_clock() -> None:
    """expires_at 600 s ahead with a 3,300 s limit: roll over 60 s before it."""
    now = [1000.0]
    f = Feed(clock=lambda: now[0])
    f.open(session={"expires_at": 1600})
    assert f.session.life.deadline == 1540.0
    assert f.session.deadline_reached() == []  # not yet
    now[0] = 1541.0
    f.apply(f.session.deadline_reached())
    [end] = f.ends()
    assert end.kind == "rollover"


def test_an_expires_at_already_past_never_drives_rollovers() -> None:
    """A stale expires_at is ignored: the deadline comes from max_duration."""
    f = Feed(clock=lambda: 5000.0, max_duration=100.0)
    f.open(session={"expires_at": 10})
    assert f.session.life.deadline == 5090.0


def test_rollover_waits_for_the_response_then_happens_before_the_next_request() -> None:
    """Due while a response runs: no new create is sent; the connection ends at response.done."""
    now = [0.0]
    f = Feed(clock=lambda: now[0], max_duration=10.0)
    f.open()
    key = key_of(ask(f, "one", 1))
    f.feed(created("r1", key))
    now[0] = 100.0
    f.apply(f.session.deadline_reached())
    assert f.ends() == []
    ask_two = f.session.add_item({"type": "message", "role": "user", "content": []})
    f.apply(ask_two + f.session.request_response(turns={2}))
    f.feed(done("r1", key=key))
    assert [e for e in f.sent() if e["type"] == "response.create"] == []
    [end] = f.ends()
    assert end.kind == "rollover"
    f.apply(f.session.connection_lost("planned rollover"))
    assert f.notices() == []  # a planned rollover is not a lost connection
    f.apply(f.session.connection_opened())
    f.feed(session_created(), {"type": "session.updated", "session": {"type": "realtime"}})
    [notice] = f.notices()
    assert isinstance(notice, Reconnected) and notice.planned
    assert f.sent_types()[-1] == "response.create"


# -- config -----------------------------------------------------------------------------------


def test_config_merge_replaces_an_object_whose_type_changes() -> None:
    """server_vad -> semantic_vad replaces turn_detection instead of keeping threshold."""
    config = {"type": "realtime", "audio": {"input": {"turn_detection": {
        "type": "server_vad", "threshold": 0.7}, "format": {"type": "audio/pcm", "rate": 24000}}}}
    merged = merge_config(config, {"audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}})
    assert merged["audio"]["input"]["turn_detection"] == {"type": "semantic_vad"}
    assert merged["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    same = merge_config(config, {"audio": {"input": {"turn_detection": {"silence_duration_ms": 9}}}})
    assert same["audio"]["input"]["turn_detection"] == {"type": "server_vad", "threshold": 0.7,
                                                        "silence_duration_ms": 9}
    assert config["audio"]["input"]["turn_detection"] == {"type": "server_vad", "threshold": 0.7}


def test_update_config_sends_only_the_change_and_keeps_the_merged_copy() -> None:
    """update_config() sends the partial session.update; the next connection gets the merge."""
    f = ready()
    f.apply(f.session.update_config({"audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}}))
    [update] = f.sent()
    assert update["session"] == {"type": "realtime", "audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}}
    assert f.session.config["audio"]["input"]["turn_detection"] == {"type": "semantic_vad"}


def test_server_cancels_on_speech_follows_the_effective_config() -> None:
    """The server's session.updated decides; null turn detection means nothing is automatic."""
    assert server_cancels_on_speech({}, {})
    assert not server_cancels_on_speech({"audio": {"input": {"turn_detection": None}}}, {})
    assert not server_cancels_on_speech(
        {}, {"audio": {"input": {"turn_detection": {"type": "server_vad", "interrupt_response": False}}}})


def test_the_mirror_is_bounded_and_drops_a_call_with_its_output() -> None:
    """Past max_items the oldest items go, a function call together with its output."""
    f = Feed(max_items=4).open()
    key = key_of(ask(f, "go", 1))
    f.feed(created("r1", key), item_done("r1", call_item("c1")), done("r1", key=key))
    f.calls()
    f.apply(f.session.calls.finished("c1", "out"))
    for i in range(3):
        f.apply(f.session.add_item({"type": "message", "role": "user",
                                    "content": [{"type": "input_text", "text": str(i)}]}))
    kinds = [i["type"] for i in f.session.history]
    assert "function_call_output" not in kinds and "function_call" not in kinds
    assert len(kinds) <= 4
    assert f.session.mirror.dropped >= 3


def test_sends_are_never_emitted_while_down() -> None:
    """Items added while disconnected wait for the replay; nothing is sent."""
    f = ready()
    f.apply(f.session.connection_lost("reset"))
    f.notices()
    f.apply(f.session.add_item({"type": "message", "role": "user", "content": []}))
    f.apply(f.session.request_response())
    assert f.take(Send) == [] and f.take(EndConnection) == []


def test_usage_adds_up_every_field() -> None:
    """Adding two usages sums each of their fields (none is forgotten)."""
    import dataclasses

    from rtagent import Usage

    names = [f.name for f in dataclasses.fields(Usage)]
    one = Usage(*range(1, len(names) + 1))
    total = one + Usage(*(10 * n for n in range(1, len(names) + 1)))
    assert [getattr(total, n) for n in names] == [11 * n for n in range(1, len(names) + 1)]


def test_usage_is_counted_per_response_turn_and_session_with_cost() -> None:
    """Two responses of one tool turn add up for the turn; cached tokens cost their own rate."""
    from rtagent import Prices

    usage = {"total_tokens": 130, "input_tokens": 100, "output_tokens": 30,
             "input_token_details": {"text_tokens": 60, "audio_tokens": 40, "image_tokens": 0,
                                     "cached_tokens": 50,
                                     "cached_tokens_details": {"text_tokens": 50, "audio_tokens": 0}},
             "output_token_details": {"text_tokens": 10, "audio_tokens": 20}}
    prices = Prices(input_text=2.0, cached_text=1.0, input_audio=10.0, output_text=4.0, output_audio=20.0)
    f = ready(prices=prices)
    key = key_of(ask(f, "go", 1))
    f.feed(created("r1", key), item_done("r1", call_item("c1")), done("r1", key=key, usage=usage))
    f.calls()
    f.apply(f.session.calls.finished("c1", "out"))
    follow = f.sent()[-1]
    f.feed(created("r2", key_of(follow)),
           done("r2", output=[message("m", "hi")], key=key_of(follow), usage="not an object"))
    reported = f.notices(usage=True)
    assert [n.response_id for n in reported] == ["r1", "r2"]
    ledger = f.session.usage
    assert ledger.total.input_tokens == 100 and ledger.total.responses == 2
    assert ledger.last_turn is not None and ledger.last_turn.output_tokens == 30
    one = (10 * 2.0 + 50 * 1.0 + 40 * 10.0 + 10 * 4.0 + 20 * 20.0) / 1_000_000
    assert reported[0].cost == one and ledger.cost == one


# -- taking over calls another process started (the worker fleet's failover) -----------------


def test_resume_posts_known_outputs_runs_the_rest_then_one_response_create() -> None:
    f = Feed(sideband=True).open()
    known, rerun = ToolCall("c1", "echo", "{}"), ToolCall("c2", "echo", "{}")
    f.apply(f.session.calls.resume([(known, "was done"), (rerun, None)]))
    assert [c.call_id for c in f.calls()] == ["c2"]
    out = f.sent()
    assert [(e["type"], e["item"]["call_id"]) for e in out] == [("conversation.item.create", "c1")]
    f.apply(f.session.calls.finished("c2", "again"))
    assert f.sent_types() == ["conversation.item.create", "response.create"]
    assert f.session.calls.finished("c2", "twice") == []  # one output per call


def test_resume_with_nothing_to_take_over_asks_for_nothing() -> None:
    f = Feed(sideband=True).open()
    assert f.session.calls.resume([]) == []
    assert f.session.idle


def test_resume_skips_a_call_already_running_here() -> None:
    f = ready()
    key = key_of(ask(f, "go", 1))
    f.feed(created("r1", key), item_done("r1", call_item("c1")), done("r1", key=key))
    f.calls()
    f.sent()
    f.apply(f.session.calls.resume([(ToolCall("c1", "echo", "{}"), "stale")]))
    assert f.calls() == [] and f.sent() == []
    f.apply(f.session.calls.finished("c1", "fresh"))
    out = f.sent()
    assert [e["type"] for e in out] == ["conversation.item.create", "response.create"]
    assert out[0]["item"]["output"] == "fresh"


def test_resume_of_a_background_call_never_posts_a_second_output() -> None:
    """Its interim output was posted before: it runs again in the background, or its known
    result comes as a late message, never as another function_call_output."""
    f = Feed(sideband=True).open()
    running = ToolCall("b1", "report", "{}", interim_posted=True)
    done_ = ToolCall("b2", "report", "{}", interim_posted=True)
    f.apply(f.session.calls.resume([(running, None), (done_, "the report")]))
    assert [c.call_id for c in f.calls()] == ["b1"]
    out = f.sent()
    assert [(e["type"], e["item"]["type"]) for e in out[:1]] == [("conversation.item.create", "message")]
    assert "the report" in out[0]["item"]["content"][0]["text"]
    assert out[1]["type"] == "response.create"
    assert "b1" in f.session.calls.background
