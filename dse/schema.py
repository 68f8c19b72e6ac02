"""The one schema machinery of every input file: pydantic types and one-line errors.

Boards (pydantic models) and profiles (frozen dataclasses with pydantic ``with_config``) are
validated the same way: strict types (``"51"`` is not a number, ``true`` is not 1), no NaN or
infinity anywhere (``allow_inf_nan=False``), ranges on every number, unknown keys refused. The
first fault becomes ``FILE: dotted.field.path: expected ..., got ...`` (``dse.errors.located``).

The bounds named ``Max*`` are sanity limits orders of magnitude beyond any real part, board or
run (a 10 THz clock, a petabyte of DDR): they exist so that an accepted value can never
overflow a float downstream, not to describe hardware.
"""

from __future__ import annotations

import dataclasses
import difflib
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

_EXPECTED = {
    "greater_than": "a value > {gt}",
    "greater_than_equal": "a value >= {ge}",
    "less_than": "a value < {lt}",
    "less_than_equal": "a value <= {le}",
}


def _bound(x: Any) -> str:
    """A range bound as a person reads it: ``1.0``, ``0``, ``1e+15`` (not 1000000000000000.0)."""
    return f"{x:g}" if isinstance(x, float) and abs(x) >= 1e6 else str(x)


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


def describe(err: dict, root: Any = None) -> str:
    """Turn one pydantic error into 'expected ...' text a person can act on."""
    kind = err["type"]
    ctx = err.get("ctx", {})
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
