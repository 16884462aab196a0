"""The local server against recorded real traffic: driven by each recording's client events,
it sends the same event types in the same order, with the same fields and session defaults."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from conformance import assert_server_event
from replay.corpus import load, names
from replay.driver import drive, field_paths, rate_limits_follow_done, shape

TRANSCRIPTION_DIVERGES = {
    "azure__audio_in_server_vad_transcription_requires_deployment": (
        "Azure failed the input transcription (code DeploymentNotFound: the resource had no "
        "deployment of the transcription model); the local server transcribes with any model"
    ),
}
"""Recordings whose input-transcription lane differs on purpose, and why."""

OPTIONAL_FIELDS = {
    # gpt-realtime-2.x reports reasoning tokens only when it reasoned; the local model never does.
    "response.usage.output_token_details.reasoning_tokens",
}

_SESSION_IDENTITY = ("id", "expires_at")


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def fields(event: dict[str, Any]) -> set[str]:
    return field_paths(event) - OPTIONAL_FIELDS


def sessions(events: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Each session.created/updated's session, without its id and end time."""
    return [
        (e["type"], {k: v for k, v in e["session"].items() if k not in _SESSION_IDENTITY})
        for e in events
        if e["type"] in ("session.created", "session.updated")
    ]


@pytest.mark.parametrize("name", names())
async def test_local_server_sends_what_the_real_service_sent(name: str) -> None:
    """The recorded event types in order (delta runs collapsed), the same fields, the same session."""
    recording = load(name)
    with anyio.fail_after(30):
        local = await drive(recording)
    for event in local:
        assert_server_event(event)
    recorded = list(recording.server())
    mine, real = shape(local), shape(recorded)
    assert types(mine["main"]) == types(real["main"])
    if name not in TRANSCRIPTION_DIVERGES:
        assert types(mine["transcription"]) == types(real["transcription"])
    for lane in ("main", "transcription"):
        for got, want in zip(mine[lane], real[lane], strict=False):
            if got["type"] != want["type"]:
                continue
            pairs = (
                [(got["first"][k], want["first"][k]) for k in got["first"]]
                if "first" in got
                else [(got, want)]
            )
            for mine_event, real_event in pairs:
                assert fields(mine_event) == fields(real_event), mine_event["type"]
    assert rate_limits_follow_done(recorded) and rate_limits_follow_done(local)
    assert ("rate_limits.updated" in types(local)) is (recording.service != "azure")
    assert sessions(local) == sessions(recorded)
