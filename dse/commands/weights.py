"""``dse weights inspect PATH``: what a real checkpoint's ternary layers cost in each packing.

Per Linear layer: shape, source format, zero fraction (what bit-plane zero skipping could
win), scale, and the exact bytes of every scheme the cost model prices, plus totals. Helps
pick a packing for a model before pricing designs with it. PATH is an HF BitNet checkpoint
directory or a .gguf file; tensors that are not ternary Linear weights are listed as skipped.
"""

from __future__ import annotations

import argparse

from dse.commands.common import positive_int
from dse.errors import DseError
from dse.model.packing import PACKINGS
from dse.report.table import text_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="inspect the ternary weights of a checkpoint")
    wsub = p.add_subparsers(dest="weights_command", metavar="ACTION", required=True)
    ip = wsub.add_parser("inspect", help="per-layer shape, zero fraction, scale and bytes per "
                         "packing scheme of an HF BitNet checkpoint dir or a .gguf file")
    ip.add_argument("path", metavar="PATH", help="HF checkpoint directory or .gguf file")
    ip.add_argument("--limit", type=positive_int, default=None, metavar="N",
                    help="inspect only the first N ternary layers")
    ip.set_defaults(run=run_inspect)


def layer_row(name: str, n: int, k: int, source: str, zero_fraction: float,
              scale: float) -> list[str]:
    """One table row: the layer and its bytes in every scheme (pure, for tests)."""
    return [name, f"{n}x{k}", source, f"{100 * zero_fraction:.1f}%", f"{scale:.6g}",
            *(f"{p.matrix_bytes(n, k):,}" for p in PACKINGS.values())]


def run_inspect(args: argparse.Namespace) -> int:
    from dse.packing.loaders import load_weights

    if args.limit is not None and args.limit < 1:
        raise DseError(f"--limit: expected an integer >= 1, got {args.limit}")
    skipped: list[tuple[str, str]] = []
    rows: list[list[str]] = []
    totals = dict.fromkeys(PACKINGS, 0)
    weights = zeros = 0
    for layer in load_weights(args.path, on_skip=lambda name, why: skipped.append((name, why))):
        n, k = layer.shape
        rows.append(layer_row(layer.name, n, k, layer.source, layer.zero_fraction, layer.scale))
        for key, p in PACKINGS.items():
            totals[key] += p.matrix_bytes(n, k)
        weights += n * k
        zeros += round(layer.zero_fraction * n * k)
        if args.limit is not None and len(rows) >= args.limit:
            break
    if not rows:
        raise DseError(f"{args.path}: expected ternary Linear layers, found none")
    rows.append([f"total ({len(rows)} layers)", f"{weights:,} w", "",
                 f"{100 * zeros / weights:.1f}%", "",
                 *(f"{totals[key]:,}" for key in PACKINGS)])
    headers = ["layer", "shape", "source", "zeros", "scale",
               *(f"{key} B" for key in PACKINGS)]
    print(text_table(headers, rows))
    print("bits/weight: " + ", ".join(f"{key} {8 * totals[key] / weights:.3f}"
                                      for key in PACKINGS))
    for line in skipped_summary(skipped):
        print(line)
    return 0


def skipped_summary(skipped: list[tuple[str, str]], examples: int = 3) -> list[str]:
    """Skipped tensors grouped by reason (a real model has a hundred norms)."""
    by_reason: dict[str, list[str]] = {}
    for name, why in skipped:
        by_reason.setdefault(why, []).append(name)
    lines = [f"skipped {len(skipped)} tensors:"] if skipped else []
    for why, names in by_reason.items():
        shown = ", ".join(names[:examples]) + (", ..." if len(names) > examples else "")
        lines.append(f"  {len(names)} {why}: {shown}")
    return lines
