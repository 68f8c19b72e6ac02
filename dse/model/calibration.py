"""Calibrations: cost-model parameters fitted from measurements on one board.

A calibration file (``boards/calibration/<board>.yaml``) holds fitted values of the model's free
parameters, their uncertainty, where the measurements came from and the model's error before
and after fitting. ``CostContext.for_board`` applies the board's calibration when present, and
every projection names the calibration it used (or "none").

Free parameters and where they act:

- ``ddr_pl_efficiency`` -> ``board.ddr.pl_efficiency``
- ``per_call_overhead_us`` -> ``board.link.per_call_overhead_us``
- any name of ``CostConstants`` (``pipeline_latency_cycles``, ``rescale_ns_per_elem``, ...)
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dse.errors import DseError, located
from dse.io import read_text
from dse.model.board import Board
from dse.model.constants import DEFAULT_CONSTANTS, CostConstants

FORMAT_VERSION = 1
BOARD_PARAMS = ("ddr_pl_efficiency", "per_call_overhead_us")


def known_params() -> tuple[str, ...]:
    return BOARD_PARAMS + CostConstants.names()


@dataclass(frozen=True)
class FittedParam:
    """One fitted parameter: its value, standard error and the default it replaced."""

    value: float
    stderr: float | None
    default: float


@dataclass(frozen=True)
class Calibration:
    """Fitted parameters of one board, with provenance and errors."""

    board: str
    backend: str
    created: str
    params: dict[str, FittedParam]
    provenance: dict[str, Any] = field(default_factory=dict)
    error_before: dict[str, float] = field(default_factory=dict)
    error_after: dict[str, float] = field(default_factory=dict)
    per_layer: tuple[dict[str, Any], ...] = ()
    path: str = ""

    def label(self) -> str:
        where = self.path or f"{self.board} calibration"
        return f"{where} ({self.backend}, {self.created[:10]})"

    def apply(self, board: Board, constants: CostConstants = DEFAULT_CONSTANTS
              ) -> tuple[Board, CostConstants]:
        """The board and constants with this calibration's values in force."""
        return apply_params(board, constants, {k: p.value for k, p in self.params.items()})


def apply_params(board: Board, constants: CostConstants, values: dict[str, float]
                 ) -> tuple[Board, CostConstants]:
    """Set free parameters by name on a board and its constants (pure)."""
    ddr_eff = values.get("ddr_pl_efficiency")
    overhead = values.get("per_call_overhead_us")
    if ddr_eff is not None:
        board = board.model_copy(update={"ddr": board.ddr.model_copy(
            update={"pl_efficiency": float(min(1.0, max(1e-6, ddr_eff)))})})
    if overhead is not None:
        board = board.model_copy(update={"link": board.link.model_copy(
            update={"per_call_overhead_us": float(max(0.0, overhead))})})
    rest = {k: max(0.0, float(v)) for k, v in values.items() if k not in BOARD_PARAMS}
    if rest:
        constants = constants.with_overrides(rest, "calibration.parameters")
    return board, constants


def default_value(name: str, board: Board, constants: CostConstants = DEFAULT_CONSTANTS
                  ) -> float:
    if name == "ddr_pl_efficiency":
        return board.ddr.pl_efficiency
    if name == "per_call_overhead_us":
        return board.link.per_call_overhead_us
    return float(getattr(constants, name))


def calibration_path(board: Board) -> Path | None:
    """Where a board's calibration lives: ``calibration/<stem>.yaml`` beside its YAML."""
    if not board.path:
        return None
    return Path(board.path).resolve().parent / "calibration" / f"{board.stem}.yaml"


def calibration_to_dict(cal: Calibration) -> dict[str, Any]:
    def num(x: float | None) -> float | None:
        return None if x is None or not math.isfinite(x) else float(x)

    return {
        "format": FORMAT_VERSION,
        "board": cal.board,
        "backend": cal.backend,
        "created": cal.created,
        "parameters": {k: {"value": num(p.value), "stderr": num(p.stderr),
                           "default": num(p.default)} for k, p in cal.params.items()},
        "provenance": cal.provenance,
        "error_before": {k: num(v) for k, v in cal.error_before.items()},
        "error_after": {k: num(v) for k, v in cal.error_after.items()},
        "per_layer": list(cal.per_layer),
    }


def calibration_to_yaml(cal: Calibration) -> str:
    head = ("# dse calibration: cost-model parameters fitted from measurements.\n"
            "# Written by `dse calibrate`; explore and project apply it and say so.\n")
    return head + yaml.safe_dump(calibration_to_dict(cal), sort_keys=False, allow_unicode=True)


def calibration_from_dict(data: Any, path: str) -> Calibration:
    if not isinstance(data, dict):
        raise located(path, "", "a YAML mapping (a dse calibration)")
    if data.get("format") != FORMAT_VERSION:
        raise located(path, "format", f"{FORMAT_VERSION} (a dse calibration)", data.get("format"))
    for key in ("board", "backend", "created", "parameters"):
        if key not in data:
            raise located(path, key, "a value (field is missing)")
    params = {}
    if not isinstance(data["parameters"], dict):
        raise located(path, "parameters", "a mapping of parameter name to {value, stderr}")
    for name, p in data["parameters"].items():
        if name not in known_params():
            raise located(path, f"parameters.{name}", "one of " + ", ".join(known_params()))
        if not isinstance(p, dict) or not isinstance(p.get("value"), (int, float)) or isinstance(
                p.get("value"), bool):
            raise located(path, f"parameters.{name}.value", "a number", p)
        if not math.isfinite(p["value"]) or p["value"] < 0:
            raise located(path, f"parameters.{name}.value", "a finite number >= 0", p["value"])
        for key in ("stderr", "default"):  # issue 16: finite numbers or absent
            v = p.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                                  or not math.isfinite(v) or v < 0):
                raise located(path, f"parameters.{name}.{key}", "a finite number >= 0", v)
        params[name] = FittedParam(float(p["value"]), p.get("stderr"),
                                   float(p.get("default") or 0.0))
    for key in ("board", "backend"):  # issue 16: names are strings, not numbers
        if not isinstance(data[key], str) or not data[key]:
            raise located(path, key, "a non-empty string", data[key])
    if not isinstance(data["created"], (str, datetime.date)):
        raise located(path, "created", "a date or time (ISO 8601)", data["created"])
    # issue 16: the optional sections must have their shapes (a mapping, a list of mappings).
    for key, kind in (("provenance", dict), ("error_before", dict), ("error_after", dict),
                      ("per_layer", list)):
        if data.get(key) is not None and not isinstance(data[key], kind):
            raise located(path, key, "a mapping" if kind is dict else "a list", data[key])
    for key in ("error_before", "error_after"):
        for k, v in (data.get(key) or {}).items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise located(path, f"{key}.{k}", "a finite number", v)
    return Calibration(
        board=str(data["board"]), backend=str(data["backend"]), created=str(data["created"]),
        params=params, provenance=dict(data.get("provenance") or {}),
        error_before=dict(data.get("error_before") or {}),
        error_after=dict(data.get("error_after") or {}),
        per_layer=tuple(data.get("per_layer") or ()), path=path)


def load_calibration(path: str | Path) -> Calibration:
    p = Path(path)
    text = read_text(p, "calibration")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DseError(f"{p}: expected valid YAML ({getattr(exc, 'problem', exc)})") from None
    return calibration_from_dict(data, str(p))
