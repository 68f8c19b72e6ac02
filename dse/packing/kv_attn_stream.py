"""The attention unit's AXI4-Stream byte layout, exactly as dse/model/kv_attn.py fixes it.

One function per direction, shared by the RTL testbench and (later) the PYNQ driver, so they
cannot drift apart: streams are 2-D uint8 arrays of (beats, 16), byte 0 of a row is bits 0..7
of the beat (little-endian), ``.ravel()`` is the DMA buffer. The beat counts agree with
``dse.model.kv_attn.kv_attn_cycles``: the input beats are its first terms, and MODE 1's
output beats its ``kv_heads * head_dim``.
"""

from __future__ import annotations

import math

import numpy as np

from dse.errors import DseError
from dse.model.kv_attn import KV_ATTN_BEAT_BYTES, MODE_SCORES, MODE_XV

BEAT = KV_ATTN_BEAT_BYTES


def _beats(flat: np.ndarray) -> np.ndarray:
    """Bytes -> (beats, 16), zero-padded to whole beats; multi-byte elements little-endian
    (the unit's byte order whatever the host's)."""
    a = np.ascontiguousarray(flat)
    raw = a.astype(a.dtype.newbyteorder("<"), copy=False).view(np.uint8).ravel()
    out = np.zeros((math.ceil(raw.size / BEAT), BEAT), dtype=np.uint8)
    out.ravel()[:raw.size] = raw
    return out


def kv_attn_input_stream(mode: int, block: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """One call's input beats: the block (q int8 [H, G, D], or p uint16 [T, H, G] at two
    bytes each, 8 a beat) then the cache rows (K or V int8 [T, H, D]) in (t, h) order, as
    ``kv_attn_reference`` takes them."""
    if cache.dtype != np.int8 or cache.ndim != 3 or cache.shape[2] % BEAT:
        raise DseError(f"kv_attn stream: cache must be int8 [T, H, D] with D a multiple of "
                       f"{BEAT}, got {cache.dtype} {cache.shape}")
    t, h, d = cache.shape
    if mode == MODE_SCORES:
        if block.dtype != np.int8 or block.ndim != 3 or block.shape[0] != h \
                or block.shape[2] != d:
            raise DseError(f"kv_attn stream: q must be int8 [H={h}, G, D={d}], got "
                           f"{block.dtype} {block.shape}")
    elif mode == MODE_XV:
        if block.dtype != np.uint16 or block.ndim != 3 or block.shape[:2] != (t, h):
            raise DseError(f"kv_attn stream: p must be uint16 [T={t}, H={h}, G], got "
                           f"{block.dtype} {block.shape}")
    else:
        raise DseError(f"kv_attn stream: mode {mode}: 0 (scores) or 1 (x V)")
    return np.concatenate([_beats(block), _beats(cache)])


def kv_attn_output_beats(mode: int, positions: int, kv_heads: int, head_dim: int) -> int:
    """Output beats of one call: one per (t, h) in MODE 0, one per (h, d) in MODE 1."""
    return positions * kv_heads if mode == MODE_SCORES else kv_heads * head_dim


def parse_kv_attn_output(mode: int, data: object, positions: int, kv_heads: int, group: int,
                         head_dim: int) -> np.ndarray:
    """The output stream's bytes -> int32 ``[T, H, G]`` (MODE 0) or ``[H, D, G]`` (MODE 1)."""
    raw = np.frombuffer(bytes(data), dtype="<i4")
    beats = kv_attn_output_beats(mode, positions, kv_heads, head_dim)
    if raw.size != beats * group:
        raise DseError(f"kv_attn output: {raw.size * 4} bytes, expected {beats} beats of "
                       f"{group} int32")
    shape = (positions, kv_heads, group) if mode == MODE_SCORES else (kv_heads, head_dim, group)
    return raw.astype(np.int32).reshape(shape)
