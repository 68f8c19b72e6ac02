"""CPU cores as data (dse/model/cores.py): each core its own kernel cycle counts, never an A53
by default; the A53 stays the reference the constants, overrides and calibrations act on."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from dse.cli import main
from dse.errors import DseError
from dse.model.board import load_board
from dse.model.constants import DEFAULT_CONSTANTS
from dse.model.cores import CORES, core_for, find_core, kernel_cycles
from dse.model.cpu import CpuSpec, cycles, native_linear
from dse.model.workload import known_host

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("model", "key"), [
    ("Cortex-A9", "cortex-a9"), ("ARM Cortex-A53", "cortex-a53"), ("Cortex-A55", "cortex-a55"),
    ("Cortex-A72", "cortex-a72"), ("Cortex-A76", "cortex-a76"), ("cortex-a78", "cortex-a76"),
    ("AMD Ryzen 7 9700X 8-Core Processor", "x86-avx2"),
    ("Intel(R) Xeon(R) Platinum 8370C", "x86-avx2"),
])
def test_a_cpu_model_names_its_core(model, key):
    assert find_core(model).key == key


def test_an_unknown_core_is_one_line_never_an_a53():
    assert find_core("Cortex-R5") is None and find_core("Cortex-A5") is None
    with pytest.raises(DseError) as exc:
        core_for("Cortex-R5", "boards/x.yaml: ps_cpu.model")
    msg = str(exc.value)
    assert msg.startswith("boards/x.yaml: ps_cpu.model: expected a CPU core dse has kernel "
                          "cycle counts for (Cortex-A9, Cortex-A53,") and "'Cortex-R5'" in msg
    # a CPU priced natively with no core: the same line, naming where its model came from
    cpu = CpuSpec("Apple M2", 100.0, 60.0, 3500, 8, where="p.json: system.cpu_model")
    with pytest.raises(DseError, match=r"^p\.json: system\.cpu_model: expected a CPU core .*"
                       r"got 'Apple M2'$"):
        native_linear(2560, 2560, 1, True, cpu, 8, DEFAULT_CONSTANTS)


def test_a_board_file_with_an_unknown_core_is_rejected(tmp_path, capsys):
    text = (ROOT / "boards" / "zcu104.yaml").read_text().replace("model: Cortex-A53",
                                                                 "model: Cortex-R5F")
    path = tmp_path / "r5.yaml"
    path.write_text(text)
    assert main(["boards", "validate", str(path)]) == 2
    err = capsys.readouterr()
    line = (err.out + err.err).strip().splitlines()[-1]
    assert f"{path}: ps_cpu.model: expected a CPU core dse has kernel cycle counts" in line
    assert "'Cortex-R5F'" in line


def test_every_shipped_board_and_host_has_a_core():
    for p in sorted((ROOT / "boards").glob("*.yaml")):
        assert find_core(load_board(p).ps_cpu.model) is not None, p
    hosts = yaml.safe_load((ROOT / "dse" / "data" / "hosts.yaml").read_text())["hosts"]
    for entry in hosts:
        host = known_host(entry["match"])
        assert host is not None and host.core is not None, entry["name"]
    assert known_host("Raspberry Pi 5").core.key == "cortex-a76"


def test_the_a53_is_the_reference_and_other_cores_their_own():
    c = DEFAULT_CONSTANTS
    a53 = kernel_cycles(core_for("Cortex-A53"), c)
    assert a53.ternary_per_weight == c.native_ternary_cycles_per_weight == 0.625
    assert a53.dense_per_weight == c.native_dense_cycles_per_weight
    assert a53.topk_per_elem == c.native_topk_cycles_per_elem
    a9 = kernel_cycles(core_for("Cortex-A9"), c)
    assert (a9.ternary_per_weight, a9.dense_per_weight) == (0.625, 2.0)  # same issue rules
    a76 = kernel_cycles(core_for("Cortex-A76"), c)
    # I2_S with SDOT: a chain of 4 dependent SDOTs of 3 cycles per 64 weights
    assert a76.ternary_per_weight == pytest.approx(12 / 64)
    assert a76.dense_per_weight == pytest.approx(1 / 8)          # FP16 FMLA, two load pipes
    assert a76.norm_per_elem == pytest.approx(c.native_norm_cycles_per_elem * 0.25)
    assert a76.attn_f16_per_mac == pytest.approx(
        c.native_attn_cycles_per_mac_f16 * a76.dense_per_weight / c.native_dense_cycles_per_weight)
    x86 = kernel_cycles(core_for("x86"), c)
    assert x86.ternary_per_weight == pytest.approx(5.5 / 128)
    for core in CORES:  # every core's counts come with where they are from
        assert core.sources, core.key
        kc = kernel_cycles(core, c)
        assert all(v > 0 for k, v in vars(kc).items() if k != "core"), core.key


def test_an_override_wins_on_every_core():
    """A board's cost_overrides (or a calibration) of a kernel constant is never ignored."""
    c = DEFAULT_CONSTANTS.with_overrides({"native_ternary_cycles_per_weight": 0.3,
                                          "native_topk_cycles_per_elem": 29.0})
    for key in ("Cortex-A53", "Cortex-A76", "Cortex-A55"):
        kc = kernel_cycles(core_for(key), c)
        assert kc.ternary_per_weight == 0.3 and kc.topk_per_elem == 29.0


def test_the_native_runtime_prices_the_boards_own_core():
    kv260 = CpuSpec.of_board(load_board(ROOT / "boards" / "kv260.yaml"))
    pynq = CpuSpec.of_board(load_board(ROOT / "boards" / "pynq-z2.yaml"))
    assert kv260.core.key == "cortex-a53" and kv260.in_order
    assert pynq.core.key == "cortex-a9" and not pynq.in_order
    # the same A53 at a Pi 5's clock and bandwidth vs the Pi 5's own A76: a quarter of the
    # I2_S cycles... but both are DRAM-bound on a 2B-4T layer at this bandwidth
    pi = CpuSpec.of_host(known_host("Raspberry Pi 5"))
    as_a53 = replace(pi, core=core_for("Cortex-A53"))
    n, k = 6912, 2560
    fast = native_linear(n, k, 32, True, pi, 4, DEFAULT_CONSTANTS)   # prefill: compute-bound
    slow = native_linear(n, k, 32, True, as_a53, 4, DEFAULT_CONSTANTS)
    assert slow.time_s / fast.time_s == pytest.approx(0.625 / (12 / 64), rel=0.01)
    assert "on Cortex-A76/A77/A78 (Neoverse N1)" in str(fast.basis)
    assert cycles(pi, DEFAULT_CONSTANTS).core.startswith("Cortex-A76")
