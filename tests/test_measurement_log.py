"""Measurement logs and ``dse calibrate --from``: the shipped KV260 log, strict loading, bad
input, and calibrations that are used only where the user names them."""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from pathlib import Path

import pytest
import yaml
from _tree import tree_state

from dse.cli import main
from dse.errors import DseError
from dse.model.board import load_board
from dse.model.calibration import load_calibration
from dse.model.fit import fit_log
from dse.model.measurement_log import check_config, load_log, log_from_dict, log_to_json
from dse.model.project import CostContext
from dse.model.workload import workload_from_profile
from dse.profile.default import default_profile

ROOT = Path(__file__).resolve().parents[1]
KV260_LOG = ROOT / "examples" / "measurements" / "bitnet-kv260.json"
KV260 = ROOT / "boards" / "kv260.yaml"


@pytest.fixture(scope="module")
def kv260_fit():
    log = load_log(KV260_LOG)
    board = load_board(KV260)
    check_config(log, board)
    ctx = CostContext.for_board(board)
    return log, fit_log(log, workload_from_profile(default_profile()), ctx.board, ctx.constants)


def test_shipped_log_every_entry_has_a_source_and_unit(kv260_fit):
    log, _ = kv260_fit
    assert log.config.board == "KV260" and log.config.backend == "paper"
    assert all(e.source and e.unit for e in log.entries)
    split = [e for e in log.entries if e.part_of == "decode.token"]
    # the published per-component split of a token (8 rows, the head in its 3 parts, which
    # the source adds up to 5.43 where they sum to 5.39) + the runs' overhead
    assert sum(e.value for e in split if e.what != "run_overhead") == pytest.approx(56.98)
    # the round trip through the writer keeps every entry
    again = log_from_dict(json.loads(log_to_json(log)), "again.json")
    assert again.entries == log.entries


def test_kv260_fit(kv260_fit):
    """What the fit of the published KV260 log gives (bench/results/calibrate_kv260.json
    records the bars; these are guards against regressions, not the bars)."""
    _, res = kv260_fit
    by_id = {r.id: r for r in res.entries}
    token = by_id["decode.token"]
    # bar of the calibration issue: the composed token within 5% after the fit (today -0.0%)
    assert token.status == "composed" and abs(token.error_after) < 0.05
    assert 0 < token.measured_fraction < 0.1  # 96% of the composed token is modelled
    # issue 14's bar: every component over 1 ms within 15% after the fit: the PL side, the
    # head's stage 2, the hand-off items, the attention at 65 and 360 positions (the
    # K-transposed fp32 kernel's slope plus a per-layer overhead that does not grow with the
    # context), the norms, and the shift scan (its effective cycles per element, stalls in)
    for eid in ("decode.weight_stream", "decode.head_stream", "decode.run_overhead",
                "decode.head_topk", "decode.activation_loads", "decode.sums_readout",
                "decode.attention", "decode.attention.360", "decode.norms",
                "decode.shift_scan"):
        assert by_id[eid].status == "fitted" and abs(by_id[eid].error_after) < 0.15, eid
    assert res.params["native_attn_layer_overhead_us"].value > 0
    # the scan runs slower than its instruction count (the source reports stalls there)
    assert res.params["native_shift_scan_cycles_per_elem"].value > 22.0
    for name, p in res.params.items():
        assert p.stderr is not None and p.stderr >= 0, name
        assert p.value >= 0, name
    assert 0 < res.params["ddr_pl_efficiency"].value <= 1
    # the per-run burst start separates the 120-run weight stream from the one-run head
    assert res.params["run_burst_us"].value > 0
    # a C runtime's launch (the log says ps_runtime: native), not the Python driver's figure
    assert "native_call_overhead_us" in res.params
    assert "per_call_overhead_us" not in res.params
    # nothing the split lists is left unpriced any more
    for eid in ("decode.shift_scan", "decode.head_topk", "decode.head_rescore",
                "decode.activation_loads"):
        assert by_id[eid].status == "fitted", eid
    # the glue unit as the design states it: priced, but no fitted parameter moves it
    assert by_id["decode.ffn_glue"].status == "checked"
    assert abs(by_id["decode.ffn_glue"].error_after) < 0.05
    assert by_id["power.decode"].status == "not priced"
    assert by_id["bitnetcpp.decode.4t"].status == "checked"  # fit: false in the log
    assert by_id["bitnetcpp.decode.4t"].after is not None
    # the published design's batching and prompt rows: priced, checked, never fitted; before
    # the fit the weight pass of a round of 1-4 within 5%, the prompts within 15%
    rounds = [f"round.weight_stream.batch{b}" for b in (1, 2, 3, 4)]
    prompts = [r.id for r in res.entries if r.id.startswith("prefill.")]
    assert len(prompts) == 7
    for eid in rounds + prompts:
        assert by_id[eid].status == "checked" and by_id[eid].before is not None, eid
        assert abs(by_id[eid].error_before) < (0.05 if eid in rounds else 0.15), eid
    held = res.held_out
    assert held["test"] and set(held["errors"]) == set(held["test"])
    assert set(held["alone"]) <= set(held["train"])


def _write_log(tmp_path: Path, mutate) -> Path:
    data = json.loads(KV260_LOG.read_text(encoding="utf-8"))
    mutate(data)
    p = tmp_path / "log.json"
    p.write_text(json.dumps(data), encoding="utf-8")
    return p


def _entry(data: dict, entry_id: str) -> dict:
    return next(e for e in data["entries"] if e["id"] == entry_id)


BAD_LOGS = [
    pytest.param(lambda d: d.update(version=2), "version: expected 1", id="unknown-version"),
    pytest.param(lambda d: d.update(format="csv"), "format: expected 'dse-measurement-log'",
                 id="format"),
    pytest.param(lambda d: _entry(d, "decode.attention").pop("unit"),
                 "entries[6] (decode.attention): unit: expected a unit", id="no-unit"),
    pytest.param(lambda d: _entry(d, "decode.attention").update(unit="furlongs"),
                 "(decode.attention): unit: expected one of", id="bad-unit"),
    pytest.param(lambda d: _entry(d, "decode.attention").update(value=-1),
                 "(decode.attention): value: expected a number from 1e-09 to 1e+09 ms",
                 id="negative"),
    pytest.param(lambda d: _entry(d, "decode.attention").update(value="4.78"),
                 "(decode.attention): value: expected a number from 1e-09 to 1e+09 ms",
                 id="string"),
    # issue 27: what a log may not say
    pytest.param(lambda d: d["config"]["engine"].update(engines=2**62),
                 "config.engine.engines: expected an integer from 1 to 4096", id="engines"),
    pytest.param(lambda d: (_entry(d, "decode.token").update(part_of="decode.attention"),
                            _entry(d, "decode.attention").update(part_of="decode.token")),
                 "part_of: expected parts that are not part of themselves", id="cycle"),
    pytest.param(lambda d: _entry(d, "decode.attention").update(value=1e308),
                 "(decode.attention): value: expected a number from 1e-09 to 1e+09 ms",
                 id="huge-part"),
    pytest.param(lambda d: _entry(d, "decode.attention").update(value=59.0),
                 "(decode.token): value: expected at least the sum of its 10 parts",
                 id="parts-exceed-whole"),
    pytest.param(lambda d: _entry(d, "decode.attention").update(value=70.0),
                 "(decode.attention): value: expected at most its whole decode.token",
                 id="part-exceeds-whole"),
    pytest.param(lambda d: _entry(d, "decode.attention").update(unit="W", value=4.78),
                 "(decode.attention): unit: expected a unit of time or cycles or energy for a "
                 "component", id="component-in-watts"),
    pytest.param(lambda d: _entry(d, "decode.head_stream").update(n=10**30),
                 "(decode.head_stream): n: expected an integer from 1 to 16,777,216",
                 id="huge-n"),
    pytest.param(lambda d: d["config"].update(pl_clock_mhz=1e-300),
                 "config.pl_clock_mhz: expected a number from 1.0 to 2000.0", id="clock"),
    pytest.param(lambda d: _entry(d, "decode.attention").update(part_of="nothing"),
                 "(decode.attention): part_of: expected the id of another entry", id="part-of"),
    pytest.param(lambda d: _entry(d, "decode.attention").update(id="decode.norms"),
                 "(decode.norms): id: expected an id no other entry has", id="duplicate-id"),
    pytest.param(lambda d: d["config"].update(board="ZCU104"),
                 "config.board: expected 'KV260'", id="other-board"),
    pytest.param(lambda d: d["config"].update(ddr_transfer_rate_mts=2400),
                 "config.ddr_transfer_rate_mts: expected 2133", id="ddr-rate"),
    pytest.param(lambda d: _entry(d, "decode.weight_stream").update(calls=60),
                 "(decode.weight_stream): calls: expected 120", id="calls"),
    pytest.param(lambda d: _entry(d, "decode.run_overhead").update(value=20000.0),
                 "expected a physically plausible fit", id="implausible-fit"),
    pytest.param(lambda d: d["config"].update(glue={"passes": 0, "cycles_per_elem": 4}),
                 "config.glue.passes: expected an integer >= 1", id="glue"),
    pytest.param(lambda d: d["config"].update(ps_runtime="python"),
                 "config.ps_runtime: expected one of torch, native", id="ps-runtime"),
    pytest.param(lambda d: _entry(d, "decode.attention").update(context=99999),
                 "entries (decode.attention): --context-tokens: expected at most 4096",
                 id="context-beyond-model"),
    pytest.param(lambda d: d.update(entries=[]), "entries: expected a non-empty list",
                 id="no-entries"),
    pytest.param(lambda d: _entry(d, "decode.attention").update(colour="red"),
                 "(decode.attention): colour: expected one of the entry fields", id="unknown"),
]


@pytest.mark.parametrize(("mutate", "message"), BAD_LOGS)
def test_bad_logs_exit_2_and_write_nothing(tmp_path, capsys, mutate, message):
    log = _write_log(tmp_path, mutate)
    out = tmp_path / "cal.yaml"
    rc = main(["calibrate", "--from", str(log), "--board", str(KV260), "-o", str(out),
               "--no-report"])
    _, err = capsys.readouterr()
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(log) in lines[0] and message in lines[0], err
    assert "Traceback" not in err and not out.exists()


def test_nan_literal_is_refused(tmp_path, capsys):
    text = KV260_LOG.read_text(encoding="utf-8").replace('"value": 4.78', '"value": NaN', 1)
    assert "NaN" in text
    p = tmp_path / "nan.json"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(DseError, match=r"nan\.json: expected strict JSON \(NaN is not"):
        load_log(p)


def test_plan_engine_must_match_the_log(tmp_path, capsys):
    plans = tmp_path / "plans.json"
    assert main(["explore", "--board", str(KV260), "--no-report", "--json", str(plans)]) == 0
    capsys.readouterr()
    rc = main(["calibrate", "--from", str(KV260_LOG), "--board", str(KV260), "--plan",
               str(plans), "-o", str(tmp_path / "c.yaml"), "--no-report"])
    _, err = capsys.readouterr()
    assert rc == 2 and re.search(r"\(decode\.weight_stream\): config\.engine\.\w+: expected "
                                 r".* \(the plan's engine\), got", err), err
    assert not (tmp_path / "c.yaml").exists()


def test_calibrate_from_writes_only_where_told(tmp_path, capsys, monkeypatch):
    """Default output is a dated file under ./calibrations; boards/ and the tree unchanged;
    explore applies it only when named, and says which file (with its sha256)."""
    monkeypatch.chdir(tmp_path)
    state = tree_state()
    rc = main(["calibrate", "--from", str(KV260_LOG), "--board", str(KV260),
               "--report", str(tmp_path / "r.md")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    written = list((tmp_path / "calibrations").glob("kv260-*.yaml"))
    assert len(written) == 1 and tree_state() == state
    assert "composed" in out and "taken from the measurement" in out
    section = (tmp_path / "r.md").read_text(encoding="utf-8")
    assert "## 预测与实测对比 — KV260" in section and "`decode.weight_stream`" in section
    cal = load_calibration(written[0])
    assert cal.backend == "paper" and len(cal.per_entry) == len(load_log(KV260_LOG).entries)
    assert cal.provenance["log_sha256"] == hashlib.sha256(KV260_LOG.read_bytes()).hexdigest()
    digest = hashlib.sha256(written[0].read_bytes()).hexdigest()
    # not named: not used
    assert main(["explore", "--board", str(KV260), "--no-report"]) == 0
    assert "calibration: none" in capsys.readouterr().out
    # named on the command line
    assert main(["explore", "--board", str(KV260), "--no-report", "--calibration",
                 str(written[0])]) == 0
    assert f"(sha256 {digest[:12]}, paper, " in capsys.readouterr().out
    # named by a board file the user edits (relative to it); --calibration none overrides
    board = yaml.safe_load(KV260.read_text(encoding="utf-8"))
    board["calibration"] = f"calibrations/{written[0].name}"
    (tmp_path / "my-kv260.yaml").write_text(yaml.safe_dump(board), encoding="utf-8")
    json_out = tmp_path / "p.json"
    assert main(["explore", "--board", "my-kv260.yaml", "--no-report", "--json",
                 str(json_out)]) == 0
    assert f"sha256 {digest[:12]}" in capsys.readouterr().out
    assert f"sha256 {digest[:12]}" in json_out.read_text(encoding="utf-8")
    assert main(["explore", "--board", "my-kv260.yaml", "--no-report", "--calibration",
                 "none"]) == 0
    assert "calibration: none" in capsys.readouterr().out


def test_stray_calibration_files_change_nothing(tmp_path, capsys):
    """A calibration file beside a board (the old auto lookup) is never read."""
    (tmp_path / "calibration").mkdir()
    (tmp_path / "calibration" / "kv260.yaml").write_text("format: 1\nbogus", encoding="utf-8")
    (tmp_path / "kv260.yaml").write_text(KV260.read_text(encoding="utf-8"), encoding="utf-8")
    assert main(["explore", "--board", str(tmp_path / "kv260.yaml"), "--no-report"]) == 0
    assert "calibration: none" in capsys.readouterr().out


def test_board_calibration_field_must_exist(tmp_path, capsys):
    board = yaml.safe_load(KV260.read_text(encoding="utf-8"))
    board["calibration"] = "missing.yaml"
    p = tmp_path / "b.yaml"
    p.write_text(yaml.safe_dump(board), encoding="utf-8")
    assert main(["explore", "--board", str(p), "--no-report"]) == 2
    err = capsys.readouterr().err
    assert f"{p}: calibration: expected an existing calibration file" in err


GOOD_CAL = {"format": 1, "board": "KV260", "backend": "paper", "created": "2026-12-01",
            "parameters": {"ddr_pl_efficiency": {"value": 0.8, "stderr": 0.05},
                           "per_call_overhead_us": {"value": 15.0, "stderr": 1.0}}}


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d.update(provenance="abc"), "provenance: expected a mapping, got 'abc'"),
    (lambda d: d["parameters"]["ddr_pl_efficiency"].update(value=math.nan),
     "parameters.ddr_pl_efficiency.value: expected a finite number"),
    (lambda d: d["parameters"]["ddr_pl_efficiency"].update(value=1.5),
     "parameters.ddr_pl_efficiency.value: expected a number in (0, 1]"),
    (lambda d: d["parameters"]["ddr_pl_efficiency"].update(value=0),
     "parameters.ddr_pl_efficiency.value: expected a number in (0, 1]"),
    (lambda d: d["parameters"]["per_call_overhead_us"].update(value=-1),
     "parameters.per_call_overhead_us.value: expected a number from 0 to 100000"),
    (lambda d: d["parameters"]["per_call_overhead_us"].update(value=True),
     "parameters.per_call_overhead_us.value: expected a number"),
    (lambda d: d["parameters"]["per_call_overhead_us"].update(stderr=-1),
     "parameters.per_call_overhead_us.stderr: expected a number >= 0 or null"),
    (lambda d: d.update(format=2), "format: expected 1"),
    (lambda d: d.update(board=3), "board: expected a non-empty string"),
    (lambda d: d.update(error_after={"max_abs_rel_error": "low"}),
     "error_after.max_abs_rel_error: expected a number"),
    (lambda d: d.update(colour="red"), "colour: expected one of the calibration fields"),
])
def test_strict_calibration_loader(tmp_path, capsys, mutate, message):
    data = copy.deepcopy(GOOD_CAL)
    mutate(data)
    p = tmp_path / "cal.yaml"
    p.write_text(yaml.safe_dump(data), encoding="utf-8")
    rc = main(["explore", "--board", str(KV260), "--no-report", "--calibration", str(p)])
    err = capsys.readouterr().err
    err = re.sub(r": line \d+:", ":", err)
    assert rc == 2 and err.count("\n") == 1 and f"{p}: {message}" in err, err


def test_yaml_nan_is_rejected_not_clamped(tmp_path):
    p = tmp_path / "cal.yaml"
    text = yaml.safe_dump(GOOD_CAL).replace("value: 0.8", "value: .nan")
    assert ".nan" in text
    p.write_text(text, encoding="utf-8")
    with pytest.raises(DseError, match="value: expected a finite number"):
        load_calibration(p)


def test_fit_that_does_not_converge_names_an_entry(tmp_path, capsys, monkeypatch):
    import numpy as np

    from dse.model import fit as fit_module

    class Stopped:
        success, message, cost = False, "the maximum number of evaluations is exceeded", 1.0

        def __init__(self, fun, x0):
            self.x, self.fun = np.asarray(x0, dtype=float), np.asarray(fun(x0))
            self.jac = np.ones((self.fun.size, self.x.size))

    monkeypatch.setattr(fit_module, "least_squares",
                        lambda fun, x0, **kw: Stopped(fun, x0))
    out = tmp_path / "cal.yaml"
    rc = main(["calibrate", "--from", str(KV260_LOG), "--board", str(KV260), "-o", str(out),
               "--no-report"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    # the entry named is the one furthest off where the fit stopped (the head's top-K, -66%)
    assert f"{KV260_LOG}: entries (decode.head_topk): expected a fit that converges" in err
    assert not out.exists()


def test_the_logs_engine_names_its_rtl_and_the_evidence_prices_it_as_that():
    """The published log's engine is the published design's RTL (bitnet-kv260, closed at
    250 MHz): priced with the shipped fabric evidence its clock is supported, not taken for
    ours (closed at 200 MHz) and marked beyond the evidence."""
    from dse.fabric_data import load_fabric
    from dse.model.predict import entry_plan
    from dse.model.project import Scenario, project

    log = load_log(KV260_LOG)
    e = next(x for x in log.entries if x.id == "decode.weight_stream")
    wl = workload_from_profile(default_profile())
    plan = entry_plan(e, wl, str(KV260_LOG))
    assert plan.design.rtl == "bitnet-kv260"
    ctx = CostContext.for_board(load_board(KV260), fabric=load_fabric())
    ev = project(wl, plan, ctx, Scenario(kv_dtype="fp32", context_tokens=65),
                 with_baselines=False).evidence
    assert ev is not None and not ev.beyond and ev.clock.mhz == 250.0


@pytest.mark.parametrize("rtl, message", [
    (3, r"config\.engine\.rtl: expected an engine RTL name"),
    ("nope", r"engine\.rtl: expected one of ternary_gemv, bitnet-kv260, got 'nope'"),
])
def test_a_bad_engine_rtl_in_a_log_is_one_line(tmp_path, capsys, rtl, message):
    data = json.loads(KV260_LOG.read_text(encoding="utf-8"))
    data["config"]["engine"]["rtl"] = rtl
    p = tmp_path / "log.json"
    p.write_text(json.dumps(data), encoding="utf-8")
    rc = main(["calibrate", "--from", str(p), "--board", str(KV260), "-o",
               str(tmp_path / "c.yaml"), "--no-report"])
    err = capsys.readouterr().err
    assert rc == 2 and re.search(message, err) and str(p) in err and err.count("\n") == 1, err
    assert not (tmp_path / "c.yaml").exists()
