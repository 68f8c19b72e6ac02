"""Energy per token: the power model, its properties, the search's energy objective."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dse.cli import main
from dse.errors import DseError
from dse.model.board import Power, board_from_mapping, load_board
from dse.model.energy import Work, energy_j, energy_of, pl_dynamic_w, require_power, static_w
from dse.model.engine import EngineDesign, Resources
from dse.model.project import Plan, Scenario, project
from dse.search.optimize import Objective, brute_force, prepare, solve_plan

ROOT = Path(__file__).resolve().parents[1]
POWER = Power(idle_w=3.79, ps_core_active_w=0.37, ddr_pj_per_byte=160, pl_static_w_per_uram=0.007,
              pl_static_w_per_bram36=0.001, pl_dynamic_w_per_klut_100mhz=0.005)

works = st.builds(Work, st.floats(0, 10), st.floats(0, 40), st.floats(0, 1e10), st.floats(0, 10))
resources = st.builds(Resources, st.floats(0, 2e5), st.floats(0, 4e5), st.floats(0, 300),
                      st.floats(0, 100), st.floats(0, 2000))


@given(w=works, res=resources, clock=st.floats(50, 400))
def test_energy_is_never_negative(w, res, clock):
    e = energy_of(POWER, w, res, clock, 1)
    assert e.joules >= 0 and all(v >= 0 for v in e.parts_j.values())


@given(w=works, res=resources, clock=st.floats(50, 400), extra=works)
def test_more_work_never_costs_less_energy(w, res, clock, extra):
    rest, dyn = static_w(POWER, res), pl_dynamic_w(POWER, res, clock)
    assert energy_j(POWER, w + extra, rest, dyn) >= energy_j(POWER, w, rest, dyn) - 1e-9


def test_bitnetcpp_energy_parts(seed_workload, kv260_ctx):
    cpu = Plan("cpu", EngineDesign(1, 1), frozenset(), runtime="native")
    p = project(seed_workload, cpu, kv260_ctx, Scenario(context_tokens=80))
    e = p.energy
    assert e.parts_j["idle"] == pytest.approx(3.79 * p.plan_ms / 1e3)
    # 4 cores busy on the ternary kernel and the head, one on the element-wise ops
    assert 3.9 < p.work.core_s / (p.plan_ms / 1e3) <= 4.0
    # 2-bit ternary weights + the f16 head stream once per token (+ the KV cache)
    assert p.work.ddr_bytes == pytest.approx(521_011_200 + 128256 * 2560 * 2, rel=0.01)
    assert e.parts_j["ddr"] == pytest.approx(p.work.ddr_bytes * 160e-12)
    assert e.parts_j["pl_static"] == 0 and e.parts_j["pl_dynamic"] == 0
    assert e.watts == pytest.approx(e.joules / (p.plan_ms / 1e3))


def test_fabric_plan_pays_for_its_urams(seed_workload, kv260_ctx):
    design = EngineDesign(4, 64, "base3", 300, engines=2, stream_bits=256, head="bf16",
                          head_macs=32, resident_bytes=2 * 2**20)
    plan = Plan("pl", design, frozenset(la.name for la in seed_workload.layers),
                frozenset({"model.layers.0.self_attn.k_proj"}), runtime="native")
    p = project(seed_workload, plan, kv260_ctx, Scenario(context_tokens=256))
    assert p.resources.uram > 0
    assert p.energy.parts_j["pl_static"] == pytest.approx(
        (p.resources.uram * 0.0069 + p.resources.bram36 * 0.001) * p.plan_ms / 1e3)
    assert p.energy.parts_j["pl_dynamic"] > 0
    # faster and fewer joules than the CPU alone
    assert p.energy.j_per_token < p.baseline_of("native").energy.j_per_token


def test_energy_objective_milp_equals_brute_force(kv260_ctx):
    from test_search import small_workload

    wl = small_workload()
    for kind in ("energy", "edp"):
        prep = prepare(wl, kv260_ctx, Objective(kind=kind, runtimes=("torch",), context=64))
        design = EngineDesign(pe=4, simd=8, packing="base3", clock_mhz=250, max_k=1000)
        sol = solve_plan(prep, design)
        best = brute_force(prep, design, "torch")[0]
        if kind == "energy":  # additive: the MILP is exact
            assert sol.objective_ms == pytest.approx(best, rel=1e-9)
        # Without residency the search's joules are the projection's exactly (a resident
        # buffer's URAM leakage over the token is charged only when the plan is projected).
        sol = solve_plan(prep, design, allow_resident=False)
        proj = project(wl, sol.plan, kv260_ctx, prep.scenarios[0][0])
        j = proj.energy.j_per_token
        expect = j if kind == "energy" else j * proj.energy.time_s
        assert sol.objective_ms == pytest.approx(expect, rel=1e-9)


def test_explore_energy_objective(capsys, tmp_path):
    out = tmp_path / "plans.json"
    rc = main(["explore", "--board", "kv260", "--no-report", "--objective", "energy",
               "--json", str(out)])
    text, err = capsys.readouterr()
    assert rc == 0, err
    assert "objective J" in text and "J/token" in text
    import json

    data = json.loads(out.read_text())
    # among the plans the overlay builds (labelled what-ifs may do better, never ranked first)
    plans = [p for p in data["plans"] if p["projections"][0]["plan"]["design"]["buildable"]]
    assert plans[0] is data["plans"][0]
    best = plans[0]["projections"][0]["energy"]["j_per_token"]
    assert best <= min(p["projections"][0]["energy"]["j_per_token"] for p in plans) + 1e-12
    assert data["pareto_energy"]


def test_energy_objective_without_power_model(capsys):
    rc = main(["explore", "--board", "pynq-z1", "--no-report", "--objective", "energy"])
    _out, err = capsys.readouterr()
    assert rc == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "pynq-z1.yaml: power: expected a power model" in lines[0]
    with pytest.raises(DseError, match="power: expected a power model"):
        require_power(load_board(ROOT / "boards" / "ultra96-v2.yaml"))


def test_negative_power_figure_is_rejected(tmp_path):
    import yaml

    data = yaml.safe_load((ROOT / "boards" / "kv260.yaml").read_text())
    data["power"]["ps_core_active_w"] = -0.4
    with pytest.raises(DseError,
                       match=r"power\.ps_core_active_w: expected a number from 0\.0 to 10000"):
        board_from_mapping(data, "kv.yaml")
    del data["power"]["idle_w"]
    data["power"]["ps_core_active_w"] = 0.4
    with pytest.raises(DseError, match=r"power\.idle_w: expected a value \(field is missing\)"):
        board_from_mapping(data, "kv.yaml")
