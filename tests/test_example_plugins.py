"""The example plugins in plugins/: clock, calculator, notes and units."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from rtagent._plugins import load_plugins
from rtagent._tools import ToolContext, ToolRegistry

PLUGINS = Path(__file__).resolve().parent.parent / "plugins"


@pytest.fixture(scope="module")
def registry() -> ToolRegistry:
    """All example plugins, loaded once for the module."""
    return load_plugins(PLUGINS)


async def _call(registry: ToolRegistry, name: str, **args: Any) -> Any:
    """Call a tool as the model would, returning the decoded JSON output."""
    result = await registry.invoke(name, json.dumps(args), ToolContext(call_id="c", tool_name=name))
    assert result.ok, result.output
    try:
        return json.loads(result.output)
    except json.JSONDecodeError:
        return result.output


async def _fail(registry: ToolRegistry, name: str, **args: Any) -> str:
    """Call a tool expected to fail with a ToolError; return the message the model sees."""
    result = await registry.invoke(name, json.dumps(args), ToolContext(call_id="c", tool_name=name))
    assert not result.ok
    assert result.error == "tool_error", result
    return result.output


def test_every_example_plugin_loads_with_described_parameters(registry: ToolRegistry) -> None:
    """All example tools load, and every parameter has a description from the docstring."""
    assert set(registry.names()) >= {
        "current_time",
        "convert_time",
        "list_timezones",
        "calculate",
        "add_note",
        "list_notes",
        "search_notes",
        "delete_note",
        "convert_units",
    }
    for t in registry:
        assert t.description, t.name
        for name, prop in t.parameters["properties"].items():
            assert prop.get("description"), f"{t.name}.{name}"


# -- clock -------------------------------------------------------------------------------------


async def test_current_time_in_a_zone(registry: ToolRegistry) -> None:
    """current_time returns the zone's local date, time, weekday and UTC offset."""
    out = await _call(registry, "current_time", timezone="Asia/Tokyo")
    assert out["timezone"] == "Asia/Tokyo"
    assert out["utc_offset"] == "+09:00"
    moment = datetime.fromisoformat(out["iso"])
    assert moment.utcoffset() is not None
    assert out["date"] == moment.strftime("%Y-%m-%d")
    assert re.fullmatch(r"\d\d:\d\d", out["time"])


async def test_current_time_defaults_to_utc_and_forgives_case(registry: ToolRegistry) -> None:
    """No argument means UTC; "europe/paris" is found despite the case."""
    assert (await _call(registry, "current_time"))["utc_offset"] == "+00:00"
    assert (await _call(registry, "current_time", timezone="europe/paris"))[
        "timezone"
    ] == "Europe/Paris"


async def test_unknown_zone_is_a_clear_tool_error(registry: ToolRegistry) -> None:
    """An unknown zone tells the model what a valid name looks like, with suggestions."""
    message = await _fail(registry, "current_time", timezone="Europe/Pariss")
    assert "Unknown time zone 'Europe/Pariss'" in message
    assert "Europe/Paris" in message


async def test_convert_time_across_zones_and_dates(registry: ToolRegistry) -> None:
    """convert_time applies the right offset for the date, including day changes."""
    out = await _call(
        registry,
        "convert_time",
        time_of_day="14:30",
        from_timezone="Europe/Paris",
        to_timezone="America/New_York",
        on_date="2025-07-01",
    )
    assert (out["date"], out["time"], out["day_change"]) == ("2025-07-01", "08:30", "same day")
    out = await _call(
        registry,
        "convert_time",
        time_of_day="23:00",
        from_timezone="UTC",
        to_timezone="Asia/Tokyo",
        on_date="2025-01-31",
    )
    assert (out["date"], out["time"], out["day_change"]) == ("2025-02-01", "08:00", "next day")


async def test_convert_time_rejects_bad_input(registry: ToolRegistry) -> None:
    """Unreadable times and dates become ToolErrors the model can act on."""
    assert "HH:MM" in await _fail(
        registry,
        "convert_time",
        time_of_day="half past two",
        from_timezone="UTC",
        to_timezone="UTC",
    )
    assert "YYYY-MM-DD" in await _fail(
        registry,
        "convert_time",
        time_of_day="10:00",
        from_timezone="UTC",
        to_timezone="UTC",
        on_date="tomorrow",
    )


async def test_list_timezones_region_is_an_enum(registry: ToolRegistry) -> None:
    """list_timezones takes a Literal region (an enum in the schema) and lists its zones."""
    schema = registry["list_timezones"].parameters["properties"]["region"]
    assert "Europe" in schema["enum"]
    zones = await _call(registry, "list_timezones", region="Europe")
    assert "Europe/Paris" in zones
    assert all(z.startswith("Europe/") for z in zones)
    ZoneInfo(zones[0])
    bad = await registry.invoke(
        "list_timezones", '{"region": "Mars"}', ToolContext("c", "list_timezones")
    )
    assert bad.error == "invalid_arguments"


# -- calculator --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("7 / 2", 3.5),
        ("7 // 2", 3),
        ("-7 % 3", 2),
        ("2 ** 10", 1024),
        ("2^8", 256),
        ("-(-3)", 3),
        ("+4", 4),
        ("0.1 + 0.2", 0.3),
        ("sqrt(16)", 4.0),
        ("log(8, 2)", 3.0),
        ("factorial(5)", 120),
        ("round(pi, 3)", 3.142),
        ("max(1, 5, 3)", 5),
        ("hypot(3, 4)", 5.0),
        ("2 ** -1", 0.5),
        ("12 \u00d7 3", 36),
    ],
)
async def test_calculator_evaluates_arithmetic(
    registry: ToolRegistry, expression: str, expected: float
) -> None:
    """Whitelisted arithmetic evaluates exactly, with float noise trimmed."""
    assert await _call(registry, "calculate", expression=expression) == expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os').system('echo hi')", "not allowed"),
        ("open('x')", "Unknown function 'open'"),
        ("x + 1", "Unknown name 'x'"),
        ("(1).real", "Attribute is not allowed"),
        ("'a' * 3", "Only numbers"),
        ("[1, 2]", "List is not allowed"),
        ("1 if 1 else 2", "not allowed"),
        ("lambda: 1", "not allowed"),
        ("True + 1", "Only numbers"),
        ("1 / 0", "Division by zero"),
        ("5 % 0", "Division by zero"),
        ("9 ** 9 ** 9", "Exponents are limited"),
        ("10 ** 5000", "too large"),
        ("2.0 ** 5000", "too large"),
        ("factorial(100000)", "factorial() accepts"),
        ("sqrt(-1)", "Math error"),
        ("(-8) ** 0.5", "complex"),
        ("1 +", "Cannot parse"),
        ("", "empty"),
        ("1+" * 300 + "1", "longer than"),
    ],
)
async def test_calculator_refuses_unsafe_or_impossible_input(
    registry: ToolRegistry, expression: str, message: str
) -> None:
    """Anything but arithmetic, and results too large, become ToolErrors, never evaluated."""
    assert message in await _fail(registry, "calculate", expression=expression)


# -- notes -------------------------------------------------------------------------------------


@pytest.fixture
def notes_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the notes plugin at a fresh database file."""
    path = tmp_path / "sub" / "notes.sqlite3"
    monkeypatch.setenv("RTAGENT_NOTES_DB", str(path))
    return path


async def test_notes_add_list_search_delete(registry: ToolRegistry, notes_db: Path) -> None:
    """Notes round-trip: add, list newest first, search by words and tags, delete."""
    first = await _call(registry, "add_note", text="Buy oat milk", tags=["Shopping"])
    second = await _call(registry, "add_note", text="Dentist on Tuesday at 10")
    assert first["tags"] == ["shopping"]

    listed = await _call(registry, "list_notes")
    assert [n["id"] for n in listed] == [second["id"], first["id"]]
    assert [n["id"] for n in await _call(registry, "list_notes", limit=1)] == [second["id"]]
    assert [n["id"] for n in await _call(registry, "list_notes", tag="shopping")] == [first["id"]]

    assert [n["text"] for n in await _call(registry, "search_notes", query="dentist tuesday")] == [
        "Dentist on Tuesday at 10"
    ]
    assert [n["id"] for n in await _call(registry, "search_notes", query="SHOPPING")] == [
        first["id"]
    ]
    assert await _call(registry, "search_notes", query="dentist milk") == []

    assert (
        await _call(registry, "delete_note", note_id=first["id"]) == f"Deleted note {first['id']}."
    )
    assert [n["id"] for n in await _call(registry, "list_notes")] == [second["id"]]


async def test_notes_errors_are_tool_errors(registry: ToolRegistry, notes_db: Path) -> None:
    """Empty notes, empty queries and unknown ids get messages the model can act on."""
    assert "empty" in await _fail(registry, "add_note", text="   ")
    assert "empty" in await _fail(registry, "search_notes", query=" ")
    assert "no note with id 99" in await _fail(registry, "delete_note", note_id=99)


async def test_notes_search_treats_wildcards_literally(
    registry: ToolRegistry, notes_db: Path
) -> None:
    """% and _ in a query match themselves, not everything."""
    await _call(registry, "add_note", text="growth was 5% this year")
    await _call(registry, "add_note", text="nothing to see")
    found = await _call(registry, "search_notes", query="%")
    assert [n["text"] for n in found] == ["growth was 5% this year"]


async def test_notes_persist_in_sqlite(registry: ToolRegistry, notes_db: Path) -> None:
    """The database is a plain sqlite file at $RTAGENT_NOTES_DB."""
    await _call(registry, "add_note", text="persisted")
    with sqlite3.connect(notes_db) as conn:
        assert conn.execute("SELECT text FROM notes").fetchall() == [("persisted",)]


# -- units -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "src", "dst", "expected"),
    [
        (1, "mi", "km", 1.609344),
        (100, "C", "F", 212.0),
        (0, "K", "C", -273.15),
        (2.2046226218, "lb", "kg", 1.0),
        (1, "gal", "l", 3.785411784),
        (36, "km/h", "m/s", 10.0),
    ],
)
async def test_units_convert(
    registry: ToolRegistry, value: float, src: str, dst: str, expected: float
) -> None:
    """convert_units converts within a dimension."""
    out = await _call(registry, "convert_units", value=value, from_unit=src, to_unit=dst)
    assert out["value"] == pytest.approx(expected)
    assert out["unit"] == dst


async def test_units_refuse_mixed_dimensions_and_unknown_units(registry: ToolRegistry) -> None:
    """Length to mass is a ToolError; a unit outside the enum is invalid arguments."""
    assert "Cannot convert length" in await _fail(
        registry, "convert_units", value=1, from_unit="m", to_unit="kg"
    )
    assert "absolute zero" in await _fail(
        registry, "convert_units", value=-500, from_unit="C", to_unit="K"
    )
    bad = await registry.invoke(
        "convert_units",
        '{"value": 1, "from_unit": "parsec", "to_unit": "m"}',
        ToolContext("c", "convert_units"),
    )
    assert bad.error == "invalid_arguments"
    assert "enum" in json.dumps(registry["convert_units"].parameters)
