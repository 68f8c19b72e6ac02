"""Ternary packing schemes as data.

Each scheme packs a row of K weights (the reduction dimension, the order the engine consumes)
into groups of ``group_weights`` weights costing ``group_bits`` bits each, block overhead (such
as llama.cpp's fp16 block scale) included. A row is padded up to whole groups, and a packed
row is padded up to whole bytes, so a row of 6912 weights costs ``ceil(6912/5)`` bytes in
base-3 and a row of 2560 costs ``ceil(2560/3) * 5 / 8`` rounded up in TL2.

The bit-exact packers live in ``dse.packing`` (one home per layout); this module only prices
them. Decoder costs are per lane (one weight consumed per cycle) and per PE (block scaling).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dse.errors import DseError


@dataclass(frozen=True)
class Packing:
    """One ternary weight encoding, as the cost model sees it."""

    name: str
    label: str
    group_weights: int
    group_bits: int
    #: LUTs of the decoder per lane (turning packed bits into a {-1,0,+1} select).
    decoder_lut_per_lane: float
    #: FFs of the decoder per lane (pipeline register of the decoded trit).
    decoder_ff_per_lane: float
    #: Per-PE cost of per-block scales (0 when the scale is per tensor and applied on the PS).
    block_scale_dsp_per_pe: int
    block_scale_lut_per_pe: float
    source: str

    @property
    def bits_per_weight(self) -> float:
        """Exact bits per weight of a full group, block overhead included."""
        return self.group_bits / self.group_weights

    def row_bits(self, k: int) -> int:
        """Bits of one packed row of ``k`` weights: whole groups (padding included)."""
        return math.ceil(k / self.group_weights) * self.group_bits

    def row_bytes(self, k: int) -> int:
        """Bytes of one packed row: whole groups, then whole bytes."""
        return math.ceil(self.row_bits(k) / 8)

    def matrix_bytes(self, n: int, k: int) -> int:
        """Bytes of an N x K weight matrix packed row by row."""
        return n * self.row_bytes(k)

    def padded_k(self, k: int) -> int:
        """K rounded up to whole groups (the weights the decoder actually emits)."""
        return math.ceil(k / self.group_weights) * self.group_weights


PACKINGS: dict[str, Packing] = {
    p.name: p
    for p in (
        Packing(
            "i2", "2-bit codes (I2_S / HF packed)", 4, 8, 0.0, 0.0, 0, 0.0,
            "2-bit codes {-1,0,1}->{0,1,2}, 4 per byte: transformers integrations/bitnet.py; "
            "bitnet.cpp I2_S. Decoding is wiring: the two code bits drive the lane's select.",
        ),
        Packing(
            "base3", "pure base-3 (5 trits/byte)", 5, 8, 11.6, 0.0, 0, 0.0,
            "byte = sum (w_j+1)*3^j, j=0..4 (facts.md section 2). Decoder: a 256x10-bit LUT-ROM "
            "per 5 lanes. Yosys xcup synthesis of the overlay's base3 builds (4x20..16x40, "
            "bench/results/synth.json) fits 25.8 LUT per lane against i2's 14.2: 11.6 LUT per "
            "lane of decoder, no extra FF (the estimate was 6 LUT, 2 FF).",
        ),
        Packing(
            "tl2", "TL2-style (5 bits per 3 weights)", 3, 5, 2.0, 2.0, 0, 0.0,
            "triples -> 9w0+3w1+w2 as sign + 4-bit magnitude: bitnet.cpp preprocess_weights_tl2. "
            "Decoder: 6 outputs of 5 inputs = 6 LUT6 per 3 lanes.",
        ),
        Packing(
            "tq1_0", "llama.cpp TQ1_0 (1.6875 b/w)", 256, 54 * 8, 6.0, 2.0, 1, 60.0,
            "256-weight block: 48 B at 5 trits/byte + 4 B at 4 trits/byte + fp16 scale = 54 B "
            "(ggml-common.h). Per-block fp16 scale: one DSP multiply per PE per block.",
        ),
        Packing(
            "tq2_0", "llama.cpp TQ2_0 (2.0625 b/w)", 256, 66 * 8, 0.0, 0.0, 1, 60.0,
            "256-weight block: 64 B of 2-bit codes + fp16 scale = 66 B (ggml-common.h). "
            "Per-block fp16 scale: one DSP multiply per PE per block.",
        ),
        Packing(
            "bitplane", "bit-planes (nonzero mask + sign)", 8, 16, 0.5, 0.0, 0, 0.0,
            "two 1-bit planes per 8 weights (facts.md section 2); the decoder re-interleaves the "
            "planes (~0.5 LUT/lane). Zero-group skipping is not modelled.",
        ),
    )
}

#: The lm_head is not ternary in BitNet; its dense formats for an optional DSP head unit.
DENSE_BYTES_PER_WEIGHT = {"bf16": 2, "int8": 1}


def get_packing(name: str, where: str = "packing") -> Packing:
    """Look a scheme up by name, with a one-line error listing the known ones."""
    try:
        return PACKINGS[name]
    except KeyError:
        known = ", ".join(PACKINGS)
        raise DseError(f"{where}: expected one of {known}, got {name!r}") from None
