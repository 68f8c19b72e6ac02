"""Board descriptions: the FPGA part, its memory, its CPU and the link between them.

Boards are data (``boards/*.yaml``), never Python: the schema below validates a file and
turns it into a frozen ``Board``. Every field carries its unit in its name. Validation
errors are one line naming the file, the dotted field path and what was expected.
"""

from __future__ import annotations

import difflib
import typing
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dse.errors import DseError, located
from dse.io import read_text

PosInt = Annotated[int, Field(gt=0, strict=True)]
NonNegInt = Annotated[int, Field(ge=0, strict=True)]
# strict: a YAML ``true`` must not pass as 1.0 (ints are still accepted as floats).
PosFloat = Annotated[float, Field(gt=0, strict=True)]
NonNegFloat = Annotated[float, Field(ge=0, strict=True)]
Fraction = Annotated[float, Field(gt=0, le=1, strict=True)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    cost_overrides: dict[str, float] = Field(default_factory=dict)
    sources: list[Source] = Field(min_length=1)
    notes: str = ""
    path: str = Field(default="", exclude=True)

    @property
    def ddr_bytes_per_s(self) -> float:
        """Sustained DDR bandwidth available to the PL (peak x efficiency)."""
        return self.ddr.peak_bandwidth_gb_s * 1e9 * self.ddr.pl_efficiency

    @property
    def stem(self) -> str:
        """Short identifier used for file names and report sections."""
        return Path(self.path).stem if self.path else self.name.lower().replace(" ", "-")


_EXPECTED = {
    "greater_than": "a value > {gt}",
    "greater_than_equal": "a value >= {ge}",
    "less_than_equal": "a value <= {le}",
}


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The schema model that holds the mapping at ``loc`` (list indices skipped), if any."""
    model: type[BaseModel] = Board
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        ann = field.annotation
        if typing.get_origin(ann) is list and typing.get_args(ann):
            ann = typing.get_args(ann)[0]
        elif typing.get_args(ann):  # Optional[Model]: the model
            ann = next((a for a in typing.get_args(ann) if isinstance(a, type)
                        and issubclass(a, BaseModel)), ann)
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return None
        model = ann
    return model


def _unknown_key(loc: tuple) -> str:
    """'one of a, b, c (unknown key; did you mean 'b'?)' for an extra key at ``loc``."""
    model = _model_at(loc[:-1])
    if model is None:
        return "no such field (unknown key)"
    allowed = [k for k, f in model.model_fields.items() if not f.exclude]
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"one of {', '.join(allowed)} (unknown key{hint})"


def _describe(err: dict) -> str:
    """Turn one pydantic error into 'expected ...' text a person can act on."""
    kind = err["type"]
    ctx = err.get("ctx", {})
    if kind == "missing":
        return "a value (field is missing)"
    if kind == "extra_forbidden":
        return _unknown_key(tuple(err["loc"]))
    if kind == "string_too_short":
        n = ctx.get("min_length", 1)
        return "a non-empty string" if n == 1 else f"a string of at least {n} characters"
    if kind in _EXPECTED:
        return _EXPECTED[kind].format(**ctx)
    if kind.startswith("int"):
        return "an integer"
    if kind.startswith("float"):
        return "a number"
    if kind.startswith("string"):
        return "a string" if kind == "string_type" else err["msg"].lower()
    if kind == "literal_error":
        return f"one of {ctx.get('expected')}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "a mapping"
    if kind in ("list_type", "too_short"):
        return "a non-empty list" if kind == "too_short" else "a list"
    return err["msg"].lower()


def board_from_mapping(data: object, path: str | Path = "<board>") -> Board:
    """Validate a parsed YAML mapping as a Board, raising a one-line DseError on the first fault."""
    if not isinstance(data, dict):
        kinds = {list: "a list", str: "a string", int: "a number", float: "a number",
                 bool: "a boolean"}
        got = "an empty document" if data is None else kinds.get(type(data), type(data).__name__)
        raise DseError(f"{path}: expected a YAML mapping of board fields, got {got}")
    try:
        board = Board.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        got = err.get("input") if err["type"] not in ("missing", "extra_forbidden") else None
        if isinstance(got, dict):
            got = None
        raise located(path, field, _describe(err), got) from None
    if board.clock.max_mhz < board.clock.typical_mhz:
        raise located(path, "clock.max_mhz", f">= clock.typical_mhz ({board.clock.typical_mhz})",
                      board.clock.max_mhz)
    return board.model_copy(update={"path": str(path)})


def load_board(path: str | Path) -> Board:
    """Read and validate one board YAML (safe loader only)."""
    p = Path(path)
    text = read_text(p, "board")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "document"
        problem = getattr(exc, "problem", exc)
        raise DseError(f"{p}: {where}: expected valid YAML ({problem})") from None
    return board_from_mapping(data, p)


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
