"""Loading the fabric evidence (the I/O edge of ``dse.model.fabric``).

``load_fabric`` reads dse/data/fabric.yaml (or the file the user names with ``--fabric``):
the Yosys-to-Vivado relation's rows, the published IP rows, the flows, the published engine
RTLs and the clock closures; and the synthesized units beside the shipped file
(dse/data/synth/ternary_gemv.json, kv_attn.json, written by bench/bench_synth.py with their
tool and version). Strict: every field, its type and range; a malformed file is one line
naming the file and the field (exit 2), never a traceback.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

from dse.errors import DseError, located
from dse.io import load_json, load_yaml
from dse.model.fabric import (
    Closure,
    EngineRtl,
    Fabric,
    Flow,
    IpBlock,
    SynthPoint,
    UnitSynth,
    VivadoRow,
    relation_from_rows,
)
from dse.schema import QUANTITIES, check_quantity

DATA = Path(__file__).resolve().parent / "data"
SHIPPED = DATA / "fabric.yaml"
TOP_KEYS = ("version", "relation", "ip", "flows", "engines", "clock", "sources")
KINDS = ("engine", "attention", "glue")


def _map(data: object, path: object, field: str, keys: tuple[str, ...],
         optional: tuple[str, ...] = ()) -> dict:
    if not isinstance(data, dict):
        raise located(path, field, "a mapping", type(data).__name__)
    for k in data:
        if k not in keys and k not in optional:
            raise located(path, f"{field}.{k}" if field else str(k),
                          f"one of {', '.join(keys + optional)}")
    for k in keys:
        if k not in data:
            raise located(path, f"{field}.{k}" if field else k, "a value (missing)")
    return data


#: The most of one PL resource a row may count (``QUANTITIES['pl_resource']``: 10**8, beyond
#: any part); an IP row of 10**15 LUTs made every plan infeasible.
MAX_RESOURCE = QUANTITIES["pl_resource"].high
#: The coarsest clock step (MHz) the supported clocks are rounded down to: a step of 1e9 MHz
#: rounded every clock to 0 MHz and the cost model divided by it.
MAX_STEP_MHZ = 100.0


def _num(v: object, path: object, field: str, lo: float = 0.0, hi: float = math.inf
         ) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or \
            not lo <= v <= hi:
        raise located(path, field, f"a finite number >= {lo:g}" if hi == math.inf else
                      f"a finite number from {lo:g} to {hi:g}", v)
    return float(v)


def _resource(v: object, path: object, field: str) -> float:
    """A count of one PL resource (LUT, FF, BRAM36, URAM) in a Vivado or Yosys row."""
    return _num(v, path, field, 0.0, MAX_RESOURCE)


def _str(v: object, path: object, field: str, empty: bool = False) -> str:
    if not isinstance(v, str) or (not v and not empty):
        raise located(path, field, "a non-empty string" if not empty else "a string", v)
    return v


def _names(v: object, path: object, field: str, allowed: tuple[str, ...] | None = None
           ) -> tuple[str, ...]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise located(path, field, "a list of names", v)
    if allowed is not None:
        bad = [x for x in v if x not in allowed]
        if bad:
            raise located(path, field, f"names among {', '.join(allowed)}", bad[0])
    return tuple(v)


def _relation(data: object, path: object):
    r = _map(data, path, "relation", ("yosys", "fit", "check", "rows"))
    y = _map(r["yosys"], path, "relation.yosys", ("module", "tool", "lut", "ff", "bram36",
                                                  "uram"))
    counts = tuple(_resource(y[k], path, f"relation.yosys.{k}") for k in ("lut", "ff",
                                                                           "bram36", "uram"))
    if counts[0] <= 0 or counts[1] <= 0:
        raise located(path, "relation.yosys", "LUT and FF counts > 0", y)
    if not isinstance(r["rows"], list) or not r["rows"]:
        raise located(path, "relation.rows", "a non-empty list of Vivado rows", r["rows"])
    rows = []
    for i, row in enumerate(r["rows"]):
        f = f"relation.rows[{i}]"
        m = _map(row, path, f, ("design", "instance", "lut", "ff", "bram36", "uram"))
        rows.append(VivadoRow(_str(m["design"], path, f"{f}.design"),
                              _str(m["instance"], path, f"{f}.instance"),
                              *(_resource(m[k], path, f"{f}.{k}") for k in ("lut", "ff",
                                                                           "bram36", "uram"))))
    fit, check = _str(r["fit"], path, "relation.fit"), _str(r["check"], path, "relation.check")
    designs = {row.design for row in rows}
    for key, d in (("fit", fit), ("check", check)):
        if d not in designs:
            raise located(path, f"relation.{key}", f"a design of relation.rows "
                          f"({', '.join(sorted(designs))})", d)
    if fit == check:
        raise located(path, "relation.check", "a design other than relation.fit (the relation "
                      "is checked on rows it was not fitted to)", check)
    return relation_from_rows(_str(y["module"], path, "relation.yosys.module"),
                              _str(y["tool"], path, "relation.yosys.tool"), counts,
                              tuple(rows), fit, check)


def _ip(data: object, path: object) -> tuple[IpBlock, ...]:
    if not isinstance(data, dict) or not data:
        raise located(path, "ip", "a mapping of IP name -> {lut, ff, bram36, config, source}",
                      data)
    out = []
    for name, v in data.items():
        f = f"ip.{name}"
        m = _map(v, path, f, ("lut", "ff", "bram36", "config", "source"))
        out.append(IpBlock(str(name), _resource(m["lut"], path, f"{f}.lut"),
                           _resource(m["ff"], path, f"{f}.ff"),
                           _resource(m["bram36"], path, f"{f}.bram36"),
                           _str(m["config"], path, f"{f}.config"),
                           _str(m["source"], path, f"{f}.source")))
    return tuple(out)


def _flows(data: object, path: object, ips: tuple[str, ...]) -> tuple[Flow, ...]:
    if not isinstance(data, dict) or "overlay" not in data or "glue" not in data:
        raise located(path, "flows", "a mapping with at least flows overlay and glue", data)
    out = []
    keys = ("per_engine", "per_attention", "per_unit", "once")
    for name, v in data.items():
        f = f"flows.{name}"
        m = _map(v, path, f, (), (*keys, "differs"))
        out.append(Flow(str(name), *(_names(m.get(k, []), path, f"{f}.{k}", ips)
                                     for k in keys),
                        _str(m.get("differs", ""), path, f"{f}.differs", empty=True)))
    return tuple(out)


def _engines(data: object, path: object, flows: tuple[str, ...]) -> tuple[EngineRtl, ...]:
    if not isinstance(data, dict):
        raise located(path, "engines", "a mapping of engine RTL name -> {shape, flow, yosys}",
                      data)
    out = []
    for name, v in data.items():
        f = f"engines.{name}"
        m = _map(v, path, f, ("shape", "flow", "yosys"))
        s = _map(m["shape"], path, f"{f}.shape", ("pe", "simd", "packing", "vectors"))
        if m["flow"] not in flows:
            raise located(path, f"{f}.flow", f"one of {', '.join(flows)}", m["flow"])
        if m["yosys"] != "relation":
            raise located(path, f"{f}.yosys", "relation (its counts are relation.yosys)",
                          m["yosys"])
        out.append(EngineRtl(str(name), int(_num(s["pe"], path, f"{f}.shape.pe", 1)),
                             int(_num(s["simd"], path, f"{f}.shape.simd", 1)),
                             _str(s["packing"], path, f"{f}.shape.packing"),
                             int(_num(s["vectors"], path, f"{f}.shape.vectors", 1)), m["flow"]))
    return tuple(out)


def _counts(v: object, path: object, field: str) -> tuple[tuple[str, int], ...]:
    if not isinstance(v, dict) or any(k not in KINDS for k in v):
        raise located(path, field, f"a mapping of unit kind ({', '.join(KINDS)}) -> count", v)
    return tuple((str(k), int(_num(n, path, f"{field}.{k}", 1))) for k, n in v.items())


def _clock(data: object, path: object):
    c = _map(data, path, "clock", ("step_mhz", "closures", "grade_rank"), ("same_fabric",))
    step = _num(c["step_mhz"], path, "clock.step_mhz", 1, MAX_STEP_MHZ)
    if not isinstance(c["closures"], list) or not c["closures"]:
        raise located(path, "clock.closures", "a non-empty list of closures", c["closures"])
    closures = []
    for i, v in enumerate(c["closures"]):
        f = f"clock.closures[{i}]"
        m = _map(v, path, f, ("design", "family", "speed_grade", "clock_mhz", "kinds",
                              "logic_levels_yosys", "critical", "source"),
                 ("wns_ns", "lut_util", "counts", "level_ns"))
        wns = m.get("wns_ns")
        util = m.get("lut_util")
        if (wns is None) != (util is None):
            raise located(path, f, "wns_ns and lut_util both given or both omitted", v)
        if wns is not None and not isinstance(wns, bool) and isinstance(wns, (int, float)) \
                and wns < 0:
            raise located(path, f"{f}.wns_ns", "a slack >= 0 (a closure met its clock)", wns)
        check_quantity(path, f"{f}.clock_mhz", "pl_clock_mhz", m["clock_mhz"])
        if wns is not None and _num(wns, path, f"{f}.wns_ns") >= 1000.0 / m["clock_mhz"]:
            raise located(path, f"{f}.wns_ns", f"a slack below the clock's period "
                          f"({1000.0 / m['clock_mhz']:g} ns at {m['clock_mhz']:g} MHz)", wns)
        closures.append(Closure(
            _str(m["design"], path, f"{f}.design"), _str(m["family"], path, f"{f}.family"),
            _str(m["speed_grade"], path, f"{f}.speed_grade"),
            _num(m["clock_mhz"], path, f"{f}.clock_mhz", 1),
            None if wns is None else _num(wns, path, f"{f}.wns_ns"),
            None if util is None else _num(util, path, f"{f}.lut_util"),
            _names(m["kinds"], path, f"{f}.kinds", KINDS),
            int(_num(m["logic_levels_yosys"], path, f"{f}.logic_levels_yosys")),
            _str(m["critical"], path, f"{f}.critical"), _str(m["source"], path, f"{f}.source"),
            _counts(m.get("counts", {}), path, f"{f}.counts"),
            None if m.get("level_ns") is None else _num(m["level_ns"], path, f"{f}.level_ns")))
        if closures[-1].lut_util is not None and not 0 < closures[-1].lut_util <= 1:
            raise located(path, f"{f}.lut_util", "a fraction in (0, 1]", util)
    ranks = c["grade_rank"]
    if not isinstance(ranks, dict):
        raise located(path, "clock.grade_rank", "a mapping family -> {grade: rank}", ranks)
    grade_rank = []
    for fam, grades in ranks.items():
        if not isinstance(grades, dict) or not grades:
            raise located(path, f"clock.grade_rank.{fam}", "a mapping grade -> rank", grades)
        grade_rank.append((str(fam), tuple((str(g), int(_num(r, path,
                                                             f"clock.grade_rank.{fam}.{g}", 1)))
                                           for g, r in grades.items())))
    for i, cl in enumerate(closures):
        if cl.speed_grade not in dict(dict(grade_rank).get(cl.family, ())):
            raise located(path, f"clock.closures[{i}].speed_grade", f"a grade of "
                          f"clock.grade_rank.{cl.family}", cl.speed_grade)
    same = c.get("same_fabric", {})
    if not isinstance(same, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                             for k, v in same.items()):
        raise located(path, "clock.same_fabric", "a mapping family -> family", same)
    chained = [k for k, v in same.items() if v in same]
    if chained:
        raise located(path, f"clock.same_fabric.{chained[0]}", "a family whose closures are "
                      "listed under its own name (not itself mapped in same_fabric)",
                      same[chained[0]])
    return step, tuple(closures), tuple(grade_rank), tuple(same.items())


def _synth(path: Path, unit: str) -> UnitSynth | None:
    """A synthesized unit's data (None when the file is absent: the model then estimates)."""
    if not path.exists():
        return None
    d = load_json(path, "synthesis data")
    m = _map(d, path, "", ("unit", "top", "tool", "date", "command", "source", "points"))
    if m["unit"] != unit:
        raise located(path, "unit", unit, m["unit"])
    pts = []
    for i, p in enumerate(m["points"] if isinstance(m["points"], list) else []):
        f = f"points[{i}]"
        q = _map(p, path, f, ("params", "lut", "lut_logic", "lut_srl", "lut_ram", "inv", "ff",
                              "carry", "bram36", "uram", "dsp", "logic_levels"))
        if not isinstance(q["params"], dict):
            raise located(path, f"{f}.params", "a mapping", q["params"])
        pts.append(SynthPoint(tuple(sorted((str(k), int(v)) for k, v in q["params"].items())),
                              *(_num(q[k], path, f"{f}.{k}") for k in
                                ("lut_logic", "lut_srl", "lut_ram", "ff", "bram36", "uram",
                                 "dsp")),
                              int(_num(q["logic_levels"], path, f"{f}.logic_levels"))))
    if len(pts) < 3:
        raise located(path, "points", "at least 3 synthesized points (the fit has 3 terms)",
                      len(pts))
    return UnitSynth(unit, _str(m["tool"], path, "tool"), str(m["date"]), tuple(pts))


def load_fabric(path: str | Path | None = None) -> Fabric:
    """The fabric evidence in ``path`` (default: the shipped dse/data/fabric.yaml) with the
    synthesized units of dse/data/synth/."""
    p = Path(path) if path is not None else SHIPPED
    return _load(str(p.resolve()) if p.exists() else str(p))


@functools.lru_cache(maxsize=8)
def _load(path: str) -> Fabric:
    data = load_yaml(path, "fabric evidence")
    d = _map(data, path, "", TOP_KEYS)
    if d["version"] != 1:
        raise located(path, "version", "1", d["version"])
    ip = _ip(d["ip"], path)
    flows = _flows(d["flows"], path, tuple(b.name for b in ip))
    step, closures, ranks, same = _clock(d["clock"], path)
    try:
        relation = _relation(d["relation"], path)
    except ValueError as exc:
        raise DseError(f"{path}: relation: {exc}") from None
    synth = DATA / "synth"
    return Fabric(relation=relation, ip=ip, flows=flows,
                  engines=_engines(d["engines"], path, tuple(f.name for f in flows)),
                  closures=closures, grade_rank=ranks, step_mhz=step, same_fabric=same,
                  engine=_synth(synth / "ternary_gemv.json", "engine"),
                  attention=_synth(synth / "kv_attn.json", "attention"), path=str(path))
