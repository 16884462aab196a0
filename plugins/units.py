"""Unit conversion: length, mass, volume, speed and temperature.

The units form an ``Enum``, so the model sees the exact list of accepted values in the
schema and cannot invent one.
"""

from __future__ import annotations

from enum import Enum

from rtagent import ToolError, tool


class Unit(str, Enum):
    """A unit of measure."""

    METER = "m"
    KILOMETER = "km"
    CENTIMETER = "cm"
    MILLIMETER = "mm"
    MILE = "mi"
    YARD = "yd"
    FOOT = "ft"
    INCH = "in"
    NAUTICAL_MILE = "nmi"
    KILOGRAM = "kg"
    GRAM = "g"
    TONNE = "t"
    POUND = "lb"
    OUNCE = "oz"
    LITER = "l"
    MILLILITER = "ml"
    US_GALLON = "gal"
    US_CUP = "cup"
    US_FLUID_OUNCE = "fl_oz"
    METERS_PER_SECOND = "m/s"
    KILOMETERS_PER_HOUR = "km/h"
    MILES_PER_HOUR = "mph"
    KNOT = "kn"
    CELSIUS = "C"
    FAHRENHEIT = "F"
    KELVIN = "K"


# (dimension, factor to the dimension's base unit: meter, kilogram, liter, meter per second)
_LINEAR: dict[Unit, tuple[str, float]] = {
    Unit.METER: ("length", 1.0),
    Unit.KILOMETER: ("length", 1000.0),
    Unit.CENTIMETER: ("length", 0.01),
    Unit.MILLIMETER: ("length", 0.001),
    Unit.MILE: ("length", 1609.344),
    Unit.YARD: ("length", 0.9144),
    Unit.FOOT: ("length", 0.3048),
    Unit.INCH: ("length", 0.0254),
    Unit.NAUTICAL_MILE: ("length", 1852.0),
    Unit.KILOGRAM: ("mass", 1.0),
    Unit.GRAM: ("mass", 0.001),
    Unit.TONNE: ("mass", 1000.0),
    Unit.POUND: ("mass", 0.45359237),
    Unit.OUNCE: ("mass", 0.028349523125),
    Unit.LITER: ("volume", 1.0),
    Unit.MILLILITER: ("volume", 0.001),
    Unit.US_GALLON: ("volume", 3.785411784),
    Unit.US_CUP: ("volume", 0.2365882365),
    Unit.US_FLUID_OUNCE: ("volume", 0.0295735295625),
    Unit.METERS_PER_SECOND: ("speed", 1.0),
    Unit.KILOMETERS_PER_HOUR: ("speed", 1000.0 / 3600.0),
    Unit.MILES_PER_HOUR: ("speed", 1609.344 / 3600.0),
    Unit.KNOT: ("speed", 1852.0 / 3600.0),
}
_TEMPERATURE = (Unit.CELSIUS, Unit.FAHRENHEIT, Unit.KELVIN)


def _to_kelvin(value: float, unit: Unit) -> float:
    if unit is Unit.CELSIUS:
        return value + 273.15
    if unit is Unit.FAHRENHEIT:
        return (value - 32.0) * 5.0 / 9.0 + 273.15
    return value


def _from_kelvin(value: float, unit: Unit) -> float:
    if unit is Unit.CELSIUS:
        return value - 273.15
    if unit is Unit.FAHRENHEIT:
        return (value - 273.15) * 9.0 / 5.0 + 32.0
    return value


def _dimension(unit: Unit) -> str:
    return "temperature" if unit in _TEMPERATURE else _LINEAR[unit][0]


def convert(value: float, from_unit: Unit, to_unit: Unit) -> float:
    """Convert ``value``; raises ToolError when the units measure different things."""
    dim_from, dim_to = _dimension(from_unit), _dimension(to_unit)
    if dim_from != dim_to:
        raise ToolError(
            f"Cannot convert {dim_from} ({from_unit.value}) to {dim_to} ({to_unit.value})."
        )
    if dim_from == "temperature":
        kelvin = _to_kelvin(value, from_unit)
        if kelvin < 0:
            raise ToolError("That temperature is below absolute zero.")
        result = _from_kelvin(kelvin, to_unit)
    else:
        result = value * _LINEAR[from_unit][1] / _LINEAR[to_unit][1]
    return float(f"{result:.10g}")


@tool
def convert_units(value: float, from_unit: Unit, to_unit: Unit) -> dict[str, float | str]:
    """Convert a quantity between units of length, mass, volume, speed or temperature.

    Args:
        value: The quantity to convert.
        from_unit: The unit the value is in.
        to_unit: The unit to convert to.
    """
    result = convert(value, from_unit, to_unit)
    return {
        "value": result,
        "unit": to_unit.value,
        "text": f"{value:g} {from_unit.value} = {result:g} {to_unit.value}",
    }
