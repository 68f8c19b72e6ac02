"""Packers (dse.packing.schemes) and quantization (dse.packing.quant): exact byte counts,
bit-exact round trips, the documented layouts, llama.cpp byte compatibility, bad input, and
the golden GEMV against a float reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dse.errors import DseError
from dse.model.packing import PACKINGS
from dse.packing.quant import dequantize_output, golden_gemv, quantize_activations, ternarize
from dse.packing.schemes import SCHEMES, block_scales, pack, unpack

gguf = pytest.importorskip("gguf")
Q = gguf.GGMLQuantizationType
GGUF_TYPES = {"tq1_0": Q.TQ1_0, "tq2_0": Q.TQ2_0}


def ternary(rng: np.random.Generator, n: int, k: int, p_zero: float = 1 / 3) -> np.ndarray:
    w = rng.choice(np.array([-1, 1], dtype=np.int8), size=(n, k))
    w[rng.random((n, k)) < p_zero] = 0
    return w


# -- registry and sizes ----------------------------------------------------------------------

def test_registry_covers_every_priced_scheme():
    assert set(SCHEMES) == set(PACKINGS)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scheme=st.sampled_from(sorted(SCHEMES)), n=st.integers(1, 5),
       k=st.one_of(st.sampled_from([1, 2, 3, 4, 5, 7, 8, 9, 255, 256, 257, 641, 2560, 6912]),
                   st.integers(1, 700)),
       p_zero=st.sampled_from([0.0, 0.3, 0.9, 1.0]), seed=st.integers(0, 2**32 - 1))
def test_round_trip_is_bit_exact_and_sized_as_priced(scheme, n, k, p_zero, seed):
    w = ternary(np.random.default_rng(seed), n, k, p_zero)
    data = pack(scheme, w, scale=0.75)
    assert data.dtype == np.uint8
    assert data.shape == (n, PACKINGS[scheme].row_bytes(k))
    assert data.size == PACKINGS[scheme].matrix_bytes(n, k)
    back = unpack(scheme, data.tobytes(), n, k)
    assert back.dtype == np.int8 and back.shape == (n, k)
    np.testing.assert_array_equal(back, w)


def test_rows_are_packed_independently():
    """Row r of the packed matrix depends only on row r (the cost model's row padding)."""
    rng = np.random.default_rng(1)
    w = ternary(rng, 4, 641)
    for scheme in SCHEMES:
        whole = pack(scheme, w)
        for r in range(4):
            np.testing.assert_array_equal(whole[r], pack(scheme, w[r:r + 1])[0])


# -- the documented layouts, by hand -----------------------------------------------------------

@pytest.mark.parametrize(("scheme", "row", "expect"), [
    # codes 0,1,2,2 -> 0 | 1<<2 | 2<<4 | 2<<6; then code 1 + three padding zeros (code 1)
    ("i2", [-1, 0, 1, 1, 0], [164, 85]),
    # 2 + 0*3 + 1*9 + 2*27 + 2*81 = 227; 0 + 1*(3 + 9 + 27 + 81) = 120
    ("base3", [1, -1, 0, 1, 1, -1], [227, 120]),
    # t = 13 -> 0b01101; t = -9 -> 0b11001; t = 0 -> 0: 13 + 25 * 32 = 813 = 0x032D (15 bits)
    ("tl2", [1, 1, 1, -1, 0, 0, 0], [0x2D, 0x03]),
    # mask bits 0, 1, 7; sign bit 1 | then weight 8: mask bit 0, sign bit 0
    ("bitplane", [1, -1, 0, 0, 0, 0, 0, 1, -1], [0b10000011, 0b10, 1, 1]),
])
def test_documented_layouts(scheme, row, expect):
    w = np.array([row], dtype=np.int8)
    assert pack(scheme, w).ravel().tolist() == expect


def test_tq2_0_layout_weight_order():
    """Byte 32h + i holds weights 128h + 32t + i at bits 2t."""
    w = np.zeros((1, 256), dtype=np.int8)
    w[0, 128 + 64 + 5] = 1  # h = 1, t = 2, i = 5 -> byte 37, code 2 at bits 4..5
    data = pack("tq2_0", w, scale=2.0).ravel()
    assert data[37] == 0b01_10_01_01
    assert (np.delete(data[:64], 37) == 0b01010101).all()
    assert data[64:].view("<f2")[0] == 2.0


# -- llama.cpp compatibility ---------------------------------------------------------------------

@pytest.mark.parametrize("scheme", ["tq1_0", "tq2_0"])
@pytest.mark.parametrize(("n", "k"), [(1, 256), (7, 512), (3, 2560), (2, 6912)])
def test_tq_bytes_match_gguf_reference(scheme, n, k):
    rng = np.random.default_rng(n * k)
    w = ternary(rng, n, k)
    w[0, :256] = 0  # an all-zero block: llama.cpp writes d = 0 there
    scale = float(rng.uniform(0.01, 20.0))
    reference = gguf.quants.quantize((w * scale).astype(np.float32), GGUF_TYPES[scheme])
    ours = pack(scheme, w, scale=scale)
    np.testing.assert_array_equal(ours, reference)
    # and the other way: our decoder reads llama.cpp's bytes, their decoder reads ours
    np.testing.assert_array_equal(unpack(scheme, reference, n, k), w)
    deq = gguf.quants.dequantize(ours, GGUF_TYPES[scheme])
    d = np.float32(np.float16(scale))
    np.testing.assert_array_equal(deq, w.astype(np.float32) * d)
    scales = block_scales(scheme, ours, n, k)
    assert scales.shape == (n, k // 256)
    assert scales[0, 0] == 0 and (scales.ravel()[1:] == d).all()


def test_tq_rows_not_whole_blocks_are_padded():
    w = ternary(np.random.default_rng(5), 3, 300)
    for scheme in GGUF_TYPES:
        data = pack(scheme, w, scale=1.5)
        assert data.shape == (3, 2 * PACKINGS[scheme].group_bits // 8)
        padded = np.zeros((3, 512), dtype=np.int8)
        padded[:, :300] = w
        np.testing.assert_array_equal(data, pack(scheme, padded, scale=1.5))


# -- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_non_ternary_value_names_the_tensor(scheme):
    w = np.zeros((3, 10), dtype=np.int8)
    w[2, 7] = 2
    with pytest.raises(DseError, match=r"blk\.0\.ffn_up: value at \[2, 7\]: expected a ternary"):
        pack(scheme, w, name="blk.0.ffn_up")
    with pytest.raises(DseError, match=r"got 0\.5"):
        pack(scheme, np.full((1, 4), 0.5), name="x")
    with pytest.raises(DseError, match="2-D"):
        pack(scheme, np.zeros(4, dtype=np.int8), name="x")


def test_float_ternary_values_are_accepted():
    w = np.array([[1.0, -1.0, 0.0]])
    np.testing.assert_array_equal(unpack("i2", pack("i2", w), 1, 3), w.astype(np.int8))


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_truncated_buffer_gives_expected_and_got(scheme):
    data = pack(scheme, np.ones((4, 641), dtype=np.int8)).ravel()
    want = PACKINGS[scheme].matrix_bytes(4, 641)
    with pytest.raises(DseError, match=rf"layer\.q: .*truncated, expected {want} bytes, "
                                       rf"got {want - 1}"):
        unpack(scheme, data[:-1], 4, 641, name="layer.q")
    with pytest.raises(DseError, match="too long"):
        unpack(scheme, np.concatenate([data, data[:1]]), 4, 641)


@pytest.mark.parametrize(("scheme", "k", "byte", "value"), [
    ("i2", 4, 0, 0b11), ("base3", 5, 0, 250), ("tl2", 3, 0, 14), ("tl2", 3, 0, 16),
    ("bitplane", 8, 1, 1), ("tq2_0", 256, 3, 0xC0),
])
def test_codes_no_packer_writes_are_rejected(scheme, k, byte, value):
    data = pack(scheme, np.zeros((1, k), dtype=np.int8)).ravel().copy()
    data[byte] = value
    with pytest.raises(DseError, match=f"w: packed {scheme} data row 0"):
        unpack(scheme, data, 1, k, name="w")


@pytest.mark.parametrize("scale", [-1.0, float("inf"), float("nan"), 1e6])
def test_tq_scale_must_fit_fp16(scale):
    with pytest.raises(DseError, match="w: scale"):
        pack("tq1_0", np.ones((1, 256), dtype=np.int8), scale=scale, name="w")


def test_unknown_scheme():
    with pytest.raises(DseError, match="expected one of i2"):
        pack("i3", np.zeros((1, 1), dtype=np.int8))


# -- quantization and the golden GEMV -------------------------------------------------------------

def hf_weight_quant(w: np.ndarray) -> np.ndarray:
    """transformers WeightQuant.forward in numpy: the dequantized ternary weight."""
    s = 1.0 / max(float(np.abs(w).mean()), 1e-5)
    return np.clip(np.round(w * s), -1, 1) / s


def hf_act_quant(x: np.ndarray) -> np.ndarray:
    """transformers ActQuant.forward in numpy: the dequantized int8 activation."""
    s = 127.0 / np.maximum(np.abs(x).max(axis=-1, keepdims=True), 1e-5)
    return np.clip(np.round(x * s), -128, 127) / s


def test_ternarize_matches_the_bitnet_recipe():
    rng = np.random.default_rng(7)
    weights = rng.normal(0, 0.02, (96, 160)).astype(np.float32)
    w, scale = ternarize(weights)
    assert w.dtype == np.int8 and set(np.unique(w)) <= {-1, 0, 1}
    assert scale == pytest.approx(np.abs(weights).mean(), rel=1e-6)
    np.testing.assert_allclose(scale * w, hf_weight_quant(weights), rtol=1e-5, atol=1e-9)


def test_zero_tensor_and_zero_rows_are_guarded():
    w, scale = ternarize(np.zeros((4, 8), dtype=np.float32))
    assert not w.any() and np.isfinite(scale) and scale > 0
    x = np.zeros((2, 8), dtype=np.float32)
    x[1, 3] = -2.0
    xq, s = quantize_activations(x)
    assert not xq[0].any() and np.isfinite(s).all()
    assert xq[1, 3] == -127
    with pytest.raises(DseError, match="layer: values: expected finite"):
        ternarize(np.array([[np.nan]]), "layer")


def test_activation_quantization_matches_absmax():
    rng = np.random.default_rng(8)
    x = rng.normal(0, 3, (5, 200)).astype(np.float32)
    xq, s = quantize_activations(x)
    assert xq.dtype == np.int8 and s.shape == (5,)
    assert (np.abs(xq).max(axis=1) == 127).all()
    np.testing.assert_allclose(xq / s[:, None], hf_act_quant(x), rtol=1e-5, atol=1e-6)


def test_golden_gemv_is_exact_and_dequantizes_to_the_float_reference():
    rng = np.random.default_rng(9)
    weights = rng.normal(0, 0.05, (64, 641)).astype(np.float32)
    x = rng.normal(0, 1, (3, 641)).astype(np.float32)
    w, w_scale = ternarize(weights)
    xq, x_scale = quantize_activations(x)
    y = golden_gemv(w, xq)
    assert y.dtype == np.int32 and y.shape == (3, 64)
    exact = xq.astype(np.float64) @ w.astype(np.float64).T  # exact in float64 at this size
    np.testing.assert_array_equal(y, exact)
    out = dequantize_output(y, x_scale, w_scale)
    reference = hf_act_quant(x).astype(np.float64) @ hf_weight_quant(weights).T
    np.testing.assert_allclose(out, reference, rtol=1e-4, atol=1e-4)
    # and the quantized layer still approximates the float layer it came from
    full = x.astype(np.float64) @ weights.T
    assert np.corrcoef(out.ravel(), full.ravel())[0, 1] > 0.9


def test_golden_gemv_extremes_and_bad_input():
    k = 6912
    y = golden_gemv(-np.ones((1, k), dtype=np.int8), np.full((1, k), -128, dtype=np.int8))
    assert y[0, 0] == 128 * k
    with pytest.raises(DseError, match="K: expected x with K = 4"):
        golden_gemv(np.zeros((2, 4), np.int8), np.zeros((1, 5), np.int8))
    with pytest.raises(DseError, match="int8"):
        golden_gemv(np.zeros((2, 4), np.int8), np.zeros((1, 4), np.int16))
    with pytest.raises(DseError, match="ternary"):
        golden_gemv(np.full((2, 4), 3, np.int8), np.zeros((1, 4), np.int8))
