"""Register map of the ternary_gemv overlay's AXI4-Lite control slave.

One home for the offsets, shared by the PYNQ driver, the emulated device and the RTL tests, so
software and RTL cannot drift apart: ``overlays/rtl/tgemv_ctrl.v`` holds the same offsets as
``localparam ADDR_*`` and a test compares the two. The map is HLS-like (control word at 0x00,
arguments from 0x10 at 8-byte steps) because PYNQ users and ``DefaultIP`` expect that.
"""

from __future__ import annotations

from dataclasses import dataclass

from dse.model.template import shipped_template

_TEMPLATE = shipped_template()

# -- control and arguments -----------------------------------------------------------------
CTRL = 0x00
N = 0x10
K = 0x18
M = 0x20
V = 0x28
STATUS = 0x30
# -- free-running counters (64-bit, lo/hi; they only move while the engine is busy) --------
BUSY_LO = 0x40
BUSY_HI = 0x44
STALL_IN_LO = 0x48
STALL_IN_HI = 0x4C
STALL_OUT_LO = 0x50
STALL_OUT_HI = 0x54
# -- read-only build configuration -----------------------------------------------------------
ID = 0x60
VERSION = 0x64
PE = 0x68
SIMD = 0x6C
PACKING = 0x70
VMAX = 0x74
KMAX = 0x78
STREAM_BITS = 0x7C
LATENCY = 0x80
OUT_DEPTH = 0x84

#: Address span of the slave (8 address bits).
SPAN = 0x100

# -- CTRL bits (HLS names) -------------------------------------------------------------------
AP_START = 1 << 0
AP_DONE = 1 << 1
AP_IDLE = 1 << 2
AP_READY = 1 << 3
#: STATUS bit: the last start was refused (N, K, M or V out of range).
STATUS_ERR = 1 << 0

#: ID register value: ASCII "TGMV".
ID_VALUE = 0x54474D56
#: The register map's version, the packing codes (the RTL's PACKING parameter) and the
#: per-pass fill/drain (the ``latency`` of ``engine_cycles``, read back from the LATENCY
#: register) come from the engine template (overlays/ternary_gemv.yaml), their one home.
VERSION_VALUE = _TEMPLATE.register_map_version
PACKING_CODES = _TEMPLATE.packing_codes
PIPELINE_LATENCY = _TEMPLATE.latency_cycles
#: Result FIFO depth (the RTL's OUT_DEPTH default, read back from the OUT_DEPTH register).
RESULT_FIFO_DEPTH = _TEMPLATE.out_depth

#: Every ADDR_* offset by its Verilog name suffix (for the RTL consistency test).
OFFSETS = {
    "CTRL": CTRL, "N": N, "K": K, "M": M, "V": V, "STATUS": STATUS,
    "BUSY_LO": BUSY_LO, "BUSY_HI": BUSY_HI, "STALL_IN_LO": STALL_IN_LO,
    "STALL_IN_HI": STALL_IN_HI, "STALL_OUT_LO": STALL_OUT_LO, "STALL_OUT_HI": STALL_OUT_HI,
    "ID": ID, "VERSION": VERSION, "PE": PE, "SIMD": SIMD, "PACKING": PACKING, "VMAX": VMAX,
    "KMAX": KMAX, "STREAM_BITS": STREAM_BITS, "LATENCY": LATENCY, "OUT_DEPTH": OUT_DEPTH,
}


@dataclass(frozen=True)
class EngineConfig:
    """What the overlay's read-only registers report about its build."""

    pe: int
    simd: int
    packing: str
    vmax: int
    kmax: int
    stream_bits: int
    latency: int = PIPELINE_LATENCY
    out_depth: int = RESULT_FIFO_DEPTH

    @property
    def lanes(self) -> int:
        return self.pe * self.simd

    @classmethod
    def from_words(cls, words: dict[int, int]) -> EngineConfig:
        """Decode the config words (offset -> value), checking the ID and version."""
        if words.get(ID) != ID_VALUE:
            raise ValueError(f"not a ternary_gemv engine: ID reads {words.get(ID, 0):#010x}, "
                             f"expected {ID_VALUE:#010x}")
        if words.get(VERSION) != VERSION_VALUE:
            raise ValueError(f"ternary_gemv register map version {words.get(VERSION)}, "
                             f"this driver speaks {VERSION_VALUE}")
        names = {v: k for k, v in PACKING_CODES.items()}
        code = words[PACKING]
        if code not in names:
            raise ValueError(f"ternary_gemv PACKING register reads {code}, expected one of "
                             f"{sorted(names)}")
        return cls(pe=words[PE], simd=words[SIMD], packing=names[code], vmax=words[VMAX],
                   kmax=words[KMAX], stream_bits=words[STREAM_BITS], latency=words[LATENCY],
                   out_depth=words[OUT_DEPTH])

    def mismatches(self, pe: int, simd: int, packing: str, vectors: int = 1,
                   max_k: int = 1, stream_bits: int | None = None) -> list[str]:
        """Why this engine cannot run a design point (empty when it can)."""
        out = []
        if (self.pe, self.simd) != (pe, simd):
            out.append(f"lanes {self.pe}x{self.simd}, plan wants {pe}x{simd}")
        if self.packing != packing:
            out.append(f"packing {self.packing}, plan wants {packing}")
        if vectors > self.vmax:
            out.append(f"holds {self.vmax} vectors per pass, plan wants {vectors}")
        if max_k > self.kmax:
            out.append(f"K up to {self.kmax}, plan needs {max_k}")
        if stream_bits is not None and stream_bits != self.stream_bits:
            out.append(f"{self.stream_bits}-bit stream, plan wants {stream_bits}")
        return out


CONFIG_OFFSETS = (ID, VERSION, PE, SIMD, PACKING, VMAX, KMAX, STREAM_BITS, LATENCY, OUT_DEPTH)
