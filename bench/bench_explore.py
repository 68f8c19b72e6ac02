"""Benchmark: search time of ``dse explore`` and how it grows with layer count.

Records to bench/results/explore.json:
- the search on the embedded 2B-4T profile for each board (in-process, excluding start-up),
- the whole command ``dse explore --board boards/zcu104.yaml`` (wall, with start-up), without
  and with the report and its plots,
- the search on synthetic BitNet shapes from 8 to 80 decoder blocks (hidden 8192 at 80 blocks:
  a 100B-class model), to show how search time scales with the number of layers,
- the best plan on every board at 256 tokens of context (issue 12's bar), searched here with
  the shipped fabric evidence as the command does, and checked board for board against
  ``dse explore --board B --context-tokens 256 --json`` (plan, units, KV format, tok/s): the
  answers recorded are the command's (the bench stops if they disagree).

Run: python bench/bench_explore.py
"""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from dse.fabric_data import load_fabric
from dse.model.arch import ModelConfig
from dse.model.board import load_board
from dse.model.ops import decoder_ops
from dse.model.project import CostContext
from dse.model.template import shipped_template
from dse.model.workload import HostSpec, Layer, Workload, workload_from_profile
from dse.profile.default import default_profile
from dse.search.explore import explore
from dse.search.optimize import SEARCHED_KV_DTYPES, Objective
from dse.search.space import default_space

ROOT = Path(__file__).resolve().parents[1]


def synthetic(blocks: int, hidden: int, inter: int, kv: int, vocab: int = 128256) -> Workload:
    """A BitNet-shaped workload with host times from a 60 GB/s fp32 roofline."""
    layers = []
    shapes = (("q_proj", hidden, hidden), ("k_proj", kv, hidden), ("v_proj", kv, hidden),
              ("o_proj", hidden, hidden), ("gate_proj", inter, hidden),
              ("up_proj", inter, hidden), ("down_proj", hidden, inter))
    for i in range(blocks):
        for role, n, k in shapes:
            ms = n * k * 4 / 60e9 * 1e3
            layers.append(Layer(f"model.layers.{i}.{role}", role, i, n, k, True, ms, 51, ms * 51))
    ms = vocab * hidden * 4 / 60e9 * 1e3
    layers.append(Layer("lm_head", "lm_head", None, vocab, hidden, False, ms, 51, ms * 51))
    host = HostSpec("synthetic x86-64 host", 1945.6, 62.7, 3800.0, "bench", 8)
    linear = sum(layer.host_call_ms for layer in layers)
    cfg = ModelConfig(f"synthetic-{blocks}", "bitnet", hidden=hidden, intermediate=inter,
                      layers=blocks, heads=hidden // 128, kv_heads=kv // 128, vocab=vocab)
    return Workload(f"synthetic-{blocks}", cfg, 4, tuple(layers), decoder_ops(cfg), (), host,
                    linear * 1.06, None, None, ())


def cli_objective(wl: Workload, context: int | None = None) -> Objective:
    """The objective ``dse explore`` searches by default: KV formats fp16 or int8; the PL
    units (the attention unit in every count the shipped template builds for the model) come
    from the design space's template, as in the command."""
    return Objective(context=context, kv_dtypes=SEARCHED_KV_DTYPES)


def time_search(wl: Workload, board_file: str, repeats: int = 3, buildable: bool = True
                ) -> float:
    """Median search time; ``buildable``: the shipped template's space, as ``dse explore``
    searches it (else every design the model can price, what-ifs included)."""
    ctx = CostContext.for_board(load_board(ROOT / "boards" / board_file), fabric=load_fabric())
    space = default_space("decode", False, shipped_template()) if buildable else None
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        explore(wl, ctx, cli_objective(wl), space=space)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def best_plans(wl: Workload, context: int) -> dict:
    """The best buildable plan ``dse explore`` ranks first on each board at a context."""
    out = {}
    for board_file in sorted(p.name for p in (ROOT / "boards").glob("*.yaml")):
        ctx = CostContext.for_board(load_board(ROOT / "boards" / board_file), fabric=load_fabric())
        r = explore(wl, ctx, cli_objective(wl, context),
                    space=default_space("decode", False, shipped_template()))
        d = r.best.decode
        out[board_file] = {"plan": r.best.plan.design.label(),
                           "units": list(r.best.plan.unit_labels),
                           "kv_dtype": d.scenario.kv_dtype, "feasible": r.best.feasible,
                           "decode_tok_s": round(d.tokens_per_s, 3),
                           "ms_per_token": round(d.plan_ms, 3),
                           "components_ms": {k: round(v, 3) for k, v in d.components.items()},
                           "make": r.best.plan.build_note}
    return out


def command_best(board_file: str, context: int) -> dict:
    """The plan ``dse explore --board B --context-tokens C`` ranks first, from its --json."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "plans.json"
        subprocess.run([sys.executable, "-m", "dse.cli", "explore", "--board",
                        str(ROOT / "boards" / board_file), "--context-tokens", str(context),
                        "--no-report", "--json", str(out)], cwd=tmp, check=True,
                       capture_output=True)
        best = json.loads(out.read_text(encoding="utf-8"))["plans"][0]
    d = best["projections"][0]
    return {"plan": d["plan"]["design_label"], "units": d["plan"]["units"],
            "kv_dtype": d["plan"]["kv_dtype"], "feasible": best["feasible"],
            "decode_tok_s": round(d["end_to_end"]["tokens_per_s"], 3)}


def main() -> int:
    wl = workload_from_profile(default_profile())
    boards = sorted(p.name for p in (ROOT / "boards").glob("*.yaml"))
    per_board = {b: round(time_search(wl, b), 3) for b in boards}
    best_256 = best_plans(wl, 256)
    disagree = {}
    for b, got in best_256.items():
        cmd = command_best(b, 256)
        if {k: got[k] for k in cmd} != cmd:
            disagree[b] = {"bench": {k: got[k] for k in cmd}, "command": cmd}
    if disagree:
        print(f"the in-process search and `dse explore` disagree: {disagree}", file=sys.stderr)
        return 1
    per_board_full = {b: round(time_search(wl, b, 1, buildable=False), 3) for b in boards}
    walls = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dse.cli", "explore", "--board",
                        "boards/zcu104.yaml", "--no-report"], cwd=ROOT, check=True,
                       capture_output=True)
        walls.append(time.perf_counter() - t)
    with_report = []
    for _ in range(3):
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "dse.cli", "explore", "--board",
                            str(ROOT / "boards" / "zcu104.yaml"), "--report",
                            str(Path(tmp) / "r.md")], cwd=tmp, check=True, capture_output=True)
            with_report.append(time.perf_counter() - t)
    scaling = []
    for blocks, hidden, inter, kv in ((8, 2560, 6912, 640), (30, 2560, 6912, 640),
                                      (40, 5120, 13824, 1024), (80, 8192, 28672, 1024)):
        syn = synthetic(blocks, hidden, inter, kv)
        scaling.append({"blocks": blocks, "hidden": hidden, "layers": len(syn.layers),
                        "search_s": round(time_search(syn, "zcu104.yaml", 1), 3),
                        "search_s_whole_model_space": round(
                            time_search(syn, "zcu104.yaml", 1, buildable=False), 3)})
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": __import__("os").cpu_count()},
        "search_s_2b4t_by_board": per_board,
        "search_s_2b4t_by_board_whole_model_space": per_board_full,
        "command_wall_s_zcu104_median": round(statistics.median(walls), 3),
        "command_wall_s_zcu104_with_report_and_plots_median": round(
            statistics.median(with_report), 3),
        "scaling_zcu104": scaling,
        # issue 12's bar: the best plan dse explore finds on the KV260 at a 256-token context
        # projects above the measured published design's 16.78 tok/s (uncalibrated model)
        "best_plan_at_256_context_by_board": best_256,
        "best_plans_are_the_commands": not disagree,
        "bars": {"search_s": 2.0, "command_s": 5.0, "search_100b_s": 30.0,
                 "kv260_best_tok_s_at_256_above": 16.78},
    }
    out = ROOT / "bench" / "results" / "explore.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
