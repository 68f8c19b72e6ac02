"""A Projection as a JSON-ready dict: the machine-readable twin of ``dse project``'s tables.

One function so that ``dse project --json`` and ``dse explore --json`` describe a plan the same
way. Every quantity carries its unit in its key (``_ms``, ``_bytes``, ``_fraction``), and every
speedup names its baseline, so a reader never has to guess what a number is relative to.
Non-finite numbers (a URAM utilization on a part without URAM, a speedup over zero time)
become ``null``: strict JSON has no infinity.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict
from typing import Any

from dse.model.board import Board
from dse.model.cost import CallCost
from dse.model.engine import Resources
from dse.model.project import VIEW_TEXT, Projection

FORMAT = "dse-projection"
FORMAT_VERSION = 1

#: What each baseline is; the keys match the ``speedup_vs_*`` suffixes.
BASELINES = {
    "pytorch": "PyTorch as profiled (on-board view: scaled to the board's PS by the ratio of "
    "the two CPUs' roofline times)",
    "bitnetcpp": "a bitnet.cpp-class kernel (2-bit weights at memory bandwidth, int8 math) on "
    "the same CPU, for every layer",
}


def _natural(name: str) -> list[object]:
    """Sort key putting ``layers.2`` before ``layers.10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _num(x: float) -> float | None:
    """A finite float, or None (JSON has no inf/NaN)."""
    return float(x) if math.isfinite(x) else None


def _ratio(a: float, b: float) -> float | None:
    return _num(a / b) if b > 0 else None


def _call(call: CallCost) -> dict[str, Any]:
    return {
        "n": call.n, "k": call.k, "m_tokens": call.m, "cycles": call.cycles,
        "weight_bytes": call.weight_bytes, "act_bytes": call.act_bytes,
        "out_bytes": call.out_bytes, "compute_ms": call.compute_s * 1e3,
        "ddr_ms": call.ddr_s * 1e3, "link_ms": call.link_s * 1e3,
        "overhead_ms": call.overhead_s * 1e3, "ps_ms": call.ps_s * 1e3,
        "time_ms": call.time_s * 1e3, "bound": call.bound,
    }


def _resources(res: Resources) -> dict[str, float]:
    return {kind: float(getattr(res, kind)) for kind in Resources.KINDS}


def projection_to_dict(projection: Projection, board: Board | None = None) -> dict[str, Any]:
    """Everything ``dse project`` prints, as plain data (pure).

    ``board``, when given, adds what the device has and the utilization caps beside what the
    plan uses (the Projection itself keeps only the board's name).
    """
    p = projection
    plan, sc = p.plan, p.scenario
    design = asdict(plan.design)
    out: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "plan": {
            "name": plan.name,
            "note": plan.note,
            "design": design,
            "design_label": plan.design.label(),
            "offload": sorted(plan.offload, key=_natural),
            "resident": sorted(plan.resident, key=_natural),
            "fuse": plan.fuse,
        },
        "board": p.board,
        "scenario": {"view": sc.view, "view_text": VIEW_TEXT.get(sc.view, sc.view),
                     "phase": sc.phase, "m_tokens": sc.m, "context_tokens": sc.context_tokens},
        "calibration": p.calibration,
        "baselines": dict(BASELINES),
        "end_to_end": {
            "baseline_ms": p.baseline_ms,
            "plan_ms": p.plan_ms,
            "speedup_vs_pytorch": _num(p.speedup),
            "bitnetcpp_ms": p.bitnetcpp_ms,
            "plan_bitnetcpp_ms": p.plan_bitnetcpp_ms,
            "speedup_vs_bitnetcpp": _num(p.speedup_vs_bitnetcpp),
            "nonlinear_ms": p.nonlinear_ms,
            "bound": p.bound,
            "ddr_weight_bytes": p.ddr_weight_bytes,
            "ddr_floor_ms": p.ddr_floor_ms,
        },
        "resources_used": _resources(p.resources),
        "utilization_fraction": {k: _num(v) for k, v in p.utilization.items()},
        "memory": {"memory_bytes": p.memory_bytes,
                   "memory_capacity_bytes": p.memory_capacity_bytes,
                   "memory_fraction": _ratio(p.memory_bytes, p.memory_capacity_bytes)},
        "feasible": p.feasible,
        "infeasible": list(p.infeasible),
        "calls": {key: _call(call) for key, call in p.calls.items()},
        "layers": [
            {"name": r.name, "role": r.role, "n": r.n, "k": r.k, "placement": r.placement,
             "call": r.call, "baseline_ms": r.baseline_ms, "bitnetcpp_ms": r.bitnetcpp_ms,
             "plan_ms": r.time_ms, "speedup_vs_pytorch": _ratio(r.baseline_ms, r.time_ms),
             "bound": r.bound or "cpu"}
            for r in p.layers
        ],
        "notes": list(p.notes),
    }
    if board is not None:
        out["resources_available"] = {k: float(getattr(board.pl, k)) for k in Resources.KINDS}
        out["caps_fraction"] = {k: float(getattr(board.caps, k)) for k in Resources.KINDS}
    return out
