"""The Vivado flow (overlays/vivado) as far as it can be checked without Vivado.

- every Tcl file is syntactically complete (``info complete`` in tclsh);
- build_overlay.tcl runs end to end in plain tclsh with Vivado's commands stubbed (an
  ``unknown`` handler that logs each call): this catches wrong variable names and branches,
  and the log shows the block design each board gets (PS type, PL clock from the board file,
  AXI DMA with a 26-bit length register, the engine's VLNV) and that the .bit and .hwh land
  side by side with the same base name;
- the Makefile has one target per board and passes the board file's part and clock.
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

from dse.hw.pynq_driver import VLNV

ROOT = Path(__file__).resolve().parent.parent
VIVADO_DIR = ROOT / "overlays" / "vivado"
BOARDS = {"zcu104": "zynq_ultra_ps_e", "kv260": "zynq_ultra_ps_e", "pynq-z2": "processing_system7"}

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


def _dry_run(tmp_path: Path, board: str, board_files: bool) -> tuple[list[str], str]:
    cfg = yaml.safe_load((ROOT / "boards" / f"{board}.yaml").read_text())
    name = f"tgemv_{board.replace('-', '_')}_test"
    args = [board, cfg["part"], str(cfg["clock"]["typical_mhz"]), name, str(tmp_path / "out"),
            "8", "16", "0", "4", "8192"]
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
    clock = str(cfg["clock"]["typical_mhz"])
    assert f"create_project -force tgemv_{board.replace('-', '_')}_test" in text
    assert cfg["part"] in text
    assert re.search(rf"create_bd_cell -type ip -vlnv xilinx.com:ip:{BOARDS[board]}:9.9 ps", text)
    key = ("PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ" if BOARDS[board] == "zynq_ultra_ps_e"
           else "PCW_FPGA0_PERIPHERAL_FREQMHZ")
    assert f"CONFIG.{key} {clock}" in text
    assert "create_bd_cell -type ip -vlnv xilinx.com:ip:axi_dma:9.9 axi_dma_0" in text
    for setting in ("CONFIG.c_sg_length_width 26", "CONFIG.c_include_sg 0",
                    "CONFIG.c_m_axis_mm2s_tdata_width 256",
                    "CONFIG.c_s_axis_s2mm_tdata_width 256"):
        assert setting in text, setting
    assert f"create_bd_cell -type ip -vlnv {VLNV} ternary_gemv_0" in text
    assert "ipx::package_project" in text and "-vendor dse -library hls" in text
    assert "set_property name ternary_gemv core" in text
    assert "set_property version 1.0 core" in text
    assert "launch_runs impl_1 -to_step write_bitstream" in text
    assert ("set_property board_part" in text) == board_files
    copies = re.findall(r"would copy \S+ -> (\S+)", out)
    assert [Path(c).name for c in copies] == [f"tgemv_{board.replace('-', '_')}_test.bit",
                                              f"tgemv_{board.replace('-', '_')}_test.hwh"]
    assert len({Path(c).parent for c in copies}) == 1


@pytest.mark.parametrize(("params", "why"), [
    ("8 24 1 4", "multiple of 5"),                    # base3 needs SIMD % 5 == 0
    ("16 64 0 4", "2048 bits"),                        # i2 16x64: wider than the DMA's 1024
    ("3 16 0 4", "96 bits"),                           # not a power of two
])
def test_build_overlay_rejects_bad_engine_parameters(tmp_path, params, why):
    env = dict(os.environ, STUB_LOG=str(tmp_path / "log"), STUB_BOARD_FILES="0",
               DSE_VIVADO_DRY_RUN="1")
    script = (STUBS + f"set ::argv {{zcu104 xczu7ev-ffvc1156-2-e 250 x out {params} 8192}}\n"
              f"source {{{VIVADO_DIR / 'build_overlay.tcl'}}}\n")
    res = _tcl(tmp_path, script, env)
    assert res.returncode != 0 and why in res.stderr, res.stderr


@pytest.mark.parametrize("board", list(BOARDS))
def test_makefile_target_per_board(board):
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    res = subprocess.run(["make", "-n", "-C", str(VIVADO_DIR), board, f"PYTHON={sys.executable}"],
                         capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    cfg = yaml.safe_load((ROOT / "boards" / f"{board}.yaml").read_text())
    line = " ".join(res.stdout.replace("\\\n", " ").split())
    want = (f"-source build_overlay.tcl -tclargs {board} {cfg['part']} "
            f"{cfg['clock']['typical_mhz']} tgemv_{board.replace('-', '_')}_i2_8x16_v4 build "
            "8 16 0 4 8192")
    assert want in line, line
