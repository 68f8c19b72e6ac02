"""Benchmark: ``dse calibrate --backend sim`` of the best ZCU104 plan's decode shapes.

Runs the whole flow (RTL in Verilator, every result checked bit-exactly, fit, held-out check,
report) as a user would, and records wall time and the model's error before and after fitting
to bench/results/calibrate_sim.json. The first run also builds the Verilator model (cached).

Run: python bench/bench_calibrate_sim.py
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cal = Path(tmp) / "zcu104.yaml"
        t = time.perf_counter()
        res = subprocess.run(
            [sys.executable, "-m", "dse.cli", "calibrate", "--board",
             str(ROOT / "boards" / "zcu104.yaml"), "--backend", "sim", "--repeats", "3",
             "--output", str(cal), "--report", str(Path(tmp) / "r.md")],
            cwd=tmp, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t
        data = yaml.safe_load(cal.read_text(encoding="utf-8"))
    held = next((ln for ln in res.stdout.splitlines() if ln.startswith("held-out")), "")
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "command": "dse calibrate --board boards/zcu104.yaml --backend sim --repeats 3",
        "wall_s": round(wall, 1),
        "measurements": len(data["per_entry"]),
        "error_before": data["error_before"],
        "error_after": data["error_after"],
        "held_out": held,
        "parameters": data["parameters"],
        "bars": {"wall_s": 300, "error_after_max": 0.05, "held_out_max": 0.10},
    }
    out = ROOT / "bench" / "results" / "calibrate_sim.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
