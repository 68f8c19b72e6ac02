"""``dse explore --json``: the ranked plans, Pareto fronts and sensitivity as JSON.

Each plan carries its projections in the same form as ``dse project --json``
(``projection_to_dict``), so ``dse compare`` reads plans from either command alike.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from dse import __version__
from dse.io import json_text
from dse.report.explore_md import summary_of
from dse.report.plan_json import _num, projection_to_dict
from dse.search.explore import ExploreResult, RankedPlan

FORMAT = "dse-explore"
FORMAT_VERSION = 2


def ranked_to_dict(rp: RankedPlan, rank: int | None, board, equivalent: bool = False
                   ) -> dict[str, Any]:
    ob = rp.objective_band
    bands = rp.bands or (None,) * len(rp.projections)
    return {
        "rank": rank,
        "label": rp.label,
        "plan_id": rp.plan.identity,
        "why": "; ".join(map(str, rp.why)),
        "method": str(rp.method),
        "objective_ms": rp.objective_ms,
        "baseline_ms": rp.baseline_ms,
        "speedup_vs_baseline": _num(rp.speedup),
        "feasible": rp.feasible,
        # each projection's weight in the objective (a prompt's forwards, the decode rounds)
        "weights": list(rp.scenario_weights()),
        # the objective's 90% band, and whether it overlaps the best plan's (equivalent
        # within the model's error)
        "objective_band": None if ob is None else {"value": ob.value, "lo": ob.lo, "hi": ob.hi},
        "equivalent_to_best": equivalent,
        "projections": [projection_to_dict(p, board, b)
                        for p, b in zip(rp.projections, bands, strict=True)],
    }


def explore_to_dict(result: ExploreResult, profile_source: str) -> dict[str, Any]:
    board = result.board
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "dse_version": __version__,
        "board": board.name,
        "board_file": board.path,
        "profile": profile_source,
        "objective": {**asdict(result.objective), "describe": result.objective.describe()},
        "calibration": result.calibration,
        "designs_evaluated": result.designs_evaluated,
        "designs_rejected": result.designs_rejected,
        "plans": [ranked_to_dict(rp, i, board, result.equivalent(rp))
                  for i, rp in enumerate(result.plans, 1)],
        "validation": result.validation or None,
        "ttft_band_ms": None if result.ttft_band is None else [result.ttft_band.lo,
                                                               result.ttft_band.hi],
        "naive": ranked_to_dict(result.naive, None, board),
        "pareto_lut": [asdict(p) for p in result.pareto_lut],
        "pareto_ddr": [asdict(p) for p in result.pareto_ddr],
        "pareto_energy": [asdict(p) for p in result.pareto_energy],
        "sensitivity": [{**asdict(s), "swing": s.swing} for s in result.sensitivity],
        "decode_vs_context": [
            {"label": curve.label, "points": [
                {"context_tokens": c, "tokens_per_s": _num(t),
                 **({"tokens_per_s_band": [_num(b[0]), _num(b[1])]} if b else {})}
                for (c, t), b in zip(curve.points, curve.band or [None] * len(curve.points),
                                     strict=True)]}
            for curve in result.context_curves],
        "decode_vs_sequences": [
            {"label": curve.label, "points": [
                {"sequences": n, "aggregate_tokens_per_s": _num(t),
                 "sequence_latency_ms": _num(ms)} for n, t, ms in curve.points]}
            for curve in result.sequence_curves],
        "ttft_vs_prompt": [
            {"label": curve.label, "prompt_group": curve.group, "points": [
                {"prompt_tokens": n, "ttft_ms": _num(ms)} for n, ms in curve.points]}
            for curve in result.prompt_curves],
        "notes": [str(n) for n in result.notes],
        "summary": summary_of(result),
        "reference": None if result.reference is None else {
            **asdict(result.reference), "unattributed_ms": result.reference.unattributed_ms},
    }


def explore_to_json(result: ExploreResult, profile_source: str) -> str:
    """Strict JSON (``dse.io.json_text``: a non-finite number is an error, never ``NaN``)."""
    return json_text(explore_to_dict(result, profile_source), "explore JSON")
