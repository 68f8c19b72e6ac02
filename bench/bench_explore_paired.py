"""Benchmark: ``dse explore`` before and after a change, side by side in one run.

Why paired: this machine's speed drifts with what else runs on it, so two timings taken at
different times compare the load, not the code. Here a checkout of ``--before`` (default: the
commit before the PL-unit protocol, issue 22) and the working tree run alternately, round
after round, and each figure is the median of its rounds.

Per shipped board: the search in-process (``explore`` on the embedded 2B-4T profile with the
objective ``dse explore`` uses by default, after a warm-up), and the whole command
``python -m dse.cli explore --board B --no-report`` (wall, start-up included). Records to
bench/results/explore_paired.json with both commits and the after/before ratios.

``--no-curves`` times the search as ``explore --no-report`` runs it (no context, sequence or
prompt curves: what issue 28's bar measures); ``--repeats K`` takes each round's search figure
as the best of K runs; ``--cached-bytecode`` runs both trees with their bytecode cached (each
its own PYTHONPYCACHEPREFIX, PYTHONDONTWRITEBYTECODE unset; the first round fills it);
``--out`` names the record (default explore_paired.json).

Run: python bench/bench_explore_paired.py [--before REV] [--rounds N] [--no-curves]
     [--repeats K] [--cached-bytecode] [--out NAME.json]
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

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "78d6860"  # main before issue 22's PL-unit protocol

#: Run inside a tree (PYTHONPATH=tree): the in-process search per board, as JSON. It speaks
#: both APIs: before issue 22 the command passed the template's attention unit itself.
CHILD = r"""
import json, sys, time
from dse.model.board import load_board
from dse.model.project import CostContext
from dse.model.template import shipped_template
from dse.model.workload import workload_from_profile
from dse.profile.default import default_profile
from dse.search.explore import explore
from dse.search.optimize import SEARCHED_KV_DTYPES, Objective
import dse.search.space as space
wl = workload_from_profile(default_profile())
out = {}
curves, repeats = sys.argv[1] == "1", int(sys.argv[2])
for path in sys.argv[3:]:
    ctx = CostContext.for_board(load_board(path))
    kw = {}
    if hasattr(space, "attention_unit_for"):
        unit, built = space.attention_unit_for(shipped_template(), wl.config)
        kw = {"attention": unit, "attention_buildable": built}
    obj = Objective(kv_dtypes=SEARCHED_KV_DTYPES, **kw)
    sp = space.default_space("decode", False, shipped_template())
    explore(wl, ctx, obj, space=sp, curves=curves)  # warm-up: imports, caches
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        explore(wl, ctx, obj, space=sp, curves=curves)
        best = min(best, time.perf_counter() - t)
    out[path.rsplit("/", 1)[-1]] = best
print(json.dumps(out))
"""


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout.strip()


def _env(tree: Path, pycache: Path | None) -> dict[str, str]:
    """The child's environment: the tree on the path; with ``pycache``, its bytecode cached
    there (the caller's PYTHONDONTWRITEBYTECODE dropped)."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def _search(tree: Path, boards: list[str], curves: bool = True, repeats: int = 1,
            pycache: Path | None = None) -> dict[str, float]:
    res = subprocess.run([sys.executable, "-c", CHILD, "1" if curves else "0", str(repeats),
                          *boards], cwd=tree, env=_env(tree, pycache),
                         check=True, capture_output=True, text=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def _command(tree: Path, board: str, pycache: Path | None = None) -> float:
    env = _env(tree, pycache)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dse.cli", "explore", "--board", board,
                    "--no-report"], cwd=tree, env=env, check=True, capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default=BEFORE, help="the commit to compare against")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-curves", action="store_true",
                    help="time the search without the plots' curves (explore --no-report)")
    ap.add_argument("--repeats", type=int, default=1,
                    help="each round's search figure: the best of this many runs")
    ap.add_argument("--cached-bytecode", action="store_true",
                    help="both trees with their bytecode cached (a prefix each)")
    ap.add_argument("--out", default="explore_paired.json",
                    help="record name under bench/results/")
    args = ap.parse_args()
    boards = sorted(str(p) for p in (ROOT / "boards").glob("*.yaml"))
    names = [Path(b).name for b in boards]
    before_sha = _git("rev-parse", args.before)
    after_sha = _git("rev-parse", "HEAD") + ("+dirty" if _git("status", "--porcelain") else "")
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "before"
        _git("worktree", "add", "--detach", str(old), before_sha)
        try:
            trees = {"before": old, "after": ROOT}
            caches = {k: (Path(tmp) / f"pyc-{k}" if args.cached_bytecode else None)
                      for k in trees}
            search = {k: {n: [] for n in names} for k in trees}
            command = {k: {n: [] for n in names} for k in trees}
            for r in range(args.rounds):
                order = ("before", "after") if r % 2 == 0 else ("after", "before")
                for key in order:
                    for n, s in _search(trees[key], boards, not args.no_curves,
                                        args.repeats, caches[key]).items():
                        search[key][n].append(s)
                    for b, n in zip(boards, names, strict=True):
                        command[key][n].append(_command(trees[key], b, caches[key]))
                print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
        finally:
            _git("worktree", "remove", "--force", str(old))

    def med(d: dict[str, list[float]]) -> dict[str, float]:
        return {n: round(statistics.median(v), 4) for n, v in d.items()}

    s_before, s_after = med(search["before"]), med(search["after"])
    c_before, c_after = med(command["before"]), med(command["after"])
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count()},
        "before": before_sha, "after": after_sha, "rounds": args.rounds,
        "curves": not args.no_curves, "search_repeats": args.repeats,
        "bytecode": "cached" if args.cached_bytecode else "as the environment sets it",
        "search_s": {"before": s_before, "after": s_after,
                     "ratio": {n: round(s_after[n] / s_before[n], 3) for n in names}},
        "command_wall_s": {"before": c_before, "after": c_after,
                           "ratio": {n: round(c_after[n] / c_before[n], 3) for n in names}},
    }
    out = ROOT / "bench" / "results" / args.out
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
