"""The board doctor (dse.hw.doctor) before an on-board calibration.

Here with a stand-in driver (an object holding the engine registers' decoded config and the
PL clock pynq read back), so it runs in the project's venv; ``tests/test_pynq_driver.py``'s
``test_emulated_doctor_*`` run the same checks against the emulated device's real registers
(in the board venv). The .hwh files are written as the Vivado flow writes them
(``tests/_hwh.py``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from _hwh import hwh_text

from dse.errors import DseError
from dse.hw import doctor
from dse.hw.regs import EngineConfig
from dse.model.engine import EngineDesign
from dse.model.project import AttentionUnit

ROOT = Path(__file__).resolve().parents[1]
BUILD = {"pe": 8, "simd": 16, "packing": "i2", "vmax": 4, "kmax": 8192}
PLAN = EngineDesign(pe=8, simd=16, packing="i2", clock_mhz=250.0, engines=2, vectors=4,
                    max_k=6912)
ATTN = AttentionUnit(group=4, head_dim=128, max_kv_heads=5, max_positions=4096,
                     latency_cycles=10)


@dataclass
class FakeEngine:
    """What the doctor reads of a driver: the registers' config, the PL clock read back."""

    config: EngineConfig
    clock_mhz: float | None = 250.0


class FakeGroup:
    def __init__(self, n: int, clock: float | None = 250.0, **build) -> None:
        b = {**BUILD, **build}
        cfg = EngineConfig(b["pe"], b["simd"], b["packing"], b["vmax"], b["kmax"],
                           stream_bits=256)
        self.engines = [FakeEngine(cfg, clock) for _ in range(n)]
        self.clock_mhz = clock


@pytest.fixture
def quiet_system(tmp_path):
    """A /sys with every CPU on the performance governor and an empty /proc."""
    for i in range(4):
        f = tmp_path / "sys" / f"cpu{i}" / "cpufreq" / "scaling_governor"
        f.parent.mkdir(parents=True)
        f.write_text("performance\n", encoding="ascii")
    (tmp_path / "proc").mkdir()
    return {"cpu_root": tmp_path / "sys", "proc_root": tmp_path / "proc", "sample_s": 0.01}


def _hwh(tmp_path: Path, engines=2, attention=(), clock=250.0, **build) -> Path:
    path = tmp_path / "o.hwh"
    path.write_text(hwh_text([{**BUILD, **build}] * engines, list(attention), clock),
                    encoding="utf-8")
    return path


def test_a_matching_board_passes(tmp_path, quiet_system):
    att = [{"g": 4, "d": 128, "hmax": 5, "tmax": 4096}]
    findings = doctor.examine(FakeGroup(2), _hwh(tmp_path, attention=att), PLAN, ATTN,
                              **quiet_system)
    assert all(f.ok for f in findings), [f.line() for f in findings]
    assert [f.check for f in findings] == ["PL clock", "bitstream", "plan's engine",
                                           "plan's units", "CPU governor", "busy processes"]
    doctor.verdict(findings, "o.bit")  # no refusal


@pytest.mark.parametrize(("driver", "hwh", "plan", "attention", "expected"), [
    (FakeGroup(2, clock=100.0), {}, PLAN, None,
     "PL clock: runs at 100 MHz, the bitstream was built for 250 MHz"),
    (FakeGroup(2, clock=250.0), {"clock": 200.0}, PLAN, None,
     "PL clock: runs at 250 MHz, the bitstream was built for 200 MHz"),
    (FakeGroup(2, clock=None), {}, PLAN, None, "PL clock: could not be read back"),
    (FakeGroup(2, simd=32), {}, None, None,
     "bitstream: ternary_gemv_0: SIMD 16 in the .hwh, 32 in its registers"),
    (FakeGroup(1), {}, None, None, "lists 2 engines, the loaded overlay has 1"),
    (FakeGroup(2, packing="base3", simd=20), {"packing": "base3", "simd": 20}, PLAN, None,
     "plan's engine: SIMD 20, the plan 16; PACKING base3, the plan i2"),
    (FakeGroup(2, vmax=2), {"vmax": 2}, PLAN, None, "VMAX 2, the plan runs 4 vectors a pass"),
    (FakeGroup(2), {}, PLAN, ATTN, "plan's units: the plan has an attention unit"),
])
def test_a_mismatch_refuses_the_calibration(tmp_path, quiet_system, driver, hwh, plan,
                                            attention, expected):
    path = _hwh(tmp_path, clock=hwh.pop("clock", 250.0), **hwh)
    findings = doctor.examine(driver, path, plan, attention, **quiet_system)
    with pytest.raises(DseError) as exc:
        doctor.verdict(findings, "o.bit")
    msg = str(exc.value)
    assert msg.startswith("o.bit: board doctor: ") and expected in msg, msg
    assert msg.endswith("no calibration run")


def test_attention_parameters_against_the_plan(tmp_path, quiet_system):
    att = [{"g": 4, "d": 128, "hmax": 5, "tmax": 1024}]
    findings = doctor.examine(FakeGroup(2), _hwh(tmp_path, attention=att), PLAN, ATTN,
                              **quiet_system)
    bad = [f for f in findings if not f.ok]
    assert [f.detail for f in bad] == ["kv_attn_0: TMAX 1024, the plan 4096"]
    two = [{"g": 4, "d": 128, "hmax": 3, "tmax": 4096}] * 2
    findings = doctor.examine(FakeGroup(2), _hwh(tmp_path, attention=two), PLAN, ATTN,
                              **quiet_system)
    assert [f.detail for f in findings if not f.ok] == [
        "the plan has 1 attention unit(s) (kv_attn G4 D128 H5 T4096), "
        f"{tmp_path / 'o.hwh'} lists 2"]


def test_noise_is_reported_not_refused(tmp_path, quiet_system):
    gov = quiet_system["cpu_root"] / "cpu2" / "cpufreq" / "scaling_governor"
    gov.write_text("schedutil\n", encoding="ascii")
    findings = doctor.examine(FakeGroup(2), _hwh(tmp_path), PLAN, **quiet_system)
    governor = next(f for f in findings if f.check == "CPU governor")
    assert not governor.ok and not governor.refuses
    assert governor.detail.startswith("schedutil on 1 of 4 CPUs")
    doctor.verdict(findings, "o.bit")  # reported, not refused


def test_busy_processes_from_two_samples():
    before = {1: ("init", 100), 42: ("stress", 1000), 43: ("idle", 5), os.getpid(): ("me", 0)}
    after = {1: ("init", 101), 42: ("stress", 1090), 43: ("idle", 5), 44: ("new", 900),
             os.getpid(): ("me", 500)}
    busy = doctor.busy_from_samples(before, after, 1.0, 100.0, exclude=(os.getpid(),))
    assert busy == [(42, "stress", pytest.approx(0.9))]
    line = doctor.check_busy(busy)
    assert not line.ok and "stress (pid 42, 90%)" in line.detail


def test_busy_processes_reads_the_real_proc():
    got = doctor.busy_processes(0.05)
    assert all(pid != os.getpid() and share > doctor.BUSY_SHARE for pid, _, share in got)


def test_hwh_of_a_zynq7000_board_and_bad_files(tmp_path):
    build = doctor.hwh_from_text(hwh_text([BUILD], clock_mhz=125.0, family="zynq7000"))
    assert build.pl_clock_mhz == 125.0 and build.engines[0][1]["SIMD"] == 16
    with pytest.raises(DseError, match=r"x\.hwh: expected the bitstream's hardware handoff"):
        doctor.hwh_from_text("<EDKSYSTEM>", "x.hwh")
    bad = hwh_text([BUILD]).replace('NAME="PE" VALUE="8"', 'NAME="PE" VALUE="eight"')
    with pytest.raises(DseError, match=r"ternary_gemv_0: PE: expected the IP's integer"):
        doctor.hwh_from_text(bad, "x.hwh")
    with pytest.raises(DseError, match=r"no such hardware handoff"):
        doctor.read_hwh(tmp_path / "missing.hwh")


def test_calibrate_pynq_refuses_in_one_line(tmp_path, capsys, monkeypatch):
    """Through the command: the doctor's lines are printed, the mismatch ends the run in one
    line, exit 2, nothing written."""
    from dse.cli import main
    from dse.commands import calibrate as cmd

    (tmp_path / "o.bit").write_bytes(b"bit")
    _hwh(tmp_path)
    plan = {"format": "dse-explore", "plans": [{"label": "best", "projections": [{"plan": {
        "offload": ["model.layers.0.mlp.up_proj"], "attention": None,
        "design": {"pe": 8, "simd": 16, "packing": "i2", "clock_mhz": 250.0, "engines": 2,
                   "vectors": 4, "max_k": 6912, "stream_bits": 256}}}]}]}
    (tmp_path / "plan.json").write_text(json.dumps(plan), encoding="utf-8")

    class Backend:
        name = "pynq"
        engine = FakeGroup(2, clock=100.0)

    monkeypatch.setattr(cmd, "_preflight", lambda args: None)
    monkeypatch.setattr(cmd, "_make_backend", lambda args, board, design: Backend())
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    rc = main(["calibrate", "--board", "kv260", "--backend", "pynq", "--overlay", "o.bit",
               "--plan", "plan.json", "--no-report", "-o", "cal.yaml"])
    out, err = capsys.readouterr()
    assert rc == 2
    assert "board doctor:\n  FAIL PL clock: runs at 100 MHz" in out
    assert err.strip() == ("dse: error: o.bit: board doctor: PL clock: runs at 100 MHz, the "
                           "bitstream was built for 250 MHz (60% off; set it with pynq.Clocks."
                           "fclk0_mhz or rebuild) (and 1 more: see above); no calibration run")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
