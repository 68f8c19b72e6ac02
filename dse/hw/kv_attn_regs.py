"""The attention unit kv_attn's registers: ``dse.hw.regs.KV_ATTN``'s offsets by name, and the
decode of its build words.

The map itself is a row of the one table in dse/hw/regs.py (the RTL's ``axil_ctrl``
instantiation in overlays/rtl/kv_attn.v is checked against it); the control word, status,
counters and identity registers are the common ones every unit shares. The arguments are MODE,
T (positions) and H (kv heads).
"""

from __future__ import annotations

from dataclasses import dataclass

# The common registers, as every unit has them (the same driver and emulator code polls and
# reads them): re-exported so callers of this module need one import.
from dse.hw.regs import (  # noqa: F401
    AP_DONE,
    AP_IDLE,
    AP_READY,
    AP_START,
    BUSY_HI,
    BUSY_LO,
    CTRL,
    ID,
    KV_ATTN,
    SPAN,
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

MODE, T, H = (KV_ATTN.arg(a) for a in ("MODE", "T", "H"))
G, D, HMAX, TMAX, STREAM_BITS, LATENCY, OUT_DEPTH = (KV_ATTN.word(w) for w in KV_ATTN.build)
ID_VALUE = KV_ATTN.id_value
#: The register map's version (the template's ``attention.register_map_version``; None: the
#: shipped template has no attention unit).
VERSION_VALUE: int | None = KV_ATTN.version
VERSION_NOTE = KV_ATTN.version_note
#: The per-call fill/drain (the ``latency`` of ``kv_attn_cycles``, read back from the LATENCY
#: register): the template's ``attention.latency_cycles``, its one home.
PIPELINE_LATENCY: int | None = _ATTENTION.latency_cycles if _ATTENTION else None
OFFSETS = KV_ATTN.offsets
CONFIG_OFFSETS = KV_ATTN.config_offsets


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
        """Decode the config words (offset -> value), checking the ID and version (a
        version-1 bitstream takes uint8 p and would return wrong sums: refused)."""
        w = KV_ATTN.decode(words)
        return cls(g=w["G"], d=w["D"], hmax=w["HMAX"], tmax=w["TMAX"],
                   stream_bits=w["STREAM_BITS"], latency=w["LATENCY"],
                   out_depth=w["OUT_DEPTH"])

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
