"""Clock tools: the current time anywhere, and converting a time between time zones.

Time zones are IANA names ("Europe/Paris", "America/New_York") read by ``zoneinfo`` from the
system database (or the ``tzdata`` package where the system has none).
"""

from __future__ import annotations

import difflib
import zoneinfo
from datetime import date, datetime, time
from functools import lru_cache
from typing import Literal

from rtagent import ToolError, tool

Region = Literal[
    "Africa",
    "America",
    "Antarctica",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
]


@lru_cache(maxsize=1)
def _all_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _zone(name: str) -> zoneinfo.ZoneInfo:
    """Look up a time zone, or tell the model which names are close."""
    cleaned = name.strip().replace(" ", "_")
    if cleaned.upper() in ("UTC", "GMT", "Z"):
        return zoneinfo.ZoneInfo("UTC")
    try:
        return zoneinfo.ZoneInfo(cleaned)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        pass
    # Case-insensitive match ("europe/paris") before giving up.
    by_lower = {z.lower(): z for z in _all_zones()}
    if cleaned.lower() in by_lower:
        return zoneinfo.ZoneInfo(by_lower[cleaned.lower()])
    close = difflib.get_close_matches(cleaned, sorted(_all_zones()), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ToolError(
        f"Unknown time zone {name!r}. Use an IANA name such as 'Europe/Paris' or "
        f"'America/New_York'.{hint}"
    )


def _describe(moment: datetime, zone_name: str) -> dict[str, str]:
    return {
        "timezone": zone_name,
        "date": moment.strftime("%Y-%m-%d"),
        "time": moment.strftime("%H:%M"),
        "weekday": moment.strftime("%A"),
        "utc_offset": moment.strftime("%z")[:3] + ":" + moment.strftime("%z")[3:],
        "iso": moment.isoformat(timespec="seconds"),
    }


@tool
def current_time(timezone: str = "UTC") -> dict[str, str]:
    """Get the current date and time in a time zone.

    Args:
        timezone: IANA time zone name, for example "Europe/Paris" or "Asia/Tokyo".
    """
    zone = _zone(timezone)
    return _describe(datetime.now(zone), zone.key)


@tool
def convert_time(
    time_of_day: str, from_timezone: str, to_timezone: str, on_date: str | None = None
) -> dict[str, str]:
    """Convert a time of day from one time zone to another.

    Args:
        time_of_day: 24-hour time such as "14:30".
        from_timezone: IANA time zone the time is given in.
        to_timezone: IANA time zone to convert to.
        on_date: Date as YYYY-MM-DD (defaults to today in from_timezone); it matters for
            daylight saving time.
    """
    source, target = _zone(from_timezone), _zone(to_timezone)
    try:
        clock = time.fromisoformat(time_of_day.strip())
    except ValueError:
        raise ToolError(
            f"Cannot read time {time_of_day!r}; use 24-hour HH:MM, e.g. '14:30'."
        ) from None
    if on_date is None:
        day = datetime.now(source).date()
    else:
        try:
            day = date.fromisoformat(on_date.strip())
        except ValueError:
            raise ToolError(f"Cannot read date {on_date!r}; use YYYY-MM-DD.") from None
    start = datetime.combine(day, clock.replace(tzinfo=None), tzinfo=source)
    end = start.astimezone(target)
    result = _describe(end, target.key)
    shift = (end.date() - start.date()).days
    result["day_change"] = {0: "same day", 1: "next day", -1: "previous day"}.get(
        shift, f"{shift:+d} days"
    )
    return result


@tool
def list_timezones(region: Region) -> list[str]:
    """List the IANA time zone names of a region, to find the right name for a place.

    Args:
        region: The continent or ocean the place is in.
    """
    prefix = region + "/"
    return sorted(z for z in _all_zones() if z.startswith(prefix))
