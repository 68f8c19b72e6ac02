"""The FFN glue unit: the element-wise work between gate/up and down, fused behind the engines.

Squared ReLU (or SiLU), the gate product, the sub-norm's scaling and down_proj's input
re-quantization run in the PL (``passes`` over the intermediate vector per layer, a reduction
then the scaling, ``cycles_per_elem`` each at the engines' clock), fed by the gate/up results
and feeding down_proj. A fixed-point unit needs the PS to choose its shifts first: the shift
scan (``dse.model.cpu.shift_scan``), which invalidates and reads the gate/up results itself,
so their calls' hand-off does not read them out again (a credit); and the float scale of the
FFN's output (``dse.model.cpu.ffn_scale``), which the published runtime computes on a side
thread while the glue's passes run when a forward carries one vector (so only what outlasts
the passes shows), and for each vector before its passes when a forward carries several (a
round of sequences or a prompt group: runtime/bitnet_kria.c forward_slots, ``side_post
(side_ffn)`` at nb == 1, ``ffn_scale(sj)`` inline otherwise). The published bitnet-kv260
design has one; the shipped overlay does not build one, so every glue unit is a what-if.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from dse.errors import located
from dse.model.constants import CostConstants
from dse.model.cpu import cycles, ffn_scale, shift_scan
from dse.model.energy import Work
from dse.model.engine import Resources
from dse.model.fabric import infrastructure
from dse.model.msg import Msg, msg
from dse.model.parts import OpProjection
from dse.model.units.base import UnitEnv, UnitKind, register

#: What a glue unit takes off the PS: the element-wise work between gate/up and down.
GLUE_OPS = ("act_fn", "gate_mul", "ffn_sub_norm", "quant_down")
#: The calls whose results the glue's shift scan reads out (``dse.model.cpu.shift_scan``).
SCANNED_ROLES = frozenset({"gate_proj", "up_proj"})
WHAT_IF = "what-if: FFN glue unit: the overlay has none"


@dataclass(frozen=True)
class GlueUnit:
    """A PL unit fused behind the engines for the FFN's element-wise work: ``passes`` over the
    intermediate vector per layer, ``cycles_per_elem`` each, at the engines' clock."""

    passes: int = 2
    cycles_per_elem: float = 1.0
    count: int = 1
    buildable: bool = False
    build_note: str = WHAT_IF

    kind: ClassVar[str] = "glue"
    needs: ClassVar[frozenset[str]] = frozenset({"gate_proj", "up_proj", "down_proj"})

    @property
    def label(self) -> str:
        return f"glue {self.passes}x{self.cycles_per_elem:g}"

    def takes(self, role: str, kind: str) -> bool:
        return role in GLUE_OPS

    def make_args(self) -> str:
        return ""

    def violations(self, env: UnitEnv) -> list[Msg]:
        roles = {layer.role for layer in env.wl.layers}
        if not self.needs <= roles:
            return [msg("infeasible.glue_model", "the FFN glue unit sits between gate/up and "
                        "down; the model has no gated FFN")]
        return []

    def resources(self, c: CostConstants) -> Resources:
        """The published design's glue unit and its attachment (its own DMA, SmartConnect,
        GPIOs and register slices) from that design's Vivado rows when fabric evidence is in
        force; else the estimate of ``dse.model.constants``."""
        if c.fabric is not None:
            lut, ff, bram, _ = infrastructure(c.fabric, "overlay", 0, glue=1)
            return Resources(lut=lut * self.count, ff=ff * self.count, bram36=bram * self.count)
        return Resources(lut=c.glue_lut, ff=c.glue_ff, bram36=c.glue_bram36)

    def parts(self, env: UnitEnv) -> tuple[OpProjection, ...]:
        layers = env.wl.config.layers
        gw = glue_work(self, env.wl, env.tokens, env.clock_mhz)
        sw = scan_work(env.wl, env.tokens, env.cpu, env.threads, env.constants)
        out = [OpProjection("ffn_glue", "glue", layers, "pl", gw.time_s * 1e3, "pl",
                            msg("basis.glue", "PL glue unit: {passes} passes x {cpe:g} "
                                "cycles/element at {mhz:g} MHz", passes=self.passes,
                                cpe=self.cycles_per_elem, mhz=env.clock_mhz),
                            "elementwise", gw, "ffn_glue"),
               OpProjection("shift_scan", "shift_scan", layers, "ps", sw.time_s * 1e3,
                            "compute", msg("basis.shift_scan_op", "the PS chooses the glue "
                                           "unit's fixed-point shifts: {cycles:g} "
                                           "cycles/element",
                                           cycles=round(cycles(env.cpu, env.constants)
                                                        .shift_scan_per_elem, 4)),
                            "elementwise", sw, "shift_scan")]
        scale = scale_work(env.wl, env.tokens, env.cpu, env.constants)
        # one vector a forward: the scale runs beside the glue's passes (only its excess
        # shows); several: each vector's before its passes
        shown = scale.time_s if env.tokens > 1 else max(0.0, scale.time_s - gw.time_s)
        out.append(OpProjection(
            "ffn_scale", "ffn_scale", layers, "ps", shown * 1e3, "compute",
            msg("basis.ffn_scale_op", "the PS computes the FFN output's scale: {cycles:g} "
                "cycles/element on 1 thread, {how}", cycles=round(
                    cycles(env.cpu, env.constants).ffn_scale_per_elem, 4),
                how=(msg("basis.ffn_scale_beside", "overlapped with the glue's passes (one "
                         "vector a forward)") if env.tokens == 1 else
                     msg("basis.ffn_scale_before", "before each vector's glue passes"))),
            "elementwise", Work(shown, shown, scale.ddr_bytes), "ffn_scale"))
        # the calls' hand-off is the engines' account: the credit is theirs
        moved = scan_readout_work(env.wl, env.tokens, env.constants)
        if moved.time_s:
            out.append(OpProjection(
                "scan_readout", "credit", layers, "engines", -moved.time_s * 1e3, "overhead",
                msg("basis.scan_readout", "the shift scan invalidates and reads the gate/up "
                    "results itself: their calls' hand-off does not read them out again"),
                "handoff", Work(-moved.time_s, -moved.core_s), "sums_readout"))
        return tuple(out)


def glue_work(glue: GlueUnit, wl, m_tokens: int, clock_mhz: float) -> Work:
    """The glue unit's time (the PS waits on it), PL busy time and DDR traffic per forward:
    it reads the gate and up int32 results and writes down_proj's int8 input."""
    cfg = wl.config
    elems = cfg.layers * m_tokens * cfg.intermediate
    t = glue.passes * elems * glue.cycles_per_elem / (clock_mhz * 1e6)
    return Work(t, t, float(elems * (2 * 4 + 1)), t)


def scan_work(wl, m_tokens: int, cpu, threads: int, c: CostConstants) -> Work:
    """What a fixed-point glue unit needs from the PS per forward: the shift scan
    (``dse.model.cpu.shift_scan``), busy and waited for."""
    oc = shift_scan(wl.config.intermediate, wl.config.layers, m_tokens, cpu, threads, c)
    return Work(oc.time_s, oc.time_s * oc.cores, oc.ddr_bytes)


def scale_work(wl, m_tokens: int, cpu, c: CostConstants) -> Work:
    """The FFN output's scale on the PS per forward (``dse.model.cpu.ffn_scale``), whole:
    the glue unit's ``parts`` say how much of it the forward waits for."""
    oc = ffn_scale(wl.config.intermediate, wl.config.layers, m_tokens, cpu, c)
    return Work(oc.time_s, oc.time_s * oc.cores, oc.ddr_bytes)


def scan_readout_work(wl, m_tokens: int, c: CostConstants) -> Work:
    """The gate/up results' cache invalidation for ``m_tokens`` tokens, which a glue unit's
    shift scan does itself (``dse.model.cpu.shift_scan``): taken out of those calls' hand-off,
    so a plan with a glue unit pays it once. A PS core does it: busy and waited for."""
    n = sum(layer.n for layer in wl.layers if layer.role in SCANNED_ROLES)
    t = m_tokens * n * 4 / c.cache_maint_bytes_per_s
    return Work(t, t)


# -- the edges --------------------------------------------------------------------------------

#: Sanity limits of a glue unit (a plan's, a measurement log's), far beyond the published one
#: (2 passes at about 4 clocks an element): 10**12 clocks an element priced a 1.7e12 ms token
#: whose band said every part was measured, 1e-12 a free one.
MAX_PASSES = 64
MIN_CYCLES_PER_ELEM = 0.001
MAX_CYCLES_PER_ELEM = 1024.0


def from_mapping(data: object, path: str, section: object = None) -> GlueUnit:
    """A plan file's ``glue:`` entry: {passes, cycles_per_elem}."""
    if not isinstance(data, dict):
        raise located(path, "glue", "a mapping {passes, cycles_per_elem} or null",
                      type(data).__name__)
    unknown = sorted(str(k) for k in data if k not in ("passes", "cycles_per_elem"))
    if unknown:
        raise located(path, f"glue.{unknown[0]}", "one of passes, cycles_per_elem")
    passes = data.get("passes", 2)
    if isinstance(passes, bool) or not isinstance(passes, int) or not 1 <= passes <= MAX_PASSES:
        raise located(path, "glue.passes", f"an integer from 1 to {MAX_PASSES} (passes over "
                      f"a layer's FFN vector)", passes)
    cpe = data.get("cycles_per_elem", 1.0)
    if isinstance(cpe, bool) or not isinstance(cpe, (int, float)) or not (
            math.isfinite(cpe) and MIN_CYCLES_PER_ELEM <= cpe <= MAX_CYCLES_PER_ELEM):
        raise located(path, "glue.cycles_per_elem", f"a number from {MIN_CYCLES_PER_ELEM:g} "
                      f"to {MAX_CYCLES_PER_ELEM:g} (PL clocks an element)", cpe)
    return GlueUnit(passes, float(cpe))


def to_mapping(unit: GlueUnit) -> dict:
    return {"passes": unit.passes, "cycles_per_elem": unit.cycles_per_elem}


def candidates(section: object, board, cfg) -> tuple[GlueUnit, ...]:
    """The glue the search may add: the published design's (2 passes, 1 cycle an element at
    the PL clock), always a what-if (the overlay has no glue unit)."""
    return (GlueUnit(),)


KIND = register(UnitKind("glue", GlueUnit, from_mapping, to_mapping, candidates))
