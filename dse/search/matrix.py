"""Which model fits which board: one cell per (model, board), from the models' configs alone.

Each cell is the search ``dse explore`` runs, trimmed to what the matrix shows: the design
space the shipped overlay builds on the board (its engine template), every design priced with
its exactly optimal offload set under the ``native`` runtime (a model config has no measured
host times, so ``torch`` is not priced), the KV-cache format and the attention unit chosen as
explore chooses them, then the most promising designs refined exactly with the MILP (on-chip
residency and the board's DDR capacity). The cell keeps the fastest feasible plan, its decode
tok/s, its time to first token (the prefill of the prompt) and J/token where the board has a
power model; a model that fits nowhere on the board gets the advice of
``dse.search.advice`` instead of a plan. Pure: boards, configs and the template come in.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from dse.model.arch import ModelConfig
from dse.model.board import Board
from dse.model.project import CostContext, Projection, project
from dse.model.template import EngineTemplate
from dse.model.workload import workload_from_config
from dse.search.advice import FitAdvice, fit_advice
from dse.search.optimize import (
    SEARCHED_KV_DTYPES,
    Objective,
    evaluate_designs,
    prepare,
    solve_plan,
)
from dse.search.space import default_space, enumerate_designs, unit_choices

#: Designs refined exactly by the MILP per cell (the best by the exact offload price, plus
#: the best of each packing).
REFINED = 3


@dataclass(frozen=True)
class MatrixCell:
    """One model on one board: the fastest feasible plan, or why none fits."""

    model: str
    board: str
    feasible: bool
    #: Why it fits (memory used of the board's) or why not (and what would fit).
    why: str
    #: The plan: engine design and PL units (None when nothing fits).
    plan: str | None = None
    #: How to build it (the make line), when the shipped overlay builds it.
    make: str | None = None
    decode_tok_s: float | None = None
    ttft_ms: float | None = None
    j_per_token: float | None = None
    memory_mib: float | None = None
    capacity_mib: float = 0.0
    #: The native runtime alone on the board's CPU, tok/s (None if it does not fit).
    cpu_tok_s: float | None = None
    bound: str = ""
    kv_dtype: str = ""
    advice: FitAdvice | None = None


def _describe(proj: Projection) -> str:
    plan = proj.plan
    units = " + ".join(plan.unit_labels)
    return f"{plan.design.label()}" + (f" + {units}" if units else "") + (
        f", KV {proj.scenario.kv_dtype}")


def matrix_cell(cfg: ModelConfig, board: Board, template: EngineTemplate,
                prompt_tokens: int = 128, gen_tokens: int = 128,
                models: tuple[ModelConfig, ...] = (), boards: tuple[Board, ...] = (),
                fabric=None) -> MatrixCell:
    """Search ``cfg`` on ``board`` as the matrix does (see the module's docstring); ``models``
    and ``boards`` are the candidates an infeasible cell's advice names; ``fabric`` the
    evidence in force (``dse.fabric_data.load_fabric``; None: estimated, no clock check)."""
    wl = workload_from_config(cfg)
    ctx = CostContext.for_board(board, fabric=fabric)
    prompt = min(prompt_tokens, cfg.max_positions - 1)
    gen = min(gen_tokens, cfg.max_positions - prompt)
    obj = Objective("decode", prompt, gen, "on-board", runtimes=("native",),
                    kv_dtype=SEARCHED_KV_DTYPES[0], kv_dtypes=SEARCHED_KV_DTYPES,
                    units=unit_choices(template, board, cfg))
    prep = prepare(wl, ctx, obj)
    sc, _ = prep.scenarios[0]
    base = prep.baselines[0]
    cpu = min((b for b in base if b.feasible), key=lambda b: b.ms, default=None)
    designs, _ = enumerate_designs(board, ctx.constants, default_space("decode",
                                                                       template=template),
                                   max(layer.k for layer in wl.layers))
    evals = sorted(evaluate_designs(prep, designs),
                   key=lambda e: (round(e.objective_ms, 9), e.lut))
    short = evals[:REFINED]
    for packing in dict.fromkeys(e.design.packing for e in evals):
        e = next(e for e in evals if e.design.packing == packing)
        if e not in short:
            short.append(e)
    best: Projection | None = None
    for e in short:
        s = solve_plan(prep, e.design, "best", runtime=e.runtime, units=e.units,
                       kv_dtype=e.kv_dtype)
        proj = project(wl, s.plan, ctx, replace(sc, kv_dtype=e.kv_dtype), base=base)
        if proj.feasible and (best is None or proj.plan_ms < best.plan_ms):
            best = proj
    capacity = board.ddr.capacity_bytes / 2**20
    if best is None:
        advice = fit_advice(wl, ctx, sc.context_tokens, models, boards)
        return MatrixCell(cfg.name, board.name, False, "; ".join(map(str, advice.messages())),
                          capacity_mib=capacity, advice=advice,
                          cpu_tok_s=None if cpu is None else 1e3 / cpu.ms)
    from dse.model.prompt import prompt_cost

    pre = prompt_cost(wl, best.plan, ctx, prompt, kv_dtype=best.scenario.kv_dtype)
    mem = best.memory_bytes / 2**20
    plan = best.plan
    return MatrixCell(
        cfg.name, board.name, True,
        f"fits: {mem:,.0f} of {capacity:,.0f} MiB of DDR", _describe(best),
        plan.build_note if plan.design.buildable and plan.glue is None else None,
        best.tokens_per_s, pre.ttft_ms,
        None if best.energy is None else best.energy.j_per_token, mem, capacity,
        None if cpu is None else 1e3 / cpu.ms, best.bound, best.scenario.kv_dtype)


def matrix(models: tuple[ModelConfig, ...], boards: tuple[Board, ...],
           template: EngineTemplate, prompt_tokens: int = 128, gen_tokens: int = 128,
           progress=None, fabric=None) -> tuple[MatrixCell, ...]:
    """Every model on every board (models outer, boards inner); ``progress(done, total)``."""
    cells = []
    total = len(models) * len(boards)
    for cfg in models:
        for board in boards:
            cells.append(matrix_cell(cfg, board, template, prompt_tokens, gen_tokens, models,
                                     boards, fabric))
            if progress is not None:
                progress(len(cells), total)
    return tuple(cells)


__all__ = ["REFINED", "MatrixCell", "matrix", "matrix_cell"]
