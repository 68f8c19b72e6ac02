"""The cost model: exact packing bytes, the cycle formula, roofline monotonicity, physical
sanity on the 2B-4T workload, plan files, and ``dse project`` end to end."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dse.cli import main
from dse.errors import DseError
from dse.model.board import Board, load_board
from dse.model.constants import DEFAULT_CONSTANTS
from dse.model.cost import call_cost, layer_weight_bytes
from dse.model.engine import EngineDesign, engine_cycles, engine_resources, row_split
from dse.model.packing import PACKINGS, get_packing
from dse.model.plan_file import load_plan, plan_from_mapping
from dse.model.project import CostContext, Plan, Scenario, project
from dse.model.workload import Workload
from dse.profile.format import profile_to_json

ROOT = Path(__file__).resolve().parents[1]
BOARDS = ROOT / "boards"
FFN_PLAN = ROOT / "examples" / "plans" / "zcu104-ffn.yaml"
def board(name: str) -> Board:
    path = BOARDS / f"{name}.yaml"
    if not path.exists():
        pytest.skip(f"boards/{name}.yaml is not in this checkout yet")
    return load_board(path)


@pytest.fixture(scope="module")
def seed(seed_workload) -> Workload:
    return seed_workload


@pytest.fixture(scope="module")
def profile_json(seed_profile, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("profile") / "seed.profile.json"
    path.write_text(profile_to_json(seed_profile), encoding="utf-8")
    return path


# -- packing ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "k", "row_bytes"), [
    ("base3", 6912, 1383), ("base3", 2560, 512), ("tl2", 2560, 534), ("tl2", 6912, 1440),
    ("tq1_0", 2560, 540), ("tq2_0", 2560, 660), ("i2", 6912, 1728), ("i2", 2560, 640),
    ("bitplane", 2560, 640), ("base3", 1, 1), ("tq1_0", 257, 108),
])
def test_row_bytes_exact(name, k, row_bytes):
    assert get_packing(name).row_bytes(k) == row_bytes


@given(name=st.sampled_from(sorted(PACKINGS)), n=st.integers(1, 20000), k=st.integers(1, 20000))
def test_matrix_bytes_formula(name, n, k):
    p = PACKINGS[name]
    expect = math.ceil(math.ceil(k / p.group_weights) * p.group_bits / 8) * n
    assert p.matrix_bytes(n, k) == expect
    # Never below the information content of the packing's bits per weight.
    assert p.matrix_bytes(n, k) * 8 >= n * k * p.bits_per_weight - 1e-6


def test_unknown_packing_lists_known():
    with pytest.raises(DseError, match=r"engine\.packing: expected one of i2, base3"):
        get_packing("base4", "engine.packing")


# -- engine cycles ---------------------------------------------------------------------------

def test_engine_cycles_decode_by_hand():
    # 2560 x 6912 on 16 x 32: act load ceil(6912/16)=432, folds 160*216=34560, one drain 24.
    assert engine_cycles(2560, 6912, 1, 16, 32, 1, 16, 24) == 432 + 34560 + 24


def test_engine_cycles_prefill_with_remainder_pass():
    # N=100, K=50, M=10 on 8 x 16 holding 4 vectors: folds 13*4=52, one cycle per vector per
    # fold; each vector's 50 activation bytes padded to whole 16-byte beats (4 beats); two
    # full passes of 4 vectors and a remainder pass of 2, so 3 pipeline drains.
    assert engine_cycles(100, 50, 10, 8, 16, 4, 16, 24) == 10 * 4 + 52 * 10 + 3 * 24
    # Exactly divisible: no remainder pass.
    assert engine_cycles(100, 50, 8, 8, 16, 4, 16, 24) == 8 * 4 + 52 * 8 + 2 * 24
    # One vector per pass: a drain per token.
    assert engine_cycles(100, 50, 10, 8, 16, 1, 16, 24) == 10 * 4 + 52 * 10 + 10 * 24


def test_engine_cycles_rejects_zero():
    with pytest.raises(ValueError):
        engine_cycles(0, 10, 1, 1, 1, 1, 16, 10)


# -- roofline properties ---------------------------------------------------------------------

designs = st.builds(
    EngineDesign,
    pe=st.sampled_from([1, 2, 4, 8, 16, 32, 64]),
    simd=st.sampled_from([1, 3, 8, 16, 32, 64, 128]),
    packing=st.sampled_from(sorted(PACKINGS)),
    clock_mhz=st.floats(50, 400),
    engines=st.integers(1, 4),
    vectors=st.sampled_from([1, 2, 8, 32]),
    stream_bits=st.sampled_from([32, 64, 128, 256, 512]),
    head=st.sampled_from([None, "int8", "bf16"]),
    head_macs=st.sampled_from([16, 64, 256]),
)
shapes = st.tuples(st.integers(1, 30000), st.integers(1, 30000), st.integers(1, 512))


def _cost(design: EngineDesign, b: Board, n: int, k: int, m: int, resident: bool = False,
          dense: bool = False):
    wb = 0 if resident else design.packing_spec.matrix_bytes(n, k)
    return call_cost(design, b, DEFAULT_CONSTANTS, n=n, k=k, m=m, weight_bytes=wb,
                     dense=(design.head or "bf16") if dense else None)


@pytest.fixture(scope="module")
def zcu104() -> Board:
    return board("zcu104")


@settings(max_examples=150)
@given(design=designs, shape=shapes, resident=st.booleans(), dense=st.booleans(),
       factor=st.floats(1.0, 8.0))
def test_more_bandwidth_or_clock_never_slower(zcu104, design, shape, resident, dense, factor):
    n, k, m = shape
    base = _cost(design, zcu104, n, k, m, resident, dense)
    ddr = zcu104.ddr.model_copy(update={"peak_bandwidth_gb_s": zcu104.ddr.peak_bandwidth_gb_s
                                        * factor})
    faster_ddr = _cost(design, zcu104.model_copy(update={"ddr": ddr}), n, k, m, resident, dense)
    faster_clk = _cost(replace(design, clock_mhz=design.clock_mhz * factor), zcu104, n, k, m,
                       resident, dense)
    assert faster_ddr.time_s <= base.time_s * (1 + 1e-12)
    assert faster_clk.time_s <= base.time_s * (1 + 1e-12)


@settings(max_examples=150)
@given(design=designs, shape=shapes, which=st.sampled_from(["pe", "simd"]))
def test_more_lanes_never_slower_never_fewer_luts(zcu104, design, shape, which):
    n, k, m = shape
    wider = replace(design, **{which: getattr(design, which) * 2})
    # Wider PE deals coarser row folds to the engines (the driver's split, row_split): the
    # busiest engine may get more rows, or an engine none, and its stream may bind harder.
    # Where the busiest engine gets no more rows, more lanes are never slower.
    def busiest(d):
        return max(b - a for a, b in row_split(n, d.pe, d.engines))

    if busiest(wider) <= busiest(design):
        assert _cost(wider, zcu104, n, k, m).time_s <= _cost(
            design, zcu104, n, k, m).time_s * (1 + 1e-12)
    c = DEFAULT_CONSTANTS
    assert engine_resources(wider, zcu104, c).lut >= engine_resources(design, zcu104, c).lut


@settings(max_examples=150)
@given(design=designs, shape=shapes, resident=st.booleans(), dense=st.booleans())
def test_times_finite_nonnegative_and_bytes_per_pass(zcu104, design, shape, resident, dense):
    n, k, m = shape
    cc = _cost(design, zcu104, n, k, m, resident, dense)
    for t in (cc.compute_s, cc.ddr_s, cc.link_s, cc.overhead_s, cc.ps_s, cc.time_s):
        assert math.isfinite(t)
        assert t >= 0
    assert cc.bound in ("compute", "ddr", "link", "overhead")
    packed = 0 if resident else design.packing_spec.matrix_bytes(n, k)
    passes = 1 if dense else math.ceil(m / design.vectors)
    assert cc.weight_bytes == packed * passes


# -- physical sanity on the 2B-4T workload -----------------------------------------------------

def _all_ternary(wl: Workload) -> frozenset[str]:
    return frozenset(layer.name for layer in wl.layers if layer.ternary)


@pytest.mark.parametrize("name", ["zcu104", "kv260"])
def test_decode_never_beats_ddr_floor(seed, name):
    b = board(name)
    ctx = CostContext.for_board(b)
    offload = _all_ternary(seed)
    some = sorted(offload)[:7]

    @settings(max_examples=40, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(design=designs, resident=st.booleans())
    def check(design, resident):
        res = frozenset(some) if resident else frozenset()
        plan = Plan("all", replace(design, head=None), offload, res)
        p = project(seed, plan, ctx, Scenario())
        streamed = sum(layer_weight_bytes(layer, plan.design) for layer in seed.layers
                       if layer.name in offload - res)
        assert p.ddr_weight_bytes == streamed
        floor_ms = streamed / (b.ddr.peak_bandwidth_gb_s * 1e9) * 1e3
        assert p.ddr_floor_ms == pytest.approx(floor_ms)
        fpga_ms = sum(call.time_s for call in p.calls.values()) * 1e3
        assert fpga_ms >= floor_ms * (1 - 1e-9)
        assert p.plan_ms >= floor_ms * (1 - 1e-9)
        assert math.isfinite(p.plan_ms) and p.plan_ms > 0

    check()


def test_lm_head_without_head_unit_runs_two_stage(seed, zcu104):
    ctx = CostContext.for_board(zcu104)
    design = EngineDesign(16, 32, "base3", 250, 1, max_k=6912)
    p = project(seed, Plan("head", design, frozenset({"lm_head"})), ctx)
    assert p.feasible
    # stage 1 streams a base-3 copy of the 128256 x 2560 head through the ternary engines
    assert p.calls["lm_head"].weight_bytes == 128256 * 512
    with_head = replace(design, head="int8", head_macs=64)
    p2 = project(seed, Plan("head", with_head, frozenset({"lm_head"})), ctx)
    assert p2.calls["lm_head"].weight_bytes == 128256 * 2560  # int8 on the dense unit
    assert p2.feasible


def test_2b4t_on_board_pynq_z2_out_of_memory(seed):
    b = board("pynq-z2")
    design = EngineDesign(4, 8, "i2", b.clock.typical_mhz, 1, max_k=6912)
    p = project(seed, Plan("cpu", design, frozenset()), CostContext.for_board(b), Scenario())
    assert p.memory_bytes > p.memory_capacity_bytes
    assert any(str(why).startswith("memory") for why in p.infeasible)


def test_small_ddr_is_out_of_memory(seed, zcu104):
    """The same check without depending on another board file: 512 MiB of DDR."""
    b = zcu104.model_copy(update={"ddr": zcu104.ddr.model_copy(
        update={"capacity_bytes": 512 * 2**20})})
    p = project(seed, Plan("cpu", EngineDesign(4, 8), frozenset()), CostContext.for_board(b))
    assert any(str(why).startswith("memory") for why in p.infeasible)


def test_engine_over_board_names_resource(seed, zcu104):
    design = EngineDesign(64, 128, "base3", 250, 4, stream_bits=128, max_k=6912)
    p = project(seed, Plan("big", design, _all_ternary(seed)), CostContext.for_board(zcu104))
    assert not p.feasible
    assert any(str(why).startswith("lut") for why in p.infeasible)


# -- plan files ------------------------------------------------------------------------------

GOOD = {
    "name": "t",
    "engine": {"pe": 16, "simd": 32, "packing": "base3", "clock_mhz": 250, "engines": 2,
               "vectors": 1, "stream_bits": 128, "resident_bytes": 0, "head": None,
               "head_macs": 0},
    "offload": ["model.layers.*.mlp.*", "model.layers.*.self_attn.*"],
    "resident": ["model.layers.0.self_attn.k_proj"],
    "fuse": True,
}


def test_plan_from_mapping(seed):
    plan = plan_from_mapping(GOOD, seed, "p.yaml")
    assert len(plan.offload) == 210
    assert plan.resident == {"model.layers.0.self_attn.k_proj"}
    assert plan.design.max_k == 6912  # defaults to the widest offloaded layer
    assert plan.design.packing == "base3" and plan.design.engines == 2


def _with(**changes) -> dict:
    data = json.loads(json.dumps(GOOD))
    for key, value in changes.items():
        if key.startswith("engine."):
            data["engine"][key.split(".", 1)[1]] = value
        elif value is None:
            data.pop(key)
        else:
            data[key] = value
    return data


@pytest.mark.parametrize(("data", "match"), [
    (_with(offload=["model.layers.*.mlp.*", "model.layer.*.attn"]),
     r"p\.yaml: offload\[1\]: expected a glob matching .*'model\.layer\.\*\.attn'"),
    (_with(**{"engine.packing": "base4"}), r"p\.yaml: engine\.packing: expected one of i2, base3"),
    (_with(**{"engine.pe": 0}), r"p\.yaml: engine\.pe: expected an integer >= 1, got 0"),
    (_with(**{"engine.simd": -4}), r"p\.yaml: engine\.simd: expected an integer >= 1"),
    (_with(resident=["lm_head"]), r"p\.yaml: resident: expected layers that are also in offload"),
    (_with(engine=None), r"p\.yaml: engine: expected a value \(field is missing\)"),
    (_with(colour="red"), r"p\.yaml: colour: expected one of the plan fields"),
    (_with(**{"engine.lanes": 4}), r"p\.yaml: engine\.lanes: expected one of the engine fields"),
    (_with(**{"engine.max_k": 2560}), r"p\.yaml: engine\.max_k: expected an integer >= 6912"),
    (_with(fuse="yes please"), r"p\.yaml: fuse: expected true or false"),
])
def test_plan_errors(seed, data, match):
    with pytest.raises(DseError, match=match) as exc:
        plan_from_mapping(data, seed, "p.yaml")
    assert "\n" not in str(exc.value)


def test_plan_zero_shape_layer_rejected(seed):
    bad = replace(seed, layers=(replace(seed.layers[0], n=0), *seed.layers[1:]))
    with pytest.raises(DseError, match=r"offload: expected layers with N >= 1"):
        plan_from_mapping(GOOD, bad, "p.yaml")


@pytest.mark.parametrize(("text", "match"), [
    ("", r"expected a YAML mapping with engine: and offload:"),
    ("engine: {pe: 1, simd: 1\noffload: []\n", r"line \d+: expected valid YAML"),
    ("engine: {pe: 4, simd: 4, clock_mhz: .inf}\noffload: []\n",
     r"engine\.clock_mhz: expected a number from 1\.0 to 2000\.0 \(a PL clock in MHz\)"),
    ("engine: {pe: 4, simd: 4, head: int8}\noffload: [lm_head]\n",
     r"engine\.head_macs: expected >= 1 with a head unit"),
    ("engine: {pe: 4, simd: 4, resident_bytes: lots}\noffload: []\n",
     r"engine\.resident_bytes: expected an integer >= 0, got 'lots'"),
])
def test_plan_file_errors(seed, tmp_path, text, match):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(DseError, match=match) as exc:
        load_plan(path, seed)
    assert str(exc.value).startswith(str(path))


def test_plan_file_optional_fields(seed, tmp_path):
    path = tmp_path / "mini.yaml"
    path.write_text("engine: {pe: 4, simd: 8, head: none}\noffload: [lm_head]\nresident:\n")
    plan = load_plan(path, seed)
    assert plan.name == "mini" and plan.resident == frozenset() and plan.fuse
    assert plan.design.head is None and plan.design.max_k == 2560


def test_example_ffn_plan(seed, zcu104):
    plan = load_plan(FFN_PLAN, seed)
    assert plan.offload == {layer.name for layer in seed.layers
                            if layer.role in ("gate_proj", "up_proj", "down_proj")}
    assert len(plan.offload) == 90 and plan.design.packing == "base3"
    p = project(seed, plan, CostContext.for_board(zcu104))
    assert p.feasible
    assert len(p.calls) == 60  # gate+up fused per block, down alone
    assert p.plan_ms < p.baseline_ms


# -- dse project -----------------------------------------------------------------------------

def _run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(["project", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_project_prints_tables(capsys, profile_json):
    rc, out, err = _run(capsys, "--board", "zcu104", "--profile", str(profile_json), "--plan",
                        str(FFN_PLAN), "--layers")
    assert rc == 0, err
    for text in ("board: ZCU104", "view: on-board", "calibration: none",
                 "engine design: 2x 16x32 base3 s128 @250MHz", "PS runtime: native",
                 "CPU-only baselines", "speedup of the plan", "where a token goes",
                 "attention", "DDR floor ms", "BRAM36", "memory (DDR)",
                 "feasibility: feasible", "model.layers.29.mlp.down_proj", "input_layernorm"):
        assert text in out
    # PyTorch fp32 of 2B-4T cannot run in the ZCU104's 2 GB: the table says so
    assert "NO (needs" in out


def test_project_json(capsys, profile_json, tmp_path, seed):
    out_json = tmp_path / "proj.json"
    rc, _, err = _run(capsys, "--board", "zcu104", "--profile", str(profile_json), "--plan",
                      str(FFN_PLAN), "--phase", "prefill", "--prompt-tokens", "64",
                      "--view", "host-attached", "--json", str(out_json))
    assert rc == 0, err
    data = json.loads(out_json.read_text())
    e2e = data["end_to_end"]
    assert data["plan"]["name"] == "zcu104-ffn"
    # the plan's engine holds one vector a pass: the prompt runs 64 forwards of 1 position,
    # the last (with the head) shown in detail, the whole prompt in "prompt"
    assert data["scenario"] == {**data["scenario"], "phase": "prefill", "m_tokens": 1,
                                "view": "host-attached", "context_tokens": 64}
    prompt = data["prompt"]
    assert (prompt["prompt_tokens"], prompt["group"], prompt["forwards"]) == (64, 1, 64)
    assert prompt["ttft_ms"] == pytest.approx(sum(s["weight"] * s["ms"]
                                                  for s in prompt["scenarios"]))
    assert prompt["tokens_per_s"] == pytest.approx(64e3 / prompt["ttft_ms"])
    assert e2e["speedup"] == pytest.approx(e2e["baseline_ms"] / e2e["plan_ms"])
    by_runtime = {b["runtime"]: b for b in data["baselines"]}
    assert set(by_runtime) == {"torch", "native"}
    assert e2e["baseline_ms"] == min(b["ms"] for b in data["baselines"] if b["feasible"])
    assert sum(data["breakdown_ms"].values()) == pytest.approx(e2e["plan_ms"])
    assert e2e["plan_ms"] >= e2e["ddr_floor_ms"] > 0
    # The same numbers as projecting in-process.
    plan = load_plan(FFN_PLAN, seed)
    ctx = CostContext.for_board(board("zcu104"))
    p = project(seed, plan, ctx, Scenario("host-attached", "prefill", 1, 64))
    assert e2e["plan_ms"] == pytest.approx(p.plan_ms)
    from dse.model.prompt import prompt_cost

    pc = prompt_cost(seed, plan, ctx, 64, view="host-attached")
    assert prompt["ttft_ms"] == pytest.approx(pc.ttft_ms)
    assert data["memory"]["memory_bytes"] == p.memory_bytes
    assert data["resources_available"]["lut"] == 230400
    assert len(data["layers"]) == len(seed.layers)
    assert data["feasible"] is True and data["infeasible"] == []


def test_project_infeasible_exits_zero(capsys, profile_json, tmp_path):
    plan = tmp_path / "big.yaml"
    plan.write_text("engine: {pe: 64, simd: 128, engines: 4, packing: base3}\n"
                    "offload: ['model.layers.*']\n")
    rc, out, _ = _run(capsys, "--board", "zcu104", "--profile", str(profile_json), "--plan",
                      str(plan))
    assert rc == 0
    assert "INFEASIBLE" in out and "lut" in out


@pytest.mark.parametrize(("yaml_text", "field"), [
    ("engine: {pe: 16, simd: 32}\noffload: ['model.layers.*.mlp.nothing']\n", "offload[0]"),
    ("engine: {pe: 16, simd: 32, packing: base7}\noffload: ['lm_head']\n", "engine.packing"),
    ("engine: {pe: 0, simd: 32}\noffload: ['model.layers.*.mlp.*']\n", "engine.pe"),
    ("engine: {pe: 16, simd: 32}\noffload: ['model.layers.*.mlp.*']\n"
     "resident: ['model.layers.0.self_attn.k_proj']\n", "resident"),
    ("offload: ['model.layers.*.mlp.*']\n", "engine"),
])
def test_project_bad_plan_exit_2(capsys, profile_json, tmp_path, yaml_text, field):
    plan = tmp_path / "bad.yaml"
    plan.write_text(yaml_text)
    rc, _, err = _run(capsys, "--board", "zcu104", "--profile", str(profile_json), "--plan",
                        str(plan))
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert f"{plan}: {field}: expected" in re.sub(r": line \d+:", ":", lines[0])


def test_project_missing_plan_file(capsys, profile_json, tmp_path):
    missing = tmp_path / "nope.yaml"
    rc, _, err = _run(capsys, "--board", "zcu104", "--profile", str(profile_json), "--plan",
                      str(missing))
    assert rc == 2
    assert err.strip().splitlines() == [f"dse: error: {missing}: no such plan file"]


def test_project_unknown_board(capsys, profile_json):
    rc, _, err = _run(capsys, "--board", "zcu999", "--profile", str(profile_json), "--plan",
                      str(FFN_PLAN))
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "zcu999" in lines[0] and "zcu104" in lines[0]


def test_project_json_missing_folder(capsys, profile_json, tmp_path):
    target = tmp_path / "no" / "such" / "out.json"
    rc, out, err = _run(capsys, "--board", "zcu104", "--profile", str(profile_json), "--plan",
                        str(FFN_PLAN), "--json", str(target))
    assert rc == 2
    assert "does not exist" in err and out == ""


def test_project_bad_tokens(capsys, profile_json):
    rc, _, err = _run(capsys, "--board", "zcu104", "--profile", str(profile_json), "--plan",
                      str(FFN_PLAN), "--phase", "prefill", "--prompt-tokens", "0")
    assert rc == 2 and "--prompt-tokens: expected an integer >= 1" in err


def test_project_default_profile(capsys):
    pytest.importorskip("dse.profile.default")
    rc, out, err = _run(capsys, "--board", "zcu104", "--plan", str(FFN_PLAN))
    assert rc == 0, err
    assert "embedded default" in out
