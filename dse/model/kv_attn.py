"""The attention unit (overlays/rtl/kv_attn.v): decode attention's two dot-product passes over
an int8 KV cache in DDR, with the softmax left to the PS between them.

Why this split: for one token the attention's MACs (scores q.K and the probability-weighted sum
of V) stream the whole KV cache once each, which the A53s do at a few hundred MMAC/s while a
128-bit stream from DDR feeds 16 int8 lanes per clock. The softmax is 20 exponentials per cached
position and needs floating point; it stays on the PS, which is the cheap part.

One unit, two calls per decoder layer (register MODE):

- MODE 0, scores. In: the q block (for kv head h, query head g of its group: D int8 of
  ``q[h*G + g]``, ``H*G*D/16`` beats), then for each position t and kv head h the K row
  ``K[t, h]`` (D int8, ``D/16`` beats). Out: one beat per (t, h) holding G int32,
  lane g = ``sum_d q[h*G+g, d] * K[t, h, d]``.
- MODE 1, x V. In: the p block (uint16 ``p[t, h*G + g]``, little-endian, in (t, h, g)
  order, 8 per beat, zero-padded: ``ceil(T*H*G/8)`` beats), then the V rows ``V[t, h]`` in
  (t, h) order (``D/16`` beats each). Out, after the last V beat: one beat per (h, d) holding
  G int32, lane g = ``sum_t p[t, h*G+g] * V[t, h, d]`` (uint16 x int8 products).

Why p is 16-bit (register map version 2; version 1 streamed uint8 p): at long context a
peaked distribution leaves a long tail of weights below half a uint8 step, and rounding them
to zero dropped up to 20% of the probability mass at T=4096 (bench/bench_kv_attn_accuracy.py).
The PS scales p so that each query head's codes sum to about 65535
(``dse.packing.kv_attn_step.fold_p``), which keeps every MODE 1 sum far inside int32.

``kv_attn_cycles`` is THE cycle formula: the model prices the unit with it and the RTL tests
hold the RTL to it. ``kv_attn_reference`` is the bit-exact result both are checked against.
"""

from __future__ import annotations

import math

import numpy as np

#: Bytes per input beat: the unit's stream is one 128-bit HP-port beat of int8 lanes.
KV_ATTN_BEAT_BYTES = 16
#: Bytes per probability in MODE 1's p block (uint16): 8 per beat.
KV_ATTN_P_BYTES = 2

MODE_SCORES = 0
MODE_XV = 1


def kv_attn_cycles(mode: int, positions: int, kv_heads: int, group: int, head_dim: int,
                   latency: int) -> int:
    """Busy cycles of one call without stalls: one cycle per input beat, the pipeline's
    fill/drain, and for MODE 1 one cycle per output beat (the sums leave after the last V
    row; in MODE 0 they leave while K streams)."""
    beat = KV_ATTN_BEAT_BYTES
    rows = positions * kv_heads * head_dim // beat
    if mode == MODE_SCORES:
        return kv_heads * group * head_dim // beat + rows + latency
    if mode == MODE_XV:
        return kv_attn_p_beats(positions, kv_heads, group) + rows + latency + kv_heads * head_dim
    raise ValueError(f"kv_attn mode {mode}: 0 (scores) or 1 (x V)")


def kv_attn_p_beats(positions: int, kv_heads: int, group: int) -> int:
    """Beats of MODE 1's p block: ``T*H*G`` uint16, 8 per beat, the last zero-padded."""
    return math.ceil(positions * kv_heads * group * KV_ATTN_P_BYTES / KV_ATTN_BEAT_BYTES)


def kv_attn_reference(mode: int, block: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """What one call returns, exactly.

    MODE 0: ``block`` is q, int8 ``[H, G, D]``; ``cache`` is K, int8 ``[T, H, D]``; returns
    int32 ``[T, H, G]``. MODE 1: ``block`` is p, uint16 ``[T, H, G]``; ``cache`` is V, int8
    ``[T, H, D]``; returns int32 ``[H, D, G]``. The sums are taken exactly and wrap to int32
    as the RTL's 32-bit accumulators do (a PS-made p never gets near: ``fold_p``).
    """
    if mode == MODE_XV and block.dtype != np.uint16:
        raise ValueError(f"kv_attn MODE 1: p must be uint16, got {block.dtype}")
    c = cache.astype(np.int64)
    if mode == MODE_SCORES:
        out = np.einsum("hgd,thd->thg", block.astype(np.int64), c)
    elif mode == MODE_XV:
        out = np.einsum("thg,thd->hdg", block.astype(np.int64), c)
    else:
        raise ValueError(f"kv_attn mode {mode}: 0 (scores) or 1 (x V)")
    # exact in int64 (|sum| < 2**63 for any T the unit holds), then two's-complement wrap
    return out.astype(np.int32)
