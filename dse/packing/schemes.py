"""Bit-exact packers for every ternary scheme the cost model prices (``dse.model.packing``).

One home per layout: the cost model counts bytes with ``Packing.matrix_bytes``, and the
functions here produce exactly that many bytes, so a priced design and a packed file never
disagree. A weight matrix is row-major N x K (K is the reduction dimension, the order the
engine consumes); each row is packed on its own, padded with ternary zeros up to whole groups,
then with zero bits up to whole bytes. ``pack`` returns an (N, row_bytes) uint8 array;
``.ravel()`` is the byte string of the matrix.

Layouts (``q = w + 1`` is a weight's code in {0, 1, 2}; bit 0 is the least significant bit):

- ``i2``: 4 weights per byte along K; weight ``4b + j`` of a row is byte ``b``, bits
  ``[2j, 2j+2)``, value ``q``. Row bytes ``ceil(K/4)``.
- ``base3``: 5 weights per byte along K; byte ``b`` = ``sum_t q[5b+t] * 3**t`` (t = 0..4,
  0..242), as overlays/STREAM.md. Row bytes ``ceil(K/5)``.
- ``tl2``: triples ``(w0, w1, w2) = w[3g : 3g+3]`` -> ``t = 9*w0 + 3*w1 + w2`` in [-13, 13],
  stored as a 5-bit field ``|t| | (t < 0) << 4`` (4-bit magnitude, sign in bit 4; "-0" is never
  written); field ``g`` occupies row bits ``[5g, 5g+5)``, fields packed LSB-first (row bit
  ``i`` is bit ``i % 8`` of byte ``i // 8``). Row bytes ``ceil(5*ceil(K/3)/8)``.
- ``tq1_0`` (llama.cpp ``block_tq1_0``, 54 B per 256 weights): in block-local weight indices,
  bytes 0..31 take weights ``i + 32t`` (t = 0..4) of weights 0..159, bytes 32..47 take weights
  ``160 + i + 16t`` (t = 0..4), bytes 48..51 take weights ``240 + i + 4t`` (t = 0..3); the digits
  make ``v = sum_t q_t * 3**(4-t)`` and the byte is ``ceil(v * 256 / 243)`` (a base-3 fixed-point
  fraction: digit t is ``((byte * 3**t) mod 256) * 3 >> 8``); bytes 52..53 are the block
  scale ``d`` as little-endian fp16.
- ``tq2_0`` (llama.cpp ``block_tq2_0``, 66 B per 256 weights): bytes ``32h + i`` (h = 0..1,
  i = 0..31) hold weights ``128h + 32t + i`` at bits ``[2t, 2t+2)`` (t = 0..3), value ``q``;
  bytes 64..65 are ``d`` as fp16.
- ``bitplane``: per 8 weights two bytes: first a mask byte (bit j set when weight ``8g + j`` is
  nonzero), then a sign byte (bit j set when it is negative). Row bytes ``2*ceil(K/8)``.

The TQ formats carry a scale in band: ``d`` is ``fp16(scale)`` for a block holding a nonzero
weight and 0 for an all-zero block, which is exactly what llama.cpp (and ``gguf.quants``)
write for the float tensor ``scale * w``, so the bytes match theirs. Other schemes ignore
``scale``: their scale is per tensor and travels beside the data.

Unpackers are strict: a code no packer writes (i2/tq2_0 code 3, base3 byte > 242, a tl2
magnitude > 13 or "-0", a sign bit without its mask bit) is a ``DseError``, as is a buffer of
the wrong size. TQ1_0 defines every byte, so it is never rejected on content.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dse.errors import DseError
from dse.model.packing import PACKINGS

#: llama.cpp's super-block size (QK_K) for TQ1_0 / TQ2_0.
QK_K = 256
_LE_U16, _LE_U32, _LE_U64 = np.dtype("<u2"), np.dtype("<u4"), np.dtype("<u8")


# -- shared checks ---------------------------------------------------------------------------

def ternary_codes(w: np.ndarray, group: int, name: str = "weights") -> tuple[np.ndarray, int]:
    """Codes ``w + 1`` (uint8, N x K padded to whole ``group``s with code 1) and K.

    Why codes: every scheme stores ``w + 1`` or derives from it, and one pass both copies,
    pads and makes the values checkable (anything but {0, 1, 2} is not ternary).
    """
    w = np.asarray(w)
    if w.ndim != 2:
        raise DseError(f"{name}: shape: expected a 2-D (N, K) weight matrix, got {w.shape}")
    n, k = w.shape
    if w.dtype != np.int8:
        bad = ~((w == -1) | (w == 0) | (w == 1))
        if bad.any():
            _raise_not_ternary(w, bad, name)
        w = w.astype(np.int8)
    codes = np.ones((n, math.ceil(k / group) * group), dtype=np.uint8)
    np.add(w.view(np.uint8), np.uint8(1), out=codes[:, :k])
    if codes.size and codes.max() > 2:
        _raise_not_ternary(w, codes[:, :k] > 2, name)
    return codes, k


def _raise_not_ternary(w: np.ndarray, bad: np.ndarray, name: str) -> None:
    r, c = np.unravel_index(int(np.argmax(bad)), bad.shape)
    raise DseError(f"{name}: value at [{r}, {c}]: expected a ternary weight (-1, 0 or 1), "
                   f"got {w[r, c].item()!r}")


def packed_rows(data: object, scheme: str, n: int, k: int, name: str) -> np.ndarray:
    """The packed buffer as (N, row_bytes) uint8, after checking its size exactly."""
    if n < 0 or k < 0:
        raise DseError(f"{name}: shape: expected N, K >= 0, got {n} x {k}")
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = np.frombuffer(data, dtype=np.uint8)
    arr = np.asarray(data)
    if arr.dtype != np.uint8:
        raise DseError(f"{name}: packed {scheme} data: expected uint8 bytes, got {arr.dtype}")
    rb = PACKINGS[scheme].row_bytes(k)
    want = n * rb
    if arr.size != want:
        what = "truncated" if arr.size < want else "too long"
        raise DseError(f"{name}: packed {scheme} data for {n} x {k}: {what}, expected "
                       f"{want} bytes, got {arr.size}")
    return np.ascontiguousarray(arr).reshape(n, rb)


def _check_codes(bad: np.ndarray, name: str, scheme: str, what: str, unit: str = "byte"
                 ) -> None:
    """Reject units (bytes, or tl2 fields) no packer writes; ``bad`` is (N, units)."""
    if bad.any():
        r, c = np.unravel_index(int(np.argmax(bad)), bad.shape)
        raise DseError(f"{name}: packed {scheme} data row {r} {unit} {c}: expected {what}")


def _groups(k: int, scheme: str) -> int:
    return math.ceil(k / PACKINGS[scheme].group_weights)


# -- i2 --------------------------------------------------------------------------------------

def _i2_lut() -> np.ndarray:
    b = np.arange(256, dtype=np.uint32)
    trits = np.stack([((b >> (2 * j)) & 3).astype(np.int16) - 1 for j in range(4)], axis=1)
    return np.ascontiguousarray(trits.astype(np.int8)).view(np.uint32).ravel()


_I2_LUT = _i2_lut()


def pack_i2(w: np.ndarray, *, name: str = "weights") -> np.ndarray:
    """2-bit codes, 4 per byte along K (weight j of a group at bits 2j)."""
    codes, _ = ternary_codes(w, 4, name)
    n = codes.shape[0]
    u = codes.view(_LE_U32)  # 4 codes per word, code j at bits 8j
    out = u >> 6
    out |= u
    out |= u >> 12
    out |= u >> 18
    return out.astype(np.uint8).reshape(n, -1)


def unpack_i2(data: object, n: int, k: int, *, name: str = "weights") -> np.ndarray:
    """Inverse of ``pack_i2``; code 3 (never written) is rejected."""
    rows = packed_rows(data, "i2", n, k, name)
    _check_codes(rows & (rows >> 1) & 0x55, name, "i2", "2-bit codes 0..2, got code 3")
    return np.ascontiguousarray(_I2_LUT[rows].view(np.int8)[:, :k])


# -- base3 -----------------------------------------------------------------------------------

def _base3_lut() -> np.ndarray:
    b = np.arange(256, dtype=np.int64)
    t = np.zeros((256, 8), dtype=np.int8)
    for j in range(5):
        t[:, j] = (b // 3**j) % 3 - 1
    return t.view(np.uint64).ravel()


_BASE3_LUT = _base3_lut()


def pack_base3(w: np.ndarray, *, name: str = "weights") -> np.ndarray:
    """5 trits per byte along K, ``byte = sum_t (w[5b+t] + 1) * 3**t``."""
    codes, _ = ternary_codes(w, 5, name)
    codes = codes.reshape(codes.shape[0], -1, 5)
    out = codes[:, :, 4] * np.uint8(3)
    for t in (3, 2, 1):
        out += codes[:, :, t]
        out *= np.uint8(3)
    out += codes[:, :, 0]
    return out


def unpack_base3(data: object, n: int, k: int, *, name: str = "weights") -> np.ndarray:
    """Inverse of ``pack_base3``; bytes above 242 (never written) are rejected."""
    rows = packed_rows(data, "base3", n, k, name)
    _check_codes(rows > 242, name, "base3", "bytes 0..242")
    eight = _BASE3_LUT[rows].view(np.int8).reshape(n, -1, 8)
    return np.ascontiguousarray(eight[:, :, :5].reshape(n, -1)[:, :k])


# -- tl2 -------------------------------------------------------------------------------------

def _tl2_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = np.arange(27) - 13  # index 9q0 + 3q1 + q2 -> t = 9w0 + 3w1 + w2
    enc = (np.abs(t) | ((t < 0) << 4)).astype(np.uint8)
    dec = np.zeros((32, 4), dtype=np.int8)
    bad = np.ones(32, dtype=bool)
    for idx, field in enumerate(enc):
        dec[field, :3] = (idx // 9 - 1, idx // 3 % 3 - 1, idx % 3 - 1)
        bad[field] = False
    return enc, np.ascontiguousarray(dec).view(np.uint32).ravel(), bad


_TL2_ENC, _TL2_DEC, _TL2_BAD = _tl2_tables()


def pack_tl2(w: np.ndarray, *, name: str = "weights") -> np.ndarray:
    """Triples as sign + 4-bit magnitude of ``9w0 + 3w1 + w2``, 5-bit fields LSB-first."""
    codes, k = ternary_codes(w, 3, name)
    n, g = codes.shape[0], codes.shape[1] // 3
    codes = codes.reshape(n, g, 3)
    idx = codes[:, :, 0] * np.uint8(9)
    idx += codes[:, :, 1] * np.uint8(3)
    idx += codes[:, :, 2]
    g8 = math.ceil(g / 8)
    fields = np.zeros((n, 8 * g8), dtype=np.uint8)
    np.take(_TL2_ENC, idx, out=fields[:, :g])
    # Merge neighbours twice as wide each step: 2x5 -> 10 bits, 2x10 -> 20, 2x20 -> 40.
    u16 = fields.view(_LE_U16)
    p = (u16 & 0x1F) | ((u16 >> 3) & 0x3E0)
    u32 = p.view(_LE_U32)
    q = (u32 & 0x3FF) | ((u32 >> 6) & 0xFFC00)
    u64 = q.view(_LE_U64)
    r = (u64 & 0xFFFFF) | ((u64 >> 12) & 0xFFFFF00000)
    five = r.view(np.uint8).reshape(n, g8, 8)[:, :, :5].reshape(n, 5 * g8)
    return np.ascontiguousarray(five[:, :PACKINGS["tl2"].row_bytes(k)])


def unpack_tl2(data: object, n: int, k: int, *, name: str = "weights") -> np.ndarray:
    """Inverse of ``pack_tl2``; magnitudes above 13 and "-0" (never written) are rejected."""
    rows = packed_rows(data, "tl2", n, k, name)
    g = _groups(k, "tl2")
    g8 = math.ceil(g / 8)
    five = np.zeros((n, 5 * g8), dtype=np.uint8)
    five[:, : rows.shape[1]] = rows
    eight = np.zeros((n, g8, 8), dtype=np.uint8)
    eight[:, :, :5] = five.reshape(n, g8, 5)
    r = eight.view(_LE_U64)
    q = (r & 0xFFFFF) | ((r & 0xFFFFF00000) << 12)
    q32 = q.view(_LE_U32)
    p = (q32 & 0x3FF) | ((q32 & 0xFFC00) << 6)
    p16 = p.view(_LE_U16)
    fields = ((p16 & 0x1F) | ((p16 & 0x3E0) << 3)).view(np.uint8).reshape(n, 8 * g8)[:, :g]
    _check_codes(_TL2_BAD[fields], name, "tl2", "5-bit fields with magnitude <= 13 (no -0)",
                 unit="field")
    trits = _TL2_DEC[fields].view(np.int8).reshape(n, g, 4)[:, :, :3].reshape(n, 3 * g)
    return np.ascontiguousarray(trits[:, :k])


# -- llama.cpp TQ1_0 / TQ2_0 -----------------------------------------------------------------

def _block_scale_bytes(codes: np.ndarray, scale: float, scheme: str, name: str) -> np.ndarray:
    """fp16 ``d`` per block (N, blocks, 2): ``scale`` where a block has a nonzero weight."""
    s = float(scale)
    with np.errstate(over="ignore", invalid="ignore"):
        d = np.float32(s).astype(np.float16)
    if not (math.isfinite(s) and s >= 0 and np.isfinite(d)):
        raise DseError(f"{name}: scale: expected a finite value >= 0 within fp16 range for "
                       f"{scheme}, got {scale!r}")
    nonzero = (codes != 1).any(axis=-1)
    return np.where(nonzero, d, np.float16(0)).astype("<f2").view(np.uint8).reshape(
        *nonzero.shape, 2)


_TQ1_POW = np.array([1, 3, 9, 27, 81], dtype=np.uint8)
_TQ1_ENC = ((np.arange(243, dtype=np.uint32) * 256 + 242) // 243).astype(np.uint8)


def _tq1_dec_lut() -> np.ndarray:
    b = np.arange(256, dtype=np.uint32)
    t = np.zeros((256, 8), dtype=np.int8)
    for j in range(5):
        t[:, j] = (((b * 3**j) & 0xFF) * 3 >> 8).astype(np.int8) - 1
    return t.view(np.uint64).ravel()


_TQ1_DEC = _tq1_dec_lut()


def _horner(chunks: np.ndarray) -> np.ndarray:
    """``sum_t chunks[..., t, :] * 3**(T-1-t)`` in uint8 (most significant digit first)."""
    v = chunks[..., 0, :].copy()
    for t in range(1, chunks.shape[-2]):
        v *= np.uint8(3)
        v += chunks[..., t, :]
    return v


def pack_tq1_0(w: np.ndarray, scale: float = 1.0, *, name: str = "weights") -> np.ndarray:
    """llama.cpp ``block_tq1_0``: 52 B of base-3 fractions + fp16 ``d`` per 256 weights."""
    codes, _ = ternary_codes(w, QK_K, name)
    n, nb = codes.shape[0], codes.shape[1] // QK_K
    codes = codes.reshape(n, nb, QK_K)
    out = np.empty((n, nb, 54), dtype=np.uint8)
    v0 = _horner(codes[:, :, :160].reshape(n, nb, 5, 32))
    v1 = _horner(codes[:, :, 160:240].reshape(n, nb, 5, 16))
    v2 = _horner(codes[:, :, 240:].reshape(n, nb, 4, 4)) * np.uint8(3)
    np.take(_TQ1_ENC, v0, out=out[:, :, :32])
    np.take(_TQ1_ENC, v1, out=out[:, :, 32:48])
    np.take(_TQ1_ENC, v2, out=out[:, :, 48:52])
    out[:, :, 52:] = _block_scale_bytes(codes, scale, "tq1_0", name)
    return out.reshape(n, nb * 54)


def unpack_tq1_0(data: object, n: int, k: int, *, name: str = "weights") -> np.ndarray:
    """Inverse of ``pack_tq1_0`` (the trits; ``block_scales`` gives the ``d`` values)."""
    rows = packed_rows(data, "tq1_0", n, k, name)
    nb = _groups(k, "tq1_0")
    blocks = rows.reshape(n, nb, 54)
    digits = _TQ1_DEC[blocks[:, :, :52]].view(np.int8).reshape(n, nb, 52, 8)
    # digits[..., byte, t] is weight (part start + t * part width + byte) of the block.
    out = np.empty((n, nb, QK_K), dtype=np.int8)
    out[:, :, :160] = digits[:, :, :32, :5].transpose(0, 1, 3, 2).reshape(n, nb, 160)
    out[:, :, 160:240] = digits[:, :, 32:48, :5].transpose(0, 1, 3, 2).reshape(n, nb, 80)
    out[:, :, 240:] = digits[:, :, 48:52, :4].transpose(0, 1, 3, 2).reshape(n, nb, 16)
    return np.ascontiguousarray(out.reshape(n, nb * QK_K)[:, :k])


def pack_tq2_0(w: np.ndarray, scale: float = 1.0, *, name: str = "weights") -> np.ndarray:
    """llama.cpp ``block_tq2_0``: 64 B of 2-bit codes + fp16 ``d`` per 256 weights."""
    codes, _ = ternary_codes(w, QK_K, name)
    n, nb = codes.shape[0], codes.shape[1] // QK_K
    codes = codes.reshape(n, nb, QK_K)
    # Codes of one byte are 32 weights apart: OR four 32-byte planes, shifted, 8 bytes a word.
    planes = codes.view(_LE_U64).reshape(n, nb, 2, 4, 4)
    qs = planes[:, :, :, 0] | (planes[:, :, :, 1] << 2)
    qs |= planes[:, :, :, 2] << 4
    qs |= planes[:, :, :, 3] << 6
    out = np.empty((n, nb, 66), dtype=np.uint8)
    out[:, :, :64] = qs.view(np.uint8).reshape(n, nb, 64)
    out[:, :, 64:] = _block_scale_bytes(codes, scale, "tq2_0", name)
    return out.reshape(n, nb * 66)


def unpack_tq2_0(data: object, n: int, k: int, *, name: str = "weights") -> np.ndarray:
    """Inverse of ``pack_tq2_0``; code 3 (never written) is rejected."""
    rows = packed_rows(data, "tq2_0", n, k, name)
    nb = _groups(k, "tq2_0")
    bad = (rows & (rows >> 1) & 0x55).reshape(n, nb, 66)
    bad[:, :, 64:] = 0  # the fp16 scale bytes are not codes
    _check_codes(bad.reshape(n, -1), name, "tq2_0", "2-bit codes 0..2, got code 3")
    qs = np.ascontiguousarray(rows.reshape(n, nb, 66)[:, :, :64])
    words = qs.view(_LE_U64).reshape(n, nb, 2, 1, 4)
    codes = (words >> np.array([0, 2, 4, 6], dtype=np.uint64).reshape(4, 1)) & 0x0303030303030303
    trits = codes.view(np.int8) - np.int8(1)
    return np.ascontiguousarray(trits.reshape(n, nb * QK_K)[:, :k])


def block_scales(scheme: str, data: object, n: int, k: int, *,
                 name: str = "weights") -> np.ndarray:
    """Per-block fp16 scales ``d`` of a TQ1_0/TQ2_0 matrix, float32 (N, blocks).

    Weight ``[r, c]`` dequantizes to ``d[r, c // 256] * w[r, c]``; llama.cpp stores 0 for an
    all-zero block, so a per-tensor scale is the common value of the nonzero entries.
    """
    size = {"tq1_0": 54, "tq2_0": 66}.get(scheme)
    if size is None:
        raise DseError(f"{name}: scheme: expected tq1_0 or tq2_0 for block scales, "
                       f"got {scheme!r}")
    rows = packed_rows(data, scheme, n, k, name)
    nb = _groups(k, scheme)
    d = np.ascontiguousarray(rows.reshape(n, nb, size)[:, :, size - 2:])
    return d.view("<f2").reshape(n, nb).astype(np.float32)


# -- bit-planes ------------------------------------------------------------------------------

def pack_bitplane(w: np.ndarray, *, name: str = "weights") -> np.ndarray:
    """Per 8 weights a nonzero-mask byte then a negative-sign byte (weight j at bit j)."""
    codes, _ = ternary_codes(w, 8, name)
    n, g = codes.shape[0], codes.shape[1] // 8
    out = np.empty((n, g, 2), dtype=np.uint8)
    out[:, :, 0] = np.packbits(codes != 1, axis=-1, bitorder="little")
    out[:, :, 1] = np.packbits(codes == 0, axis=-1, bitorder="little")
    return out.reshape(n, 2 * g)


def unpack_bitplane(data: object, n: int, k: int, *, name: str = "weights") -> np.ndarray:
    """Inverse of ``pack_bitplane``; a sign bit without its mask bit is rejected."""
    rows = packed_rows(data, "bitplane", n, k, name)
    planes = rows.reshape(n, -1, 2)
    mask, sign = planes[:, :, 0], planes[:, :, 1]
    _check_codes(sign & ~mask, name, "bitplane", "sign bits only where the mask bit is set")
    m = np.unpackbits(mask, axis=-1, count=k, bitorder="little").view(np.int8)
    s = np.unpackbits(sign, axis=-1, count=k, bitorder="little").view(np.int8)
    m -= s << 1
    return m


# -- registry --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scheme:
    """One packer pair. ``scaled`` schemes store a block scale in band (pack takes ``scale``)."""

    name: str
    pack: Callable[..., np.ndarray]
    unpack: Callable[..., np.ndarray]
    scaled: bool = False


SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in (
        Scheme("i2", pack_i2, unpack_i2),
        Scheme("base3", pack_base3, unpack_base3),
        Scheme("tl2", pack_tl2, unpack_tl2),
        Scheme("tq1_0", pack_tq1_0, unpack_tq1_0, scaled=True),
        Scheme("tq2_0", pack_tq2_0, unpack_tq2_0, scaled=True),
        Scheme("bitplane", pack_bitplane, unpack_bitplane),
    )
}


def get_scheme(scheme: str, where: str = "packing") -> Scheme:
    """Look a packer up by the cost model's scheme name."""
    try:
        return SCHEMES[scheme]
    except KeyError:
        raise DseError(f"{where}: expected one of {', '.join(SCHEMES)}, got {scheme!r}") from None


def pack(scheme: str, w: np.ndarray, *, scale: float = 1.0, name: str = "weights") -> np.ndarray:
    """Pack a ternary N x K matrix row by row: (N, ``row_bytes(K)``) uint8.

    ``scale`` (W_float = scale * w) is written in band by tq1_0/tq2_0 and ignored by the
    others. ``name`` is the tensor named in errors.
    """
    s = get_scheme(scheme)
    if s.scaled:
        return s.pack(w, scale, name=name)
    return s.pack(w, name=name)


def unpack(scheme: str, data: object, n: int, k: int, *, name: str = "weights") -> np.ndarray:
    """Unpack ``matrix_bytes(n, k)`` bytes of ``scheme`` into an int8 N x K ternary matrix."""
    return get_scheme(scheme).unpack(data, n, k, name=name)
