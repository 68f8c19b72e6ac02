"""The overlay's stream layout (dse.packing.stream) against overlays/STREAM.md.

A bit-level reference engine, written from STREAM.md's text alone, consumes the input stream
that ``call_input_stream`` builds and emits output beats; they must equal
``expected_output_stream(golden_gemv(...))`` and parse back to the golden result."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dse.errors import DseError
from dse.model.engine import engine_cycles
from dse.packing.quant import golden_gemv
from dse.packing.stream import (
    activation_beats,
    call_input_stream,
    expected_output_stream,
    input_stream_beats,
    output_stream_beats,
    parse_output_stream,
    stream_bits,
    weight_tiles,
)


def decode_chunk(bits: np.ndarray, simd: int, packing: str) -> list[int]:
    """Trits of one row chunk (bits LSB first), as STREAM.md words it."""
    if packing == "i2":
        codes = [int(bits[2 * j]) + 2 * int(bits[2 * j + 1]) for j in range(simd)]
        return [{0: -1, 1: 0, 2: 1, 3: 0}[c] for c in codes]
    trits = []
    for b in range(simd // 5):
        value = sum(int(bits[8 * b + i]) << i for i in range(8))
        trits += [(value // 3**t) % 3 - 1 for t in range(5)]
    return trits


def reference_engine(stream: np.ndarray, n: int, k: int, m: int, pe: int, simd: int,
                     packing: str, vectors: int) -> bytes:
    """Consume the input beats in STREAM.md order; return the output stream's bytes."""
    width = stream.shape[1] * 8
    rb = width // pe
    beats = iter(stream)
    out = bytearray()
    for start in range(0, m, vectors):
        vs = range(start, min(m, start + vectors))
        acts = []
        for _ in vs:
            per_vec = math.ceil(k / (width // 8))
            raw = np.concatenate([next(beats) for _ in range(per_vec)]).view(np.int8)
            acts.append(raw[:k].astype(int))
        acc = np.zeros((len(vs), math.ceil(n / pe) * pe), dtype=np.int64)
        for r in range(math.ceil(n / pe)):
            for c in range(math.ceil(k / simd)):
                bits = np.unpackbits(next(beats), bitorder="little")
                for i in range(pe):
                    trits = decode_chunk(bits[i * rb:(i + 1) * rb], simd, packing)
                    for j, t in enumerate(trits):
                        if c * simd + j < k:
                            for vi in range(len(vs)):
                                acc[vi, r * pe + i] += t * acts[vi][c * simd + j]
        for r in range(math.ceil(n / pe)):
            for vi in range(len(vs)):
                out += acc[vi, r * pe:(r + 1) * pe].astype("<i4").tobytes()
    assert next(beats, None) is None, "stream longer than STREAM.md says"
    return bytes(out)


designs = st.one_of(
    st.tuples(st.sampled_from([1, 2, 3, 4, 8]), st.sampled_from([4, 8, 12, 16]),
              st.just("i2")),
    st.tuples(st.sampled_from([1, 2, 3, 4]), st.sampled_from([5, 10, 20]), st.just("base3")),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(design=designs, n=st.integers(1, 11), k=st.integers(1, 45), m=st.integers(1, 5),
       vectors=st.integers(1, 4), seed=st.integers(0, 2**32 - 1))
def test_reference_engine_agrees_with_the_golden_stream(design, n, k, m, vectors, seed):
    pe, simd, packing = design
    assume(packing != "i2" or (2 * pe * simd) % 8 == 0)  # else not whole bytes (rejected)
    rng = np.random.default_rng(seed)
    w = rng.integers(-1, 2, (n, k), dtype=np.int8)
    x = rng.integers(-128, 128, (m, k), dtype=np.int8)
    stream = call_input_stream(w, x, pe, simd, packing, vectors)
    assert stream.dtype == np.uint8
    assert stream.shape == (input_stream_beats(n, k, m, pe, simd, packing, vectors),
                            stream_bits(pe, simd, packing) // 8)
    y = golden_gemv(w, x)
    expected = expected_output_stream(y, pe, vectors)
    assert expected.shape == (output_stream_beats(n, m, pe), 4 * pe)
    got = reference_engine(stream, n, k, m, pe, simd, packing, vectors)
    assert got == expected.tobytes()
    np.testing.assert_array_equal(parse_output_stream(got, n, m, pe, vectors), y)


@pytest.mark.parametrize(("pe", "simd", "packing", "bits"), [
    (16, 32, "i2", 1024), (4, 8, "i2", 64), (1, 4, "i2", 8), (4, 20, "base3", 128),
    (8, 10, "base3", 128), (1, 5, "base3", 8),
])
def test_stream_bits(pe, simd, packing, bits):
    assert stream_bits(pe, simd, packing) == bits


@pytest.mark.parametrize(("pe", "simd", "packing", "msg"), [
    (4, 16, "base3", "multiple of 5"), (1, 2, "i2", "whole bytes"),
    (4, 8, "tl2", "expected one of i2, base3"), (0, 8, "i2", "pe: expected an integer"),
])
def test_stream_bits_rejects_what_the_engine_cannot_build(pe, simd, packing, msg):
    with pytest.raises(DseError, match=msg):
        stream_bits(pe, simd, packing)


def test_one_tile_by_hand():
    """PE=2, SIMD=4, i2: row chunk i at bits [8i, 8i+8) = byte i; code j at bits 2j."""
    w = np.array([[1, 0, -1, 1, 1], [0, 0, 0, -1, 1]], dtype=np.int8)
    tiles = weight_tiles(w, 2, 4, "i2")
    # tile (0,0): row0 codes 2,1,0,2 -> 2 | 1<<2 | 0<<4 | 2<<6 = 134; row1 1,1,1,0 -> 21
    # tile (0,1): row0 [1, pad...] -> 2 | 1<<2 | 1<<4 | 1<<6 = 86; row1 [1] -> 86
    assert tiles.tolist() == [[134, 21], [86, 86]]


def test_base3_tile_by_hand():
    """PE=1, SIMD=10: byte b holds trits 5b..5b+4 as sum (w+1) * 3**t."""
    w = np.array([[1, 1, 1, 1, 1, -1, -1, -1, -1, 0]], dtype=np.int8)
    assert weight_tiles(w, 1, 10, "base3").tolist() == [[242, 81]]


def test_activation_beats_pad_and_twos_complement():
    x = np.array([[-1, 2, -128, 127, 5]], dtype=np.int8)
    beats = activation_beats(x, 32)
    assert beats.tolist() == [[255, 2, 128, 127], [5, 0, 0, 0]]
    assert activation_beats(x[0], 64).shape == (1, 8)  # 1-D: one vector
    with pytest.raises(DseError, match="int8"):
        activation_beats(x.astype(np.int16), 32)


def test_call_stream_order_and_engine_cycles():
    rng = np.random.default_rng(3)
    n, k, m, pe, simd, v = 10, 70, 5, 4, 16, 2
    w = rng.integers(-1, 2, (n, k), dtype=np.int8)
    x = rng.integers(-128, 128, (m, k), dtype=np.int8)
    stream = call_input_stream(w, x, pe, simd, "i2", v)
    bits = stream_bits(pe, simd, "i2")
    tiles = weight_tiles(w, pe, simd, "i2")
    parts = []
    for p in range(0, m, v):
        parts += [activation_beats(x[p:p + v], bits), tiles]
    np.testing.assert_array_equal(stream, np.concatenate(parts))
    # per vector one weight pass when V = 1: beats == busy cycles without the drain latency
    one = call_input_stream(w, x, pe, simd, "i2", 1)
    assert len(one) == engine_cycles(n, k, m, pe, simd, 1, bits // 8, latency=0)


def test_output_stream_order_by_hand():
    """Per pass, per row fold, per vector of the pass: one beat of PE int32."""
    y = np.arange(15, dtype=np.int32).reshape(3, 5) - 7  # M=3, N=5
    beats = expected_output_stream(y, pe=2, vectors=2).view("<i4")
    assert beats.tolist() == [
        [-7, -6], [-2, -1],    # pass 0, fold 0: v0, v1
        [-5, -4], [0, 1],      # pass 0, fold 1
        [-3, 0], [2, 0],       # pass 0, fold 2 (row 5 is padding)
        [3, 4], [5, 6], [7, 0],  # pass 1 (v2): folds 0, 1, 2
    ]
    np.testing.assert_array_equal(parse_output_stream(beats, 5, 3, 2, 2), y)


def test_parse_output_stream_rejects_wrong_sizes():
    data = expected_output_stream(np.ones((2, 8), dtype=np.int32), 4, 1).tobytes()
    with pytest.raises(DseError, match="truncated, expected 64 bytes, got 60"):
        parse_output_stream(data[:-4], 8, 2, 4, 1)
    with pytest.raises(DseError, match="too long"):
        parse_output_stream(data + b"\0" * 16, 8, 2, 4, 1)


def test_non_ternary_weights_are_rejected():
    with pytest.raises(DseError, match="expected a ternary weight"):
        weight_tiles(np.full((2, 4), 2, dtype=np.int8), 2, 4, "i2")
