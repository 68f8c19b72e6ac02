"""The PS arithmetic of one kv_attn step (dse/packing/kv_attn_step.py), checked by its
invariants: quantization ranges and error bounds, the block layouts the unit expects, the
integer p.V equal to the float sum up to the p quantization's bound, the step close to float
attention. (The driver and the RTL are held to this module bit for bit in
tests/test_pynq_driver.py and tests/test_kv_attn_step_rtl.py.)
"""

from __future__ import annotations

import numpy as np
import pytest

from dse.errors import DseError
from dse.model.kv_attn import kv_attn_reference
from dse.packing.kv_attn_step import (
    attention_output,
    attention_step_reference,
    float_attention,
    fold_p,
    p_code_sum_bound,
    quantize_kv,
    quantize_q,
    quantize_rows,
    softmax_probs,
    xv_sum_bound,
)


def _data(seed: int, t: int, h: int, g: int, d: int):
    rng = np.random.default_rng(seed)
    k = rng.normal(size=(t, h, d)).astype(np.float32)
    k[:, :, 5] *= 10.0                        # an outlier channel
    return (rng.normal(size=(h * g, d)).astype(np.float32), k,
            rng.normal(size=(t, h, d)).astype(np.float32))


def test_quantize_rows_symmetric_absmax():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(7, 3, 32)).astype(np.float32)
    x[2, 1] = 0.0
    codes, scale = quantize_rows(x)
    assert codes.dtype == np.int8 and scale.dtype == np.float32 and scale.shape == (7, 3)
    assert codes.min() >= -127 and np.abs(codes).max(axis=-1)[scale > 0].min() == 127
    assert scale[2, 1] == 0 and not codes[2, 1].any()
    err = np.abs(codes * scale[..., None] - x)
    assert (err <= scale[..., None] * 0.5 * (1 + 1e-5)).all()


def test_q_layout_is_the_mode0_block():
    """q8[h, g] is query head h*G + g quantized on its own (one scale per query head)."""
    q = np.random.default_rng(2).normal(size=(20, 128)).astype(np.float32)
    q8, qs = quantize_q(q, kv_heads=5)
    assert q8.shape == (5, 4, 128) and qs.shape == (5, 4)
    c, s = quantize_rows(q[13])
    assert np.array_equal(q8[3, 1], c) and qs[3, 1] == s
    with pytest.raises(DseError, match="multiple of kv_heads=3"):
        quantize_q(q, kv_heads=3)


def test_softmax_is_the_dequantized_float_softmax():
    q, k, v = _data(3, 50, 2, 4, 64)
    rows = quantize_kv(k, v)
    q8, qs = quantize_q(q, 2)
    scores = kv_attn_reference(0, q8, rows.k8)
    p = softmax_probs(scores, qs, rows.k_scale, 64)
    assert p.dtype == np.float32 and p.shape == (50, 2, 4)
    np.testing.assert_allclose(p.sum(axis=0), 1.0, rtol=1e-5)
    qd = (q8 * qs[..., None]).reshape(8, 64)
    kd = rows.k8 * rows.k_scale[..., None]
    logits = np.einsum("hgd,thd->thg", qd.reshape(2, 4, 64), kd) / 8.0
    ref = np.exp(logits - logits.max(0)) / np.exp(logits - logits.max(0)).sum(0)
    np.testing.assert_allclose(p, ref, rtol=2e-5, atol=1e-7)


def test_folded_p_integer_sum_is_the_float_sum_within_the_rounding_bound():
    """sum_t p16 * V8 * p_scale equals sum_t p * v_scale * V8 up to half a p step per term;
    each query head's codes sum to 65535 within the rounding bound (scale = sum / 65535)."""
    _, k, v = _data(4, 300, 2, 4, 32)
    rows = quantize_kv(k, v)
    rng = np.random.default_rng(5)
    probs = rng.dirichlet(np.ones(300), size=(2, 4)).transpose(2, 0, 1).astype(np.float32)
    p16, ps = fold_p(probs, rows.v_scale)
    assert p16.dtype == np.uint16 and ps.shape == (2, 4)
    total = p16.sum(axis=0, dtype=np.int64)
    assert (np.abs(total - 65535) <= 300 / 2 + 1).all() and (total <= p_code_sum_bound(300)).all()
    sums = kv_attn_reference(1, p16, rows.v8)
    out = attention_output(sums, ps)
    exact = np.einsum("thg,thd->hgd", probs.astype(np.float64) * rows.v_scale[..., None],
                      rows.v8.astype(np.float64)).reshape(8, 32)
    bound = (ps.reshape(8, 1) * 0.5 * np.abs(rows.v8).sum(axis=0).repeat(4, axis=0)
             .reshape(2, 32, 4).transpose(0, 2, 1).reshape(8, 32)) * 1.001 + 1e-6
    assert (np.abs(out - exact) <= bound).all()


def test_one_position_takes_the_whole_code_range():
    """A query head with all its mass on one position gets code 65535 there (no clamp)."""
    probs = np.zeros((5, 1, 2), np.float32)
    probs[3, 0, :] = 1.0
    p16, ps = fold_p(probs, np.full((5, 1), 0.02, np.float32))
    assert p16[3, 0].tolist() == [65535, 65535] and not p16[[0, 1, 2, 4]].any()
    np.testing.assert_allclose(ps, 0.02 / 65535, rtol=1e-6)


def test_adversarial_p_stays_inside_the_int32_bound():
    """The worst case for the MODE 1 sums: T = 16384 (the template's largest TMAX), one
    position holding most of the mass and every other one folded to just above half a code,
    so each rounds up (+0.5 a position: the codes sum to ~65535 + T/2), and V all -128. The
    codes stay within ``p_code_sum_bound``, the exact sums within ``xv_sum_bound`` and far
    inside int32, and the unit's int32 result equals the exact int64 sum (no wrap)."""
    t = 16384
    half = 0.5 + 1e-3
    tail = half / 65535                                 # a tail weight's share of the sum
    probs = np.full((t, 1, 1), tail, np.float32)
    probs[0] = 1.0 - tail * (t - 1)
    p16, _ = fold_p(probs, np.ones((t, 1), np.float32))
    total = int(p16.sum(dtype=np.int64))
    assert (p16[1:] == 1).all()                         # every tail weight rounded up
    assert 65535 + t / 2 - 200 < total <= p_code_sum_bound(t)
    v8 = np.full((t, 1, 16), -128, np.int8)
    exact = np.einsum("thg,thd->hdg", p16.astype(np.int64), v8.astype(np.int64))
    assert np.abs(exact).max() == 128 * total <= xv_sum_bound(t) < 0.005 * (2**31 - 1)
    assert np.array_equal(kv_attn_reference(1, p16, v8), exact)


def test_fold_p_refuses_codes_out_of_bound():
    """The bound is asserted, not clamped: a NaN probability (a broken softmax) is refused."""
    probs = np.full((4, 1, 1), 0.25, np.float32)
    probs[2] = np.nan
    with pytest.raises(DseError, match="p codes out of their bound"):
        fold_p(probs, np.ones((4, 1), np.float32))


def test_output_layout():
    """out[h*G + g, d] = p_scale[h, g] * sums[h, d, g] (MODE 1's (h, d, g) order)."""
    sums = np.arange(2 * 16 * 4, dtype=np.int32).reshape(2, 16, 4)
    ps = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], np.float32)
    out = attention_output(sums, ps)
    assert out.shape == (8, 16) and out[6, 9] == 7 * sums[1, 9, 2]


@pytest.mark.parametrize(("t", "h", "g", "d"), [(1, 1, 1, 16), (64, 5, 4, 128)])
def test_step_is_close_to_float_attention(t, h, g, d):
    q, k, v = _data(t + d, t, h, g, d)
    step = attention_step_reference(q, k, v)
    ref = float_attention(q, k, v)
    assert step.out.shape == ref.shape == (h * g, d)
    rel = np.linalg.norm(step.out - ref, axis=1) / np.linalg.norm(ref, axis=1)
    # a sanity bound (an outlier channel at 10x coarsens every K row's step; the accuracy
    # bench measures the distribution: bench/results/kv_attn_accuracy.json)
    assert rel.max() < 0.1, rel.max()
    if t == 1:  # one position: p is 1, the output is the dequantized V row
        np.testing.assert_allclose(step.out, np.repeat(
            step.rows.v8[0] * step.rows.v_scale[0][:, None], g, axis=0), rtol=1e-6)
