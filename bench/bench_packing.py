"""Benchmark: pack all 2,084,044,800 ternary weights of BitNet-2B-4T in every scheme.

The packers must handle a whole model on a small host (the board's PS or a laptop), so the
bars are: < 60 s per scheme on this 2-core machine, peak RSS < 4 GB. Weights are random
ternary, generated matrix by matrix (the largest is 6912 x 2560 = 17.7 M weights), so the
model is never in memory at once; each matrix is packed by every scheme in turn and the
seconds are summed per scheme. Unpack throughput (weights/s) is measured on the first
``--unpack-layers`` decoder layers (default all), with a bit-exact check of every round trip.

Records to bench/results/packing.json (seconds and weights/s per scheme, peak RSS, machine,
date) and prints it.

Run: python bench/bench_packing.py [--layers 30] [--unpack-layers 30]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from dse.model.packing import PACKINGS
from dse.packing.schemes import SCHEMES, pack, unpack

ROOT = Path(__file__).resolve().parents[1]
#: One decoder layer of 2B-4T (facts.md section 1), (N out, K in).
LAYER_SHAPES = {"q": (2560, 2560), "k": (640, 2560), "v": (640, 2560), "o": (2560, 2560),
                "gate": (6912, 2560), "up": (6912, 2560), "down": (2560, 6912)}
LAYERS = 30
BAR_S = 60.0
BAR_RSS_BYTES = 4 * 10**9


def peak_rss_bytes() -> int:
    """Peak resident set of this process (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run(layers: int, unpack_layers: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    pack_s = dict.fromkeys(SCHEMES, 0.0)
    packed_bytes = dict.fromkeys(SCHEMES, 0)
    unpack_s = dict.fromkeys(SCHEMES, 0.0)
    unpack_weights = 0
    gen_s = 0.0
    weights = 0
    for layer in range(layers):
        for n, k in LAYER_SHAPES.values():
            t = time.perf_counter()
            w = rng.integers(-1, 2, (n, k), dtype=np.int8)
            gen_s += time.perf_counter() - t
            weights += w.size
            for scheme in SCHEMES:
                t = time.perf_counter()
                data = pack(scheme, w, scale=0.5)
                pack_s[scheme] += time.perf_counter() - t
                assert data.size == PACKINGS[scheme].matrix_bytes(n, k)
                packed_bytes[scheme] += data.size
                if layer < unpack_layers:
                    t = time.perf_counter()
                    back = unpack(scheme, data, n, k)
                    unpack_s[scheme] += time.perf_counter() - t
                    if not np.array_equal(back, w):
                        raise SystemExit(f"{scheme}: round trip is not bit-exact")
                del data
            if layer < unpack_layers:
                unpack_weights += w.size
            del w
    per_scheme = {}
    for scheme in SCHEMES:
        per_scheme[scheme] = {
            "pack_s": round(pack_s[scheme], 3),
            "pack_weights_per_s": round(weights / pack_s[scheme]),
            "packed_bytes": packed_bytes[scheme],
            "bits_per_weight": round(8 * packed_bytes[scheme] / weights, 4),
            "unpack_weights_per_s": (round(unpack_weights / unpack_s[scheme])
                                     if unpack_weights else None),
            "meets_bar": pack_s[scheme] < BAR_S,
        }
    rss = peak_rss_bytes()
    return {
        "weights": weights,
        "layers": layers,
        "matrices": layers * len(LAYER_SHAPES),
        "random_generation_s": round(gen_s, 3),
        "unpack_sampled_weights": unpack_weights,
        "schemes": per_scheme,
        "peak_rss_bytes": rss,
        "bar_pack_s_per_scheme": BAR_S,
        "bar_peak_rss_bytes": BAR_RSS_BYTES,
        "meets_bars": rss < BAR_RSS_BYTES and all(v["meets_bar"] for v in per_scheme.values()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=LAYERS, help="decoder layers (30 = 2B-4T)")
    ap.add_argument("--unpack-layers", type=int, default=LAYERS,
                    help="decoder layers also unpacked (throughput + bit-exact check)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    start = time.perf_counter()
    figures = run(args.layers, args.unpack_layers, args.seed)
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpus": os.cpu_count(), "python": platform.python_version(),
                    "numpy": np.__version__},
        "what": "pack every 2B-4T ternary matrix (random, one matrix in memory at a time) "
                "in each scheme; unpack a sample",
        **figures,
        "wall_s": round(time.perf_counter() - start, 1),
    }
    out = ROOT / "bench" / "results" / "packing.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
