"""Benchmark: Yosys synthesis of the overlay's ternary_gemv for UltraScale+ at several lane counts.

Why: the cost model prices an engine as ``lanes * (lane_lut + decoder_lut_per_lane)
+ PE * pe_lut + engine_lut`` (same for FFs); these numbers were estimates. Synthesizing the real
RTL (``synth_xilinx -family xcup``, Debian's Yosys 0.23) at several PE x SIMD points and fitting
``LUT = a * lanes + b * PE + c`` per packing gives measured per-lane, per-PE and fixed costs to
set or check those constants against.

Counting (Yosys 0.23 cell names): LUT = LUT1..LUT6 + SRL16E/SRLC32E + 8 per RAM32M16 /
4 per RAM32M / RAM64M (LUTs used as memory; INV cells are listed apart: Vivado folds them into
neighbouring LUTs); FF = FD*E; CARRY = CARRY4 + CARRY8 (0.23 maps xcup carries to CARRY4, one
CARRY8 is two of them); BRAM36 = RAMB36E2 + RAMB18E2 / 2; DSP = DSP48E2. Yosys is not Vivado:
it does not pack two small LUTs into one LUT6_2 or absorb inverters, so its LUT counts are
upper bounds on what Vivado reports.

Records to bench/results/synth.json. Run: python bench/bench_synth.py [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from dse.model.constants import DEFAULT_CONSTANTS
from dse.model.packing import get_packing
from dse.packing.stream import stream_bits

ROOT = Path(__file__).resolve().parents[1]
RTL = ROOT / "overlays" / "rtl"
SOURCES = ("axil_ctrl.v", "tgemv_dot.v", "tgemv_b3dec.v", "tgemv_actbuf.v", "tgemv_fifo.v",
           "ternary_gemv.v")
OUT = ROOT / "bench" / "results" / "synth.json"

#: (packing, PE, SIMD): i2 at 64..512 lanes, base3 at 80..640 (SIMD a multiple of 5).
POINTS = [("i2", 4, 16), ("i2", 8, 16), ("i2", 16, 16), ("i2", 16, 32),
          ("base3", 4, 20), ("base3", 8, 20), ("base3", 16, 20), ("base3", 16, 40)]
#: Engine build parameters held fixed: decode (one vector per pass), K up to 8192 (the cost
#: model's max_k default), a 32-deep result FIFO.
VMAX, KMAX, OUT_DEPTH = 1, 8192, 32


@dataclass(frozen=True)
class Point:
    packing: str
    pe: int
    simd: int

    @property
    def lanes(self) -> int:
        return self.pe * self.simd


def yosys_version() -> str:
    out = subprocess.run(["yosys", "-V"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def synthesize(p: Point) -> dict:
    """Run Yosys on one point; return its cell counts and resource totals."""
    params = {"PE": p.pe, "SIMD": p.simd, "PACKING": {"i2": 0, "base3": 1}[p.packing],
              "VMAX": VMAX, "KMAX": KMAX, "OUT_DEPTH": OUT_DEPTH}
    chparam = " ".join(f"-set {k} {v}" for k, v in params.items())
    with tempfile.TemporaryDirectory() as tmp:
        stat = Path(tmp) / "stat.txt"
        script = (f"read_verilog {' '.join(str(RTL / s) for s in SOURCES)}; "
                  f"chparam {chparam} ternary_gemv; "
                  "synth_xilinx -family xcup -top ternary_gemv -flatten; "
                  f"tee -q -o {stat} stat")
        t = time.perf_counter()
        run = subprocess.run(["yosys", "-q", "-p", script], capture_output=True, text=True,
                             check=False, cwd=tmp)
        seconds = time.perf_counter() - t
        if run.returncode:
            raise RuntimeError(f"yosys failed on {p}: {run.stderr[-2000:]}")
        cells = parse_stat(stat.read_text())
    return {"packing": p.packing, "pe": p.pe, "simd": p.simd, "lanes": p.lanes,
            "stream_bits": stream_bits(p.pe, p.simd, p.packing), "params": params,
            "yosys_s": round(seconds, 1), "cells": cells, **totals(cells)}


def parse_stat(text: str) -> dict[str, int]:
    """Cell name -> count from Yosys ``stat`` output."""
    cells = {}
    for name, count in re.findall(r"^\s+([A-Z][A-Z0-9_]+)\s+(\d+)\s*$", text, re.M):
        cells[name] = cells.get(name, 0) + int(count)
    return cells


def totals(c: dict[str, int]) -> dict[str, float]:
    g = c.get
    lut_logic = sum(g(f"LUT{i}", 0) for i in range(1, 7))
    srl = g("SRL16E", 0) + g("SRLC32E", 0)
    lutram = 8 * g("RAM32M16", 0) + 4 * (g("RAM32M", 0) + g("RAM64M", 0)) + sum(
        g(k, 0) for k in ("RAM32X1D", "RAM64X1D", "RAM32X1S", "RAM64X1S", "RAM128X1D"))
    return {
        "lut": lut_logic + srl + lutram, "lut_logic": lut_logic, "lut_srl": srl,
        "lut_ram": lutram, "inv": g("INV", 0),
        "ff": sum(v for k, v in c.items() if re.fullmatch(r"FD[A-Z]E", k)),
        "carry": g("CARRY4", 0) + 2 * g("CARRY8", 0),
        "bram36": g("RAMB36E2", 0) + 0.5 * g("RAMB18E2", 0),
        "uram": g("URAM288", 0),
        "dsp": g("DSP48E2", 0),
    }


def fit(rows: list[dict], key: str) -> dict[str, float]:
    """Least squares ``key = per_lane * lanes + per_pe * PE + fixed`` over the rows."""
    a = np.array([[r["lanes"], r["pe"], 1.0] for r in rows])
    y = np.array([r[key] for r in rows], dtype=float)
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    resid = y - a @ coef
    return {"per_lane": round(float(coef[0]), 2), "per_pe": round(float(coef[1]), 1),
            "fixed": round(float(coef[2]), 0),
            "max_abs_residual": round(float(np.abs(resid).max()), 1)}


def model_costs(packing: str) -> dict[str, float]:
    """The cost model's constants for one engine of this packing (before any fit)."""
    c, p = DEFAULT_CONSTANTS, get_packing(packing)
    return {"lut_per_lane": c.lane_lut + p.decoder_lut_per_lane,
            "lut_per_pe": c.pe_lut + p.block_scale_lut_per_pe, "lut_fixed": c.engine_lut,
            "ff_per_lane": c.lane_ff + p.decoder_ff_per_lane, "ff_per_pe": c.pe_ff,
            "ff_fixed": c.engine_ff}


def model_point(packing: str, pe: int, simd: int) -> dict[str, float]:
    m = model_costs(packing)
    lanes = pe * simd
    return {"lut": lanes * m["lut_per_lane"] + pe * m["lut_per_pe"] + m["lut_fixed"],
            "ff": lanes * m["ff_per_lane"] + pe * m["ff_per_pe"] + m["ff_fixed"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Yosys synthesis of ternary_gemv (xcup)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if shutil.which("yosys") is None:
        raise SystemExit("yosys not found: apt-get install -y yosys (0.23 runs synth_xilinx)")
    points = [Point(*t) for t in POINTS]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(synthesize, points))
    for r in rows:
        model = model_point(r["packing"], r["pe"], r["simd"])
        r["model"] = model
        r["model_error"] = {k: round(model[k] / r[k] - 1, 3) for k in ("lut", "ff")}
    fits = {}
    for packing in sorted({p.packing for p in points}):
        sub = [r for r in rows if r["packing"] == packing]
        fits[packing] = {"lut": fit(sub, "lut"), "ff": fit(sub, "ff"),
                         "lut_with_inv": fit([dict(r, li=r["lut"] + r["inv"]) for r in sub],
                                             "li"),
                         "carry": fit(sub, "carry"), "model": model_costs(packing)}
    result = {
        "what": "Yosys synth_xilinx -family xcup of overlays/rtl/ternary_gemv "
                f"(VMAX={VMAX}, KMAX={KMAX}, OUT_DEPTH={OUT_DEPTH})",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "yosys": yosys_version(),
        "total_s": round(time.perf_counter() - t0, 1),
        "points": rows,
        "fits": fits,
        "counting": __doc__.split("Counting")[1].split("Records")[0].strip(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{'point':>18} {'LUT':>7} {'(INV)':>6} {'FF':>7} {'CARRY':>6} {'BRAM':>5} {'DSP':>4}"
          f"  model LUT/FF")
    for r in rows:
        name = f"{r['packing']} {r['pe']}x{r['simd']}"
        print(f"{name:>18} {r['lut']:7} {r['inv']:6} {r['ff']:7} {r['carry']:6} "
              f"{r['bram36']:5g} {r['dsp']:4}  {r['model']['lut']:.0f}/{r['model']['ff']:.0f}")
    for packing, f in fits.items():
        m = f["model"]
        print(f"{packing}: LUT/lane {f['lut']['per_lane']} (model {m['lut_per_lane']}), "
              f"LUT/PE {f['lut']['per_pe']} (model {m['lut_per_pe']}), fixed "
              f"{f['lut']['fixed']:.0f} (model {m['lut_fixed']:.0f}); FF/lane "
              f"{f['ff']['per_lane']} (model {m['ff_per_lane']}), FF/PE {f['ff']['per_pe']} "
              f"(model {m['ff_per_pe']}), fixed {f['ff']['fixed']:.0f} "
              f"(model {m['ff_fixed']:.0f})")
    print(f"wrote {args.out} in {result['total_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
