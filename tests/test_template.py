"""The engine template (overlays/ternary_gemv.yaml): loader, rules, and that explore ranks only
what the shipped overlay builds.

Checked: the template agrees with the RTL's own localparams (latency, packing decode, SIMD
limit of the adder tree) and with the register map; the strict loader names the file and
the field; the design space generated from template x board holds only buildable points
(each with the make line that builds it); every plan of ``dse explore --json`` on every
shipped board is buildable or labelled a what-if and not ranked first; the driver's row
split and the cost model agree; vectors answered per clock change the cycle formula.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from _rtl_regs import unit_contract

from dse.cli import main
from dse.errors import DseError
from dse.hw import regs
from dse.model.board import load_board
from dse.model.constants import DEFAULT_CONSTANTS
from dse.model.cost import call_cost
from dse.model.engine import EngineDesign, engine_cycles, row_split, split_cycles
from dse.model.template import (
    design_violations,
    load_template,
    mark_buildable,
    shipped_template,
    template_from_mapping,
)
from dse.search.space import default_space, enumerate_designs

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "overlays" / "ternary_gemv.yaml"
BOARDS = sorted((ROOT / "boards").glob("*.yaml"))


def _raw() -> dict:
    return yaml.safe_load(TEMPLATE.read_text())


# -- the template agrees with the RTL and the register map ---------------------------------

def test_template_matches_the_rtl():
    t = shipped_template()
    top = (ROOT / "overlays/rtl/ternary_gemv.v").read_text()
    ts = int(re.search(r"localparam integer TS\s*=\s*(\d+);", top).group(1))
    lat = int(re.search(r"localparam integer LATENCY = TS \+ (\d+);", top).group(1))
    assert t.latency_cycles == ts + lat == regs.PIPELINE_LATENCY
    assert DEFAULT_CONSTANTS.pipeline_latency_cycles == t.latency_cycles   # the model's default
    # the RTL decodes PACKING != 0 as base3: 8 bits per 5 trits; 0 is i2, 2 bits a trit
    assert "RB    = (PACKING != 0) ? (8*SIMD)/5 : 2*SIMD" in top
    assert t.packing_codes == {"i2": 0, "base3": 1} == regs.PACKING_CODES
    assert (t.row_chunk_bits(20, "base3"), t.row_chunk_bits(16, "i2")) == (32, 32)
    # tgemv_dot: RS = (LV + 1) / 2 register stages must fit in STAGES = TS -> SIMD <= 2**(2*TS)
    assert t.simd_range == (2, 2 ** (2 * ts))
    # VPC vectors per clock: a weight tile is issued once per group of VPC vectors (iv counts
    # the groups, ivb their first vector); VPC <= VMAX is an elaboration rule; the result beat
    # is VPC x PE int32
    assert "ivb    <= ivb + VPC;" in top and "VPC < 1 || VPC > VMAX" in top
    assert "output wire [32*PE*VPC-1:0] m_axis_tdata" in top
    assert t.vpc_values == (1, 2) and regs.ENGINE.build[-1] == "VPC"
    assert unit_contract("ternary_gemv.v")["version"] == t.register_map_version
    assert f"OUT_DEPTH = {t.out_depth}" in top


def test_attention_template_matches_the_rtl():
    """The attention section agrees with kv_attn.v: LATENCY localparam (the latency of
    kv_attn_cycles), stream width, the G and D the RTL elaborates, its default parameters,
    its register map version."""
    at = shipped_template().attention
    assert at is not None and at.name == "kv_attn"
    top = (ROOT / "overlays/rtl/kv_attn.v").read_text()
    lat = int(re.search(r"localparam integer LATENCY = (\d+);", top).group(1))
    assert at.latency_cycles == lat
    assert "input  wire [127:0] s_axis_tdata" in top and at.stream_bits == 128
    assert "output wire [32*G-1:0] m_axis_tdata" in top
    assert "(G != 1 && G != 2 && G != 4 && G != 8)" in top and at.g_values == (1, 2, 4, 8)
    assert "D % 16 != 0 || D < 16 || D > 256" in top
    assert (at.d_range, at.d_step) == ((16, 256), 16)
    rtl_defaults = {k.lower(): int(v) for k, v in
                    re.findall(r"parameter integer (G|D|HMAX|TMAX)\s*=\s*(\d+)", top)}
    assert rtl_defaults == at.default == {"g": 4, "d": 128, "hmax": 5, "tmax": 4096}
    assert f"OUT_DEPTH = {at.out_depth}" in top
    assert unit_contract("kv_attn.v")["version"] == at.register_map_version
    assert (at.max_units, at.attach_dma, at.attach_port) == (4, "own", "engines")
    assert not at.violations(g=4, d=128, hmax=5, tmax=4096)
    assert any("D=40" in w for w in at.violations(g=4, d=40, hmax=5, tmax=64))
    assert any("G=3" in w for w in at.violations(g=3, d=128, hmax=5, tmax=64))


def test_template_without_attention_has_none():
    data = _raw()
    data.pop("attention")
    assert template_from_mapping(data, TEMPLATE).attention is None


def test_packaged_copy_is_the_template():
    packaged = ROOT / "dse" / "data" / "ternary_gemv.yaml"
    assert packaged.read_bytes() == TEMPLATE.read_bytes()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"data/ternary_gemv.yaml"' in pyproject


def test_lane_shapes_are_exactly_the_dma_widths():
    t = shipped_template()
    for packing in ("i2", "base3"):
        shapes = t.lane_shapes(packing)
        assert shapes, packing
        for pe, simd in shapes:
            assert t.stream_bits(pe, simd, packing) in t.dma_stream_bits
            assert not t.violations(pe=pe, simd=simd, packing=packing)
    assert (8, 20) in t.lane_shapes("base3") and (4, 64) not in t.lane_shapes("base3")
    assert (8, 16) in t.lane_shapes("i2") and (16, 64) not in t.lane_shapes("i2")


# -- the strict loader ---------------------------------------------------------------------

@pytest.mark.parametrize(("edit", "field", "expected"), [
    (lambda d: d.pop("pipeline"), "pipeline", "field is missing"),
    (lambda d: d.update(extra=1), "extra", "unknown key"),
    (lambda d: d["parameters"]["simd"].update(max=1), "parameters.simd.max", ">= "),
    (lambda d: d["pipeline"].update(latency_cycles="ten"), "pipeline.latency_cycles",
     "an integer"),
    (lambda d: d["packings"]["base3"].update(code=0), "packings", "a distinct code"),
    (lambda d: d["dma"].update(stream_bits=[64, 32]), "dma.stream_bits", "increasing"),
    (lambda d: d["dma"].update(stream_bits=[36, 72]), "dma.stream_bits", "whole bytes"),
    # a PE whose 32*PE result stream the DMA cannot take: a template the RTL cannot build
    (lambda d: d["parameters"]["pe"].update(values=[1, 2, 3]), "parameters.pe.values",
     "32*PE-bit result stream"),
    (lambda d: d["engines"].update(max=5), "engines.hp_ports.zynqmp", "one engine per HP port"),
    (lambda d: d["pipeline"].update(out_depth=24), "pipeline.out_depth", "power of two"),
    (lambda d: d["packings"].update(b3x={"code": 2, "group_weights": 5, "group_bits": 7}),
     "packings.b3x", "at least one (PE, SIMD)"),
    # the attention section: strict too
    (lambda d: d["attention"].pop("latency_cycles"), "attention.latency_cycles",
     "field is missing"),
    (lambda d: d["attention"].update(units=1), "attention.units", "unknown key"),
    (lambda d: d["attention"]["parameters"]["g"].update(values=[2, 3]),
     "attention.parameters.g.values", "among 1, 2, 4, 8"),
    (lambda d: d["attention"]["parameters"]["d"].update(max=250), "attention.parameters.d",
     "multiples of step"),
    (lambda d: d["attention"].update(stream_bits=256), "attention.stream_bits", "128"),
    (lambda d: d["attention"].update(max_units=5), "attention.max_units", "16 master ports"),
    (lambda d: d["attention"]["attach"].update(hp_port="own_port"),
     "attention.attach.hp_port", "one of engines"),
    (lambda d: d["attention"]["defaults"].update(tmax=100000), "attention.defaults",
     "TMAX=100000"),
    (lambda d: d["dma"].update(stream_bits=[32, 64, 128]), "attention.parameters.g.values",
     "32*G-bit result stream"),
    (lambda d: d["attention"].update(latency_cycles=-1), "attention.latency_cycles",
     "an integer >= 0"),
])
def test_loader_names_file_and_field(tmp_path, edit, field, expected):
    data = _raw()
    edit(data)
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(DseError) as exc:
        load_template(path)
    msg = re.sub(r": line \d+:", ":", str(exc.value))
    assert msg.startswith(f"{path}: {field}:") and expected in msg and "\n" not in msg, msg


def test_loader_rejects_bad_yaml(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(DseError, match=r"t\.yaml: line \d+: expected valid YAML"):
        load_template(path)


def test_loader_round_trip():
    assert template_from_mapping(_raw(), TEMPLATE) == shipped_template()


# -- rules a design breaks -------------------------------------------------------------------

@pytest.mark.parametrize(("design", "rule"), [
    (EngineDesign(4, 64, "base3", stream_bits=256), "needs SIMD a multiple of 5"),
    (EngineDesign(8, 16, "i2", stream_bits=128), "a width converter is not in the flow"),
    (EngineDesign(16, 64, "i2", stream_bits=2048), "the AXI DMA takes"),
    (EngineDesign(8, 16, "tl2", stream_bits=256), "the RTL decodes only"),
    (EngineDesign(8, 16, "i2", stream_bits=256, engines=5), "engines=5"),
    (EngineDesign(8, 16, "i2", stream_bits=256, head="bf16", head_macs=64), "no dense lm_head"),
    (EngineDesign(8, 16, "i2", stream_bits=256, resident_bytes=1024), "on-chip weight buffer"),
    (EngineDesign(8, 16, "i2", stream_bits=256, vectors=4, vectors_per_clock=4),
     "answers 1 or 2 vectors per clock"),
    (EngineDesign(32, 4, "i2", stream_bits=256, vectors=4, vectors_per_clock=2),
     "2048 bits is not a DMA width"),
    (EngineDesign(8, 16, "i2", stream_bits=256, clock_mhz=350), "up to 300 MHz"),
])
def test_design_violations_name_the_rule(design, rule):
    board = load_board(ROOT / "boards" / "zcu104.yaml")
    why = design_violations(shipped_template(), design, board)
    assert any(rule in w for w in why), why
    marked = mark_buildable(shipped_template(), design, board)
    assert not marked.buildable and marked.build_note.startswith("what-if: ")


def test_published_kv260_engine_is_buildable():
    """bitnet-kv260: 4 base3 engines, 80 weights per 16-byte beat, 4 held / 2 answered: the
    overlay builds it (VPC=2); 3 per clock it does not."""
    board = load_board(ROOT / "boards" / "kv260.yaml")
    d = EngineDesign(1, 80, "base3", 250, engines=4, vectors=4, stream_bits=128,
                     vectors_per_clock=2)
    assert design_violations(shipped_template(), d, board) == []
    ours = mark_buildable(shipped_template(), d, board)
    assert ours.buildable and "ENGINES=4" in ours.build_note and "VPC=2" in ours.build_note
    assert "VMAX=4" in ours.build_note and "SIMD=80" in ours.build_note
    three = replace(d, vectors_per_clock=3)
    assert design_violations(shipped_template(), three, board) == [
        "vectors_per_clock=3: the RTL answers 1 or 2 vectors per clock (VPC)"]


def test_a_buildable_design_given_a_head_unit_stops_claiming_it():
    board = load_board(ROOT / "boards" / "zcu104.yaml")
    d = mark_buildable(shipped_template(), EngineDesign(8, 16, "i2", stream_bits=256), board)
    assert d.buildable
    h = replace(d, head="bf16", head_macs=64)
    assert not h.buildable and "no dense lm_head" in h.build_note


# -- the design space ---------------------------------------------------------------------

@pytest.mark.parametrize("board_path", BOARDS, ids=lambda p: p.stem)
def test_space_from_template_is_all_buildable(board_path):
    board = load_board(board_path)
    t = shipped_template()
    designs, _ = enumerate_designs(board, DEFAULT_CONSTANTS, default_space("mix", template=t),
                                   6912)
    assert designs
    for d in designs:
        assert d.buildable and not design_violations(t, d, board), d
        assert d.stream_bits == t.stream_bits(d.pe, d.simd, d.packing)
        assert d.build_note.startswith(f"make -C overlays/vivado overlay BOARD={board.stem} ")
    assert {d.packing for d in designs} == {"i2", "base3"}
    assert max(d.engines for d in designs) == min(4, board.link.hp_ports)


def test_free_space_is_labelled_what_if():
    board = load_board(ROOT / "boards" / "zcu104.yaml")
    designs, _ = enumerate_designs(board, DEFAULT_CONSTANTS, default_space("decode"), 6912)
    assert designs and not any(d.buildable for d in designs)
    assert all(d.build_note.startswith("what-if") for d in designs)


@pytest.mark.parametrize("board_path", BOARDS, ids=lambda p: p.stem)
def test_every_explore_plan_is_buildable(tmp_path, capsys, board_path):
    """The bar: every plan of ``dse explore --json`` is buildable per the template, or is a
    labelled what-if and not ranked first."""
    out = tmp_path / "plans.json"
    assert main(["explore", "--board", str(board_path), "--no-report", "--json",
                 str(out)]) == 0
    text, _ = capsys.readouterr()
    data = json.loads(out.read_text())
    board = load_board(board_path)
    t = shipped_template()
    ranked = [p for p in data["plans"]]
    assert ranked
    for i, p in enumerate([*ranked, data["naive"]]):
        for proj in p["projections"]:
            d = proj["plan"]["design"]
            design = EngineDesign(**d)
            why = design_violations(t, design, board)
            if d["buildable"]:
                assert not why, (p["label"], why)
                assert d["build_note"].startswith("make -C overlays/vivado")
            else:
                assert i > 0, f"{board.stem}: the best plan is a what-if: {d['build_note']}"
                # a what-if breaks a rule of the template, adds a PL unit it lacks, or runs
                # beyond the clock the evidence supports (issue 24)
                units = proj["plan"]["glue"] or proj["plan"]["attention"]
                clock = "beyond the clock evidence" in d["build_note"]
                assert d["build_note"].startswith("what-if: ") and (why or units or clock), \
                    p["label"]
                if clock:
                    assert proj["clock_evidence"]["beyond_evidence"], p["label"]
    best = ranked[0]["projections"][0]["plan"]["design"]
    assert best["buildable"] and best["stream_bits"] == t.stream_bits(
        best["pe"], best["simd"], best["packing"])
    note = ranked[0]["projections"][0]["plan"]["build_note"]
    assert note.startswith(best["build_note"])
    att = ranked[0]["projections"][0]["plan"]["attention"]
    assert ("ATTN=" in note) == (att is not None)
    if att is not None:
        assert f"ATTN={att['count']} ATTN_G={att['group']}" in note
    if ranked[0]["projections"][0]["feasible"]:
        assert f"build the best plan: {note}" in text
    else:  # 2B-4T on a PYNQ-Z1/Z2: no make line for a plan that cannot run, what would fit
        assert "make -C" not in text and "what would fit: " in text
    # the best design's make line (printed where the plan runs; the attention unit's ATTN_*
    # too) passes the Vivado flow's own template check
    if shutil.which("make"):
        line = [*shlex.split(note), f"PYTHON={sys.executable}", "VIVADO=echo",
                f"OUT={tmp_path / 'build'}"]
        res = subprocess.run(line, cwd=ROOT, capture_output=True, text=True, check=False)
        assert res.returncode == 0 and "-tclargs" in res.stdout, res.stderr


# -- the split and the cycle formula ---------------------------------------------------------

@pytest.mark.parametrize(("n", "pe", "engines", "want"), [
    (33, 4, 2, ((0, 20), (20, 33))),
    (8, 8, 2, ((0, 8),)),                      # one fold: the second engine is not started
    (2560, 8, 4, ((0, 640), (640, 1280), (1280, 1920), (1920, 2560))),
    (100, 8, 3, ((0, 40), (40, 72), (72, 100))),
])
def test_row_split(n, pe, engines, want):
    assert row_split(n, pe, engines) == want


def test_call_cost_prices_the_drivers_split():
    board = load_board(ROOT / "boards" / "kv260.yaml")
    d = EngineDesign(4, 20, "base3", 250, engines=3, stream_bits=128)
    cc = call_cost(d, board, DEFAULT_CONSTANTS, n=100, k=300, m=1, weight_bytes=6000)
    per = split_cycles(d, 100, 300, 1, 10)
    assert per == tuple(engine_cycles(b - a, 300, 1, 4, 20, 1, 16, 10)
                        for a, b in row_split(100, 4, 3))
    assert cc.cycles == max(per) == per[0]
    assert cc.act_bytes == 3 * 300          # each engine streams the whole vector
    one = call_cost(replace(d, engines=1), board, DEFAULT_CONSTANTS, n=100, k=300, m=1,
                    weight_bytes=6000)
    assert one.cycles > cc.cycles and one.act_bytes == 300


def test_vectors_answered_per_clock():
    """Held 4, answered 2 per clock: a batch of 3 or 4 costs twice the tile clocks of 2."""
    def tiles(m, vpc):
        return engine_cycles(64, 64, m, 8, 16, 4, 32, 0, vpc) - m * 2

    folds = 8 * 4
    assert [tiles(m, 2) for m in (1, 2, 3, 4)] == [folds, folds, 2 * folds, 2 * folds]
    assert [tiles(m, 1) for m in (1, 2, 3, 4)] == [folds * m for m in (1, 2, 3, 4)]
    assert tiles(5, 2) == 2 * folds + folds        # a pass of 4, then a pass of 1


# -- bad input: a plan naming what the RTL cannot build ---------------------------------------

@pytest.fixture(scope="module")
def kv260_plans(tmp_path_factory):
    path = tmp_path_factory.mktemp("plans") / "plans.json"
    assert main(["explore", "--board", str(ROOT / "boards" / "kv260.yaml"), "--no-report",
                 "--json", str(path)]) == 0
    return json.loads(path.read_text())


@pytest.mark.parametrize(("edit", "rule"), [
    ({"packing": "base3", "simd": 24}, "base3 needs SIMD a multiple of 5"),
    ({"packing": "i2", "pe": 8, "simd": 16, "stream_bits": 512},
     "stream_bits=512: the RTL's stream is PE x row chunk = 256 bits"),
    ({"engines": 5}, "engines=5: one engine per HP port"),
    ({"packing": "i2", "pe": 16, "simd": 64, "stream_bits": 2048}, "the AXI DMA takes"),
])
def test_calibrate_refuses_a_plan_the_rtl_cannot_build(tmp_path, capsys, kv260_plans, edit,
                                                       rule):
    capsys.readouterr()
    data = json.loads(json.dumps(kv260_plans))
    data["plans"][0]["projections"][0]["plan"]["design"].update(edit)
    plans = tmp_path / "plans.json"
    plans.write_text(json.dumps(data))
    out = tmp_path / "c.yaml"
    rc = main(["calibrate", "--board", "kv260", "--backend", "sim", "--plan", str(plans),
               "--no-report", "--output", str(out)])
    _, err = capsys.readouterr()
    assert rc == 2 and rule in err and err.count("\n") == 1, err
    assert "cannot build the plan's engine" in err and not out.exists()


def test_project_labels_a_what_if_plan(tmp_path, capsys):
    """A hand-written plan the overlay cannot build is projected, and labelled a what-if."""
    rc = main(["project", "--board", "zcu104", "--plan",
               str(ROOT / "examples" / "plans" / "zcu104-ffn.yaml"), "--json",
               str(tmp_path / "p.json")])
    out, _ = capsys.readouterr()
    assert rc == 0
    assert "overlay: what-if: SIMD=32: base3 needs SIMD a multiple of 5" in out
    design = json.loads((tmp_path / "p.json").read_text())["plan"]["design"]
    assert design["buildable"] is False and design["build_note"].startswith("what-if")


def test_plan_file_cannot_claim_buildable(tmp_path, capsys):
    plan = tmp_path / "p.yaml"
    plan.write_text("engine: {pe: 8, simd: 16, packing: i2, stream_bits: 256, buildable: true}\n"
                    "offload: ['model.layers.0.mlp.*']\n")
    rc = main(["project", "--board", "zcu104", "--plan", str(plan)])
    _, err = capsys.readouterr()
    assert rc == 2 and f"{plan}: line 1: engine.buildable: expected one of the engine fields" in err


def test_explore_with_another_template(tmp_path, capsys):
    """--template names the engine template; its rules decide what is ranked and how to build."""
    data = _raw()
    del data["packings"]["base3"]
    data["engines"]["max"] = 2
    path = tmp_path / "i2-only.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    out = tmp_path / "plans.json"
    assert main(["explore", "--board", "zcu104", "--no-report", "--template", str(path),
                 "--json", str(out)]) == 0
    text, _ = capsys.readouterr()
    plans = json.loads(out.read_text())["plans"]
    designs = [p["projections"][0]["plan"]["design"] for p in plans]
    buildable = [d for d in designs if d["buildable"]]
    assert buildable and all(d["packing"] == "i2" and d["engines"] <= 2 for d in buildable)
    assert f"TEMPLATE={path.resolve()}" in buildable[0]["build_note"] in text
    if shutil.which("make"):
        line = [*shlex.split(buildable[0]["build_note"]), f"PYTHON={sys.executable}",
                "VIVADO=echo", f"OUT={tmp_path / 'build'}", "ENGINES=3"]
        res = subprocess.run(line, cwd=ROOT, capture_output=True, text=True, check=False)
        # the Makefile checks against the named template: 3 engines break its max of 2
        assert res.returncode != 0, res.stdout
        assert "engines=3" in res.stderr and "the flow builds at most 2" in res.stderr


def test_explore_rejects_a_bad_template(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    data = _raw()
    data["parameters"]["pe"]["values"] = [3]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    rc = main(["explore", "--board", "zcu104", "--no-report", "--template", str(path)])
    _, err = capsys.readouterr()
    assert rc == 2 and f"{path}: line 6: parameters.pe.values:" in err and err.count("\n") == 1
