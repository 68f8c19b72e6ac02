"""The overlay's AXI4-Stream byte layout, exactly as overlays/STREAM.md fixes it.

One function per direction, shared by the RTL testbench, the PYNQ driver and the simulator
backend, so the three cannot drift apart. Streams are returned as 2-D uint8 arrays of
(beats, bytes per beat): row ``b`` is beat ``b``, byte 0 of a row carries bits 0..7 of the
beat (little-endian). ``.ravel()`` is the DMA buffer.

Engine parameters: ``pe`` output rows in parallel, ``simd`` trits per row per cycle, the
build-time ``packing`` (``i2`` or ``base3``), ``vectors`` (V) activation vectors held per
weight pass, ``vpc`` vectors answered per clock (the build's VPC). Input stream width
``W = pe * RB`` bits with row-chunk bits ``RB = 2*simd`` (i2) or ``8*simd/5`` (base3, simd a
multiple of 5); output width ``32*pe*vpc`` bits.

One call (N x K weights, M vectors): for each pass p of up to V vectors, the pass's
activations (each vector's K int8 zero-padded to whole beats), then all weight tiles (row
fold outer, column fold inner, one beat each). Results: for each pass, for each row fold, for
each group of ``vpc`` vectors of the pass, one beat of ``vpc`` x ``pe`` int32 (vector
``g*vpc + l``'s rows at words ``l*pe ..``; zeros where the pass has no such vector). Beat
counts agree with ``dse.model.engine.engine_cycles(N, K, M, pe, simd, V, W/8, latency,
vpc)``.
"""

from __future__ import annotations

import math

import numpy as np

from dse.errors import DseError
from dse.packing.schemes import pack_base3, pack_i2


def _positive(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise DseError(f"stream: {field}: expected an integer >= 1, got {value!r}")
    return int(value)


def row_chunk_bits(simd: int, packing: str) -> int:
    """Bits of one row chunk RB: ``2*simd`` for i2, ``8*simd/5`` for base3.

    The widths are the engine template's (overlays/ternary_gemv.yaml ``packings``): one home
    for what the RTL decodes; this module lays the bits out.
    """
    from dse.model.template import shipped_template

    simd = _positive(simd, "simd")
    t = shipped_template()
    spec = t.packing(packing) if isinstance(packing, str) else None
    if spec is None:
        raise DseError(f"stream: packing: expected one of {', '.join(t.packing_codes)} (the "
                       f"engine's decoders), got {packing!r}")
    rb = t.row_chunk_bits(simd, packing)
    if rb is None:
        raise DseError(f"stream: simd: expected a multiple of {spec.group_weights} for "
                       f"{packing}, got {simd}")
    return rb


def stream_bits(pe: int, simd: int, packing: str) -> int:
    """Input stream width W = ``pe * RB`` bits; must be whole bytes (activation beats)."""
    w = _positive(pe, "pe") * row_chunk_bits(simd, packing)
    if w % 8:
        raise DseError(f"stream: pe x simd: expected a stream of whole bytes, got {w} bits "
                       f"(pe={pe}, simd={simd}, {packing})")
    return w


def _ternary_matrix(w: np.ndarray) -> np.ndarray:
    w = np.asarray(w)
    if w.ndim != 2:
        raise DseError(f"stream: weights shape: expected (N, K), got {w.shape}")
    return w


def weight_tiles(w: np.ndarray, pe: int, simd: int, packing: str) -> np.ndarray:
    """One pass of weight beats: (ceil(N/pe) * ceil(K/simd), W/8) uint8.

    Beat ``r * ceil(K/simd) + c`` is tile (row fold r, column fold c): row chunk i at bits
    ``[i*RB, (i+1)*RB)`` holds ``w[r*pe + i, c*simd + j]`` (j = 0..simd-1), zero outside
    the matrix. Flattened, a tile is one row of pe*simd trits in (i, j) order, which is
    exactly an i2 / base3 packed row, so the schemes' packers build it.
    """
    bits = stream_bits(pe, simd, packing)
    w = _ternary_matrix(w)
    n, k = w.shape
    rf, cf = math.ceil(n / pe), math.ceil(k / simd)
    padded = np.zeros((rf * pe, cf * simd), dtype=w.dtype)
    padded[:n, :k] = w
    tiles = padded.reshape(rf, pe, cf, simd).transpose(0, 2, 1, 3).reshape(rf * cf, pe * simd)
    packer = pack_i2 if packing == "i2" else pack_base3
    beats = packer(tiles, name="stream weights")
    assert beats.shape[1] == bits // 8
    return beats


def activation_beats(x_int8_vectors: np.ndarray, stream_bits: int) -> np.ndarray:
    """Activation beats of vectors (M, K) int8: (M * ceil(K / (W/8)), W/8) uint8.

    Each vector's K values in order, two's complement, zero-padded to whole beats; a 1-D
    input is one vector.
    """
    x = np.asarray(x_int8_vectors)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.dtype != np.int8:
        raise DseError(f"stream: activations: expected int8 (M, K), got {x.dtype} {x.shape}")
    width = _positive(stream_bits, "stream_bits")
    if width % 8:
        raise DseError(f"stream: stream_bits: expected a multiple of 8, got {width}")
    nbytes = width // 8
    m, k = x.shape
    per_vector = math.ceil(k / nbytes)
    out = np.zeros((m, per_vector * nbytes), dtype=np.uint8)
    out[:, :k] = x.view(np.uint8)
    return out.reshape(m * per_vector, nbytes)


def _passes(m: int, vectors: int) -> list[range]:
    v = _positive(vectors, "vectors")
    return [range(p, min(m, p + v)) for p in range(0, m, v)]


def call_input_stream(w: np.ndarray, x: np.ndarray, pe: int, simd: int, packing: str,
                      vectors: int) -> np.ndarray:
    """The whole input stream of one call: per pass, its activations then all weight tiles.

    ``x`` is (M, K) int8 (1-D: one vector); weights are re-sent for every pass.
    Returns (beats, W/8) uint8.
    """
    w = _ternary_matrix(w)
    x = np.asarray(x)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != w.shape[1]:
        raise DseError(f"stream: activations shape: expected (M, {w.shape[1]}) to match the "
                       f"weights' K, got {x.shape}")
    bits = stream_bits(pe, simd, packing)
    tiles = weight_tiles(w, pe, simd, packing)
    parts: list[np.ndarray] = []
    for p in _passes(x.shape[0], vectors):
        parts.append(activation_beats(x[p.start:p.stop], bits))
        parts.append(tiles)
    if not parts:
        return np.zeros((0, bits // 8), dtype=np.uint8)
    return np.concatenate(parts, axis=0)


def input_stream_beats(n: int, k: int, m: int, pe: int, simd: int, packing: str,
                       vectors: int) -> int:
    """Beats of ``call_input_stream`` without building it (DMA buffer sizing)."""
    nbytes = stream_bits(pe, simd, packing) // 8
    passes = len(_passes(m, vectors))
    return m * math.ceil(k / nbytes) + passes * math.ceil(n / pe) * math.ceil(k / simd)


def port_stall_cycles(beats: int, stream_bits: int, port_bits: int | None) -> int:
    """Cycles ``beats`` input beats of ``stream_bits`` wait on an HP port ``port_bits`` wide
    (64 bits on Zynq-7000, 128 on Zynq UltraScale+): each crosses it in ceil(stream / port)
    port cycles, one of which the engine spends on the beat anyway (0: the port is as wide as
    the stream, or its width is unknown)."""
    if not port_bits or stream_bits <= port_bits:
        return 0
    return beats * (math.ceil(stream_bits / port_bits) - 1)


def output_stream_beats(n: int, m: int, pe: int, vectors: int = 1, vpc: int = 1) -> int:
    """Beats of the output stream of one call: one per row fold per group of ``vpc`` vectors
    of each pass of up to ``vectors``."""
    rf = math.ceil(n / _positive(pe, "pe"))
    vpc = _positive(vpc, "vpc")
    return rf * sum(math.ceil(len(p) / vpc) for p in _passes(m, vectors))


def expected_output_stream(y: np.ndarray, pe: int, vectors: int, vpc: int = 1) -> np.ndarray:
    """The output beats the engine must send for results ``y`` (M x N int32).

    Per pass, per row fold r, per group g of ``vpc`` vectors of the pass: one beat with
    ``y[v, r*pe + i]`` at bits ``[32*(l*pe + i), +32)`` for vector ``v = g*vpc + l`` of the pass
    (0 for rows >= N and for lanes past the pass's last vector). Returns (beats,
    4*pe*vpc) uint8. TLAST, set on the last beat of the call, is a sideband signal and not in
    these bytes.
    """
    y = np.asarray(y)
    if y.ndim != 2:
        raise DseError(f"stream: results shape: expected (M, N), got {y.shape}")
    if y.size and (y.min() < -(2**31) or y.max() > 2**31 - 1):
        raise DseError("stream: results: expected values in the int32 range")
    pe = _positive(pe, "pe")
    vpc = _positive(vpc, "vpc")
    m, n = y.shape
    rf = math.ceil(n / pe)
    padded = np.zeros((m, rf * pe), dtype="<i4")
    padded[:, :n] = y
    beats = []
    for p in _passes(m, vectors):
        groups = math.ceil(len(p) / vpc)
        block = np.zeros((groups * vpc, rf, pe), dtype="<i4")
        block[:len(p)] = padded[p.start:p.stop].reshape(len(p), rf, pe)
        # (group, lane, fold, row) -> (fold, group, lane, row): a beat is a group's lanes
        block = block.reshape(groups, vpc, rf, pe).transpose(2, 0, 1, 3)
        beats.append(np.ascontiguousarray(block).reshape(rf * groups, vpc * pe))
    if not beats:
        return np.zeros((0, 4 * pe * vpc), dtype=np.uint8)
    return np.concatenate(beats, axis=0).view(np.uint8).reshape(-1, 4 * pe * vpc)


def parse_output_stream(data: object, n: int, m: int, pe: int, vectors: int, vpc: int = 1
                        ) -> np.ndarray:
    """Results (M x N int32) from the output stream bytes of one call.

    The inverse of ``expected_output_stream``; padding rows (>= N) and the lanes past a pass's
    last vector are dropped unchecked. ``data`` is bytes or a uint8/int32 array of exactly
    ``output_stream_beats * 4 * pe * vpc`` bytes, else a ``DseError`` giving expected and
    received byte counts.
    """
    pe = _positive(pe, "pe")
    vpc = _positive(vpc, "vpc")
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = np.frombuffer(data, dtype=np.uint8)
    else:
        arr = np.ascontiguousarray(data)
        raw = arr.view(np.uint8).reshape(-1)
    rf = math.ceil(n / pe)
    want = output_stream_beats(n, m, pe, vectors, vpc) * 4 * pe * vpc
    if raw.size != want:
        what = "truncated" if raw.size < want else "too long"
        raise DseError(f"stream: output stream for N={n}, M={m}, pe={pe}, vpc={vpc}: {what}, "
                       f"expected {want} bytes, got {raw.size}")
    words = raw.view("<i4")
    y = np.zeros((m, rf * pe), dtype=np.int32)
    at = 0
    for p in _passes(m, vectors):
        groups = math.ceil(len(p) / vpc)
        count = rf * groups * vpc * pe
        block = words[at:at + count].reshape(rf, groups, vpc, pe).transpose(1, 2, 0, 3)
        y[p.start:p.stop] = block.reshape(groups * vpc, rf * pe)[:len(p)]
        at += count
    return np.ascontiguousarray(y[:, :n])
