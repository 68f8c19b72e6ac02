"""PL units behind one protocol: any kind, any number of instances, priced through the model.

A toy kind written as one module (tests/toy_unit.py) and one engine-template entry is searched,
projected, reported and given a ``make`` line; the attention unit runs as N instances sharing
the engines' HP ports; the drifts between the search, the projection and the report that the
protocol removed stay removed.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path

import pytest

from dse.cli import main
from dse.model.arch import preset_config
from dse.model.board import load_board
from dse.model.engine import EngineDesign
from dse.model.project import CostContext, Plan, Scenario, project
from dse.model.template import load_template, shipped_template
from dse.model.units import AttentionUnit, GlueUnit, instance_split, kind_of
from dse.model.units.base import _KINDS
from dse.model.workload import workload_from_config
from dse.report.explore_md import render_explore_section
from dse.search.explore import explore
from dse.search.optimize import SEARCHED_KV_DTYPES, Objective
from dse.search.space import default_space

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "overlays" / "ternary_gemv.yaml"


@pytest.fixture
def toy(tmp_path):
    """The toy kind registered for one test, and a template with its section."""
    import importlib

    import toy_unit as mod

    importlib.reload(mod)  # registers the kind
    path = tmp_path / "toy_template.yaml"
    path.write_text(TEMPLATE.read_text() + "\ntoy: {cycles_per_elem: 3}\n")
    yield mod, load_template(path)
    _KINDS.pop("toy", None)


def test_a_toy_unit_kind_is_searched_projected_reported_and_built(toy, seed_workload,
                                                                   kv260_ctx):
    mod, template = toy
    assert template.unit_section("toy") == mod.ToySection(3)
    space = default_space("decode", False, template)
    r = explore(seed_workload, kv260_ctx, Objective(kv_dtypes=SEARCHED_KV_DTYPES), space=space)
    best = r.best.plan
    toy_unit = best.unit("toy")
    # searched: the toy takes the layers' input norms off the PS for 3 cycles each: it wins
    assert toy_unit == mod.ToyUnit(3, 1, True, "TOY=1 TOY_CPE=3")
    # projected: the norm is on the PL, the toy's part priced at the engines' clock
    ops = {o.role: o for o in r.best.decode.ops}
    assert ops["input_layernorm"].device == "pl" and ops["input_layernorm"].time_ms == 0
    assert ops["norm"].device == "ps"
    clock = best.design.clock_mhz * 1e6
    assert ops["toy_norm"].time_ms == pytest.approx(30 * 3 / clock * 1e3)
    assert r.best.decode.account_ms("pl:toy") == pytest.approx(ops["toy_norm"].time_ms)
    # its fabric is counted
    without = project(seed_workload, replace(best, units=tuple(
        u for u in best.units if u.kind != "toy")), kv260_ctx, r.best.decode.scenario)
    assert r.best.decode.resources.lut == pytest.approx(without.resources.lut + 120)
    # given a make line: the engines' and every unit's arguments
    assert best.buildable and best.build_note.endswith("TOY=1 TOY_CPE=3")
    assert "ATTN=" in best.build_note
    # reported: the card names the unit and the make line
    en = render_explore_section(r, "en", {})
    assert "`toy:toy norm 3c`" in en and "TOY=1 TOY_CPE=3" in en
    # and a plan file takes it (its own top-level key)
    plan = tmp_plan(seed_workload, "toy: {}\n", template)
    assert plan.unit("toy") == mod.ToyUnit(3, 1, True, "TOY=1 TOY_CPE=3")


def tmp_plan(wl, extra: str, template):
    import yaml

    from dse.model.plan_file import plan_from_mapping

    data = yaml.safe_load("engine: {pe: 1, simd: 80, packing: base3}\n"
                          "offload: ['model.layers.*']\n" + extra)
    return plan_from_mapping(data, wl, "p.yaml", template)


# -- N attention units ------------------------------------------------------------------------

def test_instance_split_deals_heads_evenly():
    assert instance_split(5, 1) == ((0, 5),)
    assert instance_split(5, 2) == ((0, 3), (3, 5))
    assert instance_split(5, 3) == ((0, 2), (2, 4), (4, 5))
    assert instance_split(2, 4) == ((0, 1), (1, 2))  # instances without a head do not start
    for n in range(1, 20):
        for k in range(1, 6):
            parts = instance_split(n, k)
            assert parts[0][0] == 0 and parts[-1][1] == n
            sizes = [b - a for a, b in parts]
            assert max(sizes) - min(sizes) <= 1 and len(parts) == min(n, k)


def test_attention_units_split_heads_and_share_ports(seed_workload, kv260_ctx):
    """Two instances take 3 and 2 of the 5 kv heads; each runs its calls at the cycle formula
    for its heads, on its own engine's port; on one engine they share a port's beats."""
    from dse.model.kv_attn import MODE_SCORES, kv_attn_cycles
    from dse.model.units.attention import attention_call_s
    from dse.model.units.base import UnitEnv

    at = shipped_template().attention
    one = AttentionUnit(4, 128, 5, 4096, at.latency_cycles, 1)
    two = AttentionUnit(4, 128, 3, 4096, at.latency_cycles, 2)
    board, c = kv260_ctx.board, kv260_ctx.constants

    def env(engines: int) -> UnitEnv:
        from dse.model.cpu import CpuSpec

        cpu = CpuSpec.of_board(board)
        return UnitEnv(seed_workload, 250.0, engines, board, c,
                       Scenario(context_tokens=1024, kv_dtype="int8"), "native", cpu, 4)

    t = 1024
    s1, b1 = attention_call_s(one, env(2), MODE_SCORES, t)
    s2, b2 = attention_call_s(two, env(2), MODE_SCORES, t)
    assert b1 == b2  # the same bytes, dealt out
    busiest = kv_attn_cycles(MODE_SCORES, t, 3, 4, 128, at.latency_cycles)
    port = 16 * 250e6 * c.mm2s_efficiency
    assert s2 == pytest.approx(max(busiest / 250e6, 3 * 128 * (4 + t) / port,
                                   b2 / board.ddr_bytes_per_s))
    assert s2 < 0.65 * s1
    # on one engine both instances stream through one HP port: no faster than one unit
    s_shared, _ = attention_call_s(two, env(1), MODE_SCORES, t)
    assert s_shared >= s1 * 0.99
    # the fabric of two instances, each holding 3 kv heads' p block
    r1, r2 = one.resources(c), two.resources(c)
    assert r2.dsp == 2 * r1.dsp and r2.bram36 < 2 * r1.bram36


def test_a_unit_that_cannot_hold_its_share_is_infeasible(seed_workload, kv260_ctx):
    at = shipped_template().attention
    design = EngineDesign(1, 80, "base3", 250, engines=2)
    plan = Plan("p", design, frozenset(la.name for la in seed_workload.layers),
                units=(AttentionUnit(4, 128, 2, 4096, at.latency_cycles, 2),), kv_dtype="int8")
    p = project(seed_workload, plan, kv260_ctx, Scenario(context_tokens=64))
    assert any("up to 4 kv heads" in str(m) and "model has 4, 128 and 5" in str(m)
               for m in p.infeasible)


# -- the drifts the protocol removed ------------------------------------------------------------

def _limit_rows(section: str) -> dict[str, float]:
    """The physical-limit table of an English section: label -> ms."""
    block = section.split("### Physical limit", 1)[1]
    rows = {}
    for line in block.splitlines():
        m = re.match(r"\| (.+?) \| (-?[\d,]+\.\d+) \| ", line)
        if m:
            rows[m.group(1)] = float(m.group(2).replace(",", ""))
        elif rows and not line.startswith("|"):
            break
    return rows


def test_limit_table_adds_up_with_a_glue_unit(seed_workload, kv260_ctx):
    """Drift 1: the physical-limit table of a plan with the glue unit (whose shift scan takes
    the gate/up read-out off the calls' hand-off) adds up to the plan; so do the accounts."""
    from dse.model.msg import msg
    from dse.model.plan_file import load_plan
    from dse.search.explore import RankedPlan

    plan = load_plan(ROOT / "examples" / "plans" / "bitnet-kv260.yaml", seed_workload)
    assert plan.glue is not None
    r = explore(seed_workload, kv260_ctx, Objective(kv_dtypes=SEARCHED_KV_DTYPES),
                space=default_space("decode", False, shipped_template()))
    proj = project(seed_workload, plan, kv260_ctx, Scenario(context_tokens=65, kv_dtype="fp32"))
    r = replace(r, plans=(RankedPlan("published", plan, (proj,), proj.plan_ms,
                                     proj.baseline_ms, msg("m", "published")),))
    assert sum(a.ms for a in proj.accounts) == pytest.approx(proj.plan_ms, rel=1e-12)
    parts = proj.limit_parts(kv260_ctx.board.ddr_bytes_per_s)
    assert parts["credits"] < 0 and sum(parts.values()) == pytest.approx(proj.plan_ms)
    rows = _limit_rows(render_explore_section(r, "en", {}))
    total = rows.pop("**plan total**")
    sub = rows.pop("**accelerator subtotal**")
    assert total == pytest.approx(proj.plan_ms, abs=0.01)
    assert sum(rows.values()) == pytest.approx(total, abs=0.05)  # printed to 0.01 ms
    calls = ("weights over DDR", "activations and", "compute or link", "per-call overhead",
             "PS-side hand-off", "hand-off a PL unit")
    assert sum(v for k, v in rows.items() if k.startswith(calls)) == pytest.approx(sub,
                                                                                     abs=0.05)


@pytest.mark.parametrize("board", ["zcu104", "kv260"])
def test_per_call_overhead_moves_the_best_plan(seed_workload, board):
    """Drift 2: the sensitivity row perturbs the launch the plan's runtime pays (a C driver's
    under native), so it moves the speedup of a plan with accelerator calls."""
    ctx = CostContext.for_board(load_board(ROOT / "boards" / f"{board}.yaml"))
    r = explore(seed_workload, ctx, Objective(kv_dtypes=SEARCHED_KV_DTYPES),
                space=default_space("decode", False, shipped_template()))
    assert r.best.plan.runtime == "native" and r.best.decode.calls
    row = next(s for s in r.sensitivity if s.parameter == "per-call overhead")
    assert row.swing > 1e-4 and row.low_speedup > row.base_speedup > row.high_speedup


def test_attention_latency_is_the_rtls(seed_workload):
    """Drift 3: a plan file's ``attention: {}`` and the search's units take the pipeline
    latency of the template, which is the RTL's LATENCY localparam."""
    from dse.search.space import unit_choices

    rtl = (ROOT / "overlays" / "rtl" / "kv_attn.v").read_text()
    latency = int(re.search(r"localparam\s+integer\s+LATENCY\s*=\s*(\d+)", rtl).group(1))
    assert shipped_template().attention.latency_cycles == latency
    plan = tmp_plan(seed_workload, "attention: {}\n", shipped_template())
    assert plan.attention.latency_cycles == latency and plan.attention.buildable
    board = load_board(ROOT / "boards" / "kv260.yaml")
    ch = unit_choices(shipped_template(), board, seed_workload.config)
    att = next(c for c in ch if c.kind == "attention")
    assert [u.count for u in att.options] == [1, 2, 3, 4]
    assert all(u.latency_cycles == latency and u.buildable for u in att.options)
    assert "latency_cycles" not in {f for f in AttentionUnit.__dataclass_fields__
                                    if AttentionUnit.__dataclass_fields__[f].default
                                    is not AttentionUnit.__dataclass_fields__[f].default_factory}
    with pytest.raises(TypeError):
        AttentionUnit(4, 128, 5, 4096)  # no default latency to drift from


def test_bound_names_the_pl_unit_not_the_ps(seed_workload, kv260_ctx):
    """Drift 4: attention in the PL unit is not PS time; the bound names the device."""
    at = shipped_template().attention
    design = EngineDesign(1, 80, "base3", 250, engines=4)
    everything = frozenset(la.name for la in seed_workload.layers if la.ternary)
    plan = Plan("p", design, everything, units=(AttentionUnit(4, 128, 5, 4096,
                                                              at.latency_cycles),),
                kv_dtype="int8")
    p = project(seed_workload, plan, kv260_ctx, Scenario(context_tokens=4096))
    # the PS keeps the softmax and the cache write; the unit's passes are its own account
    on_ps = sum(o.time_ms for o in p.ops if o.device == "ps" and o.component == "attention")
    assert p.ps_components["attention"] == pytest.approx(on_ps)
    assert p.account_ms("pl:attention") > 2 * on_ps
    assert p.bound != "ps (attention)"
    slow = replace(plan, design=replace(design, clock_mhz=20.0))  # a crawling unit binds
    assert project(seed_workload, slow, kv260_ctx, Scenario(context_tokens=4096)
                   ).bound == "pl unit (attention)"
    # the accounts are the whole plan: no 41.54 + 8.31 of a "100%" 50.04
    assert sum(a.ms for a in p.accounts) == pytest.approx(p.plan_ms, rel=1e-12)


# -- plan files and bad input -------------------------------------------------------------------

def _plan_file(tmp_path, text: str) -> Path:
    p = tmp_path / "p.yaml"
    p.write_text("engine: {pe: 1, simd: 80, packing: base3, clock_mhz: 250, engines: 4}\n"
                 "offload: ['model.layers.*']\nkv_dtype: int8\n" + text)
    return p


def test_plan_file_attention_count(capsys, tmp_path, seed_workload):
    # one engine: beside four, two units' block RAM (the p blocks, the DMAs) exceeds the
    # KV260's cap on the synthesized fabric (issue 24)
    p = _plan_file(tmp_path, "attention: {count: 2, max_kv_heads: 3}\n")
    p.write_text(p.read_text().replace("engines: 4", "engines: 1"))
    assert main(["project", "--board", "kv260", "--plan", str(p)]) == 0
    out = capsys.readouterr().out
    assert "ATTN=2 ATTN_G=4 ATTN_D=128 ATTN_HMAX=3 ATTN_TMAX=4096" in out
    plan = tmp_plan(seed_workload, "attention: {count: 2, max_kv_heads: 3}\n",
                    shipped_template())
    assert plan.attention == kind_of("attention").from_mapping(
        {"count": 2, "max_kv_heads": 3}, "x", shipped_template().attention)


@pytest.mark.parametrize(("entry", "needle"), [
    ("attention: {count: 5}", "p.yaml: attention.count: expected at most 4 attention units "
                              "(the engine template's max_units), got 5"),
    ("attention: {count: 4, max_positions: 16384}",
     "p.yaml: attention: expected units that fit kv260's fabric beside the engines"),
    ("attention: {count: 0}", "p.yaml: attention.count: expected an integer from 1 to"),
    ("attention: [1]", "p.yaml: attention: expected a mapping"),
])
def test_plan_with_too_many_units_is_one_line(capsys, tmp_path, entry, needle):
    p = _plan_file(tmp_path, entry + "\n")
    assert main(["project", "--board", "kv260", "--plan", str(p)]) == 2
    err = capsys.readouterr().err
    assert f"{p}: line " in err  # a plan file's error names the line
    err = re.sub(r": line \d+:", ":", err)
    assert needle.replace("p.yaml", str(p)) in err and len(err.strip().splitlines()) == 1


# -- a model with one kv head per query head: the search chooses how many units -----------------

def test_large_model_on_kv260_searches_attention_unit_counts():
    """Issue 22's bar: bitnet_b1_58-large (MHA, 16 kv heads) on the KV260 at 1024 tokens of
    context: the search tries every attention unit count and the report says how many the
    best plan uses and why."""
    wl = workload_from_config(preset_config("bitnet_b1_58-large"))
    assert (wl.config.heads, wl.config.kv_heads, wl.config.head_dim) == (16, 16, 96)
    ctx = CostContext.for_board(load_board(ROOT / "boards" / "kv260.yaml"))
    obj = Objective(runtimes=("native",), context=1024, kv_dtypes=SEARCHED_KV_DTYPES)
    r = explore(wl, ctx, obj, space=default_space("decode", False, shipped_template()))
    counts = [u for u in r.unit_counts if u.kind == "attention"]
    assert [u.count for u in counts] == [0, 1, 2, 3, 4]
    chosen = next(u for u in counts if u.chosen)
    best = r.best.plan.attention
    assert best is not None and chosen.count == best.count > 1
    one = next(u for u in counts if u.count == 1)
    assert chosen.objective_ms < one.objective_ms
    assert chosen.objective_ms == pytest.approx(r.best.objective_ms, rel=1e-9)
    # the report says how many and why
    en = render_explore_section(r, "en", {})
    assert f"attention: {best.count} (searched 0–4; " in en
    assert "#### PL units: builds and counts" in en
    zh = render_explore_section(r, "zh", {})
    assert f"attention：{best.count} 个（搜索了 0–4；" in zh
    assert math.isfinite(r.best.decode.tokens_per_s)


def test_large_model_cli_prints_the_unit_count(capsys, tmp_path):
    """The same from the command line, no profile: the make line builds that many units."""
    js = tmp_path / "p.json"
    rc = main(["explore", "--board", "kv260", "--model", "bitnet_b1_58-large",
               "--context-tokens", "1024", "--no-report", "--json", str(js)])
    out = capsys.readouterr().out
    assert rc == 0
    import json

    plan = json.loads(js.read_text())["plans"][0]["projections"][0]["plan"]
    n = plan["attention"]["count"]
    assert n > 1 and f"ATTN={n} ATTN_G=1 ATTN_D=96" in plan["build_note"]
    assert f"build the best plan: {plan['build_note']}" in out
    assert f"how many units: attention: {n} (searched 0–4; " in out


def test_glue_unit_is_a_what_if_kind():
    g = GlueUnit()
    assert not g.buildable and g.build_note.startswith("what-if")
    assert kind_of("glue").candidates(None, None, None) == (g,)
