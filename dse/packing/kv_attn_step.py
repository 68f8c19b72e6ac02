"""The PS side of one decode attention step on kv_attn: every number the driver computes,
sends and receives, as pure functions (one home for this arithmetic).

One step for one decoder layer and one new token, with ``heads`` query heads, ``kv_heads``
kv heads (GQA group ``G = heads / kv_heads``), head dim ``D`` and ``T`` cached positions:

1. the KV cache holds int8 rows with one float scale per (position, kv head)
   (``quantize_rows``), written once when the token's K and V are appended;
2. q is quantized to int8 with one scale per query head (``quantize_q``);
3. MODE 0 returns int32 scores ``q8 . K8`` per (t, kv head, query head);
4. the PS turns them into probabilities in float (``softmax_probs``);
5. it folds each row's V scale into the probabilities and quantizes them to uint16 with one
   scale per query head (``fold_p``), so MODE 1's integer sums are the float ``p . V``;
6. MODE 1 returns int32 ``sum_t p16 * V8`` per (kv head, d, query head);
7. the PS rescales them into the float output (``attention_output``).

``run_step`` composes them around any implementation of the unit's two calls (the bit-exact
``kv_attn_reference``, the PYNQ driver, the RTL in simulation), so all three compute the same
floats from the same integers; ``attention_step_reference`` is the step with the reference.
The PS arithmetic is float32 (what the A53's NEON does four at a time); numpy's float32
operations are deterministic, so the same integers give the same output bits anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dse.errors import DseError
from dse.model.kv_attn import MODE_SCORES, MODE_XV, kv_attn_reference

#: Largest int8 magnitude used: symmetric [-127, 127], so -x is always representable and the
#: products' range is symmetric (no -128 * -128 corner).
INT8_MAX = 127
#: What each query head's uint16 p codes of MODE 1's p block sum to (before rounding).
P_SUM = 65535
#: Largest int8 magnitude the unit accepts in a V row (the PS's own rows stop at 127).
V_ABS_MAX = 128
INT32_MAX = 2**31 - 1


def p_code_sum_bound(positions: int) -> float:
    """The most a query head's p codes can sum to (``fold_p``): 65535 before rounding, plus at
    most half a code per position from round-to-nearest, plus 1 for float32 rounding of the
    scale and the quotients (relative errors of ~1e-7 on a sum of 65535: far below 1)."""
    return P_SUM + positions / 2 + 1


def xv_sum_bound(positions: int) -> float:
    """The largest |MODE 1 sum| a PS-made p can give: ``128 * p_code_sum_bound(T)``. At the
    template's largest TMAX (16384) that is 9.44e6, 0.44% of int32's 2**31 - 1 and below 2**24
    (so the sums also convert to float32 exactly); int32 would only be reached at
    T ~ 3.3e7."""
    return V_ABS_MAX * p_code_sum_bound(positions)

#: One call of the unit: (mode, block, cache int8 [T, H, D]) -> int32 results, as
#: ``kv_attn_reference`` defines them.
UnitCall = Callable[[int, np.ndarray, np.ndarray], np.ndarray]


def _safe(scale: np.ndarray) -> np.ndarray:
    """Divisor for quantizing: a zero scale (an all-zero row) divides by 1 and gives zeros."""
    return np.where(scale > 0, scale, np.float32(1.0)).astype(np.float32)


def quantize_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 over the last axis: (int8 codes, float32 scale per row = absmax/127).

    Why per (position, kv head) row for the cache: a row's scale is known the moment its token
    is appended, so no earlier row is ever requantized, and within a row one scale keeps the
    D-term dot product an integer one (the scale multiplies the whole sum). Symmetric, so the
    integer products need no zero-point cross terms. An all-zero row gets scale 0.
    """
    xf = np.asarray(x, dtype=np.float32)
    scale = (np.abs(xf).max(axis=-1) / np.float32(INT8_MAX)).astype(np.float32)
    codes = np.rint(xf / _safe(scale)[..., None])
    return np.clip(codes, -INT8_MAX, INT8_MAX).astype(np.int8), scale


@dataclass(frozen=True)
class KvRows:
    """Quantized K and V rows: int8 ``[T, H, D]`` and float32 scales ``[T, H]``."""

    k8: np.ndarray
    k_scale: np.ndarray
    v8: np.ndarray
    v_scale: np.ndarray

    @property
    def positions(self) -> int:
        return int(self.k8.shape[0])

    @property
    def kv_heads(self) -> int:
        return int(self.k8.shape[1])

    @property
    def head_dim(self) -> int:
        return int(self.k8.shape[2])


def quantize_kv(k: np.ndarray, v: np.ndarray) -> KvRows:
    """The cache rows of float K and V ``[T, kv_heads, D]`` (one scale per row each)."""
    k, v = np.asarray(k), np.asarray(v)
    if k.ndim != 3 or k.shape != v.shape:
        raise DseError(f"kv_attn step: K and V must both be [T, kv_heads, D], got {k.shape} "
                       f"and {v.shape}")
    k8, ks = quantize_rows(k)
    v8, vs = quantize_rows(v)
    return KvRows(k8, ks, v8, vs)


def quantize_q(q: np.ndarray, kv_heads: int) -> tuple[np.ndarray, np.ndarray]:
    """int8 q ``[H, G, D]`` (query head ``h*G + g``, the MODE 0 block's order) and its float32
    scales ``[H, G]``: one per query head, so each score is one integer dot product times
    ``q_scale * k_scale``."""
    q = np.asarray(q)
    if q.ndim != 2 or kv_heads < 1 or q.shape[0] % kv_heads:
        raise DseError(f"kv_attn step: q must be [heads, D] with heads a multiple of "
                       f"kv_heads={kv_heads}, got {q.shape}")
    q8, qs = quantize_rows(q)
    g = q.shape[0] // kv_heads
    return q8.reshape(kv_heads, g, q.shape[1]), qs.reshape(kv_heads, g)


def softmax_probs(scores: np.ndarray, q_scale: np.ndarray, k_scale: np.ndarray,
                  head_dim: int) -> np.ndarray:
    """Float32 probabilities ``[T, H, G]`` over positions from MODE 0's int32 ``[T, H, G]``.

    The logit is ``score * q_scale * k_scale / sqrt(D)``: the integer dot product times the two
    scales is the float q.K up to quantization, and 1/sqrt(D) is the attention's own scale.
    The int32 score converts to float32 exactly (|score| <= 127*127*D < 2**24 for D <= 256).
    Subtracting each query head's max before exp keeps exp in range (the largest term is 1).
    """
    s = np.asarray(scores).astype(np.float32)
    scale = (q_scale[None, :, :] * k_scale[:, :, None]).astype(np.float32)
    logits = s * scale * np.float32(1.0 / np.sqrt(head_dim))
    e = np.exp(logits - logits.max(axis=0, keepdims=True))
    return (e / e.sum(axis=0, keepdims=True)).astype(np.float32)


def fold_p(probs: np.ndarray, v_scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MODE 1's p block: (uint16 codes ``[T, H, G]``, float32 scale per query head ``[H, G]``).

    Each position's V row is ``v_scale[t, h] * V8[t, h]``, so ``sum_t p * V`` equals
    ``sum_t (p * v_scale) * V8``: folding the row's V scale into its probability leaves one
    integer sum over t per output, which is what the unit computes. The folded weights ``w``
    are quantized with one scale per query head, ``sum_t w / 65535``, round to nearest.

    Why the sum and not the max sets the scale: the codes of a query head then sum to
    ``65535 + (at most half a code per position)``, whatever the distribution, so every MODE 1
    sum is bounded by ``128 * (65535 + T/2 + 1)`` (``xv_sum_bound``, 9.4e6 at T=16384): int32
    never overflows and no clamp is needed (asserted here, not clamped). Each code is at most
    65535 because no weight exceeds the sum. A weight is lost to rounding only below half a
    step, 1/131070 of the head's folded mass, where uint8 max-scaling (register map version
    1) lost everything below max/510: at T=4096 that dropped up to 20% of the mass.
    """
    w = (probs * v_scale[:, :, None]).astype(np.float32)
    scale = (w.sum(axis=0) / np.float32(P_SUM)).astype(np.float32)
    codes = np.rint(w / _safe(scale)[None])
    t = w.shape[0]
    total = codes.sum(axis=0, dtype=np.float64)
    if not (codes.min(initial=0.0) >= 0 and codes.max(initial=0.0) <= np.iinfo(np.uint16).max
            and total.max(initial=0.0) <= p_code_sum_bound(t)):
        raise DseError(f"kv_attn step: p codes out of their bound (max {codes.max()}, largest "
                       f"head sum {total.max()}, bound {p_code_sum_bound(t)} at T={t})")
    if xv_sum_bound(t) > INT32_MAX:
        raise DseError(f"kv_attn step: T={t} positions could overflow MODE 1's int32 sums")
    return codes.astype(np.uint16), scale


def attention_output(sums: np.ndarray, p_scale: np.ndarray) -> np.ndarray:
    """Float32 output ``[heads, D]`` from MODE 1's int32 ``[H, D, G]``: each sum times its query
    head's p scale (the V scales are already inside the integers, ``fold_p``)."""
    h, d, g = sums.shape
    out = np.asarray(sums).astype(np.float32) * p_scale[:, None, :]
    return out.transpose(0, 2, 1).reshape(h * g, d)


@dataclass(frozen=True)
class AttnStep:
    """Everything one step sends, receives and computes (shapes as in the module doc)."""

    q8: np.ndarray          # int8 [H, G, D]: MODE 0's block
    q_scale: np.ndarray     # float32 [H, G]
    rows: KvRows            # the cache rows both calls stream
    scores: np.ndarray      # int32 [T, H, G]: MODE 0's results
    probs: np.ndarray       # float32 [T, H, G]
    p16: np.ndarray         # uint16 [T, H, G]: MODE 1's block
    p_scale: np.ndarray     # float32 [H, G]
    sums: np.ndarray        # int32 [H, D, G]: MODE 1's results
    out: np.ndarray         # float32 [heads, D]


def run_step(q: np.ndarray, rows: KvRows, call: UnitCall) -> AttnStep:
    """One step around ``call`` (the unit, however it is implemented): quantize q, MODE 0,
    softmax, fold and quantize p, MODE 1, rescale."""
    if q.ndim != 2 or q.shape[1] != rows.head_dim:
        raise DseError(f"kv_attn step: q {q.shape}, cache head dim {rows.head_dim}")
    q8, qs = quantize_q(q, rows.kv_heads)
    scores = np.asarray(call(MODE_SCORES, q8, rows.k8))
    want = (rows.positions, rows.kv_heads, q8.shape[1])
    if scores.dtype != np.int32 or scores.shape != want:
        raise DseError(f"kv_attn step: MODE 0 returned {scores.dtype} {scores.shape}, "
                       f"expected int32 {want}")
    probs = softmax_probs(scores, qs, rows.k_scale, rows.head_dim)
    p16, ps = fold_p(probs, rows.v_scale)
    sums = np.asarray(call(MODE_XV, p16, rows.v8))
    want = (rows.kv_heads, rows.head_dim, q8.shape[1])
    if sums.dtype != np.int32 or sums.shape != want:
        raise DseError(f"kv_attn step: MODE 1 returned {sums.dtype} {sums.shape}, "
                       f"expected int32 {want}")
    return AttnStep(q8, qs, rows, scores, probs, p16, ps, sums, attention_output(sums, ps))


def attention_step_reference(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> AttnStep:
    """The step from float q ``[heads, D]`` and K, V ``[T, kv_heads, D]``, with the unit's
    bit-exact reference: what the driver and the RTL must reproduce bit for bit."""
    return run_step(np.asarray(q, dtype=np.float32), quantize_kv(k, v), kv_attn_reference)


def float_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Float32 GQA decode attention ``[heads, D]``: the accuracy baseline (no quantization)."""
    q = np.asarray(q, dtype=np.float32)
    k = np.asarray(k, dtype=np.float32)
    v = np.asarray(v, dtype=np.float32)
    _, h, d = k.shape
    qg = q.reshape(h, q.shape[0] // h, d)
    logits = np.einsum("hgd,thd->thg", qg, k) * np.float32(1.0 / np.sqrt(d))
    e = np.exp(logits - logits.max(axis=0, keepdims=True))
    p = e / e.sum(axis=0, keepdims=True)
    return np.einsum("thg,thd->hgd", p, v).reshape(q.shape[0], d).astype(np.float32)
