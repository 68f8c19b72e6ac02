"""One formatter for every number dse shows: the report, the plots and the console.

Why one home: the same figure printed by two commands must read the same (the answer card's
"50.04 ms" and the summary's "50.04 ms", not "49.15" beside "50.0"), and a fitted value with
its standard error must be printed at a precision the error supports (``3.84 GB/s ± 0.18``,
never ``3.84e+09 +- 4.7e-08``). Every function is pure and returns a string.

Conventions: milliseconds get two decimals below 100 and one from 100 up (0.17, 43.47,
780.3); speedups two decimals and an ``x``; counts thousands separators; other quantities
three or four significant figures with an SI prefix on their unit from a thousand up.
"""

from __future__ import annotations

import math

#: Shown for a value that is not finite (an unbounded time, a resource the part lacks).
INFINITE = "∞"
#: Shown for a value that is missing.
MISSING = "—"

_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def ms(x: float | None) -> str:
    """Milliseconds: two decimals below 100 ms, one from 100 up; thousands separated."""
    if x is None:
        return MISSING
    if not math.isfinite(x):
        return INFINITE
    return f"{x:,.1f}" if abs(x) >= 100 else f"{x:.2f}"


def times(x: float | None) -> str:
    """A speedup or ratio: ``8.72x``."""
    if x is None:
        return MISSING
    return f"{x:.2f}x" if math.isfinite(x) else INFINITE


def pct(x: float | None, decimals: int = 1) -> str:
    """A fraction as a percentage (0.133 -> 13.3%); not finite -> n/a."""
    if x is None:
        return MISSING
    return f"{x:.{decimals}%}" if math.isfinite(x) else "n/a"


def signed_pct(x: float | None) -> str:
    """A relative error: +0.7%, -12.3%."""
    if x is None:
        return MISSING
    return f"{x:+.1%}" if math.isfinite(x) else "n/a"


def fixed(x: float | None, decimals: int = 2) -> str:
    """A figure at fixed decimals, thousands separated: tok/s ``19.55``, J/token at three."""
    if x is None:
        return MISSING
    return f"{x:,.{decimals}f}" if math.isfinite(x) else INFINITE


def band(value: float | None, lo: float | None = None, hi: float | None = None,
         fmt=ms, unit: str = "") -> str:
    """A projected figure with its band, both ends at the figure's own precision:
    ``20.60 tok/s (18.90–22.10)``; without a band (``lo`` or ``hi`` None), the figure alone.
    Why here: the card, the plans table, ``dse project`` and ``dse compare`` print the same
    range for the same figure."""
    head = fmt(value) + (f" {unit}" if unit else "")
    if lo is None or hi is None or value is None:
        return head
    return f"{head} ({fmt(lo)}–{fmt(hi)})"


def interval(iv, fmt=ms, unit: str = "") -> str:
    """``band`` of an object with ``value``, ``lo`` and ``hi`` (a ``dse.model.band.Interval``
    or its JSON mapping); None: ``MISSING``."""
    if iv is None:
        return MISSING
    get = iv.get if isinstance(iv, dict) else (lambda k: getattr(iv, k))
    return band(get("value"), get("lo"), get("hi"), fmt, unit)


def count(x: float | None) -> str:
    """A count or a rounded quantity: 1,039."""
    if x is None:
        return MISSING
    return f"{x:,.0f}" if math.isfinite(x) else INFINITE


def sig(x: float | None, digits: int = 4) -> str:
    """``digits`` significant figures in plain notation (12,340; 0.01234); exponent notation
    only outside 1e-4..1e12, where plain digits would hide the magnitude."""
    if x is None:
        return MISSING
    if not math.isfinite(x):
        return INFINITE
    if x == 0:
        return "0"
    mag = math.floor(math.log10(abs(x)))
    if mag < -4 or mag >= 12:
        return f"{x:.{digits - 1}e}"
    decimals = max(0, digits - 1 - mag)
    text = f"{x:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def quantity(x: float | None, unit: str = "", digits: int = 3) -> str:
    """A value with its unit, an SI prefix from a thousand up: 3.84 GB/s, 250 MHz, 12 µs."""
    if x is None:
        return MISSING
    if not math.isfinite(x):
        return INFINITE
    scaled, prefix = _scaled(x, unit)
    text = sig(scaled, digits)
    return f"{text} {prefix}{unit}".rstrip() if unit else text


def _scaled(x: float, unit: str) -> tuple[float, str]:
    """(value, SI prefix) for units that take one (bytes, rates, hertz, ops)."""
    if unit and unit[0] in "BHo":  # B, B/s, Hz, op/s: a prefix reads better than digits
        for scale, prefix in _PREFIXES:
            if abs(x) >= scale:
                return x / scale, prefix
    return x, ""


def plus_minus(value: float, err: float | None, unit: str = "") -> str:
    """A fitted value and its standard error at the precision the error supports.

    ``err`` None: the data do not constrain it ("unconstrained"). An error below 0.01% of
    the value is printed as a bound, not as digits no measurement carries.
    """
    if err is None:
        return f"{quantity(value, unit, 4)} (unconstrained)"
    if not (math.isfinite(value) and math.isfinite(err)):
        return f"{quantity(value, unit, 4)} ± {INFINITE}"
    if value != 0 and abs(err) < 1e-4 * abs(value):
        return f"{quantity(value, unit, 4)} ± <0.01%"
    scaled, prefix = _scaled(value, unit)
    factor = scaled / value if value != 0 else 1.0
    e = abs(err) * factor
    # two significant figures of the error fix the decimals of both
    decimals = 0 if e == 0 else max(0, 1 - math.floor(math.log10(e)))
    decimals = min(decimals, 6)
    v_text = f"{scaled:,.{decimals}f}"
    e_text = f"{e:,.{decimals}f}"
    tail = f" {prefix}{unit}" if unit else ""
    return f"{v_text} ± {e_text}{tail}"


#: Unit of a parameter from its name's suffix (names carry their units, ``_us``, ``_mhz``).
_SUFFIX_UNITS = (("_bytes_per_s", "B/s"), ("_gb_s", "GB/s"), ("_us", "µs"), ("_mhz", "MHz"),
                 ("_cycles_per_elem", "cycles/elem"), ("_cycles", "cycles"), ("_ms", "ms"),
                 ("_bytes", "B"), ("_w", "W"))


def param_unit(name: str) -> str:
    """The unit a parameter's name states (``cache_maint_bytes_per_s`` -> ``B/s``); ''."""
    for suffix, unit in _SUFFIX_UNITS:
        if name.endswith(suffix):
            return unit
    return ""


def param_value(name: str, value: float, err: float | None = None, with_err: bool = False
                ) -> str:
    """A model parameter's value in its unit (and ± its error with ``with_err``)."""
    unit = param_unit(name)
    if unit == "GB/s":  # already scaled by its name: print the number as the name has it
        unit_text = " GB/s"
        if with_err:
            return plus_minus(value, err) + unit_text
        return sig(value, 4) + unit_text
    if with_err:
        return plus_minus(value, err, unit)
    return quantity(value, unit, 4)
