"""What the search prices once and reuses (issue 28) gives what pricing it afresh gives: the
clock evidence without its wording, the design grid priced per clock-free key, a memo shared
between projections, and the search's per-shape caches. Equality here is exact (==): the
search's outputs must stay byte-identical."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from dse.fabric_data import load_fabric
from dse.model.board import load_board
from dse.model.engine import EngineDesign, engine_resources, link_limit_error
from dse.model.evidence import beyond_mhz, clock_beyond, plan_clock, plan_mhz
from dse.model.fabric import speed_grade, supported_clock, supported_mhz
from dse.model.price import group_layers, row
from dse.model.project import (
    CostContext,
    Plan,
    Scenario,
    cpus,
    memory_bytes,
    project,
    project_total,
    ps_prices,
    two_stage_work,
)
from dse.model.template import mark_buildable, shipped_template
from dse.model.workload import Layer, workload_from_profile
from dse.profile.default import default_profile
from dse.search import optimize
from dse.search.space import (
    _template_grid,
    default_space,
    enumerate_designs,
    priced_designs,
    unit_choices,
)

BOARDS = ("zcu104", "kv260", "pynq-z2")


@pytest.fixture(scope="module")
def wl():
    return workload_from_profile(default_profile())


@pytest.fixture(scope="module")
def fab():
    return load_fabric()


def _ctx(name: str, fab) -> CostContext:
    return CostContext.for_board(load_board(f"boards/{name}.yaml"), None, fab)


def test_supported_mhz_is_supported_clocks_mhz(fab):
    grades = ("-1", "-2", "-2LV", "-3", "")
    kinds = ({"engine": (0, 1)}, {"engine": (9, 4)}, {"engine": (14, 2)},
             {"engine": (11, 4), "attention": (0, 2)}, {"engine": (11, 2), "attention": (7, 3)},
             {"engine": (11, 1), "glue": (0, 1)}, {})
    for family in ("zynqmp", "zynq7000", "rfsoc"):
        for grade in grades:
            for k in kinds:
                for util in np.linspace(0.0, 0.9, 37):
                    want = supported_clock(fab, family, grade, k, float(util)).mhz
                    assert supported_mhz(fab, family, grade, k, float(util)) == want, (
                        family, grade, k, util)


def test_plan_mhz_is_plan_clocks_mhz(fab, wl):
    for name in BOARDS:
        ctx = _ctx(name, fab)
        board, c = ctx.board, ctx.constants
        units = unit_choices(shipped_template(), board, wl.config)
        sets = [()] + [(u,) for ch in units for u in ch.options]
        for engines in (1, 2, 4):
            for packing in ("i2", "base3"):
                d = EngineDesign(8, 32, packing=packing, engines=engines, clock_mhz=250.0)
                for us in sets:
                    res = engine_resources(d, board, c)
                    for u in us:
                        res = res + u.resources(c)
                    clock = plan_clock(d, us, board, c, res)
                    assert plan_mhz(d, us, board, c, res) == clock.mhz
                    for mhz in (100.0, 187.5, 225.0, 300.0):
                        dm = replace(d, clock_mhz=mhz)
                        assert clock_beyond(dm, clock, c) == beyond_mhz(mhz, clock.mhz)
    assert speed_grade("xczu7ev-ffvc1156-2-e") == "-2"


def _plain_enumeration(board, c, space, max_k):
    """The enumeration as it was before issue 28: every point marked, priced and checked."""
    out, rejected = [], 0
    for d in (mark_buildable(space.template, d, board)
              for d in _template_grid(board, space, max_k, c)):
        res = engine_resources(d, board, c)
        if link_limit_error(d, board) or res.overflow(board) or (
                c.fabric is not None and d.buildable
                and clock_beyond(d, plan_clock(d, (), board, c, res), c)):
            rejected += 1
            continue
        out.append(d)
    return out, rejected


@pytest.mark.parametrize("name", BOARDS)
def test_priced_designs_equal_the_plain_enumeration(name, fab, wl):
    ctx = _ctx(name, fab)
    board, c = ctx.board, ctx.constants
    max_k = max(layer.k for layer in wl.layers)
    for kind, seqs in (("decode", 1), ("mix", 1), ("throughput", 4)):
        space = default_space(kind, False, shipped_template(), sequences=seqs)
        designs, rejected, fabric = priced_designs(board, c, space, max_k)
        assert (designs, rejected) == _plain_enumeration(board, c, space, max_k)
        assert (designs, rejected) == enumerate_designs(board, c, space, max_k)
        assert list(fabric) == designs
        # every kept design's fabric is engine_resources' own (it reads no clock)
        for d in designs:
            assert fabric[d] == engine_resources(d, board, c)
            for mhz in (100.0, 300.0):
                assert engine_resources(replace(d, clock_mhz=mhz), board, c) == fabric[d]


def test_free_grid_is_priced_as_before(fab, wl):
    board = load_board("boards/zcu104.yaml")
    c = CostContext.for_board(board, None, fab).constants
    space = default_space("decode")
    designs, rejected, _ = priced_designs(board, c, space, 6912)
    plain, plain_rejected = [], 0
    from dse.search.space import _free_points

    for d in _free_points(board, space, 6912):
        if link_limit_error(d, board) or engine_resources(d, board, c).overflow(board):
            plain_rejected += 1
        else:
            plain.append(d)
    assert (designs, rejected) == (plain, plain_rejected)


def test_project_memo_is_transparent(fab, wl):
    """Projections sharing one memo equal projections priced afresh, and project_total equals
    project's figures."""
    ctx = _ctx("zcu104", fab)
    design = EngineDesign(4, 16, clock_mhz=225.0, engines=4, max_k=6912)
    ternary = frozenset(la.name for la in wl.layers if la.ternary)
    everything = frozenset(la.name for la in wl.layers)
    plans = [Plan("cpu", EngineDesign(1, 1), frozenset(), runtime="native"),
             Plan("cpu torch", EngineDesign(1, 1), frozenset(), runtime="torch"),
             Plan("ternary", design, ternary, runtime="native", kv_dtype="int8"),
             Plan("all", design, everything, runtime="native"),
             Plan("all torch", design, everything, runtime="torch", kv_dtype="fp16")]
    scenarios = [Scenario(kv_dtype="fp16", context_tokens=256),
                 Scenario(kv_dtype="int8", context_tokens=256, sequences=2),
                 Scenario(phase="prefill", m=8, context_tokens=64, logits=False)]
    memo: dict = {}
    for _ in range(2):  # the second round reads everything from the memo
        for plan in plans:
            for sc in scenarios:
                fresh = project(wl, plan, ctx, sc)
                assert project(wl, plan, ctx, sc, memo=memo) == fresh
                total = project_total(wl, plan, ctx, sc, memo)
                assert (total.plan_ms, total.energy) == (fresh.plan_ms, fresh.energy)


def test_ps_prices_memo_is_transparent(fab, wl):
    ctx = _ctx("kv260", fab)
    groups = group_layers(list(wl.layers), True)
    memo: dict = {}
    for runtime in ("native", "torch"):
        for sc in (Scenario(kv_dtype="int8", context_tokens=200),
                   Scenario(phase="prefill", m=4, context_tokens=32)):
            host, cpu, threads = cpus(wl, ctx.board, sc)
            for engines in (False, True):
                a = ps_prices(wl, runtime, sc, groups, host, cpu, threads, ctx.board,
                              ctx.constants, engines=engines)
                for _ in range(2):
                    b = ps_prices(wl, runtime, sc, groups, host, cpu, threads, ctx.board,
                                  ctx.constants, engines=engines, memo=memo)
                    for f in ("cpu", "quant", "feeds", "launch", "idle"):
                        assert np.array_equal(getattr(a, f), getattr(b, f)), f
                    assert (a.linears, a.quant_role, a.ops) == (b.linears, b.quant_role, b.ops)


def test_search_caches_match_their_functions(fab, wl):
    ctx = _ctx("zcu104", fab)
    obj = optimize.Objective(kv_dtypes=optimize.SEARCHED_KV_DTYPES)
    prep = optimize.prepare(wl, ctx, obj)
    sc = max((s for s, _ in prep.scenarios), key=lambda s: s.context_tokens)
    designs = [EngineDesign(4, 16, clock_mhz=225.0, engines=4, max_k=6912),
               EngineDesign(8, 32, packing="base3", engines=2, max_k=6912),
               EngineDesign(16, 64, engines=1, max_k=6912, head="bf16", head_macs=64)]
    for d in designs:
        want = np.array([optimize._group_bytes(d, g.n, g.k, g.ternary) for g in prep.groups],
                        dtype=float)
        assert np.array_equal(optimize._groups_bytes(prep, d), want)
        for runtime in ("native", "torch"):
            for kv in ("fp16", "int8"):
                plain = memory_bytes(wl, Plan("cpu", d, frozenset(), runtime=runtime), ctx,
                                     replace(sc, kv_dtype=kv))
                assert optimize._base_memory(prep, d, runtime, kv) == plain
    head = next(la for la in wl.layers if not la.ternary)
    _, cpu, threads = cpus(wl, ctx.board, sc)
    lm = Layer("lm_head", "lm_head", None, head.n, head.k, False, 0.0, 1, 0.0)
    assert np.array_equal(optimize._stage2_row(prep, head.n, head.k, sc),
                          row(two_stage_work(lm, obj.head_top_k, sc, cpu, threads,
                                             ctx.constants)))


def _evaluate_one(prep, design):
    """``evaluate_design`` as it was before issue 28 (one design, its placements priced one
    by one): the reference the batched evaluation must equal."""
    best, placed = None, {}
    kind = prep.objective.kind
    additive = kind != "edp"
    for rp in prep.runtimes_for(design):
        for units in optimize.unit_sets(prep, design, rp):
            gkey, fixed = optimize._variant(prep, design, rp, units)
            if kind in optimize.ENERGY_OBJECTIVES:
                gkey += (units,)
            if additive and gkey in placed:
                part, offload = placed[gkey]
                if fixed is None:
                    fixed = optimize._fixed_units(prep, design, rp, units)
                total = part + fixed
            else:
                pr = optimize.pricing(prep, design, rp, units)
                offload = pr.stream < pr.cpu
                total = pr.total(offload, np.zeros_like(offload))
                if additive:
                    placed[gkey] = (total - pr.fixed, offload)
            if best is None or total < best[0]:
                best = (total, rp, offload, units)
    if best is None:
        return None
    total, rp, offload, units = best
    ddr = float(optimize.call_rows(prep, design, rp)[1][offload].sum())
    res = prep.resources(design, units)
    tok_s = j_tok = None
    power = prep.ctx.board.power
    if power is not None and len(prep.scenarios) == 1 and prep.scenarios[0][0].phase == "decode":
        w = optimize.table_of(prep, design, rp, units).total(offload, np.zeros_like(offload))
        tokens = prep.scenarios[0][0].sequences
        tok_s = tokens / w[optimize.T] if w[optimize.T] > 0 else None
        j_tok = float(w @ np.array(optimize.rates(power, res, design.clock_mhz))) / tokens
    return (rp.runtime, total, offload, res.lut, ddr, tok_s, j_tok, units, rp.kv_dtype)


@pytest.mark.parametrize("name,kind,seqs", [
    ("zcu104", "decode", 1), ("zcu104", "throughput", 4), ("zcu104", "ttft", 1),
    ("zcu104", "chat", 2), ("zcu104", "energy", 1), ("zcu104", "edp", 1),
    ("kv260", "decode", 1), ("pynq-z2", "mix", 1)])
def test_batched_evaluation_equals_one_by_one(name, kind, seqs, fab, wl):
    """evaluate_designs prices a time objective's placements a batch of designs at a time;
    every figure equals the one-design loop's exactly (energy objectives go one by one)."""
    ctx = _ctx(name, fab)
    space = default_space(kind, False, shipped_template(), sequences=seqs)
    obj = optimize.Objective(kind, sequences=seqs, kv_dtypes=optimize.SEARCHED_KV_DTYPES,
                             units=unit_choices(space.template, ctx.board, wl.config))
    prep = optimize.prepare(wl, ctx, obj)
    designs, _ = enumerate_designs(ctx.board, ctx.constants, space,
                                   max(la.k for la in wl.layers))
    got = optimize.evaluate_designs(prep, designs)
    assert len(got) == len(designs)
    for d, e in zip(designs, got, strict=True):
        want = _evaluate_one(prep, d)
        assert want is not None and e.design == d
        assert np.array_equal(e.offload, want[2])
        assert (e.runtime, e.objective_ms, e.lut, e.ddr_bytes, e.tokens_per_s, e.j_per_token,
                e.units, e.kv_dtype) == (want[0], want[1], *want[3:])
