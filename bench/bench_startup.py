"""Benchmark: how long people wait for the commands, against the libraries' import floor.

Paired rounds (every command once per round, in a rotated order, so load on this shared
machine hits them alike; each figure the median of its rounds). The floors are a bare Python
importing only what the timed runs import from third-party libraries (``FLOOR_IMPORTS``): numpy,
yaml and pydantic's model machinery for ``dse project``; those and scipy.optimize's MILP (the
residency and DDR-capacity solve) for ``dse explore``. Pydantic 2's top-level package is a lazy
shell: ``import pydantic`` alone loads almost none of what ``BaseModel`` and ``TypeAdapter``
need, so the floor imports those names, as dse does. tqdm is not in it: off a terminal (as
here) no command imports it. Recorded (bench/results/startup.json) with issue 28's bars:

- ``dse calibrate --from`` on the shipped KV260 log under 3 s (``dse --help`` beside it);
- ``dse explore --no-report`` within 1.6x of its floor, ``dse project`` within 1.3x of its;
- the report run (plots and all) at most 1.8 s more than the no-report run.

The bars are judged in the environment as it is. Beside them (``bytecode_cached``), the two
ratio bars measured again in the same rounds with every module's bytecode cached, floors
included, as an installed package has it (pip compiles what it installs): an environment
with ``PYTHONDONTWRITEBYTECODE`` set and no ``__pycache__`` in the checkout (this sandbox's)
compiles dse's 60-odd modules from source on every run while the floors' libraries load pip's
bytecode. The cache is a temporary ``PYTHONPYCACHEPREFIX`` filled by one untimed run of each,
so nothing is written into the checkout. ``anatomy_ms`` splits the two commands' time inside
one process, bytecode cached: the floor's imports, dse's own import (and of it, the creation
of its frozen dataclasses and pydantic models) and the command's work.

Run: python bench/bench_startup.py [--rounds N]
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
DSE = [sys.executable, "-m", "dse.cli"]
#: Measured again with bytecode cached (see the module docstring), under this suffix.
CACHED = ("import_floor_project", "import_floor_explore", "project", "explore_no_report")
CACHED_TAG = "+bytecode"


#: What each floor imports: the third-party names the timed runs import (``tests/test_cli.py``
#: checks a run imports those packages and no other).
FLOOR_IMPORTS = {
    "project": "import numpy, yaml; from pydantic import BaseModel, ConfigDict, Field, "
               "TypeAdapter, ValidationError, with_config",
}
FLOOR_IMPORTS["explore"] = (FLOOR_IMPORTS["project"]
                            + "; from scipy.optimize import Bounds, LinearConstraint, milp")


def commands(tmp: Path) -> dict[str, list[str]]:
    return {
        "import_floor_project": [sys.executable, "-c", FLOOR_IMPORTS["project"]],
        "import_floor_explore": [sys.executable, "-c", FLOOR_IMPORTS["explore"]],
        "help": [*DSE, "--help"],
        "project": [*DSE, "project", "--board", "kv260", "--plan",
                    str(ROOT / "examples" / "plans" / "bitnet-kv260.yaml")],
        "explore_no_report": [*DSE, "explore", "--board", "zcu104", "--no-report"],
        "explore_report": [*DSE, "explore", "--board", "zcu104", "--report",
                           str(tmp / "r.md")],
        "calibrate_from": [*DSE, "calibrate", "--from",
                           str(ROOT / "examples" / "measurements" / "bitnet-kv260.json"),
                           "--board", "kv260", "-o", str(tmp / "cal.yaml"), "--no-report"],
    }


#: Where a command's time goes, measured inside one process (bytecode cached): the floor's
#: imports, then dse's own import split into the classes it creates (frozen dataclasses and
#: pydantic models: CPython 3.11 compiles every generated method separately) and the rest,
#: then the command's work. Printed as JSON on stdout.
_ANATOMY = """
import contextlib, dataclasses, io, json, sys, time
t0 = time.perf_counter()
{floor}
t1 = time.perf_counter()
spent = {{"dataclasses": 0.0, "pydantic_models": 0.0}}
def timed(key, fn):
    def run(*a, **k):
        s = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            spent[key] += time.perf_counter() - s
    return run
dataclasses._process_class = timed("dataclasses", dataclasses._process_class)
from pydantic._internal import _model_construction as mc
mc.ModelMetaclass.__new__ = timed("pydantic_models", mc.ModelMetaclass.__new__)
import dse.cli
import importlib
importlib.import_module("dse.commands." + sys.argv[1])
t2 = time.perf_counter()
classes = dict(spent)
with contextlib.redirect_stdout(io.StringIO()):
    code = dse.cli.main(sys.argv[1:])
t3 = time.perf_counter()
print(json.dumps({{"floor_imports_ms": (t1 - t0) * 1e3, "dse_import_ms": (t2 - t1) * 1e3,
                  "dataclass_creation_ms": classes["dataclasses"] * 1e3,
                  "pydantic_model_creation_ms": classes["pydantic_models"] * 1e3,
                  "work_ms": (t3 - t2) * 1e3, "exit": code}}))
"""


def anatomy(cmds: dict[str, list[str]], env: dict[str, str], rounds: int, cwd: Path
            ) -> dict[str, dict[str, float]]:
    """Median ``_ANATOMY`` figures of ``project`` and ``explore --no-report``."""
    out: dict[str, dict[str, float]] = {}
    for name, floor in (("project", "import_floor_project"),
                        ("explore_no_report", "import_floor_explore")):
        script = _ANATOMY.format(floor=cmds[floor][-1].replace("; ", "\n"))
        argv = cmds[name][len(DSE):]
        runs = [json.loads(subprocess.run([sys.executable, "-c", script, *argv], cwd=cwd,
                                          check=True, capture_output=True, text=True,
                                          env=env).stdout) for _ in range(rounds)]
        out[name] = {k: round(statistics.median(r[k] for r in runs), 1) for k in runs[0]
                     if k != "exit"}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        cmds = commands(tmp)
        cached_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cached_env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
        for name in CACHED:
            cmds[name + CACHED_TAG] = cmds[name]
            subprocess.run(cmds[name], cwd=tmp, check=True, capture_output=True,
                           env=cached_env)  # untimed: fills the bytecode cache
        names = list(cmds)
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                for f in tmp.glob("*"):
                    if f.is_file():
                        f.unlink()
                t = time.perf_counter()
                subprocess.run(cmds[name], cwd=tmp, check=True, capture_output=True,
                               env=cached_env if name.endswith(CACHED_TAG) else None)
                times.setdefault(name, []).append(time.perf_counter() - t)
            print(f"round {r + 1}/{args.rounds}", file=sys.stderr)
        parts = anatomy(cmds, cached_env, args.rounds, tmp)
    med = {k: round(statistics.median(v), 3) for k, v in times.items()
           if not k.endswith(CACHED_TAG)}
    cached = {k.removesuffix(CACHED_TAG): round(statistics.median(v), 3)
              for k, v in times.items() if k.endswith(CACHED_TAG)}
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count()},
        "rounds": args.rounds,
        "median_s": med,
        "ratios": {
            "explore_no_report_over_floor": round(med["explore_no_report"]
                                                  / med["import_floor_explore"], 3),
            "project_over_floor": round(med["project"] / med["import_floor_project"], 3),
            "report_minus_no_report_s": round(med["explore_report"]
                                              - med["explore_no_report"], 3),
            "calibrate_from_s": med["calibrate_from"], "help_s": med["help"],
        },
        "bars": {"explore_no_report_over_floor": 1.6, "project_over_floor": 1.3,
                 "report_minus_no_report_s": 1.8, "calibrate_from_s": 3.0},
        "environment": {"PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE")},
        "bytecode_cached": {
            "median_s": cached,
            "ratios": {
                "explore_no_report_over_floor": round(cached["explore_no_report"]
                                                      / cached["import_floor_explore"], 3),
                "project_over_floor": round(cached["project"] / cached["import_floor_project"],
                                            3),
            },
            "anatomy_ms": parts,
        },
    }
    out = ROOT / "bench" / "results" / "startup.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
