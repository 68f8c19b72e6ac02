"""Board descriptions: the FPGA part, its memory, its CPU and the link between them.

Boards are data (``boards/*.yaml``), never Python: the schema below validates a file and
turns it into a frozen ``Board``. Every field carries its unit in its name. Validation
errors are one line naming the file, the dotted field path and what was expected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from dse.errors import DseError, located
from dse.io import load_yaml
from dse.schema import STRICT, FiniteFloat, Fraction, NonNegFloat, NonNegInt, PosFloat, PosInt
from dse.schema import validate as validate_schema


class _Strict(BaseModel):
    model_config = STRICT


class PLResources(_Strict):
    """Programmable-logic resources of the part (whole device, before utilization caps)."""

    lut: PosInt
    ff: PosInt
    dsp: PosInt
    bram36: PosInt
    uram: NonNegInt


class PLClock(_Strict):
    """Clock of the engine: typical for a streaming design, and the most the part closes at."""

    typical_mhz: PosFloat
    max_mhz: PosFloat


class DDR(_Strict):
    """The DDR that the PL reads weights from (on Zynq, the PS DDR through HP ports)."""

    type: str
    capacity_bytes: PosInt
    bus_width_bits: PosInt
    transfer_rate_mts: PosFloat
    peak_bandwidth_gb_s: PosFloat
    pl_efficiency: Fraction


class PSCPU(_Strict):
    """The processing system's CPU: the on-board baseline runs here."""

    model: str
    cores: PosInt
    clock_mhz: PosFloat
    peak_fp32_gflops: PosFloat
    memory_bandwidth_gb_s: PosFloat


class Link(_Strict):
    """PS<->PL link: AXI HP ports used for DMA and the fixed cost of one accelerator call."""

    hp_ports: PosInt
    port_width_bits: PosInt
    per_call_overhead_us: NonNegFloat


class Power(_Strict):
    """The board's power model: what it draws idle and what each unit of work adds.

    ``idle_w`` is the whole board with Linux up and the PS idle (PL configured, not
    toggling); the rest are increments: a busy CPU core, a byte moved to or from DDR, PL
    resources at rest (URAM and BRAM leak whether used or not) and PL logic toggling at
    the engine's clock.
    """

    idle_w: PosFloat
    ps_core_active_w: NonNegFloat
    ddr_pj_per_byte: NonNegFloat
    pl_static_w_per_uram: NonNegFloat = 0.0
    pl_static_w_per_bram36: NonNegFloat = 0.0
    pl_dynamic_w_per_klut_100mhz: NonNegFloat = 0.0
    pl_dynamic_w_per_dsp_100mhz: NonNegFloat = 0.0


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
    if board.clock.max_mhz < board.clock.typical_mhz:
        raise located(path, "clock.max_mhz", f">= clock.typical_mhz ({board.clock.typical_mhz})",
                      board.clock.max_mhz)
    from dse.model.constants import DEFAULT_CONSTANTS
    from dse.model.cores import core_for

    core_for(board.ps_cpu.model, f"{path}: ps_cpu.model")

    try:
        DEFAULT_CONSTANTS.with_overrides(board.cost_overrides)
    except DseError as exc:
        raise DseError(f"{path}: {exc}") from None
    return board.model_copy(update={"path": str(path)})


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
