"""Benchmark: the overlay's RTL on the 2B-4T decode shapes (cycle accuracy, lane utilization).

For the i2 8x16 and base3 8x20 builds, runs every 2B-4T Linear shape at M=1 in Verilator with
no backpressure and records busy cycles against ``engine_cycles`` (the search's formula) and
against the ideal N*K/lanes, plus the wall time of the simulation, to
bench/results/rtl.json. Bars: |busy - model| <= max(15, 1%); utilization >= 95%.

Run: python bench/bench_rtl.py
"""

from __future__ import annotations

import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from dse.model.engine import engine_cycles

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "overlays" / "sim"))
import sim  # noqa: E402

SHAPES = {"q_proj": (2560, 2560), "k_proj": (640, 2560), "v_proj": (640, 2560),
          "o_proj": (2560, 2560), "gate_proj": (6912, 2560), "up_proj": (6912, 2560),
          "down_proj": (2560, 6912)}
BUILDS = (sim.Build(8, 16, "i2"), sim.Build(8, 20, "base3"))


def main() -> None:
    out = []
    t_all = time.perf_counter()
    for build in BUILDS:
        cases = [{"name": role, "n": n, "k": k, "m": 1, "v": 1, "seed": i + 1,
                  "backpressure": 0.0} for i, (role, (n, k)) in enumerate(SHAPES.items())]
        t = time.perf_counter()
        rec = sim.run(build, cases, tag="bench")
        sim_s = time.perf_counter() - t
        cfg = rec["config"]
        for r in rec["cases"]:
            model = engine_cycles(r["n"], r["k"], 1, cfg["pe"], cfg["simd"], 1,
                                  cfg["stream_bits"] // 8, cfg["latency"])
            out.append({"build": build.name, "layer": r["name"], "n": r["n"], "k": r["k"],
                        "bit_exact": r["ok"], "busy_cycles": r["busy"], "model_cycles": model,
                        "error_cycles": r["busy"] - model,
                        "utilization": r["n"] * r["k"] / cfg["lanes"] / r["busy"]})
        print(f"{build.name}: {len(cases)} shapes in {sim_s:.1f} s")
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "wall_s": round(time.perf_counter() - t_all, 1),
        "worst_abs_error_cycles": max(abs(r["error_cycles"]) for r in out),
        "min_utilization": min(r["utilization"] for r in out),
        "all_bit_exact": all(r["bit_exact"] for r in out),
        "shapes": out,
        "bars": {"error": "max(15 cycles, 1%)", "utilization": 0.95},
    }
    path = ROOT / "bench" / "results" / "rtl.json"
    path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "shapes"}, indent=1))


if __name__ == "__main__":
    main()
