"""A toy PL unit kind, written the way a new kind is: one module and one engine-template entry.

It takes every decoder layer's input RMSNorm (``input_layernorm``) off the PS at
``cycles_per_elem`` cycles a call (a toy: real norms cost per element), costs a few LUTs and
has a ``make`` argument. ``tests/test_units.py`` loads
it with a template that has a ``toy:`` section and checks that the search finds it, the
projection prices it, the report shows it and the plan's ``make`` line builds it, without any
change to the projection, the search or the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from dse.errors import located
from dse.model.energy import Work
from dse.model.engine import Resources
from dse.model.msg import msg
from dse.model.parts import OpProjection
from dse.model.units.base import UnitKind, register


@dataclass(frozen=True)
class ToySection:
    cycles_per_elem: int


@dataclass(frozen=True)
class ToyUnit:
    cycles_per_elem: int = 2
    count: int = 1
    buildable: bool = False
    build_note: str = "what-if: no toy section"

    kind: ClassVar[str] = "toy"
    needs: ClassVar[frozenset[str]] = frozenset()

    @property
    def label(self) -> str:
        return f"toy norm {self.cycles_per_elem}c"

    def takes(self, role: str, kind: str) -> bool:
        return role == "input_layernorm"

    def make_args(self) -> str:
        return f"TOY=1 TOY_CPE={self.cycles_per_elem}"

    def violations(self, env):
        return []

    def resources(self, c) -> Resources:
        return Resources(lut=120.0, ff=200.0)

    def parts(self, env) -> tuple[OpProjection, ...]:
        calls = env.wl.config.layers * env.tokens
        t = calls * self.cycles_per_elem / env.clock_hz
        return (OpProjection("toy_norm", "toy", env.wl.config.layers, "pl", t * 1e3, "pl",
                             msg("basis.toy", "toy unit: {cpe} cycles a call",
                                 cpe=self.cycles_per_elem), "norms_quant_rope_residual",
                             Work(t, t, 0.0, t)),)


def _section(data, path, dma_widths) -> ToySection:
    if not isinstance(data, dict) or set(data) != {"cycles_per_elem"}:
        raise located(path, "toy", "a mapping {cycles_per_elem}", data)
    return ToySection(int(data["cycles_per_elem"]))


def _from_mapping(data, path, section) -> ToyUnit:
    cpe = data.get("cycles_per_elem", section.cycles_per_elem if section else 2)
    ok = section is not None and cpe == section.cycles_per_elem
    unit = ToyUnit(cpe)
    return ToyUnit(cpe, 1, ok, unit.make_args() if ok else "what-if: not the template's toy")


def _candidates(section, board, cfg) -> tuple[ToyUnit, ...]:
    if section is None:
        return ()
    unit = ToyUnit(section.cycles_per_elem)
    return (ToyUnit(section.cycles_per_elem, 1, True, unit.make_args()),)


KIND = register(UnitKind("toy", ToyUnit, _from_mapping,
                         lambda u: {"cycles_per_elem": u.cycles_per_elem}, _candidates, _section))
