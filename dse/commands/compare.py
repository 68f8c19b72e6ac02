"""``dse compare A.json B.json ...``: plans from explore or project JSON, side by side."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dse.errors import DseError
from dse.io import load_json
from dse.report.table import text_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="print plans from explore/project JSON side by side")
    p.add_argument("files", nargs="+", type=Path, help="dse explore --json or dse project --json")
    p.add_argument("--all", action="store_true",
                   help="every plan of an explore file (default: best and naive)")
    p.set_defaults(run=run)


def _load(path: Path) -> dict[str, Any]:
    data = load_json(path, "plans JSON")
    if not isinstance(data, dict) or data.get("format") not in ("dse-explore", "dse-projection"):
        raise DseError(f"{path}: format: expected a dse explore or dse project JSON file")
    return data


def plans_of(path: Path, data: dict[str, Any], every: bool) -> list[tuple[str, dict]]:
    """(column title, projection dict) for each plan the file holds."""
    if data["format"] == "dse-projection":
        return [(f"{path.name}: {data['plan']['name']}", data)]
    chosen = data["plans"] if every else data["plans"][:1]
    out = []
    for rp in [*chosen, data["naive"]]:
        proj = next((p for p in rp["projections"] if p["scenario"]["phase"] == "decode"),
                    rp["projections"][0])
        out.append((f"{path.name}: {rp['label']}", proj))
    return out


def _fmt(v: Any, suffix: str = "") -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.2f}{suffix}"
    return f"{v}{suffix}"


ROWS = (
    ("board", lambda p: p["board"]),
    ("view", lambda p: p["scenario"]["view"]),
    ("phase (M tokens)", lambda p: f"{p['scenario']['phase']} ({p['scenario']['m_tokens']})"),
    ("calibration", lambda p: p["calibration"]),
    ("engine design", lambda p: p["plan"]["design_label"]),
    ("packing", lambda p: p["plan"]["design"]["packing"]),
    ("layers offloaded", lambda p: len(p["plan"]["offload"])),
    ("layers resident", lambda p: len(p["plan"]["resident"])),
    ("baseline ms (PyTorch)", lambda p: _fmt(p["end_to_end"]["baseline_ms"])),
    ("plan ms", lambda p: _fmt(p["end_to_end"]["plan_ms"])),
    ("speedup vs PyTorch", lambda p: _fmt(p["end_to_end"]["speedup_vs_pytorch"], "x")),
    ("baseline ms (bitnet.cpp-class)", lambda p: _fmt(p["end_to_end"]["bitnetcpp_ms"])),
    ("speedup vs bitnet.cpp-class", lambda p: _fmt(p["end_to_end"]["speedup_vs_bitnetcpp"], "x")),
    ("bound", lambda p: p["end_to_end"]["bound"]),
    ("DDR floor ms", lambda p: _fmt(p["end_to_end"]["ddr_floor_ms"])),
    ("LUT %", lambda p: _fmt(100 * (p["utilization_fraction"]["lut"] or 0.0))),
    ("memory MiB", lambda p: _fmt(p["memory"]["memory_bytes"] / 2**20)),
    ("feasible", lambda p: "yes" if p["feasible"] else "NO: " + "; ".join(p["infeasible"])),
)


def run(args: argparse.Namespace) -> int:
    columns: list[tuple[str, dict]] = []
    for f in args.files:
        data = _load(f)
        try:
            columns += plans_of(f, data, args.all)
        except (KeyError, TypeError, IndexError) as exc:
            raise DseError(f"{f}: expected a complete dse plan file (missing {exc})") from None
    rows = []
    for title, get in ROWS:
        try:
            rows.append([title, *[str(get(p)) for _, p in columns]])
        except (KeyError, TypeError) as exc:
            raise DseError(f"{columns[0][0]}: expected field {exc} in every plan") from None
    print(text_table(["", *[t for t, _ in columns]], rows))
    return 0
