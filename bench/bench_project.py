"""Benchmark: time of ``project()`` for one plan over all 211 layers of the 2B-4T profile.

``dse project`` prices one plan; the search and the sensitivity analysis price many, so a
projection must stay cheap. Bar: median < 5 ms in-process (start-up and file loading excluded).
The plan is priced in the context ``dse project`` builds (``CostContext.resolve``: the board
file's calibration, none for zcu104, and the shipped fabric evidence) at the command's default
scenario (decode, 256 tokens of context, fp16 KV); its ms per token is recorded and checked
against ``dse project --json`` (with the embedded profile), so the time is that of the
command's own answer.

Records to bench/results/project.json (median ms, repeats, machine, the plan's ms per token)
and prints it.

Run: python bench/bench_project.py [--profile PROFILE.json] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from dse.model.board import load_board
from dse.model.plan_file import load_plan
from dse.model.project import CostContext, Scenario, project
from dse.model.workload import Workload, workload_from_profile

ROOT = Path(__file__).resolve().parents[1]
PLAN = ROOT / "examples" / "plans" / "zcu104-ffn.yaml"
BOARD = ROOT / "boards" / "zcu104.yaml"
BAR_MS = 5.0


def _workload(profile: Path | None) -> tuple[Workload, str]:
    if profile is None:
        from dse.profile.default import default_profile

        return workload_from_profile(default_profile()), "embedded default (BitNet-2B-4T)"
    from dse.profile.format import load_profile

    return workload_from_profile(load_profile(profile)), str(profile)


def time_project(wl: Workload, repeats: int) -> tuple[list[float], float]:
    """Seconds of each of ``repeats`` projections of the example plan (after one warm-up), and
    its ms per token, in the context ``dse project`` prices it in."""
    ctx = CostContext.resolve(load_board(BOARD))
    plan = load_plan(PLAN, wl)
    scenario = Scenario()
    plan_ms = project(wl, plan, ctx, scenario).plan_ms
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        project(wl, plan, ctx, scenario)
        times.append(time.perf_counter() - t)
    return times, plan_ms


def command_plan_ms() -> float:
    """``dse project --board zcu104.yaml --plan zcu104-ffn.yaml``'s ms per token (--json)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "p.json"
        subprocess.run([sys.executable, "-m", "dse.cli", "project", "--board", str(BOARD),
                        "--plan", str(PLAN), "--json", str(out)], cwd=tmp, check=True,
                       capture_output=True)
        return json.loads(out.read_text(encoding="utf-8"))["end_to_end"]["plan_ms"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", type=Path, default=None,
                    help="profile JSON (default: the embedded 2B-4T profile)")
    ap.add_argument("--repeats", type=int, default=1000)
    args = ap.parse_args()
    wl, source = _workload(args.profile)
    times, plan_ms = time_project(wl, args.repeats)
    same = args.profile is not None or round(plan_ms, 6) == round(command_plan_ms(), 6)
    if not same:
        raise SystemExit("project() here and `dse project` disagree on the plan's ms per token")
    median_ms = statistics.median(times) * 1e3
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpus": os.cpu_count(), "python": platform.python_version()},
        "what": "project() of one plan, in-process, decode scenario (256 tokens of context, "
                "fp16 KV), in dse project's context (CostContext.resolve: no calibration, "
                "the shipped fabric evidence)",
        "profile": source,
        "layers": len(wl.layers),
        "plan": str(PLAN.relative_to(ROOT)),
        "board": str(BOARD.relative_to(ROOT)),
        "plan_ms_per_token": round(plan_ms, 4),
        "plan_ms_is_the_commands": None if args.profile is not None else same,
        "repeats": args.repeats,
        "median_ms": round(median_ms, 4),
        "min_ms": round(min(times) * 1e3, 4),
        "p90_ms": round(statistics.quantiles(times, n=10)[-1] * 1e3, 4),
        "bar_ms": BAR_MS,
        "meets_bar": median_ms < BAR_MS,
    }
    out = ROOT / "bench" / "results" / "project.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
