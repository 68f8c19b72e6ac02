"""The PYNQ driver (dse.hw.pynq_driver) against an emulated pynq Device (dse.hw.emulated).

pynq pins numpy<2, so it cannot live in the project's venv. ``test_driver_in_board_venv``
creates (once, then reuses) a separate venv with pynq, numpy<2 and dse installed editable,
and runs this file's ``test_emulated_*`` tests there in a subprocess; it fails if they fail
and skips only when pip cannot install pynq. In a venv without pynq the ``test_emulated_*``
tests skip themselves (they ran through the subprocess); in the board venv they run directly.

The emulated device answers the register reads and writes of an AXI DMA and of the engine and
computes with the golden model, so the unmodified ``pynq.lib.dma.DMA`` and ``DefaultIP``
code paths run: packing, stream order, DMA programming, result parsing and timeouts are
exercised exactly as on a board.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dse.hw import regs
from dse.model.engine import engine_cycles
from dse.packing.quant import golden_gemv

ROOT = Path(__file__).resolve().parent.parent
#: Where the board venv lives (kept between runs: the first build takes ~30 s).
BOARD_VENV = Path(os.environ.get("DSE_BOARD_VENV", "/tmp/dse-board-venv"))
BOARD_REQUIREMENTS = ["pynq>=3.0", "numpy<2", "pytest>=8", "pyyaml>=6.0", "pydantic>=2.5"]
HAVE_PYNQ = importlib.util.find_spec("pynq") is not None

needs_pynq = pytest.mark.skipif(
    not HAVE_PYNQ, reason="needs pynq (numpy<2): runs in the board venv, driven by "
    "test_driver_in_board_venv")


# -- the outer test: build/reuse the board venv, run the inner tests there -----------------

def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)


def _board_python() -> Path:
    """The board venv's python, (re)installing only when the requirements changed."""
    py = BOARD_VENV / "bin" / "python"
    stamp = BOARD_VENV / ".dse-stamp"
    want = hashlib.sha256("\n".join([*BOARD_REQUIREMENTS, str(ROOT)]).encode()).hexdigest()
    if py.exists() and stamp.exists() and stamp.read_text() == want:
        return py
    if not py.exists():
        made = _run([sys.executable, "-m", "venv", str(BOARD_VENV)])
        if made.returncode:
            pytest.fail(f"cannot create {BOARD_VENV}: {made.stderr[-2000:]}")
    pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    got = _run([*pip, *BOARD_REQUIREMENTS])
    if got.returncode:
        pytest.skip(f"pip cannot install pynq with numpy<2 here: {got.stderr[-1500:]}")
    dse = _run([*pip, "--no-deps", "-e", str(ROOT)])
    if dse.returncode:
        pytest.fail(f"cannot install dse into {BOARD_VENV}: {dse.stderr[-2000:]}")
    stamp.write_text(want)
    return py


@pytest.mark.skipif(HAVE_PYNQ, reason="already inside a venv with pynq: the "
                    "test_emulated_* tests run directly")
def test_driver_in_board_venv():
    py = _board_python()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    res = _run([str(py), "-m", "pytest", "-o", "addopts=", "-q", "-p", "no:cacheprovider",
                "-k", "emulated", "-rs", str(Path(__file__))], cwd=ROOT, env=env, timeout=600)
    tail = (res.stdout + res.stderr)[-4000:]
    assert res.returncode == 0, f"driver tests failed in {BOARD_VENV}:\n{tail}"
    summary = res.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ passed(, \d+ deselected)? in [\d.]+s", summary), tail  # no skip/fail


# -- the inner tests (need pynq) -------------------------------------------------------------

def _open(**engine):
    from dse.hw.emulated import open_emulated

    return open_emulated(**engine)


def _layer_data(seed: int, n: int, k: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.integers(-1, 2, size=(n, k), dtype=np.int8),
            rng.integers(-128, 128, size=(m, k), dtype=np.int8))


@needs_pynq
@pytest.mark.parametrize(("packing", "pe", "simd"), [("i2", 8, 16), ("base3", 8, 20)])
@pytest.mark.parametrize(("n", "k", "m", "v"), [
    (640, 2560, 1, None),        # k_proj at decode
    (37, 300, 7, 4),             # prefill with a remainder pass, ragged N and K
    (5, 3, 2, 1),                # smaller than one tile
])
def test_emulated_layer_bit_exact(packing, pe, simd, n, k, m, v):
    eng = _open(pe=pe, simd=simd, packing=packing, vmax=4)
    w, x = _layer_data(n * 7 + k + m, n, k, m)
    layer = eng.load_layer(w, name="test.layer")
    y, t = eng.run(layer, x, vectors=v)
    assert y.dtype == np.int32 and y.shape == (m, n)
    np.testing.assert_array_equal(y, golden_gemv(w, x))
    used_v = v or min(4, m)
    beat = eng.config.stream_bits // 8
    assert t.busy_cycles == engine_cycles(n, k, m, pe, simd, used_v, beat,
                                          regs.PIPELINE_LATENCY)
    assert t.compute_cycles == t.busy_cycles and t.wall_s > 0
    call = eng.device.engine.calls[-1]
    assert (call["n"], call["k"], call["m"], call["v"]) == (n, k, m, used_v)
    np.testing.assert_array_equal(call["w"], w)
    assert eng.device.flushes > 0 and eng.device.invalidates > 0   # the DMA cache path ran


@needs_pynq
@pytest.mark.parametrize(("pe", "simd", "packing", "port_bits"), [
    (8, 16, "i2", 64),        # a 256-bit stream on a Zynq-7000 HP port: 4 port beats a beat
    (1, 40, "base3", 64),     # a 64-bit stream fits the port: no stall
    (4, 16, "i2", 128),       # 128 bits on a ZU+ port: no stall
])
def test_emulated_engine_waits_on_a_narrow_hp_port(pe, simd, packing, port_bits):
    """The board's HP port width: the emulated engine stalls for every input beat wider than
    the port, and the driver reports exactly those stalls as Timing.port_stall_cycles."""
    from dse.packing.stream import input_stream_beats

    eng = _open(pe=pe, simd=simd, packing=packing, vmax=4, port_bits=port_bits)
    n, k, m = 96, 400, 2
    w, x = _layer_data(5, n, k, m)
    y, t = eng.run(eng.load_layer(w, name="port.layer"), x, vectors=2)
    np.testing.assert_array_equal(y, golden_gemv(w, x))
    bits = eng.config.stream_bits
    beats = input_stream_beats(n, k, m, pe, simd, packing, 2)
    want = beats * (-(-bits // port_bits) - 1) if bits > port_bits else 0
    assert t.stall_in_cycles == t.port_stall_cycles == want
    assert t.compute_cycles == engine_cycles(n, k, m, pe, simd, 2, bits // 8,
                                             regs.PIPELINE_LATENCY)


@needs_pynq
@pytest.mark.parametrize(("engines", "n", "k", "m", "v"), [
    (1, 37, 300, 3, 4),          # an odd batch: the last group's second lane is empty
    (1, 37, 300, 4, 4),          # the published design's round of 4 at 2 per clock
    (4, 640, 2560, 4, 4),        # k_proj for a round of 4 on 4 engines, PE=1 (KV260)
    (2, 21, 160, 9, 4),          # several passes, the last of one vector
])
def test_emulated_two_vectors_per_clock(engines, n, k, m, v):
    """An engine answering 2 vectors per clock (VPC=2): the driver reads the wider result
    beats (2 x PE int32) back bit-exactly, every engine's busy cycles are engine_cycles with
    vectors_per_clock 2 (the cost model's split_cycles), and the check names a VPC
    mismatch."""
    from dse.hw.pynq_driver import OverlayError
    from dse.model.engine import EngineDesign, row_split, split_cycles

    pe = 1 if engines == 4 else 4
    drv = _open(pe=pe, simd=80 if pe == 1 else 20, packing="base3", vmax=4, vpc=2,
                engines=engines)
    simd = drv.config.simd
    assert drv.config.vpc == 2
    w, x = _layer_data(n + m + engines, n, k, m)
    y, t = drv.run(drv.load_layer(w, name="vpc.layer"), x, vectors=v)
    np.testing.assert_array_equal(y, golden_gemv(w, x))
    split = row_split(n, pe, engines)
    per = [engine_cycles(b - a, k, m, pe, simd, v, 16, regs.PIPELINE_LATENCY, 2)
           for a, b in split]
    design = EngineDesign(pe, simd, "base3", engines=engines, vectors=v, stream_bits=128,
                          vectors_per_clock=2)
    assert split_cycles(design, n, k, m, regs.PIPELINE_LATENCY) == tuple(per)
    assert t.busy_cycles == max(per)
    drv.check(pe=pe, simd=simd, packing="base3", vectors=4, vectors_per_clock=2,
              engines=engines)
    with pytest.raises(OverlayError, match="answers 2 vector"):
        drv.check(pe=pe, simd=simd, packing="base3", vectors=4, vectors_per_clock=1,
                  engines=engines)


@needs_pynq
def test_emulated_repeated_calls_reuse_buffers():
    eng = _open(pe=4, simd=16, packing="i2", vmax=2)
    w, x = _layer_data(3, 30, 100, 3)
    layer = eng.load_layer(w, name="reuse")
    for i in range(3):
        y, _ = eng.run(layer, x[: i + 1])
        np.testing.assert_array_equal(y, golden_gemv(w, x[: i + 1]))
    assert len(eng.device.engine.calls) == 3


@needs_pynq
def test_emulated_transfers_split_to_dma_length():
    """Weights larger than the DMA length register go out in several transfers."""
    eng = _open(pe=8, simd=16, packing="i2", vmax=1, dma_length_bits=12)  # 4 KiB - 1
    w, x = _layer_data(5, 256, 512, 1)                   # 32 KiB of weight tiles
    layer = eng.load_layer(w, name="big")
    assert layer.nbytes > eng.dma.buffer_max_size
    y, _ = eng.run(layer, x)
    np.testing.assert_array_equal(y, golden_gemv(w, x))


@needs_pynq
def test_emulated_config_check():
    from dse.hw.pynq_driver import OverlayError

    eng = _open(pe=8, simd=20, packing="base3", vmax=4, kmax=6912)
    cfg = eng.check(pe=8, simd=20, packing="base3", vectors=4, max_k=6912, stream_bits=256)
    assert (cfg.pe, cfg.simd, cfg.packing, cfg.vmax, cfg.kmax) == (8, 20, "base3", 4, 6912)
    with pytest.raises(OverlayError, match="lanes 8x20, plan wants 16x32") as e:
        eng.check(pe=16, simd=32, packing="i2", vectors=8, max_k=8192)
    for part in ("packing base3, plan wants i2", "holds 4 vectors", "K up to 6912"):
        assert part in str(e.value)


@needs_pynq
def test_emulated_timeout_names_the_layer():
    from dse.hw.pynq_driver import OverlayTimeout

    eng = _open()
    w, x = _layer_data(9, 16, 32, 1)
    layer = eng.load_layer(w, name="layers.3.mlp.up_proj")
    eng.device.engine.hang = True
    with pytest.raises(OverlayTimeout, match=r"layer layers\.3\.mlp\.up_proj: timed out"):
        eng.run(layer, x, timeout_s=0.2)


@needs_pynq
def test_emulated_rejects_bad_calls():
    from dse.hw.pynq_driver import OverlayError

    eng = _open(vmax=2, kmax=64)
    w, x = _layer_data(1, 8, 64, 3)
    layer = eng.load_layer(w, name="l")
    with pytest.raises(OverlayError, match=r"vectors=3: expected 1\.\.2"):
        eng.run(layer, x, vectors=3)
    with pytest.raises(OverlayError, match="int8"):
        eng.run(layer, x.astype(np.int16))
    with pytest.raises(OverlayError, match="K <= 64"):
        eng.load_layer(np.zeros((4, 65), np.int8), name="wide")


@needs_pynq
def test_emulated_pynq_backend_times_the_ps_and_logs_it(tmp_path):
    """The pynq backend runs a layer on the (emulated) overlay and the same layer on the PS
    with numpy, and its log holds both: engine calls and PS layers, with units and config."""
    from dse.hw import calibrate as flow
    from dse.hw.backend import Job
    from dse.hw.pynq_backend import PynqBackend
    from dse.model.board import load_board
    from dse.model.measurement_log import load_log, log_to_json

    board = load_board(ROOT / "boards" / "kv260.yaml")
    backend = PynqBackend(board, tmp_path / "emulated.bit", engine=_open(pe=8, simd=16,
                                                                          packing="i2", vmax=4))
    design = backend.overlay_design()
    w, x = _layer_data(11, 96, 320, 3)
    jobs = [Job("model.layers.0.self_attn.k_proj", w, x[:1], 1),
            Job("model.layers.0.self_attn.k_proj", w, x, 3)]
    ms = flow.measure(backend, jobs, 2, design)
    ps = backend.ps_baseline(jobs, 3)
    assert [p.m for p in ps] == [1, 3] and all(p.wall_s > 0 and p.repeats == 3 for p in ps)
    assert "numpy" in ps[0].runtime and "float32 BLAS" in ps[0].runtime
    log = flow.log_from_measurements(ms, backend.name, board, design, backend.provenance(), ps)
    path = tmp_path / "log.json"
    path.write_text(log_to_json(log), encoding="utf-8")
    back = load_log(path)
    kinds = [(e.kind, e.device, e.unit) for e in back.entries]
    assert kinds == [("call", "pl", "ms")] * 2 + [("layer", "ps", "ms")] * 2
    ps_entry = back.entries[2]
    assert ps_entry.config.engine is None and ps_entry.config.runtime == ps[0].runtime
    assert back.config.backend == "pynq" and back.config.engine["pe"] == 8
    assert back.entries[0].get("busy_cycles") >= back.entries[0].get("stall_cycles") >= 0


def test_ps_gemv_is_exact():
    """The PS baseline's float32 GEMV gives the golden int32 results (sums < 2^24)."""
    from dse.hw.backend import ps_gemv

    w, x = _layer_data(4, 64, 6912, 2)
    x[:] = -128
    np.testing.assert_array_equal(ps_gemv(w.astype(np.float32), x), golden_gemv(w, x))


@needs_pynq
@pytest.mark.parametrize(("engines", "n", "k", "m", "v"), [
    (2, 640, 2560, 1, None),     # k_proj at decode on two engines
    (4, 37, 300, 7, 4),          # ragged rows over four, prefill with a remainder pass
    (3, 8, 50, 2, 2),            # two row folds: the third engine gets none and stays idle
])
def test_emulated_engines_split_rows(engines, n, k, m, v):
    """The driver splits a layer's rows as row_split says, every engine computes exactly its
    rows, and each engine's busy cycles are engine_cycles of its rows (what the cost model's
    split_cycles prices)."""
    from dse.model.engine import EngineDesign, row_split, split_cycles

    grp = _open(pe=4, simd=20, packing="base3", vmax=4, engines=engines)
    w, x = _layer_data(n + k + m + engines, n, k, m)
    layer = grp.load_layer(w, name="split.layer")
    y, t = grp.run(layer, x, vectors=v)
    np.testing.assert_array_equal(y, golden_gemv(w, x))
    split = row_split(n, 4, engines)
    assert [(a, b) for a, b, _ in layer.parts] == list(split)
    used_v = v or min(4, m)
    per = [engine_cycles(b - a, k, m, 4, 20, used_v, 16, regs.PIPELINE_LATENCY)
           for a, b in split]
    assert [e.busy_cycles for e in t.per_engine] == per and t.busy_cycles == max(per)
    design = EngineDesign(4, 20, "base3", engines=engines, vectors=used_v, stream_bits=128)
    assert split_cycles(design, n, k, m, regs.PIPELINE_LATENCY) == tuple(per)
    for i, (a, b) in enumerate(split):
        call = grp.device.engines[i].calls[-1]
        np.testing.assert_array_equal(call["w"], w[a:b])
        np.testing.assert_array_equal(call["x"], x)
    assert all(not e.calls for e in grp.device.engines[len(split):])


@needs_pynq
def test_emulated_group_checks_the_engine_count():
    from dse.hw.pynq_driver import OverlayError

    grp = _open(pe=4, simd=20, packing="base3", vmax=4, engines=2)
    grp.check(pe=4, simd=20, packing="base3", vectors=4, engines=2)
    with pytest.raises(OverlayError, match="2 engines, plan wants 4"):
        grp.check(pe=4, simd=20, packing="base3", vectors=4, engines=4)


def test_driver_module_imports_without_pynq():
    """dse.hw.pynq_driver imports pynq only when a driver is used."""
    code = ("import sys; sys.modules['pynq'] = None; import dse.hw.pynq_driver as d; "
            "print(d.VLNV)")
    res = _run([sys.executable, "-c", code])
    assert res.returncode == 0 and "dse:hls:ternary_gemv:1.0" in res.stdout, res.stderr


# -- the attention unit kv_attn (dse.hw.pynq_driver.KvAttn) ---------------------------------------

def _attn_data(seed: int, t: int, h: int, g: int, d: int):
    """Float q [H*G, D] and K, V [T, H, D], K with a few outlier channels."""
    rng = np.random.default_rng(seed)
    k = rng.normal(size=(t, h, d)).astype(np.float32)
    k[:, :, :3] *= 8.0
    return (rng.normal(size=(h * g, d)).astype(np.float32), k,
            rng.normal(size=(t, h, d)).astype(np.float32))


def _open_attn(**kw):
    from dse.hw.emulated import open_emulated_attention

    return open_emulated_attention(**kw)


@needs_pynq
@pytest.mark.parametrize(("t", "h", "g", "d", "tmax", "hmax", "chunks"), [
    (37, 5, 4, 128, 64, 5, (36, 1)),     # 2B-4T's shape: a prompt, then one decoded token
    (64, 5, 4, 128, 64, 5, (64,)),       # a full cache: T = TMAX
    (3, 1, 8, 16, 8, 2, (1, 1, 1)),      # G=8, one beat a row, H < HMAX, 3 appends
])
def test_emulated_attn_step_bit_exact(t, h, g, d, tmax, hmax, chunks):
    """The driver's step equals the pure step bit for bit, both calls run as one MM2S transfer
    each (slot + rows), registers MODE/T/H written before each start, busy = kv_attn_cycles."""
    from dse.hw import kv_attn_regs as kr
    from dse.model.kv_attn import kv_attn_cycles
    from dse.packing.kv_attn_step import attention_step_reference

    unit = _open_attn(g=g, d=d, hmax=hmax, tmax=tmax)
    cfg = unit.check(group=g, head_dim=d, kv_heads=h, positions=tmax)
    assert (cfg.g, cfg.d, cfg.hmax, cfg.tmax, cfg.stream_bits) == (g, d, hmax, tmax, 128)
    q, k, v = _attn_data(t * 31 + h * g, t, h, g, d)
    cache = unit.new_cache(kv_heads=h, capacity=tmax, name="layers.0")
    at = 0
    for n in chunks:
        unit.append(cache, k[at:at + n], v[at:at + n])
        at += n
    assert cache.length == t
    step, (t0, t1) = unit.attention_step(cache, q)
    want = attention_step_reference(q, k, v)
    for field in ("q8", "q_scale", "scores", "probs", "p16", "p_scale", "sums", "out"):
        got, ref = getattr(step, field), getattr(want, field)
        assert got.dtype == ref.dtype and got.tobytes() == ref.tobytes(), field
    assert step.out.shape == (h * g, d) and step.out.dtype == np.float32
    assert t0.busy_cycles == kv_attn_cycles(0, t, h, g, d, kr.PIPELINE_LATENCY)
    assert t1.busy_cycles == kv_attn_cycles(1, t, h, g, d, kr.PIPELINE_LATENCY)
    assert t0.compute_cycles == t0.busy_cycles and t1.wall_s > 0

    dev = unit.device
    scores_call, xv_call = dev.attn.calls
    np.testing.assert_array_equal(scores_call["block"], want.q8)
    np.testing.assert_array_equal(scores_call["cache"], want.rows.k8)
    np.testing.assert_array_equal(xv_call["block"], want.p16)
    assert xv_call["block"].dtype == np.uint16
    np.testing.assert_array_equal(xv_call["cache"], want.rows.v8)
    assert not xv_call["pad"].any()                       # the p block's last beat zero-padded
    # one transfer per call, ending where the rows end: block right before the rows
    pblk = -(-t * h * g * 2 // 16) * 16                   # uint16 p: 2 bytes each
    assert dev.attn_dma.mm2s == [
        (cache.k_buf.physical_address + cache.q_slot - h * g * d, h * g * d + t * h * d),
        (cache.v_buf.physical_address + cache.p_slot - pblk, pblk + t * h * d)]
    starts = [i for i, w in enumerate(dev.attn.writes) if w == (kr.CTRL, kr.AP_START)]
    assert len(starts) == 2
    for mode, s in zip((0, 1), starts, strict=True):
        assert dev.attn.writes[s - 3:s] == [(kr.MODE, mode), (kr.T, t), (kr.H, h)]


@needs_pynq
def test_emulated_attn_wrong_build_is_one_line():
    """A build parameter the model does not match, or a foreign ID, is a one-line
    OverlayError before any call."""
    from dse.hw import kv_attn_regs as kr
    from dse.hw.pynq_driver import OverlayError

    unit = _open_attn(g=4, d=128, hmax=5, tmax=64)
    unit.device.attn.config_override = {kr.D: 64}
    with pytest.raises(OverlayError) as e:
        unit.check(group=4, head_dim=128, kv_heads=5, positions=64)
    assert str(e.value) == "kv_attn does not match the model: G=4 D=64, model wants G=4 D=128"
    unit = _open_attn(g=4, d=128, hmax=5, tmax=64)
    with pytest.raises(OverlayError, match=r"^kv_attn does not match the model: holds 5 kv "
                       r"heads, model has 6; holds 64 positions per call, wants 65$"):
        unit.check(group=4, head_dim=128, kv_heads=6, positions=65)
    unit = _open_attn()
    unit.device.attn.config_override = {kr.ID: 0x54474D56}
    with pytest.raises(OverlayError, match=r"^not a kv_attn unit: ID reads 0x54474d56"):
        unit.new_cache(kv_heads=5, capacity=8)
    assert not unit.device.attn.calls


@needs_pynq
def test_emulated_attn_refuses_a_version_1_bitstream():
    """A version-1 bitstream (uint8 p) would take the uint16 p block as twice as many uint8
    and return wrong sums: the driver refuses it, one line, before any cache or call."""
    from dse.hw import kv_attn_regs as kr
    from dse.hw.pynq_driver import OverlayError

    assert kr.VERSION_VALUE == 2
    unit = _open_attn(g=4, d=128, hmax=5, tmax=64)
    unit.device.attn.config_override = {kr.VERSION: 1}
    with pytest.raises(OverlayError) as e:
        unit.new_cache(kv_heads=5, capacity=8)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("kv_attn register map version 1, this driver "
                                               "speaks 2 (uint16 p in MODE 1"), msg
    assert "rebuild the overlay" in msg
    assert not unit.device.attn.calls and not unit.device.attn_dma.mm2s


@needs_pynq
def test_emulated_attn_timeout_and_bad_calls():
    from dse.hw.pynq_driver import OverlayError, OverlayTimeout

    unit = _open_attn(g=2, d=32, hmax=2, tmax=16)
    cache = unit.new_cache(kv_heads=2, capacity=16, name="layers.7")
    with pytest.raises(OverlayError, match="the cache is empty"):
        unit.run(0, cache, np.zeros((2, 2, 32), np.int8))
    q, k, v = _attn_data(5, 9, 2, 2, 32)
    unit.append(cache, k, v)
    with pytest.raises(OverlayError, match=r"block int8 \(2, 2, 16\), expected int8 \(2, 2, 32\)"):
        unit.run(0, cache, np.zeros((2, 2, 16), np.int8))
    with pytest.raises(OverlayError, match="exceed the cache's 16"):
        unit.append(cache, *_attn_data(6, 8, 2, 2, 32)[1:])
    unit.device.attn.hang = True
    with pytest.raises(OverlayTimeout, match=r"^kv_attn layers\.7 MODE 0 T=9 H=2: timed out "
                       r"waiting for results \(S2MM\)"):
        unit.attention_step(cache, q, timeout_s=0.2)


@needs_pynq
def test_emulated_open_attention_finds_the_unit_and_its_dma():
    """open_attention picks kv_attn_0 and axi_dma_attn_0 out of an overlay's IP dict."""
    from types import SimpleNamespace

    from pynq.lib.dma import DMA

    from dse.hw.emulated import EmulatedDevice
    from dse.hw.pynq_driver import OverlayError, attn_driver_class, open_attention

    dev = EmulatedDevice(attn=(4, 128, 5, 64))
    ol = SimpleNamespace(ip_dict=dev.ip_dict, kv_attn_0=attn_driver_class()(
        dev.attn_description()), axi_dma_attn_0=DMA(dev.attn_dma_description()))
    unit = open_attention(ol, clock_mhz=250.0)
    assert unit is ol.kv_attn_0 and unit.dma is ol.axi_dma_attn_0 and unit.clock_mhz == 250.0
    with pytest.raises(OverlayError, match=r"^expected a dse:hls:kv_attn:1\.0 IP"):
        open_attention(SimpleNamespace(ip_dict=EmulatedDevice().ip_dict))


# -- several attention units (dse.hw.pynq_driver.AttnGroup) ---------------------------------

@needs_pynq
@pytest.mark.parametrize(("units", "t", "h", "g", "d", "hmax", "chunks"), [
    (2, 37, 5, 4, 128, 3, (36, 1)),      # 2B-4T's 5 kv heads over 2 units: 3 + 2
    (2, 9, 2, 8, 16, 1, (4, 5)),         # one head each, G=8
    (3, 5, 4, 2, 32, 2, (5,)),           # 4 heads over 3 units: 2 + 1 + 1
    (4, 6, 2, 1, 16, 2, (2, 2, 2)),      # fewer heads than units: two units stay idle
])
def test_emulated_attn_units_give_the_one_unit_step(units, t, h, g, d, hmax, chunks):
    """N units give the same step as one unit and as the pure reference, bit for bit in every
    intermediate; the kv heads are dealt as instance_split says (each unit's cache rows, q and
    p blocks are its heads'); each unit's busy cycles are kv_attn_cycles of its heads."""
    from dse.hw import kv_attn_regs as kr
    from dse.model.kv_attn import kv_attn_cycles
    from dse.model.split import instance_split
    from dse.packing.kv_attn_step import attention_step_reference

    grp = _open_attn(g=g, d=d, hmax=hmax, tmax=64, units=units)
    one = _open_attn(g=g, d=d, hmax=h, tmax=64)
    grp.check(group=g, head_dim=d, kv_heads=h, positions=64, units=units)
    q, k, v = _attn_data(units * 100 + t, t, h, g, d)
    cache = grp.new_cache(kv_heads=h, capacity=64, name="layers.1")
    solo = one.new_cache(kv_heads=h, capacity=64, name="layers.1")
    at = 0
    for n in chunks:
        grp.append(cache, k[at:at + n], v[at:at + n])
        one.append(solo, k[at:at + n], v[at:at + n])
        at += n
    assert cache.length == solo.length == t
    step, (t0, t1) = grp.attention_step(cache, q)
    step1, _ = one.attention_step(solo, q)
    want = attention_step_reference(q, k, v)
    for field in ("q8", "q_scale", "scores", "probs", "p16", "p_scale", "sums", "out"):
        ref = getattr(want, field)
        for got in (getattr(step, field), getattr(step1, field)):
            assert got.dtype == ref.dtype and got.tobytes() == ref.tobytes(), field

    split = instance_split(h, units)
    assert [(a, b) for a, b, _ in cache.parts] == list(split)
    dev = grp.device
    for i, (a, b) in enumerate(split):
        scores_call, xv_call = dev.attns[i].calls
        assert (scores_call["t"], scores_call["h"], xv_call["h"]) == (t, b - a, b - a)
        np.testing.assert_array_equal(scores_call["block"], want.q8[a:b])
        np.testing.assert_array_equal(scores_call["cache"], want.rows.k8[:, a:b])
        np.testing.assert_array_equal(xv_call["block"], want.p16[:, a:b])
        np.testing.assert_array_equal(xv_call["cache"], want.rows.v8[:, a:b])
        assert len(dev.attn_dmas[i].mm2s) == 2                  # one transfer per call
    assert all(not u.calls for u in dev.attns[len(split):])     # idle units never started
    for mode, tm in ((0, t0), (1, t1)):
        per = [kv_attn_cycles(mode, t, b - a, g, d, kr.PIPELINE_LATENCY) for a, b in split]
        assert [u.busy_cycles for u in tm.per_unit] == per and tm.busy_cycles == max(per)
        assert tm.wall_s > 0 and tm.compute_cycles == tm.busy_cycles


@needs_pynq
def test_emulated_attn_unit_count_and_heads_are_one_line():
    """A unit count the overlay does not have, or more heads than the split's units hold, is
    a one-line OverlayError (from open_attention and from check)."""
    from types import SimpleNamespace

    from pynq.lib.dma import DMA

    from dse.hw.emulated import EmulatedDevice
    from dse.hw.pynq_driver import AttnGroup, OverlayError, attn_driver_class, open_attention

    dev = EmulatedDevice(attn=(4, 128, 3, 64), attn_units=2)
    ol = SimpleNamespace(ip_dict=dev.ip_dict)
    for a in range(2):
        setattr(ol, f"kv_attn_{a}", attn_driver_class()(dev.attn_description(a)))
        setattr(ol, f"axi_dma_attn_{a}", DMA(dev.attn_dma_description(a)))
    grp = open_attention(ol, clock_mhz=200.0, units=2)
    assert isinstance(grp, AttnGroup) and grp.units == [ol.kv_attn_0, ol.kv_attn_1]
    assert [u.dma for u in grp.units] == [ol.axi_dma_attn_0, ol.axi_dma_attn_1]
    assert grp.clock_mhz == 200.0
    grp.check(group=4, head_dim=128, kv_heads=5, positions=64, units=2)
    errors = []
    for call, want in (
            (lambda: open_attention(ol, units=3),
             "the overlay has 2 kv_attn unit(s) (kv_attn_0, kv_attn_1), the plan wants 3"),
            (lambda: grp.check(group=4, head_dim=128, kv_heads=5, units=4),
             "kv_attn does not match the model: 2 kv_attn units, plan wants 4"),
            (lambda: grp.check(group=4, head_dim=128, kv_heads=7),
             "kv_attn does not match the model: holds 3 kv heads per unit, the model's 7 "
             "over 2 units give one 4"),
            (lambda: _open_attn(hmax=5).check(group=4, head_dim=128, kv_heads=5, units=2),
             "kv_attn does not match the model: 1 kv_attn unit, plan wants 2")):
        with pytest.raises(OverlayError) as e:
            call()
        errors.append(str(e.value))
        assert str(e.value) == want
    assert not any("\n" in m for m in errors)
    with pytest.raises(OverlayError, match=r"^the attention unit kv_attn_1 has no "
                       r"axi_dma_attn_1$"):
        open_attention(SimpleNamespace(**{**vars(ol), "ip_dict": {
            k: v for k, v in dev.ip_dict.items() if k != "axi_dma_attn_1"}}))
    assert not any(u.calls for u in dev.attns)


@needs_pynq
def test_emulated_attn_group_timeout_names_the_unit():
    """A hung unit in a group: OverlayTimeout naming its share of the call; a block that does
    not hold the call's heads is refused before any transfer."""
    from dse.hw.pynq_driver import OverlayError, OverlayTimeout

    grp = _open_attn(g=2, d=32, hmax=2, tmax=16, units=2)
    cache = grp.new_cache(kv_heads=3, capacity=16, name="layers.4")
    q, k, v = _attn_data(8, 6, 3, 2, 32)
    grp.append(cache, k, v)
    with pytest.raises(OverlayError, match=r"^kv_attn layers\.4 MODE 0: block int8 \(2, 2, 32\) "
                       r"does not hold 3 kv heads$"):
        grp.run(0, cache, np.zeros((2, 2, 32), np.int8))
    assert not grp.device.attn_dmas[0].mm2s
    grp.device.attns[1].hang = True
    with pytest.raises(OverlayTimeout, match=r"^kv_attn layers\.4\[2:3\] MODE 0 T=6 H=1: timed "
                       r"out waiting for results \(S2MM\) \(kv_attn CTRL=0x1,"):
        grp.attention_step(cache, q, timeout_s=0.2)


# -- the board doctor against the emulated device --------------------------------------------

def _device_hwh(device, clock_mhz: float = 250.0) -> str:
    """The .hwh the Vivado flow would write for exactly this emulated device."""
    from _hwh import hwh_text

    engines = [{"pe": e.pe, "simd": e.simd, "packing": e.packing, "vmax": e.vmax,
                "kmax": e.kmax} for e in device.engines]
    attn = [{"g": a.g, "d": a.d, "hmax": a.hmax, "tmax": a.tmax} for a in device.attns]
    return hwh_text(engines, attn, clock_mhz)


def _quiet(tmp_path: Path) -> dict:
    gov = tmp_path / "sys" / "cpu0" / "cpufreq" / "scaling_governor"
    gov.parent.mkdir(parents=True)
    gov.write_text("performance\n")
    (tmp_path / "proc").mkdir()
    return {"cpu_root": tmp_path / "sys", "proc_root": tmp_path / "proc", "sample_s": 0.01}


@needs_pynq
def test_emulated_doctor_passes_the_board_it_describes(tmp_path):
    """Two engines and the attention unit, clocked as built and planned: every check passes,
    each read from the device's own registers through the unmodified pynq code."""
    from dse.hw import doctor
    from dse.model.engine import EngineDesign
    from dse.model.project import AttentionUnit

    eng = _open(pe=8, simd=16, packing="i2", vmax=4, kmax=8192, engines=2,
                attn=(4, 128, 5, 64))
    for e in eng.engines:
        e.clock_mhz = 250.0   # what open_overlay reads back from pynq.Clocks on a board
    (tmp_path / "o.hwh").write_text(_device_hwh(eng.device))
    plan = EngineDesign(pe=8, simd=16, packing="i2", clock_mhz=250.0, engines=2, vectors=4,
                        max_k=6912)
    findings = doctor.examine(eng, tmp_path / "o.hwh", plan,
                              AttentionUnit(4, 128, 5, 64, latency_cycles=10),
                              **_quiet(tmp_path))
    assert all(f.ok for f in findings), [f.line() for f in findings]
    doctor.verdict(findings, "o.bit")


@needs_pynq
@pytest.mark.parametrize(("change", "expected"), [
    ("clock", "PL clock: runs at 100 MHz, the bitstream was built for 250 MHz"),
    ("stale-hwh", "bitstream: ternary_gemv_0: SIMD 32 in the .hwh, 16 in its registers"),
    ("plan", "plan's engine: PE 8, the plan 16"),
    ("no-attention", "plan's units: the plan has an attention unit"),
])
def test_emulated_doctor_refuses_a_mismatch(tmp_path, change, expected):
    from dse.errors import DseError
    from dse.hw import doctor
    from dse.model.engine import EngineDesign
    from dse.model.project import AttentionUnit

    eng = _open(pe=8, simd=16, packing="i2", vmax=4, kmax=8192)
    eng.clock_mhz = 100.0 if change == "clock" else 250.0
    text = _device_hwh(eng.device)
    if change == "stale-hwh":
        text = text.replace('NAME="SIMD" VALUE="16"', 'NAME="SIMD" VALUE="32"')
    (tmp_path / "o.hwh").write_text(text)
    plan = EngineDesign(pe=16 if change == "plan" else 8, simd=16, packing="i2",
                        clock_mhz=250.0, vectors=4, max_k=6912)
    attention = (AttentionUnit(4, 128, 5, 4096, latency_cycles=10) if change == "no-attention"
                 else None)
    findings = doctor.examine(eng, tmp_path / "o.hwh", plan, attention, **_quiet(tmp_path))
    with pytest.raises(DseError) as exc:
        doctor.verdict(findings, "o.bit")
    assert expected in str(exc.value), str(exc.value)
