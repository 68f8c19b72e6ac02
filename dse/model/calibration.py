"""Calibrations: cost-model parameters fitted from measurements on one board.

A calibration file holds fitted values of the model's free parameters, their uncertainty,
where the measurements came from and the model's error before and after fitting. It is an
explicit input: ``dse calibrate`` writes it where the user says (``-o``, default a dated file
under ``calibrations/`` of the current directory), and ``explore`` / ``project`` apply one only
when it is named (``--calibration FILE``, or a ``calibration:`` field the user puts in a board
file). Every projection names the file it used and its sha256, or "none", so no command's
result changes through a file the user did not name.

Free parameters and where they act:

- ``ddr_pl_efficiency`` -> ``board.ddr.pl_efficiency``
- ``per_call_overhead_us`` -> ``board.link.per_call_overhead_us``
- ``ps_memory_bandwidth_gb_s`` -> ``board.ps_cpu.memory_bandwidth_gb_s``
- any name of ``CostConstants`` (``pipeline_latency_cycles``, ``rescale_ns_per_elem``, ...)
"""

from __future__ import annotations

import datetime
import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dse.errors import DseError, located
from dse.io import parse_yaml, read_text
from dse.model.board import Board
from dse.model.constants import DEFAULT_CONSTANTS, CostConstants

FORMAT_VERSION = 1
BOARD_PARAMS = ("ddr_pl_efficiency", "per_call_overhead_us", "ps_memory_bandwidth_gb_s")
#: Parameters that are fractions of a peak: a value must lie in (0, 1].
FRACTION_PARAMS = ("ddr_pl_efficiency", "host_gemm_efficiency", "s2mm_efficiency",
                   "mm2s_efficiency")
#: Parameters that divide (rates, ratios): a value must be > 0.
POSITIVE_PARAMS = ("ps_memory_bandwidth_gb_s", "cache_maint_bytes_per_s", "ps_ipc_ratio")
TOP_KEYS = ("format", "board", "backend", "created", "parameters", "covariance", "provenance",
            "error_before", "error_after", "per_layer", "per_entry")
#: How far a covariance's diagonal may be from its parameters' squared standard errors
#: (relative), and how negative its smallest eigenvalue may be against its largest (both
#: rounding, not a different matrix).
COV_TOLERANCE = 1e-6


#: Physical range of each fittable parameter (not guesses of the answer): a fit stays inside
#: them, and a calibration file holding a value outside them did not come from a fit.
PARAM_BOUNDS = {
    "ddr_pl_efficiency": (0.05, 1.0),
    "per_call_overhead_us": (0.0, 1e5),
    "native_call_overhead_us": (0.0, 1e5),
    "pipeline_latency_cycles": (0.0, 1e5),
    "rescale_ns_per_elem": (0.0, 1e4),
    "dma_setup_us": (0.0, 1e5),
    "ps_memory_bandwidth_gb_s": (0.01, 1e3),
    "cache_maint_bytes_per_s": (1e6, 1e12),
    "run_burst_us": (0.0, 1e4),
    "axi_lite_access_us": (0.0, 100.0),
    "native_op_overhead_us": (0.0, 1e4),
    "native_topk_cycles_per_elem": (0.0, 1e4),
    "native_attn_layer_overhead_us": (0.0, 1e4),
    "native_shift_scan_cycles_per_elem": (0.0, 1e4),
}


def bound_of(name: str, value: float) -> str | None:
    """Which end of ``PARAM_BOUNDS[name]`` a fitted ``value`` sits on ("low", "high"), within
    the fit's tolerance, or None: a fit that leaves a parameter there reports no standard
    error for it (``dse.model.fit``)."""
    lo, hi = PARAM_BOUNDS.get(name, (math.nan, math.nan))
    if math.isclose(value, lo, rel_tol=1e-6, abs_tol=1e-9):
        return "low"
    if math.isclose(value, hi, rel_tol=1e-6, abs_tol=1e-9):
        return "high"
    return None


def known_params() -> tuple[str, ...]:
    return BOARD_PARAMS + CostConstants.names()


def param_range_error(name: str, value: float) -> str | None:
    """What a value of ``name`` must be, when ``value`` is not that (None when it is)."""
    if not math.isfinite(value):
        return "a finite number"
    if name in FRACTION_PARAMS and not 0 < value <= 1:
        return "a number in (0, 1] (a fraction of a peak)"
    if name in PARAM_BOUNDS:
        lo, hi = PARAM_BOUNDS[name]
        if not lo <= value <= hi:
            return f"a number from {lo:g} to {hi:g} (its physical range)"
        return None
    if name in POSITIVE_PARAMS:
        return None if 0 < value <= CostConstants.MAX_VALUE else (
            f"a number > 0 and <= {CostConstants.MAX_VALUE:g}")
    return None if 0 <= value <= CostConstants.MAX_VALUE else (
        f"a number >= 0 and <= {CostConstants.MAX_VALUE:g}")


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
    per_entry: tuple[dict[str, Any], ...] = ()
    path: str = ""
    sha256: str = ""
    #: The fitted parameters' covariance (name -> name -> value, in their units; empty: the
    #: file holds only standard errors, which are then taken as uncorrelated).
    covariance: dict[str, dict[str, float]] = field(default_factory=dict)

    def covariance_matrix(self) -> tuple[tuple[str, ...], tuple[tuple[float, ...], ...]]:
        """(parameter names, their covariance) a calibrated projection propagates: the
        file's covariance, or its standard errors on the diagonal when it holds none (a
        parameter with no standard error, which the data did not constrain, is left out)."""
        if self.covariance:
            names = tuple(self.covariance)
            return names, tuple(tuple(self.covariance[a][b] for b in names) for a in names)
        names = tuple(k for k, p in self.params.items() if p.stderr is not None)
        return names, tuple(tuple((self.params[a].stderr or 0.0) ** 2 if a == b else 0.0
                                  for b in names) for a in names)

    def label(self) -> str:
        """``FILE (sha256 1a2b3c4d5e6f, BACKEND, DATE)``: what reports and JSON print."""
        where = self.path or f"{self.board} calibration"
        digest = f"sha256 {self.sha256[:12]}, " if self.sha256 else ""
        return f"{where} ({digest}{self.backend}, {self.created[:10]})"

    def apply(self, board: Board, constants: CostConstants = DEFAULT_CONSTANTS
              ) -> tuple[Board, CostConstants]:
        """The board and constants with this calibration's values in force."""
        return apply_params(board, constants, {k: p.value for k, p in self.params.items()})


def apply_params(board: Board, constants: CostConstants, values: dict[str, float]
                 ) -> tuple[Board, CostConstants]:
    """Set free parameters by name on a board and its constants (pure)."""
    ddr_eff = values.get("ddr_pl_efficiency")
    overhead = values.get("per_call_overhead_us")
    ps_bw = values.get("ps_memory_bandwidth_gb_s")
    if ps_bw is not None:
        board = board.model_copy(update={"ps_cpu": board.ps_cpu.model_copy(
            update={"memory_bandwidth_gb_s": float(max(1e-6, ps_bw))})})
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
    if name == "ps_memory_bandwidth_gb_s":
        return board.ps_cpu.memory_bandwidth_gb_s
    return float(getattr(constants, name))


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
        **({"covariance": {a: {b: float(v) for b, v in row.items()}
                           for a, row in cal.covariance.items()}} if cal.covariance else {}),
        "provenance": cal.provenance,
        "error_before": {k: num(v) for k, v in cal.error_before.items()},
        "error_after": {k: num(v) for k, v in cal.error_after.items()},
        "per_layer": list(cal.per_layer),
        "per_entry": list(cal.per_entry),
    }


def calibration_to_yaml(cal: Calibration) -> str:
    head = ("# dse calibration: cost-model parameters fitted from measurements.\n"
            "# Written by `dse calibrate`; explore and project apply it only when named\n"
            "# (--calibration FILE, or a board file's calibration: field) and print its sha256.\n")
    return head + yaml.safe_dump(calibration_to_dict(cal), sort_keys=False, allow_unicode=True)


def _number(path: str, field: str, v: Any, *, allow_none: bool = False) -> float | None:
    """A finite int/float (not a bool, not .nan/.inf), or the one-line error."""
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise located(path, field, "a number" + (" or null" if allow_none else ""), v)
    if not math.isfinite(v):
        raise located(path, field, "a finite number", v)
    return float(v)


def _mapping(path: str, field: str, v: Any) -> dict:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise located(path, field, "a mapping", v)
    return v


def _errors(path: str, field: str, v: Any) -> dict[str, float]:
    out = {}
    for k, x in _mapping(path, field, v).items():
        out[str(k)] = _number(path, f"{field}.{k}", x)
        if out[str(k)] < 0:
            raise located(path, f"{field}.{k}", "a number >= 0 (an absolute error)", x)
    return out


def _rows(path: str, field: str, v: Any) -> tuple[dict[str, Any], ...]:
    if v is None:
        return ()
    if not isinstance(v, list) or not all(isinstance(r, dict) for r in v):
        raise located(path, field, "a list of mappings", v)
    return tuple(v)


def _covariance(path: str, v: Any, params: dict[str, FittedParam]
                ) -> dict[str, dict[str, float]]:
    """The file's covariance, checked: a square mapping over parameters it fits (each with a
    standard error), symmetric, its diagonal their squared standard errors, and positive
    semi-definite (a covariance); or the one-line error."""
    import numpy as np

    if v is None:
        return {}
    cov = _mapping(path, "covariance", v)
    names = [str(k) for k in cov]
    for a in names:
        if a not in params:
            raise located(path, f"covariance.{a}", "a parameter of this calibration (one of "
                          + ", ".join(params) + ")")
        if params[a].stderr is None:
            raise located(path, f"covariance.{a}", "a parameter with a standard error (this "
                          "one is unconstrained: it has no covariance)")
    out: dict[str, dict[str, float]] = {}
    for a in names:
        row = cov[a]
        if not isinstance(row, dict) or sorted(map(str, row)) != sorted(names):
            raise located(path, f"covariance.{a}", "a mapping over the same parameters as "
                          "covariance (" + ", ".join(names) + ")", row)
        out[a] = {str(b): _number(path, f"covariance.{a}.{b}", x) for b, x in row.items()}
    for a in names:
        want = (params[a].stderr or 0.0) ** 2
        if abs(out[a][a] - want) > COV_TOLERANCE * max(want, 1e-300) + 1e-300:
            raise located(path, f"covariance.{a}.{a}", f"the squared standard error of {a} "
                          f"({want:.6g})", out[a][a])
        for b in names:
            if abs(out[a][b] - out[b][a]) > COV_TOLERANCE * math.sqrt(
                    abs(out[a][a] * out[b][b])) + 1e-300:
                raise located(path, f"covariance.{a}.{b}", f"covariance.{b}.{a} "
                              f"({out[b][a]:.6g}): a covariance is symmetric", out[a][b])
    left = [k for k, p in params.items() if p.stderr is not None and k not in names]
    if names and left:
        # the band propagates the covariance alone: a fitted parameter left out of it would
        # carry no uncertainty at all
        raise located(path, f"covariance.{left[0]}", "a row for every parameter with a "
                      "standard error (the band propagates the covariance alone; this one "
                      "would carry no uncertainty)")
    m = np.array([[out[a][b] for b in names] for a in names], dtype=float)
    d = np.sqrt(np.clip(np.diag(m), 1e-300, None))
    corr = m / np.outer(d, d)  # in each parameter's own units: eigenvalues comparable
    low = float(np.linalg.eigvalsh((corr + corr.T) / 2).min()) if names else 0.0
    if low < -1e-6:
        raise located(path, "covariance", "a positive semi-definite matrix (a covariance: "
                      f"its correlations' smallest eigenvalue is {low:.3g})")
    return out


def calibration_from_dict(data: Any, path: str, sha256: str = "") -> Calibration:
    """A validated Calibration: every field typed, finite and in its range, or one line."""
    if not isinstance(data, dict):
        raise located(path, "", "a YAML mapping (a dse calibration)")
    if data.get("format") != FORMAT_VERSION or isinstance(data.get("format"), bool):
        raise located(path, "format", f"{FORMAT_VERSION} (a dse calibration)", data.get("format"))
    unknown = sorted(str(k) for k in data if k not in TOP_KEYS)
    if unknown:
        raise located(path, unknown[0], "one of the calibration fields (" + ", ".join(TOP_KEYS)
                      + ")")
    for key in ("board", "backend", "created", "parameters"):
        if key not in data:
            raise located(path, key, "a value (field is missing)")
    for key in ("board", "backend"):
        if not isinstance(data[key], str) or not data[key].strip():
            raise located(path, key, "a non-empty string", data[key])
    if isinstance(data["created"], datetime.date):  # YAML reads an unquoted date as one
        data = {**data, "created": data["created"].isoformat()}
    if not isinstance(data["created"], str) or not data["created"].strip():
        raise located(path, "created", "a date or time (ISO 8601)", data["created"])
    params = {}
    if not isinstance(data["parameters"], dict) or not data["parameters"]:
        raise located(path, "parameters", "a mapping of parameter name to {value, stderr}",
                      data["parameters"])
    for name, p in data["parameters"].items():
        where = f"parameters.{name}"
        if name not in known_params():
            raise located(path, where, "one of " + ", ".join(known_params()))
        if not isinstance(p, dict) or "value" not in p:
            raise located(path, f"{where}.value", "a number", p)
        extra = sorted(str(k) for k in p if k not in ("value", "stderr", "default"))
        if extra:
            raise located(path, f"{where}.{extra[0]}", "one of value, stderr, default")
        value = _number(path, f"{where}.value", p["value"])
        if (why := param_range_error(name, value)) is not None:
            raise located(path, f"{where}.value", why, p["value"])
        stderr = _number(path, f"{where}.stderr", p.get("stderr"), allow_none=True)
        if stderr is not None and stderr < 0:
            raise located(path, f"{where}.stderr", "a number >= 0 or null", p["stderr"])
        if stderr is not None and stderr > CostConstants.MAX_VALUE:
            # the band moves each parameter by a tenth of its standard error: one of 1e150
            # took run_burst_us out of its range mid-projection, in an error naming no file
            raise located(path, f"{where}.stderr", f"a number from 0 to "
                          f"{CostConstants.MAX_VALUE:g} or null", p["stderr"])
        default = _number(path, f"{where}.default", p.get("default"), allow_none=True)
        params[name] = FittedParam(value, stderr, 0.0 if default is None else default)
    return Calibration(
        board=data["board"], backend=data["backend"], created=data["created"],
        params=params, provenance=dict(_mapping(path, "provenance", data.get("provenance"))),
        covariance=_covariance(path, data.get("covariance"), params),
        error_before=_errors(path, "error_before", data.get("error_before")),
        error_after=_errors(path, "error_after", data.get("error_after")),
        per_layer=_rows(path, "per_layer", data.get("per_layer")),
        per_entry=_rows(path, "per_entry", data.get("per_entry")), path=path, sha256=sha256)


def load_calibration(path: str | Path) -> Calibration:
    """Read and validate a calibration file; its sha256 goes into every label it makes."""
    p = Path(path)
    text = read_text(p, "calibration")
    data = parse_yaml(text, p)
    return calibration_from_dict(data, str(p), hashlib.sha256(text.encode("utf-8")).hexdigest())


def calibration_file(board: Board, option: str | None) -> Path | None:
    """The calibration file the user named: ``--calibration FILE``, else the board file's
    ``calibration:`` field (relative to the board file), else none; ``none`` ignores both."""
    if option == "none":
        return None
    if option is not None:
        return Path(option)
    named = getattr(board, "calibration", None)
    if not named:
        return None
    base = Path(board.path).parent if board.path else Path(".")
    target = Path(named) if Path(named).is_absolute() else base / named
    if not target.exists():
        raise DseError(f"{board.path or board.name}: calibration: expected an existing "
                       f"calibration file (relative to the board file), {target} does not exist")
    return target


def resolve_calibration(board: Board, option: str | None) -> Calibration | None:
    """The calibration :func:`calibration_file` names, loaded (None: none named)."""
    path = calibration_file(board, option)
    return None if path is None else load_calibration(path)
