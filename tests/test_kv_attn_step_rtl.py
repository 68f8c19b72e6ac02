"""One decode attention step through the RTL: both kv_attn calls on the Verilator build, the
PS arithmetic of dse/packing/kv_attn_step.py between them, as the PYNQ driver runs it.

The build is tests/test_kv_attn_rtl.py's 2B-4T shape (G=4, D=128, HMAX=5, TMAX=64; cached in
sim.BUILD_ROOT, so no extra build), with T=50 positions (1000 uint16 p: 125 beats).
Each call is one testbench case fed the step's own bytes (q8 + K8, then the uint16 p16
computed from the RTL's scores + V8); the output must equal ``attention_step_reference``
bit for bit (same integers, same float32 arithmetic), and each call's busy cycles
``kv_attn_cycles`` exactly.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from _sim import sim_module

from dse.model.kv_attn import kv_attn_cycles
from dse.model.template import shipped_template
from dse.packing.kv_attn_step import attention_step_reference, quantize_kv, run_step

pytestmark = pytest.mark.rtl

ROOT = Path(__file__).resolve().parent.parent
sim = sim_module()

#: tests/test_kv_attn_rtl.py's "2b4t" build (same parameters: the same cached simulator).
BUILD = sim.AttnBuild(g=4, d=128, hmax=5, tmax=64)
T, H = 50, 5
LATENCY = shipped_template().attention.latency_cycles


def test_step_through_rtl_is_the_pure_step(tmp_path):
    try:
        sim.setup_verilator()
    except sim.ToolsMissing as e:
        if os.environ.get("CI"):
            pytest.fail(f"RTL tools missing under CI: {e}")
        pytest.skip(str(e))
    rng = np.random.default_rng(2024)
    q = rng.normal(size=(H * BUILD.g, BUILD.d)).astype(np.float32)
    k = rng.normal(size=(T, H, BUILD.d)).astype(np.float32)
    k[:, :, [7, 70]] *= 6.0                      # K caches' outlier channels
    v = rng.normal(size=(T, H, BUILD.d)).astype(np.float32)
    records = []

    def rtl_call(mode: int, block: np.ndarray, cache: np.ndarray) -> np.ndarray:
        data, out = tmp_path / f"m{mode}.npz", tmp_path / f"m{mode}.out.npy"
        np.savez(data, block=block, cache=cache)
        case = {"name": f"step_m{mode}", "mode": mode, "t": T, "h": H, "seed": 0,
                "backpressure": 0.0, "data": str(data), "out": str(out)}
        rec = sim.run(BUILD, [case], tag="pytest_step", log=lambda s: None)
        assert rec["xml_failures"] == [], rec["log"]
        records.append(rec["cases"][0])
        return np.load(out)

    got = run_step(q, quantize_kv(k, v), rtl_call)
    want = attention_step_reference(q, k, v)
    for field in ("scores", "p16", "sums", "out"):
        assert getattr(got, field).tobytes() == getattr(want, field).tobytes(), field
    assert got.out.dtype == np.float32 and got.out.shape == (20, 128)
    # non-trivial data went through: codes summing to ~65535 per query head, real scores
    assert want.p16.dtype == np.uint16 and want.p16.max() > 255 and want.scores.std() > 0
    assert (np.abs(want.p16.sum(axis=0, dtype=np.int64) - 65535) <= T / 2 + 1).all()
    for mode, rec in enumerate(records):
        assert rec["ok"] and rec["mismatches"] == 0, rec
        assert rec["stall_in"] == rec["stall_out"] == 0, rec
        assert rec["busy"] == kv_attn_cycles(mode, T, H, BUILD.g, BUILD.d, LATENCY), rec
    assert [r["busy"] for r in records] == [2167, 2772]
