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
