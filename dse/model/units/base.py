"""The protocol every PL unit kind besides the ternary engines answers, and the registry of kinds.

A plan holds the ternary engines (``dse.model.engine``) and any number of *units*: each unit is
N instances of one build of one kind (the attention unit kv_attn, the FFN glue, ...). Like
FINN's ``HWCustomOp`` estimate methods, every kind answers the same questions, so the
projection, the search, the report and the Vivado flow treat all kinds alike:

- ``takes(op)``: which of the forward's operators it takes off the PS;
- ``needs``: which Linears must run on the engines for it to work (it sits behind them);
- ``parts(env)``: its work per forward (PL time the PS waits for, the PS work around its calls,
  credits), as ``OpProjection`` parts priced for the scenario;
- ``resources(c)``: the fabric of all its instances;
- ``violations(env)``: why it cannot run the scenario (empty when it can);
- ``make_args()``: its part of the ``make`` line that builds it (its build parameters);
- power: its parts' ``Work`` carry PL busy seconds and its resources the leakage, which
  ``dse.model.energy`` prices like every other device's.

A *kind* (``UnitKind``) adds what the edges need: how its plan-file entry and its engine-template
section read, and which builds of it the search may add on a board (``candidates``). A new
kind is one module that defines the unit and calls ``register``; the projection, the search
and the report find it here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from dse.errors import DseError
from dse.model.board import Board
from dse.model.constants import CostConstants
from dse.model.msg import Msg
from dse.model.split import instance_split, port_of_instance  # noqa: F401  (re-exported)

if TYPE_CHECKING:
    from dse.model.cpu import CpuSpec
    from dse.model.engine import Resources
    from dse.model.parts import OpProjection
    from dse.model.scenario import Scenario
    from dse.model.workload import Workload


@dataclass(frozen=True)
class UnitEnv:
    """What pricing a unit needs: the workload, what it reads of the engines' design (the PL
    clock it runs at and the engines whose HP ports it shares: nothing else, so the search
    prices a unit once per clock and engine count), the board and constants in force, the
    scenario, and the PS runtime with the CPU and threads it runs on."""

    wl: Workload
    clock_mhz: float
    engines: int
    board: Board
    constants: CostConstants
    scenario: Scenario
    runtime: str
    cpu: CpuSpec
    threads: int

    @property
    def clock_hz(self) -> float:
        return self.clock_mhz * 1e6

    @property
    def tokens(self) -> int:
        """Tokens one forward carries (all sequences)."""
        return self.scenario.m * self.scenario.sequences


@runtime_checkable
class PLUnit(Protocol):
    """N instances of one build of a PL unit kind (see the module docstring)."""

    kind: ClassVar[str]
    #: Roles of the Linears that must run on the engines.
    needs: ClassVar[frozenset[str]]
    count: int
    #: True when the engine template says the overlay builds it; ``build_note`` then holds its
    #: ``make`` arguments, else the rule it breaks (a what-if).
    buildable: bool
    build_note: str

    @property
    def label(self) -> str: ...

    def takes(self, role: str, kind: str) -> bool: ...

    def parts(self, env: UnitEnv) -> tuple[OpProjection, ...]: ...

    def resources(self, c: CostConstants) -> Resources: ...

    def violations(self, env: UnitEnv) -> list[Msg]: ...

    def make_args(self) -> str: ...


@dataclass(frozen=True)
class UnitKind:
    """A unit kind as the edges see it.

    ``name`` is its key in plan files, the engine template and JSON. ``template_section``
    parses its engine-template section (None: the overlay has no such unit, every build is a
    what-if). ``from_mapping`` reads a plan file's entry given the template section (or None).
    ``candidates`` lists the builds the search may add for a model on a board (each marked
    buildable or not). ``to_mapping`` writes a unit back as a plan file's entry."""

    name: str
    unit: type
    from_mapping: Callable[[object, str, Any], PLUnit]
    to_mapping: Callable[[PLUnit], dict]
    candidates: Callable[..., tuple[PLUnit, ...]]
    template_section: Callable[[object, str, tuple[int, ...]], Any] | None = None


_KINDS: dict[str, UnitKind] = {}


def register(kind: UnitKind) -> UnitKind:
    """Make a unit kind known to the projection, the search, plan files and the template."""
    if not isinstance(kind.name, str) or not kind.name.isidentifier():
        raise ValueError(f"unit kind name {kind.name!r}: expected an identifier")
    if getattr(kind.unit, "kind", None) != kind.name:
        raise ValueError(f"unit kind {kind.name!r}: its unit class says kind "
                         f"{getattr(kind.unit, 'kind', None)!r}")
    _KINDS[kind.name] = kind
    return kind


def kinds() -> tuple[UnitKind, ...]:
    """Every registered kind, in registration order."""
    return tuple(_KINDS.values())


def kind_of(name: str) -> UnitKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise DseError(f"unit kind {name!r}: expected one of {', '.join(_KINDS)}") from None


#: What a unit kind's ``make`` arguments may hold (checked, since they reach a shell line).
MAKE_ARG_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789=. ")


def check_make_args(unit: PLUnit) -> str:
    """A unit's make arguments, refused if they could break the printed command line."""
    args = unit.make_args()
    if not set(args) <= MAKE_ARG_CHARS:
        raise ValueError(f"unit {unit.kind}: make arguments {args!r} hold characters other "
                         f"than upper-case names, digits, '=', '.' and spaces")
    return args
