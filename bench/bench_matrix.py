"""Which model fits which board: the whole matrix, timed (the bar: under 30 s).

Runs the search ``dse matrix`` runs (``dse.search.matrix.matrix``) for every published preset
(dse/data/models.yaml) on every shipped board (boards/*.yaml), the design space the shipped
overlay builds, from the models' configs alone, REPEATS times in this process after one warm-up
of the imports; records the wall time of each whole matrix (median and all), and the
command's own wall time once (``dse matrix --no-report`` in a fresh interpreter: imports,
board and template loading, search and printing). Also records every cell (fits, plan,
decode tok/s, time to first token, J/token) so a change in the answers shows in the diff,
after checking them cell for cell against the command's own ``--json`` (the search here uses
the shipped fabric evidence, as the command does).

Records bench/results/matrix.json. Run: python bench/bench_matrix.py
"""

from __future__ import annotations

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

from dse.fabric_data import load_fabric
from dse.model.arch import preset_config
from dse.model.board import boards_dir, load_board
from dse.model.template import shipped_template
from dse.profile.presets import PUBLISHED
from dse.search.matrix import matrix

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 3
BAR_S = 30.0


def main() -> int:
    models = tuple(preset_config(n) for n in PUBLISHED)
    boards = tuple(load_board(p) for p in sorted(boards_dir().glob("*.yaml")))
    template = shipped_template()
    fabric = load_fabric()  # the evidence the command searches with (clock and resources)
    times = []
    cells = ()
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        cells = matrix(models, boards, template, fabric=fabric)
        times.append(time.perf_counter() - t0)
    with tempfile.TemporaryDirectory() as d:
        cells_json = Path(d) / "cells.json"
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "dse.cli", "matrix", "--no-report",
                              "--json", str(cells_json)],
                             capture_output=True, text=True, check=False, cwd=ROOT)
        command_s = time.perf_counter() - t0
        if res.returncode:
            print(res.stderr, file=sys.stderr)
            return 1
        command_cells = json.loads(cells_json.read_text(encoding="utf-8"))["cells"]
    # the answers recorded are the command's: same plan and figures, cell for cell
    same = [(c.model, c.board, c.plan, c.decode_tok_s) for c in cells] == [
        (c["model"], c["board"], c["plan"], c["decode_tok_s"]) for c in command_cells]
    if not same:
        print("the in-process matrix and `dse matrix` disagree (fabric? defaults?)",
              file=sys.stderr)
        return 1
    result = {
        "bench": "matrix",
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count()},
        "method": __doc__.split("\n\n")[1].replace("\n", " "),
        "models": list(PUBLISHED),
        "boards": [b.name for b in boards],
        "cells": len(cells),
        "matrix_s_median": round(statistics.median(times), 3),
        "matrix_s_all": [round(t, 3) for t in times],
        "command_wall_s": round(command_s, 3),
        "bar_s": BAR_S,
        "within_bar": max(command_s, *times) < BAR_S,
        "answers_are_the_commands": same,
        "answers": [{"model": c.model, "board": c.board, "feasible": c.feasible,
                     "plan": c.plan, "decode_tok_s": c.decode_tok_s and round(c.decode_tok_s, 3),
                     "ttft_ms": c.ttft_ms and round(c.ttft_ms, 1),
                     "j_per_token": c.j_per_token and round(c.j_per_token, 4),
                     "memory_mib": c.memory_mib and round(c.memory_mib, 1),
                     "cpu_tok_s": c.cpu_tok_s and round(c.cpu_tok_s, 3)} for c in cells],
    }
    out = ROOT / "bench" / "results" / "matrix.json"
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"{len(cells)} cells ({len(models)} models x {len(boards)} boards): search "
          f"{result['matrix_s_median']:.2f} s (median of {REPEATS}), command "
          f"{command_s:.2f} s; bar {BAR_S:g} s -> {'ok' if result['within_bar'] else 'OVER'}")
    print(f"-> {out.relative_to(ROOT)}")
    return 0 if result["within_bar"] else 1


if __name__ == "__main__":
    sys.exit(main())
