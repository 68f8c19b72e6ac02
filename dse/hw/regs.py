"""Register maps of the overlay's AXI4-Lite control slaves: one table for every PL unit.

Every unit's RTL instantiates the same control slave and counter block
(``overlays/rtl/axil_ctrl.v``), so every unit has the same map shape: the common offsets
below (HLS-like: control word at 0x00, arguments from 0x10 at 8-byte steps, because PYNQ users
and ``DefaultIP`` expect that) and, per unit, a ``RegisterMap``: its ID and version, its
argument names (and reset values) and its read-only build words, whose offsets are computed
here. The PYNQ driver, the emulated device and the RTL testbenches all read offsets from these
maps, and the RTL tests hold ``axil_ctrl.v``'s ``ADDR_*`` localparams to the common offsets and
each unit's instantiation (ID, version, argument order and resets, build-word order) to its
map, so software and RTL cannot drift apart.

The engine's offsets stay importable as module names (``regs.N``, ``regs.PE``, ...) and the
attention unit's through ``dse.hw.kv_attn_regs``.
"""

from __future__ import annotations

from dataclasses import dataclass

from dse.model.template import shipped_template

_TEMPLATE = shipped_template()
_ATTENTION = _TEMPLATE.attention

# -- the common map (axil_ctrl.v's ADDR_* / STEP_* localparams) --------------------------------
CTRL = 0x00
ARG0 = 0x10           # argument i at ARG0 + ARG_STEP * i
ARG_STEP = 8
STATUS = 0x30
# free-running counters (64-bit, lo/hi; they only move while the unit is busy)
BUSY_LO = 0x40
BUSY_HI = 0x44
STALL_IN_LO = 0x48
STALL_IN_HI = 0x4C
STALL_OUT_LO = 0x50
STALL_OUT_HI = 0x54
ID = 0x60
VERSION = 0x64
BUILD0 = 0x68         # read-only build word j at BUILD0 + BUILD_STEP * j
BUILD_STEP = 4

#: Address span of a slave (8 address bits).
SPAN = 0x100
#: Arguments end below STATUS; build words inside the span (axil_ctrl.v refuses more).
MAX_ARGS = (STATUS - ARG0) // ARG_STEP
MAX_BUILD_WORDS = (SPAN - BUILD0) // BUILD_STEP

#: The common offsets by their Verilog name suffix (``ADDR_<name>`` in axil_ctrl.v) and the
#: steps (``STEP_<name>``), for the RTL consistency test.
COMMON_OFFSETS = {
    "CTRL": CTRL, "ARG0": ARG0, "STATUS": STATUS,
    "BUSY_LO": BUSY_LO, "BUSY_HI": BUSY_HI, "STALL_IN_LO": STALL_IN_LO,
    "STALL_IN_HI": STALL_IN_HI, "STALL_OUT_LO": STALL_OUT_LO, "STALL_OUT_HI": STALL_OUT_HI,
    "ID": ID, "VERSION": VERSION, "BUILD0": BUILD0,
}
STEPS = {"ARG": ARG_STEP, "BUILD": BUILD_STEP}
#: The counters' low words, in the order busy, stall_in, stall_out.
COUNTERS = (BUSY_LO, STALL_IN_LO, STALL_OUT_LO)

# -- CTRL bits (HLS names) -------------------------------------------------------------------
AP_START = 1 << 0
AP_DONE = 1 << 1
AP_IDLE = 1 << 2
AP_READY = 1 << 3
#: STATUS bit: the last start was refused (an argument out of range).
STATUS_ERR = 1 << 0


@dataclass(frozen=True)
class RegisterMap:
    """One unit's registers: identity, arguments and build words; offsets are computed.

    ``ip`` and ``noun`` name the unit in refusals ("not a kv_attn unit: ..."); ``version_note``
    says what the version this driver speaks changed (for the one-line refusal of another).
    """

    ip: str
    noun: str
    id_text: str                       # 4 ASCII characters, read as one big-endian word
    version: int | None                # None: the template has no such unit
    args: tuple[str, ...]
    arg_reset: tuple[int, ...]
    build: tuple[str, ...]
    version_note: str = ""

    def __post_init__(self) -> None:
        if len(self.id_text) != 4 or not self.id_text.isascii():
            raise ValueError(f"{self.ip}: ID {self.id_text!r}: expected 4 ASCII characters")
        if not 1 <= len(self.args) <= MAX_ARGS or len(self.arg_reset) != len(self.args):
            raise ValueError(f"{self.ip}: 1..{MAX_ARGS} arguments, each with a reset value")
        if not 1 <= len(self.build) <= MAX_BUILD_WORDS:
            raise ValueError(f"{self.ip}: 1..{MAX_BUILD_WORDS} build words")
        names = self.args + self.build
        if len(set(names)) != len(names) or set(names) & set(COMMON_OFFSETS):
            raise ValueError(f"{self.ip}: register names must be unique: {names}")

    @property
    def id_value(self) -> int:
        return int.from_bytes(self.id_text.encode("ascii"), "big")

    def arg(self, name: str) -> int:
        """Byte offset of argument ``name``."""
        return ARG0 + ARG_STEP * self.args.index(name)

    def word(self, name: str) -> int:
        """Byte offset of build word ``name``."""
        return BUILD0 + BUILD_STEP * self.build.index(name)

    @property
    def arg_offsets(self) -> dict[str, int]:
        return {a: self.arg(a) for a in self.args}

    @property
    def arg_resets(self) -> dict[int, int]:
        """Offset -> value after reset, for every argument."""
        return {self.arg(a): r for a, r in zip(self.args, self.arg_reset, strict=True)}

    @property
    def build_offsets(self) -> dict[str, int]:
        return {w: self.word(w) for w in self.build}

    @property
    def offsets(self) -> dict[str, int]:
        """Every named register of the unit (common ones included)."""
        common = {k: v for k, v in COMMON_OFFSETS.items() if k not in ("ARG0", "BUILD0")}
        return {**common, **self.arg_offsets, **self.build_offsets}

    @property
    def config_offsets(self) -> tuple[int, ...]:
        """The read-only words software reads once: ID, VERSION and the build words."""
        return (ID, VERSION, *self.build_offsets.values())

    def decode(self, words: dict[int, int]) -> dict[str, int]:
        """The build words by name from the config words (offset -> value), after checking the
        ID and the version (ValueError, one line, otherwise)."""
        if words.get(ID) != self.id_value:
            raise ValueError(f"not a {self.ip} {self.noun}: ID reads {words.get(ID, 0):#010x}, "
                             f"expected {self.id_value:#010x}")
        if words.get(VERSION) != self.version:
            note = f" ({self.version_note})" if self.version_note else ""
            raise ValueError(f"{self.ip} register map version {words.get(VERSION)}, this "
                             f"driver speaks {self.version}{note}: rebuild the overlay "
                             f"(make -C overlays/vivado ...)")
        return {w: words[off] for w, off in self.build_offsets.items()}


#: The engine overlays/rtl/ternary_gemv.v; its version comes from the engine template.
ENGINE = RegisterMap(
    ip="ternary_gemv", noun="engine", id_text="TGMV",
    version=_TEMPLATE.register_map_version,
    args=("N", "K", "M", "V"), arg_reset=(0, 0, 0, 1),
    build=("PE", "SIMD", "PACKING", "VMAX", "KMAX", "STREAM_BITS", "LATENCY", "OUT_DEPTH",
           "VPC"),
    version_note="VPC build word and result beats of VPC x PE int32; version 1 sent one "
                 "vector a beat")

#: The attention unit overlays/rtl/kv_attn.v (overlays/KV_ATTN.md); its version comes from the
#: template's ``attention:`` section.
KV_ATTN = RegisterMap(
    ip="kv_attn", noun="unit", id_text="KVAT",
    version=_ATTENTION.register_map_version if _ATTENTION else None,
    args=("MODE", "T", "H"), arg_reset=(0, 0, 0),
    build=("G", "D", "HMAX", "TMAX", "STREAM_BITS", "LATENCY", "OUT_DEPTH"),
    version_note="uint16 p in MODE 1; version 1 streamed uint8 p")

#: Every unit's map by its RTL module name.
MAPS = {m.ip: m for m in (ENGINE, KV_ATTN)}

# -- the engine's offsets by name (the driver, the emulator and the testbench use them) -------
N, K, M, V = (ENGINE.arg(a) for a in ("N", "K", "M", "V"))
PE, SIMD, PACKING, VMAX, KMAX, STREAM_BITS, LATENCY, OUT_DEPTH, VPC = (
    ENGINE.word(w) for w in ENGINE.build)
ID_VALUE = ENGINE.id_value
VERSION_VALUE = ENGINE.version
OFFSETS = ENGINE.offsets
CONFIG_OFFSETS = ENGINE.config_offsets

#: The packing codes (the RTL's PACKING parameter) and the per-pass fill/drain (the
#: ``latency`` of ``engine_cycles``, read back from the LATENCY register) come from the engine
#: template (overlays/ternary_gemv.yaml), their one home.
PACKING_CODES = _TEMPLATE.packing_codes
PIPELINE_LATENCY = _TEMPLATE.latency_cycles
#: Result FIFO depth (the RTL's OUT_DEPTH default, read back from the OUT_DEPTH register).
RESULT_FIFO_DEPTH = _TEMPLATE.out_depth


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
    #: Vectors answered per clock (the build's VPC): result beats hold VPC x PE int32.
    vpc: int = 1

    @property
    def lanes(self) -> int:
        return self.pe * self.simd

    @classmethod
    def from_words(cls, words: dict[int, int]) -> EngineConfig:
        """Decode the config words (offset -> value), checking the ID and version."""
        w = ENGINE.decode(words)
        names = {v: k for k, v in PACKING_CODES.items()}
        if w["PACKING"] not in names:
            raise ValueError(f"ternary_gemv PACKING register reads {w['PACKING']}, expected one "
                             f"of {sorted(names)}")
        return cls(pe=w["PE"], simd=w["SIMD"], packing=names[w["PACKING"]], vmax=w["VMAX"],
                   kmax=w["KMAX"], stream_bits=w["STREAM_BITS"], latency=w["LATENCY"],
                   out_depth=w["OUT_DEPTH"], vpc=w["VPC"])

    def mismatches(self, pe: int, simd: int, packing: str, vectors: int = 1,
                   max_k: int = 1, stream_bits: int | None = None,
                   vectors_per_clock: int | None = None) -> list[str]:
        """Why this engine cannot run a design point (empty when it can)."""
        out = []
        if vectors_per_clock is not None and vectors_per_clock != self.vpc:
            out.append(f"answers {self.vpc} vector(s) per clock, plan wants "
                       f"{vectors_per_clock}")
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
