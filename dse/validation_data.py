"""Loading the validation rows (the I/O edge of ``dse.model.validation``).

``load_validation`` reads dse/data/validation.json (written by bench/bench_validate.py) or the
file the user names with ``--validation FILE``; ``--validation none`` turns the bands off.
Strict: every row's fields, their types and ranges, every class and regime feature known, and
each residual what its measured and predicted values make it (``predicted / measured - 1``,
from a measured range's nearest end): a file whose residuals were edited apart from its
values, or are not numbers, is a one-line error naming the file and the field (exit 2).
"""

from __future__ import annotations

import functools
import hashlib
import math
from pathlib import Path

from dse.errors import DseError, located
from dse.io import parse_json, read_text
from dse.model.validation import (
    CLASSES,
    FEATURES,
    FIGURES,
    NUMERIC,
    ORIGINS,
    YES_NO,
    Row,
    Validation,
    residual_of,
)
from dse.schema import MAX_QUANTITY, check_quantity

DATA = Path(__file__).resolve().parent / "data"
SHIPPED = DATA / "validation.json"
#: Regime features that count PL units or give a unit's rate (a number, like ``NUMERIC``'s,
#: compared by value).
COUNTS = ("attention", "glue", "glue_cycles_per_elem")
TOP_KEYS = ("format", "version", "generated_by", "calibration", "note", "rows")
ROW_KEYS = ("id", "origin", "group", "what", "source", "figure", "unit", "measured", "range",
            "predicted", "residual", "parts", "regime", "sets")
#: How far a stored residual may be from what its values make it (they are rounded to 6
#: decimals when written).
RESIDUAL_TOLERANCE = 1e-4


def _num(v: object, path: object, field: str, positive: bool = False) -> float:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if not ok or (positive and v <= 0):
        raise located(path, field, "a finite number" + (" > 0" if positive else ""), v)
    return float(v)


def _figure(v: object, path: object, field: str, positive: bool = False) -> float:
    """A measured or predicted figure (ms, tok/s, J, LUTs, cycles, a class's share): a finite
    number in the range any file's quantities share (``MAX_QUANTITY``), > 0 or >= 0."""
    x = _num(v, path, field, positive)
    if x < 0 or x > MAX_QUANTITY or (positive and x < 1 / MAX_QUANTITY):
        raise located(path, field, f"a number from {'1e-15' if positive else '0'} to 1e+15 "
                      f"(a measured or predicted figure)", v)
    return x


def _str(v: object, path: object, field: str) -> str:
    if not isinstance(v, str) or not v.strip():
        raise located(path, field, "a non-empty string", v)
    return v


def _row(data: object, path: object, i: int, seen: set[str]) -> Row:
    where = f"rows[{i}]"
    if not isinstance(data, dict):
        raise located(path, where, "a mapping (one validation row)", type(data).__name__)
    for k in data:
        if k not in ROW_KEYS:
            raise located(path, f"{where}.{k}", f"one of {', '.join(ROW_KEYS)}")
    for k in ("id", "origin", "group", "what", "source", "figure", "unit", "measured",
              "predicted", "residual", "parts"):
        if k not in data:
            raise located(path, f"{where}.{k}", "a value (missing)")
    id_ = _str(data["id"], path, f"{where}.id")
    if id_ in seen:
        raise located(path, f"{where}.id", "an id no other row has", id_)
    seen.add(id_)
    where = f"rows[{i}] ({id_})"
    origin = _str(data["origin"], path, f"{where}.origin")
    if origin not in ORIGINS:
        raise located(path, f"{where}.origin", f"one of {', '.join(ORIGINS)}", origin)
    figure = _str(data["figure"], path, f"{where}.figure")
    if figure not in FIGURES:
        raise located(path, f"{where}.figure", f"one of {', '.join(FIGURES)}", figure)
    measured = _figure(data["measured"], path, f"{where}.measured", positive=True)
    predicted = _figure(data["predicted"], path, f"{where}.predicted")
    rng = data.get("range")
    if rng is not None:
        if (not isinstance(rng, list) or len(rng) != 2):
            raise located(path, f"{where}.range", "null or [low, high]", rng)
        lo = _figure(rng[0], path, f"{where}.range[0]", positive=True)
        hi = _figure(rng[1], path, f"{where}.range[1]", positive=True)
        if not lo <= measured <= hi:
            raise located(path, f"{where}.range", f"a range holding measured {measured:g}", rng)
        rng = (lo, hi)
    residual = _num(data["residual"], path, f"{where}.residual")
    want = residual_of(measured, predicted, rng)
    if abs(residual - want) > RESIDUAL_TOLERANCE * max(1.0, abs(want)):
        raise located(path, f"{where}.residual", f"predicted / measured - 1 = {want:.6f} (its "
                      f"values' residual)", residual)
    parts = data["parts"]
    if not isinstance(parts, dict):
        raise located(path, f"{where}.parts", "a mapping of class to its predicted share", parts)
    out_parts = {}
    for k, v in parts.items():
        if k not in CLASSES:
            raise located(path, f"{where}.parts.{k}", f"a class among {', '.join(CLASSES)}")
        out_parts[k] = _figure(v, path, f"{where}.parts.{k}")
    regime = data.get("regime") or {}
    if not isinstance(regime, dict):
        raise located(path, f"{where}.regime", "a mapping of feature to value", regime)
    for k, v in regime.items():
        if k not in FEATURES:
            raise located(path, f"{where}.regime.{k}", f"a feature among {', '.join(FEATURES)}")
        if k in ("clock_mhz", "clock_supported_mhz"):
            if v is not None:
                check_quantity(path, f"{where}.regime.{k}", "pl_clock_mhz", v)
        elif k in NUMERIC or k in COUNTS:
            if v is not None:
                _num(v, path, f"{where}.regime.{k}")
                if v < 0:
                    raise located(path, f"{where}.regime.{k}", "a number >= 0", v)
        elif k in YES_NO:
            if not isinstance(v, bool):
                raise located(path, f"{where}.regime.{k}", "true or false", v)
        elif v is not None:
            _str(v, path, f"{where}.regime.{k}")
    sets = data.get("sets") or ""
    if not isinstance(sets, str):
        raise located(path, f"{where}.sets", "null or the constant the row set", sets)
    return Row(id_, origin, _str(data["group"], path, f"{where}.group"),
               _str(data["what"], path, f"{where}.what"),
               _str(data["source"], path, f"{where}.source"), figure,
               _str(data["unit"], path, f"{where}.unit"), measured, predicted, residual,
               out_parts, dict(regime), rng, sets)


def validation_from_dict(data: object, path: str, sha256: str = "") -> Validation:
    """A validated ``Validation``, or the one-line error."""
    if not isinstance(data, dict):
        raise located(path, "", "a JSON object (dse validation rows)")
    if data.get("format") != "dse-validation":
        raise located(path, "format", "'dse-validation'", data.get("format"))
    if data.get("version") != 1 or isinstance(data.get("version"), bool):
        raise located(path, "version", "1", data.get("version"))
    for k in data:
        if k not in TOP_KEYS:
            raise located(path, str(k), f"one of {', '.join(TOP_KEYS)}")
    rows = data.get("rows")
    if not isinstance(rows, list) or not rows:
        raise located(path, "rows", "a non-empty list of rows", rows)
    seen: set[str] = set()
    out = tuple(_row(r, path, i, seen) for i, r in enumerate(rows))
    from dse.model.band import attribute

    if not any(attribute(r) is not None for r in out):
        # no class would have a band: every figure's would be zero wide while the card
        # names every class never measured
        raise located(path, "rows", "at least one row that measures a component class (a "
                      "check row whose parts are mostly one class); every row here sets a "
                      "constant, is a composite or has no parts")
    return Validation(out, str(data.get("generated_by") or ""), path, sha256)


@functools.lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> Validation:
    p = Path(path)
    text = read_text(p, "validation rows")
    data = parse_json(text, p)
    shown = str(p.relative_to(DATA.parent.parent)) if p == SHIPPED else str(p)
    return validation_from_dict(data, shown, hashlib.sha256(text.encode("utf-8")).hexdigest())


def load_validation(path: str | Path | None = None) -> Validation | None:
    """The validation rows the user named (``--validation FILE``), the shipped ones by
    default, or None for ``none`` (no bands)."""
    if path is not None and str(path) == "none":
        return None
    if path is not None and not str(path).strip():
        raise DseError("--validation: expected a validation rows file or 'none', got ''")
    p = Path(path) if path is not None else SHIPPED
    try:
        mtime = p.stat().st_mtime
    except OSError:
        read_text(p, "validation rows")  # the one-line error of a missing or unreadable file
        raise
    return _load(str(p), mtime)
