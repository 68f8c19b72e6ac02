"""The attention unit kv_attn (overlays/rtl/kv_attn.v), N instances splitting the kv heads.

Each instance streams its share of the int8 KV cache from DDR for the scores (MODE 0) and the
x V sums (MODE 1); the softmax stays on the PS between the two calls of a layer
(``dse.model.kv_attn`` says why and holds THE cycle formula). With N instances the driver deals
the kv heads out with ``instance_split`` (as ``row_split`` deals an engine call's rows): every
instance runs its own two calls per layer at once, on the HP port of the engine it shares
(``port_of_instance``), and a call pair ends when the busiest instance does, or when the
shared ports or DDR have delivered every instance's bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import ClassVar

from dse.errors import located
from dse.model.constants import CostConstants
from dse.model.cost import handoff, launch_us
from dse.model.energy import Work
from dse.model.engine import EngineDesign, Resources
from dse.model.fabric import attention_logic, attention_memories, infrastructure
from dse.model.kv_attn import (
    KV_ATTN_BEAT_BYTES,
    MODE_SCORES,
    MODE_XV,
    kv_attn_cycles,
    kv_attn_p_beats,
)
from dse.model.msg import Msg, msg
from dse.model.parts import OpProjection
from dse.model.units.base import UnitEnv, UnitKind, instance_split, port_of_instance, register

#: The operators the unit takes off the PS: the two passes over the KV cache.
ATTENTION_OPS = ("attn_score", "attn_v")
#: How the Vivado flow attaches the unit: its own AXI DMA (simple mode) per instance ...
ATTACH_DMA = ("own",)
#: ... joined to the data SmartConnect of engine (i mod engines): in a decode step the engines
#: and the units never run at the same time, so they share the engines' HP ports.
ATTACH_PORT = ("engines",)
SECTION_KEYS = ("name", "vlnv", "register_map_version", "parameters", "defaults",
                "latency_cycles", "stream_bits", "out_depth", "max_units", "attach")


@dataclass(frozen=True)
class AttentionTemplate:
    """The attention unit the overlay can add, as the engine template's ``attention:`` section.

    ``latency_cycles`` is the ``latency`` of ``kv_attn_cycles`` (the RTL's LATENCY localparam,
    a test holds them equal). The unit's input stream is one HP-port beat of 16 int8
    (``stream_bits``; 8 uint16 in MODE 1's p block, the layout of ``register_map_version`` 2);
    its result stream is 32*G bits. Up to ``max_units`` instances, each with its own AXI DMA,
    sharing the engines' HP ports (``attach_dma``, ``attach_port``).
    """

    name: str
    vlnv: str
    register_map_version: int
    g_values: tuple[int, ...]
    d_range: tuple[int, int]
    d_step: int
    hmax_range: tuple[int, int]
    tmax_range: tuple[int, int]
    defaults: tuple[tuple[str, int], ...]      # (g, d, hmax, tmax) of the default build
    latency_cycles: int
    stream_bits: int
    out_depth: int
    max_units: int
    attach_dma: str
    attach_port: str

    @property
    def default(self) -> dict[str, int]:
        """The default build's parameters (g, d, hmax, tmax): the Vivado flow's ATTN_*."""
        return dict(self.defaults)

    def out_bits(self, g: int) -> int:
        """Result stream width: G int32 per beat."""
        return 32 * g

    def violations(self, *, g: int, d: int, hmax: int, tmax: int, count: int = 1) -> list[str]:
        """Every build rule a kv_attn configuration breaks, one sentence each (empty: ok)."""
        out = []
        if g not in self.g_values:
            out.append(f"G={g}: the q banks and the 32*G-bit result stream take G one of "
                       f"{', '.join(map(str, self.g_values))}")
        lo, hi = self.d_range
        if not lo <= d <= hi or d % self.d_step:
            out.append(f"D={d}: the unit takes D a multiple of {self.d_step} in {lo}..{hi} "
                       f"({self.d_step} int8 a beat)")
        lo, hi = self.hmax_range
        if not lo <= hmax <= hi:
            out.append(f"HMAX={hmax}: the unit holds {lo}..{hi} kv heads")
        lo, hi = self.tmax_range
        if not lo <= tmax <= hi:
            out.append(f"TMAX={tmax}: the p block holds {lo}..{hi} positions")
        if not 1 <= count <= self.max_units:
            out.append(f"ATTN={count}: the flow builds 1..{self.max_units} attention units")
        return out


@dataclass(frozen=True)
class AttentionUnit:
    """``count`` kv_attn instances of one build: G query heads per kv head, head dimension D,
    up to HMAX kv heads (each instance's share) and TMAX positions (the p block it holds), and
    its pipeline fill/drain (the template's ``latency_cycles``; no default: it is the RTL's)."""

    group: int
    head_dim: int
    max_kv_heads: int
    max_positions: int
    latency_cycles: int
    count: int = 1
    buildable: bool = False
    build_note: str = ""

    kind: ClassVar[str] = "attention"
    needs: ClassVar[frozenset[str]] = frozenset()

    @property
    def macs_per_clock(self) -> int:
        """MACs per clock of one instance (int8 x int8 scores, uint16 x int8 for x V): 16
        lanes of a 128-bit beat x the G query heads of a group."""
        return KV_ATTN_BEAT_BYTES * self.group

    @property
    def label(self) -> str:
        n = f"{self.count}x " if self.count > 1 else ""
        return f"{n}kv_attn G{self.group} D{self.head_dim} H{self.max_kv_heads} " \
               f"T{self.max_positions}"

    def takes(self, role: str, kind: str) -> bool:
        return kind in ATTENTION_OPS

    def make_args(self) -> str:
        return (f"ATTN={self.count} ATTN_G={self.group} ATTN_D={self.head_dim} "
                f"ATTN_HMAX={self.max_kv_heads} ATTN_TMAX={self.max_positions}")

    def violations(self, env: UnitEnv) -> list[Msg]:
        """Why these instances cannot run the scenario's attention (empty when they can)."""
        cfg, scenario = env.wl.config, env.scenario
        out = []
        if scenario.kv_dtype != "int8":
            out.append(msg("infeasible.attn_kv", "the attention unit reads an int8 KV cache; "
                           "the scenario's is {kv} (--kv-dtype int8)", kv=scenario.kv_dtype))
        share = max(b - a for a, b in instance_split(cfg.kv_heads, self.count))
        shape = (cfg.heads // cfg.kv_heads, cfg.head_dim)
        if shape != (self.group, self.head_dim) or share > self.max_kv_heads:
            out.append(msg("infeasible.attn_shape", "the attention unit is built for {g} query "
                           "heads per kv head, head dimension {d} and up to {h} kv heads; the "
                           "model has {mg}, {md} and {mh}", g=self.group, d=self.head_dim,
                           h=self.max_kv_heads * self.count, mg=shape[0], md=shape[1],
                           mh=cfg.kv_heads))
        if scenario.context_tokens > self.max_positions:
            out.append(msg("infeasible.attn_tmax", "the attention unit holds {tmax} positions, "
                           "the scenario attends over {ctx}", tmax=self.max_positions,
                           ctx=scenario.context_tokens))
        return out

    def resources(self, c: CostConstants) -> Resources:
        return attention_resources(self, c)

    def parts(self, env: UnitEnv) -> tuple[OpProjection, ...]:
        w = attention_work(self, env)
        return (OpProjection(
            "attention_unit", "attention", env.wl.config.layers, "pl", w.time_s * 1e3, "pl",
            msg("basis.attention", "PL attention unit ({unit}): 2 calls per layer, {macs} "
                "MACs/clock at {mhz:g} MHz, the KV cache streamed at up to {gbs:.2f} GB/s; "
                "softmax on the PS", unit=self.label, macs=self.macs_per_clock * self.count,
                mhz=env.clock_mhz, gbs=env.board.ddr_bytes_per_s / 1e9),
            "attention", w),)


def attention_call_s(unit: AttentionUnit, env: UnitEnv, mode: int, positions: int
                     ) -> tuple[float, float]:
    """(PL seconds, input bytes) of one call of every instance at once over ``positions``:
    the busiest instance's cycles (``kv_attn_cycles`` for its kv heads), the busiest HP port
    (the instances sharing it, at its beat rate and the AXI DMA's MM2S efficiency), or DDR,
    whichever ends last."""
    cfg, board, c = env.wl.config, env.board, env.constants
    g, d = cfg.heads // cfg.kv_heads, cfg.head_dim
    lat = unit.latency_cycles
    port_rate = min(KV_ATTN_BEAT_BYTES, board.link.port_width_bits / 8) * env.clock_hz
    cycles = 0
    per_port: dict[int, float] = {}
    total = 0.0
    for i, (a, b) in enumerate(instance_split(cfg.kv_heads, unit.count)):
        h = b - a
        cycles = max(cycles, kv_attn_cycles(mode, positions, h, g, d, lat))
        rows = positions * h * d
        block = (h * g * d if mode == MODE_SCORES
                 else kv_attn_p_beats(positions, h, g) * KV_ATTN_BEAT_BYTES)
        port = port_of_instance(i, env.engines)
        per_port[port] = per_port.get(port, 0.0) + block + rows
        total += block + rows
    link = max(per_port.values()) / (port_rate * c.mm2s_efficiency)
    return max(cycles / env.clock_hz, link, total / board.ddr_bytes_per_s), total


def attention_work(unit: AttentionUnit, env: UnitEnv) -> Work:
    """Per forward, every layer's two calls (all instances at once) and the PS work around
    them, for each sequence of the round over its own cache; the PS waits.

    A call takes ``attention_call_s`` plus the hand-off an engine call pays
    (``dse.model.cost.handoff`` for the instances that run: register accesses, the runtime's
    launch, the results' cache invalidation; the rescale only for the x V sums, as the softmax
    scales the scores itself). The inputs the PS writes (q, p, the token's new K/V rows) go
    through the uncached mapping as an engine's activations do. The PS folds the softmax's
    probabilities with the V scales into uint16 p, one multiply and convert per element,
    priced as a rescale; the softmax stays an operator on the PS. Each query position runs
    its own call pair (a prompt group's positions one after another, at each position's own
    context: the mean, as the cycle count is linear in it), and each sequence of a round its
    own pairs at its own context (``Scenario.context_counts``).
    """
    cfg, scenario, c = env.wl.config, env.scenario, env.constants
    h, g, d = cfg.kv_heads, cfg.heads // cfg.kv_heads, cfg.head_dim
    launch = launch_us(env.board, c, env.runtime)
    running = len(instance_split(h, unit.count))
    # the hand-off of an engine call with the unit's own 128-bit stream, for its instances
    port = EngineDesign(1, 1, clock_mhz=env.clock_mhz, stream_bits=KV_ATTN_BEAT_BYTES * 8,
                        engines=running)
    total = Work()
    for context, sequences in scenario.context_counts():
        t = max(1, round(context - (scenario.m - 1) / 2))
        pl = 0.0
        nbytes = 0.0
        for mode in (MODE_SCORES, MODE_XV):
            s, b = attention_call_s(unit, env, mode, t)
            pl += s
            nbytes += b
        ps = t * h * g * c.rescale_ns_per_elem * 1e-9
        for n, rescale in ((t * h * g, False), (h * g * d, True)):
            ho = handoff(port, env.board, c, n=n, k=0, m=1, launch_us=launch, rescale=rescale)
            ps += ho.act_load_s + ho.run_s + ho.readout_s + ho.rescale_s
        reps = cfg.layers * scenario.m * sequences
        total = total + Work(reps * (pl + ps), reps * ps, reps * nbytes, reps * pl)
    return total


def attention_resources(unit: AttentionUnit, c: CostConstants) -> Resources:
    """The fabric of every instance and its AXI DMA.

    With fabric evidence in force and kv_attn synthesized (``c.fabric.attention``): the logic
    LUTs, FFs and DSPs of fits over its synthesized builds (``dse.model.fabric.
    attention_logic``) times the Yosys-to-Vivado relation, the memories by Vivado's inference
    rules (``attention_memories``: the p block in block RAM, q banks, accumulator and result
    FIFO in LUT RAM), each instance's DMA from the flow's published row. Otherwise counted
    from what overlays/rtl/kv_attn.v infers (overlays/KV_ATTN.md "Resources"; estimated):
    one DSP48E2 per MAC, the p block in 128-bit block RAM, the accumulator and q banks in LUT
    RAM, a 32-bit adder per MAC, fixed control, adder tree and result FIFO."""
    g = unit.group
    fab = c.fabric
    if fab is not None and fab.attention is not None:
        lut, ff, dsp = attention_logic(fab.attention, g, unit.head_dim, unit.max_kv_heads)
        mem = attention_memories(g, unit.head_dim, unit.max_kv_heads, unit.max_positions)
        dl, df, db, _ = infrastructure(fab, "overlay", 0, attention=1)
        rel = fab.relation
        one = Resources(lut=lut * rel.lut + mem["lut_ram"] + dl, ff=ff * rel.ff + df,
                        bram36=mem["bram36"] + db, uram=mem["uram"], dsp=round(dsp))
        return Resources(*(getattr(one, k) * unit.count for k in Resources.KINDS))
    words = unit.max_kv_heads * unit.head_dim // KV_ATTN_BEAT_BYTES  # q / accumulator depth
    lutram = (512 * g + 128 * g) * math.ceil(words / 64)
    p_words = kv_attn_p_beats(unit.max_positions, unit.max_kv_heads, g)
    one = Resources(lut=c.attn_lut_fixed + lutram + unit.macs_per_clock * 32 + c.dma_lut,
                    ff=c.attn_ff_fixed + unit.macs_per_clock * 25 * 3 + 128 * g + c.dma_ff,
                    bram36=4 * math.ceil(p_words / 1024) + c.dma_bram36,
                    dsp=unit.macs_per_clock)
    return Resources(*(getattr(one, k) * unit.count for k in Resources.KINDS))


# -- the edges: template section, plan files, the search's candidates ----------------------

def parse_section(data: object, path: str, dma_widths: tuple[int, ...]) -> AttentionTemplate:
    """The engine template's ``attention:`` section (strict: every field, known values,
    consistent)."""
    from dse.model.template import _int, _int_list, _mapping, _range

    f = "attention"
    a = _mapping(data, path, f, SECTION_KEYS)
    for key in ("name", "vlnv"):
        if not isinstance(a[key], str) or not a[key]:
            raise located(path, f"{f}.{key}", "a non-empty string", a[key])
    params = _mapping(a["parameters"], path, f"{f}.parameters", ("g", "d", "hmax", "tmax"))
    g = _int_list(_mapping(params["g"], path, f"{f}.parameters.g", ("values",))["values"],
                  path, f"{f}.parameters.g.values")
    bad = [v for v in g if v not in (1, 2, 4, 8)]
    if bad:
        raise located(path, f"{f}.parameters.g.values", "values among 1, 2, 4, 8 (16/G "
                      "groups of p per 16-byte beat)", bad[0])
    dspec = _mapping(params["d"], path, f"{f}.parameters.d", ("min", "max", "step"))
    step = _int(dspec, "step", path, f"{f}.parameters.d", 1)
    d = _range({"min": dspec["min"], "max": dspec["max"]}, path, f"{f}.parameters.d")
    if step != 16 or d[0] % step or d[1] % step or d[1] > 256:
        raise located(path, f"{f}.parameters.d", "min and max multiples of step: 16 (int8 a "
                      "beat), max <= 256", dspec)
    hmax = _range(params["hmax"], path, f"{f}.parameters.hmax")
    tmax = _range(params["tmax"], path, f"{f}.parameters.tmax")
    dflt = _mapping(a["defaults"], path, f"{f}.defaults", ("g", "d", "hmax", "tmax"))
    defaults = tuple((k, _int(dflt, k, path, f"{f}.defaults", 1))
                     for k in ("g", "d", "hmax", "tmax"))
    attach = _mapping(a["attach"], path, f"{f}.attach", ("dma", "hp_port"))
    for key, allowed in (("dma", ATTACH_DMA), ("hp_port", ATTACH_PORT)):
        if attach[key] not in allowed:
            raise located(path, f"{f}.attach.{key}", f"one of {', '.join(allowed)} (what "
                          "build_overlay.tcl builds)", attach[key])
    at = AttentionTemplate(
        name=a["name"], vlnv=a["vlnv"],
        register_map_version=_int(a, "register_map_version", path, f, 1),
        g_values=g, d_range=d, d_step=step, hmax_range=hmax, tmax_range=tmax,
        defaults=defaults, latency_cycles=_int(a, "latency_cycles", path, f, 0),
        stream_bits=_int(a, "stream_bits", path, f, 8),
        out_depth=_int(a, "out_depth", path, f, 4), max_units=_int(a, "max_units", path, f, 1),
        attach_dma=attach["dma"], attach_port=attach["hp_port"])
    if at.stream_bits != 128:
        raise located(path, f"{f}.stream_bits", "128 (16 int8 lanes a beat, the RTL's width)",
                      at.stream_bits)
    for x in g:
        if at.out_bits(x) not in dma_widths:
            raise located(path, f"{f}.parameters.g.values", "G whose 32*G-bit result stream "
                          f"is one of dma.stream_bits ({', '.join(map(str, dma_widths))})", x)
    if at.out_depth & (at.out_depth - 1):
        raise located(path, f"{f}.out_depth", "a power of two >= 4 (the RTL's OUT_DEPTH)",
                      at.out_depth)
    if not 1 <= at.max_units <= MAX_UNITS:
        raise located(path, f"{f}.max_units", f"1..{MAX_UNITS} (the control interconnect's "
                      f"16 master ports hold 2 per engine and 2 per unit)", at.max_units)
    why = at.violations(**at.default)
    if why:
        raise located(path, f"{f}.defaults", f"a buildable configuration ({why[0]})")
    return at


#: Most attention units the Vivado flow can give an AXI-Lite slave next to 4 engines: the
#: control SmartConnect has 16 master ports, 2 per engine (DMA + engine) and 2 per unit.
MAX_UNITS = 4
#: Plan-file fields of the attention unit (buildable/build_note are the template's to say).
PLAN_KEYS = tuple(f.name for f in fields(AttentionUnit) if f.name not in ("buildable",
                                                                           "build_note"))


def mark(unit: AttentionUnit, at: AttentionTemplate | None) -> AttentionUnit:
    """``unit`` with ``buildable`` and ``build_note`` from the template (pure)."""
    from dataclasses import replace

    if at is None:
        return replace(unit, buildable=False,
                       build_note="what-if: attention unit: the overlay has none")
    why = at.violations(g=unit.group, d=unit.head_dim, hmax=unit.max_kv_heads,
                        tmax=unit.max_positions, count=unit.count)
    if unit.latency_cycles != at.latency_cycles:
        why.append(f"latency {unit.latency_cycles}: the RTL's is {at.latency_cycles} cycles")
    if why:
        return replace(unit, buildable=False, build_note="what-if: " + why[0])
    return replace(unit, buildable=True, build_note=unit.make_args())


def from_mapping(data: object, path: str, at: AttentionTemplate | None) -> AttentionUnit:
    """A plan file's ``attention:`` entry; fields it omits are the template's default build
    (``{}``: the default build, one instance). Without a template section every field but
    ``count`` must be given."""
    from dse.schema import MAX_COUNT

    if not isinstance(data, dict):
        raise located(path, "attention", "a mapping {" + ", ".join(PLAN_KEYS) + "} or null",
                      type(data).__name__)
    unknown = sorted(str(k) for k in data if k not in PLAN_KEYS)
    if unknown:
        raise located(path, f"attention.{unknown[0]}", f"one of {', '.join(PLAN_KEYS)}",
                      unknown[0])
    for key, v in data.items():
        lo = 0 if key == "latency_cycles" else 1
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= MAX_COUNT:
            raise located(path, f"attention.{key}", f"an integer from {lo} to {MAX_COUNT}", v)
    limit, why = ((at.max_units, "the engine template's max_units") if at is not None
                  else (MAX_UNITS, "the Vivado flow's control interconnect"))
    if "count" in data and data["count"] > limit:
        raise located(path, "attention.count", f"at most {limit} attention units ({why})",
                      data["count"])
    given = dict(data)
    if at is not None:
        base = {"group": at.default["g"], "head_dim": at.default["d"],
                "max_kv_heads": at.default["hmax"], "max_positions": at.default["tmax"],
                "latency_cycles": at.latency_cycles}
        given = {**base, **given}
    missing = [k for k in PLAN_KEYS if k != "count" and k not in given]
    if missing:
        raise located(path, f"attention.{missing[0]}", "a value (the engine template has no "
                      "attention section to take it from)")
    return mark(AttentionUnit(**given), at)


def to_mapping(unit: AttentionUnit) -> dict:
    return {k: getattr(unit, k) for k in PLAN_KEYS}


def candidates(at: AttentionTemplate | None, board, cfg, *, max_count: int | None = None
               ) -> tuple[AttentionUnit, ...]:
    """The builds the search may add for a model: one instance count after another (each
    holding its share of the kv heads, HMAX = ceil(H / count)), G, D and TMAX the model's.
    With a template section they are its builds (up to its ``max_units`` and the model's kv
    heads; if it can build none for the model, the one instance it would take, as a what-if
    naming the rule); without one, none (no RTL to say what a unit's latency or build is)."""
    g, d, h = cfg.heads // cfg.kv_heads, cfg.head_dim, cfg.kv_heads
    if at is None:
        return ()
    top = min(at.max_units, h, max_count or at.max_units)
    out = []
    for n in range(1, top + 1):
        unit = mark(AttentionUnit(g, d, math.ceil(h / n), cfg.max_positions,
                                  at.latency_cycles, n), at)
        if unit.buildable:
            out.append(unit)
    if not out:  # the template cannot build one for this model: the what-if it would take
        out.append(mark(AttentionUnit(g, d, h, cfg.max_positions, at.latency_cycles, 1), at))
    return tuple(out)


KIND = register(UnitKind("attention", AttentionUnit, from_mapping, to_mapping, candidates,
                         parse_section))
