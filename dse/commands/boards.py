"""``dse boards list`` and ``dse boards validate FILE...``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dse.errors import DseError
from dse.model.board import boards_dir, load_board
from dse.report.table import text_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("boards", help="list or validate board files")
    bsub = p.add_subparsers(dest="boards_command", metavar="ACTION", required=True)
    lp = bsub.add_parser("list", help="table of the shipped boards (or of --dir)")
    lp.add_argument("--dir", type=Path, default=None, help="folder of board YAMLs")
    lp.set_defaults(run=run_list)
    vp = bsub.add_parser("validate", help="check board files; exit 0 if all are valid, else 2")
    vp.add_argument("files", nargs="+", type=Path)
    vp.set_defaults(run=run_validate)


def run_list(args: argparse.Namespace) -> int:
    folder = args.dir or boards_dir()
    files = sorted(Path(folder).glob("*.yaml"))
    if not files:
        raise DseError(f"{folder}: no board files (*.yaml) found")
    rows = []
    for f in files:
        b = load_board(f)
        rows.append([f.stem, b.name, b.part, f"{b.pl.lut:,}", f"{b.pl.dsp:,}", f"{b.pl.bram36:,}",
                     f"{b.pl.uram:,}", f"{b.ddr.capacity_bytes / 2**30:g}",
                     f"{b.ddr.peak_bandwidth_gb_s:.1f}", f"{b.clock.typical_mhz:g}"])
    print(text_table(["file", "name", "part", "LUT", "DSP", "BRAM36", "URAM", "DDR GiB",
                      "DDR GB/s", "clock MHz"], rows))
    return 0


def run_validate(args: argparse.Namespace) -> int:
    bad = 0
    for f in args.files:
        try:
            b = load_board(f)
        except DseError as exc:
            print(f"INVALID {exc}", file=sys.stderr)
            bad += 1
        else:
            print(f"ok      {f} ({b.name}, {b.part})")
    return 2 if bad else 0
