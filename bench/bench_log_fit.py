"""Benchmark: a 10^4-entry measurement log loads and fits in under 60 s (issue 27's bar).

Writes a log of 10,000 engine calls, every one a different (N, K, M) (N from 16 to 13,824 in
steps of 16, K 2,560 or 6,912, M 1 to 8: no two entries alike, so no prediction is shared), as
a board sweep would measure them, then times ``dse calibrate --from LOG`` run as a user would
(a separate process: load, fit with its held-out and leave-one-out checks, calibration file and
report section written), and, in this process, the load and the fit alone (in the command's
context: the shipped fabric evidence). The values are the cost model's own call times on a
KV260 at known parameters (DDR efficiency 0.7, per-call overhead 50 us) with 2% Gaussian noise:
a synthetic log, so the recovered parameters are a sanity check of the fit, not a validation of
the model.

Records to bench/results/log_fit.json (times, the parameters recovered, the commit).

Run: python bench/bench_log_fit.py [--entries N] [--seed S]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOARD = ROOT / "boards" / "kv260.yaml"
ENGINE = {"pe": 16, "simd": 32, "packing": "i2", "engines": 1, "clock_mhz": 200.0,
          "vectors": 4, "stream_bits": 256, "max_k": 6912}
TRUTH = {"ddr_pl_efficiency": 0.7, "per_call_overhead_us": 50.0}
BAR_S = 60.0


def make_log(entries: int, seed: int) -> dict:
    """A log of ``entries`` distinct engine calls, priced at ``TRUTH`` plus 2% noise."""
    sys.path.insert(0, str(ROOT))
    from dse.model.board import load_board
    from dse.model.calibration import apply_params
    from dse.model.constants import DEFAULT_CONSTANTS
    from dse.model.cost import call_cost
    from dse.model.engine import EngineDesign

    board, c = apply_params(load_board(BOARD), DEFAULT_CONSTANTS, TRUTH)
    design = EngineDesign(**ENGINE)
    rng = random.Random(seed)
    shapes = [(n, k, m) for n in range(16, 13824 + 1, 16) for k in (2560, 6912)
              for m in range(1, 9)]
    if entries > len(shapes):
        raise SystemExit(f"--entries: at most {len(shapes)} distinct calls")
    rng.shuffle(shapes)
    out = []
    for i, (n, k, m) in enumerate(shapes[:entries]):
        wb = design.packing_spec.matrix_bytes(n, k)
        t = call_cost(design, board, c, n=n, k=k, m=m, weight_bytes=wb).time_s
        out.append({"id": f"call{i} {n}x{k} M={m}", "kind": "call", "what": "sweep",
                    "value": round(t * (1 + rng.gauss(0, 0.02)) * 1e3, 6), "unit": "ms",
                    "n": n, "k": k, "m": m, "weight_bytes": wb, "per": "call", "repeats": 3})
    return {"format": "dse-measurement-log", "version": 1,
            "title": f"synthetic sweep of {entries} distinct engine calls", "created": "2026-12-06",
            "source": f"bench/bench_log_fit.py: the model at {TRUTH} + 2% noise",
            "config": {"board": "KV260", "backend": "pynq", "engine": ENGINE,
                       "pl_clock_mhz": 200.0, "ps_clock_mhz": 1333.0},
            "entries": out}


def _commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--entries", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=27)
    args = ap.parse_args()
    from dse.fabric_data import load_fabric
    from dse.model.board import load_board
    from dse.model.fit import fit_log
    from dse.model.measurement_log import load_log
    from dse.model.project import CostContext
    from dse.model.workload import workload_from_profile
    from dse.profile.default import default_profile

    with tempfile.TemporaryDirectory(prefix="dse-bench-log-") as tmp:
        folder = Path(tmp)
        log_path = folder / "log.json"
        log_path.write_text(json.dumps(make_log(args.entries, args.seed)), encoding="utf-8")
        dse = Path(sys.executable).parent / "dse"
        argv = [str(dse)] if dse.exists() else [sys.executable, "-m", "dse.cli"]
        t0 = time.perf_counter()
        run = subprocess.run([*argv, "calibrate", "--from", str(log_path), "--board",
                              str(BOARD), "-o", "cal.yaml", "--report", "r.md"], cwd=folder,
                             capture_output=True, text=True, check=False)
        cli_s = time.perf_counter() - t0
        if run.returncode != 0:
            print(run.stdout + run.stderr)
            return 1
        t0 = time.perf_counter()
        log = load_log(log_path)
        load_s = time.perf_counter() - t0
        # the context ``dse calibrate`` fits in: no calibration, the shipped fabric evidence
        ctx = CostContext.for_board(load_board(BOARD), None, load_fabric())
        wl = workload_from_profile(default_profile())
        t0 = time.perf_counter()
        fit = fit_log(log, wl, ctx.board, ctx.constants)
        fit_s = time.perf_counter() - t0
        report_bytes = (folder / "r.md").stat().st_size
    held = fit.held_out or {}
    doc = {
        "bench": "log_fit",
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": _commit(),
        "host": {"cpu": platform.processor() or platform.machine(),
                 "python": platform.python_version()},
        "method": __doc__.split("\n\n")[1].replace("\n", " "),
        "entries": len(log.entries),
        "distinct_calls": len({(e.get("n"), e.get("k"), e.get("m")) for e in log.entries}),
        "seconds": {"dse_calibrate_from_log": round(cli_s, 2), "load": round(load_s, 2),
                    "fit": round(fit_s, 2)},
        "bar_s": BAR_S,
        "bar_met": cli_s < BAR_S,
        "truth": TRUTH,
        "fitted": {k: {"value": p.value, "stderr": p.stderr} for k, p in fit.params.items()},
        "error_after": fit.summary("after"),
        "held_out": {k: held.get(k) for k in ("max_abs_rel_error", "mean_abs_rel_error")},
        "leave_one_out": {"refits": len(held.get("leave_one_out") or {}),
                          "of": held.get("leave_one_out_of")},
        "report_bytes": report_bytes,
        "stdout_tail": run.stdout.strip().splitlines()[-3:],
    }
    out = ROOT / "bench" / "results" / "log_fit.json"
    out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{doc['entries']} entries: dse calibrate --from {cli_s:.1f} s (load {load_s:.2f} s, "
          f"fit {fit_s:.1f} s); bar {BAR_S:g} s {'met' if doc['bar_met'] else 'NOT met'}")
    print(f"fitted: {doc['fitted']}")
    print(f"-> {out.relative_to(ROOT)}")
    return 0 if doc["bar_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
