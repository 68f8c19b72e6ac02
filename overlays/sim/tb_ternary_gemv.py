"""cocotb testbench of ternary_gemv: run a list of GEMV calls, record what happened.

The case list comes from the JSON file named by ``TGEMV_CASES`` and the per-case record goes
to ``TGEMV_RESULTS`` (both set by ``overlays/sim/sim.py``). Why a record and not asserts:
one simulator process runs every case of a build (a Verilator start-up costs more than a
small case), and pytest turns each record into its own pass/fail with the numbers in the
message. The cocotb test still fails if any case is wrong, so a plain cocotb run is useful.

Per case: random ternary W (N x K) and int8 X (M x K) from the case's seed, the input stream
from ``dse.packing.stream`` through an AXI4-Stream source, results through a sink, the
arguments and counters over AXI4-Lite, and the results against ``golden_gemv``.
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
from cocotbext.axi import (
    AxiLiteBus,
    AxiLiteMaster,
    AxiStreamBus,
    AxiStreamFrame,
    AxiStreamSink,
    AxiStreamSource,
)

from dse.hw import regs
from dse.model.engine import row_split
from dse.packing.quant import golden_gemv
from dse.packing.stream import call_input_stream, output_stream_beats, parse_output_stream

#: Beats per source frame: the stream is cut into frames only to bound the testbench's memory
#: (cocotbext-axi keeps per-byte lists); frames go back to back and the engine ignores TLAST.
FRAME_BEATS = 4096
CLOCK_NS = 4


def case_data(case: dict) -> tuple[np.ndarray, np.ndarray]:
    """The case's weights (N x K ternary int8) and activations (M x K int8).

    From ``data_npz`` when the case names one (the calibration flow's own weights), else
    random from the case's seed.
    """
    if case.get("data_npz"):
        with np.load(case["data_npz"]) as data:
            return data["w"], data["x"]
    rng = np.random.default_rng(case["seed"])
    w = rng.integers(-1, 2, size=(case["n"], case["k"]), dtype=np.int8)
    x = rng.integers(-128, 128, size=(case["m"], case["k"]), dtype=np.int8)
    return w, x


def ddr_arrivals(supply: dict):
    """Beats DDR delivers per cycle (0 or 1): a first-access latency, then transactions of
    ``txn_beats`` beats at ``rate`` beats per cycle, each followed by ``gap_cycles`` idle
    (``dse.hw.sim_backend.supply_pattern``)."""
    yield from itertools.repeat(0, int(supply["latency_cycles"]))
    rate, txn, gap = float(supply["rate"]), int(supply["txn_beats"]), int(supply["gap_cycles"])
    while True:
        credit, sent = 0.0, 0
        while sent < txn:
            credit += rate
            if credit >= 1.0 - 1e-12:
                credit -= 1.0
                sent += 1
                yield 1
            else:
                yield 0
        yield from itertools.repeat(0, gap)


def supply_pauses(supply: dict, eng):
    """Source pauses (True = no beat offered) for DDR behind a DMA FIFO of ``fifo_beats``.

    DDR fills the FIFO at its own pace whether or not the engine takes beats; the source
    offers a beat whenever the FIFO holds one. A beat leaves the FIFO on a TVALID & TREADY
    handshake, sampled at each clock edge.
    """
    depth = int(supply.get("fifo_beats", 64))
    level = 0
    for arrived in ddr_arrivals(supply):
        if int(eng.tvalid.value) and int(eng.tready.value):
            level = max(0, level - 1)
        level = min(depth, level + arrived)
        yield level < 1


def pause_pattern(seed: int, busy_fraction: float) -> itertools.cycle:
    """A repeating random pause pattern (True = pause) with about ``busy_fraction`` pauses."""
    r = random.Random(seed)
    return itertools.cycle([r.random() < busy_fraction for _ in range(997)])


class Engine:
    """One engine of the DUT with its AXI agents (``prefix``: ``e<i>_`` in a multi-engine top)."""

    def __init__(self, dut, prefix: str = "", index: int = 0) -> None:
        self.dut = dut
        self.index = index
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, prefix + "s_axi_control"),
                                  dut.ap_clk, dut.ap_rst_n, reset_active_level=False)
        self.src = AxiStreamSource(AxiStreamBus.from_prefix(dut, prefix + "s_axis"),
                                   dut.ap_clk, dut.ap_rst_n, reset_active_level=False)
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, prefix + "m_axis"),
                                  dut.ap_clk, dut.ap_rst_n, reset_active_level=False)
        self.tvalid = getattr(dut, prefix + "s_axis_tvalid")
        self.tready = getattr(dut, prefix + "s_axis_tready")

    async def read(self, offset: int) -> int:
        return await self.axil.read_dword(offset)

    async def read64(self, lo: int) -> int:
        return await self.read(lo) | (await self.read(lo + 4)) << 32

    async def counters(self) -> tuple[int, int, int]:
        return (await self.read64(regs.BUSY_LO), await self.read64(regs.STALL_IN_LO),
                await self.read64(regs.STALL_OUT_LO))

    async def config(self) -> regs.EngineConfig:
        words = {off: await self.read(off) for off in regs.CONFIG_OFFSETS}
        return regs.EngineConfig.from_words(words)


async def reset(dut) -> None:
    dut.ap_rst_n.value = 0
    await ClockCycles(dut.ap_clk, 8)
    dut.ap_rst_n.value = 1
    await ClockCycles(dut.ap_clk, 4)


def set_pauses(eng: Engine, case: dict) -> None:
    """DDR supply pattern, random backpressure, or none, on this engine's streams."""
    bp = case.get("backpressure", 0.0)
    seed = case["seed"] * 2 + 7919 * eng.index
    if case.get("supply"):
        eng.src.set_pause_generator(supply_pauses(case["supply"], eng))
        eng.sink.clear_pause_generator()
        eng.sink.pause = False
    elif bp:
        eng.src.set_pause_generator(pause_pattern(seed + 1, bp))
        eng.sink.set_pause_generator(pause_pattern(seed + 2, bp))
    else:
        eng.src.clear_pause_generator()
        eng.sink.clear_pause_generator()
        eng.src.pause = False
        eng.sink.pause = False


async def run_call(eng: Engine, cfg: regs.EngineConfig, w: np.ndarray, x: np.ndarray,
                   v: int, case: dict) -> dict:
    """One engine computes its rows ``w`` for ``x``: results, counters, TLAST framing."""
    n, m = w.shape[0], x.shape[0]
    stream = call_input_stream(w, x, cfg.pe, cfg.simd, cfg.packing, v)
    set_pauses(eng, case)
    for off, val in ((regs.N, n), (regs.K, x.shape[1]), (regs.M, m), (regs.V, v)):
        await eng.axil.write_dword(off, val)
    before = await eng.counters()
    # queue the stream first, as a DMA started before ap_start would: the engine's first busy
    # cycle then has data (an idle engine holds TREADY low)
    for at in range(0, stream.shape[0], FRAME_BEATS):
        eng.src.send_nowait(AxiStreamFrame(stream[at:at + FRAME_BEATS].tobytes()))
    await ClockCycles(eng.dut.ap_clk, 2)
    await eng.axil.write_dword(regs.CTRL, regs.AP_START)

    frames = []
    out_bytes = 0
    want_bytes = output_stream_beats(n, m, cfg.pe, v, cfg.vpc) * 4 * cfg.pe * cfg.vpc
    # generous bound: every beat paused at 90% plus drains
    limit_ns = CLOCK_NS * (20 * (stream.shape[0] * max(1, v) + want_bytes) + 20000)
    try:
        while out_bytes < want_bytes:
            frame = await with_timeout(eng.sink.recv(), limit_ns, "ns")
            frames.append(frame)
            out_bytes += len(frame.tdata)
        while not (await eng.read(regs.CTRL)) & regs.AP_DONE:
            await ClockCycles(eng.dut.ap_clk, 16)
        timed_out = False
    except TimeoutError:
        timed_out = True
    after = await eng.counters()
    busy, stall_in, stall_out = (a - b for a, b in zip(after, before, strict=True))
    out = {"busy": busy, "stall_in": stall_in, "stall_out": stall_out,
           "in_beats": int(stream.shape[0]), "timed_out": timed_out, "frames": len(frames),
           "rows": n, "y": None}
    if not timed_out:
        data = b"".join(bytes(f.tdata) for f in frames)
        out["y"] = parse_output_stream(data, n, m, cfg.pe, v, cfg.vpc)
        out["err"] = bool(await eng.read(regs.STATUS) & regs.STATUS_ERR)
    return out


async def run_case(engines: list[Engine], cfg: regs.EngineConfig, case: dict) -> dict:
    """Run one call, its rows split across the engines as the driver splits them."""
    n, v = case["n"], case["v"]
    if case.get("expect_error"):
        return await run_refused(engines[0], case)
    w, x = case_data(case)
    parts = row_split(n, cfg.pe, len(engines))
    t0 = time.perf_counter()
    tasks = [cocotb.start_soon(run_call(eng, cfg, w[a:b], x, v, case))
             for eng, (a, b) in zip(engines, parts, strict=False)]
    runs = [await t for t in tasks]
    wall = time.perf_counter() - t0
    busiest = max(range(len(runs)), key=lambda i: runs[i]["busy"])
    record = dict(case, busy=runs[busiest]["busy"], stall_in=runs[busiest]["stall_in"],
                  stall_out=runs[busiest]["stall_out"], wall_s=wall,
                  in_beats=sum(r["in_beats"] for r in runs),
                  timed_out=any(r["timed_out"] for r in runs),
                  engines=[{k: r[k] for k in ("rows", "busy", "stall_in", "stall_out",
                                              "frames", "in_beats")} for r in runs])
    if record["timed_out"]:
        record.update(ok=False, why="timed out waiting for results or ap_done")
        # flush what is left so the next case starts clean
        await reset(engines[0].dut)
        for eng in engines:
            eng.src.clear()
        return record
    # TLAST exactly once per engine, on its call's last beat: one frame ending at the last byte.
    record["frames"] = max(r["frames"] for r in runs)
    y = np.concatenate([r["y"] for r in runs], axis=1)
    if case.get("y_npy"):
        np.save(case["y_npy"], y)
    gold = golden_gemv(w, x)
    bad = np.argwhere(y != gold)
    record["mismatches"] = len(bad)
    if len(bad):
        i, j = (int(t) for t in bad[0])
        record["first_mismatch"] = {"m": i, "n": j, "got": int(y[i, j]),
                                    "want": int(gold[i, j])}
    record["err"] = any(r["err"] for r in runs)
    record["ok"] = (not len(bad)) and all(r["frames"] == 1 for r in runs) and not record["err"]
    return record


async def run_refused(eng: Engine, case: dict) -> dict:
    """A call with out-of-range arguments: the engine must refuse it (STATUS.err, done, idle)."""
    for off in (regs.N, regs.K, regs.M, regs.V):
        await eng.axil.write_dword(off, case[{regs.N: "n", regs.K: "k", regs.M: "m",
                                              regs.V: "v"}[off]])
    before = await eng.counters()
    await eng.axil.write_dword(regs.CTRL, regs.AP_START)
    await ClockCycles(eng.dut.ap_clk, 4)
    ctrl = await eng.read(regs.CTRL)
    status = await eng.read(regs.STATUS)
    after = await eng.counters()
    busy, stall_in, stall_out = (a - b for a, b in zip(after, before, strict=True))
    err = bool(status & regs.STATUS_ERR)
    ok = err and bool(ctrl & regs.AP_DONE) and bool(ctrl & regs.AP_IDLE) and busy == 0
    return dict(case, busy=busy, stall_in=stall_in, stall_out=stall_out, err=err, ok=ok,
                frames=0, mismatches=0, timed_out=False, in_beats=0, wall_s=0.0)


@cocotb.test()
async def run_cases(dut) -> None:
    """Every case of TGEMV_CASES on one build; records to TGEMV_RESULTS."""
    cases = json.loads(Path(os.environ["TGEMV_CASES"]).read_text())
    n_eng = int(os.environ.get("TGEMV_ENGINES", "1"))
    Clock(dut.ap_clk, CLOCK_NS, unit="ns").start()
    engines = ([Engine(dut)] if n_eng == 1
               else [Engine(dut, f"e{i}_", i) for i in range(n_eng)])
    await reset(dut)
    configs = [await eng.config() for eng in engines]
    cfg = configs[0]
    assert all(c == cfg for c in configs), f"engines report different builds: {configs}"
    records = {"config": cfg.__dict__ | {"lanes": cfg.lanes, "engines": n_eng}, "cases": []}
    for case in cases:
        t0 = time.perf_counter()
        rec = await run_case(engines, cfg, case)
        rec["host_s"] = time.perf_counter() - t0
        records["cases"].append(rec)
        if os.environ.get("TGEMV_PROGRESS"):  # cases done, for the caller's progress bar
            Path(os.environ["TGEMV_PROGRESS"]).write_text(str(len(records["cases"])))
        dut._log.info("case %s: ok=%s busy=%d stall_in=%d stall_out=%d (%.1fs)",
                      case["name"], rec["ok"], rec["busy"], rec["stall_in"],
                      rec["stall_out"], rec["host_s"])
        await RisingEdge(dut.ap_clk)
    Path(os.environ["TGEMV_RESULTS"]).write_text(json.dumps(records, indent=1))
    failed = [r["name"] for r in records["cases"] if not r["ok"]]
    assert not failed, f"cases failed: {failed}"
