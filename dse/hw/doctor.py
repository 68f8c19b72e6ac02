"""The board doctor: before an on-board calibration, is the board set up to measure the plan?

A calibration fits the model to what the board measured; measured on the wrong setup, it
fits the wrong thing and says nothing about it. So before ``dse calibrate --backend pynq``
runs a single layer, the doctor checks, and refuses in one line on a mismatch:

- **the PL clock**, read back from the PS's clock registers (``pynq.Clocks``, as the driver
  opened the overlay), against the clock the bitstream was built for (its ``.hwh``) and the
  plan's ``clock_mhz``: a fabric clocked at 100 MHz under a 250 MHz plan would calibrate a
  four-times slower engine as if it were the planned one;
- **the bitstream's .hwh** (the hardware handoff Vivado writes beside the .bit): its
  ``ternary_gemv`` instances and their PE, SIMD, PACKING, VMAX, KMAX against the engine
  registers the loaded IP reports (a stale .hwh beside another .bit) and against the plan's
  engine count and parameters, and its ``kv_attn`` unit (G, D, HMAX, TMAX) against the plan's
  attention unit;

and reports, without refusing, what makes timings noisy: **the CPU frequency governor** (a
governor other than ``performance`` moves the A53s' clock under the measurement) and **other
busy processes** (CPU time taken from the PS-side work a call includes).

``examine`` takes what it checks as arguments (the opened driver, the .hwh path, the plan's
engine and attention unit, where /sys and /proc are), so it runs the same against the emulated
device (``dse.hw.emulated``) in tests and against a board.
"""

from __future__ import annotations

import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dse.errors import DseError

#: How far the PL clock may be from the one asked for (the PS's PLL dividers give 249.99 for
#: 250; more than 1% off is another clock).
CLOCK_TOLERANCE = 0.01
#: The VLNVs the Vivado flow packages our IPs under (``dse.hw.pynq_driver``).
ENGINE_VLNV = "dse:hls:ternary_gemv:1.0"
ATTN_VLNV = "dse:hls:kv_attn:1.0"
#: The PS blocks' parameters that state PL clock 0: what was asked and, where Vivado records
#: it, what the PLL dividers actually give (zynq_ultra_ps_e, processing_system7).
PL0_CLOCK_PARAMS = ("PSU__CRL_APB__PL0_REF_CTRL__ACT_FREQMHZ",
                    "PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ",
                    "PCW_ACT_FPGA0_PERIPHERAL_FREQMHZ", "PCW_FPGA0_PERIPHERAL_FREQMHZ")
ENGINE_PARAMS = ("PE", "SIMD", "PACKING", "VMAX", "KMAX")
ATTN_PARAMS = ("G", "D", "HMAX", "TMAX")
#: A process is busy when it takes more than this share of one core while the doctor waits.
BUSY_SHARE = 0.10


@dataclass(frozen=True)
class Finding:
    """One check: what, whether it passed, what was seen. ``refuses``: a failed check stops
    the calibration (a mismatch); otherwise it is reported only (noise)."""

    check: str
    ok: bool
    detail: str
    refuses: bool = True

    def line(self) -> str:
        mark = "ok  " if self.ok else ("FAIL" if self.refuses else "warn")
        return f"  {mark} {self.check}: {self.detail}"


@dataclass(frozen=True)
class HwhBuild:
    """What a bitstream's .hwh says was built: each engine's and attention unit's
    parameters (by instance name) and PL clock 0 in MHz (None when not stated)."""

    path: str
    engines: tuple[tuple[str, dict[str, int]], ...]
    attention: tuple[tuple[str, dict[str, int]], ...]
    pl_clock_mhz: float | None


def _int(text: str | None) -> int | None:
    try:
        return int(str(text).strip(), 0)
    except (TypeError, ValueError):
        return None


def hwh_from_text(text: str, path: str = "<hwh>") -> HwhBuild:
    """Parse the .hwh XML (pure): the ``MODULE``s of our IPs and the PS's PL0 clock."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise DseError(f"{path}: expected the bitstream's hardware handoff (XML), {exc}"
                       ) from None
    engines, attention = [], []
    clock = None
    for mod in root.iter("MODULE"):
        params = {p.get("NAME"): p.get("VALUE") for p in mod.iter("PARAMETER")}
        name = (mod.get("FULLNAME") or mod.get("INSTANCE") or "?").lstrip("/")
        vlnv = mod.get("VLNV", "")
        if vlnv == ENGINE_VLNV:
            engines.append((name, _ints(params, ENGINE_PARAMS, path, name)))
        elif vlnv == ATTN_VLNV:
            attention.append((name, _ints(params, ATTN_PARAMS, path, name)))
        for key in PL0_CLOCK_PARAMS:
            if clock is None and params.get(key):
                try:
                    clock = float(params[key])
                except ValueError:
                    raise DseError(f"{path}: {name}: {key}: expected a clock in MHz, got "
                                   f"{params[key]!r}") from None
    return HwhBuild(path, tuple(sorted(engines, key=lambda e: _index(e[0]))),
                    tuple(attention), clock)


def _ints(params: dict, names: Sequence[str], path: str, module: str) -> dict[str, int]:
    out = {}
    for key in names:
        value = _int(params.get(key))
        if value is None:
            raise DseError(f"{path}: {module}: {key}: expected the IP's integer parameter, got "
                           f"{params.get(key)!r}")
        out[key] = value
    return out


def _index(name: str) -> int:
    tail = name.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def read_hwh(path: str | Path) -> HwhBuild:
    """Read and parse a .hwh file (one-line error if it is missing or not one)."""
    from dse.io import read_text

    return hwh_from_text(read_text(path, "hardware handoff (.hwh)"), str(path))


# -- the checks (pure) ---------------------------------------------------------------------

def check_clock(read_mhz: float | None, built_mhz: float | None, plan_mhz: float | None
                ) -> list[Finding]:
    """The PL clock read back against the bitstream's and the plan's."""
    if read_mhz is None:
        return [Finding("PL clock", False, "could not be read back from the PS clock "
                        "registers (pynq.Clocks.fclk0_mhz)")]
    out = []
    for what, want in (("the bitstream was built for", built_mhz), ("the plan's", plan_mhz)):
        if want is None:
            continue
        off = abs(read_mhz / want - 1)
        if off > CLOCK_TOLERANCE:
            out.append(Finding("PL clock", False, f"runs at {read_mhz:g} MHz, {what} "
                               f"{want:g} MHz ({off:.0%} off; set it with pynq.Clocks."
                               f"fclk0_mhz or rebuild)"))
    if not out:
        wanted = [f"{w:g}" for w in (built_mhz, plan_mhz) if w is not None]
        out.append(Finding("PL clock", True, f"{read_mhz:g} MHz"
                           + (f" (as built and planned: {', '.join(wanted)} MHz)"
                              if wanted else "")))
    return out


def _register_params(config: Any) -> dict[str, int]:
    from dse.hw.regs import PACKING_CODES

    return {"PE": config.pe, "SIMD": config.simd, "PACKING": PACKING_CODES[config.packing],
            "VMAX": config.vmax, "KMAX": config.kmax}


def check_build(hwh: HwhBuild, registers: Sequence[Any], design: Any = None,
                attention: Any = None) -> list[Finding]:
    """The .hwh's IPs against the loaded engines' registers and against the plan's engine
    (``EngineDesign``) and attention unit (``AttentionUnit``, None: the plan has none)."""
    from dse.hw.regs import PACKING_CODES

    out = []
    if not hwh.engines:
        return [Finding("bitstream", False, f"{hwh.path} lists no {ENGINE_VLNV} instance")]
    if len(hwh.engines) != len(registers):
        out.append(Finding("bitstream", False, f"{hwh.path} lists {len(hwh.engines)} "
                           f"engines, the loaded overlay has {len(registers)} (a .hwh of "
                           f"another build?)"))
    for (name, built), regs in zip(hwh.engines, registers, strict=False):
        have = _register_params(regs)
        diff = [f"{k} {built[k]} in the .hwh, {have[k]} in its registers" for k in built
                if built[k] != have[k]]
        if diff:
            out.append(Finding("bitstream", False, f"{name}: " + "; ".join(diff)
                               + " (a .hwh of another build beside this .bit?)"))
    if design is not None:
        want = {"PE": design.pe, "SIMD": design.simd,
                "PACKING": PACKING_CODES.get(design.packing, -1)}
        codes = {v: k for k, v in PACKING_CODES.items()}
        name, built = hwh.engines[0]
        diff = [f"{k} {codes.get(built[k], built[k]) if k == 'PACKING' else built[k]}, the "
                f"plan {design.packing if k == 'PACKING' else want[k]}"
                for k in want if built[k] != want[k]]
        if built["VMAX"] < design.vectors:
            diff.append(f"VMAX {built['VMAX']}, the plan runs {design.vectors} vectors a pass")
        if built["KMAX"] < design.max_k:
            diff.append(f"KMAX {built['KMAX']}, the plan needs K up to {design.max_k}")
        if len(hwh.engines) != design.engines:
            diff.append(f"{len(hwh.engines)} engines, the plan {design.engines}")
        if diff:
            out.append(Finding("plan's engine", False, "; ".join(diff)))
        else:
            out.append(Finding("plan's engine", True, f"{len(hwh.engines)}x {design.pe}x"
                               f"{design.simd} {design.packing}, VMAX {built['VMAX']}, "
                               f"KMAX {built['KMAX']}"))
    if attention is not None:
        count = getattr(attention, "count", 1)
        want = {"G": attention.group, "D": attention.head_dim,
                "HMAX": attention.max_kv_heads, "TMAX": attention.max_positions}
        if not hwh.attention:
            out.append(Finding("plan's units", False, f"the plan has an attention unit "
                               f"({attention.label}), {hwh.path} lists no {ATTN_VLNV}"))
        elif len(hwh.attention) != count:
            out.append(Finding("plan's units", False, f"the plan has {count} attention "
                               f"unit(s) ({attention.label}), {hwh.path} lists "
                               f"{len(hwh.attention)}"))
        else:
            diff = [f"{name}: {k} {built[k]}, the plan {want[k]}"
                    for name, built in hwh.attention for k in want if built[k] != want[k]]
            out.append(Finding("plan's units", not diff, "; ".join(diff) if diff else
                               f"{count}x kv_attn G{want['G']} D{want['D']} "
                               f"HMAX{want['HMAX']} TMAX{want['TMAX']}"))
    if not [f for f in out if not f.ok and f.check == "bitstream"]:
        out.insert(0, Finding("bitstream", True, f"{hwh.path}: {len(hwh.engines)} engine(s) "
                              f"as their registers report"
                              + (f", {len(hwh.attention)} attention unit(s)"
                                 if hwh.attention else "")))
    return out


def cpu_governors(cpu_root: str | Path = "/sys/devices/system/cpu") -> dict[str, str]:
    """Each CPU's frequency governor (empty where cpufreq is not exposed)."""
    out = {}
    for f in sorted(Path(cpu_root).glob("cpu[0-9]*/cpufreq/scaling_governor")):
        try:
            out[f.parent.parent.name] = f.read_text(encoding="ascii").strip()
        except OSError:
            continue
    return out


def check_governors(governors: dict[str, str]) -> Finding:
    if not governors:
        return Finding("CPU governor", False, "not exposed (no cpufreq): the PS clock may "
                       "still change under the measurement", refuses=False)
    other = {c: g for c, g in governors.items() if g != "performance"}
    if not other:
        return Finding("CPU governor", True, f"performance on {len(governors)} CPUs",
                       refuses=False)
    kinds = sorted(set(other.values()))
    return Finding("CPU governor", False, f"{', '.join(kinds)} on {len(other)} of "
                   f"{len(governors)} CPUs: the PS clock follows the load, so PS-side times "
                   f"vary (for steady figures: echo performance | sudo tee "
                   f"/sys/devices/system/cpu/cpu*/cpufreq/scaling_governor)", refuses=False)


def _cpu_ticks(proc_root: Path) -> dict[int, tuple[str, int]]:
    """pid -> (name, user + system clock ticks so far) of every process."""
    out = {}
    for d in proc_root.iterdir():
        if not d.name.isdigit():
            continue
        try:
            text = (d / "stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        name = text[text.find("(") + 1:text.rfind(")")]
        rest = text[text.rfind(")") + 2:].split()
        try:
            out[int(d.name)] = (name, int(rest[11]) + int(rest[12]))
        except (IndexError, ValueError):
            continue
    return out


def busy_from_samples(before: dict[int, tuple[str, int]], after: dict[int, tuple[str, int]],
                      seconds: float, ticks_per_s: float, exclude: Sequence[int] = (),
                      share: float = BUSY_SHARE) -> list[tuple[int, str, float]]:
    """(pid, name, share of one core) of processes busier than ``share`` between two samples,
    busiest first (pure)."""
    out = []
    for pid, (name, t1) in after.items():
        if pid in exclude or pid not in before:
            continue
        used = (t1 - before[pid][1]) / ticks_per_s / seconds
        if used > share:
            out.append((pid, name, used))
    return sorted(out, key=lambda r: -r[2])


def busy_processes(seconds: float = 0.5, proc_root: str | Path = "/proc"
                   ) -> list[tuple[int, str, float]]:
    """Processes other than this one that used more than ``BUSY_SHARE`` of a core over
    ``seconds``."""
    root = Path(proc_root)
    if not root.is_dir():
        return []
    ticks = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0
    before = _cpu_ticks(root)
    time.sleep(seconds)
    return busy_from_samples(before, _cpu_ticks(root), seconds, ticks, exclude=(os.getpid(),))


def check_busy(busy: list[tuple[int, str, float]]) -> Finding:
    if not busy:
        return Finding("busy processes", True, f"none above {BUSY_SHARE:.0%} of a core",
                       refuses=False)
    shown = ", ".join(f"{name} (pid {pid}, {used:.0%})" for pid, name, used in busy[:5])
    more = f" and {len(busy) - 5} more" if len(busy) > 5 else ""
    return Finding("busy processes", False, f"{shown}{more}: they take CPU time from the "
                   f"PS-side work the calls include", refuses=False)


# -- the whole examination -----------------------------------------------------------------

def engines_of(engine: Any) -> list[Any]:
    """The driver's engines: one, or an ``EngineGroup``'s."""
    return list(getattr(engine, "engines", [engine]))


def examine(engine: Any, hwh: str | Path, design: Any = None, attention: Any = None, *,
            cpu_root: str | Path = "/sys/devices/system/cpu", proc_root: str | Path = "/proc",
            sample_s: float = 0.5) -> list[Finding]:
    """Every check, in order: the PL clock, the bitstream against the registers and the
    plan, the governor, busy processes. ``engine`` is the opened driver (its registers and
    ``clock_mhz``, the PL clock pynq read back); ``design``/``attention``: the plan's."""
    from dse.hw.pynq_driver import OverlayError

    build = read_hwh(hwh)
    try:
        registers = [e.config for e in engines_of(engine)]
    except OverlayError as exc:
        raise DseError(f"overlay: cannot read the engine registers ({exc})") from None
    findings = check_clock(getattr(engine, "clock_mhz", None), build.pl_clock_mhz,
                           None if design is None else design.clock_mhz)
    findings += check_build(build, registers, design, attention)
    findings.append(check_governors(cpu_governors(cpu_root)))
    findings.append(check_busy(busy_processes(sample_s, proc_root)))
    return findings


def verdict(findings: list[Finding], bitfile: str | Path) -> None:
    """Refuse the calibration in one line on the first mismatch (noise is only reported)."""
    bad = [f for f in findings if not f.ok and f.refuses]
    if bad:
        more = f" (and {len(bad) - 1} more: see above)" if len(bad) > 1 else ""
        raise DseError(f"{bitfile}: board doctor: {bad[0].check}: {bad[0].detail}{more}; "
                       f"no calibration run")
