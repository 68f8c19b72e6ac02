"""``dse compare A.json B.json ...``: plans from explore or project JSON, side by side."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from dse.errors import DseError, located
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


def plans_of(path: Path, data: dict[str, Any], every: bool) -> list[tuple[str, str, dict]]:
    """(column title, field path of the projection, projection dict) for each plan."""
    if data["format"] == "dse-projection":
        return [(f"{path.name}: {_get(path, data, '', 'plan.name', str)}", "", data)]
    plans = _get(path, data, "", "plans", list)
    chosen = list(enumerate(plans if every else plans[:1]))
    out = []
    for where, rp in [*[(f"plans.{i}", rp) for i, rp in chosen],
                      ("naive", _get(path, data, "", "naive", dict))]:
        projs = _get(path, rp, where, "projections", list)
        if not projs:
            raise located(path, f"{where}.projections", "a non-empty list")
        j = next((j for j, p in enumerate(projs) if isinstance(p, dict) and isinstance(
            p.get("scenario"), dict) and p["scenario"].get("phase") == "decode"), 0)
        proj = _get(path, rp, where, f"projections.{j}", dict)
        out.append((f"{path.name}: {_get(path, rp, where, 'label', str)}",
                    f"{where}.projections.{j}", proj))
    return out


def _has(obj: Any, dotted: str) -> bool:
    """Whether ``dotted`` is there to read: False when a key is missing (an older file), True
    when something of the wrong type stands in the way (``_get`` then says what it expected)."""
    for part in dotted.split("."):
        if not isinstance(obj, dict):
            return True
        if part not in obj:
            return False
        obj = obj[part]
    return True


def _get(path: Path, obj: Any, where: str, dotted: str, kind: type | tuple) -> Any:
    """The value at ``dotted`` under ``obj``, of type ``kind``, or the one-line error
    ``FILE: where.dotted: expected ...``."""
    field = f"{where}.{dotted}".lstrip(".")
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if isinstance(obj, list) and part.isdigit() and int(part) < len(obj):
            obj = obj[int(part)]
        elif isinstance(obj, dict) and part in obj:
            obj = obj[part]
        elif i and not isinstance(obj, (dict, list)):  # the field above is not a mapping
            raise located(path, f"{where}.{'.'.join(parts[:i])}".lstrip("."), "a mapping", obj)
        else:
            raise located(path, field, "a value (field is missing)")
    if kind is float:
        if obj is not None and (isinstance(obj, bool) or not isinstance(obj, (int, float))
                                or not math.isfinite(obj) or obj < 0):
            raise located(path, field, "a finite number >= 0 or null", obj)
    elif not isinstance(obj, kind) or (isinstance(obj, bool) and kind is not bool):
        names = {str: "a string", list: "a list", dict: "a mapping", bool: "true or false",
                 int: "an integer"}
        raise located(path, field, names.get(kind, "a value of the right type"), obj)
    return obj


def _fmt(v: float | None, suffix: str = "", scale: float = 1.0) -> str:
    return "—" if v is None else f"{v * scale:,.2f}{suffix}"


def _ms(v: float | None) -> str:
    from dse.report.numbers import ms

    return ms(v)


def _times(v: float | None) -> str:
    from dse.report.numbers import times

    return times(v)


#: Fields older files may lack (a file written before plans had an identity, or bands): shown
#: as "—".
OPTIONAL = {"plan.id", "band.ms", "band.tokens_per_s", "band.j_per_token",
            "band.never_measured"}


class _Band:
    """A figure's 90% band (``{value, lo, hi}``), checked when read: ``lo <= value <= hi``,
    each a finite number."""

    def __init__(self, fmt) -> None:
        self.fmt = fmt


def _band_cell(path: Path, proj: dict, where: str, field: str, fmt) -> str:
    iv = _get(path, proj, where, field, (dict, type(None)))
    if iv is None:
        return "—"
    nums = [_get(path, iv, f"{where}.{field}".lstrip("."), k, float) for k in ("value", "lo",
                                                                            "hi")]
    if None in nums or not nums[1] <= nums[0] <= nums[2]:
        raise located(path, f"{where}.{field}".lstrip("."), "a band {value, lo, hi} with lo <= "
                      "value <= hi", iv)
    from dse.report.numbers import band

    return band(nums[0], nums[1], nums[2], fmt)


#: (row title, field of a projection, type, how to show it).
ROWS: tuple[tuple[str, str, type | tuple, Any], ...] = (
    ("board", "board", str, str),
    ("plan id", "plan.id", str, str),
    ("view", "scenario.view", str, str),
    ("phase", "scenario.phase", str, str),
    ("M tokens", "scenario.m_tokens", int, str),
    ("context tokens", "scenario.context_tokens", int, str),
    ("sequences", "scenario.sequences", int, str),
    ("KV format", "scenario.kv_dtype", str, str),
    ("calibration", "calibration", str, str),
    ("engine design", "plan.design_label", str, str),
    ("packing", "plan.design.packing", str, str),
    ("layers offloaded", "plan.offload", list, len),
    ("layers resident", "plan.resident", list, len),
    ("PS runtime", "plan.runtime", str, str),
    ("plan ms", "end_to_end.plan_ms", float, _ms),
    ("tok/s", "end_to_end.tokens_per_s", float, _fmt),
    ("plan ms (90% band)", "band.ms", _Band(_ms), None),
    ("tok/s (90% band)", "band.tokens_per_s", _Band(lambda v: _fmt(v)), None),
    ("J/token (90% band)", "band.j_per_token", _Band(lambda v: f"{v:.3f}"), None),
    ("never measured", "band.never_measured", list,
     lambda v: "; ".join(map(str, v)) or "nothing"),
    ("best CPU runtime that fits", "end_to_end.baseline_runtime", (str, type(None)),
     lambda v: v or "none"),
    ("baseline ms", "end_to_end.baseline_ms", float, _ms),
    ("speedup", "end_to_end.speedup", float, _times),
    ("bound", "end_to_end.bound", str, str),
    ("DDR floor ms", "end_to_end.ddr_floor_ms", float, _fmt),
    ("LUT %", "utilization_fraction.lut", float, lambda v: _fmt(v, scale=100)),
    ("memory MiB", "memory.memory_bytes", float, lambda v: _fmt(v, scale=2**-20)),
    ("feasible", "feasible", bool, lambda v: "yes" if v else "NO"),
)


def run(args: argparse.Namespace) -> int:
    columns: list[tuple[str, list[str]]] = []
    for f in args.files:
        data = _load(f)
        for title, where, proj in plans_of(f, data, args.all):
            cells = ["—" if field in OPTIONAL and not _has(proj, field)
                     else _band_cell(f, proj, where, field, kind.fmt)
                     if isinstance(kind, _Band)
                     else show(_get(f, proj, where, field, kind))
                     for _, field, kind, show in ROWS]
            if not _get(f, proj, where, "feasible", bool):
                why = _get(f, proj, where, "infeasible", list)
                cells[-1] = "NO: " + "; ".join(str(r) for r in why)
            columns.append((title, [str(c) for c in cells]))
    rows = [[title, *[cells[i] for _, cells in columns]] for i, (title, *_) in enumerate(ROWS)]
    print(text_table(["", *[t for t, _ in columns]], rows))
    loaded = [(f, _load(f)) for f in args.files]
    summaries = boards_of([data for _, data in loaded])
    if len(summaries) > 1:
        from dse.report.explore_md import boards_table

        print("\nboards compared (best plan of each):")
        print(boards_table(summaries, "en"))
    unread = [str(f) for f, data in loaded if data.get("format") == "dse-explore"
              and not _usable(data.get("summary"))]
    if unread:
        print(f"not in the boards table: {', '.join(unread)} (no summary this dse version "
              f"reads: written by another version?)")
    return 0


def _usable(sm: object) -> bool:
    from dse.report.explore_md import usable_summary

    return usable_summary(sm)


def boards_of(files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The best-plan summary of each board among explore JSON files, in file order (the same
    rows as a report's "Boards compared" table); a summary this version cannot read (another
    version's) is left out."""
    seen: dict[str, dict[str, Any]] = {}
    for data in files:
        sm = data.get("summary") if data.get("format") == "dse-explore" else None
        if _usable(sm) and sm["board"] not in seen:
            seen[sm["board"]] = sm
    return list(seen.values())
