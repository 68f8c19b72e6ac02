"""PYNQ driver of the overlay's PL units: the ternary_gemv engines (one Linear layer for M
vectors) and the kv_attn attention units (one decode attention step), with their timings.

On the board::

    from dse.hw.pynq_driver import open_overlay
    eng = open_overlay("tgemv_zcu104.bit")          # binds the IP and its AXI DMA
    eng.check(pe=16, simd=32, packing="i2", vectors=4, max_k=6912)
    layer = eng.load_layer(w_ternary, name="layers.0.mlp.down_proj")
    y, timing = eng.run(layer, x_int8)               # y: int32 (M, N)

Why it is built this way:

- Every unit speaks the same protocol (overlays/rtl/axil_ctrl.v, ``dse.hw.regs``): arguments
  from 0x10, ap_start/ap_done, STATUS, 64-bit busy/stall counters, its build words, one AXI DMA
  in simple mode feeding its input stream and taking its results. ``UnitDriver`` holds that
  protocol once (config decode through the register map, counters, buffers, the call: write
  the arguments, read the counters, arm S2MM, ap_start, stream MM2S in chunks the DMA length
  register holds, wait with deadlines, ap_done, STATUS, the received byte count, Timing); the
  engine and the attention unit add only what their calls carry.
- pynq is imported only when a driver is used (it pins numpy<2 and exists on the board, not
  in dse's planning path). ``TernaryGemv`` and ``KvAttn`` are created on first use, which
  also registers them with pynq's ``DefaultIP`` binding (``bindto``), so ``open_overlay``
  defines them before ``pynq.Overlay`` scans the design.
- Weights are packed once into a DMA buffer (``load_layer``) and streamed again for every
  pass of up to V vectors, as the engine expects (overlays/STREAM.md); activations go in a
  second buffer. Both travel over one AXI DMA MM2S channel as consecutive transfers: the
  engine ignores TLAST and only counts beats, so the split costs stall cycles, never results.
- Every wait has a deadline, because ``DMA.wait()`` spins forever: a hung unit raises
  ``OverlayTimeout`` naming the call and the registers it saw.
- Several instances of a unit run one call together: ``EngineGroup`` splits a layer's rows
  (``row_split``), ``AttnGroup`` an attention call's kv heads (``instance_split``), the cost
  model's own splits; every instance's transfers are issued before any is waited on.

The attention units (``kv_attn_<a>``, each with its own ``axi_dma_attn_<a>``,
overlays/KV_ATTN.md)::

    attn = open_attention(eng.overlay)               # one unit, or an AttnGroup of several
    attn.check(group=4, head_dim=128, kv_heads=5, positions=4096)
    cache = attn.new_cache(kv_heads=5, capacity=4096, name="layers.0")
    attn.append(cache, k_new, v_new)                 # float [n, 5, 128]: int8 rows + scales
    step, (t0, t1) = attn.attention_step(cache, q)   # q float [20, 128]; step.out float32

A layer's cache lives in two DMA buffers per unit, each a slot followed by the int8 rows of the
unit's kv heads in (t, h) order; a call writes its q (or p) block into the end of the slot, so
the block and the first T positions' rows are one contiguous range: one simple-mode MM2S
transfer per call.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from dse.hw import kv_attn_regs, regs
from dse.model.kv_attn import KV_ATTN_BEAT_BYTES, MODE_SCORES, MODE_XV, kv_attn_p_beats
from dse.model.split import instance_split, row_split
from dse.packing.kv_attn_step import AttnStep, KvRows, quantize_kv, run_step
from dse.packing.kv_attn_stream import kv_attn_output_beats, parse_kv_attn_output
from dse.packing.stream import (
    activation_beats,
    output_stream_beats,
    parse_output_stream,
    port_stall_cycles,
    weight_tiles,
)

#: The VLNV the Vivado flow packages the RTL under (overlays/vivado/package_ip.tcl).
VLNV = "dse:hls:ternary_gemv:1.0"
#: The attention unit's VLNV; unit ``kv_attn_<a>``'s DMA is ``axi_dma_attn_<a>``
#: (overlays/vivado/build_overlay.tcl).
KV_ATTN_VLNV = "dse:hls:kv_attn:1.0"
KV_ATTN_DMA = "axi_dma_attn"


class OverlayError(RuntimeError):
    """The overlay does not match the plan, or refused a call."""


class OverlayTimeout(OverlayError):
    """A call did not finish in time (the message names the call and what was seen)."""


@dataclass(frozen=True)
class Timing:
    """How long one call took: host wall time and the unit's own cycle counters."""

    wall_s: float
    busy_cycles: int
    stall_in_cycles: int
    stall_out_cycles: int
    clock_mhz: float | None = None
    #: Each instance's own timing when the call ran on several (``EngineGroup``,
    #: ``AttnGroup``); the fields above are then the busiest instance's.
    per_engine: tuple[Timing, ...] = ()
    #: Input stalls the HP port's width alone explains: each input beat wider than the port
    #: (64 bits on Zynq-7000, 128 on Zynq UltraScale+) crosses it in ceil(stream / port)
    #: cycles; 0 when the port is as wide as the stream or its width is unknown.
    port_stall_cycles: int = 0

    @property
    def per_unit(self) -> tuple[Timing, ...]:
        """``per_engine`` by the name an attention group's call reads better with."""
        return self.per_engine

    @property
    def pl_s(self) -> float | None:
        """Busy time of the unit in seconds (None without a known PL clock)."""
        return self.busy_cycles / (self.clock_mhz * 1e6) if self.clock_mhz else None

    @property
    def compute_cycles(self) -> int:
        """Busy cycles less stalls: what the unit's cycle formula predicts."""
        return self.busy_cycles - self.stall_in_cycles - self.stall_out_cycles


def _busiest(wall_s: float, timings: tuple[Timing, ...]) -> Timing:
    """One Timing for a call several instances ran at once: the busiest instance's counters,
    the call's wall time, every instance's Timing in ``per_engine``."""
    top = max(timings, key=lambda t: t.busy_cycles)
    return Timing(wall_s, top.busy_cycles, top.stall_in_cycles, top.stall_out_cycles,
                  top.clock_mhz, timings, top.port_stall_cycles)


def _pynq():
    import pynq  # lazy on purpose: pynq is a board-only extra that pins numpy<2

    return pynq


def _index(name: str) -> int:
    """The instance number of ``ternary_gemv_3`` / ``axi_dma_3`` / ``kv_attn_1`` (0 without)."""
    tail = name.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else 0


# -- the protocol every unit shares --------------------------------------------------------------

#: One MM2S transfer: (buffer, byte offset, bytes, what it carries).
Step = tuple[Any, int, int, str]


@dataclass
class _Call:
    """One started call on one unit: what is left to send and where results go."""

    unit: Any
    who: str              # what timeouts name ("layer X", "kv_attn X MODE 0 T=5 H=2")
    label: str            # what refusals and byte-count errors start with
    refused: str          # what a set STATUS error bit means for this call
    steps: list[Step]
    out_buf: Any
    out_bytes: int
    deadline: float
    context: Any = None   # what the unit needs to parse the results
    before: tuple[int, int, int] = (0, 0, 0)
    t0: float = 0.0


class UnitDriver:
    """The register-and-DMA protocol of every PL unit, written once (mixed into a
    ``pynq.DefaultIP`` subclass per unit kind: ``read``/``write``/``device`` are its).

    A unit kind sets ``regmap`` (its row of dse/hw/regs.py), ``ip_name`` (how timeouts name
    it), ``_decode`` (its build words into a config) and ``_end`` (its results parsed); its
    calls go through ``_start``, ``_transfer``/``_await`` per step and ``_finish``. ``dma``
    must be the AXI DMA whose MM2S feeds the unit and whose S2MM takes its results.
    """

    regmap: ClassVar[regs.RegisterMap]
    ip_name: ClassVar[str]

    def __init__(self, description: dict) -> None:
        super().__init__(description=description)
        self.dma = None
        self.overlay = None
        self.clock_mhz: float | None = None
        #: The HP port's width in bits (None: unknown), see ``Timing.port_stall_cycles``.
        self.port_bits: int | None = None
        self._config: Any = None
        self._scratch_bufs: dict[str, Any] = {}

    # -- configuration ---------------------------------------------------------------------
    @property
    def config(self):
        """The build parameters the unit reports (read once; ID and version checked)."""
        if self._config is None:
            words = {off: self.read(off) for off in self.regmap.config_offsets}
            try:
                self._config = self._decode(words)
            except ValueError as e:
                raise OverlayError(str(e)) from None
        return self._config

    def _decode(self, words: dict[int, int]) -> Any:
        raise NotImplementedError

    def counters(self) -> tuple[int, int, int]:
        """(busy, stall_in, stall_out) cycles since reset; read while the unit is idle."""
        return tuple(self.read(lo) | self.read(lo + 4) << 32 for lo in regs.COUNTERS)

    # -- buffers ---------------------------------------------------------------------------
    def _allocate(self, nbytes: int):
        return _pynq().allocate(shape=(max(nbytes, 1),), dtype=np.uint8, target=self.device)

    def _scratch(self, key: str, nbytes: int):
        """A reusable buffer of at least ``nbytes`` (grown, never shrunk)."""
        buf = self._scratch_bufs.get(key)
        if buf is None or buf.nbytes < nbytes:
            buf = self._allocate(nbytes)
            self._scratch_bufs[key] = buf
        return buf

    def _chunks(self, buf, start: int, nbytes: int, what: str) -> list[Step]:
        """``nbytes`` from ``start`` as MM2S transfers the DMA length register holds, each a
        whole number of the unit's input beats."""
        beat = self.config.stream_bits // 8
        chunk = (self.dma.buffer_max_size // beat) * beat
        return [(buf, at, min(chunk, start + nbytes - at), what)
                for at in range(start, start + nbytes, chunk)]

    # -- one call ----------------------------------------------------------------------------
    def _start(self, call: _Call, args: dict[str, int]) -> _Call:
        """Write the arguments (in the map's order), read the counters, arm S2MM for the
        results, start."""
        for name in self.regmap.args:
            self.write(self.regmap.arg(name), args[name])
        call.before = self.counters()
        call.t0 = time.perf_counter()
        self.dma.recvchannel.transfer(call.out_buf, 0, call.out_bytes)
        self.write(regs.CTRL, regs.AP_START)
        return call

    def _transfer(self, call: _Call, step: Step) -> None:
        buf, start, nbytes, _ = step
        self.dma.sendchannel.transfer(buf, start, nbytes)

    def _await(self, call: _Call, step: Step) -> None:
        send = self.dma.sendchannel
        self._wait_idle(send, call, step[3] + " (MM2S)")
        send.wait()

    def _finish(self, call: _Call) -> tuple[np.ndarray, Timing]:
        """Wait for the results and ap_done; check STATUS and the bytes received; the result
        bytes and the call's Timing."""
        recv = self.dma.recvchannel
        self._wait_idle(recv, call, "results (S2MM)")
        recv.wait()
        while not self.read(regs.CTRL) & regs.AP_DONE:
            self._check_deadline(call, "ap_done")
        wall = time.perf_counter() - call.t0
        if self.read(regs.STATUS) & regs.STATUS_ERR:
            raise OverlayError(f"{call.label}: {call.refused}")
        busy, stall_in, stall_out = (a - b for a, b in zip(self.counters(), call.before,
                                                             strict=True))
        if recv.transferred != call.out_bytes:
            raise OverlayError(f"{call.label}: received {recv.transferred} result bytes, "
                               f"expected {call.out_bytes}")
        stream_bits = self.config.stream_bits
        beats = sum(step[2] for step in call.steps) // (stream_bits // 8)
        return (np.asarray(call.out_buf[:call.out_bytes]),
                Timing(wall, busy, stall_in, stall_out, self.clock_mhz,
                       port_stall_cycles=port_stall_cycles(beats, stream_bits,
                                                           self.port_bits)))

    def _end(self, call: _Call) -> tuple[np.ndarray, Timing]:
        raise NotImplementedError

    def _run_alone(self, call: _Call) -> tuple[np.ndarray, Timing]:
        """Every transfer of a started call in turn, then its results."""
        for step in call.steps:
            self._transfer(call, step)
            self._await(call, step)
        return self._end(call)

    def _wait_idle(self, channel, call: _Call, waiting: str) -> None:
        """Poll a DMA channel until idle: pynq's own error on a DMA fault, OverlayTimeout past
        the call's deadline."""
        while not channel.idle:
            if channel.error:
                channel.wait()   # raises pynq's description of the DMA error
            self._check_deadline(call, waiting)

    def _check_deadline(self, call: _Call, waiting: str) -> None:
        """OverlayTimeout naming what was awaited, with the unit's CTRL and both DMA
        statuses."""
        if time.monotonic() > call.deadline:
            raise OverlayTimeout(
                f"{call.who}: timed out waiting for {waiting} ({self.ip_name} "
                f"CTRL={self.read(regs.CTRL):#x}, MM2S status={self.dma.mmio.read(0x04):#x}, "
                f"S2MM status={self.dma.mmio.read(0x34):#x})")


def run_together(calls: list[_Call]) -> list[tuple[np.ndarray, Timing]]:
    """Started calls on several units, all in flight at once: every unit's next transfer is
    issued before any is waited on (lockstep), then each unit's results."""
    for group in itertools.zip_longest(*(c.steps for c in calls)):
        started = [(c, step) for c, step in zip(calls, group, strict=True) if step]
        for c, step in started:
            c.unit._transfer(c, step)
        for c, step in started:
            c.unit._await(c, step)
    return [c.unit._end(c) for c in calls]


def _same_config(units: list) -> Any:
    configs = [u.config for u in units]
    if any(c != configs[0] for c in configs):
        raise OverlayError(f"units report different builds: {configs}")
    return configs[0]


def _count_check(have: int, want: int | None, what: str) -> list[str]:
    return [f"{have} {what}, plan wants {want}"] if want is not None and want != have else []


# -- the engine ternary_gemv ----------------------------------------------------------------------

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


class EngineDriver(UnitDriver):
    """The engine's calls: config check, weight buffers, one layer per call."""

    regmap = regs.ENGINE
    ip_name = "engine"

    def _decode(self, words: dict[int, int]) -> regs.EngineConfig:
        return regs.EngineConfig.from_words(words)

    def check(self, pe: int, simd: int, packing: str, vectors: int = 1, max_k: int = 1,
              stream_bits: int | None = None, engines: int | None = None,
              vectors_per_clock: int | None = None) -> regs.EngineConfig:
        """Raise ``OverlayError`` unless this engine can run the planned design point (its
        VMAX holds ``vectors``; with ``vectors_per_clock``, its VPC is that)."""
        why = self.config.mismatches(pe, simd, packing, vectors, max_k, stream_bits,
                                     vectors_per_clock)
        why += _count_check(1, engines, "engine")
        if why:
            raise OverlayError("overlay does not match the plan: " + "; ".join(why))
        return self.config

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

    def run(self, layer: Layer, x_int8: np.ndarray, vectors: int | None = None,
            timeout_s: float = 10.0) -> tuple[np.ndarray, Timing]:
        """y = W x for M vectors: (int32 M x N results, Timing).

        ``vectors`` (V, default: the engine's VMAX) vectors share each weight pass.
        """
        return self._run_alone(self._begin(layer, x_int8, vectors,
                                           time.monotonic() + timeout_s))

    def _begin(self, layer: Layer, x_int8: np.ndarray, vectors: int | None,
               deadline: float) -> _Call:
        """Check the call, stage the activations, then start it: per pass of V vectors, its
        activations and then the weights go out over MM2S."""
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
        per_vec = math.ceil(layer.k / (c.stream_bits // 8)) * (c.stream_bits // 8)
        acts = activation_beats(x, c.stream_bits).reshape(-1)
        act_buf = self._scratch("act", acts.nbytes)
        act_buf[:acts.nbytes] = acts
        act_buf.flush()
        steps: list[Step] = []
        for p in range(0, m, v):
            vp = min(v, m - p)
            steps += self._chunks(act_buf, p * per_vec, vp * per_vec, "activations")
            steps += self._chunks(layer.buffer, 0, layer.nbytes, "weights")
        # one result beat of VPC x PE int32 per row fold and group of VPC vectors of a pass
        out_bytes = output_stream_beats(layer.n, m, c.pe, v, c.vpc) * 4 * c.pe * c.vpc
        call = _Call(self, f"layer {layer.name}", layer.name,
                     f"the engine refused N={layer.n} K={layer.k} M={m} V={v}", steps,
                     self._scratch("out", out_bytes), out_bytes, deadline, (layer, m, v))
        return self._start(call, {"N": layer.n, "K": layer.k, "M": m, "V": v})

    def _end(self, call: _Call) -> tuple[np.ndarray, Timing]:
        raw, timing = self._finish(call)
        layer, m, v = call.context
        return parse_output_stream(raw, layer.n, m, self.config.pe, v, self.config.vpc), timing


_CLASS: type | None = None


def driver_class() -> type:
    """The ``pynq.DefaultIP`` subclass bound to the engine (defined on first call)."""
    global _CLASS
    if _CLASS is None:
        pynq = _pynq()

        class TernaryGemv(EngineDriver, pynq.DefaultIP):
            """Driver of the ternary_gemv engine (``EngineDriver`` on pynq's ``DefaultIP``).

            ``dma`` must be the AXI DMA whose MM2S feeds the engine's input stream and whose
            S2MM takes its results (``open_overlay`` sets it).
            """

            bindto = [VLNV]  # noqa: RUF012 - pynq reads this class attribute as a list

        _CLASS = TernaryGemv
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
    its own HP port): an ``EngineGroup`` that splits every layer's rows across them. The
    attention units are ``open_attention(engines.overlay)``'s. ``port_bits``: the board's HP
    port width (its ``link.port_width_bits``), for ``Timing.port_stall_cycles``.
    """
    cls = driver_class()
    pynq = _pynq()
    ol = pynq.Overlay(bitfile, download=download)
    names = sorted((name for name, ip in ol.ip_dict.items() if ip.get("type") == VLNV),
                   key=_index)
    if not names:
        raise OverlayError(f"{bitfile}: expected a {VLNV} IP, found none")
    dmas = sorted((name for name, ip in ol.ip_dict.items()
                   if "axi_dma" in str(ip.get("type", ""))
                   and not name.startswith(KV_ATTN_DMA)),   # the attention units' DMAs
                  key=_index)
    try:
        clock_mhz = float(pynq.Clocks.fclk0_mhz)
    except Exception:  # no PS clock registers off the board
        clock_mhz = None
    engines = []
    for name in names:
        if len(names) == 1:
            dma = dma_name or (dmas[0] if len(dmas) == 1 else None)
            if dma is None:
                raise OverlayError(f"{bitfile}: expected one AXI DMA (or dma_name=), found "
                                   f"{dmas}")
        else:
            dma = f"axi_dma_{_index(name)}"
            if dma not in dmas:
                raise OverlayError(f"{bitfile}: engine {name} has no {dma} (found {dmas})")
        eng = _bind(ol, name, cls, dma, clock_mhz, f"{bitfile}: the engine IP")
        eng.port_bits = port_bits
        engines.append(eng)
    return engines[0] if len(engines) == 1 else EngineGroup(engines)


def _bind(ol: Any, name: str, cls: type, dma: str, clock_mhz: float | None, what: str):
    """The overlay's IP ``name`` (bound to ``cls``) wired to its DMA and the PL clock."""
    ip = getattr(ol, name)
    if not isinstance(ip, cls):
        raise OverlayError(f"{what} {name} did not bind to {cls.__name__}")
    ip.dma = getattr(ol, dma)
    ip.overlay = ol
    ip.clock_mhz = clock_mhz
    return ip


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
        return _same_config(self.engines)

    def check(self, pe: int, simd: int, packing: str, vectors: int = 1, max_k: int = 1,
              stream_bits: int | None = None, engines: int | None = None,
              vectors_per_clock: int | None = None) -> regs.EngineConfig:
        """Raise ``OverlayError`` unless these engines can run the planned design point."""
        why = self.config.mismatches(pe, simd, packing, vectors, max_k, stream_bits,
                                     vectors_per_clock)
        why += _count_check(len(self.engines), engines, "engines")
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
        results = run_together([self.engines[i]._begin(part, x_int8, vectors, deadline)
                                for i, (_, _, part) in enumerate(layer.parts)])
        wall = time.perf_counter() - t0
        y = np.concatenate([r[0] for r in results], axis=1)
        return y, _busiest(wall, tuple(r[1] for r in results))


# -- the attention unit kv_attn -------------------------------------------------------------------

@dataclass
class AttnCache:
    """One decoder layer's int8 KV cache on one unit, in the two DMA buffers it streams.

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


def _check_rows(cache, rows: KvRows) -> None:
    """New rows must fit the cache's heads, head dim and remaining capacity."""
    if rows.k8.shape[1:] != (cache.kv_heads, cache.head_dim):
        raise OverlayError(f"{cache.name}: K/V rows {rows.k8.shape[1:]}, cache holds "
                           f"({cache.kv_heads}, {cache.head_dim})")
    if cache.length + rows.positions > cache.capacity:
        raise OverlayError(f"{cache.name}: {cache.length} + {rows.positions} positions exceed "
                           f"the cache's {cache.capacity}")


def _attention_step(unit, cache, q: np.ndarray, timeout_s: float
                    ) -> tuple[AttnStep, tuple[Timing, Timing]]:
    """Both calls of one step on ``unit`` (a unit or a group) with the PS softmax between
    (``run_step``): the step's every number and the two calls' Timings (MODE 0, MODE 1)."""
    timings: list[Timing] = []

    def call(mode: int, block: np.ndarray, _rows: np.ndarray) -> np.ndarray:
        y, tm = unit.run(mode, cache, block, timeout_s)
        timings.append(tm)
        return y

    step = run_step(np.asarray(q, dtype=np.float32), cache.rows(), call)
    return step, (timings[0], timings[1])


class AttnDriver(UnitDriver):
    """kv_attn's calls: config check, KV cache buffers, the two calls of a step. The step's
    PS arithmetic is ``dse.packing.kv_attn_step``'s, so a board run computes the same floats
    as the reference and the RTL from the same integers."""

    regmap = regs.KV_ATTN
    ip_name = "kv_attn"

    def _decode(self, words: dict[int, int]) -> kv_attn_regs.AttnConfig:
        cfg = kv_attn_regs.AttnConfig.from_words(words)
        if cfg.stream_bits != KV_ATTN_BEAT_BYTES * 8:
            raise ValueError(f"kv_attn stream is {cfg.stream_bits} bits, this driver streams "
                             f"{KV_ATTN_BEAT_BYTES * 8}")
        return cfg

    def check(self, group: int, head_dim: int, kv_heads: int, positions: int = 1,
              units: int | None = None) -> kv_attn_regs.AttnConfig:
        """Raise ``OverlayError`` (one line) unless the unit can run this attention."""
        why = self.config.mismatches(group, head_dim, kv_heads, positions)
        why += _count_check(1, units, "kv_attn unit")
        if why:
            raise OverlayError("kv_attn does not match the model: " + "; ".join(why))
        return self.config

    # -- the cache ---------------------------------------------------------------------------
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
        _check_rows(cache, rows)
        self._store(cache, rows)

    def _store(self, cache: AttnCache, rows: KvRows) -> None:
        """Write quantized rows (int8 ``[n, H, D]``, their scales) after the cache's last."""
        n = rows.positions
        at, nb = cache.length * cache.row_bytes, n * cache.row_bytes
        for buf, slot, codes in ((cache.k_buf, cache.q_slot, rows.k8),
                                 (cache.v_buf, cache.p_slot, rows.v8)):
            buf[slot + at:slot + at + nb] = np.ascontiguousarray(codes).reshape(-1).view(
                np.uint8)
            buf.flush()
        cache.k_scale[cache.length:cache.length + n] = rows.k_scale
        cache.v_scale[cache.length:cache.length + n] = rows.v_scale
        cache.length += n

    # -- one call ----------------------------------------------------------------------------
    def run(self, mode: int, cache: AttnCache, block: np.ndarray,
            timeout_s: float = 10.0) -> tuple[np.ndarray, Timing]:
        """One call over the cache's ``length`` positions: int32 ``[T, H, G]`` (MODE 0,
        ``block`` q int8 ``[H, G, D]``) or ``[H, D, G]`` (MODE 1, ``block`` p uint16
        ``[T, H, G]``, streamed little-endian), and its Timing."""
        return self._run_alone(self._begin(mode, cache, block, time.monotonic() + timeout_s))

    def _begin(self, mode: int, cache: AttnCache, block: np.ndarray, deadline: float) -> _Call:
        """Check the call, write its block into the end of the buffer's slot, then start it:
        block and rows go out as one MM2S range."""
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
        raw = blk.astype(blk.dtype.newbyteorder("<")).reshape(-1).view(np.uint8)
        nblk = math.ceil(raw.size / KV_ATTN_BEAT_BYTES) * KV_ATTN_BEAT_BYTES
        padded = np.zeros(nblk, np.uint8)
        padded[:raw.size] = raw
        buf[slot - nblk:slot] = padded
        buf.flush()
        out_bytes = kv_attn_output_beats(mode, t, h, c.d) * 4 * c.g
        call = _Call(self, what, what, f"the unit refused the call (TMAX {c.tmax}, HMAX "
                     f"{c.hmax})", self._chunks(buf, slot - nblk, nblk + t * cache.row_bytes,
                                                "the input stream"),
                     self._scratch("out", out_bytes), out_bytes, deadline, (mode, t, h))
        return self._start(call, {"MODE": mode, "T": t, "H": h})

    def _end(self, call: _Call) -> tuple[np.ndarray, Timing]:
        raw, timing = self._finish(call)
        mode, t, h = call.context
        c = self.config
        return parse_kv_attn_output(mode, raw, t, h, c.g, c.d), timing

    def attention_step(self, cache: AttnCache, q: np.ndarray, timeout_s: float = 10.0
                       ) -> tuple[AttnStep, tuple[Timing, Timing]]:
        """Both calls of one step with the PS softmax between (``run_step``): the step's
        every number, and the two calls' Timings (MODE 0, MODE 1)."""
        return _attention_step(self, cache, q, timeout_s)


_ATTN_CLASS: type | None = None


def attn_driver_class() -> type:
    """The ``pynq.DefaultIP`` subclass bound to kv_attn (defined on first call)."""
    global _ATTN_CLASS
    if _ATTN_CLASS is None:
        pynq = _pynq()

        class KvAttn(AttnDriver, pynq.DefaultIP):
            """Driver of kv_attn (``AttnDriver`` on pynq's ``DefaultIP``).

            ``dma`` must be the AXI DMA feeding the unit (``axi_dma_attn_<a>``;
            ``open_attention`` sets it).
            """

            bindto = [KV_ATTN_VLNV]  # noqa: RUF012 - pynq reads this class attribute as a list

        _ATTN_CLASS = KvAttn
    return _ATTN_CLASS


def open_attention(ol: Any, clock_mhz: float | None = None, units: int | None = None):
    """The overlay's kv_attn units wired to their DMAs (``kv_attn_<a>`` fed by
    ``axi_dma_attn_<a>``; ``ol``: a ``pynq.Overlay``, e.g. ``open_overlay(...).overlay``): one
    unit's driver, or an ``AttnGroup`` of several. ``units`` is how many the plan wants (a
    one-line OverlayError when the overlay has another number). ``attn_driver_class`` must
    have run before the overlay was loaded for the IPs to bind to it; this checks."""
    cls = attn_driver_class()
    names = sorted((n for n, ip in ol.ip_dict.items() if ip.get("type") == KV_ATTN_VLNV),
                   key=_index)
    if not names:
        raise OverlayError(f"expected a {KV_ATTN_VLNV} IP (built with ATTN=N), found none")
    if units is not None and units != len(names):
        raise OverlayError(f"the overlay has {len(names)} kv_attn unit(s) "
                           f"({', '.join(names)}), the plan wants {units}")
    drivers = []
    for name in names:
        dma = f"{KV_ATTN_DMA}_{_index(name)}"
        if dma not in ol.ip_dict:
            raise OverlayError(f"the attention unit {name} has no {dma}")
        drivers.append(_bind(ol, name, cls, dma, clock_mhz, "the attention IP"))
    return drivers[0] if len(drivers) == 1 else AttnGroup(drivers)


@dataclass
class GroupCache:
    """One layer's KV cache over several units: kv heads [start, stop) of each part on unit i
    (``instance_split``), each part an ``AttnCache`` of that unit's heads."""

    name: str
    kv_heads: int
    head_dim: int
    capacity: int
    parts: list[tuple[int, int, AttnCache]]

    @property
    def length(self) -> int:
        return self.parts[0][2].length

    def rows(self) -> KvRows:
        """Every unit's cached rows, its heads in their places (concatenated along H)."""
        got = [part.rows() for _, _, part in self.parts]
        return KvRows(*(np.concatenate([getattr(r, f) for r in got], axis=1)
                        for f in ("k8", "k_scale", "v8", "v_scale")))


class AttnGroup:
    """Several kv_attn units as one: every call's kv heads split by ``instance_split`` (the
    cost model's own split), each unit holding its heads' cache rows and running its share of
    the call through its own DMA, all in flight at once; the results concatenated along H
    (MODE 0 ``[T, H, G]``, MODE 1 ``[H, D, G]``), so a step equals one unit's bit for bit.
    """

    def __init__(self, units: list) -> None:
        self.units = units

    @property
    def clock_mhz(self) -> float | None:
        return self.units[0].clock_mhz

    @property
    def config(self) -> kv_attn_regs.AttnConfig:
        return _same_config(self.units)

    def split(self, kv_heads: int) -> tuple[tuple[int, int], ...]:
        """The kv heads [start, stop) each unit takes."""
        return instance_split(kv_heads, len(self.units))

    def check(self, group: int, head_dim: int, kv_heads: int, positions: int = 1,
              units: int | None = None) -> kv_attn_regs.AttnConfig:
        """Raise ``OverlayError`` (one line) unless these units can run this attention: each
        must hold the most heads the split gives one."""
        c = self.config
        share = max(b - a for a, b in self.split(kv_heads))
        why = c.mismatches(group, head_dim, share, positions)
        why = [w if not w.startswith(f"holds {c.hmax} kv heads") else
               f"holds {c.hmax} kv heads per unit, the model's {kv_heads} over "
               f"{len(self.units)} units give one {share}" for w in why]
        why += _count_check(len(self.units), units, "kv_attn units")
        if why:
            raise OverlayError("kv_attn does not match the model: " + "; ".join(why))
        return c

    def new_cache(self, kv_heads: int, capacity: int, name: str = "layer") -> GroupCache:
        """Each unit's cache buffers for its heads of one layer."""
        self.check(self.config.g, self.config.d, kv_heads, capacity)
        parts = [(a, b, unit.new_cache(b - a, capacity, name=f"{name}[{a}:{b}]"))
                 for unit, (a, b) in zip(self.units, self.split(kv_heads), strict=False)]
        return GroupCache(name, kv_heads, self.config.d, capacity, parts)

    def append(self, cache: GroupCache, k: np.ndarray, v: np.ndarray) -> None:
        """Quantize new tokens' K and V (float ``[n, H, D]``) once; each unit stores its
        heads' rows."""
        rows = quantize_kv(k, v)
        _check_rows(cache, rows)
        for unit, (a, b, part) in zip(self.units, cache.parts, strict=False):
            unit._store(part, KvRows(rows.k8[:, a:b], rows.k_scale[:, a:b],
                                     rows.v8[:, a:b], rows.v_scale[:, a:b]))

    def run(self, mode: int, cache: GroupCache, block: np.ndarray,
            timeout_s: float = 10.0) -> tuple[np.ndarray, Timing]:
        """One call on every unit at once, each over its heads' block and rows; the results
        concatenated along H, the Timing the busiest unit's (every unit's in ``per_unit``)."""
        what = f"kv_attn {cache.name} MODE {mode}"
        if mode not in (MODE_SCORES, MODE_XV):
            raise OverlayError(f"{what}: mode must be 0 (scores) or 1 (x V)")
        blk = np.asarray(block)
        axis = 0 if mode == MODE_SCORES else 1     # q [H, G, D]; p [T, H, G]
        if blk.ndim != 3 or blk.shape[axis] != cache.kv_heads:
            raise OverlayError(f"{what}: block {blk.dtype} {blk.shape} does not hold "
                               f"{cache.kv_heads} kv heads")
        deadline = time.monotonic() + timeout_s
        t0 = time.perf_counter()
        calls = [unit._begin(mode, part, np.take(blk, range(a, b), axis=axis), deadline)
                 for unit, (a, b, part) in zip(self.units, cache.parts, strict=False)]
        results = run_together(calls)
        wall = time.perf_counter() - t0
        y = np.concatenate([r[0] for r in results], axis=1 if mode == MODE_SCORES else 0)
        return y, _busiest(wall, tuple(r[1] for r in results))

    def attention_step(self, cache: GroupCache, q: np.ndarray, timeout_s: float = 10.0
                       ) -> tuple[AttnStep, tuple[Timing, Timing]]:
        """Both calls of one step over all units (``run_step``): the same step as one unit's,
        and the two calls' Timings (each with every unit's in ``per_unit``)."""
        return _attention_step(self, cache, q, timeout_s)
