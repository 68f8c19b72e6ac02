"""An emulated PYNQ device: the overlay's AXI DMA and ternary_gemv engine, in Python.

Why: the driver (``dse.hw.pynq_driver``) must be testable on x86 through the *unmodified*
``pynq.lib.dma.DMA`` and ``pynq.DefaultIP`` code, which talk to registers through
``pynq.MMIO`` and to memory through ``pynq.allocate``. This ``pynq.Device`` subclass answers
both: register reads and writes of an AXI DMA in simple (direct register) mode (PG021
offsets) and of the engine (``dse.hw.regs``), and buffers with fake physical addresses that
the emulated DMA reads and writes. The engine decodes the input stream exactly as
overlays/STREAM.md lays it out, computes with ``golden_gemv`` and counts busy cycles with
``engine_cycles``, so a driver bug in packing, ordering or parsing shows up as wrong results.
With ``attn=(G, D, HMAX, TMAX)`` the device also holds ``attn_units`` attention units
``kv_attn_<a>``, each with its ``axi_dma_attn_<a>`` (overlays/KV_ATTN.md): each decodes its
calls' streams, answers with ``kv_attn_reference`` and counts ``kv_attn_cycles`` busy cycles.
Engines and attention units share one base (``_Unit``): the register file every unit's RTL
has (overlays/rtl/axil_ctrl.v), its start and refusal rules, the call protocol and the fault
injection.

Importing this module needs pynq (and so numpy<2): only tests and ``--emulate`` runs do.
"""

from __future__ import annotations

import math
import struct

import numpy as np
import pynq
from pynq.buffer import PynqBuffer
from pynq.lib.dma import DMA

from dse.hw import kv_attn_regs, regs
from dse.model.engine import engine_cycles
from dse.model.kv_attn import (
    KV_ATTN_BEAT_BYTES,
    MODE_SCORES,
    kv_attn_cycles,
    kv_attn_p_beats,
    kv_attn_reference,
)
from dse.packing.quant import golden_gemv
from dse.packing.schemes import unpack_base3, unpack_i2
from dse.packing.stream import (
    expected_output_stream,
    input_stream_beats,
    output_stream_beats,
    port_stall_cycles,
    stream_bits,
)

DMA_BASE = 0x4040_0000
ENGINE_BASE = 0xA000_0000
ATTN_DMA_BASE = 0x4080_0000
ATTN_BASE = 0xA010_0000
DMA_SPAN = 0x1_0000
DMA_VLNV = "xilinx.com:ip:axi_dma:7.1"
# AXI DMA registers (simple mode): MM2S at 0x00, S2MM at 0x30
DMACR, DMASR, SA, SA_MSB, LENGTH = 0x00, 0x04, 0x18, 0x1C, 0x28
S2MM = 0x30
SR_HALTED, SR_IDLE, SR_IOC = 0x1, 0x2, 0x1000


class _Memory:
    """DDR seen by the DMA: buffers at fake, page-aligned physical addresses."""

    def __init__(self, device: EmulatedDevice) -> None:
        self.device = device
        self.next_addr = 0x1000_0000
        self.blocks: dict[int, np.ndarray] = {}

    def allocate(self, shape, dtype, **kwargs) -> PynqBuffer:
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        backing = np.zeros(max(nbytes, 1), dtype=np.uint8)
        addr = self.next_addr
        self.next_addr += (nbytes + 0xFFF) // 0x1000 * 0x1000 + 0x1000
        self.blocks[addr] = backing
        return PynqBuffer(shape, dtype, bo=addr, device=self.device, buffer=backing,
                          device_address=addr, coherent=False)

    def view(self, addr: int, nbytes: int) -> np.ndarray:
        """The bytes [addr, addr + nbytes) of one buffer (DMA decode error otherwise)."""
        for base, block in self.blocks.items():
            if base <= addr and addr + nbytes <= base + block.size:
                return block[addr - base:addr - base + nbytes]
        raise ValueError(f"emulated DMA: {nbytes} bytes at {addr:#x} are not in any buffer")


class _Unit:
    """A PL unit's register file and call protocol, as overlays/rtl/axil_ctrl.v answers them
    for every unit: arguments (reset values from the unit's ``RegisterMap``), CTRL's start,
    done and idle, STATUS's refusal, the 64-bit counters, the build words. A call runs whole
    once the MM2S stream holds all its bytes (``step``), its results wait in ``outbox`` for
    S2MM. A unit kind says which starts it refuses, how many input bytes a call takes and what
    it computes from them. Fault injection: ``hang`` (never finish a call),
    ``config_override`` (a config word lies)."""

    regmap: regs.RegisterMap

    def __init__(self) -> None:
        self.args = dict(self.regmap.arg_resets)
        self.busy = self.stall_in = self.stall_out = 0
        self.running = self.done = self.err = False
        self.inbox = bytearray()        # bytes the MM2S stream delivered
        self.outbox = bytearray()       # result bytes not yet taken by S2MM
        self.hang = False
        self.config_override: dict[int, int] = {}
        self.writes: list[tuple[int, int]] = []     # every register write (for tests)
        self.calls: list[dict] = []                 # what each call decoded (for tests)

    # -- what a unit kind says -------------------------------------------------------------
    def build_words(self) -> dict[str, int]:
        """The build words by name (the RTL's parameters)."""
        raise NotImplementedError

    def refuses(self, a: dict[str, int]) -> bool:
        """Whether a start with these arguments is refused (STATUS.err, no busy cycle)."""
        raise NotImplementedError

    def input_bytes(self, a: dict[str, int]) -> int:
        """Bytes of input stream the call takes."""
        raise NotImplementedError

    def compute(self, a: dict[str, int], raw: np.ndarray) -> tuple[bytes, int, dict]:
        """(result bytes, busy cycles, a record for tests) of the call on its input bytes."""
        raise NotImplementedError

    # -- the common protocol ---------------------------------------------------------------
    def named_args(self) -> dict[str, int]:
        return {name: self.args[off] for name, off in self.regmap.arg_offsets.items()}

    def config_word(self, off: int) -> int:
        m = self.regmap
        words = {regs.ID: m.id_value, regs.VERSION: m.version,
                 **{m.word(name): v for name, v in self.build_words().items()}}
        return self.config_override.get(off, words[off])

    def read(self, off: int) -> int:
        """An AXI-Lite read: the control word, an argument, the error flag, a counter half,
        or a config word (0 elsewhere)."""
        if off == regs.CTRL:
            idle = not self.running
            return ((not idle) * regs.AP_START | self.done * regs.AP_DONE
                    | idle * (regs.AP_IDLE | regs.AP_READY))
        if off in self.args:
            return self.args[off]
        if off == regs.STATUS:
            return int(self.err)
        counters = dict(zip(regs.COUNTERS, (self.busy, self.stall_in, self.stall_out),
                            strict=True))
        if off in counters:
            return counters[off] & 0xFFFF_FFFF
        if off - 4 in counters:
            return counters[off - 4] >> 32
        if off in self.regmap.config_offsets:
            return self.config_word(off)
        return 0

    def write(self, off: int, value: int) -> None:
        self.writes.append((off, value))
        if off in self.args:
            self.args[off] = value
        elif off == regs.CTRL and value & regs.AP_START and not self.running:
            self.done = self.err = False
            if self.refuses(self.named_args()):
                self.done = self.err = True
            else:
                self.running = True

    def step(self) -> None:
        """Run the started call once the input stream holds all of it."""
        if not self.running or self.hang:
            return
        a = self.named_args()
        need = self.input_bytes(a)
        if len(self.inbox) < need:
            return
        raw = np.frombuffer(bytes(self.inbox[:need]), dtype=np.uint8)
        del self.inbox[:need]
        out, cycles, record = self.compute(a, raw)
        self.outbox += out
        self.busy += cycles
        self.calls.append(record)
        self.running = False
        self.done = True


class _Engine(_Unit):
    """ternary_gemv: decodes the stream as overlays/STREAM.md lays it out, answers with
    ``golden_gemv``, counts ``engine_cycles``."""

    regmap = regs.ENGINE

    def __init__(self, pe: int, simd: int, packing: str, vmax: int, kmax: int,
                 port_bits: int | None = None, vpc: int = 1) -> None:
        super().__init__()
        if not 1 <= vpc <= vmax:
            raise ValueError(f"emulated engine: vpc={vpc}: expected 1..VMAX ({vmax})")
        self.pe, self.simd, self.packing, self.vmax, self.kmax = pe, simd, packing, vmax, kmax
        self.vpc = vpc
        self.width = stream_bits(pe, simd, packing)
        # the HP port the engine's DMA reads through (None: as wide as any stream)
        self.port_bits = port_bits

    def build_words(self) -> dict[str, int]:
        return {"PE": self.pe, "SIMD": self.simd, "PACKING": regs.PACKING_CODES[self.packing],
                "VMAX": self.vmax, "KMAX": self.kmax, "STREAM_BITS": self.width,
                "LATENCY": regs.PIPELINE_LATENCY, "OUT_DEPTH": regs.RESULT_FIFO_DEPTH,
                "VPC": self.vpc}

    def refuses(self, a: dict[str, int]) -> bool:
        return (min(a["N"], a["K"], a["M"], a["V"]) < 1 or a["K"] > self.kmax
                or a["V"] > self.vmax)

    def input_bytes(self, a: dict[str, int]) -> int:
        return input_stream_beats(a["N"], a["K"], a["M"], self.pe, self.simd, self.packing,
                                  a["V"]) * (self.width // 8)

    def compute(self, a: dict[str, int], raw: np.ndarray) -> tuple[bytes, int, dict]:
        n, k, m, v = a["N"], a["K"], a["M"], a["V"]
        beat = self.width // 8
        w, x = self._decode(raw.reshape(-1, beat), n, k, m, v)
        out = expected_output_stream(golden_gemv(w, x), self.pe, v, self.vpc)
        assert out.shape[0] == output_stream_beats(n, m, self.pe, v, self.vpc)
        # a stream wider than the HP port waits for each beat's remaining port cycles
        stall = port_stall_cycles(raw.size // beat, self.width, self.port_bits)
        self.stall_in += stall
        cycles = engine_cycles(n, k, m, self.pe, self.simd, v, beat,
                               regs.PIPELINE_LATENCY, self.vpc) + stall
        return out.tobytes(), cycles, {"n": n, "k": k, "m": m, "v": v, "w": w, "x": x}

    def _decode(self, stream: np.ndarray, n: int, k: int, m: int, v: int
                ) -> tuple[np.ndarray, np.ndarray]:
        """Weights and activations back out of a call's input beats (STREAM.md)."""
        beat = stream.shape[1]
        rf, cf = math.ceil(n / self.pe), math.ceil(k / self.simd)
        per_vec = math.ceil(k / beat)
        unpack = unpack_i2 if self.packing == "i2" else unpack_base3
        xs, w = [], None
        at = 0
        for p in range(0, m, v):
            vp = min(v, m - p)
            acts = stream[at:at + vp * per_vec].reshape(vp, per_vec * beat)
            xs.append(acts[:, :k].view(np.int8))
            at += vp * per_vec
            tiles = unpack(stream[at:at + rf * cf], rf * cf, self.pe * self.simd)
            at += rf * cf
            full = tiles.reshape(rf, cf, self.pe, self.simd).transpose(0, 2, 1, 3)
            wp = full.reshape(rf * self.pe, cf * self.simd)[:n, :k]
            if w is not None and not np.array_equal(w, wp):
                raise ValueError("emulated engine: the weights differ between passes")
            w = wp
        return w, np.concatenate(xs, axis=0)


class _AttnUnit(_Unit):
    """kv_attn: decodes each call's stream as overlays/KV_ATTN.md lays it out, answers with
    ``kv_attn_reference``, counts ``kv_attn_cycles``."""

    regmap = regs.KV_ATTN

    def __init__(self, g: int, d: int, hmax: int, tmax: int, out_depth: int = 32) -> None:
        super().__init__()
        self.g, self.d, self.hmax, self.tmax, self.out_depth = g, d, hmax, tmax, out_depth

    def build_words(self) -> dict[str, int]:
        return {"G": self.g, "D": self.d, "HMAX": self.hmax, "TMAX": self.tmax,
                "STREAM_BITS": 8 * KV_ATTN_BEAT_BYTES,
                "LATENCY": kv_attn_regs.PIPELINE_LATENCY, "OUT_DEPTH": self.out_depth}

    def refuses(self, a: dict[str, int]) -> bool:
        return (a["MODE"] not in (0, 1) or not 1 <= a["T"] <= self.tmax
                or not 1 <= a["H"] <= self.hmax)

    def _block_bytes(self, a: dict[str, int]) -> int:
        if a["MODE"] == MODE_SCORES:
            return a["H"] * self.g * self.d
        return kv_attn_p_beats(a["T"], a["H"], self.g) * KV_ATTN_BEAT_BYTES

    def input_bytes(self, a: dict[str, int]) -> int:
        return self._block_bytes(a) + a["T"] * a["H"] * self.d

    def compute(self, a: dict[str, int], raw: np.ndarray) -> tuple[bytes, int, dict]:
        mode, t, h = a["MODE"], a["T"], a["H"]
        g, d, nblk = self.g, self.d, self._block_bytes(a)
        cache = raw[nblk:].view(np.int8).reshape(t, h, d)
        if mode == MODE_SCORES:
            block = raw[:nblk].view(np.int8).reshape(h, g, d)
            pad = raw[:0]
        else:
            block = raw[:2 * t * h * g].view("<u2").astype(np.uint16).reshape(t, h, g)
            pad = raw[2 * t * h * g:nblk]
        y = kv_attn_reference(mode, block, cache)
        cycles = kv_attn_cycles(mode, t, h, g, d, kv_attn_regs.PIPELINE_LATENCY)
        # results: MODE 0 (t, h, g), MODE 1 (h, d, g)
        return y.astype("<i4").tobytes(), cycles, {
            "mode": mode, "t": t, "h": h, "block": block.copy(), "cache": cache.copy(),
            "pad": pad.copy()}


class _Dma:
    """An AXI DMA in simple mode, wired MM2S -> unit -> S2MM."""

    def __init__(self, memory: _Memory, engine: _Unit) -> None:
        self.memory, self.engine = memory, engine
        self.reg = {off: 0 for off in range(0, 0x60, 4)}
        self.reg[DMASR] = self.reg[S2MM + DMASR] = SR_HALTED
        self.s2mm_armed = 0
        self.mm2s: list[tuple[int, int]] = []   # every MM2S transfer (address, bytes)

    def read(self, off: int) -> int:
        return self.reg.get(off, 0)

    def write(self, off: int, value: int) -> None:
        base = S2MM if off >= S2MM else 0
        rel = off - base
        if rel == DMASR:                        # write-1-to-clear interrupt bits
            self.reg[off] &= ~(value & 0x7000)
            return
        self.reg[off] = value
        if rel == DMACR:
            status = self.reg[base + DMASR]
            if value & 0x4:                      # soft reset
                status = SR_HALTED
            status = (status & ~SR_HALTED) if value & 0x1 else (status | SR_HALTED)
            self.reg[base + DMASR] = status
        elif rel == LENGTH:
            if self.reg[base + DMASR] & SR_HALTED:
                return
            self.reg[base + DMASR] &= ~SR_IDLE
            addr = self.reg[base + SA] | self.reg[base + SA_MSB] << 32
            if base == 0:
                self.mm2s.append((addr, value))
                self.engine.inbox += self.memory.view(addr, value).tobytes()
                self.reg[DMASR] |= SR_IDLE | SR_IOC
            else:
                self.s2mm_armed = value
        self.advance()

    def advance(self) -> None:
        self.engine.step()
        if self.s2mm_armed and self.engine.outbox and not self.engine.running:
            base = S2MM
            addr = self.reg[base + SA] | self.reg[base + SA_MSB] << 32
            nbytes = min(self.s2mm_armed, len(self.engine.outbox))
            self.memory.view(addr, nbytes)[:] = np.frombuffer(
                bytes(self.engine.outbox[:nbytes]), dtype=np.uint8)
            del self.engine.outbox[:nbytes]
            self.reg[base + LENGTH] = nbytes    # bytes received (ends at TLAST)
            self.reg[base + DMASR] |= SR_IDLE | SR_IOC
            self.s2mm_armed = 0


class EmulatedDevice(pynq.Device):
    """A pynq Device holding ``engines`` ternary_gemv engines, each with its own AXI DMA
    (``ternary_gemv_<i>`` fed by ``axi_dma_<i>``, as the Vivado flow builds them), and with
    ``attn=(G, D, HMAX, TMAX)`` ``attn_units`` attention units (``kv_attn_<a>`` fed by
    ``axi_dma_attn_<a>``); ``port_bits``: the board's HP port width (a board file's
    ``link.port_width_bits``), which an engine's wider input stream waits on (None: no such
    limit)."""

    _probe_priority_ = 1

    @classmethod
    def _probe_(cls) -> list[EmulatedDevice]:
        # importing this module is the opt-in: its device then comes first
        return [cls("emulated-tgemv")]

    def __init__(self, tag: str = "emulated-tgemv", pe: int = 8, simd: int = 16,
                 packing: str = "i2", vmax: int = 4, kmax: int = 8192,
                 dma_length_bits: int = 26, engines: int = 1,
                 attn: tuple[int, int, int, int] | None = None, attn_units: int = 1,
                 port_bits: int | None = None, vpc: int = 1) -> None:
        super().__init__(tag)
        self.dma_length_bits = dma_length_bits
        self.name = "emulated ternary_gemv overlay"
        self.capabilities = {"REGISTER_RW": True, "MEMORY_MAPPED": False, "CALLABLE": False}
        self.default_memory = _Memory(self)
        self.engines = [_Engine(pe, simd, packing, vmax, kmax, port_bits, vpc)
                        for _ in range(engines)]
        self.dmas = [_Dma(self.default_memory, e) for e in self.engines]
        self.attns = [_AttnUnit(*attn) for _ in range(attn_units)] if attn else []
        self.attn_dmas = [_Dma(self.default_memory, u) for u in self.attns]
        self.flushes = self.invalidates = 0
        # every slave by its base address: (base, span, target)
        self._slaves = [(base + i * span, span, target) for base, span, targets in (
            (DMA_BASE, DMA_SPAN, self.dmas), (ENGINE_BASE, regs.SPAN, self.engines),
            (ATTN_DMA_BASE, DMA_SPAN, self.attn_dmas), (ATTN_BASE, regs.SPAN, self.attns))
            for i, target in enumerate(targets)]

    @property
    def engine(self) -> _Engine:
        return self.engines[0]

    @property
    def dma(self) -> _Dma:
        return self.dmas[0]

    @property
    def attn(self) -> _AttnUnit | None:
        """The first attention unit (None without any)."""
        return self.attns[0] if self.attns else None

    @property
    def attn_dma(self) -> _Dma | None:
        return self.attn_dmas[0] if self.attn_dmas else None

    # -- what pynq.MMIO calls (REGISTER_RW devices) -------------------------------------
    def _target(self, address: int):
        for base, span, target in self._slaves:
            if base <= address < base + span:
                return target, address - base
        raise ValueError(f"emulated device: nothing at {address:#x}")

    def read_registers(self, address: int, length: int) -> bytes:
        out = b""
        for a in range(address, address + length, 4):
            target, off = self._target(a)
            out += struct.pack("<I", target.read(off) & 0xFFFF_FFFF)
        return out[:length]

    def write_registers(self, address: int, data: bytes) -> None:
        data = bytes(data) + b"\0" * (-len(data) % 4)
        for i in range(0, len(data), 4):
            target, off = self._target(address + i)
            target.write(off, struct.unpack("<I", data[i:i + 4])[0])

    # -- what PynqBuffer calls ---------------------------------------------------------
    def flush(self, bo, offset, ptr, size) -> None:
        self.flushes += 1

    def invalidate(self, bo, offset, ptr, size) -> None:
        self.invalidates += 1

    # -- what an Overlay would have parsed from the .hwh ---------------------------------
    @property
    def ip_dict(self) -> dict[str, dict]:
        from dse.hw.pynq_driver import KV_ATTN_DMA

        out = {}
        for i in range(len(self.engines)):
            out[f"axi_dma_{i}"] = self.dma_description(i)
            out[f"ternary_gemv_{i}"] = self.engine_description(i)
        for a in range(len(self.attns)):
            out[f"{KV_ATTN_DMA}_{a}"] = self.attn_dma_description(a)
            out[f"kv_attn_{a}"] = self.attn_description(a)
        return out

    @ip_dict.setter
    def ip_dict(self, value) -> None:  # Device.__init__/reset assign it; ours is fixed
        pass

    def dma_description(self, i: int = 0) -> dict:
        """The AXI DMA as the hwh parser describes it (simple mode, no DRE)."""
        return self._dma_description(f"axi_dma_{i}", DMA_BASE + i * DMA_SPAN,
                                     self.engines[i].width, 32 * self.engines[i].pe)

    def attn_dma_description(self, a: int = 0) -> dict:
        """``axi_dma_attn_<a>``: 128-bit MM2S, 32*G-bit S2MM (build_overlay.tcl)."""
        from dse.hw.pynq_driver import KV_ATTN_DMA

        return self._dma_description(f"{KV_ATTN_DMA}_{a}", ATTN_DMA_BASE + a * DMA_SPAN,
                                     8 * KV_ATTN_BEAT_BYTES, 32 * self.attns[a].g)

    def attn_description(self, a: int = 0) -> dict:
        from dse.hw.pynq_driver import KV_ATTN_VLNV

        return self._ip_description(f"kv_attn_{a}", KV_ATTN_VLNV, ATTN_BASE + a * regs.SPAN)

    def engine_description(self, i: int = 0) -> dict:
        from dse.hw.pynq_driver import VLNV

        return self._ip_description(f"ternary_gemv_{i}", VLNV, ENGINE_BASE + i * regs.SPAN)

    def _ip_description(self, name: str, vlnv: str, base: int) -> dict:
        return {"fullpath": name, "type": vlnv, "phys_addr": base, "addr_range": regs.SPAN,
                "device": self, "interrupts": {}, "gpio": {}, "state": None, "parameters": {}}

    def _dma_description(self, name: str, base: int, width: int, out_width: int) -> dict:
        return {
            "fullpath": name, "type": DMA_VLNV, "phys_addr": base,
            "addr_range": DMA_SPAN, "device": self, "interrupts": {}, "gpio": {},
            "state": None, "driver": DMA,
            "parameters": {
                "c_include_sg": "0", "c_micro_dma": "0",
                "c_sg_length_width": str(self.dma_length_bits),
                "c_include_mm2s": "1", "c_include_s2mm": "1",
                "c_include_mm2s_dre": "0", "c_include_s2mm_dre": "0",
                "c_m_axi_mm2s_data_width": str(min(width, 1024)),
                "c_m_axi_s2mm_data_width": str(min(out_width, 1024)),
                "c_m_axis_mm2s_tdata_width": str(width),
                "c_s_axis_s2mm_tdata_width": str(out_width),
            },
        }


def open_emulated(**engine: object):
    """An emulated overlay's engine driver(s) wired to the (unmodified pynq) DMA drivers.

    ``engine`` takes EmulatedDevice's parameters (pe, simd, packing, vmax, kmax, vpc,
    dma_length_bits, engines). One engine: its driver; several: an ``EngineGroup``, as
    ``open_overlay`` returns them. The device is ``driver.device``.
    """
    from dse.hw.pynq_driver import EngineGroup, driver_class

    device = EmulatedDevice(**engine)
    drivers = []
    for i in range(len(device.engines)):
        eng = driver_class()(device.engine_description(i))
        eng.dma = DMA(device.dma_description(i))
        eng.port_bits = device.engines[i].port_bits
        drivers.append(eng)
    if len(drivers) == 1:
        return drivers[0]
    group = EngineGroup(drivers)
    group.device = device
    return group


def open_emulated_attention(g: int = 4, d: int = 128, hmax: int = 5, tmax: int = 64,
                            units: int = 1, **device: object):
    """An emulated overlay's kv_attn unit(s) wired to their (unmodified pynq)
    ``axi_dma_attn_<a>``, as ``open_attention`` returns them: one unit's driver, or an
    ``AttnGroup`` of ``units``; ``device`` takes EmulatedDevice's other parameters. The
    device is ``driver.device``."""
    from dse.hw.pynq_driver import AttnGroup, attn_driver_class

    dev = EmulatedDevice(attn=(g, d, hmax, tmax), attn_units=units, **device)
    drivers = []
    for a in range(units):
        unit = attn_driver_class()(dev.attn_description(a))
        unit.dma = DMA(dev.attn_dma_description(a))
        drivers.append(unit)
    if units == 1:
        return drivers[0]
    group = AttnGroup(drivers)
    group.device = dev
    return group
