"""overlays/sim/sim.py (the Verilator build cache and cocotb runner) as one module object for
every RTL test, so builds cached by one test file are the same objects in the next."""

from __future__ import annotations

import importlib.util
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
