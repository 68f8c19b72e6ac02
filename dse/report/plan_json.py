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
from dse.model.cpu import RUNTIME_TEXT
from dse.model.engine import Resources
from dse.model.project import VIEW_TEXT, Projection
from dse.model.units import kinds

FORMAT = "dse-projection"
FORMAT_VERSION = 2


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


def energy_to_dict(e) -> dict[str, Any] | None:
    """An Energy as plain data (None: the board has no power model)."""
    if e is None:
        return None
    return {"watts": _num(e.watts), "joules": _num(e.joules),
            "j_per_token": _num(e.j_per_token), "tokens_per_j": _num(e.tokens_per_j),
            "parts_j": {k: _num(v) for k, v in e.parts_j.items()}}


def _unit(unit, kind) -> dict[str, Any] | None:
    if unit is None:
        return None
    return {**kind.to_mapping(unit), "buildable": unit.buildable,
            "build_note": unit.build_note}


def _resources(res: Resources) -> dict[str, float]:
    return {kind: float(getattr(res, kind)) for kind in Resources.KINDS}


def projection_to_dict(projection: Projection, board: Board | None = None,
                       band=None) -> dict[str, Any]:
    """Everything ``dse project`` prints, as plain data (pure).

    ``board``, when given, adds what the device has and the utilization caps beside what the
    plan uses (the Projection itself keeps only the board's name); ``band`` (a
    ``dse.model.band.ProjectionBand``) each figure's 90% band and what was never measured.
    """
    p = projection
    plan, sc = p.plan, p.scenario
    design = asdict(plan.design)
    out: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "plan": {
            "name": plan.name,
            "id": plan.identity,
            "note": plan.note,
            "design": design,
            "design_label": plan.design.label(),
            "offload": sorted(plan.offload, key=_natural),
            "resident": sorted(plan.resident, key=_natural),
            "fuse": plan.fuse,
            "runtime": plan.runtime,
            "units": list(plan.unit_labels),
            # each PL unit kind's plan-file entry (None: the plan has none), as a plan file
            # would state it, with whether the overlay builds it
            **{k.name: _unit(plan.unit(k.name), k) for k in kinds()},
            "buildable": plan.buildable,
            "kv_dtype": plan.kv_dtype,
            "prompt_group": plan.prompt_group,
            "build_note": plan.build_note,
        },
        "board": p.board,
        "scenario": {"view": sc.view, "view_text": VIEW_TEXT.get(sc.view, sc.view),
                     "phase": sc.phase, "m_tokens": sc.m, "context_tokens": sc.context_tokens,
                     "kv_dtype": sc.kv_dtype, "sequences": sc.sequences,
                     "sequence_contexts": list(sc.sequence_contexts), "logits": sc.logits,
                     "cpu": p.cpu, "threads": p.threads},
        "calibration": p.calibration,
        "runtime": {"name": plan.runtime, "text": RUNTIME_TEXT[plan.runtime]},
        "baselines": [
            {"runtime": b.runtime, "text": RUNTIME_TEXT[b.runtime], "ms": _num(b.ms),
             "memory_bytes": b.memory_bytes, "feasible": b.feasible,
             "reason": None if b.reason is None else str(b.reason),
             "speedup": _ratio(b.ms, p.plan_ms), "energy": energy_to_dict(b.energy)}
            for b in p.baselines
        ],
        "end_to_end": {
            "plan_ms": p.plan_ms,
            "tokens_per_s": _num(p.tokens_per_s),
            # a round of sequences: each waits for the whole forward
            "sequence_latency_ms": p.plan_ms,
            "baseline_runtime": p.baseline.runtime if p.baselines else None,
            "baseline_ms": _num(p.baseline_ms) if p.baselines else None,
            "speedup": _num(p.speedup) if p.baselines else None,
            "bound": p.bound,
            "ddr_weight_bytes": p.ddr_weight_bytes,
            "ddr_floor_ms": p.ddr_floor_ms,
        },
        "breakdown_ms": dict(p.components),
        "energy": energy_to_dict(p.energy),
        "work": {"time_s": p.work.time_s, "core_s": p.work.core_s,
                 "ddr_bytes": p.work.ddr_bytes, "pl_busy_s": p.work.pl_busy_s},
        "resources_used": _resources(p.resources),
        "resource_basis": None if p.evidence is None else p.evidence.resource_basis,
        "clock_evidence": None if p.evidence is None else {
            "supported_mhz": p.evidence.clock.mhz, "evidence": p.evidence.clock.evidence,
            "beyond_evidence": p.evidence.beyond},
        "utilization_fraction": {k: _num(v) for k, v in p.utilization.items()},
        "memory": {"memory_bytes": p.memory_bytes,
                   "memory_capacity_bytes": p.memory_capacity_bytes,
                   "memory_fraction": _ratio(p.memory_bytes, p.memory_capacity_bytes)},
        "feasible": p.feasible,
        "infeasible": [str(r) for r in p.infeasible],
        "calls": {key: _call(call) for key, call in p.calls.items()},
        "layers": [
            {"name": r.name, "role": r.role, "n": r.n, "k": r.k, "placement": r.placement,
             "call": r.call, "cpu_ms": r.cpu_ms, "plan_ms": r.time_ms,
             "speedup_vs_cpu": _ratio(r.cpu_ms, r.time_ms), "bound": r.bound or "cpu"}
            for r in p.layers
        ],
        "operators": [
            {"role": o.role, "kind": o.kind, "count": o.count, "device": o.device,
             "time_ms": o.time_ms, "bound": o.bound, "basis": str(o.basis),
             "component": o.component}
            for o in p.ops
        ],
        "notes": [str(n) for n in p.notes],
        "band": None if band is None else band.to_dict(),
    }
    if board is not None:
        out["resources_available"] = {k: float(getattr(board.pl, k)) for k in Resources.KINDS}
        out["caps_fraction"] = {k: float(getattr(board.caps, k)) for k in Resources.KINDS}
    return out
