"""``dse matrix``: which model fits which board, every preset on every shipped board.

For each model (the published presets by default) on each board (the shipped library by
default): fits or not and why, the fastest plan the shipped overlay builds there, decode tok/s,
time to first token and J/token, from the models' configs alone (no profile, no torch). Prints
the grid; writes the Markdown table and a PNG (default ``reports/matrix.md`` and
``reports/matrix.png``, or ``--report``/``--plot``; ``--no-report`` writes nothing).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from dse.commands.common import positive_int
from dse.commands.progress import add_quiet_option
from dse.io import Outputs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("matrix", help="which model fits which board (presets x boards)",
                       description="Search every model on every board from the models' "
                       "configs alone: fits or not and why, the best buildable plan, decode "
                       "tok/s, time to first token, J/token; a Markdown table and a PNG.")
    p.add_argument("--models", nargs="+", default=["all"], metavar="MODEL",
                   help="presets, config.json files or checkpoint folders (default: all, every "
                   "published preset)")
    p.add_argument("--boards", nargs="+", default=None, metavar="BOARD",
                   help="board YAML files or names (default: every shipped board)")
    p.add_argument("--prompt-tokens", type=positive_int, default=128,
                   help="prompt length: the prefill of the time to first token")
    p.add_argument("--gen-tokens", type=positive_int, default=128,
                   help="tokens generated: decode is priced at prompt + generated tokens")
    p.add_argument("--report", type=Path, default=None,
                   help="Markdown output (default: reports/matrix.md); a whole document: it "
                   "replaces only an earlier matrix report")
    p.add_argument("--plot", type=Path, default=None,
                   help="PNG output (default: the report's name with .png)")
    p.add_argument("--json", type=Path, default=None, help="also write the cells as JSON")
    p.add_argument("--lang", choices=("zh", "en"), default="en",
                   help="language of the report and the plot (default en; zh writes "
                   "reports/matrix.zh.md by default)")
    p.add_argument("--no-report", action="store_true", help="print only; write no file")
    add_quiet_option(p)
    p.add_argument("--list", action="store_true",
                   help="list the presets and where each config was read, and exit")
    p.set_defaults(run=run)


def _models(names: list[str]):
    """(configs, files read) of ``--models`` (``all``: every published preset)."""
    from dse.commands.model_input import model_config
    from dse.model.arch import preset_config
    from dse.profile.presets import PUBLISHED

    configs, files = [], []
    for name in names:
        if name == "all":
            configs += [preset_config(p) for p in PUBLISHED]
            continue
        cfg, path = model_config(name)
        configs.append(cfg)
        if path is not None:
            files.append(path)
    return _distinct(configs, "--models", lambda c: c.source), files


def _distinct(items, option: str, where, same=lambda a, b: a == b):
    """``items`` without repeats (the same model or board named twice); two different ones
    of the same name are refused: the grid has one row or column a name."""
    seen: dict = {}
    for item in items:
        other = seen.setdefault(item.name, item)
        if other is not item and not same(other, item):
            from dse.errors import DseError

            raise DseError(f"{option}: expected one model or board a name, got two named "
                           f"{item.name!r} ({where(other)}; {where(item)})")
    return tuple(seen.values())


def _boards(names: list[str] | None):
    from dse.model.board import boards_dir, load_board, resolve_board

    if names is None:
        return tuple(load_board(p) for p in sorted(boards_dir().glob("*.yaml")))
    return _distinct([resolve_board(n) for n in names], "--boards", lambda b: b.path,
                     lambda a, b: Path(a.path).resolve() == Path(b.path).resolve())


def _list() -> int:
    from dse.profile.presets import model_table

    for name, entry in model_table().items():
        tag = " (test model)" if entry.get("test_only") else ""
        print(f"{name}{tag}: {entry.get('repo') or '-'}\n    {entry['source']}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.list:
        return _list()
    from dse.fabric_data import load_fabric
    from dse.model.template import shipped_template
    from dse.report.matrix import render_matrix_md, render_matrix_png
    from dse.search.matrix import matrix

    models, files = _models(args.models)
    boards = _boards(args.boards)
    out = Outputs([*files, *(Path(b.path) for b in boards if b.path)])
    report = plot = None
    if not args.no_report:
        report = args.report
        if report is None:
            Path("reports").mkdir(exist_ok=True)
            report = Path("reports") / ("matrix.md" if args.lang == "en" else
                                        f"matrix.{args.lang}.md")
        report = out.claim(report, "report")
        _check_replaceable(report)
        plot = out.claim(args.plot or report.with_suffix(".png"), "plot")
    if args.json:
        out.claim(args.json, "JSON")
    template = shipped_template()
    t0 = time.perf_counter()
    from dse.commands.progress import Progress

    with Progress("matrix", "cell", len(models) * len(boards), quiet=args.quiet) as bar:
        cells = matrix(models, boards, template, args.prompt_tokens, args.gen_tokens, bar,
                       load_fabric())
    seconds = time.perf_counter() - t0
    print(_grid_text(cells))
    print(f"\n{len(cells)} cells ({len(models)} models x {len(boards)} boards) in "
          f"{seconds:.1f} s; native runtime on the PS, torch not measured (no profile); "
          f"calibration: none")
    if report is not None:
        sources = {c.name: c.source for c in models}
        out.add(report, render_matrix_md(cells, prompt_tokens=args.prompt_tokens,
                                         gen_tokens=args.gen_tokens, sources=sources,
                                         plot=str(plot.name) if plot.parent == report.parent
                                         else str(plot), seconds=seconds, lang=args.lang),
                "report")
        out.add(plot, render_matrix_png(cells, lang=args.lang), "plot")
    if args.json:
        from dse.io import json_text

        out.add(args.json, json_text(_cells_json(cells, args), "matrix JSON"), "JSON")
    out.commit()
    if report is not None:
        print(f"report: {report} (plot {plot})")
    if args.json:
        print(f"cells written to {args.json}")
    return 0


def _check_replaceable(report: Path) -> None:
    """The matrix report is a whole document: it may replace only an earlier matrix report
    (a profiling report with explore sections, or any other file, would be lost)."""
    if not report.exists():
        return
    from dse.errors import DseError
    from dse.io import read_text
    from dse.report.matrix import is_matrix_report

    if not is_matrix_report(read_text(report, "report", exact=True)):
        raise DseError(f"{report}: expected a new file or a matrix report dse wrote (the "
                       f"matrix report replaces the whole file, and this one holds other "
                       f"text: a profiling or explore report?); name another --report")


def _grid_text(cells) -> str:
    from dse.report.table import text_table

    models = list(dict.fromkeys(c.model for c in cells))
    boards = list(dict.fromkeys(c.board for c in cells))
    by = {(c.model, c.board): c for c in cells}
    rows = [[m, *(f"{by[(m, b)].decode_tok_s:.1f}" if by[(m, b)].feasible else "no"
                  for b in boards)] for m in models]
    return "decode tok/s of the fastest buildable plan (no: nothing fits)\n" + text_table(
        ["model", *boards], rows)


def _cells_json(cells, args) -> dict:
    return {"format": 1, "prompt_tokens": args.prompt_tokens, "gen_tokens": args.gen_tokens,
            "runtime": "native", "calibration": "none",
            "cells": [{"model": c.model, "board": c.board, "feasible": c.feasible,
                       "why": c.why, "plan": c.plan, "make": c.make,
                       "decode_tok_s": c.decode_tok_s, "ttft_ms": c.ttft_ms,
                       "j_per_token": c.j_per_token, "memory_mib": c.memory_mib,
                       "capacity_mib": c.capacity_mib, "cpu_tok_s": c.cpu_tok_s,
                       "bound": c.bound, "kv_dtype": c.kv_dtype} for c in cells]}
