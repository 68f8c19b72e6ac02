"""Benchmark: the long robustness run, every class of bad input over every command.

Runs N random cases of each class of ``tests/fuzzkit.py`` (mutated boards, cost overrides,
profiles, plans, calibration files, engine templates, measurement logs, model configs,
imported reports, option values, output paths, deep nesting, keys set twice, absurd values,
reports built to be mangled, a disk that fills, other environments and closed streams,
signals, checkpoint headers, another version's JSON), each in a fresh folder (a quarter as
many of the slow classes), and counts per class the cases tried, accepted (exit 0), rejected
(exit 2), stopped by a signal (130, 143), and the five failures: tracebacks, altered inputs,
orphan outputs, non-finite (or negative) numbers in a successful run's output, and bad input
built to be refused but accepted. Bar: zero of all five.

Records to bench/results/fuzz.json (counts, the first few examples of each failure, the
commit) and prints a table; ``--out`` names another file (for a run on an older commit).

``--compare OLD.json`` also counts, per class, the cases OLD accepted (exit 0) that this run
rejects: absurd inputs the older code let through. The same seed draws the same cases when
both runs start from the same valid files: set ``DSE_FUZZ_FILES`` to the older checkout.

Run: python bench/bench_fuzz.py [--per-class N] [--seed S] [--out FILE] [--compare OLD]
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
sys.path.insert(0, str(ROOT / "tests"))

import fuzzkit  # noqa: E402

FAILURES = ("traceback", "altered_input", "orphan_output", "non_finite", "accepted_bad")
#: Classes whose cases take a second or more (a whole search, a fit, a subprocess): a quarter
#: as many cases.
SLOW = ("explore", "log", "report", "disk", *fuzzkit.SUBPROCESS_CLASSES)
#: One character per case: the exit code's, or T for a traceback.
_CODE_CHAR = {0: "0", 2: "2", 130: "i", 143: "t"}


def _commit(repo: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run(per_class: int, seed: int) -> dict:
    counts: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="dse-fuzz-") as tmp:
        n = 0
        for name, make in fuzzkit.CLASSES.items():
            c = {"tried": 0, "accepted": 0, "rejected": 0, "stopped": 0,
                 **{f: 0 for f in FAILURES}, "examples": [], "codes": ""}
            t0 = time.perf_counter()
            # explore runs the whole search per case (seconds): a quarter as many cases
            for i in range(per_class // 4 if name in SLOW else per_class):
                # one generator per case: case i of a class is the same whatever the other
                # cases drew (and whichever version of dse runs them)
                case = make(random.Random(f"{seed}-{name}-{i}"))
                n += 1
                out = fuzzkit.try_case(case, Path(tmp) / f"c{n}")
                c["tried"] += 1
                # one character per case, in order (same seed, same cases): 0 accepted,
                # i and t stopped by SIGINT and SIGTERM,
                # 2 rejected, T traceback; lets two runs be compared case by case.
                c["codes"] += "T" if out.traceback else _CODE_CHAR.get(out.code, "?")
                c["accepted" if out.code == 0 else "rejected"] += out.code in (0, 2)
                c["stopped"] += out.code in (130, 143)
                for kind, detail in out.problems.items():
                    c[kind] += 1
                    if len(c["examples"]) < 6:
                        c["examples"].append({"case": case.what, "argv": case.argv,
                                              "failure": kind, "detail": detail[:3]})
            c["seconds"] = round(time.perf_counter() - t0, 1)
            counts[name] = c
            print(f"{name:15s} tried {c['tried']:4d} accepted {c['accepted']:4d} rejected "
                  f"{c['rejected']:4d} | " + " ".join(f"{f} {c[f]}" for f in FAILURES),
                  flush=True)
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-class", type=int, default=120)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "fuzz.json")
    ap.add_argument("--compare", type=Path, default=None,
                    help="an earlier run's JSON (same seed and per-class) to compare with")
    ap.add_argument("--from", dest="done", type=Path, default=None,
                    help="with --compare: take this run's results from a finished run's JSON "
                    "instead of running again (two runs can then go in parallel)")
    args = ap.parse_args()
    if args.done is not None:
        doc = json.loads(args.done.read_text(encoding="utf-8"))
        if args.compare is not None:
            compare_runs(doc, json.loads(args.compare.read_text(encoding="utf-8")),
                         args.compare.name)
        return _write(doc, args.out)
    import dse

    t0 = time.perf_counter()
    counts = run(args.per_class, args.seed)
    totals = {k: sum(c[k] for c in counts.values())
              for k in ("tried", "accepted", "rejected", "stopped", *FAILURES)}
    doc = {
        "bench": "fuzz",
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": _commit(Path(dse.__file__).resolve().parents[1]),
        "host": {"cpu": platform.processor() or platform.machine(),
                 "python": platform.python_version()},
        "method": __doc__.split("\n\n")[1].replace("\n", " "),
        "files_from": str(fuzzkit.ROOT),
        "per_class": args.per_class,
        "seed": args.seed,
        "seconds": round(time.perf_counter() - t0, 1),
        "totals": totals,
        "bar_met": all(totals[f] == 0 for f in FAILURES),
        "classes": counts,
    }
    if args.compare is not None:
        compare_runs(doc, json.loads(args.compare.read_text(encoding="utf-8")),
                     args.compare.name)
    return _write(doc, args.out)


def compare_runs(doc: dict, old: dict, old_name: str) -> None:
    """Add to ``doc`` the per-class counts of cases ``old`` accepted and ``doc`` rejects (and
    the reverse), case by case."""
    doc["compared_with"] = {"file": old_name, "commit": old["commit"]}
    for name, c in doc["classes"].items():
        was = old["classes"].get(name, {}).get("codes", "")
        c["accepted_before_rejected_now"] = sum(
            1 for a, b in zip(was, c["codes"], strict=False) if a == "0" and b == "2")
        c["rejected_before_accepted_now"] = sum(
            1 for a, b in zip(was, c["codes"], strict=False) if a == "2" and b == "0")
    for key in ("accepted_before_rejected_now", "rejected_before_accepted_now"):
        doc["totals"][key] = sum(c[key] for c in doc["classes"].values())


def _write(doc: dict, out: Path) -> int:
    out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print("totals: " + ", ".join(f"{k} {v}" for k, v in doc["totals"].items()))
    print(f"-> {out}")
    return 0 if doc["bar_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
