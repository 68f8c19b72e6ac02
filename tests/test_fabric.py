"""Fabric and clock from evidence (issue 24): memory inference rules, the Yosys-to-Vivado
relation, the published plan's fabric, the clock each plan can close, and bad evidence files.
No synthesis runs here (bench/bench_synth.py does that); these read the shipped data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dse.cli import main
from dse.fabric_data import SHIPPED, load_fabric
from dse.model.board import load_board
from dse.model.fabric import (
    attention_memories,
    bram_tiles,
    engine_memories,
    lutram_luts,
    speed_grade,
    supported_clock,
    unit_memories,
)
from dse.model.plan_file import load_plan
from dse.model.project import CostContext, Scenario, project
from dse.model.workload import workload_from_profile
from dse.profile.default import default_profile

ROOT = Path(__file__).resolve().parents[1]
PLAN = ROOT / "examples" / "plans" / "bitnet-kv260.yaml"


@pytest.fixture(scope="module")
def fab():
    return load_fabric()


def test_block_ram_geometry():
    # a 128-bit x 257-row bank: two RAMB36 in 512 x 72 (or four RAMB18 in 512 x 36)
    assert bram_tiles(128, 257) == 2
    # a 36 x 512 memory fits one RAMB18: half a tile
    assert bram_tiles(36, 512) == 0.5
    # the engine's activation buffer at the published shape: 8 banks of a 128-bit beat
    assert engine_memories(1, 80, 1, 4, 8192) == {"bram36": 16, "uram": 0, "lut_ram": 48}
    assert lutram_luts(33, 32) == 24 and lutram_luts(7, 64) == 8 and lutram_luts(8, 1) == 0
    # kv_attn's default build: the p block (4096 x 5 x 4 x 2 B) is the block RAM
    assert attention_memories(4, 128, 5, 4096)["bram36"] == pytest.approx(37.5)


def test_memory_rules_match_yosys_at_every_synthesized_point(fab):
    for synth, unit in ((fab.engine, "engine"), (fab.attention, "attention")):
        if synth is None:
            pytest.skip(f"no synthesized {unit} data")
        for p in synth.points:
            rule = unit_memories(unit, dict(p.params))
            assert rule["bram36"] == p.bram36, (unit, p.params)
            assert rule["uram"] == p.uram, (unit, p.params)


def test_relation_is_fitted_on_one_build_and_checked_on_another(fab):
    rel = fab.relation
    assert (rel.fit_design, rel.check_design) == ("attn", "ffn")
    # mean of the attn build's 4 engine rows over Yosys's 3,887 LUT / 1,814 FF
    assert rel.lut == pytest.approx((3818 + 3895 + 4086 + 4063) / 4 / 3887)
    assert rel.ff == pytest.approx((1840 + 3 * 1832) / 4 / 1814)
    assert rel.lut_range == pytest.approx((3818 / 3887, 4086 / 3887))
    err = rel.check_errors()
    assert err["lut"] == pytest.approx(-0.051, abs=0.001)
    assert err["ff"] == pytest.approx(0.003, abs=0.001)


@pytest.mark.parametrize("part, grade", [("xck26-sfvc784-2LV-c", "-2LV"),
                                         ("xc7z020clg400-1", "-1"),
                                         ("xczu3eg-sbva484-1-i", "-1"),
                                         ("xczu48dr-ffvg1517-2-e", "-2")])
def test_speed_grade(part, grade):
    assert speed_grade(part) == grade


def test_clock_support_and_derating(fab):
    # within the closures' range: 0.108 ns at 36%, 0.008 ns at 72% -> 250 MHz
    s = supported_clock(fab, "zynqmp", "-2LV", {"engine": (0, 4)}, 0.50)
    assert s.mhz == 250 and s.closure.design in ("ffn", "attn")
    # a -2 part is at least as fast as the -2LV closure: covered, never above its clock
    assert supported_clock(fab, "zynqmp", "-2", {"engine": (0, 4)}, 0.30).mhz == 250
    # fuller than any closure: no evidence
    assert supported_clock(fab, "zynqmp", "-2LV", {"engine": (0, 4)}, 0.75).mhz is None
    # more attention units than any closed design held: no evidence
    assert supported_clock(fab, "zynqmp", "-2LV", {"engine": (0, 4), "attention": (0, 3)},
                           0.40).mhz is None
    # a unit deeper than the closed design's: each extra level adds the closure's per-level
    # delay (1.840 ns of LUT stages / 9 levels) to the period the slack at 40% LUT allows:
    # 4 - 0.097 + 5 x 0.204 = 4.923 ns -> 203 MHz -> the 200 MHz step
    s = supported_clock(fab, "zynqmp", "-2LV", {"engine": (14, 4)}, 0.40)
    assert s.mhz == 200 and "5 logic level(s) deeper than its 9, 0.204 ns each" in s.evidence
    assert supported_clock(fab, "zynq7000", "-1", {"engine": (0, 2)}, 0.40).mhz == 100


def test_published_plan_within_bars_of_its_measured_fabric(fab):
    wl = workload_from_profile(default_profile())
    ctx = CostContext.for_board(load_board(ROOT / "boards" / "kv260.yaml"), fabric=fab)
    p = project(wl, load_plan(PLAN, wl), ctx, Scenario(kv_dtype="fp32", context_tokens=65))
    measured = {"lut": 42271, "ff": 53342, "bram36": 95, "uram": 40}
    bars = {"lut": 0.15, "ff": 0.15, "bram36": 0.20, "uram": 0.20}
    for k, v in measured.items():
        assert abs(getattr(p.resources, k) / v - 1) <= bars[k], k
    assert p.evidence.clock.mhz == 250 and not p.evidence.beyond
    assert "bitnet-kv260 RTL synthesized" in p.evidence.resource_basis


def test_without_evidence_resources_are_labelled_estimated():
    wl = workload_from_profile(default_profile())
    ctx = CostContext.for_board(load_board(ROOT / "boards" / "kv260.yaml"))
    plan = load_plan(PLAN, wl)
    p = project(wl, plan, ctx, Scenario(kv_dtype="fp32", context_tokens=65))
    assert p.evidence.resource_basis.startswith("estimated")
    assert p.evidence.clock.mhz is None and not p.evidence.beyond


def _run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_a_clock_beyond_the_evidence_is_a_warned_what_if(capsys, tmp_path):
    plan = yaml.safe_load(PLAN.read_text())
    plan["engine"]["clock_mhz"] = 300
    f = tmp_path / "fast.yaml"
    f.write_text(yaml.safe_dump(plan))
    rc, out, err = _run(capsys, "project", "--board", "kv260", "--plan", str(f), "--kv-dtype",
                        "fp32", "--context-tokens", "65", "--prompt-tokens", "13")
    assert rc == 0, err
    assert "warning: what-if: the plan's 300 MHz is beyond what the clock evidence supports" \
        in out
    assert "clock evidence: supported up to 250 MHz" in out


@pytest.mark.parametrize("edit, field", [
    (lambda d: d["clock"]["closures"][0].update(wns_ns="fast"), "clock.closures[0].wns_ns"),
    (lambda d: d["relation"].update(check="attn"), "relation.check"),
    (lambda d: d["ip"]["axi_dma"].pop("lut"), "ip.axi_dma.lut"),
    (lambda d: d["clock"]["closures"][1].update(counts={"engine": 0}),
     "clock.closures[1].counts.engine"),
    (lambda d: d.update(extra=1), "extra"),
    # a step of 1e9 MHz rounded every supported clock to 0 MHz: ZeroDivisionError in explore
    (lambda d: d["clock"].update(step_mhz=1e9), "clock.step_mhz: expected a finite number "
     "from 1 to 100"),
    # more slack than the period: 'supported up to -25 MHz'
    (lambda d: d["clock"]["closures"][0].update(wns_ns=1e6), "clock.closures[0].wns_ns: "
     "expected a slack below the clock's period (4 ns at 250 MHz)"),
    (lambda d: d["clock"]["closures"][0].update(clock_mhz=1e9), "clock.closures[0].clock_mhz: "
     "expected a number from 1.0 to 2000.0 (a PL clock in MHz)"),
    (lambda d: d["ip"]["axi_dma"].update(lut=10**15), "ip.axi_dma.lut: expected a finite "
     "number from 0 to 1e+08"),
    (lambda d: d["relation"]["rows"][0].update(ff=10**12), "relation.rows[0].ff"),
    (lambda d: d["clock"].update(same_fabric={"rfsoc": "zynqmp", "zynqmp": "rfsoc"}),
     "clock.same_fabric.rfsoc"),
])
def test_a_malformed_evidence_file_is_one_line_exit_2(capsys, tmp_path, edit, field):
    data = yaml.safe_load(SHIPPED.read_text())
    edit(data)
    bad = tmp_path / "fabric.yaml"
    bad.write_text(yaml.safe_dump(data))
    rc, _out, err = _run(capsys, "project", "--board", "kv260", "--plan", str(PLAN),
                        "--fabric", str(bad), "--prompt-tokens", "13", "--context-tokens", "65")
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and field in lines[0], err
    assert "Traceback" not in err


def test_a_unit_count_beyond_the_evidence_is_a_warned_what_if(capsys, tmp_path):
    f = tmp_path / "three.yaml"
    f.write_text("engine: {pe: 1, simd: 80, packing: base3, clock_mhz: 250, engines: 1}\n"
                 "offload: ['model.layers.*']\nkv_dtype: int8\n"
                 "attention: {count: 3, max_kv_heads: 2, max_positions: 1024}\n")
    rc, out, err = _run(capsys, "project", "--board", "kv260", "--plan", str(f))
    assert rc == 0, err
    assert "no clock evidence: no published closure covers 3 attention unit(s)" in out
    assert "warning: what-if: the plan's 250 MHz is beyond" in out


def test_explore_recommends_within_the_evidence_and_labels_the_rest(capsys, tmp_path):
    js = tmp_path / "plans.json"
    rc, out, err = _run(capsys, "explore", "--board", "kv260", "--no-report", "--json",
                        str(js))
    assert rc == 0, err
    assert ("warning: what-if: the engine template builds up to 4 attention units; the "
            "published closures on zynqmp hold at most 2") in out
    assert "warning: what-if: KV260 and the engine template allow 300 MHz" in out
    plans = json.loads(js.read_text())["plans"]
    best = plans[0]["projections"][0]
    ev = best["clock_evidence"]
    assert not ev["beyond_evidence"] and best["plan"]["design"]["clock_mhz"] <= ev["supported_mhz"]
    assert best["resource_basis"].startswith("engines synthesized")
    labels = {p["label"]: p for p in plans}
    wi = labels["what-if: clock"]["projections"][0]
    assert wi["plan"]["design"]["clock_mhz"] == 300 and wi["clock_evidence"]["beyond_evidence"]
    assert not wi["plan"]["design"]["buildable"]
    # every ranked plan cites its clock evidence
    assert all(p["projections"][0]["clock_evidence"]["evidence"] for p in plans
               if p["projections"][0]["clock_evidence"] is not None)


def test_attention_memories_of_a_group_beyond_the_rtl_s():
    """G = 16 (a model's GQA group wider than kv_attn's 8) takes ``TMAX*HMAX*G/8`` rows of p
    block RAM like the RTL's own groups, never ``8 // G`` = 0 (a ZeroDivisionError explore once
    raised): with shallow q banks (LUT RAM) G16 with one KV head holds G8's block RAM with
    two, and twice G16's with half the positions."""
    from dse.model.fabric import attention_memories

    g16 = attention_memories(16, 16, 1, 4096)
    assert g16["bram36"] == attention_memories(8, 16, 2, 4096)["bram36"] > 0
    assert g16["bram36"] == 2 * attention_memories(16, 16, 1, 2048)["bram36"]
