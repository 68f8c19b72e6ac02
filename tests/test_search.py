"""The search: exactness against brute force, and behaviour on the embedded 2B-4T profile."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from dse.model.arch import ModelConfig
from dse.model.board import load_board
from dse.model.engine import EngineDesign
from dse.model.ops import decoder_ops
from dse.model.project import CostContext, project
from dse.model.workload import HostSpec, Layer, Workload
from dse.search.explore import ParetoPoint, explore, pareto
from dse.search.optimize import Objective, brute_force, prepare, solve_plan
from dse.search.space import DesignSpace

BOARDS = Path(__file__).resolve().parents[1] / "boards"


def small_workload(blocks: int = 2) -> Workload:
    """A few decoder blocks of odd shapes with uneven host times (so choices differ)."""
    layers = []
    for i in range(blocks):
        for role, n, k, ms in (("q_proj", 384, 256, 0.05), ("k_proj", 128, 256, 0.02),
                               ("v_proj", 128, 256, 0.5), ("o_proj", 256, 384, 0.002 + i),
                               ("down_proj", 256, 1000, 3.0)):
            layers.append(Layer(f"model.layers.{i}.x.{role}", role, i, n, k, True, ms, 10,
                                ms * 10))
    host = HostSpec("test host (x86-64)", 100.0, 10.0, 3000.0, "test", 2)
    cfg = ModelConfig("tiny", "bitnet", hidden=256, intermediate=1000, layers=blocks, heads=2,
                      kv_heads=1, vocab=1000, max_positions=512)
    return Workload("tiny", cfg, 4, tuple(layers), decoder_ops(cfg), (), host, 20.0, None,
                    None, ())


@pytest.fixture(scope="module")
def zcu104():
    return load_board(BOARDS / "zcu104.yaml")


@pytest.mark.parametrize("uram", [0, 1, 4])
@pytest.mark.parametrize("view", ["on-board", "host-attached"])
def test_milp_equals_brute_force(zcu104, uram, view):
    """On a space small enough to enumerate (3**6 plans), the MILP finds the true optimum."""
    board = zcu104.model_copy(update={"pl": zcu104.pl.model_copy(update={"uram": uram or 1}),
                                      "caps": zcu104.caps.model_copy(update={"bram36": 0.05})})
    if uram == 0:
        board = board.model_copy(update={"caps": board.caps.model_copy(update={"uram": 0.01})})
    ctx = CostContext.for_board(board)
    wl = small_workload()
    prep = prepare(wl, ctx, Objective(view=view, runtimes=("torch",)))
    assert len(prep.groups) == 6  # qkv, o, down per block
    design = EngineDesign(pe=4, simd=8, packing="base3", clock_mhz=250, max_k=1000)
    sol = solve_plan(prep, design)
    best_ms = min(brute_force(prep, design, rc.runtime)[0] for rc in prep.runtimes)
    assert sol.optimal
    assert sol.objective_ms == pytest.approx(best_ms, rel=1e-9)
    # The plan the MILP returns, projected independently, costs what the MILP said.
    proj = project(wl, sol.plan, ctx, prep.scenarios[0][0])
    assert proj.plan_ms == pytest.approx(sol.objective_ms, rel=1e-9)
    assert sol.plan.resident <= sol.plan.offload


def test_offload_only_where_faster(zcu104):
    """A layer whose CPU time is tiny (o_proj of block 0) is not worth a call's overhead."""
    ctx = CostContext.for_board(zcu104)
    wl = small_workload()
    prep = prepare(wl, ctx, Objective(view="host-attached", runtimes=("torch",)))
    sol = solve_plan(prep, EngineDesign(pe=4, simd=8, max_k=1000), allow_resident=False)
    assert "model.layers.0.x.o_proj" not in sol.plan.offload
    assert "model.layers.0.x.down_proj" in sol.plan.offload


def test_pareto_front_is_non_dominated():
    pts = [ParetoPoint(str(i), lut, 0.0, sp) for i, (lut, sp) in
           enumerate([(10, 1.0), (20, 3.0), (15, 0.5), (30, 2.0), (40, 4.0), (40, 3.5)])]
    front = pareto(pts, lambda p: p.lut)
    assert [(p.lut, p.speedup) for p in front] == [(10, 1.0), (20, 3.0), (40, 4.0)]


@pytest.fixture(scope="module")
def seed_result(zcu104):
    from dse.model.workload import workload_from_profile
    from dse.profile.default import default_profile

    wl = workload_from_profile(default_profile())
    return wl, explore(wl, CostContext.for_board(zcu104), Objective())


def test_explore_default_profile_zcu104(seed_result, zcu104):
    wl, r = seed_result
    best = r.best
    assert best.label == "best" and best.feasible
    # every ternary layer is worth offloading on the board; the head needs a dense unit
    ternary = {layer.name for layer in wl.layers if layer.ternary}
    assert ternary <= best.plan.offload
    # against the fastest CPU runtime that fits the board's 2 GB: bitnet.cpp-class native
    # (PyTorch fp32 needs ~9.5 GB)
    assert best.decode.baseline.runtime == "native"
    assert not best.decode.baseline_of("torch").feasible
    assert best.speedup > 2.5
    assert best.decode.bound == "ddr"
    # never below the DDR floor for streamed weights
    d = best.decode
    fpga_ms = sum(c.time_s for c in d.calls.values()) * 1e3
    assert fpga_ms >= d.ddr_floor_ms
    # plans are ranked: the best objective is the lowest of the searched plans
    assert best.objective_ms <= min(p.objective_ms for p in r.plans) + 1e-9
    assert r.best.plan.resident <= r.best.plan.offload


def test_naive_plan_falls_short(seed_result):
    _wl, r = seed_result
    naive = r.naive
    assert "model.layers.0.self_attn.q_proj" in naive.plan.offload
    assert "lm_head" in naive.plan.offload
    assert len(naive.plan.offload) == 5
    # the five layers are 4 ternary matmuls and the head: most of the token stays on the PS
    assert naive.decode.components["ternary_cpu"] > naive.decode.components["ternary_pl"]
    assert naive.speedup < r.best.speedup / 2
    why = "; ".join(map(str, naive.why))
    assert "warm-up artefact" in why
    assert "1.17x" in why  # the cap the seed's own 14.6% implies


def test_sensitivity_names_parameters(seed_result):
    _, r = seed_result
    names = {row.parameter for row in r.sensitivity}
    assert names == {"DDR efficiency", "engine clock", "per-call overhead"}
    ddr = next(row for row in r.sensitivity if row.parameter == "DDR efficiency")
    assert ddr.low_speedup < ddr.base_speedup < ddr.high_speedup
    assert r.sensitivity[0].swing >= r.sensitivity[-1].swing


def test_board_that_fits_no_engine(zcu104):
    from dse.errors import DseError

    tiny = zcu104.model_copy(update={"pl": zcu104.pl.model_copy(update={"lut": 100})})
    with pytest.raises(DseError, match=r"pl: expected room for at least one engine"):
        explore(small_workload(), CostContext.for_board(tiny), Objective(),
                space=DesignSpace(packings=("i2",)))


def test_prefill_objective_uses_vectors(zcu104):
    """A prompt runs in groups of G <= VMAX positions: the search holds several vectors per
    weight pass, and the best plan runs its prompt in groups of its VMAX (two forwards of 32
    for 64 tokens: the earlier forward without logits, the last with them)."""
    wl = small_workload()
    r = explore(wl, CostContext.for_board(zcu104), Objective(kind="prefill", prompt_tokens=64))
    design = r.best.plan.design
    assert design.vectors == r.best.plan.prompt_group == 32
    scen = [(p.scenario.m, p.scenario.context_tokens, p.scenario.logits, w)
            for p, w in zip(r.best.projections, r.best.weights, strict=True)]
    assert scen == [(32, 32, False, 0.5), (32, 32, False, 0.5), (32, 64, True, 1.0)]
    assert math.isfinite(r.best.objective_ms) and r.best.objective_ms > 0
    assert r.ttft_ms == pytest.approx(r.best.objective_ms)


@pytest.mark.parametrize("uram", [0, 4])
def test_milp_equals_brute_force_with_attention_unit(zcu104, uram):
    """With the attention unit and an int8 KV cache the MILP still finds the true optimum, and
    the plan it returns carries the unit and the format."""
    from dse.model.units import AttentionUnit
    from dse.search.optimize import UnitChoice

    board = zcu104.model_copy(update={"pl": zcu104.pl.model_copy(update={"uram": uram or 1}),
                                      "caps": zcu104.caps.model_copy(update={"bram36": 0.2})})
    ctx = CostContext.for_board(board)
    wl = small_workload()
    cfg = wl.config
    unit = AttentionUnit(group=cfg.heads // cfg.kv_heads, head_dim=cfg.head_dim,
                         max_kv_heads=cfg.kv_heads, max_positions=cfg.max_positions,
                         latency_cycles=7)
    prep = prepare(wl, ctx, Objective(runtimes=("torch",), context=256,
                                      kv_dtypes=("fp16", "int8"),
                                      units=(UnitChoice("attention", (unit,)),)))
    design = EngineDesign(pe=4, simd=8, packing="base3", clock_mhz=250, max_k=1000)
    sol = solve_plan(prep, design, runtime="torch", units=(unit,), kv_dtype="int8")
    best_ms = brute_force(prep, design, "torch", units=(unit,), kv_dtype="int8")[0]
    assert sol.optimal and sol.objective_ms == pytest.approx(best_ms, rel=1e-9)
    assert sol.plan.attention == unit and sol.plan.kv_dtype == "int8"
    proj = project(wl, sol.plan, ctx, prep.scenarios[0][0])
    assert proj.plan_ms == pytest.approx(sol.objective_ms, rel=1e-9)
