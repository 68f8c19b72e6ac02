"""The calibration flow against a Python stand-in backend (the RTL and PYNQ backends are
tested in their own files): selection, bit-exact checking, fitting, end to end, report."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from dse.errors import DseError
from dse.hw import calibrate as flow
from dse.hw.backend import Job, Run
from dse.model.board import load_board
from dse.model.calibration import apply_params
from dse.model.constants import DEFAULT_CONSTANTS
from dse.model.engine import EngineDesign
from dse.model.fit import Measurement, fit_log, predict_cycles, predict_s
from dse.model.project import CostContext
from dse.model.workload import workload_from_profile
from dse.packing.quant import golden_gemv
from dse.profile.default import default_profile
from dse.report.calibrate_md import render_calibration_section
from dse.report.sections import upsert_section
from dse.search.explore import explore
from dse.search.optimize import Objective

ROOT = Path(__file__).resolve().parents[1]
TRUTH = {"ddr_pl_efficiency": 0.61, "per_call_overhead_us": 85.0, "pipeline_latency_cycles": 31}


class ModelBackend:
    """Computes results with the golden model and times with the cost model at TRUTH."""

    name = "model"

    def __init__(self, board, design, corrupt: str | None = None):
        self.board, self.design, self.corrupt = board, design, corrupt
        self.tb, self.tc = apply_params(board, DEFAULT_CONSTANTS, TRUTH)

    def overlay_design(self):
        return self.design

    def provenance(self):
        return {"backend": "python model (test stand-in)"}

    def run(self, jobs, repeats):
        out = []
        for job in jobs:
            meas = Measurement(job.layer, job.n, job.k, job.m, self.design,
                               self.design.packing_spec.matrix_bytes(job.n, job.k), 1.0)
            y = golden_gemv(job.w, job.x)
            if job.layer == self.corrupt:
                y = y.copy()
                y[0, 3] += 1
            cycles = predict_cycles(meas, self.tc)
            out.append([Run(y, predict_s(meas, self.tb, self.tc), cycles + 7, 7)
                        for _ in range(repeats)])
        return out


@pytest.fixture(scope="module")
def setup():
    board = load_board(ROOT / "boards" / "zcu104.yaml")
    wl = workload_from_profile(default_profile())
    # four 128-bit engines (one per HP port): DDR-bound, so DDR efficiency is identifiable
    design = EngineDesign(pe=8, simd=8, packing="i2", stream_bits=128, engines=4, vectors=4)
    return board, wl, design


def test_select_layers(setup):
    _, wl, _ = setup
    assert len(flow.select_layers(wl, glob="model.layers.*.mlp.*")) == 90
    shapes = flow.unique_shapes(flow.select_layers(wl))
    assert {(s.n, s.k) for s in shapes} == {(2560, 2560), (640, 2560), (6912, 2560),
                                            (2560, 6912)}
    with pytest.raises(DseError, match=r"'nothing\.\*' matches none"):
        flow.select_layers(wl, glob="nothing.*")


def test_measure_fit_recovers_truth(setup):
    board, wl, design = setup
    shapes = flow.unique_shapes(flow.select_layers(wl))
    jobs = flow.make_jobs(shapes, [1, 4], design.vectors)
    ms = flow.measure(ModelBackend(board, design), jobs, 2, design)
    assert len(ms) == 8 and all(m.repeats == 2 for m in ms)
    log = flow.log_from_measurements(ms, "model", board, design, {})
    assert log.config.backend == "pynq" and all(e.unit == "ms" for e in log.entries)
    res = fit_log(log, wl, board, DEFAULT_CONSTANTS)
    cal = flow.calibration_from_fit(res, log, board, {})
    for name, value in TRUTH.items():
        assert cal.params[name].value == pytest.approx(value, rel=1e-3)
    # the rescale is an instruction count, not fitted; the read-out rate is (it was right)
    assert "rescale_ns_per_elem" not in cal.params
    assert cal.params["cache_maint_bytes_per_s"].value == pytest.approx(
        DEFAULT_CONSTANTS.cache_maint_bytes_per_s, rel=1e-3)
    assert cal.error_after["max_abs_rel_error"] < 1e-6 < cal.error_before["max_abs_rel_error"]
    assert len(cal.per_entry) == 8 and all(r["status"] == "fitted" for r in cal.per_entry)
    held = res.held_out
    # 4 shapes x 2 M: half of each group of alike entries trains a 5-parameter fit, the rest
    # is predicted (4 points cannot pin 5 parameters, so the error is real, not ~0)
    assert len(held["train"]) == len(held["test"]) == 4 and not held["alone"]
    assert set(held["errors"]) == set(held["test"]) and held["max_abs_rel_error"] > 0
    assert set(held["leave_one_out"]) == {e.id for e in log.entries}


def test_sim_log_fits_only_ddr_and_latency(setup):
    """A simulation's times are partly the model's own: its log fits DDR and latency only."""
    board, wl, design = setup
    shapes = flow.unique_shapes(flow.select_layers(wl))
    ms = flow.measure(ModelBackend(board, design), flow.make_jobs(shapes, [1, 4], 4), 1,
                      design)
    log = flow.log_from_measurements(ms, "sim", board, design, {"rtl_build": "x"})
    assert {e.unit for e in log.entries} == {"cycles"} and log.config.backend == "sim"
    res = fit_log(log, wl, board, DEFAULT_CONSTANTS)
    assert set(res.params) <= {"ddr_pl_efficiency", "pipeline_latency_cycles"}
    # the stand-in's busy cycles carry no DDR stalls, so its busy times pull against the
    # stall-free counts a little: the latency lands near TRUTH's 31, not on it
    assert res.params["pipeline_latency_cycles"].value == pytest.approx(31, abs=3)


def test_result_mismatch_names_the_layer(setup):
    board, wl, design = setup
    shapes = flow.unique_shapes(flow.select_layers(wl, glob="model.layers.0.self_attn.o_proj"))
    jobs = flow.make_jobs(shapes, [1], 1)
    backend = ModelBackend(board, design, corrupt="model.layers.0.self_attn.o_proj")
    with pytest.raises(DseError, match=r"model.layers.0.self_attn.o_proj \(M=1, repeat 1\): "
                       r"expected results equal to the golden model, 1 of 2560 differ"):
        flow.measure(backend, jobs, 1, design)


def test_overlay_must_match_plan(setup):
    _, _, design = setup
    with pytest.raises(DseError, match="overlay: packing: expected 'base3'"):
        flow.check_design(design, EngineDesign(pe=8, simd=8, packing="base3"))
    flow.check_design(design, EngineDesign(pe=8, simd=8, packing="i2", engines=2))


def test_end_to_end_and_report_section(setup):
    board, wl, design = setup
    ctx0 = CostContext.for_board(board)
    shapes = flow.unique_shapes(flow.select_layers(wl))
    ms = flow.measure(ModelBackend(board, design), flow.make_jobs(shapes, [1, 4], 4), 1,
                      design)
    log = flow.log_from_measurements(ms, "pynq", board, design, {"clock_mhz": 250})
    res = fit_log(log, wl, board, DEFAULT_CONSTANTS)
    cal = flow.calibration_from_fit(res, log, board, {"clock_mhz": 250})
    ctx1 = CostContext.for_board(board, cal)
    before = explore(wl, ctx0, Objective())
    after = explore(wl, ctx1, Objective())
    # the stand-in measures calls launched by a Python driver (the board's per-call figure):
    # compose under the runtime that launches that way
    from dataclasses import replace

    e2e = flow.end_to_end(wl, replace(before.best.plan, runtime="torch"), design, ms, ctx0,
                          ctx1)
    # every ternary layer's shape ran; the head (a two-stage ternary copy on the engines)
    # did not; the stand-in's engine is not the plan's, so the figures are of the engine as
    # built, and say so
    assert e2e.run_layers == 210 and e2e.offloaded_layers == 211
    assert e2e.as_built and e2e.design == design.label()
    assert e2e.plan_id == replace(before.best.plan, runtime="torch", design=replace(
        design, head=None, head_macs=0, resident_bytes=0), resident=frozenset()).identity
    # after calibration the projection of the same plan matches the composed time, and the
    # composition says how much of it came from runs (the rest: the non-Linear part)
    assert e2e.projected_after_ms == pytest.approx(e2e.composed_ms, rel=1e-6)
    assert e2e.projected_before_ms != pytest.approx(e2e.composed_ms, rel=1e-3)
    nonlinear = e2e.composed_ms - e2e.run_ms
    assert 0 < e2e.run_fraction == pytest.approx(1 - nonlinear / e2e.composed_ms)
    replans = [(b, after.plans[i]) for i, b in enumerate(before.plans[:3])]
    for lang, title, kind in (("zh", "## 预测与实测对比 — ZCU104", "为实测"),
                              ("en", "## Projected vs measured — ZCU104", "measured")):
        sec = render_calibration_section(cal, res, "zcu104", lang, log=log, e2e=e2e,
                                         replans=replans, repeats=1)
        assert title in sec and "`ddr_pl_efficiency`" in sec
        assert f"{e2e.run_fraction:.0%} {kind}" in sec
        assert f"`{e2e.plan_id}`" in sec and f"`{e2e.baseline_runtime}`" in sec
        text = upsert_section("# report\n", "calibrate", "zcu104", sec)
        again = upsert_section(text, "calibrate", "zcu104", sec)
        assert again == text and text.count("dse:calibrate board=zcu104 begin") == 1


def test_make_jobs_uses_loaded_weights(setup):
    _, wl, _ = setup
    shapes = flow.unique_shapes(flow.select_layers(wl, glob="model.layers.0.self_attn.k_proj"))
    w = np.ones((640, 2560), dtype=np.int8)
    jobs = flow.make_jobs(shapes, [1, 3], 2, weights={"model.layers.0.self_attn.k_proj": w})
    assert [j.m for j in jobs] == [1, 3] and all(j.w is w for j in jobs)
    assert jobs[1].vectors == 2 and isinstance(jobs[0], Job)


def test_calibrate_cli_board_backend_writes_only_where_told(setup, tmp_path, capsys,
                                                            monkeypatch):
    """``dse calibrate --backend pynq`` (here a stand-in board) writes its log and a dated
    calibration under ./calibrations, never boards/, and leaves the checkout unchanged."""
    from _tree import tree_state

    from dse.cli import main
    from dse.commands import calibrate as cmd
    from dse.model.calibration import load_calibration
    from dse.model.measurement_log import load_log

    _, _, design = setup
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cmd, "_make_backend", lambda args, b, d: ModelBackend(b, design))
    monkeypatch.setattr(cmd, "_preflight", lambda args: None)  # the stand-in needs no pynq
    monkeypatch.setattr(cmd, "_doctor", lambda *a: None)  # nor has it registers to examine
    state = tree_state()
    rc = main(["calibrate", "--board", str(ROOT / "boards" / "zcu104.yaml"), "--backend",
               "pynq", "--layers", "model.layers.0.self_attn.[ko]_proj", "--repeats", "1",
               "--no-report", "--log", "run.json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    written = list((tmp_path / "calibrations").glob("zcu104-*.yaml"))
    assert len(written) == 1 and tree_state() == state
    assert load_calibration(written[0]).provenance["log"] == "run.json"
    assert len(load_log(tmp_path / "run.json").entries) == 4
    # q/o share o's shape and v shares k's: 120 of the plan's layers took a measured time
    # (of the plan's 211 PL layers: the two-stage head streams through the engines too)
    assert re.search(r"composed [\d.]+ ms/token, of which \d+% measured \(120/211 PL "
                     r"layers' shapes\) and the rest modelled", out), out
