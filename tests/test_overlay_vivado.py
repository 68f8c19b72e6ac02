"""The Vivado flow (overlays/vivado) as far as it can be checked without Vivado.

- every Tcl file is syntactically complete (``info complete`` in tclsh);
- build_overlay.tcl runs end to end in plain tclsh with Vivado's commands stubbed (an
  ``unknown`` handler that logs each call): this catches wrong variable names and branches,
  and the log shows the block design each board gets (PS type, PL clock from the board file,
  AXI DMA with a 26-bit length register, the engine's VLNV) and that the .bit and .hwh land
  side by side with the same base name;
- the Makefile has one target per board, checks the engine parameters against the engine
  template (dse.hw.overlay_build) and passes the board file's part and clock; a
  configuration the RTL cannot build stops it with one line and exit 2;
- N engines get N DMAs, each on its own HP port;
- ATTN=1 adds the attention unit kv_attn (packaged as dse:hls:kv_attn:1.0, its parameters the
  template's defaults unless ATTN_* say otherwise) with its own AXI DMA whose masters join
  engine 0's data SmartConnect (so it shares engine 0's HP port); a bad ATTN argument stops
  the flow with one line and exit 2.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dse.hw.overlay_build import main as overlay_build_main
from dse.hw.overlay_build import tcl_args
from dse.hw.pynq_driver import VLNV
from dse.model.board import load_board
from dse.model.template import shipped_template

ROOT = Path(__file__).resolve().parent.parent
VIVADO_DIR = ROOT / "overlays" / "vivado"
BOARDS = {"zcu104": "zynq_ultra_ps_e", "kv260": "zynq_ultra_ps_e", "pynq-z2": "processing_system7",
          "pynq-z1": "processing_system7"}

# Stubs for Vivado's commands: log every call, return what the script needs to go on.
STUBS = r"""
set ::stub_log [open $::env(STUB_LOG) w]
set ::have_board_files $::env(STUB_BOARD_FILES)
proc unknown {cmd args} {
    puts $::stub_log [list $cmd {*}$args]
    switch -glob -- $cmd {
        get_ipdefs { return [string map {* 9.9} [lindex $args end]] }
        create_bd_cell { return [lindex $args end] }
        get_board_parts { return [expr {$::have_board_files ? [lindex $args end] : ""}] }
        get_property { return "100%" }
        get_files { return [lindex $args end] }
        get_bd_* { return [lindex $args end] }
        ipx::* { return core }
        default { return "" }
    }
}
"""


def tclsh() -> str:
    exe = shutil.which("tclsh")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("tclsh missing under CI (apt-get install -y tcl)")
        pytest.skip("tclsh not installed (apt-get install -y tcl)")
    return exe


@pytest.mark.parametrize("script", sorted(p.name for p in VIVADO_DIR.glob("*.tcl")))
def test_tcl_is_complete(script):
    code = f'set f [open {{{VIVADO_DIR / script}}}]; puts [info complete [read $f]]'
    res = subprocess.run([tclsh()], input=code, capture_output=True, text=True, check=False)
    assert res.stdout.strip() == "1", f"{script}: incomplete Tcl ({res.stderr})"


def _tcl(tmp_path: Path, script: str, env: dict) -> subprocess.CompletedProcess:
    """Run a Tcl script from a file (tclsh exits non-zero on an error only then)."""
    path = tmp_path / "run.tcl"
    path.write_text(script)
    return subprocess.run([tclsh(), str(path)], capture_output=True, text=True, check=False,
                          env=env, cwd=tmp_path)


def _dry_run(tmp_path: Path, board: str, board_files: bool, engines: int = 1,
             pe: int = 8, simd: int = 16, packing: str = "i2",
             attn: dict[str, int] | None = None, vpc: int = 1) -> tuple[list[str], str]:
    b = load_board(ROOT / "boards" / f"{board}.yaml")
    name = f"tgemv_{board.replace('-', '_')}_test"
    args = tcl_args(shipped_template(), b, pe=pe, simd=simd, packing=packing, vmax=4,
                    kmax=8192, engines=engines, clock_mhz=b.clock.typical_mhz, name=name,
                    out_dir=str(tmp_path / "out"), attn=attn, vpc=vpc)
    log = tmp_path / f"{board}.log"
    script = (STUBS + f"set ::argv {{{' '.join(args)}}}\n"
              f"source {{{VIVADO_DIR / 'build_overlay.tcl'}}}\n")
    env = dict(os.environ, STUB_LOG=str(log), STUB_BOARD_FILES=str(int(board_files)),
               DSE_VIVADO_DRY_RUN="1")
    res = _tcl(tmp_path, script, env)
    assert res.returncode == 0, f"{board}: {res.stdout[-1500:]}{res.stderr[-1500:]}"
    return log.read_text().splitlines(), res.stdout


@pytest.mark.parametrize("board_files", [True, False])
@pytest.mark.parametrize("board", list(BOARDS))
def test_build_overlay_dry_run(tmp_path, board, board_files):
    calls, out = _dry_run(tmp_path, board, board_files)
    text = "\n".join(calls)
    cfg = yaml.safe_load((ROOT / "boards" / f"{board}.yaml").read_text())
    clock = f"{cfg['clock']['typical_mhz']:g}"
    assert f"create_project -force tgemv_{board.replace('-', '_')}_test" in text
    assert cfg["part"] in text
    assert re.search(rf"create_bd_cell -type ip -vlnv xilinx.com:ip:{BOARDS[board]}:9.9 ps", text)
    key = ("PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ" if BOARDS[board] == "zynq_ultra_ps_e"
           else "PCW_FPGA0_PERIPHERAL_FREQMHZ")
    assert f"CONFIG.{key} {clock}" in text
    # the HP port's data width is the board file's: 64 bits on Zynq-7000, 128 on ZU+
    width = cfg["link"]["port_width_bits"]
    assert width == (128 if BOARDS[board] == "zynq_ultra_ps_e" else 64)
    hp = ("PSU__SAXIGP2__DATA_WIDTH" if BOARDS[board] == "zynq_ultra_ps_e"
          else "PCW_S_AXI_HP0_DATA_WIDTH")
    assert f"CONFIG.{hp} {width}" in text
    assert "create_bd_cell -type ip -vlnv xilinx.com:ip:axi_dma:9.9 axi_dma_0" in text
    for setting in ("CONFIG.c_sg_length_width 26", "CONFIG.c_include_sg 0",
                    "CONFIG.c_m_axis_mm2s_tdata_width 256",
                    "CONFIG.c_s_axis_s2mm_tdata_width 256"):
        assert setting in text, setting
    assert f"create_bd_cell -type ip -vlnv {VLNV} ternary_gemv_0" in text
    assert "axi_dma_1" not in text
    assert "ipx::package_project" in text and "-vendor dse -library hls" in text
    assert "set_property name ternary_gemv core" in text
    assert "set_property version 1.0 core" in text
    assert "launch_runs impl_1 -to_step write_bitstream" in text
    assert ("set_property board_part" in text) == board_files
    assert "kv_attn" not in text and "axi_dma_attn" not in text      # ATTN=0: no unit
    assert "{CONFIG.NUM_SI 2 CONFIG.NUM_MI 1} data_ic_0" in text
    copies = re.findall(r"would copy \S+ -> (\S+)", out)
    assert [Path(c).name for c in copies] == [f"tgemv_{board.replace('-', '_')}_test.bit",
                                              f"tgemv_{board.replace('-', '_')}_test.hwh"]
    assert len({Path(c).parent for c in copies}) == 1


@pytest.mark.parametrize(("board", "engines"), [("kv260", 4), ("zcu104", 2), ("pynq-z2", 2)])
def test_build_overlay_one_dma_per_engine_on_its_own_hp_port(tmp_path, board, engines):
    calls, _ = _dry_run(tmp_path, board, False, engines, pe=4, simd=20, packing="base3")
    text = "\n".join(calls)
    b = load_board(ROOT / "boards" / f"{board}.yaml")
    ports = shipped_template().ports_for(b.family)[:engines]
    for e, port in enumerate(ports):
        assert f"create_bd_cell -type ip -vlnv {VLNV} ternary_gemv_{e}" in text
        assert f"axi_dma:9.9 axi_dma_{e}" in text
        assert f"connect_bd_intf_net data_ic_{e}/M00_AXI ps/{port}" in text
        assert f"connect_bd_intf_net axi_dma_{e}/M_AXIS_MM2S ternary_gemv_{e}/s_axis" in text
    assert f"ternary_gemv_{engines}" not in text
    assert f"CONFIG.NUM_MI {2 * engines}" in text           # control: a DMA + an engine each
    assert "CONFIG.c_m_axis_mm2s_tdata_width 128" in text    # base3 4x20: 4*8*20/5
    if b.family == "zynqmp":
        for e in range(engines):
            assert f"CONFIG.PSU__USE__S_AXI_GP{e + 2} 1" in text
    else:
        for e in range(engines):
            assert f"CONFIG.PCW_USE_S_AXI_HP{e} 1" in text


@pytest.mark.parametrize(("argv", "why"), [
    (["--pe", "8", "--simd", "24", "--packing", "base3"], "needs SIMD a multiple of 5"),
    (["--pe", "16", "--simd", "64", "--packing", "i2"], "the AXI DMA takes"),   # 2048 bits
    (["--pe", "3", "--simd", "16", "--packing", "i2"], "PE=3"),                 # 96-bit results
    (["--pe", "8", "--simd", "16", "--packing", "tl2"], "the RTL decodes only"),
    (["--pe", "8", "--simd", "16", "--packing", "i2", "--engines", "5"], "engines=5"),
])
def test_build_args_reject_what_the_rtl_cannot_build(capsys, argv, why):
    base = {"--vmax": "4", "--kmax": "8192", "--engines": "1"}
    for k, v in base.items():
        if k not in argv:
            argv = [*argv, k, v]
    assert overlay_build_main(["--board", str(ROOT / "boards" / "zcu104.yaml"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and why in err and "ternary_gemv.yaml" in err, err


def test_build_args_engines_limited_by_the_board(tmp_path, capsys):
    """A board file with 2 HP ports gets at most 2 engines, whatever the template allows."""
    text = (ROOT / "boards" / "kv260.yaml").read_text().replace("hp_ports: 4", "hp_ports: 2")
    board = tmp_path / "two-ports.yaml"
    board.write_text(text)
    rc = overlay_build_main(["--board", str(board), "--pe", "8", "--simd", "16", "--packing",
                             "i2", "--vmax", "4", "--kmax", "8192", "--engines", "3"])
    err = capsys.readouterr().err
    assert rc == 2 and "engines=3" in err and "the board has 2 HP ports" in err, err


def _make(*args: str) -> subprocess.CompletedProcess:
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    return subprocess.run(["make", "-C", str(VIVADO_DIR), f"PYTHON={sys.executable}", *args],
                          capture_output=True, text=True, check=False)


@pytest.mark.parametrize("board", list(BOARDS))
def test_makefile_target_per_board(tmp_path, board):
    """The board target runs the template check, then Vivado with its arguments (echoed)."""
    res = _make(board, "VIVADO=echo", f"OUT={tmp_path}")
    assert res.returncode == 0, res.stderr
    cfg = yaml.safe_load((ROOT / "boards" / f"{board}.yaml").read_text())
    line = " ".join(res.stdout.replace("\\\n", " ").split())
    family = "zynq7" if cfg["family"] == "zynq7000" else "zynqmp"
    want = (f"-source build_overlay.tcl -tclargs {board} {family} {cfg['part']} "
            f"{cfg['clock']['typical_mhz']:g} tgemv_{board.replace('-', '_')}_i2_8x16_v4 "
            f"{tmp_path} 8 16 0 4 1 8192 1 256 256 ")
    assert want in line, line


def test_makefile_stops_on_a_configuration_the_rtl_cannot_build(tmp_path):
    res = _make("overlay", "BOARD=kv260", "PACKING=base3", "SIMD=16", "VIVADO=echo",
                f"OUT={tmp_path}")
    assert res.returncode != 0
    assert "needs SIMD a multiple of 5" in res.stderr, res.stderr
    assert "-tclargs" not in res.stdout


def test_makefile_published_kv260_engines_answer_two_vectors_per_clock(tmp_path):
    """The published KV260 design: 4 base3 PE=1 x SIMD=80 engines holding 4 vectors and
    answering 2 per clock (VPC=2): 128-bit weight beats in, 64-bit result beats (2 x 1 int32)
    out, the engine IP given VPC; VPC=3 (not in the template) and VPC > VMAX refused, one
    line each."""
    res = _make("overlay", "BOARD=kv260", "PACKING=base3", "PE=1", "SIMD=80", "ENGINES=4",
                "VMAX=4", "VPC=2", "VIVADO=echo", f"OUT={tmp_path}")
    assert res.returncode == 0, res.stderr
    line = " ".join(res.stdout.replace("\\\n", " ").split())
    assert " 1 80 1 4 2 " in line and " 4 128 64 S_AXI_HP0_FPD" in line, line
    assert "tgemv_kv260_base3_1x80_v4c2_x4" in line, line
    for vpc, vmax, why in (("3", "4", "answers 1 or 2 vectors per clock"),
                           ("2", "1", "VPC must be at most VMAX (1)")):
        bad = _make("overlay", "BOARD=kv260", "PACKING=base3", "PE=1", "SIMD=80",
                    f"VMAX={vmax}", f"VPC={vpc}", "VIVADO=echo", f"OUT={tmp_path}")
        assert bad.returncode != 0 and why in bad.stderr, bad.stderr
        assert bad.stderr.count("error:") == 1 and "-tclargs" not in bad.stdout


def test_build_overlay_dry_run_sets_vpc(tmp_path):
    """VPC reaches the engine IP and the S2MM width is 32*PE*VPC."""
    calls, _ = _dry_run(tmp_path, "kv260", True, engines=2, pe=4, simd=20, packing="base3",
                        vpc=2)
    text = "\n".join(calls)
    assert "CONFIG.VMAX 4 CONFIG.VPC 2" in text
    assert "CONFIG.c_s_axis_s2mm_tdata_width 256" in text          # 32 * 4 * 2
    assert "CONFIG.c_m_axis_mm2s_tdata_width 128" in text


def test_makefile_four_engines_on_kv260(tmp_path):
    res = _make("overlay", "BOARD=kv260", "PACKING=base3", "PE=4", "SIMD=20", "ENGINES=4",
                "VIVADO=echo", f"OUT={tmp_path}")
    assert res.returncode == 0, res.stderr
    assert ("4 128 128 S_AXI_HP0_FPD,S_AXI_HP1_FPD,S_AXI_HP2_FPD,S_AXI_HP3_FPD"
            in res.stdout), res.stdout


ATTN_DEFAULT = dict(shipped_template().attention.default)


@pytest.mark.parametrize(("board", "engines", "attn"), [
    ("kv260", 1, dict(ATTN_DEFAULT, count=1)),
    ("zcu104", 2, dict(ATTN_DEFAULT, g=8, tmax=512, count=1)),
    ("pynq-z2", 1, dict(ATTN_DEFAULT, g=1, d=64, hmax=2, count=1)),
    ("kv260", 3, dict(ATTN_DEFAULT, hmax=2, count=3)),
    ("kv260", 2, dict(ATTN_DEFAULT, hmax=2, count=3)),   # units 0 and 2 share engine 0's port
    ("zcu104", 4, dict(ATTN_DEFAULT, hmax=2, count=4)),  # 16 control ports: the most there is
])
def test_build_overlay_with_attention_units(tmp_path, board, engines, attn):
    """ATTN=N: kv_attn_<a> and axi_dma_attn_<a>, whose masters join the data SmartConnect of
    engine (a mod ENGINES), so unit a is on that engine's HP port."""
    calls, out = _dry_run(tmp_path, board, False, engines, pe=4, simd=20, packing="base3",
                          attn=attn)
    text = "\n".join(calls)
    b = load_board(ROOT / "boards" / f"{board}.yaml")
    ports = shipped_template().ports_for(b.family)
    at = shipped_template().attention
    n = attn["count"]
    # packaged once as its own IP, then instantiated N times with the requested parameters
    assert "set_property name kv_attn core" in text
    assert "add_files -norecurse " in text and text.count("kv_attn.v") == 1
    on = {e: [a for a in range(n) if a % engines == e] for e in range(engines)}
    for a in range(n):
        e, slot = a % engines, on[a % engines].index(a)
        assert f"create_bd_cell -type ip -vlnv {at.vlnv} kv_attn_{a}" in text
        assert (f"{{CONFIG.G {attn['g']} CONFIG.D {attn['d']} CONFIG.HMAX {attn['hmax']} "
                f"CONFIG.TMAX {attn['tmax']}}} kv_attn_{a}") in text
        # its own simple-mode DMA: 128-bit in, 32*G-bit out
        dma = next(c for c in calls if c.startswith("set_property -dict")
                   and c.endswith(f"axi_dma_attn_{a}"))
        for setting in ("CONFIG.c_include_sg 0", "CONFIG.c_sg_length_width 26",
                        "CONFIG.c_m_axis_mm2s_tdata_width 128",
                        f"CONFIG.c_s_axis_s2mm_tdata_width {32 * attn['g']}"):
            assert setting in dma, setting
        # on engine e's port, through its data SmartConnect
        assert (f"connect_bd_intf_net axi_dma_attn_{a}/M_AXI_MM2S "
                f"data_ic_{e}/S{2 + 2 * slot:02d}_AXI") in text
        assert (f"connect_bd_intf_net axi_dma_attn_{a}/M_AXI_S2MM "
                f"data_ic_{e}/S{3 + 2 * slot:02d}_AXI") in text
        assert f"connect_bd_intf_net axi_dma_attn_{a}/M_AXIS_MM2S kv_attn_{a}/s_axis" in text
        assert f"connect_bd_intf_net kv_attn_{a}/m_axis axi_dma_attn_{a}/S_AXIS_S2MM" in text
        # control: two SmartConnect outputs per unit after the engines'
        mi = 2 * engines + 2 * a
        assert f"connect_bd_intf_net ctrl_ic/M{mi:02d}_AXI axi_dma_attn_{a}/S_AXI_LITE" in text
        assert f"connect_bd_intf_net ctrl_ic/M{mi + 1:02d}_AXI kv_attn_{a}/s_axi_control" in text
        for pin in (f"kv_attn_{a}/ap_clk", f"axi_dma_attn_{a}/m_axi_mm2s_aclk",
                    f"kv_attn_{a}/ap_rst_n", f"axi_dma_attn_{a}/axi_resetn"):
            assert re.search(rf"connect_bd_net \S+ {re.escape(pin)}$", text, re.M), pin
        assert f"+ kv_attn_{a} G={attn['g']} D={attn['d']}" in out
        assert f"on {ports[e]} with engine {e}" in out
    assert f"kv_attn_{n}" not in text
    for e in range(engines):
        assert f"{{CONFIG.NUM_SI {2 + 2 * len(on[e])} CONFIG.NUM_MI 1}} data_ic_{e}" in text
        assert f"connect_bd_intf_net data_ic_{e}/M00_AXI ps/{ports[e]}" in text
    assert f"CONFIG.NUM_MI {2 * engines + 2 * n}" in text


def test_makefile_attn_defaults_from_the_template(tmp_path):
    res = _make("overlay", "BOARD=kv260", "PACKING=base3", "PE=4", "SIMD=20", "ATTN=1",
                "VIVADO=echo", f"OUT={tmp_path}")
    assert res.returncode == 0, res.stderr
    d = ATTN_DEFAULT
    assert (f" S_AXI_HP0_FPD 128 1,{d['g']},{d['d']},{d['hmax']},{d['tmax']},128,"
            f"{32 * d['g']}" in res.stdout), res.stdout
    assert "tgemv_kv260_base3_4x20_v4_attn1" in res.stdout
    res = _make("overlay", "BOARD=kv260", "PACKING=base3", "PE=4", "SIMD=20", "ATTN=3",
                "ATTN_TMAX=1024", "ATTN_G=2", "ATTN_HMAX=2", "VIVADO=echo", f"OUT={tmp_path}")
    assert res.returncode == 0, res.stderr
    assert f" 3,2,{d['d']},2,1024,128,64" in res.stdout, res.stdout


def test_makefile_without_attn_passes_none(tmp_path):
    res = _make("kv260", "VIVADO=echo", f"OUT={tmp_path}")
    assert res.returncode == 0, res.stderr
    assert " S_AXI_HP0_FPD 128 none" in res.stdout, res.stdout


@pytest.mark.parametrize(("extra", "why"), [
    (["--attn", "5"], "ATTN=5: expected 0 (no attention unit) to 4"),
    (["--attn", "yes"], "ATTN=yes: expected 0"),
    (["--attn", "-1"], "ATTN=-1: expected 0"),
    (["--attn", "1", "--attn-g", "3"], "G=3"),
    (["--attn", "1", "--attn-d", "100"], "D=100"),
    (["--attn", "1", "--attn-tmax", "100000"], "TMAX=100000"),
    (["--attn", "1", "--attn-hmax", "five"], "ATTN_HMAX=five: expected a positive integer"),
    (["--attn", "0", "--attn-g", "4"], "ATTN_G given without ATTN=1..4"),
])
def test_bad_attn_argument_is_one_line_exit_2(capsys, extra, why):
    argv = ["--board", str(ROOT / "boards" / "kv260.yaml"), "--pe", "4", "--simd", "20",
            "--packing", "base3", "--vmax", "4", "--kmax", "8192", "--engines", "1", *extra]
    assert overlay_build_main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and why in err, err


def test_makefile_stops_on_a_bad_attn(tmp_path):
    res = _make("overlay", "BOARD=kv260", "ATTN=5", "VIVADO=echo", f"OUT={tmp_path}")
    assert res.returncode == 2
    assert ("error: ATTN=5: expected 0 (no attention unit) to 4 (that many kv_attn instances)"
            in res.stderr)
    assert "-tclargs" not in res.stdout


def test_tcl_rejects_a_malformed_attn_argument(tmp_path):
    b = load_board(ROOT / "boards" / "kv260.yaml")
    args = tcl_args(shipped_template(), b, pe=8, simd=16, packing="i2", vmax=4, kmax=8192,
                    engines=1, clock_mhz=b.clock.typical_mhz, name="x",
                    out_dir=str(tmp_path / "out"))
    args[-1] = "4,128"
    script = (STUBS + f"set ::argv {{{' '.join(args)}}}\n"
              f"source {{{VIVADO_DIR / 'build_overlay.tcl'}}}\n")
    env = dict(os.environ, STUB_LOG=str(tmp_path / "log"), STUB_BOARD_FILES="0",
               DSE_VIVADO_DRY_RUN="1")
    res = _tcl(tmp_path, script, env)
    assert res.returncode != 0 and "attn '4,128': expected none or N,G,D,HMAX,TMAX" in res.stderr


def test_build_args_reject_a_port_width_the_ps_has_not(tmp_path, capsys):
    """A Zynq-7000 board file claiming 128-bit HP ports: one line naming the field."""
    text = (ROOT / "boards" / "pynq-z2.yaml").read_text().replace("port_width_bits: 64",
                                                                  "port_width_bits: 128")
    board = tmp_path / "wide.yaml"
    board.write_text(text)
    rc = overlay_build_main(["--board", str(board), "--pe", "1", "--simd", "40", "--packing",
                             "base3", "--vmax", "1", "--kmax", "4096", "--engines", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    assert "link.port_width_bits 128: a zynq7000 HP port is 32 or 64 bits wide" in err, err


def test_pynq_z2_builds_the_plan_explore_picks_for_bitnet_large(tmp_path):
    """The make line `dse explore --board pynq-z2 --model bitnet_b1_58-large` prints runs
    through the Makefile's checks and the Tcl on a Zynq-7000 PS (processing_system7, 64-bit
    HP port, the attention unit on engine 0's port)."""
    res = subprocess.run([sys.executable, "-m", "dse.cli", "explore", "--board",
                          str(ROOT / "boards" / "pynq-z2.yaml"), "--model",
                          "bitnet_b1_58-large", "--no-report"], capture_output=True,
                         text=True, check=False, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    line = next(x for x in res.stdout.splitlines() if x.startswith("build the best plan: "))
    make = line.split("make -C overlays/vivado overlay ", 1)[1].split()
    res = _make("overlay", *make, "VIVADO=echo", f"OUT={tmp_path}")
    assert res.returncode == 0, res.stderr
    args = (tmp_path / "tclargs.pynq-z2.txt").read_text().split()
    assert args[:3] == ["pynq-z2", "zynq7", "xc7z020clg400-1"]
    engines = int(next(a for a in make if a.startswith("ENGINES=")).split("=")[1])
    assert args[15:17] == [",".join(f"S_AXI_HP{i}" for i in range(engines)), "64"]
    log = tmp_path / "stub.log"
    script = (STUBS + f"set ::argv {{{' '.join(args)}}}\n"
              f"source {{{VIVADO_DIR / 'build_overlay.tcl'}}}\n")
    env = dict(os.environ, STUB_LOG=str(log), STUB_BOARD_FILES="1", DSE_VIVADO_DRY_RUN="1")
    res = _tcl(tmp_path, script, env)
    assert res.returncode == 0, res.stdout[-1500:] + res.stderr[-1500:]
    text = log.read_text()
    assert "xilinx.com:ip:processing_system7:9.9 ps" in text
    assert "CONFIG.PCW_S_AXI_HP0_DATA_WIDTH 64" in text
    assert "kv_attn_0" in text and "connect_bd_intf_net data_ic_0/M00_AXI ps/S_AXI_HP0" in text
