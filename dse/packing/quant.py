"""BitNet b1.58 quantization and the golden integer GEMV of the overlay.

The overlay computes ``y = x_q @ w.T`` exactly in integers (int8 activations, ternary weights,
int32 sums); everything float happens on the PS before and after. These functions are the
reference both sides are checked against, so they follow the BitNet recipe as transformers'
``integrations/bitnet.py`` implements it (``WeightQuant``, ``ActQuant``):

- weights, per tensor (absmean): ``scale = max(mean(|W|), 1e-5)``,
  ``w = clamp(round(W / scale), -1, 1)``; then ``W ~= scale * w``;
- activations, per token (absmax): ``s = 127 / max(max(|x|), 1e-5)`` per row,
  ``x_q = clamp(round(x * s), -128, 127)``; then ``x ~= x_q / s``;
- output: ``y_float = y_int / s * scale``.

The 1e-5 floors are transformers' guards: an all-zero tensor or row quantizes to zeros
instead of dividing by zero. ``round`` is half-to-even, as ``torch.round``.
"""

from __future__ import annotations

import numpy as np

from dse.errors import DseError

#: transformers clamps the absmean / absmax to this before dividing.
EPS = 1e-5
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def _finite_float(a: np.ndarray, name: str, what: str) -> np.ndarray:
    a = np.asarray(a)
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise DseError(f"{name}: dtype: expected a float {what}, got {a.dtype}")
    a = a.astype(np.float32, copy=False)
    if a.size and not np.isfinite(a).all():
        raise DseError(f"{name}: values: expected finite numbers in the {what}, "
                       "got inf or nan")
    return a


def ternarize(weights: np.ndarray, name: str = "weights") -> tuple[np.ndarray, float]:
    """Absmean ternarization: (int8 ternary matrix, scale) with ``W ~= scale * w``.

    ``scale`` is the multiplier (transformers' ``WeightQuant`` uses its reciprocal ``s``).
    """
    w = _finite_float(weights, name, "weight tensor")
    mean_abs = float(np.abs(w).mean(dtype=np.float64)) if w.size else 0.0
    scale = np.float32(max(mean_abs, EPS))
    q = np.rint(w * (np.float32(1.0) / scale))
    np.clip(q, -1, 1, out=q)
    return q.astype(np.int8), float(scale)


def quantize_activations(x: np.ndarray, name: str = "activations"
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Per-token absmax int8: (x_q int8 M x K, s float32 M) with ``x ~= x_q / s[:, None]``.

    A 1-D ``x`` is one token (M = 1). ``s`` is the quantizing factor (127 / absmax), as
    transformers returns it; ``dequantize_output`` divides by it.
    """
    a = _finite_float(x, name, "activation tensor")
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise DseError(f"{name}: shape: expected (M, K) activations, got {a.shape}")
    absmax = np.abs(a).max(axis=1) if a.shape[1] else np.zeros(a.shape[0], np.float32)
    s = (np.float32(127.0) / np.maximum(absmax, np.float32(EPS))).astype(np.float32)
    q = np.rint(a * s[:, None])
    np.clip(q, -128, 127, out=q)
    return q.astype(np.int8), s


def golden_gemv(w_ternary: np.ndarray, x_int8: np.ndarray) -> np.ndarray:
    """The overlay's exact result ``y[m, n] = sum_k x[m, k] * w[n, k]``: int32 (M x N).

    Each product is in [-128, 128] and K < 2**24, so every partial sum is an integer below
    2**31 < 2**53: a float64 BLAS product is exact and ~100x faster than numpy's int64 matmul.
    The result is checked to fit int32, so a wrong answer can only be a wrong input.
    """
    w = np.asarray(w_ternary)
    x = np.asarray(x_int8)
    if x.ndim == 1:
        x = x[None, :]
    if w.ndim != 2 or x.ndim != 2:
        raise DseError(f"golden_gemv: shape: expected w (N, K) and x (M, K), got {w.shape} "
                       f"and {x.shape}")
    if w.shape[1] != x.shape[1]:
        raise DseError(f"golden_gemv: K: expected x with K = {w.shape[1]} columns (as w), "
                       f"got {x.shape[1]}")
    if x.dtype != np.int8:
        raise DseError(f"golden_gemv: x dtype: expected int8 activations, got {x.dtype}")
    if w.size and (np.abs(w.astype(np.int16)) > 1).any():
        raise DseError("golden_gemv: w values: expected ternary weights (-1, 0 or 1)")
    if w.shape[1] >= 2**24:
        raise DseError(f"golden_gemv: K: expected < 2**24 columns, got {w.shape[1]}")
    y = np.rint(x.astype(np.float64) @ w.astype(np.float64).T).astype(np.int64)
    if y.size and (y.min() < INT32_MIN or y.max() > INT32_MAX):
        raise DseError("golden_gemv: result: expected int32 sums, got an overflow")
    return y.astype(np.int32)


def dequantize_output(y_int32: np.ndarray, act_scale: np.ndarray, weight_scale: float
                      ) -> np.ndarray:
    """Float result of the layer: ``y / act_scale[:, None] * weight_scale`` (float32, M x N).

    ``act_scale`` is ``quantize_activations``' s (one per token); ``weight_scale`` the
    multiplier from ``ternarize`` or a loader (``W ~= weight_scale * w``).
    """
    y = np.asarray(y_int32, dtype=np.float64)
    s = np.asarray(act_scale, dtype=np.float64).reshape(-1, 1)
    return (y / s * float(weight_scale)).astype(np.float32)
