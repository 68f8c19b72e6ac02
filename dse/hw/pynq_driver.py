"""PYNQ driver of the ternary_gemv overlay: one Linear layer for M vectors, with its timings.

On the board::

    from dse.hw.pynq_driver import open_overlay
    eng = open_overlay("tgemv_zcu104.bit")          # binds the IP and its AXI DMA
    eng.check(pe=16, simd=32, packing="i2", vectors=4, max_k=6912)
    layer = eng.load_layer(w_ternary, name="layers.0.mlp.down_proj")
    y, timing = eng.run(layer, x_int8)               # y: int32 (M, N)

Why it is built this way:

- pynq is imported only when a driver is used (it pins numpy<2 and exists on the board, not
  in dse's planning path). ``TernaryGemv`` is created on first use, which also registers it
  with pynq's ``DefaultIP`` binding (``bindto``), so ``open_overlay`` defines it before
  ``pynq.Overlay`` scans the design.
- Weights are packed once into a DMA buffer (``load_layer``) and streamed again for every
  pass of up to V vectors, as the engine expects (overlays/STREAM.md); activations go in a
  second buffer. Both travel over one AXI DMA MM2S channel as consecutive transfers: the
  engine ignores TLAST and only counts beats, so the split costs stall cycles, never results.
- Every wait has a deadline, because ``DMA.wait()`` spins forever: a hung engine raises
  ``OverlayTimeout`` naming the layer and the registers it saw.

The attention unit (``kv_attn_0`` with its own ``axi_dma_attn``, overlays/KV_ATTN.md)::

    attn = open_attention(eng.overlay)               # the same overlay's kv_attn
    attn.check(group=4, head_dim=128, kv_heads=5, positions=4096)
    cache = attn.new_cache(kv_heads=5, capacity=4096, name="layers.0")
    attn.append(cache, k_new, v_new)                 # float [n, 5, 128]: int8 rows + scales
    step, (t0, t1) = attn.attention_step(cache, q)   # q float [20, 128]; step.out float32

A layer's cache lives in two DMA buffers, each a slot followed by the int8 rows in (t, h)
order; a call writes its q (or p) block into the end of the slot, so the block and the
first T positions' rows are one contiguous range: one simple-mode MM2S transfer per call.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from dse.hw import kv_attn_regs, regs
from dse.model.engine import row_split
from dse.model.kv_attn import KV_ATTN_BEAT_BYTES, MODE_SCORES, MODE_XV, kv_attn_p_beats
from dse.packing.kv_attn_step import AttnStep, KvRows, quantize_kv, run_step
from dse.packing.kv_attn_stream import kv_attn_output_beats, parse_kv_attn_output
from dse.packing.stream import (
    activation_beats,
    parse_output_stream,
    port_stall_cycles,
    weight_tiles,
)

#: The VLNV the Vivado flow packages the RTL under (overlays/vivado/package_ip.tcl).
VLNV = "dse:hls:ternary_gemv:1.0"
#: The attention unit's VLNV and its DMA's instance (overlays/vivado/build_overlay.tcl).
KV_ATTN_VLNV = "dse:hls:kv_attn:1.0"
KV_ATTN_DMA = "axi_dma_attn"


class OverlayError(RuntimeError):
    """The overlay does not match the plan, or refused a call."""


class OverlayTimeout(OverlayError):
    """A layer did not finish in time (the message names the layer and what was seen)."""


@dataclass(frozen=True)
class Timing:
    """How long one call took: host wall time and the engine's own cycle counters."""

    wall_s: float
    busy_cycles: int
    stall_in_cycles: int
    stall_out_cycles: int
    clock_mhz: float | None = None
    #: Each engine's own timing when the call ran on several (``EngineGroup``).
    per_engine: tuple[Timing, ...] = ()
    #: Input stalls the HP port's width alone explains: each input beat wider than the port
    #: (64 bits on Zynq-7000, 128 on Zynq UltraScale+) crosses it in ceil(stream / port)
    #: cycles; 0 when the port is as wide as the stream or its width is unknown.
    port_stall_cycles: int = 0

    @property
    def pl_s(self) -> float | None:
        """Busy time of the engine in seconds (None without a known PL clock)."""
        return self.busy_cycles / (self.clock_mhz * 1e6) if self.clock_mhz else None

    @property
    def compute_cycles(self) -> int:
        """Busy cycles less stalls: what ``engine_cycles`` predicts."""
        return self.busy_cycles - self.stall_in_cycles - self.stall_out_cycles


@dataclass
class Layer:
    """A layer's weights, packed into the engine's tile beats in a DMA buffer."""

    name: str
    n: int
    k: int
    buffer: Any            # pynq buffer of uint8, ceil(N/PE) * ceil(K/SIMD) beats

    @property
    def nbytes(self) -> int:
        return int(self.buffer.nbytes)


def _pynq():
    import pynq  # lazy on purpose: pynq is a board-only extra that pins numpy<2

    return pynq


_CLASS: type | None = None


def driver_class() -> type:
    """The ``pynq.DefaultIP`` subclass bound to the engine (defined on first call)."""
    global _CLASS
    if _CLASS is None:
        _CLASS = _define(_pynq())
    return _CLASS


def __getattr__(name: str) -> Any:
    if name == "TernaryGemv":
        return driver_class()
    if name == "KvAttn":
        return attn_driver_class()
    raise AttributeError(name)


def open_overlay(bitfile: str, dma_name: str | None = None, download: bool = True,
                 port_bits: int | None = None):
    """Load an overlay built by overlays/vivado and return its engine(s), wired to the DMAs.

    One engine: its driver. Several (``ternary_gemv_<i>``, each fed by ``axi_dma_<i>`` on
    its own HP port): an ``EngineGroup`` that splits every layer's rows across them.
    ``port_bits``: the board's HP port width (its ``link.port_width_bits``), for
    ``Timing.port_stall_cycles``.
    """
    cls = driver_class()
    pynq = _pynq()
    ol = pynq.Overlay(bitfile, download=download)
    names = sorted((name for name, ip in ol.ip_dict.items() if ip.get("type") == VLNV),
                   key=_index)
    if not names:
        raise OverlayError(f"{bitfile}: expected a {VLNV} IP, found none")
    dmas = sorted((name for name, ip in ol.ip_dict.items()
                   if "axi_dma" in str(ip.get("type", "")) and name != KV_ATTN_DMA),
                  key=_index)   # the attention unit's DMA is not an engine's
    try:
        clock_mhz = float(pynq.Clocks.fclk0_mhz)
    except Exception:  # no PS clock registers off the board
        clock_mhz = None
    engines = []
    for name in names:
        eng = getattr(ol, name)
        if not isinstance(eng, cls):
            raise OverlayError(f"{bitfile}: the engine IP {name} did not bind to {cls.__name__}")
        if len(names) == 1:
            dma = dma_name or (dmas[0] if len(dmas) == 1 else None)
            if dma is None:
                raise OverlayError(f"{bitfile}: expected one AXI DMA (or dma_name=), found "
                                   f"{dmas}")
        else:
            dma = f"axi_dma_{_index(name)}"
            if dma not in dmas:
                raise OverlayError(f"{bitfile}: engine {name} has no {dma} (found {dmas})")
        eng.dma = getattr(ol, dma)
        eng.overlay = ol
        eng.clock_mhz = clock_mhz
        eng.port_bits = port_bits
        engines.append(eng)
    return engines[0] if len(engines) == 1 else EngineGroup(engines)


def _index(name: str) -> int:
    """The instance number of ``ternary_gemv_3`` / ``axi_dma_3`` (0 without one)."""
    tail = name.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _wait_idle(ip, channel, deadline: float, who: str, waiting: str, ip_name: str) -> None:
    """Poll a DMA channel of ``ip`` (an engine or kv_attn driver) until idle: pynq's own error
    on a DMA fault, OverlayTimeout past ``deadline``."""
    while not channel.idle:
        if channel.error:
            channel.wait()   # raises pynq's description of the DMA error
        _check_deadline(ip, deadline, who, waiting, ip_name)


def _check_deadline(ip, deadline: float, who: str, waiting: str, ip_name: str) -> None:
    """OverlayTimeout naming what was awaited, with the IP's CTRL and both DMA statuses (both
    control slaves keep CTRL at offset 0)."""
    if time.monotonic() > deadline:
        ctrl = ip.read(regs.CTRL)
        raise OverlayTimeout(
            f"{who}: timed out waiting for {waiting} ({ip_name} CTRL={ctrl:#x}, "
            f"MM2S status={ip.dma.mmio.read(0x04):#x}, "
            f"S2MM status={ip.dma.mmio.read(0x34):#x})")


@dataclass
class GroupLayer:
    """A layer split across engines: rows [start, stop) of each part, part i on engine i."""

    name: str
    n: int
    k: int
    parts: list[tuple[int, int, Layer]]


class EngineGroup:
    """Several engines as one: each layer's rows split by ``row_split`` (the cost model's own
    split), every engine streaming the whole activations and its rows' weights through its
    own DMA, all in flight at once; the call lasts as long as its busiest engine.
    """

    def __init__(self, engines: list) -> None:
        self.engines = engines

    @property
    def clock_mhz(self) -> float | None:
        return self.engines[0].clock_mhz

    @property
    def config(self) -> regs.EngineConfig:
        configs = [e.config for e in self.engines]
        if any(c != configs[0] for c in configs):
            raise OverlayError(f"engines report different builds: {configs}")
        return configs[0]

    def check(self, pe: int, simd: int, packing: str, vectors: int = 1, max_k: int = 1,
              stream_bits: int | None = None, engines: int | None = None) -> regs.EngineConfig:
        """Raise ``OverlayError`` unless these engines can run the planned design point."""
        why = self.config.mismatches(pe, simd, packing, vectors, max_k, stream_bits)
        if engines is not None and engines != len(self.engines):
            why.append(f"{len(self.engines)} engines, plan wants {engines}")
        if why:
            raise OverlayError("overlay does not match the plan: " + "; ".join(why))
        return self.config

    def load_layer(self, w_ternary: np.ndarray, name: str = "layer") -> GroupLayer:
        """Each engine packs its rows (``row_split``) into its own DMA buffer."""
        w = np.asarray(w_ternary)
        if w.ndim != 2:
            raise OverlayError(f"{name}: weights {w.shape}: expected (N, K)")
        split = row_split(w.shape[0], self.config.pe, len(self.engines))
        parts = [(a, b, eng.load_layer(w[a:b], name=f"{name}[{a}:{b}]"))
                 for eng, (a, b) in zip(self.engines, split, strict=False)]
        return GroupLayer(name, int(w.shape[0]), int(w.shape[1]), parts)

    def run(self, layer: GroupLayer, x_int8: np.ndarray, vectors: int | None = None,
            timeout_s: float = 10.0) -> tuple[np.ndarray, Timing]:
        """y = W x over all engines: (int32 M x N results, Timing of the busiest engine,
        with every engine's in ``Timing.per_engine``)."""
        deadline = time.monotonic() + timeout_s
        t0 = time.perf_counter()
        calls = [self.engines[i]._begin(part, x_int8, vectors, deadline)
                 for i, (_, _, part) in enumerate(layer.parts)]
        # lockstep: every engine's next transfer is issued before any is waited on
        for group in itertools.zip_longest(*(c.steps() for c in calls)):
            started = [(c, step) for c, step in zip(calls, group, strict=True) if step]
            for c, step in started:
                c.engine._transfer(c, step)
            for c, step in started:
                c.engine._await(c, step)
        results = [c.engine._end(c) for c in calls]
        wall = time.perf_counter() - t0
        y = np.concatenate([r[0] for r in results], axis=1)
        timings = tuple(r[1] for r in results)
        top = max(timings, key=lambda t: t.busy_cycles)
        return y, Timing(wall, top.busy_cycles, top.stall_in_cycles, top.stall_out_cycles,
                         top.clock_mhz, timings, top.port_stall_cycles)


@dataclass
class _Call:
    """One started call on one engine: what is left to send and where results go."""

    engine: Any
    layer: Layer
    m: int
    v: int
    per_vec: int
    act_buf: Any
    out_buf: Any
    out_bytes: int
    deadline: float
    before: tuple[int, int, int]
    t0: float

    def steps(self) -> list[tuple[Any, int, int, str]]:
        """MM2S transfers in order: per pass, its activations, then the weights, each cut
        into chunks the DMA length register holds (buffer, offset, bytes, what)."""
        beat = self.engine.config.stream_bits // 8
        chunk = (self.engine.dma.buffer_max_size // beat) * beat
        out = []
        for p in range(0, self.m, self.v):
            vp = min(self.v, self.m - p)
            for buf, start, nbytes, what in (
                    (self.act_buf, p * self.per_vec, vp * self.per_vec, "activations"),
                    (self.layer.buffer, 0, self.layer.nbytes, "weights")):
                for at in range(start, start + nbytes, chunk):
                    out.append((buf, at, min(chunk, start + nbytes - at), what))
        return out


def _define(pynq) -> type:
    class TernaryGemv(pynq.DefaultIP):
        """Driver of the ternary_gemv engine: config check, weight buffers, one layer per call.

        ``dma`` must be the AXI DMA whose MM2S feeds the engine's input stream and whose
        S2MM takes its results (``open_overlay`` sets it).
        """

        bindto = [VLNV]  # noqa: RUF012 - pynq reads this class attribute as a list

        def __init__(self, description: dict) -> None:
            super().__init__(description=description)
            self.dma = None
            self.overlay = None
            self.clock_mhz: float | None = None
            #: The HP port's width in bits (None: unknown), see ``Timing.port_stall_cycles``.
            self.port_bits: int | None = None
            self._config: regs.EngineConfig | None = None
            self._out = None
            self._act = None

        # -- configuration ---------------------------------------------------------------
        @property
        def config(self) -> regs.EngineConfig:
            """The build parameters the engine reports (read once)."""
            if self._config is None:
                words = {off: self.read(off) for off in regs.CONFIG_OFFSETS}
                try:
                    self._config = regs.EngineConfig.from_words(words)
                except ValueError as e:
                    raise OverlayError(str(e)) from None
            return self._config

        def check(self, pe: int, simd: int, packing: str, vectors: int = 1, max_k: int = 1,
                  stream_bits: int | None = None) -> regs.EngineConfig:
            """Raise ``OverlayError`` unless this engine can run the planned design point."""
            why = self.config.mismatches(pe, simd, packing, vectors, max_k, stream_bits)
            if why:
                raise OverlayError("overlay does not match the plan: " + "; ".join(why))
            return self.config

        def counters(self) -> tuple[int, int, int]:
            """(busy, stall_in, stall_out) cycles since reset; read while the engine is idle."""
            return tuple(self.read(lo) | self.read(lo + 4) << 32
                         for lo in (regs.BUSY_LO, regs.STALL_IN_LO, regs.STALL_OUT_LO))

        # -- buffers ---------------------------------------------------------------------
        def _allocate(self, nbytes: int):
            return pynq.allocate(shape=(max(nbytes, 1),), dtype=np.uint8,
                                 target=self.device)

        def load_layer(self, w_ternary: np.ndarray, name: str = "layer") -> Layer:
            """Pack ternary weights (N x K int8) into the engine's tiles, in a DMA buffer."""
            c = self.config
            w = np.asarray(w_ternary)
            if w.ndim != 2 or w.shape[1] > c.kmax:
                raise OverlayError(f"{name}: weights {w.shape}: expected (N, K) with "
                                   f"K <= {c.kmax} (the engine's KMAX)")
            tiles = weight_tiles(w, c.pe, c.simd, c.packing)
            buf = self._allocate(tiles.nbytes)
            buf[:tiles.nbytes] = tiles.reshape(-1)
            buf.flush()
            return Layer(name, int(w.shape[0]), int(w.shape[1]), buf)

        def _scratch(self, attr: str, nbytes: int):
            buf = getattr(self, attr)
            if buf is None or buf.nbytes < nbytes:
                buf = self._allocate(nbytes)
                setattr(self, attr, buf)
            return buf

        # -- one call --------------------------------------------------------------------
        def run(self, layer: Layer, x_int8: np.ndarray, vectors: int | None = None,
                timeout_s: float = 10.0) -> tuple[np.ndarray, Timing]:
            """y = W x for M vectors: (int32 M x N results, Timing).

            ``vectors`` (V, default: the engine's VMAX) vectors share each weight pass.
            """
            call = self._begin(layer, x_int8, vectors, time.monotonic() + timeout_s)
            for step in call.steps():
                self._transfer(call, step)
                self._await(call, step)
            return self._end(call)

        def _begin(self, layer: Layer, x_int8: np.ndarray, vectors: int | None,
                   deadline: float) -> _Call:
            """Check the call, stage the activations, write N/K/M/V, arm S2MM, start."""
            if self.dma is None:
                raise OverlayError(f"{layer.name}: no DMA attached (use open_overlay)")
            c = self.config
            x = np.asarray(x_int8)
            if x.ndim == 1:
                x = x[None, :]
            if x.dtype != np.int8 or x.ndim != 2 or x.shape[1] != layer.k:
                raise OverlayError(f"{layer.name}: activations {x.dtype} {x.shape}: expected "
                                   f"int8 (M, {layer.k})")
            m = x.shape[0]
            v = min(c.vmax, m) if vectors is None else vectors
            if not 1 <= v <= c.vmax:
                raise OverlayError(f"{layer.name}: vectors={v}: expected 1..{c.vmax}")
            beat = c.stream_bits // 8
            per_vec = math.ceil(layer.k / beat) * beat
            acts = activation_beats(x, c.stream_bits).reshape(-1)
            act_buf = self._scratch("_act", acts.nbytes)
            act_buf[:acts.nbytes] = acts
            act_buf.flush()
            out_bytes = math.ceil(layer.n / c.pe) * m * 4 * c.pe
            out_buf = self._scratch("_out", out_bytes)

            for off, val in ((regs.N, layer.n), (regs.K, layer.k), (regs.M, m), (regs.V, v)):
                self.write(off, val)
            call = _Call(self, layer, m, v, per_vec, act_buf, out_buf, out_bytes, deadline,
                         self.counters(), time.perf_counter())
            self.dma.recvchannel.transfer(out_buf, 0, out_bytes)
            self.write(regs.CTRL, regs.AP_START)
            return call

        def _transfer(self, call: _Call, step: tuple) -> None:
            buf, start, nbytes, _ = step
            self.dma.sendchannel.transfer(buf, start, nbytes)

        def _await(self, call: _Call, step: tuple) -> None:
            send = self.dma.sendchannel
            self._wait_idle(send, call.layer, call.deadline, step[3] + " (MM2S)")
            send.wait()

        def _end(self, call: _Call) -> tuple[np.ndarray, Timing]:
            """Wait for the results and ap_done; parse; read the counters."""
            layer, m, v, c = call.layer, call.m, call.v, self.config
            recv = self.dma.recvchannel
            self._wait_idle(recv, layer, call.deadline, "results (S2MM)")
            recv.wait()
            while not self.read(regs.CTRL) & regs.AP_DONE:
                self._check_deadline(layer, call.deadline, "ap_done")
            wall = time.perf_counter() - call.t0
            if self.read(regs.STATUS) & regs.STATUS_ERR:
                raise OverlayError(f"{layer.name}: the engine refused N={layer.n} K={layer.k} "
                                   f"M={m} V={v}")
            after = self.counters()
            busy, stall_in, stall_out = (a - b for a, b in zip(after, call.before,
                                                                 strict=True))
            if recv.transferred != call.out_bytes:
                raise OverlayError(f"{layer.name}: received {recv.transferred} result bytes, "
                                   f"expected {call.out_bytes}")
            y = parse_output_stream(np.asarray(call.out_buf[:call.out_bytes]), layer.n, m,
                                    c.pe, v)
            beats = sum(step[2] for step in call.steps()) // (c.stream_bits // 8)
            return y, Timing(wall, busy, stall_in, stall_out, self.clock_mhz,
                             port_stall_cycles=port_stall_cycles(beats, c.stream_bits,
                                                                 self.port_bits))

        def _wait_idle(self, channel, layer: Layer, deadline: float, what: str) -> None:
            _wait_idle(self, channel, deadline, f"layer {layer.name}", what, "engine")

        def _check_deadline(self, layer: Layer, deadline: float, what: str) -> None:
            _check_deadline(self, deadline, f"layer {layer.name}", what, "engine")

    return TernaryGemv


# -- the attention unit kv_attn ---------------------------------------------------------------

@dataclass
class AttnCache:
    """One decoder layer's int8 KV cache, in the two DMA buffers the unit streams.

    Each buffer is ``slot`` bytes then ``capacity`` positions of rows ``[H, D]`` int8 in (t, h)
    order (the order both calls stream them). The K buffer's slot holds the largest q block
    (``H*G*D`` bytes), the V buffer's the largest p block (``ceil(capacity*H*G/8)`` beats of
    uint16):
    a call writes its block into the end of the slot, so block and rows are one contiguous,
    beat-aligned range (the DMA has no realignment engine). Scales stay on the PS.
    """

    name: str
    kv_heads: int
    head_dim: int
    capacity: int
    q_slot: int
    p_slot: int
    k_buf: Any
    v_buf: Any
    k_scale: np.ndarray      # float32 [capacity, H]
    v_scale: np.ndarray
    length: int = 0

    @property
    def row_bytes(self) -> int:
        """Bytes one position adds to each buffer."""
        return self.kv_heads * self.head_dim

    def rows(self) -> KvRows:
        """The cached rows as the unit sees them (read back from the buffers)."""
        n, shape = self.length * self.row_bytes, (self.length, self.kv_heads, self.head_dim)
        k8 = np.asarray(self.k_buf[self.q_slot:self.q_slot + n]).view(np.int8).reshape(shape)
        v8 = np.asarray(self.v_buf[self.p_slot:self.p_slot + n]).view(np.int8).reshape(shape)
        return KvRows(k8, self.k_scale[:self.length], v8, self.v_scale[:self.length])


def attn_slots(group: int, head_dim: int, kv_heads: int, capacity: int) -> tuple[int, int]:
    """(q slot, p slot) in bytes: the largest block of each mode, in whole 16-byte beats
    (the p block holds 2 bytes per probability)."""
    return (kv_heads * group * head_dim,
            kv_attn_p_beats(capacity, kv_heads, group) * KV_ATTN_BEAT_BYTES)


_ATTN_CLASS: type | None = None


def attn_driver_class() -> type:
    """The ``pynq.DefaultIP`` subclass bound to kv_attn (defined on first call)."""
    global _ATTN_CLASS
    if _ATTN_CLASS is None:
        _ATTN_CLASS = _define_attn(_pynq())
    return _ATTN_CLASS


def open_attention(ol: Any, clock_mhz: float | None = None):
    """The overlay's kv_attn driver wired to ``axi_dma_attn`` (``ol``: a ``pynq.Overlay``,
    e.g. ``open_overlay(...).overlay``). ``attn_driver_class`` must have run before the
    overlay was loaded for the IP to bind to it; ``open_overlay`` does not, so this checks."""
    cls = attn_driver_class()
    names = [n for n, ip in ol.ip_dict.items() if ip.get("type") == KV_ATTN_VLNV]
    if len(names) != 1:
        raise OverlayError(f"expected one {KV_ATTN_VLNV} IP (built with ATTN=1), found "
                           f"{names or 'none'}")
    if KV_ATTN_DMA not in ol.ip_dict:
        raise OverlayError(f"the attention unit {names[0]} has no {KV_ATTN_DMA}")
    unit = getattr(ol, names[0])
    if not isinstance(unit, cls):
        raise OverlayError(f"the attention IP {names[0]} did not bind to {cls.__name__}")
    unit.dma = getattr(ol, KV_ATTN_DMA)
    unit.clock_mhz = clock_mhz
    return unit


def _define_attn(pynq) -> type:
    class KvAttn(pynq.DefaultIP):
        """Driver of kv_attn: config check, KV cache buffers, the two calls of a step.

        ``dma`` must be the AXI DMA feeding the unit (``axi_dma_attn``; ``open_attention``
        sets it). The step's PS arithmetic is ``dse.packing.kv_attn_step``'s, so a board run
        computes the same floats as the reference and the RTL from the same integers.
        """

        bindto = [KV_ATTN_VLNV]  # noqa: RUF012 - pynq reads this class attribute as a list

        def __init__(self, description: dict) -> None:
            super().__init__(description=description)
            self.dma = None
            self.clock_mhz: float | None = None
            self._config: kv_attn_regs.AttnConfig | None = None
            self._out = None

        @property
        def config(self) -> kv_attn_regs.AttnConfig:
            """The build parameters the unit reports (read once; ID and version checked)."""
            if self._config is None:
                words = {off: self.read(off) for off in kv_attn_regs.CONFIG_OFFSETS}
                try:
                    self._config = kv_attn_regs.AttnConfig.from_words(words)
                except ValueError as e:
                    raise OverlayError(str(e)) from None
                if self._config.stream_bits != KV_ATTN_BEAT_BYTES * 8:
                    raise OverlayError(f"kv_attn stream is {self._config.stream_bits} bits, "
                                       f"this driver streams {KV_ATTN_BEAT_BYTES * 8}")
            return self._config

        def check(self, group: int, head_dim: int, kv_heads: int,
                  positions: int = 1) -> kv_attn_regs.AttnConfig:
            """Raise ``OverlayError`` (one line) unless the unit can run this attention."""
            why = self.config.mismatches(group, head_dim, kv_heads, positions)
            if why:
                raise OverlayError("kv_attn does not match the model: " + "; ".join(why))
            return self.config

        def counters(self) -> tuple[int, int, int]:
            """(busy, stall_in, stall_out) cycles since reset; read while the unit is idle."""
            r = kv_attn_regs
            return tuple(self.read(lo) | self.read(lo + 4) << 32
                         for lo in (r.BUSY_LO, r.STALL_IN_LO, r.STALL_OUT_LO))

        def _allocate(self, nbytes: int):
            return pynq.allocate(shape=(max(nbytes, 1),), dtype=np.uint8, target=self.device)

        # -- the cache ---------------------------------------------------------------------
        def new_cache(self, kv_heads: int, capacity: int, name: str = "layer") -> AttnCache:
            """Empty cache buffers for one layer (``capacity`` <= TMAX: one call covers it)."""
            c = self.config
            self.check(c.g, c.d, kv_heads, capacity)
            if capacity < 1:
                raise OverlayError(f"{name}: cache capacity {capacity}: expected >= 1")
            q_slot, p_slot = attn_slots(c.g, c.d, kv_heads, capacity)
            rows = capacity * kv_heads * c.d
            return AttnCache(name, kv_heads, c.d, capacity, q_slot, p_slot,
                             self._allocate(q_slot + rows), self._allocate(p_slot + rows),
                             np.zeros((capacity, kv_heads), np.float32),
                             np.zeros((capacity, kv_heads), np.float32))

        def append(self, cache: AttnCache, k: np.ndarray, v: np.ndarray) -> None:
            """Quantize new tokens' K and V (float ``[n, H, D]``) into the cache's next rows."""
            rows = quantize_kv(k, v)
            n = rows.positions
            if rows.k8.shape[1:] != (cache.kv_heads, cache.head_dim):
                raise OverlayError(f"{cache.name}: K/V rows {rows.k8.shape[1:]}, cache holds "
                                   f"({cache.kv_heads}, {cache.head_dim})")
            if cache.length + n > cache.capacity:
                raise OverlayError(f"{cache.name}: {cache.length} + {n} positions exceed the "
                                   f"cache's {cache.capacity}")
            at, nb = cache.length * cache.row_bytes, n * cache.row_bytes
            cache.k_buf[cache.q_slot + at:cache.q_slot + at + nb] = rows.k8.reshape(-1).view(
                np.uint8)
            cache.v_buf[cache.p_slot + at:cache.p_slot + at + nb] = rows.v8.reshape(-1).view(
                np.uint8)
            cache.k_scale[cache.length:cache.length + n] = rows.k_scale
            cache.v_scale[cache.length:cache.length + n] = rows.v_scale
            cache.k_buf.flush()
            cache.v_buf.flush()
            cache.length += n

        # -- one call ----------------------------------------------------------------------
        def run(self, mode: int, cache: AttnCache, block: np.ndarray,
                timeout_s: float = 10.0) -> tuple[np.ndarray, Timing]:
            """One call over the cache's ``length`` positions: int32 ``[T, H, G]`` (MODE 0,
            ``block`` q int8 ``[H, G, D]``) or ``[H, D, G]`` (MODE 1, ``block`` p uint16
            ``[T, H, G]``, streamed little-endian), and its Timing."""
            if self.dma is None:
                raise OverlayError(f"{cache.name}: no DMA attached (use open_attention)")
            c = self.config
            t, h = cache.length, cache.kv_heads
            what = f"kv_attn {cache.name} MODE {mode} T={t} H={h}"
            if t < 1:
                raise OverlayError(f"{what}: the cache is empty")
            blk = np.asarray(block)
            if mode == MODE_SCORES:
                want, dtype, buf, slot = (h, c.g, c.d), np.int8, cache.k_buf, cache.q_slot
            elif mode == MODE_XV:
                want, dtype, buf, slot = (t, h, c.g), np.uint16, cache.v_buf, cache.p_slot
            else:
                raise OverlayError(f"{what}: mode must be 0 (scores) or 1 (x V)")
            if blk.dtype != dtype or blk.shape != want:
                raise OverlayError(f"{what}: block {blk.dtype} {blk.shape}, expected "
                                   f"{np.dtype(dtype)} {want}")
            beat = KV_ATTN_BEAT_BYTES
            raw = blk.astype(blk.dtype.newbyteorder("<")).reshape(-1).view(np.uint8)
            nblk = math.ceil(raw.size / beat) * beat
            start = slot - nblk
            padded = np.zeros(nblk, np.uint8)
            padded[:raw.size] = raw
            buf[start:slot] = padded
            buf.flush()
            nbytes = nblk + t * cache.row_bytes
            out_bytes = kv_attn_output_beats(mode, t, h, c.d) * 4 * c.g
            if self._out is None or self._out.nbytes < out_bytes:
                self._out = self._allocate(out_bytes)
            deadline = time.monotonic() + timeout_s
            r = kv_attn_regs
            for off, val in ((r.MODE, mode), (r.T, t), (r.H, h)):
                self.write(off, val)
            before = self.counters()
            t0 = time.perf_counter()
            recv, send = self.dma.recvchannel, self.dma.sendchannel
            recv.transfer(self._out, 0, out_bytes)
            self.write(r.CTRL, r.AP_START)
            chunk = (self.dma.buffer_max_size // beat) * beat
            for at in range(start, start + nbytes, chunk):
                send.transfer(buf, at, min(chunk, start + nbytes - at))
                self._wait_idle(send, what, deadline, "the input stream (MM2S)")
                send.wait()
            self._wait_idle(recv, what, deadline, "results (S2MM)")
            recv.wait()
            while not self.read(r.CTRL) & r.AP_DONE:
                self._check_deadline(what, deadline, "ap_done")
            wall = time.perf_counter() - t0
            if self.read(r.STATUS) & r.STATUS_ERR:
                raise OverlayError(f"{what}: the unit refused the call (TMAX {c.tmax}, "
                                   f"HMAX {c.hmax})")
            busy, stall_in, stall_out = (a - b for a, b in zip(self.counters(), before,
                                                                 strict=True))
            if recv.transferred != out_bytes:
                raise OverlayError(f"{what}: received {recv.transferred} result bytes, "
                                   f"expected {out_bytes}")
            y = parse_kv_attn_output(mode, np.asarray(self._out[:out_bytes]), t, h, c.g, c.d)
            return y, Timing(wall, busy, stall_in, stall_out, self.clock_mhz)

        def attention_step(self, cache: AttnCache, q: np.ndarray, timeout_s: float = 10.0
                           ) -> tuple[AttnStep, tuple[Timing, Timing]]:
            """Both calls of one step with the PS softmax between (``run_step``): the step's
            every number, and the two calls' Timings (MODE 0, MODE 1)."""
            timings: list[Timing] = []

            def call(mode: int, block: np.ndarray, _rows: np.ndarray) -> np.ndarray:
                y, tm = self.run(mode, cache, block, timeout_s)
                timings.append(tm)
                return y

            step = run_step(np.asarray(q, dtype=np.float32), cache.rows(), call)
            return step, (timings[0], timings[1])

        def _wait_idle(self, channel, what: str, deadline: float, waiting: str) -> None:
            _wait_idle(self, channel, deadline, what, waiting, "kv_attn")

        def _check_deadline(self, what: str, deadline: float, waiting: str) -> None:
            _check_deadline(self, deadline, what, waiting, "kv_attn")

    return KvAttn
