"""Register map of the attention unit kv_attn's AXI4-Lite control slave.

One home for the offsets, as dse/hw/regs.py is for the engine: ``overlays/rtl/kvattn_ctrl.v``
holds the same offsets as ``localparam ADDR_*`` and a test compares the two. The control word,
the counters and their offsets are the engine's (same driver code polls and reads both); the
arguments are MODE, T (positions) and H (kv heads).
"""

from __future__ import annotations

from dataclasses import dataclass

# The control word, status, counters and identity registers sit where the engine's do (the
# same driver and emulator code polls and reads both): taken from its map, not restated.
from dse.hw.regs import (  # noqa: F401
    AP_DONE,
    AP_IDLE,
    AP_READY,
    AP_START,
    BUSY_HI,
    BUSY_LO,
    CTRL,
    ID,
    STALL_IN_HI,
    STALL_IN_LO,
    STALL_OUT_HI,
    STALL_OUT_LO,
    STATUS,
    STATUS_ERR,
    VERSION,
)
from dse.model.template import shipped_template

_ATTENTION = shipped_template().attention

MODE = 0x10
T = 0x18
H = 0x20
G = 0x68
D = 0x6C
HMAX = 0x70
TMAX = 0x74
STREAM_BITS = 0x78
LATENCY = 0x7C
OUT_DEPTH = 0x80

SPAN = 0x100
#: ID register value: ASCII "KVAT".
ID_VALUE = 0x4B564154
#: The register map's version and the per-call fill/drain (the ``latency`` of
#: ``kv_attn_cycles``, read back from the LATENCY register) come from the engine template's
#: ``attention:`` section (overlays/ternary_gemv.yaml), their one home (None: the shipped
#: template has no attention unit).
VERSION_VALUE: int | None = _ATTENTION.register_map_version if _ATTENTION else None
PIPELINE_LATENCY: int | None = _ATTENTION.latency_cycles if _ATTENTION else None
#: What the version this driver speaks changed (for the one-line refusal of another one).
VERSION_NOTE = "uint16 p in MODE 1; version 1 streamed uint8 p"

#: Every ADDR_* offset by its Verilog name suffix (for the RTL consistency test).
OFFSETS = {
    "CTRL": CTRL, "MODE": MODE, "T": T, "H": H, "STATUS": STATUS,
    "BUSY_LO": BUSY_LO, "BUSY_HI": BUSY_HI, "STALL_IN_LO": STALL_IN_LO,
    "STALL_IN_HI": STALL_IN_HI, "STALL_OUT_LO": STALL_OUT_LO, "STALL_OUT_HI": STALL_OUT_HI,
    "ID": ID, "VERSION": VERSION, "G": G, "D": D, "HMAX": HMAX, "TMAX": TMAX,
    "STREAM_BITS": STREAM_BITS, "LATENCY": LATENCY, "OUT_DEPTH": OUT_DEPTH,
}
CONFIG_OFFSETS = (ID, VERSION, G, D, HMAX, TMAX, STREAM_BITS, LATENCY, OUT_DEPTH)


@dataclass(frozen=True)
class AttnConfig:
    """What the unit's read-only registers report about its build."""

    g: int
    d: int
    hmax: int
    tmax: int
    stream_bits: int
    latency: int
    out_depth: int

    @classmethod
    def from_words(cls, words: dict[int, int]) -> AttnConfig:
        """Decode the config words (offset -> value), checking the ID and version."""
        if words.get(ID) != ID_VALUE:
            raise ValueError(f"not a kv_attn unit: ID reads {words.get(ID, 0):#010x}, "
                             f"expected {ID_VALUE:#010x}")
        if words.get(VERSION) != VERSION_VALUE:
            # one line: a version-1 bitstream takes uint8 p and would return wrong sums
            raise ValueError(f"kv_attn register map version {words.get(VERSION)}, this "
                             f"driver speaks {VERSION_VALUE} ({VERSION_NOTE}): rebuild the "
                             f"overlay (make ... ATTN=1)")
        return cls(g=words[G], d=words[D], hmax=words[HMAX], tmax=words[TMAX],
                   stream_bits=words[STREAM_BITS], latency=words[LATENCY],
                   out_depth=words[OUT_DEPTH])

    def mismatches(self, group: int, head_dim: int, kv_heads: int, positions: int) -> list[str]:
        """Why this unit cannot run a model's attention (empty when it can)."""
        out = []
        if (self.g, self.d) != (group, head_dim):
            out.append(f"G={self.g} D={self.d}, model wants G={group} D={head_dim}")
        if kv_heads > self.hmax:
            out.append(f"holds {self.hmax} kv heads, model has {kv_heads}")
        if positions > self.tmax:
            out.append(f"holds {self.tmax} positions per call, wants {positions}")
        return out
