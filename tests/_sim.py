"""overlays/sim/sim.py (the Verilator build cache and cocotb runner) as one module object for
every RTL test, so builds cached by one test file are the same objects in the next; and the
lint every RTL test file runs on its builds."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def sim_module():
    """The harness, imported once under the name ``tgemv_sim``."""
    if "tgemv_sim" not in sys.modules:
        spec = importlib.util.spec_from_file_location("tgemv_sim", ROOT / "overlays/sim/sim.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules["tgemv_sim"] = mod
        spec.loader.exec_module(mod)
    return sys.modules["tgemv_sim"]


def lint(build, tmp_dir: Path) -> subprocess.CompletedProcess:
    """``verilator --lint-only -Wall`` of one build (``sim.Build`` or ``sim.AttnBuild``): its
    sources, its generated multi-instance top if it has one, its parameters."""
    files = [str(ROOT / "overlays/rtl" / s) for s in build.sources]
    if build.extra_verilog():
        top = tmp_dir / f"{build.top}.v"
        top.write_text(build.extra_verilog())
        files.append(str(top))
    params = [f"-G{k}={v}" for k, v in build.parameters.items()]
    return subprocess.run([shutil.which("verilator"), "--lint-only", "-Wall", "--top-module",
                           build.top, *params, *files], capture_output=True, text=True,
                          check=False)
