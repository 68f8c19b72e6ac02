"""Benchmark: ``dse calibrate --backend sim`` of the best KV260 plan's layers.

Runs the whole flow (RTL in Verilator built as exactly the best plan's engine: PE, SIMD,
packing, vectors, engines; every result checked bit-exactly, fit, held-out check, report) as a
user would, and records wall time, which build was simulated, and the model's error before
and after fitting to bench/results/calibrate_sim.json. One repeat per call: the simulation is
deterministic. The first run also builds the Verilator model (cached).

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
        cal = Path(tmp) / "kv260.yaml"
        report = Path(tmp) / "r.md"
        t = time.perf_counter()
        res = subprocess.run(
            [sys.executable, "-m", "dse.cli", "calibrate", "--board",
             str(ROOT / "boards" / "kv260.yaml"), "--backend", "sim", "--repeats", "1",
             "--output", str(cal), "--report", str(report)],
            cwd=tmp, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t
        data = yaml.safe_load(cal.read_text(encoding="utf-8"))
        section = report.read_text(encoding="utf-8")
    prov = data.get("provenance", {})
    built = next((ln for ln in res.stdout.splitlines() if ln.startswith("simulating RTL")), "")
    held = next((ln for ln in res.stdout.splitlines() if ln.startswith("held-out")), "")
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "command": "dse calibrate --board boards/kv260.yaml --backend sim --repeats 1",
        "calibrating": next((ln for ln in res.stdout.splitlines()
                             if ln.startswith("calibrating")), ""),
        "simulated_build": built,
        "rtl_build": prov.get("rtl_build"),
        "rtl_engine": prov.get("rtl_engine"),
        "report_names_the_build": bool(prov.get("rtl_build"))
        and str(prov.get("rtl_build")) in section,
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
