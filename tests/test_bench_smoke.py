"""Smoke run of the benchmark harness with tiny sizes (rtagent and the floor), plus a
conformance check of the bench server's event stream. No timing assertions.

Needs the bench extra (``pip install -e '.[bench]'``; CI runs it with ``pytest -m bench``):
the module is skipped where psutil or matplotlib is missing, as with the dev extra alone."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("psutil", reason="the bench extra is not installed")
pytest.importorskip("matplotlib", reason="the bench extra is not installed")

from bench.harness import ServerPool
from bench.run import Config, run

try:
    from conformance import assert_server_event
except ImportError:  # pragma: no cover - depends on how pytest set sys.path
    from tests.conformance import assert_server_event

pytestmark = pytest.mark.bench


def _recv_until(ws: Any, kind: str, seen: list[dict[str, Any]]) -> dict[str, Any]:
    while True:
        event = json.loads(ws.recv(timeout=5))
        assert_server_event(event)
        seen.append(event)
        if event["type"] == kind:
            return event


def test_bench_server_speaks_ga_events() -> None:
    """Every event the bench server sends in a tool turn and an audio stream is valid GA."""
    from websockets.sync.client import connect

    tool = {"type": "function", "name": "echo", "description": "Echo.",
            "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}}
    seen: list[dict[str, Any]] = []
    with ServerPool(1) as pool:
        with connect(f"{pool.url}/smoke/tool/1000/v1/realtime?model=gpt-realtime") as ws:
            _recv_until(ws, "session.created", seen)
            ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime", "tools": [tool]}}))
            _recv_until(ws, "session.updated", seen)
            ws.send(json.dumps({"type": "conversation.item.create", "item": {
                "type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}}))
            ws.send(json.dumps({"type": "response.create"}))
            ws.send(json.dumps({"type": "response.create", "event_id": "evt_2"}))  # one active response
            done = _recv_until(ws, "response.done", seen)
            call = done["response"]["output"][0]
            assert call["type"] == "function_call" and json.loads(call["arguments"]) == {"text": "hi"}
            ws.send(json.dumps({"type": "conversation.item.create", "item": {
                "type": "function_call_output", "call_id": call["call_id"], "output": "echo:hi"}}))
            ws.send(json.dumps({"type": "response.create"}))
            done = _recv_until(ws, "response.done", seen)
            assert done["response"]["output"][0]["content"][0]["text"] == "echo:hi"
        errors = [e for e in seen if e["type"] == "error"]
        assert [e["error"]["code"] for e in errors] == ["conversation_already_has_active_response"]
        assert errors[0]["error"]["event_id"] == "evt_2"
        with connect(f"{pool.url}/smoke-audio/audio/0/v1/realtime") as ws:
            _recv_until(ws, "session.created", seen)
            ws.send(json.dumps({"type": "response.create"}))
            _recv_until(ws, "response.content_part.added", seen)
            chunk = base64.b64encode(b"\x01\x00" * 480).decode()
            ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
            delta = _recv_until(ws, "response.output_audio.delta", seen)
            assert delta["delta"] == chunk
            ws.send(json.dumps({"type": "response.cancel"}))
            assert _recv_until(ws, "response.done", seen)["response"]["status"] == "cancelled"
        samples = pool.dump("smoke")["smoke"]
        assert len(samples) == 1
    kinds = {e["type"] for e in seen}
    assert {"response.function_call_arguments.delta", "response.output_text.delta",
            "conversation.item.done", "response.output_item.done"} <= kinds


def test_harness_smoke_run(tmp_path: Path) -> None:
    """A tiny run for rtagent and the floor, with def and async def tools, completes and writes
    well-formed results."""
    cfg = Config(
        rounds=1, turns=5, warmup=2, connects=1, drift_turns=10, growth_turns=20, paced_k=[2],
        paced_duration=1.0, paced_rows=["floor/sync", "rtagent/sync", "rtagent/async"], burst_k=2,
        burst_duration=0.3, audio_k=2, audio_duration=0.3, audio_clients=["floor", "rtagent"],
        stall_k=2, stall_audio_k=1, stall_lead=0.5, stall_rows=["floor/sync", "rtagent/sync"],
        import_repeat=1, load_servers=1,
    )
    results = run(cfg, ["floor", "rtagent"], tmp_path, quick=True)
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["meta"]["clients"] == ["floor", "rtagent"]
    rows = {"floor/sync", "floor/async", "rtagent/sync", "rtagent/async"}
    expected = {
        "startup": {"floor", "rtagent"}, "audio": {"floor", "rtagent"}, "turnaround": rows | {"rtagent/inline"},
        "burst": rows, "drift": {"floor/sync", "rtagent/sync"}, "growth": {"rtagent/sync"},
        "paced": {"floor/sync", "rtagent/sync", "rtagent/async"},
        "stall": {"floor/sync", "rtagent/sync"},
    }
    for section, keys in expected.items():
        assert set(data[section]) == keys, section
    assert set(data["turnaround"]) == rows | {"rtagent/inline"}
    for row in rows | {"rtagent/inline"}:
        assert data["turnaround"][row]["n"] == 5
    for row in expected["paced"]:
        assert data["paced"][row]["2"]["answered"] >= 1
    for client in ("floor", "rtagent"):
        assert data["audio"][client]["audio_s_received"] > 0
    assert data["growth"]["rtagent/sync"]["turns"] == 20
    assert len(data["growth"]["rtagent/sync"]["rss_deciles_mib"]) == 10
    # The floor runs its tool inline: a blocking tool stalls every other session.
    assert data["stall"]["floor/sync"]["worst_delay_ms"] > 1000
    assert data["stall"]["rtagent/sync"]["block_answer_s"] >= 2
    assert results["targets"] and all("met" in t for t in results["targets"])
    md = (tmp_path / "results.md").read_text()
    assert "| rtagent (def tool) |" in md and "| rtagent (async def tool) |" in md and "## Targets" in md
    assert "## Stall" in md
    assert (tmp_path / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
