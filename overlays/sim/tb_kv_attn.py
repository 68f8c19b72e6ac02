"""cocotb testbench of kv_attn: run a list of attention calls, record what happened.

The case list comes from the JSON file named by ``TGEMV_CASES`` and the per-case record goes
to ``TGEMV_RESULTS`` (both set by ``overlays/sim/sim.py``), as in tb_ternary_gemv.py: one
simulator process runs every case of a build, and pytest judges each record with the numbers
in its message. The cocotb test still fails if any case is wrong.

Per case (mode, T positions, H kv heads, seed): random q int8 [H, G, D] and K int8 [T, H, D]
(MODE 0) or p uint16 [T, H, G] and V int8 [T, H, D] (MODE 1) from the seed, over the full
ranges (-128..127, 0..65535) so sums reach their extremes; the input stream from
``dse.packing.kv_attn_stream`` through an AXI4-Stream source, results through a sink
(optionally both paused at random), arguments and counters over AXI4-Lite, and the results
against ``kv_attn_reference``.

With several units (``TGEMV_UNITS``, a generated top from overlays/sim/sim.py) every call is
split: its kv heads dealt out by ``instance_split`` as the driver deals them, every unit
running its share at once; each unit's results are checked against the reference of its
heads, their concatenation against the whole call's, and each unit's counters recorded.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, with_timeout
from cocotb.utils import get_sim_time
from cocotbext.axi import (
    AxiLiteBus,
    AxiLiteMaster,
    AxiStreamBus,
    AxiStreamFrame,
    AxiStreamSink,
    AxiStreamSource,
)

from dse.hw import kv_attn_regs as regs
from dse.model.kv_attn import MODE_SCORES, kv_attn_reference
from dse.model.split import instance_split
from dse.packing.kv_attn_stream import (
    kv_attn_input_stream,
    kv_attn_output_beats,
    parse_kv_attn_output,
)

CLOCK_NS = 4


def pause_pattern(seed: int, busy_fraction: float) -> itertools.cycle:
    """A repeating random pause pattern (True = pause), as tb_ternary_gemv's."""
    r = random.Random(seed)
    return itertools.cycle([r.random() < busy_fraction for _ in range(997)])


def case_data(case: dict, g: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """The case's block (q or p) and cache (K or V): given (``data``, an .npz with ``block``
    and ``cache``, e.g. one call of a PS-driven attention step), else random from its seed."""
    if case.get("data"):
        with np.load(case["data"]) as z:
            return z["block"], z["cache"]
    rng = np.random.default_rng(case["seed"])
    t, h = case["t"], case["h"]
    cache = rng.integers(-128, 128, size=(t, h, d), dtype=np.int8)
    if case.get("extreme"):
        # every product at its most negative, so int32 sums reach their largest magnitude
        cache[:] = -128
    if case["mode"] == MODE_SCORES:
        block = rng.integers(-128, 128, size=(h, g, d), dtype=np.int8)
        if case.get("extreme"):
            block[:] = -128
    else:
        block = rng.integers(0, 65536, size=(t, h, g), dtype=np.uint16)
        if case.get("extreme"):
            block[:] = 65535
    return block, cache


class Unit:
    """One kv_attn of the DUT with its AXI agents (``prefix``: ``a<i>_`` in a multi-unit top)."""

    def __init__(self, dut, prefix: str = "", index: int = 0) -> None:
        self.dut = dut
        self.index = index
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, prefix + "s_axi_control"),
                                  dut.ap_clk, dut.ap_rst_n, reset_active_level=False)
        self.src = AxiStreamSource(AxiStreamBus.from_prefix(dut, prefix + "s_axis"),
                                   dut.ap_clk, dut.ap_rst_n, reset_active_level=False)
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, prefix + "m_axis"),
                                  dut.ap_clk, dut.ap_rst_n, reset_active_level=False)

    async def read(self, offset: int) -> int:
        return await self.axil.read_dword(offset)

    async def read64(self, lo: int) -> int:
        return await self.read(lo) | (await self.read(lo + 4)) << 32

    async def counters(self) -> tuple[int, int, int]:
        return (await self.read64(regs.BUSY_LO), await self.read64(regs.STALL_IN_LO),
                await self.read64(regs.STALL_OUT_LO))

    async def config(self) -> regs.AttnConfig:
        words = {off: await self.read(off) for off in regs.CONFIG_OFFSETS}
        return regs.AttnConfig.from_words(words)

    def set_pauses(self, case: dict) -> None:
        """``backpressure`` pauses both streams at random; ``sink_only`` just the sink (the
        source always ready, so results pile up in the FIFO and the issue stage waits)."""
        bp = case.get("backpressure", 0.0)
        seed = case["seed"] * 2 + 7919 * self.index
        for agent, k, on in ((self.src, 1, bp and not case.get("sink_only")),
                             (self.sink, 2, bp)):
            if on:
                agent.set_pause_generator(pause_pattern(seed + k, bp))
            else:
                agent.clear_pause_generator()
                agent.pause = False


async def reset(dut) -> None:
    dut.ap_rst_n.value = 0
    await ClockCycles(dut.ap_clk, 8)
    dut.ap_rst_n.value = 1
    await ClockCycles(dut.ap_clk, 4)


async def write_args(unit: Unit, mode: int, t: int, h: int) -> None:
    args = {"MODE": mode, "T": t, "H": h}
    for name in regs.KV_ATTN.args:          # the register map's order
        await unit.axil.write_dword(regs.KV_ATTN.arg(name), args[name])


def heads_of(mode: int, block: np.ndarray, cache: np.ndarray, a: int, b: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """The block and cache of kv heads [a, b): q [H, G, D] / p [T, H, G]; K or V [T, H, D]."""
    blk = block[a:b] if mode == MODE_SCORES else block[:, a:b]
    return np.ascontiguousarray(blk), np.ascontiguousarray(cache[:, a:b])


async def run_part(unit: Unit, cfg: regs.AttnConfig, case: dict, block: np.ndarray,
                   cache: np.ndarray) -> dict:
    """One unit runs the call over its heads: results, counters, TLAST framing, and when it
    started and finished (simulated ns, so a test can see the units overlap)."""
    mode, t, h = case["mode"], case["t"], int(cache.shape[1])
    stream = kv_attn_input_stream(mode, block, cache)
    unit.set_pauses(case)
    await write_args(unit, mode, t, h)
    before = await unit.counters()
    # queue the stream first, as a DMA started before ap_start would
    unit.src.send_nowait(AxiStreamFrame(stream.tobytes()))
    await ClockCycles(unit.dut.ap_clk, 2)
    await unit.axil.write_dword(regs.CTRL, regs.AP_START)
    start_ns = get_sim_time("ns")

    want_bytes = kv_attn_output_beats(mode, t, h, cfg.d) * 4 * cfg.g
    limit_ns = CLOCK_NS * (20 * (stream.shape[0] + want_bytes) + 20000)
    frames = []
    out_bytes = 0
    try:
        while out_bytes < want_bytes:
            frame = await with_timeout(unit.sink.recv(), limit_ns, "ns")
            frames.append(frame)
            out_bytes += len(frame.tdata)
        done_ns = get_sim_time("ns")
        while not (await unit.read(regs.CTRL)) & regs.AP_DONE:
            await ClockCycles(unit.dut.ap_clk, 16)
        timed_out = False
    except TimeoutError:
        timed_out, done_ns = True, get_sim_time("ns")
    after = await unit.counters()
    busy, stall_in, stall_out = (a - b for a, b in zip(after, before, strict=True))
    out = {"h": h, "busy": busy, "stall_in": stall_in, "stall_out": stall_out,
           "in_beats": int(stream.shape[0]), "timed_out": timed_out, "frames": len(frames),
           "start_ns": start_ns, "done_ns": done_ns, "y": None}
    if not timed_out:
        out["y"] = parse_kv_attn_output(mode, b"".join(bytes(f.tdata) for f in frames), t, h,
                                        cfg.g, cfg.d)
        out["mismatches"] = int((out["y"] != kv_attn_reference(mode, block, cache)).sum())
        out["err"] = bool(await unit.read(regs.STATUS) & regs.STATUS_ERR)
    return out


async def run_call(units: list[Unit], cfg: regs.AttnConfig, case: dict) -> dict:
    """One call, its kv heads split across the units by ``instance_split`` as the driver
    splits them, all units running at once: each unit's results against the reference of its
    heads, and their concatenation along H against the whole call's reference."""
    mode, h = case["mode"], case["h"]
    block, cache = case_data(case, cfg.g, cfg.d)
    split = instance_split(h, len(units))
    tasks = [cocotb.start_soon(run_part(unit, cfg, case, *heads_of(mode, block, cache, a, b)))
             for unit, (a, b) in zip(units, split, strict=False)]
    parts = [await task for task in tasks]
    busiest = max(parts, key=lambda r: r["busy"])
    rec = dict(case, busy=busiest["busy"], stall_in=busiest["stall_in"],
               stall_out=busiest["stall_out"], in_beats=sum(r["in_beats"] for r in parts),
               timed_out=any(r["timed_out"] for r in parts),
               frames=max(r["frames"] for r in parts),
               units=[dict({k: v for k, v in r.items() if k != "y"}, heads=[a, b])
                      for r, (a, b) in zip(parts, split, strict=True)])
    if rec["timed_out"]:
        rec.update(ok=False, why="timed out waiting for results or ap_done")
        await reset(units[0].dut)
        for unit in units:
            unit.src.clear()
        return rec
    got = np.concatenate([r["y"] for r in parts], axis=1 if mode == MODE_SCORES else 0)
    if case.get("out"):
        np.save(case["out"], got)   # the results themselves, for a caller that goes on with them
    want = kv_attn_reference(mode, block, cache)
    bad = np.argwhere(got != want)
    rec["mismatches"] = len(bad)
    rec["max_abs"] = int(np.abs(want.astype(np.int64)).max())
    if len(bad):
        idx = tuple(int(v) for v in bad[0])
        rec["first_mismatch"] = {"at": idx, "got": int(got[idx]), "want": int(want[idx])}
    rec["err"] = any(r["err"] for r in parts)
    rec["ok"] = (not len(bad) and all(r["frames"] == 1 and r["mismatches"] == 0
                                      for r in parts) and not rec["err"])
    return rec


async def run_refused(units: list[Unit], case: dict) -> dict:
    """Out-of-range arguments: every unit must refuse (STATUS.err, done, idle, no busy cycle)."""
    parts = []
    for unit in units:
        await write_args(unit, case["mode"], case["t"], case["h"])
        before = await unit.counters()
        await unit.axil.write_dword(regs.CTRL, regs.AP_START)
        await ClockCycles(unit.dut.ap_clk, 4)
        ctrl = await unit.read(regs.CTRL)
        err = bool(await unit.read(regs.STATUS) & regs.STATUS_ERR)
        after = await unit.counters()
        busy, stall_in, stall_out = (a - b for a, b in zip(after, before, strict=True))
        ok = err and bool(ctrl & regs.AP_DONE) and bool(ctrl & regs.AP_IDLE) and busy == 0
        parts.append({"busy": busy, "stall_in": stall_in, "stall_out": stall_out, "err": err,
                      "ok": ok})
    return dict(case, busy=max(r["busy"] for r in parts),
                stall_in=max(r["stall_in"] for r in parts),
                stall_out=max(r["stall_out"] for r in parts),
                err=all(r["err"] for r in parts), ok=all(r["ok"] for r in parts), units=parts,
                frames=0, mismatches=0, timed_out=False, in_beats=0)


@cocotb.test()
async def run_cases(dut) -> None:
    """Every case of TGEMV_CASES on one build; records to TGEMV_RESULTS."""
    cases = json.loads(Path(os.environ["TGEMV_CASES"]).read_text())
    n_units = int(os.environ.get("TGEMV_UNITS", "1"))
    Clock(dut.ap_clk, CLOCK_NS, unit="ns").start()
    units = ([Unit(dut)] if n_units == 1
             else [Unit(dut, f"a{i}_", i) for i in range(n_units)])
    await reset(dut)
    configs = [await unit.config() for unit in units]
    cfg = configs[0]
    assert all(c == cfg for c in configs), f"units report different builds: {configs}"
    records = {"config": cfg.__dict__ | {"units": n_units}, "cases": []}
    t_all = time.perf_counter()
    for case in cases:
        t0 = time.perf_counter()
        if case.get("expect_error"):
            rec = await run_refused(units, case)
        else:
            rec = await run_call(units, cfg, case)
        rec["host_s"] = time.perf_counter() - t0
        records["cases"].append(rec)
        dut._log.info("case %s: ok=%s busy=%s (%.2fs)", case["name"], rec["ok"],
                      [u["busy"] for u in rec["units"]], rec["host_s"])
        await RisingEdge(dut.ap_clk)
    records["sim_s"] = time.perf_counter() - t_all
    Path(os.environ["TGEMV_RESULTS"]).write_text(json.dumps(records, indent=1))
    failed = [r["name"] for r in records["cases"] if not r["ok"]]
    assert not failed, f"cases failed: {failed}"
