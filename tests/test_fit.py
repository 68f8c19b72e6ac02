"""Fitting: recover known parameters from synthetic measurements; calibration files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dse.errors import DseError
from dse.hw.calibrate import log_from_measurements
from dse.model.board import load_board
from dse.model.calibration import (
    Calibration,
    FittedParam,
    apply_params,
    calibration_from_dict,
    calibration_to_dict,
    load_calibration,
)
from dse.model.constants import DEFAULT_CONSTANTS
from dse.model.engine import EngineDesign
from dse.model.fit import Measurement, fit_log, predict_cycles, predict_s
from dse.model.packing import get_packing
from dse.model.project import CostContext
from dse.model.workload import workload_from_profile
from dse.profile.default import default_profile

ROOT = Path(__file__).resolve().parents[1]
SHAPES = [(2560, 2560), (640, 2560), (6912, 2560), (2560, 6912), (3840, 2560), (13824, 2560),
          (512, 512), (256, 1024)]


@pytest.fixture(scope="module")
def board():
    return load_board(ROOT / "boards" / "zcu104.yaml")


def synth(board, truth: dict[str, float], noise: float = 0.0, seed: int = 0):
    """A board log made by the model itself with ``truth`` in force (+ relative noise)."""
    rng = np.random.default_rng(seed)
    # four 128-bit engines (one per HP port): DDR-bound, so DDR efficiency is identifiable
    design = EngineDesign(pe=8, simd=8, packing="i2", stream_bits=128, engines=4, max_k=8192)
    tb, tc = apply_params(board, DEFAULT_CONSTANTS, truth)
    out = []
    for n, k in SHAPES:
        for m in (1, 4):
            base = Measurement(f"{n}x{k}", n, k, m, design,
                               get_packing("i2").matrix_bytes(n, k), 1.0)
            t = predict_s(base, tb, tc) * (1 + noise * rng.standard_normal())
            cyc = predict_cycles(base, tc)
            out.append(Measurement(base.layer, n, k, m, design, base.weight_bytes, t,
                                   busy_cycles=cyc + 100, stall_cycles=100))
    return log_from_measurements(out, "pynq", board, design, {})


@pytest.fixture(scope="module")
def wl():
    return workload_from_profile(default_profile())


def test_fit_recovers_known_parameters(board, wl):
    truth = {"ddr_pl_efficiency": 0.62, "per_call_overhead_us": 95.0,
             "pipeline_latency_cycles": 40.0}
    res = fit_log(synth(board, truth), wl, board, DEFAULT_CONSTANTS)
    for name, value in truth.items():
        assert res.params[name].value == pytest.approx(value, rel=1e-3)
    assert res.summary("after")["max_abs_rel_error"] < 1e-5
    assert res.summary("before")["max_abs_rel_error"] > 0.05  # defaults were wrong, and it showed
    # what no entry measures is not fitted
    assert "ps_memory_bandwidth_gb_s" not in res.params


def test_fit_reports_its_evaluations_and_is_unchanged_by_it(board, wl, monkeypatch):
    """progress(evaluations, 0) counts up while a fit runs (throttled in wall time: here
    every evaluation), and watching does not change the result."""
    from dse.model import fit as fit_mod

    truth = {"ddr_pl_efficiency": 0.62, "per_call_overhead_us": 95.0}
    log = synth(board, truth)
    seen: list[int] = []
    clock = iter(range(10**6))
    monkeypatch.setattr(fit_mod.time, "monotonic", lambda: float(next(clock)))
    watched = fit_log(log, wl, board, DEFAULT_CONSTANTS, progress=lambda n, _: seen.append(n))
    plain = fit_log(log, wl, board, DEFAULT_CONSTANTS)
    assert len(seen) > 10 and seen == sorted(seen) and seen[0] == 1
    assert {k: p.value for k, p in watched.params.items()} == {
        k: p.value for k, p in plain.params.items()}


def test_fit_with_noise_reports_uncertainty(board, wl):
    truth = {"ddr_pl_efficiency": 0.7, "per_call_overhead_us": 50.0,
             "pipeline_latency_cycles": 30.0}
    res = fit_log(synth(board, truth, noise=0.02, seed=3), wl, board, DEFAULT_CONSTANTS)
    eff = res.params["ddr_pl_efficiency"]
    assert eff.stderr is not None and 0 < eff.stderr < 0.05
    assert abs(eff.value - 0.7) < 4 * eff.stderr + 0.01
    assert res.summary("after")["max_abs_rel_error"] < 0.08
    # the whole covariance, its diagonal the squared standard errors, symmetric: what a
    # calibrated projection's band propagates (issue 25)
    cov = res.covariance
    assert set(cov) == {k for k, p in res.params.items() if p.stderr is not None}
    for a in cov:
        assert cov[a][a] == pytest.approx(res.params[a].stderr ** 2, rel=1e-9)
        for b in cov:
            assert cov[a][b] == cov[b][a]


def test_held_out_entries(board, wl):
    """Fit on half of each group of alike entries, predict the other half."""
    truth = {"ddr_pl_efficiency": 0.66, "per_call_overhead_us": 80.0,
             "pipeline_latency_cycles": 24.0}
    res = fit_log(synth(board, truth, noise=0.01, seed=5), wl, board, DEFAULT_CONSTANTS)
    held = res.held_out
    assert len(held["train"]) == len(held["test"]) == 8
    assert held["max_abs_rel_error"] < 0.10


def test_calibration_file_round_trip_and_context(board, tmp_path):
    cal = Calibration("ZCU104", "sim", "2026-11-25T00:00:00+00:00",
                      {"ddr_pl_efficiency": FittedParam(0.6, 0.01, 0.75),
                       "per_call_overhead_us": FittedParam(90.0, 2.0, 68.0)},
                      {"bitstream_sha256": "abc"}, {"max_abs_rel_error": 0.2},
                      {"max_abs_rel_error": 0.01})
    data = calibration_to_dict(cal)
    back = calibration_from_dict(data, "x.yaml")
    assert back.params == cal.params
    ctx = CostContext.for_board(board, back)
    assert ctx.board.ddr.pl_efficiency == 0.6
    assert ctx.board.link.per_call_overhead_us == 90.0
    assert ctx.calibration.startswith("x.yaml (sim, 2026-11-25")
    other = load_board(ROOT / "boards" / "kv260.yaml")
    with pytest.raises(DseError, match="board: expected 'KV260'"):
        CostContext.for_board(other, back)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(format=2), "format: expected 1"),
    (lambda d: d["parameters"].update(bogus={"value": 1}), "parameters.bogus: expected one of"),
    (lambda d: d["parameters"]["ddr_pl_efficiency"].update(value="high"),
     "parameters.ddr_pl_efficiency.value: expected a number"),
    (lambda d: d.pop("backend"), "backend: expected a value"),
])
def test_bad_calibration_files(tmp_path, mutate, message):
    import yaml

    data = {"format": 1, "board": "ZCU104", "backend": "sim", "created": "2026-11-25",
            "parameters": {"ddr_pl_efficiency": {"value": 0.7, "stderr": 0.01}}}
    mutate(data)
    p = tmp_path / "cal.yaml"
    p.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(DseError, match=message) as exc:
        load_calibration(p)
    assert str(p) in str(exc.value) and "\n" not in str(exc.value)


# -- the fit's shortcuts are exact --------------------------------------------------------------

def test_probed_shortcut_is_the_direct_probe(wl):
    """The log's probes, computed once, give each subset of entries the same sensitivities and
    identifiable parameters as probing that subset on its own (what held-out fits use)."""
    from dse.model.fit import (
        BOUNDS,
        _identifiable,
        _Probed,
        _residual_fn,
        _sensitive,
        source_params,
    )
    from dse.model.measurement_log import load_log
    from dse.model.predict import predict

    log = load_log(ROOT / "examples" / "measurements" / "bitnet-kv260.json")
    kv260 = load_board(ROOT / "boards" / "kv260.yaml")
    c = CostContext.for_board(kv260).constants
    allowed = source_params(log.config.backend)
    entries = [e for e in log.entries if e.fit and predict(e, wl, kv260, c, log.path).priced
               and not any(x.part_of == e.id for x in log.entries)]
    probed = _Probed(log, entries, wl, kv260, c, allowed)
    assert probed.exact
    lo = np.array([BOUNDS[p][0] for p in allowed])
    hi = np.array([BOUNDS[p][1] for p in allowed])
    for subset in (entries, entries[::2], entries[1::2], entries[:1], entries[2:5]):
        fn = _residual_fn(log, subset, wl, kv260, c, allowed)
        keep = _sensitive(fn, allowed, probed.x0, lo, hi)
        assert probed.sensitive(subset) == keep
        assert probed.identifiable(subset, keep) == _identifiable(fn, probed.x0, lo, hi, keep)


def test_operator_components_are_the_projections(wl):
    """A fit's PS-side entries take the operators' components without pricing the calls:
    the very floats ``project`` sums, for plans with and without PL units, both runtimes."""
    from dataclasses import replace

    from dse.model.plan_file import load_plan
    from dse.model.project import Scenario, operator_components, project

    kv260 = load_board(ROOT / "boards" / "kv260.yaml")
    ctx = CostContext.for_board(kv260)
    pub = load_plan(ROOT / "examples" / "plans" / "bitnet-kv260.yaml", wl)
    half = replace(pub, offload=frozenset(n for n in pub.offload if "mlp" in n), units=())
    for plan in (pub, replace(pub, units=()), half, replace(half, runtime="torch")):
        for sc in (Scenario(context_tokens=65, kv_dtype="fp32"),
                   Scenario(context_tokens=300, kv_dtype="int8", sequences=2),
                   Scenario(phase="prefill", m=8, context_tokens=8)):
            want = project(wl, plan, ctx, sc, with_baselines=False).components
            got = operator_components(wl, plan, ctx, sc)
            for k in ("attention", "norms_quant_rope_residual", "sampling"):
                assert got[k] == want[k], (plan.name, sc, k)


def test_the_operators_parts_read_only_the_operator_params():
    """A fit shares the operators' parts of a token across parameter sets that agree on
    ``OPERATOR_PARAMS`` (``predict.shared_operator_parts``): every other fitted parameter must
    leave them unchanged (here the published plan, glue unit included, at two contexts and two
    KV formats), and each operator parameter must be able to move them."""
    from dataclasses import replace

    from dse.model.calibration import apply_params, default_value
    from dse.model.fit import SOURCE_PARAMS
    from dse.model.plan_file import load_plan
    from dse.model.predict import OPERATOR_PARAMS
    from dse.model.project import Scenario, operator_components

    wl = workload_from_profile(default_profile())
    board = load_board(ROOT / "boards" / "kv260.yaml")
    plan = load_plan(ROOT / "examples" / "plans" / "bitnet-kv260.yaml", wl)
    scenarios = [(replace(plan, kv_dtype=kv), Scenario("on-board", "decode", 1, t, kv, 1, 4))
                 for kv in ("fp32", "int8") for t in (65, 700)]

    def parts(values: dict) -> list[dict]:
        b, c = apply_params(board, DEFAULT_CONSTANTS, values)
        return [operator_components(wl, p, CostContext(b, c, "fit"), sc)
                for p, sc in scenarios]

    base = parts({})
    for name in SOURCE_PARAMS["board"]:
        v = default_value(name, board, DEFAULT_CONSTANTS)
        moved = parts({name: v * 1.7 + 1.0 if name != "ddr_pl_efficiency" else v * 0.5})
        if name in OPERATOR_PARAMS:
            assert moved != base, name
        else:
            assert moved == base, name


def _scaled_cov(jac: np.ndarray, x: np.ndarray, cost: float) -> np.ndarray:
    """inv(J'J) s^2 in each parameter's own units, as the fit computes it (no bound held)."""
    s2 = 2.0 * cost / (jac.shape[0] - jac.shape[1])
    scale = np.where(np.abs(x) > 0, np.abs(x), 1.0)
    js = jac * scale
    return np.linalg.pinv(js.T @ js) * s2 * np.outer(scale, scale)


def test_a_parameter_held_at_its_bound_has_no_standard_error():
    """A parameter the fit leaves on a bound (least squares' active_mask) gets no standard
    error (the curvature there printed 2e-29 us for one), and the others' errors are those of
    the fit with it held fixed; with nothing on a bound, the plain inv(J'J) s^2."""
    from types import SimpleNamespace

    from dse.model.fit import _covariance

    rng = np.random.default_rng(7)
    jac = rng.normal(size=(20, 3))
    x = np.array([2.0, 0.0, 5.0])
    free = SimpleNamespace(jac=jac, x=x, cost=1.5, active_mask=np.zeros(3, dtype=int))
    se, cov = _covariance(free, 3)
    want = _scaled_cov(jac, x, 1.5)
    assert np.allclose(se, np.sqrt(np.diag(want)), rtol=1e-12)
    held = SimpleNamespace(jac=jac, x=x, cost=1.5, active_mask=np.array([0, -1, 0]))
    se, cov = _covariance(held, 3)
    want = _scaled_cov(jac[:, [0, 2]], x[[0, 2]], 1.5)
    assert se[1] is None and cov[1, 1] == 0.0
    assert np.allclose([se[0], se[2]], np.sqrt(np.diag(want)), rtol=1e-12)


def test_the_report_says_a_parameter_is_held_at_its_bound():
    from dse.model.calibration import PARAM_BOUNDS, FittedParam
    from dse.report.calibrate_md import _fitted_text

    lo = PARAM_BOUNDS["run_burst_us"][0]
    assert _fitted_text("run_burst_us", FittedParam(lo + 2e-13, None, 0.0), "en").endswith(
        "(held at its bound: no standard error)")
    assert "边界" in _fitted_text("run_burst_us", FittedParam(lo, None, 0.0), "zh")
    assert _fitted_text("run_burst_us", FittedParam(3.0, None, 0.0), "en").endswith(
        "(unconstrained)")
    assert "±" in _fitted_text("run_burst_us", FittedParam(3.0, 0.2, 0.0), "en")
