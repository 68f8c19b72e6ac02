"""The engine template: what the shipped overlay (overlays/rtl + overlays/vivado) can build.

``overlays/ternary_gemv.yaml`` is the one home of the overlay's build rules (parameter ranges,
packing codes and widths, the DMA's stream widths, the pipeline latency, the vectors per clock
it builds (VPC), how many engines on which HP ports, clock limit, and one optional section per
PL unit kind the overlay can add, e.g. ``attention:`` for kv_attn: its parameters, latency, how
many and how they are attached). This module turns it into a frozen ``EngineTemplate`` (each
unit section parsed by its kind, ``dse.model.units``; ``.unit_section(kind)`` is None when
absent) with a strict loader (one-line errors naming the file and the field), and answers the
questions the search, the register map, the simulator and the Vivado flow ask of it: which (PE,
SIMD) a packing can build, how wide its stream is, and which rule a given design breaks.
Everything except ``load_template``/``shipped_template`` is pure: callers load the template at
the edge and pass it down.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dse.errors import located
from dse.io import load_yaml

#: The shipped template: overlays/ in a checkout, else the copy packaged in dse/data.
_REPO_TEMPLATE = Path(__file__).resolve().parents[2] / "overlays" / "ternary_gemv.yaml"
_PACKAGED_TEMPLATE = Path(__file__).resolve().parents[1] / "data" / "ternary_gemv.yaml"
TOP_KEYS = ("name", "vlnv", "register_map_version", "parameters", "packings", "dma",
            "pipeline", "engines", "clock")


@dataclass(frozen=True)
class TemplatePacking:
    """A weight decoder the RTL has: its PACKING code and its bits per group of weights."""

    name: str
    code: int
    group_weights: int
    group_bits: int


@dataclass(frozen=True)
class EngineTemplate:
    """The overlay's buildable design space, as loaded from its YAML."""

    name: str
    vlnv: str
    register_map_version: int
    pe_values: tuple[int, ...]
    simd_range: tuple[int, int]
    vmax_range: tuple[int, int]
    kmax_range: tuple[int, int]
    #: Vectors answered per clock the RTL builds (its VPC parameter).
    vpc_values: tuple[int, ...]
    packings: tuple[TemplatePacking, ...]
    dma_stream_bits: tuple[int, ...]
    dma_length_bits: int
    latency_cycles: int
    out_depth: int
    max_engines: int
    hp_ports: tuple[tuple[str, tuple[str, ...]], ...]
    max_clock_mhz: float
    path: str = ""
    #: (kind, parsed section) of each PL unit kind the overlay can add.
    units: tuple[tuple[str, Any], ...] = ()

    def unit_section(self, kind: str) -> Any:
        """The parsed section of a unit kind (None: the overlay has no such unit)."""
        return dict(self.units).get(kind)

    @property
    def attention(self) -> Any:
        """The attention unit's section (``dse.model.units.AttentionTemplate``), or None."""
        return self.unit_section("attention")

    # -- lookups ---------------------------------------------------------------------------
    @property
    def packing_codes(self) -> dict[str, int]:
        """PACKING parameter / register value of each decoder."""
        return {p.name: p.code for p in self.packings}

    def packing(self, name: str) -> TemplatePacking | None:
        return next((p for p in self.packings if p.name == name), None)

    def ports_for(self, family: str) -> tuple[str, ...]:
        """HP ports the flow puts engines on, in order, for a board family (may be empty)."""
        return dict(self.hp_ports).get(family, ())

    def engines_for(self, family: str, board_hp_ports: int) -> int:
        """Most engines the flow builds on a board: one per HP port, up to ``max_engines``."""
        return min(self.max_engines, len(self.ports_for(family)), board_hp_ports)

    # -- widths ----------------------------------------------------------------------------
    def row_chunk_bits(self, simd: int, packing: str) -> int | None:
        """Bits of SIMD weights of one row in ``packing``; None when SIMD is not whole groups."""
        p = self.packing(packing)
        if p is None or simd % p.group_weights:
            return None
        return simd // p.group_weights * p.group_bits

    def stream_bits(self, pe: int, simd: int, packing: str) -> int | None:
        """Input stream width W = PE x row chunk bits (None where the RTL cannot build it)."""
        rb = self.row_chunk_bits(simd, packing)
        return None if rb is None else pe * rb

    def lane_shapes(self, packing: str) -> list[tuple[int, int]]:
        """Every (PE, SIMD) the template builds for ``packing`` (streams the DMA takes)."""
        p = self.packing(packing)
        if p is None:
            return []
        lo, hi = self.simd_range
        out = []
        for pe in self.pe_values:
            for bits in self.dma_stream_bits:
                # W = pe * simd / gw * gb  ->  simd = W * gw / (pe * gb), whole groups
                num = bits * p.group_weights
                if num % (pe * p.group_bits):
                    continue
                simd = num // (pe * p.group_bits)
                if lo <= simd <= hi and simd % p.group_weights == 0:
                    out.append((pe, simd))
        return out

    def vpc_for(self, pe: int) -> tuple[int, ...]:
        """The VPCs the template builds beside PE: the 32*PE*VPC-bit result beat must be a DMA
        width."""
        return tuple(v for v in self.vpc_values if 32 * pe * v in self.dma_stream_bits)

    def clock_limit_mhz(self, board_max_mhz: float) -> float:
        return min(self.max_clock_mhz, board_max_mhz)

    # -- rules -----------------------------------------------------------------------------
    def violations(self, *, pe: int, simd: int, packing: str, engines: int = 1,
                   vectors: int = 1, max_k: int = 1, clock_mhz: float | None = None,
                   family: str | None = None, board_hp_ports: int | None = None,
                   stream_bits: int | None = None, vectors_per_clock: int | None = None
                   ) -> list[str]:
        """Every build rule a configuration breaks, one short sentence each (empty: buildable).

        ``stream_bits``, when given, must be the width the RTL derives (a design that assumes a
        free width would need a width converter the flow does not have).
        """
        out: list[str] = []
        where = self.path or "engine template"
        p = self.packing(packing)
        if p is None:
            out.append(f"packing {packing!r}: the RTL decodes only "
                       f"{', '.join(self.packing_codes)} ({where} packings)")
        if pe not in self.pe_values:
            out.append(f"PE={pe}: the result stream 32*PE must be a DMA width, so PE is one of "
                       f"{', '.join(map(str, self.pe_values))}")
        lo, hi = self.simd_range
        if not lo <= simd <= hi:
            out.append(f"SIMD={simd}: the adder tree takes SIMD {lo}..{hi}")
        if p is not None and simd % p.group_weights:
            out.append(f"SIMD={simd}: {packing} needs SIMD a multiple of {p.group_weights} "
                       f"({p.group_weights} weights per {p.group_bits}-bit group)")
        w = self.stream_bits(pe, simd, packing)
        if w is not None and w not in self.dma_stream_bits:
            out.append(f"stream {w} bits (PE={pe} x SIMD={simd} {packing}): the AXI DMA takes "
                       f"{', '.join(map(str, self.dma_stream_bits))}")
        if stream_bits is not None and w is not None and stream_bits != w:
            out.append(f"stream_bits={stream_bits}: the RTL's stream is PE x row chunk = {w} "
                       f"bits (a width converter is not in the flow)")
        vlo, vhi = self.vmax_range
        if not vlo <= vectors <= vhi:
            out.append(f"vectors={vectors}: VMAX is {vlo}..{vhi}")
        klo, khi = self.kmax_range
        if not klo <= max_k <= khi:
            out.append(f"max_k={max_k}: KMAX is {klo}..{khi}")
        if vectors_per_clock is not None:
            v = vectors_per_clock
            if v not in self.vpc_values:
                out.append(f"vectors_per_clock={v}: the RTL answers "
                           f"{' or '.join(map(str, self.vpc_values))} vectors per clock (VPC)")
            elif 32 * pe * v not in self.dma_stream_bits:
                out.append(f"vectors_per_clock={v}: the result beat 32*PE*VPC = {32 * pe * v} "
                           f"bits is not a DMA width "
                           f"({', '.join(map(str, self.dma_stream_bits))})")
            elif v > vectors:
                out.append(f"vectors_per_clock={v}: VPC must be at most VMAX ({vectors})")
        cap = self.max_engines
        why = f"the flow builds at most {self.max_engines}"
        if family is not None:
            ports = self.ports_for(family)
            if len(ports) < cap:
                cap, why = len(ports), f"the flow has {len(ports)} HP ports for {family}"
        if board_hp_ports is not None and board_hp_ports < cap:
            cap, why = board_hp_ports, f"the board has {board_hp_ports} HP ports"
        if not 1 <= engines <= cap:
            out.append(f"engines={engines}: one engine per HP port and {why}")
        if clock_mhz is not None and clock_mhz > self.max_clock_mhz:
            out.append(f"clock {clock_mhz:g} MHz: the template allows up to "
                       f"{self.max_clock_mhz:g} MHz")
        return out


# -- loading --------------------------------------------------------------------------------

def _int(data: dict, key: str, path: str, field: str, lo: int = 0) -> int:
    v = data.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise located(path, f"{field}.{key}" if field else key, f"an integer >= {lo}", v)
    return v


def _mapping(data: object, path: str, field: str, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise located(path, field, f"a mapping with {', '.join(keys)}",
                      None if data is None else type(data).__name__)
    unknown = sorted(str(k) for k in data if k not in keys)
    if unknown:
        raise located(path, f"{field}.{unknown[0]}" if field else unknown[0],
                      f"one of {', '.join(keys)} (unknown key)")
    for k in keys:
        if k not in data:
            raise located(path, f"{field}.{k}" if field else k, "a value (field is missing)")
    return data


def _int_list(v: object, path: str, field: str) -> tuple[int, ...]:
    if (not isinstance(v, list) or not v
            or any(isinstance(x, bool) or not isinstance(x, int) or x < 1 for x in v)):
        raise located(path, field, "a non-empty list of integers >= 1", v)
    if sorted(set(v)) != list(v):
        raise located(path, field, "values in increasing order, each once", v)
    return tuple(v)


def _range(v: object, path: str, field: str) -> tuple[int, int]:
    d = _mapping(v, path, field, ("min", "max"))
    lo, hi = _int(d, "min", path, field, 1), _int(d, "max", path, field, 1)
    if hi < lo:
        raise located(path, f"{field}.max", f"an integer >= {field}.min ({lo})", hi)
    return lo, hi


def template_from_mapping(data: object, path: str | Path = "<template>") -> EngineTemplate:
    """Validate a parsed template YAML (pure); raise a one-line DseError on the first fault."""
    from dse.model.units import kinds

    path = str(path)
    sections = {k.name: k.template_section for k in kinds() if k.template_section is not None}
    raw_units: dict[str, object] = {}
    if isinstance(data, dict):
        data = dict(data)
        for key in sections:
            if key in data:
                raw_units[key] = data.pop(key)
    top = _mapping(data, path, "", TOP_KEYS)
    for key in ("name", "vlnv"):
        if not isinstance(top[key], str) or not top[key]:
            raise located(path, key, "a non-empty string", top[key])
    params = _mapping(top["parameters"], path, "parameters",
                      ("pe", "simd", "vmax", "kmax", "vpc"))
    pe = _int_list(_mapping(params["pe"], path, "parameters.pe", ("values",))["values"],
                   path, "parameters.pe.values")
    simd = _range(params["simd"], path, "parameters.simd")
    vmax = _range(params["vmax"], path, "parameters.vmax")
    kmax = _range(params["kmax"], path, "parameters.kmax")
    vpc = _int_list(_mapping(params["vpc"], path, "parameters.vpc", ("values",))["values"],
                    path, "parameters.vpc.values")
    packs_raw = top["packings"]
    if not isinstance(packs_raw, dict) or not packs_raw:
        raise located(path, "packings", "a mapping of packing name -> {code, group_weights, "
                      "group_bits}", packs_raw)
    packs = []
    for name, spec in packs_raw.items():
        f = f"packings.{name}"
        d = _mapping(spec, path, f, ("code", "group_weights", "group_bits"))
        packs.append(TemplatePacking(str(name), _int(d, "code", path, f, 0),
                                     _int(d, "group_weights", path, f, 1),
                                     _int(d, "group_bits", path, f, 1)))
    codes = [p.code for p in packs]
    if len(set(codes)) != len(codes):
        raise located(path, "packings", "a distinct code per packing", codes)
    dma = _mapping(top["dma"], path, "dma", ("stream_bits", "length_bits"))
    widths = _int_list(dma["stream_bits"], path, "dma.stream_bits")
    bad = [w for w in widths if w % 8]
    if bad:
        raise located(path, "dma.stream_bits", "widths of whole bytes (activation beats)",
                      bad[0])
    pipe = _mapping(top["pipeline"], path, "pipeline",
                    ("latency_cycles", "out_depth"))
    eng = _mapping(top["engines"], path, "engines", ("max", "hp_ports"))
    ports_raw = eng["hp_ports"]
    if not isinstance(ports_raw, dict) or not ports_raw:
        raise located(path, "engines.hp_ports", "a mapping of board family -> list of ports",
                      ports_raw)
    ports = []
    for fam, names in ports_raw.items():
        if (not isinstance(names, list) or not names
                or not all(isinstance(n, str) and n for n in names)):
            raise located(path, f"engines.hp_ports.{fam}", "a non-empty list of port names",
                          names)
        ports.append((str(fam), tuple(names)))
    clock = _mapping(top["clock"], path, "clock", ("max_mhz",))
    mhz = clock["max_mhz"]
    if isinstance(mhz, bool) or not isinstance(mhz, (int, float)) or not mhz > 0:
        raise located(path, "clock.max_mhz", "a number > 0", mhz)
    t = EngineTemplate(
        name=top["name"], vlnv=top["vlnv"],
        register_map_version=_int(top, "register_map_version", path, "", 1),
        pe_values=pe, simd_range=simd, vmax_range=vmax, kmax_range=kmax, vpc_values=vpc,
        packings=tuple(packs), dma_stream_bits=widths,
        dma_length_bits=_int(dma, "length_bits", path, "dma", 8),
        latency_cycles=_int(pipe, "latency_cycles", path, "pipeline", 0),
        out_depth=_int(pipe, "out_depth", path, "pipeline", 4),
        max_engines=_int(eng, "max", path, "engines", 1), hp_ports=tuple(ports),
        max_clock_mhz=float(mhz), path=path,
        units=tuple((k, sections[k](v, path, widths)) for k, v in raw_units.items()))
    _check_consistent(t)
    return t


def _check_consistent(t: EngineTemplate) -> None:
    """Rules that tie the template's fields together (a template the RTL cannot build)."""
    for pe in t.pe_values:
        if 32 * pe not in t.dma_stream_bits:
            raise located(t.path, "parameters.pe.values", f"PEs whose 32*PE-bit result stream "
                          f"is one of dma.stream_bits ({', '.join(map(str, t.dma_stream_bits))})",
                          pe)
    for p in t.packings:
        if not t.lane_shapes(p.name):
            raise located(t.path, f"packings.{p.name}", "a packing with at least one (PE, SIMD) "
                          "whose stream is one of dma.stream_bits")
    if t.out_depth & (t.out_depth - 1):
        raise located(t.path, "pipeline.out_depth", "a power of two >= 4 (the RTL's OUT_DEPTH)",
                      t.out_depth)
    for fam, ports in t.hp_ports:
        if len(ports) < t.max_engines:
            raise located(t.path, f"engines.hp_ports.{fam}", f"at least engines.max "
                          f"({t.max_engines}) ports: one engine per HP port", len(ports))
    if max(t.vpc_values) > t.vmax_range[1]:
        raise located(t.path, "parameters.vpc.values",
                      f"VPCs at most parameters.vmax.max ({t.vmax_range[1]})", max(t.vpc_values))
    if not any(t.vpc_for(pe) for pe in t.pe_values) or 1 not in t.vpc_values:
        raise located(t.path, "parameters.vpc.values", "values including 1 (every PE's result "
                      "beat is a DMA width at VPC 1)", list(t.vpc_values))


def design_violations(t: EngineTemplate, design, board=None) -> list[str]:
    """The rules of ``t`` an ``EngineDesign`` breaks on ``board`` (empty: the overlay builds it).

    Beyond the engine's own parameters: the shipped overlay has no dense head unit and no
    on-chip weight buffer, so designs assuming either are what-ifs.
    """
    out = t.violations(
        pe=design.pe, simd=design.simd, packing=design.packing, engines=design.engines,
        vectors=design.vectors, max_k=design.max_k, clock_mhz=design.clock_mhz,
        family=None if board is None else board.family,
        board_hp_ports=None if board is None else board.link.hp_ports,
        stream_bits=design.stream_bits, vectors_per_clock=design.vectors_per_clock)
    if design.head:
        out.append(f"head {design.head}: the overlay has no dense lm_head unit")
    if design.resident_bytes:
        out.append("resident weights: the overlay has no on-chip weight buffer")
    if getattr(design, "rtl", "ternary_gemv") != "ternary_gemv":
        out.append(f"engine RTL {design.rtl}: the overlay builds ternary_gemv")
    return out


def make_command(design, board, t: EngineTemplate | None = None) -> str:
    """The overlays/vivado command that builds ``design`` for ``board`` (naming the template
    when it is not the shipped one)."""
    from shlex import quote

    line = (f"make -C overlays/vivado overlay BOARD={quote(board.stem)} PE={design.pe} "
            f"SIMD={design.simd} PACKING={quote(design.packing)} VMAX={design.vectors} "
            f"VPC={design.vectors_per_clock} KMAX={design.max_k} ENGINES={design.engines} "
            f"CLOCK_MHZ={design.clock_mhz:g}")
    if t is not None and t.path and not _is_shipped(t.path):
        line += f" TEMPLATE={quote(str(Path(t.path).resolve()))}"
    return line


@functools.lru_cache(maxsize=16)
def _is_shipped(path: str) -> bool:
    """Whether a template file is the shipped one (resolved once per path, not per design)."""
    return Path(path).resolve() == shipped_template_path().resolve()


def mark_buildable(t: EngineTemplate, design, board, why: list[str] | None = None):
    """``design`` with ``buildable`` and ``build_note`` set from the template (pure; ``why``:
    its ``design_violations``, when the caller has them already)."""
    from dataclasses import replace

    if why is None:
        why = design_violations(t, design, board)
    if why:
        return replace(design, buildable=False, build_note="what-if: " + why[0])
    return replace(design, buildable=True, build_note=make_command(design, board, t))


def load_template(path: str | Path) -> EngineTemplate:
    """Read and validate a template YAML (safe loader only)."""
    return template_from_mapping(load_yaml(path, "engine template"), path)


def shipped_template_path() -> Path:
    return _REPO_TEMPLATE if _REPO_TEMPLATE.is_file() else _PACKAGED_TEMPLATE


@functools.lru_cache(maxsize=1)
def shipped_template() -> EngineTemplate:
    """The overlay's own template (read once per process)."""
    return load_template(shipped_template_path())

