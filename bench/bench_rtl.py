"""Benchmark: the overlay's RTL on the 2B-4T decode shapes (cycle accuracy, lane utilization),
the 2-engine overlay's per-engine cycles, two attention units' per-unit cycles, and the RTL
test suite's wall time.

For the i2 8x16 and base3 8x20 builds, runs every 2B-4T Linear shape at M=1 in Verilator with
no backpressure and records busy cycles against ``engine_cycles`` (the search's formula) and
against the ideal N*K/lanes. For the 2-engine build (two base3 4x20 engines, 128-bit streams,
rows split by ``row_split`` as the driver splits them) it runs the same shapes and a prefill
(M=7, V=4) and records every engine's busy cycles against ``engine_cycles`` of its rows.
For two kv_attn units side by side (2B-4T's G=4, D=128, HMAX=3 each, TMAX=64; generated
top ``kvattn_multi``) it runs attention calls over 5 and 6 kv heads split by
``instance_split`` (3 + 2, 3 + 3), both units at once, and records every unit's busy cycles
against ``kv_attn_cycles`` of its heads, without backpressure (busy = formula) and with random
backpressure on both streams (busy = formula + stall_in + stall_out).
Then it times the whole RTL suite (``pytest -m rtl tests/``: every test marked rtl) twice:
with a fresh build directory (every Verilator model built) and again with the builds cached.
All to bench/results/rtl.json. Bars: |busy - model| <= max(15, 1%) per engine; attention
units exact; utilization >= 95%; RTL suite < 300 s.

Rounds (``--rounds``): the published KV260 engine (base3 PE=1 x SIMD=80, 128-bit stream, VMAX
4), built to answer 1 and 2 vectors a clock, runs one engine's share (a quarter of the rows) of
each of 2B-4T's four call shapes for a round of 1..4 vectors; every call's busy cycles against
``engine_cycles`` (exact), and the token's weight pass from the RTL's own cycles: per call the
larger of its cycles at 250 MHz and the model's DDR and link terms (``call_cost``), summed
over the token's 120 calls, against the published design's measured weight pass at batch 1-4
(32.72 / 33.42 / 52.04 / 52.02 ms, dse issue #23).

Run: python bench/bench_rtl.py            (everything)
     python bench/bench_rtl.py --suite     (only re-time the RTL suite, into the same file)
     python bench/bench_rtl.py --attn      (only the two attention units, into the same file)
     python bench/bench_rtl.py --rounds    (only the rounds of the published engine)
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from dse.model.engine import engine_cycles, row_split
from dse.model.kv_attn import kv_attn_cycles
from dse.model.split import instance_split

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "overlays" / "sim"))
import sim  # noqa: E402

SHAPES = {"q_proj": (2560, 2560), "k_proj": (640, 2560), "v_proj": (640, 2560),
          "o_proj": (2560, 2560), "gate_proj": (6912, 2560), "up_proj": (6912, 2560),
          "down_proj": (2560, 6912)}
BUILDS = (sim.Build(8, 16, "i2"), sim.Build(8, 20, "base3"))
MULTI = sim.Build(4, 20, "base3", engines=2, vpc=2)
#: The published KV260 engine, answering 1 and 2 vectors a clock (one engine of its four).
ROUND_BUILDS = (sim.Build(1, 80, "base3", vmax=4, kmax=6912, vpc=1),
                sim.Build(1, 80, "base3", vmax=4, kmax=6912, vpc=2))
#: The published design's weight pass at a round of 1-4 (dse issue #23), ms.
PUBLISHED_ROUNDS_MS = {1: 32.72, 2: 33.42, 3: 52.04, 4: 52.02}
ATTN_MULTI = sim.AttnBuild(g=4, d=128, hmax=3, tmax=64, units=2)
SUITE_COMMAND = ["-m", "rtl", "tests/"]


def two_engines() -> list[dict]:
    """Per-engine busy cycles of the 2-engine build against engine_cycles of its rows."""
    cases = [{"name": role, "n": n, "k": k, "m": 1, "v": 1, "seed": i + 1,
              "backpressure": 0.0} for i, (role, (n, k)) in enumerate(SHAPES.items())]
    cases.append({"name": "prefill_7v4", "n": 2560, "k": 2560, "m": 7, "v": 4, "seed": 50,
                  "backpressure": 0.0})
    t = time.perf_counter()
    rec = sim.run(MULTI, cases, tag="bench")
    print(f"{MULTI.name}: {len(cases)} shapes in {time.perf_counter() - t:.1f} s")
    cfg = rec["config"]
    out = []
    for r in rec["cases"]:
        split = row_split(r["n"], cfg["pe"], MULTI.engines)
        assert [e["rows"] for e in r["engines"]] == [b - a for a, b in split]
        for i, e in enumerate(r["engines"]):
            model = engine_cycles(e["rows"], r["k"], r["m"], cfg["pe"], cfg["simd"], r["v"],
                                  cfg["stream_bits"] // 8, cfg["latency"], cfg["vpc"])
            out.append({"build": MULTI.name, "layer": r["name"], "engine": i,
                        "rows": e["rows"], "k": r["k"], "m": r["m"], "bit_exact": r["ok"],
                        "busy_cycles": e["busy"], "model_cycles": model,
                        "error_cycles": e["busy"] - model,
                        "error_fraction": (e["busy"] - model) / model})
    return out


def rounds() -> dict:
    """The published engine's rounds of 1..4 vectors in RTL, and the token's weight pass
    they give (see the module docstring)."""
    from dse.model.board import load_board
    from dse.model.cost import call_cost, layer_weight_bytes
    from dse.model.plan_file import load_plan
    from dse.model.project import CostContext, group_calls
    from dse.model.workload import workload_from_profile
    from dse.profile.default import default_profile

    wl = workload_from_profile(default_profile())
    ctx = CostContext.for_board(load_board(ROOT / "boards" / "kv260.yaml"))
    plan = load_plan(ROOT / "examples" / "plans" / "bitnet-kv260.yaml", wl)
    groups = group_calls([la for la in wl.layers if la.ternary], fuse=True)
    shapes = {}
    for g in groups.values():
        n, k = sum(la.n for la in g), g[0].k
        wbytes = sum(layer_weight_bytes(la, plan.design) for la in g)
        shapes.setdefault((n, k, wbytes), 0)
        shapes[(n, k, wbytes)] += 1
    out = {"engine": "base3 PE=1 SIMD=80 VMAX=4 (one of 4 engines)", "calls": []}
    for build in ROUND_BUILDS:
        cases = [{"name": f"{n}x{k}_b{b}", "n": math.ceil(n / 4), "k": k, "m": b, "v": 4,
                  "seed": n + k + b, "backpressure": 0.0}
                 for (n, k, _) in shapes for b in (1, 2, 3, 4)]
        t = time.perf_counter()
        rec = sim.run(build, cases, tag="bench")
        print(f"{build.name}: {len(cases)} calls in {time.perf_counter() - t:.1f} s")
        cfg = rec["config"]
        busy = {}
        for r in rec["cases"]:
            model = engine_cycles(r["n"], r["k"], r["m"], cfg["pe"], cfg["simd"], r["v"],
                                  cfg["stream_bits"] // 8, cfg["latency"], cfg["vpc"])
            busy[(r["name"].split("_")[0], r["m"])] = r["busy"]
            out["calls"].append({"vpc": cfg["vpc"], "call": r["name"], "rows": r["n"],
                                 "k": r["k"], "m": r["m"], "bit_exact": r["ok"],
                                 "busy_cycles": r["busy"], "model_cycles": model,
                                 "error_cycles": r["busy"] - model})
        passes = {}
        for b in (1, 2, 3, 4):
            total = 0.0
            for (n, k, wbytes), count in shapes.items():
                design = replace(plan.design, vectors_per_clock=cfg["vpc"])
                cc = call_cost(design, ctx.board, ctx.constants, n=n, k=k, m=b,
                               weight_bytes=wbytes)
                rtl_s = busy[(f"{n}x{k}", b)] / (plan.design.clock_mhz * 1e6)
                total += count * (max(rtl_s, cc.ddr_s, cc.link_s) + cc.burst_s)
            ms = total * 1e3
            passes[b] = {"rtl_weight_pass_ms": round(ms, 3),
                         "published_ms": PUBLISHED_ROUNDS_MS[b],
                         "error": round(ms / PUBLISHED_ROUNDS_MS[b] - 1, 4)}
        out[f"vpc{cfg['vpc']}"] = passes
    out["all_exact"] = all(c["error_cycles"] == 0 for c in out["calls"])
    out["all_bit_exact"] = all(c["bit_exact"] for c in out["calls"])
    return out


def two_attention_units() -> dict:
    """Per-unit busy cycles of two kv_attn units against kv_attn_cycles of their heads."""
    cases = [{"name": f"m{mode}_t{t}_h{h}{'_bp' if bp else ''}", "mode": mode, "t": t,
              "h": h, "seed": 100 * mode + t + h + (7 if bp else 0), "backpressure": bp}
             for mode in (0, 1) for t, h in ((64, 5), (64, 6), (17, 5)) for bp in (0.0, 0.3)]
    t0 = time.perf_counter()
    rec = sim.run(ATTN_MULTI, cases, tag="bench")
    print(f"{ATTN_MULTI.name}: {len(cases)} calls in {time.perf_counter() - t0:.1f} s")
    cfg = rec["config"]
    rows = []
    for r in rec["cases"]:
        split = instance_split(r["h"], ATTN_MULTI.units)
        assert [tuple(u["heads"]) for u in r["units"]] == list(split), r["units"]
        for i, u in enumerate(r["units"]):
            model = kv_attn_cycles(r["mode"], r["t"], u["h"], cfg["g"], cfg["d"],
                                   cfg["latency"])
            rows.append({"call": r["name"], "mode": r["mode"], "t": r["t"], "h": r["h"],
                         "unit": i, "heads": u["heads"], "bit_exact": r["ok"]
                         and u["mismatches"] == 0, "busy_cycles": u["busy"],
                         "stall_in_cycles": u["stall_in"], "stall_out_cycles": u["stall_out"],
                         "model_cycles": model,
                         "error_cycles": u["busy"] - u["stall_in"] - u["stall_out"] - model,
                         "overlap": max(x["start_ns"] for x in r["units"])
                         < min(x["done_ns"] for x in r["units"])})
    return {"build": ATTN_MULTI.name, "config": cfg,
            "all_bit_exact": all(r["bit_exact"] for r in rows),
            "all_units_overlapped": all(r["overlap"] for r in rows),
            "worst_abs_error_cycles": max(abs(r["error_cycles"]) for r in rows),
            "units": rows}


def rtl_suite_s(build_dir: str | None) -> float:
    """Wall time of ``pytest -m rtl tests/`` (the whole RTL suite) with the given build
    directory."""
    env = dict(os.environ)
    if build_dir:
        env["TGEMV_BUILD_DIR"] = build_dir
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    *SUITE_COMMAND], cwd=ROOT, env=env, check=True, capture_output=True)
    return round(time.perf_counter() - t, 1)


def suite_timing() -> dict:
    """The RTL suite timed with cold builds, then again with them cached."""
    with tempfile.TemporaryDirectory(prefix="tgemv-cold-") as cold:
        cold_s = rtl_suite_s(cold)
        warm_s = rtl_suite_s(cold)
    return {"cold_builds": cold_s, "cached_builds": warm_s,
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "load_average_after": os.getloadavg()[0], "cpus": os.cpu_count(),
            "command": "pytest " + " ".join(SUITE_COMMAND)}


def update(path: Path, key: str, value: dict) -> None:
    """Replace one section of the existing result file."""
    result = json.loads(path.read_text(encoding="utf-8"))
    result[key] = value
    path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in value.items() if k not in ("units", "calls")},
                     indent=1))


def main() -> None:
    path = ROOT / "bench" / "results" / "rtl.json"
    if "--suite" in sys.argv[1:]:
        update(path, "rtl_suite_s", suite_timing())
        return
    if "--attn" in sys.argv[1:]:
        update(path, "two_attention_units", two_attention_units())
        return
    if "--rounds" in sys.argv[1:]:
        update(path, "rounds", rounds())
        return
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
    multi = two_engines()
    attn = two_attention_units()
    rnd = rounds()
    wall = round(time.perf_counter() - t_all, 1)
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count()},
        "wall_s": wall,
        "two_engines": {
            "build": MULTI.name,
            "worst_abs_error_cycles": max(abs(r["error_cycles"]) for r in multi),
            "worst_abs_error_fraction": max(abs(r["error_fraction"]) for r in multi),
            "all_bit_exact": all(r["bit_exact"] for r in multi),
            "engines": multi,
        },
        "two_attention_units": attn,
        "rounds": rnd,
        "rtl_suite_s": suite_timing(),
        "worst_abs_error_cycles": max(abs(r["error_cycles"]) for r in out),
        "min_utilization": min(r["utilization"] for r in out),
        "all_bit_exact": all(r["bit_exact"] for r in out),
        "shapes": out,
        "bars": {"error": "max(15 cycles, 1%) per engine; 0 per attention unit and per round",
                 "utilization": 0.95, "rtl_suite_s": 300},
    }
    path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items()
                      if k not in ("shapes", "two_engines", "two_attention_units")}, indent=1))
    print(json.dumps({k: v for k, v in result["two_engines"].items() if k != "engines"}))


if __name__ == "__main__":
    main()
