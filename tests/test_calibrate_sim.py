"""``dse calibrate --backend sim``: the RTL in Verilator, verified and fitted end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
from _tree import tree_state

from dse.cli import main
from dse.model.calibration import load_calibration
from dse.model.measurement_log import load_log

pytestmark = pytest.mark.rtl
ROOT = Path(__file__).resolve().parents[1]


def _tools_or_skip() -> None:
    import sys

    sys.path.insert(0, str(ROOT / "overlays" / "sim"))
    import sim

    try:
        sim.setup_verilator()
    except sim.ToolsMissing as exc:  # pragma: no cover - CI installs them
        pytest.skip(f"RTL tools missing: {exc}")


def test_calibrate_sim_two_shapes(tmp_path, capsys, monkeypatch):
    _tools_or_skip()
    monkeypatch.chdir(tmp_path)
    state = tree_state()
    report = tmp_path / "r.md"
    report.write_text((ROOT / "dse" / "data" / "bitnet-2b4t.zh.md").read_text(encoding="utf-8"),
                      encoding="utf-8")
    cal_path = tmp_path / "zcu104.yaml"
    rc = main(["calibrate", "--board", "zcu104", "--backend", "sim",
               "--layers", "model.layers.0.self_attn.[ko]_proj", "--repeats", "1",
               "--prefill-m", "2",
               "--output", str(cal_path), "--report", str(report),
               "--log", str(tmp_path / "sim-log.json")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "verified bit-exactly" in out and "measured" not in out.split("calibration:")[0]
    # it simulated exactly the best plan's engine (PE, SIMD, packing, engines) and says so
    assert "simulating RTL build " in out and "x ternary_gemv PE=" in out
    cal = load_calibration(cal_path)
    assert "rtl_engine" in cal.provenance and "rtl_build" in cal.provenance
    assert cal.backend == "sim" and cal.board == "ZCU104"
    assert len(cal.per_entry) == 4  # 2 shapes x (M=1, M=2)
    assert all(abs(r["error_after"]) < 0.05 for r in cal.per_entry)
    # a simulation informs the DDR supply and the pipeline latency, not the overheads
    assert set(cal.params) <= {"ddr_pl_efficiency", "pipeline_latency_cycles"}
    # the RTL's real fill/drain is pinned by the stall-free cycle counts
    assert cal.params["pipeline_latency_cycles"].value == pytest.approx(10, abs=1)
    log = load_log(tmp_path / "sim-log.json")
    assert log.config.backend == "sim" and {e.unit for e in log.entries} == {"cycles"}
    # the same fit from the written log, with no simulator
    rc = main(["calibrate", "--from", str(tmp_path / "sim-log.json"), "--board",
               str(ROOT / "boards" / "zcu104.yaml"), "--no-report"])
    capsys.readouterr()
    assert rc == 0 and len(list((tmp_path / "calibrations").glob("zcu104-*.yaml"))) == 1
    assert tree_state() == state
    assert "verilator" in str(cal.provenance.get("simulator", "")).lower()
    text = report.read_text(encoding="utf-8")
    assert text.count("<!-- dse:calibrate board=zcu104 begin -->") == 1
    assert "## 预测与实测对比 — ZCU104" in text
    # explore and project use the calibration and say so
    rc = main(["explore", "--board", "zcu104", "--calibration",
               str(cal_path), "--no-report"])
    out, _ = capsys.readouterr()
    assert rc == 0 and f"calibration: {cal_path} (sha256 " in out and ", sim, " in out


def test_calibrate_rejects_bad_options(capsys, tmp_path):
    rc = main(["calibrate", "--board", "zcu104", "--backend", "sim", "--repeats", "0",
               "--no-report", "--output", str(tmp_path / "c.yaml")])
    _, err = capsys.readouterr()
    assert rc == 2 and "--repeats: expected an integer >= 1" in err
    rc = main(["calibrate", "--board", "zcu104", "--backend", "pynq", "--no-report",
               "--output", str(tmp_path / "c.yaml")])
    _, err = capsys.readouterr()
    assert rc == 2 and "--overlay: expected the overlay's .bit file" in err
    assert not (tmp_path / "c.yaml").exists()


def test_overlay_must_match_the_plan(capsys, tmp_path):
    """A plan whose engine the overlay cannot be (TL2 packing) is refused before any run."""
    plans = tmp_path / "plans.json"
    assert main(["explore", "--board", "zcu104", "--no-report", "--json", str(plans)]) == 0
    capsys.readouterr()
    import json

    data = json.loads(plans.read_text(encoding="utf-8"))
    data["plans"][0]["projections"][0]["plan"]["design"]["packing"] = "tl2"
    plans.write_text(json.dumps(data), encoding="utf-8")
    rc = main(["calibrate", "--board", "zcu104", "--backend", "sim", "--plan", str(plans),
               "--no-report", "--output", str(tmp_path / "c.yaml")])
    _, err = capsys.readouterr()
    assert rc == 2 and "packing: expected i2 or base3" in err
    assert not (tmp_path / "c.yaml").exists()
