"""Board descriptions: the FPGA part, its memory, its CPU and the link between them.

Boards are data (``boards/*.yaml``), never Python: the schema below validates a file and
turns it into a frozen ``Board``. Every field carries its unit in its name. Validation
errors are one line naming the file, the dotted field path and what was expected.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from dse.errors import DseError, located
from dse.io import load_yaml
from dse.schema import (
    DDR_PEAK_TOLERANCE,
    MAX_FLOPS_PER_CYCLE,
    STRICT,
    FiniteFloat,
    Fraction,
    quantity,
)
from dse.schema import validate as validate_schema

PLClockMHz = quantity("pl_clock_mhz")
Resource = quantity("pl_resource")
#: Characters a name shown in reports may not hold: it goes into Markdown tables (``|``),
#: code spans (`` ` ``), HTML comments (``<!-- -->``) and headings (a line break).
_UNSAFE_LABEL = re.compile(r"[<>|`\x00-\x1f\x7f]")


class _Strict(BaseModel):
    model_config = STRICT


class PLResources(_Strict):
    """Programmable-logic resources of the part (whole device, before utilization caps)."""

    lut: Resource
    ff: Resource
    dsp: Resource
    bram36: Resource
    uram: quantity("pl_resource_or_none")


class PLClock(_Strict):
    """Clock of the engine: typical for a streaming design, and the most the part closes at."""

    typical_mhz: PLClockMHz
    max_mhz: PLClockMHz


class DDR(_Strict):
    """The DDR that the PL reads weights from (on Zynq, the PS DDR through HP ports)."""

    type: str
    capacity_bytes: quantity("memory_bytes")
    bus_width_bits: quantity("bus_width_bits")
    transfer_rate_mts: quantity("ddr_transfer_rate_mts")
    peak_bandwidth_gb_s: quantity("bandwidth_gb_s")
    pl_efficiency: Fraction


class PSCPU(_Strict):
    """The processing system's CPU: the on-board baseline runs here."""

    model: str
    cores: quantity("cores")
    clock_mhz: quantity("cpu_clock_mhz")
    peak_fp32_gflops: quantity("gflops")
    memory_bandwidth_gb_s: quantity("bandwidth_gb_s")


class Link(_Strict):
    """PS<->PL link: AXI HP ports used for DMA and the fixed cost of one accelerator call."""

    hp_ports: quantity("hp_ports")
    port_width_bits: quantity("port_width_bits")
    per_call_overhead_us: quantity("overhead_us")


class Power(_Strict):
    """The board's power model: what it draws idle and what each unit of work adds.

    ``idle_w`` is the whole board with Linux up and the PS idle (PL configured, not
    toggling); the rest are increments: a busy CPU core, a byte moved to or from DDR, PL
    resources at rest (URAM and BRAM leak whether used or not) and PL logic toggling at
    the engine's clock.
    """

    idle_w: quantity("board_watts")
    ps_core_active_w: quantity("watts")
    ddr_pj_per_byte: quantity("pj_per_byte")
    pl_static_w_per_uram: quantity("watts_per_unit") = 0.0
    pl_static_w_per_bram36: quantity("watts_per_unit") = 0.0
    pl_dynamic_w_per_klut_100mhz: quantity("watts_per_unit") = 0.0
    pl_dynamic_w_per_dsp_100mhz: quantity("watts_per_unit") = 0.0


class Caps(_Strict):
    """Utilization caps for timing closure (FINN's DEFAULT_RES_LIMITS by default)."""

    lut: Fraction = 0.7
    ff: Fraction = 0.5
    bram36: Fraction = 0.8
    uram: Fraction = 0.8
    dsp: Fraction = 0.8


class Source(_Strict):
    """Where a figure came from: the fields it backs and a citation."""

    fields: list[str] = Field(min_length=1)
    source: str = Field(min_length=3)


class Board(_Strict):
    """One board. ``cost_overrides`` replaces named cost-model constants for this board."""

    name: str = Field(min_length=1)
    part: str = Field(min_length=1)
    family: Literal["zynq7000", "zynqmp", "rfsoc"]
    pl: PLResources
    clock: PLClock
    ddr: DDR
    ps_cpu: PSCPU
    link: Link
    caps: Caps = Caps()
    power: Power | None = None
    cost_overrides: dict[str, FiniteFloat] = Field(default_factory=dict)
    sources: list[Source] = Field(min_length=1)
    notes: str = ""
    #: A calibration file the user chose for this board (relative to the board file); applied
    #: by explore/project unless --calibration says otherwise. dse never writes this field.
    calibration: str | None = None
    path: str = Field(default="", exclude=True)

    @property
    def ddr_bytes_per_s(self) -> float:
        """Sustained DDR bandwidth available to the PL (peak x efficiency)."""
        return self.ddr.peak_bandwidth_gb_s * 1e9 * self.ddr.pl_efficiency

    @property
    def stem(self) -> str:
        """Short identifier used for file names and report sections."""
        return Path(self.path).stem if self.path else self.name.lower().replace(" ", "-")


def board_from_mapping(data: object, path: str | Path = "<board>") -> Board:
    """Validate a parsed YAML mapping as a Board, raising a one-line DseError on the first fault."""
    if not isinstance(data, dict):
        kinds = {list: "a list", str: "a string", int: "a number", float: "a number",
                 bool: "a boolean"}
        got = "an empty document" if data is None else kinds.get(type(data), type(data).__name__)
        raise DseError(f"{path}: expected a YAML mapping of board fields, got {got}")
    board = validate_schema(Board, data, path)
    _check_consistent(board, path)
    from dse.model.constants import DEFAULT_CONSTANTS
    from dse.model.cores import core_for

    core_for(board.ps_cpu.model, f"{path}: ps_cpu.model")

    try:
        DEFAULT_CONSTANTS.with_overrides(board.cost_overrides)
    except DseError as exc:
        raise DseError(f"{path}: {exc}") from None
    return board.model_copy(update={"path": str(path)})


def _check_consistent(board: Board, path: object) -> None:
    """What no single field says: names safe to show in a report, a clock range in order, a
    DDR peak that is its bus width times its transfer rate, a PS that reads no faster than
    its DDR and computes no faster than its cores can."""
    for field, value in (("name", board.name), ("part", board.part), ("ddr.type", board.ddr.type),
                         ("ps_cpu.model", board.ps_cpu.model)):
        if _UNSAFE_LABEL.search(value) or value != value.strip():
            raise located(path, field, "one line of text without <, >, |, ` or control "
                          "characters and without leading or trailing spaces (it is shown in "
                          "report tables and comments)", value)
    if board.clock.max_mhz < board.clock.typical_mhz:
        raise located(path, "clock.max_mhz", f">= clock.typical_mhz ({board.clock.typical_mhz})",
                      board.clock.max_mhz)
    ddr = board.ddr
    peak = ddr.bus_width_bits / 8 * ddr.transfer_rate_mts / 1e3
    if abs(ddr.peak_bandwidth_gb_s / peak - 1) > DDR_PEAK_TOLERANCE:
        raise located(path, "ddr.peak_bandwidth_gb_s", f"bus_width_bits / 8 x transfer_rate_mts "
                      f"= {peak:.4g} GB/s (within {DDR_PEAK_TOLERANCE:.0%})",
                      ddr.peak_bandwidth_gb_s)
    cpu = board.ps_cpu
    if cpu.memory_bandwidth_gb_s > ddr.peak_bandwidth_gb_s * (1 + DDR_PEAK_TOLERANCE):
        raise located(path, "ps_cpu.memory_bandwidth_gb_s", f"at most the DDR's peak "
                      f"({ddr.peak_bandwidth_gb_s:g} GB/s)", cpu.memory_bandwidth_gb_s)
    most = cpu.cores * cpu.clock_mhz * 1e-3 * MAX_FLOPS_PER_CYCLE
    if cpu.peak_fp32_gflops > most:
        raise located(path, "ps_cpu.peak_fp32_gflops", f"at most cores x clock x "
                      f"{MAX_FLOPS_PER_CYCLE} FLOP/cycle ({most:.4g} GFLOP/s)",
                      cpu.peak_fp32_gflops)


def load_board(path: str | Path) -> Board:
    """Read and validate one board YAML (safe loader only)."""
    p = Path(path)
    return board_from_mapping(load_yaml(p, "board"), p)


def boards_dir() -> Path:
    """The shipped board library: ``boards/`` in a checkout, or the copy inside the package."""
    repo = Path(__file__).resolve().parents[2] / "boards"
    if repo.is_dir():
        return repo
    return Path(__file__).resolve().parents[1] / "data" / "boards"


def resolve_board(name_or_path: str) -> Board:
    """Accept a path (``boards/zcu104.yaml``) or a bare name (``zcu104``)."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return load_board(p)
    candidate = boards_dir() / f"{name_or_path.lower()}.yaml"
    if candidate.exists():
        return load_board(candidate)
    known = ", ".join(sorted(f.stem for f in boards_dir().glob("*.yaml")))
    raise DseError(f"{name_or_path}: no such board file or board name (known: {known})")
