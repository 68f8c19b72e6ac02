"""Benchmark: how far kv_attn's integer attention is from float32 attention, by context.

The unit computes decode attention from an int8 KV cache (one scale per position and kv head),
int8 q (one scale per query head) and uint16 probabilities folded with the V scales (one scale
per query head, sum / 65535), with the softmax in float on the PS (dse/packing/kv_attn_step.py,
bit-exact with the RTL and the driver). This measures the output's relative L2 error per query
head, ``|o - o_ref| / |o_ref|`` against float32 attention on the same float q, K, V, over
random cases at contexts 16..4096 with BitNet-2B-4T's shape (20 query heads, 5 kv heads, D =
128), for four arithmetics: ``unit`` (what the unit does: register map version 2, uint16 p),
``kv_int8`` (int8 KV cache only: float q, softmax and p; the cache's own error), ``kv_q_int8``
(int8 KV and q, float p: the unit without the p quantization) and ``v1_uint8_p`` (the version-1
contract, uint8 p with max / 255 scaling, computed in numpy for comparison). Per context:
median, p95 and max over all heads of all cases, and the probability mass each p quantization
rounds to zero.

No model weights are available here (none may be downloaded), so q, K and V are synthetic:
Gaussian channels, plus what K caches show in real models: a few outlier channels (4 of 128
at 5-15x, with a per-channel offset) that set every K row's absmax scale, milder outliers in
q on the same channels, V with a per-channel mean (std 0.5), and regimes of attention
sharpness (logit std ~1, ~3 and ~6) with and without an attention sink (position 0 aligned
with q, drawing a large share of the mass).

Records to bench/results/kv_attn_accuracy.json and prints the table.

Run: python bench/bench_kv_attn_accuracy.py [--cases-per-context 12]
"""

from __future__ import annotations

import argparse
import json
import platform
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from dse.model.kv_attn import kv_attn_reference
from dse.packing.kv_attn_step import (
    attention_output,
    attention_step_reference,
    float_attention,
    quantize_q,
    softmax_probs,
)

ROOT = Path(__file__).resolve().parents[1]
HEADS, KV_HEADS, D = 20, 5, 128
CONTEXTS = (16, 64, 256, 1024, 4096)
OUTLIER_CHANNELS = 4
#: (logit std target, attention sink): the regimes each context cycles through.
REGIMES = ((1.0, False), (3.0, False), (6.0, False), (1.0, True), (3.0, True), (6.0, True))
VARIANTS = ("unit", "kv_int8", "kv_q_int8", "v1_uint8_p")


def make_case(rng: np.random.Generator, t: int, logit_std: float, sink: bool
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Float q [20, 128], K and V [T, 5, 128] of one synthetic case (see the module doc)."""
    chans = rng.choice(D, OUTLIER_CHANNELS, replace=False)
    k = rng.normal(size=(t, KV_HEADS, D)).astype(np.float32)
    k_mag = rng.uniform(5.0, 15.0, size=(KV_HEADS, OUTLIER_CHANNELS)).astype(np.float32)
    k_off = rng.normal(scale=3.0, size=(KV_HEADS, OUTLIER_CHANNELS)).astype(np.float32)
    k[:, :, chans] = k[:, :, chans] * k_mag + k_off
    v = rng.normal(size=(t, KV_HEADS, D)).astype(np.float32)
    v[:, :, chans[:1]] *= 3.0
    # a per-channel mean, as real V caches have: a tail of p rounded to zero then biases the
    # output instead of averaging away
    v += rng.normal(scale=0.5, size=(KV_HEADS, D)).astype(np.float32)
    q = rng.normal(size=(HEADS, D)).astype(np.float32)
    q[:, chans] *= 2.0
    if sink:
        # position 0's key points along its group's mean query: a large score there
        qg = q.reshape(KV_HEADS, HEADS // KV_HEADS, D).mean(axis=1)
        k[0] = qg / np.linalg.norm(qg, axis=1, keepdims=True) * np.linalg.norm(k[0], axis=1,
                                                                                  keepdims=True)
        k[0] *= 2.0
    # scale q so the logits' std (over positions, averaged over heads) is logit_std
    qg = q.reshape(KV_HEADS, HEADS // KV_HEADS, D)
    logits = np.einsum("hgd,thd->thg", qg, k) / np.sqrt(D)
    q *= np.float32(logit_std / float(logits[1:].std(axis=0).mean() if t > 2 else
                                      logits.std() or 1.0))
    return q, k, v


def fold_p_uint8(probs: np.ndarray, v_scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The version-1 p quantization, kept here for the comparison: folded weights over
    0..255 with each query head's max at 255 (so a weight under max/510 becomes 0)."""
    w = (probs * v_scale[:, :, None]).astype(np.float32)
    scale = (w.max(axis=0) / np.float32(255)).astype(np.float32)
    safe = np.where(scale > 0, scale, np.float32(1.0)).astype(np.float32)
    return np.clip(np.rint(w / safe[None]), 0, 255).astype(np.uint8), scale


def variants(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> tuple[dict[str, np.ndarray],
                                                                      dict[str, float]]:
    """Each arithmetic's output [20, 128], and the share of p mass each p quantization (the
    unit's uint16, version 1's uint8) rounds to zero."""
    step = attention_step_reference(q, k, v)
    rows = step.rows
    kd = rows.k8 * rows.k_scale[..., None]
    vd = rows.v8 * rows.v_scale[..., None]
    out = {"unit": step.out, "kv_int8": float_attention(q, kd, vd)}
    q8, qs = quantize_q(q, KV_HEADS)
    probs = softmax_probs(kv_attn_reference(0, q8, rows.k8), qs, rows.k_scale, D)
    exact = np.einsum("thg,thd->hgd", probs.astype(np.float64),
                      vd.astype(np.float64)).reshape(HEADS, D)
    out["kv_q_int8"] = exact.astype(np.float32)
    p8, ps8 = fold_p_uint8(probs, rows.v_scale)
    sums8 = np.einsum("thg,thd->hdg", p8.astype(np.int64), rows.v8.astype(np.int64))
    out["v1_uint8_p"] = attention_output(sums8, ps8)
    zeroed = {"unit": float((step.probs * (step.p16 == 0)).sum(axis=0).mean()),
              "v1_uint8_p": float((probs * (p8 == 0)).sum(axis=0).mean())}
    return out, zeroed


def stats(x: list[float]) -> dict[str, float]:
    a = np.asarray(x)
    return {"median": float(np.median(a)), "p95": float(np.percentile(a, 95)),
            "max": float(a.max())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases-per-context", type=int, default=12)
    ap.add_argument("--seed", type=int, default=12)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    results = []
    for t in CONTEXTS:
        errs: dict[str, list[float]] = {name: [] for name in VARIANTS}
        by_regime: dict[str, list[float]] = {}
        zeroed: dict[str, list[float]] = {"unit": [], "v1_uint8_p": []}
        for i in range(args.cases_per_context):
            logit_std, sink = REGIMES[i % len(REGIMES)]
            q, k, v = make_case(rng, t, logit_std, sink)
            ref = float_attention(q, k, v).astype(np.float64)
            outs, z = variants(q, k, v)
            for name, mass in z.items():
                zeroed[name].append(mass)
            norm = np.linalg.norm(ref, axis=1)
            for name, o in outs.items():
                rel = np.linalg.norm(o.astype(np.float64) - ref, axis=1) / norm
                errs[name] += rel.tolist()
                if name == "unit":
                    key = f"logit_std={logit_std:g}{' sink' if sink else ''}"
                    by_regime.setdefault(key, []).extend(rel.tolist())
        row = {"context": t, "cases": args.cases_per_context,
               "heads": args.cases_per_context * HEADS,
               "rel_l2": {name: stats(e) for name, e in errs.items()},
               "unit_by_regime_median": {k: float(np.median(v)) for k, v in by_regime.items()},
               "p_mass_zeroed": {name: stats(m) for name, m in zeroed.items()}}
        results.append(row)
        r = row["rel_l2"]
        print(f"T={t:5d}  unit median {r['unit']['median']:.4f} p95 {r['unit']['p95']:.4f} "
              f"max {r['unit']['max']:.4f} | kv_int8 median {r['kv_int8']['median']:.4f} "
              f"p95 {r['kv_int8']['p95']:.4f} | kv_q_int8 median "
              f"{r['kv_q_int8']['median']:.4f} | v1 uint8 p median "
              f"{r['v1_uint8_p']['median']:.4f} p95 {r['v1_uint8_p']['p95']:.4f} max "
              f"{r['v1_uint8_p']['max']:.4f} | p mass zeroed max: unit "
              f"{row['p_mass_zeroed']['unit']['max']:.2e}, uint8 "
              f"{row['p_mass_zeroed']['v1_uint8_p']['max']:.4f}")
    doc = __doc__.split("\n\n")
    out = ROOT / "bench" / "results" / "kv_attn_accuracy.json"
    out.write_text(json.dumps({
        "bench": "kv_attn_accuracy",
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": {"cpu": platform.processor() or platform.machine(),
                 "python": platform.python_version(), "numpy": np.__version__},
        "method": doc[1].replace("\n", " "),
        "notes": doc[2].replace("\n", " "),
        "shape": {"heads": HEADS, "kv_heads": KV_HEADS, "head_dim": D},
        "seed": args.seed,
        "results": results,
    }, indent=1) + "\n", encoding="utf-8")
    print(f"-> {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
