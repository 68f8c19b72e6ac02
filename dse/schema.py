"""The one schema machinery of every input file: pydantic types and one-line errors.

Boards (pydantic models) and profiles (frozen dataclasses with pydantic ``with_config``) are
validated the same way: strict types (``"51"`` is not a number, ``true`` is not 1), no NaN or
infinity anywhere (``allow_inf_nan=False``), ranges on every number, unknown keys refused. The
first fault becomes ``FILE: dotted.field.path: expected ..., got ...`` (``dse.errors.located``).

The bounds named ``Max*`` are sanity limits orders of magnitude beyond any real part, board or
run (a 10 THz clock, a petabyte of DDR): they exist so that an accepted value can never
overflow a float downstream, not to describe hardware. ``QUANTITIES`` gives each physical
quantity a file states (a PL clock, a bandwidth, a core count, an engine count, a model
dimension) its own range, the same in every file kind: pydantic fields through ``quantity``,
hand-written loaders through ``check_quantity``, one wording of the error either way.

The files themselves are parsed by ``dse.io`` (a key set twice refused, each YAML field's line
kept for the error).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from dse.errors import DseError, located

#: Config of every schema: strict, finite, closed.
STRICT = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

#: Sanity ceiling of any count or size (resources, bytes, calls, tokens): 2**53, the largest
#: integer a float holds exactly.
MAX_COUNT = 2**53
#: Sanity ceiling of any physical quantity in a file (MHz, GB/s, ms, ...): 1e15.
MAX_QUANTITY = 1e15

PosInt = Annotated[int, Field(gt=0, le=MAX_COUNT, strict=True)]
NonNegInt = Annotated[int, Field(ge=0, le=MAX_COUNT, strict=True)]
# strict: a YAML ``true`` must not pass as 1.0 (ints are still accepted as floats).
PosFloat = Annotated[float, Field(gt=0, le=MAX_QUANTITY, strict=True, allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(ge=0, le=MAX_QUANTITY, strict=True, allow_inf_nan=False)]
FiniteFloat = Annotated[float, Field(ge=-MAX_QUANTITY, le=MAX_QUANTITY, strict=True,
                                     allow_inf_nan=False)]
Fraction = Annotated[float, Field(gt=0, le=1, strict=True, allow_inf_nan=False)]


# -- physical ranges: one table for every file kind ------------------------------------------

@dataclasses.dataclass(frozen=True)
class Quantity:
    """The range a physical quantity may take in an input file, whatever file it is in.

    The bounds are orders of magnitude beyond any real part (a PL clock of 2 GHz, 10 TB/s of
    DDR, 1,024 CPU cores) and far above anything absurd (1e-300 GB/s, 2**53 cores): a value
    outside them is a typo or an attack, and pricing it would only produce a confident
    nonsense answer. ``integer``: counts (cores, bits) must be whole numbers.
    """

    low: float
    high: float
    what: str
    integer: bool = False

    def expected(self) -> str:
        kind = "an integer" if self.integer else "a number"
        return f"{kind} from {_bound(self.low)} to {_bound(self.high)} ({self.what})"

    def error(self, value: object) -> str | None:
        """What a value must be, when ``value`` is not that (None when it is)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return self.expected()
        if self.integer and not isinstance(value, int):
            return self.expected()
        if not (math.isfinite(value) and self.low <= value <= self.high):
            return self.expected()
        return None

    def field(self) -> Any:
        """The pydantic field type of this quantity."""
        base = int if self.integer else float
        kind = next(k for k, q in QUANTITIES.items() if q is self)
        return Annotated[base, Field(ge=self.low, le=self.high, strict=True,
                                     allow_inf_nan=False, description=f"quantity:{kind}")]


#: Every physical quantity a board, plan, log or model config states, with its range.
QUANTITIES: dict[str, Quantity] = {
    # the PL fabric's clock (UltraScale+ fabric tops out near 900 MHz)
    "pl_clock_mhz": Quantity(1.0, 2000.0, "a PL clock in MHz"),
    "cpu_clock_mhz": Quantity(10.0, 10_000.0, "a CPU clock in MHz"),
    "ddr_transfer_rate_mts": Quantity(100.0, 20_000.0, "a DDR transfer rate in MT/s"),
    "bus_width_bits": Quantity(8, 8192, "a memory bus width in bits", integer=True),
    "bandwidth_gb_s": Quantity(0.01, 10_000.0, "a bandwidth in GB/s"),
    "memory_bytes": Quantity(2**20, 2**50, "a memory size in bytes", integer=True),
    "cores": Quantity(1, 1024, "CPU cores", integer=True),
    "gflops": Quantity(0.01, 1e6, "a peak in GFLOP/s"),
    "pl_resource": Quantity(1, 10**8, "a count of one PL resource", integer=True),
    "pl_resource_or_none": Quantity(0, 10**8, "a count of one PL resource", integer=True),
    "hp_ports": Quantity(1, 64, "PS-PL data ports", integer=True),
    "port_width_bits": Quantity(8, 4096, "a port width in bits", integer=True),
    "overhead_us": Quantity(0.0, 1e6, "a per-call time in us"),
    "watts": Quantity(0.0, 10_000.0, "a power in W"),
    "board_watts": Quantity(0.01, 10_000.0, "a board's power in W"),
    "pj_per_byte": Quantity(0.0, 1e5, "an energy per byte in pJ"),
    "watts_per_unit": Quantity(0.0, 100.0, "a power per resource in W"),
    # a matrix dimension, a vocabulary, a context: 2**24 is 16M
    "dimension": Quantity(1, 2**24, "a model or matrix dimension", integer=True),
    "tokens": Quantity(1, 2**24, "a count of tokens", integer=True),
    "engines": Quantity(1, 4096, "engines: no part has DMA channels for more", integer=True),
    "lanes": Quantity(1, 2**16, "lanes of an engine", integer=True),
    "threads": Quantity(1, 1024, "CPU threads", integer=True),
}

#: Most a DDR's stated peak may differ from bus width x transfer rate (rounding in a data
#: sheet: the shipped boards agree within 0.1%).
DDR_PEAK_TOLERANCE = 0.02
#: Most fp32 FLOPs a CPU core does per cycle (two 512-bit FMA pipes: 2 x 16 x 2 = 64).
MAX_FLOPS_PER_CYCLE = 64


def quantity(kind: str) -> Any:
    """The pydantic field type of ``QUANTITIES[kind]``."""
    return QUANTITIES[kind].field()


def check_quantity(path: object, field: str, kind: str, value: object) -> None:
    """Raise the one-line error unless ``value`` is a ``kind`` in its physical range."""
    why = QUANTITIES[kind].error(value)
    if why is not None:
        raise located(path, field, why, value)

_EXPECTED = {
    "greater_than": "a value > {gt}",
    "greater_than_equal": "a value >= {ge}",
    "less_than": "a value < {lt}",
    "less_than_equal": "a value <= {le}",
}


def _bound(x: Any) -> str:
    """A range bound as a person reads it: ``1.0``, ``0``, ``1e+15`` (not 1000000000000000.0),
    ``16,777,216``."""
    if isinstance(x, float) and (abs(x) >= 1e6 or 0 < abs(x) < 1e-3):
        return f"{x:g}"
    if isinstance(x, int) and not isinstance(x, bool) and abs(x) >= 10**6:
        return f"{x:,}"
    return str(x)


def _unwrap(ann: Any) -> Any:
    """The schema type inside ``X | None``, ``list[X]``, ``tuple[X, ...]``, ``dict[str, X]``."""
    while True:
        origin = typing.get_origin(ann)
        if origin is Annotated:
            ann = typing.get_args(ann)[0]
            continue
        args = [a for a in typing.get_args(ann) if a is not type(None) and a is not Ellipsis]
        if origin is None or not args:
            return ann
        ann = args[-1]


def _fields_of(tp: Any) -> dict[str, Any]:
    """Field name -> annotation of a pydantic model or a dataclass ({} for anything else)."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return {k: f.annotation for k, f in tp.model_fields.items() if not f.exclude}
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        return {f.name: hints.get(f.name) for f in dataclasses.fields(tp)}
    return {}


def _type_at(root: Any, loc: tuple) -> Any:
    """The schema type that holds the mapping at ``loc`` (list indices skipped), if known."""
    tp = root
    for part in loc:
        if isinstance(part, int):
            continue
        fields = _fields_of(tp)
        if str(part) not in fields:
            return None
        tp = _unwrap(fields[str(part)])
    return tp


def _unknown_key(root: Any, loc: tuple) -> str:
    """'one of a, b, c (unknown key; did you mean 'b'?)' for an extra key at ``loc``."""
    allowed = list(_fields_of(_type_at(root, loc[:-1])))
    if not allowed:
        return "no such field (unknown key)"
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"one of {', '.join(allowed)} (unknown key{hint})"


def _quantity_at(root: Any, loc: tuple) -> Quantity | None:
    """The physical quantity the field at ``loc`` holds (see ``QUANTITIES``), if any."""
    parent = _type_at(root, tuple(p for p in loc[:-1]))
    if not (loc and isinstance(parent, type) and issubclass(parent, BaseModel)):
        return None
    info = parent.model_fields.get(str(loc[-1]))
    desc = getattr(info, "description", None) or ""
    return QUANTITIES.get(desc.removeprefix("quantity:")) if desc.startswith("quantity:") else None


def describe(err: dict, root: Any = None) -> str:
    """Turn one pydantic error into 'expected ...' text a person can act on."""
    kind = err["type"]
    ctx = err.get("ctx", {})
    q = _quantity_at(root, tuple(err.get("loc", ())))
    if q is not None and (kind in _EXPECTED or kind.startswith(("int", "float"))
                          or kind == "finite_number"):
        return q.expected()
    if kind in ("missing", "missing_argument"):
        return "a value (field is missing)"
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        return _unknown_key(root, tuple(err["loc"]))
    if kind == "finite_number":
        return "a finite number"
    if kind == "string_too_short":
        n = ctx.get("min_length", 1)
        return "a non-empty string" if n == 1 else f"a string of at least {n} characters"
    if kind in _EXPECTED:
        return _EXPECTED[kind].format(**{k: _bound(v) for k, v in ctx.items()})
    if kind.startswith("int"):
        return "an integer"
    if kind.startswith("float"):
        return "a number"
    if kind.startswith("bool"):
        return "true or false"
    if kind.startswith("string"):
        return "a string" if kind == "string_type" else err["msg"].lower()
    if kind == "literal_error":
        return f"one of {ctx.get('expected')}"
    if kind in ("dict_type", "model_type", "model_attributes_type", "dataclass_type",
                "dataclass_args_type", "mapping_type"):
        return "a mapping"
    if kind == "too_short":
        return "a non-empty list"
    if kind in ("list_type", "tuple_type"):
        return "a list"
    return err["msg"].lower()


def located_error(exc: ValidationError, path: object, root: Any = None) -> DseError:
    """The first fault of a pydantic ValidationError as the standard one-line error."""
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or "(top level)"
    got = err.get("input") if err["type"] not in (
        "missing", "missing_argument", "extra_forbidden", "unexpected_keyword_argument") else None
    if isinstance(got, dict):
        got = None
    return located(path, field, describe(err, root), got)


_ADAPTERS: dict[Any, TypeAdapter] = {}


def validate(tp: Any, data: Any, path: str | Path) -> Any:
    """Validate parsed data (JSON or YAML) as ``tp``: the instance, or a one-line DseError.

    Pydantic models validate the parsed tree directly. Dataclass schemas validate it in JSON
    mode, where a JSON array is a tuple and nothing is coerced; the tree is re-serialized for
    that, which also turns any non-JSON value a YAML parser made (a date) into a type error.
    """
    try:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return tp.model_validate(data)
        import json

        adapter = _ADAPTERS.get(tp) or _ADAPTERS.setdefault(tp, TypeAdapter(tp))
        try:
            text = json.dumps(data, allow_nan=True, default=str)
        except (ValueError, RecursionError):
            raise DseError(f"{path}: expected a document nested at most a few hundred levels "
                           f"deep") from None
        return adapter.validate_json(text)
    except ValidationError as exc:
        return _raise(exc, path, tp)


def _raise(exc: ValidationError, path: object, tp: Any) -> typing.NoReturn:
    raise located_error(exc, path, tp) from None
