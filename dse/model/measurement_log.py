"""Measurement logs: what was measured, on which configuration, with units and provenance.

A log is the one input calibration learns from (``dse calibrate --from LOG``). The sim and
pynq backends write one; a person writes one from a board run or a paper. The format is
documented in ``docs/measurement-log.md``; this module is its strict loader and writer.
Why a separate format from the calibration file: a log holds facts (values a measurement
produced, with their source), a calibration holds what a fit made of them. Keeping them apart
means a fit can be redone, checked or contested from the log alone.

Every value is normalised to one dimension (time, rate, bandwidth, cycles, power, energy) in
SI units, so predictors compare like with like whatever unit the author wrote.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dse.errors import DseError, located
from dse.io import parse_json, read_text
from dse.model.cpu import RUNTIMES
from dse.model.engine import EngineDesign
from dse.schema import check_quantity

FORMAT = "dse-measurement-log"
VERSION = 1
KINDS = ("call", "layer", "component", "phase")
#: unit -> (dimension, factor to SI). Rates are per second; bandwidth in bytes per second.
UNITS: dict[str, tuple[str, float]] = {
    "s": ("time", 1.0), "ms": ("time", 1e-3), "us": ("time", 1e-6), "ns": ("time", 1e-9),
    "tok/s": ("rate", 1.0),
    "GB/s": ("bandwidth", 1e9), "MB/s": ("bandwidth", 1e6), "GiB/s": ("bandwidth", 2**30),
    "cycles": ("cycles", 1.0),
    "W": ("power", 1.0), "mW": ("power", 1e-3),
    "J": ("energy", 1.0), "mJ": ("energy", 1e-3),
}
DEVICES = ("pl", "ps", "board")
SPANS = ("wall", "busy")
CONFIG_KEYS = ("board", "backend", "engine", "glue", "head", "bitstream", "bitstream_sha256",
               "pl_clock_mhz", "ps_clock_mhz", "ddr_transfer_rate_mts", "threads", "runtime",
               "ps_runtime", "kv_dtype", "model", "notes")
#: Where the design runs the output head: on the PS, or two-stage (a ternary copy through the
#: engines, the top-K rescored on the PS).
HEADS = ("cpu", "two-stage")
#: dse's PS runtimes a run's software may correspond to: it decides what launching an engine
#: call costs (a C driver under ``native``, the Python PYNQ one otherwise).
PS_RUNTIMES = RUNTIMES
#: Where a log's measurements came from; a sim log's times are partly the model's own.
BACKENDS = ("sim", "pynq", "board", "paper")
ENGINE_KEYS = ("pe", "simd", "packing", "engines", "clock_mhz", "vectors", "stream_bits",
               "max_k", "vectors_per_clock", "rtl")
_INT_FIELDS = ("n", "k", "m", "context", "calls", "weight_bytes", "bytes", "busy_cycles",
               "stall_cycles", "repeats")
#: The largest each integer field may be: a matrix dimension, a count of tokens, calls,
#: bytes or cycles (sanity ceilings far above any real run, see ``dse.schema.QUANTITIES``).
INT_LIMITS = {"n": 2**24, "k": 2**24, "m": 2**24, "context": 2**24, "calls": 2**40,
              "weight_bytes": 2**50, "bytes": 2**50, "busy_cycles": 2**53,
              "stall_cycles": 2**53, "repeats": 10**6}
#: The range of a value of each dimension, in SI units (s, 1/s, B/s, cycles, W, J): a picosecond
#: to eleven days, a byte per second to 100 TB/s, a microwatt to 100 kW ... Outside them a value
#: is a typo (1e308 ms), never a measurement.
SI_RANGES = {"time": (1e-12, 1e6), "rate": (1e-9, 1e12), "bandwidth": (1.0, 1e14),
             "cycles": (1.0, 2.0**53), "power": (1e-6, 1e5), "energy": (1e-15, 1e9)}
#: The dimensions each kind of entry may be measured in: a call or a layer takes time (or
#: cycles); a component is a part of a token's time (or energy); a phase may be anything.
KIND_DIMENSIONS = {"call": ("time", "cycles"), "layer": ("time", "cycles"),
                   "component": ("time", "cycles", "energy"),
                   "phase": ("time", "cycles", "rate", "bandwidth", "power", "energy")}
#: How far the parts of an entry may sum past it (a published split's rounding).
PARTS_TOLERANCE = 0.02
ENTRY_KEYS = ("id", "kind", "what", "value", "unit", "range", "per", "device", "span",
              "part_of", "fit", "config", "source", "note", "spread", "prompts", *_INT_FIELDS)
TOP_KEYS = ("format", "version", "title", "created", "config", "source", "entries")


@dataclass(frozen=True)
class Measurement:
    """One layer measured on an engine: median wall time per call and PL cycle counters."""

    layer: str
    n: int
    k: int
    m: int
    design: EngineDesign
    weight_bytes: int
    wall_s: float
    wall_spread_s: float = 0.0
    busy_cycles: int | None = None
    stall_cycles: int | None = None
    repeats: int = 1
    dense: str | None = None


@dataclass(frozen=True)
class LogConfig:
    """The configuration a measurement was made on (entries may override fields)."""

    board: str
    backend: str
    engine: dict[str, Any] | None = None
    #: The design's FFN glue unit in the PL, as stated: {passes, cycles_per_elem}.
    glue: dict[str, Any] | None = None
    #: Where the design runs the output head (``HEADS``; None: on the PS).
    head: str | None = None
    bitstream: str | None = None
    bitstream_sha256: str | None = None
    pl_clock_mhz: float | None = None
    ps_clock_mhz: float | None = None
    ddr_transfer_rate_mts: float | None = None
    threads: int | None = None
    runtime: str | None = None
    ps_runtime: str | None = None
    kv_dtype: str | None = None
    model: str | None = None
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in CONFIG_KEYS if getattr(self, k) not in (None, "")}


@dataclass(frozen=True)
class LogEntry:
    """One measured value: what, how much (in ``unit``), on what, from where."""

    id: str
    kind: str
    what: str
    value: float
    unit: str
    source: str
    config: LogConfig
    device: str = "pl"
    span: str = "wall"
    per: str | None = None
    part_of: str | None = None
    fit: bool = True
    note: str = ""
    range: tuple[float, float] | None = None
    spread: float | None = None
    ints: dict[str, int] = field(default_factory=dict)
    #: The prompt lengths a prompt rate is over (its runs' prompts, in tokens).
    prompts: tuple[int, ...] = ()

    @property
    def dimension(self) -> str:
        return UNITS[self.unit][0]

    @property
    def si(self) -> float:
        """The value in SI units of its dimension (s, 1/s, B/s, cycles, W, J)."""
        return self.value * UNITS[self.unit][1]

    def get(self, name: str) -> int | None:
        return self.ints.get(name)


@dataclass(frozen=True)
class MeasurementLog:
    """A validated log: its configuration, its entries, and the file it came from."""

    title: str
    config: LogConfig
    entries: tuple[LogEntry, ...]
    source: str = ""
    created: str = ""
    path: str = ""
    sha256: str = ""

    def entry(self, entry_id: str) -> LogEntry:
        for e in self.entries:
            if e.id == entry_id:
                return e
        raise KeyError(entry_id)


def _is_num(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _config(data: Any, path: str, where: str, base: LogConfig | None) -> LogConfig:
    if not isinstance(data, dict):
        raise located(path, where, "a mapping of configuration fields (board, engine, ...)",
                      data)
    unknown = sorted(str(k) for k in data if k not in CONFIG_KEYS)
    if unknown:
        raise located(path, f"{where}.{unknown[0]}", "one of " + ", ".join(CONFIG_KEYS))
    merged: dict[str, Any] = {} if base is None else {k: getattr(base, k) for k in CONFIG_KEYS}
    for key in ("board", "backend", "bitstream", "bitstream_sha256", "runtime", "ps_runtime",
                "kv_dtype", "model", "notes", "head"):
        if key in data:
            optional = key not in ("board", "backend")
            if data[key] is None and optional:
                merged[key] = "" if key == "notes" else None
                continue
            if not isinstance(data[key], str) or (key != "notes" and not data[key].strip()):
                raise located(path, f"{where}.{key}", "a non-empty string"
                              + (" or null" if optional else ""), data[key])
            merged[key] = data[key]
    for key, kind in (("pl_clock_mhz", "pl_clock_mhz"), ("ps_clock_mhz", "cpu_clock_mhz"),
                      ("ddr_transfer_rate_mts", "ddr_transfer_rate_mts")):
        if key in data:
            v = data[key]
            if v is not None:
                check_quantity(path, f"{where}.{key}", kind, v)
            merged[key] = None if v is None else float(v)
    if "threads" in data:
        v = data["threads"]
        if v is not None:
            check_quantity(path, f"{where}.threads", "threads", v)
        merged["threads"] = v
    if "engine" in data:
        merged["engine"] = _engine(data["engine"], path, f"{where}.engine")
    if "glue" in data:
        merged["glue"] = _glue(data["glue"], path, f"{where}.glue")
    if merged.get("head") not in (None, *HEADS):
        raise located(path, f"{where}.head", "one of " + ", ".join(HEADS) + " (where the "
                      "design runs the output head)", merged["head"])
    if merged.get("ps_runtime") not in (None, *PS_RUNTIMES):
        raise located(path, f"{where}.ps_runtime", "one of " + ", ".join(PS_RUNTIMES)
                      + " (the dse runtime the run's PS software is: a C runtime is native)",
                      merged["ps_runtime"])
    if "backend" in merged and merged["backend"] not in BACKENDS:
        raise located(path, f"{where}.backend", "one of " + ", ".join(BACKENDS),
                      merged["backend"])
    for key in ("board", "backend"):
        if not merged.get(key):
            raise located(path, f"{where}.{key}", "a value (field is missing)")
    return LogConfig(**merged)


def _glue(v: Any, path: str, where: str) -> dict[str, Any] | None:
    if v is None:
        return None
    if not isinstance(v, dict) or sorted(v) != ["cycles_per_elem", "passes"]:
        raise located(path, where, "a mapping {passes, cycles_per_elem} (the FFN glue unit)", v)
    if not (isinstance(v["passes"], int) and not isinstance(v["passes"], bool)
            and v["passes"] >= 1):
        raise located(path, f"{where}.passes", "an integer >= 1", v["passes"])
    from dse.model.units.glue import MAX_CYCLES_PER_ELEM, MAX_PASSES, MIN_CYCLES_PER_ELEM

    c = v["cycles_per_elem"]
    if not (_is_num(c) and math.isfinite(c) and MIN_CYCLES_PER_ELEM <= c <= MAX_CYCLES_PER_ELEM):
        raise located(path, f"{where}.cycles_per_elem", f"a number from {MIN_CYCLES_PER_ELEM:g} "
                      f"to {MAX_CYCLES_PER_ELEM:g}", c)
    if v["passes"] > MAX_PASSES:
        raise located(path, f"{where}.passes", f"an integer from 1 to {MAX_PASSES}", v["passes"])
    return dict(v)


def _engine(v: Any, path: str, where: str) -> dict[str, Any] | None:
    if v is None:
        return None
    if not isinstance(v, dict):
        raise located(path, where, "a mapping of engine fields (pe, simd, packing, ...)", v)
    unknown = sorted(str(k) for k in v if k not in ENGINE_KEYS)
    if unknown:
        raise located(path, f"{where}.{unknown[0]}", "one of " + ", ".join(ENGINE_KEYS))
    for key in ("pe", "simd", "packing"):
        if key not in v:
            raise located(path, f"{where}.{key}", "a value (field is missing)")
    for key, x in v.items():
        if key == "packing":
            if not isinstance(x, str):
                raise located(path, f"{where}.packing", "a packing name", x)
        elif key == "rtl":  # the engine RTL the design ran (fabric.yaml's engines: its evidence)
            if not isinstance(x, str) or not x.strip():
                raise located(path, f"{where}.rtl", "an engine RTL name (ternary_gemv, or one "
                              "of the fabric evidence's engines)", x)
        else:
            check_quantity(path, f"{where}.{key}", _ENGINE_QUANTITY[key], x)
    return dict(v)


#: What each numeric engine field is (``dse.schema.QUANTITIES``): an absurd count (2**62
#: engines) is refused here, before any cost is summed engine by engine.
_ENGINE_QUANTITY = {"pe": "lanes", "simd": "lanes", "engines": "engines",
                    "clock_mhz": "pl_clock_mhz", "vectors": "lanes", "stream_bits": "lanes",
                    "max_k": "dimension", "vectors_per_clock": "lanes"}


def _entry(data: Any, i: int, path: str, base: LogConfig, source: str) -> LogEntry:
    where = f"entries[{i}]"
    if not isinstance(data, dict):
        raise located(path, where, "a mapping (id, kind, what, value, unit, source)", data)
    if isinstance(data.get("id"), str) and data["id"].strip():
        where = f"entries[{i}] ({data['id']})"
    unknown = sorted(str(k) for k in data if k not in ENTRY_KEYS)
    if unknown:
        raise located(path, f"{where}: {unknown[0]}", "one of the entry fields ("
                      + ", ".join(ENTRY_KEYS) + ")")
    for key in ("id", "kind", "what", "value", "unit"):
        if key not in data:
            what = {"unit": "a unit (" + ", ".join(UNITS) + ")"}.get(key, "a value")
            raise located(path, f"{where}: {key}", f"{what} (field is missing)")
    for key in ("id", "what"):
        if not isinstance(data[key], str) or not data[key].strip():
            raise located(path, f"{where}: {key}", "a non-empty string", data[key])
    if data["kind"] not in KINDS:
        raise located(path, f"{where}: kind", "one of " + ", ".join(KINDS), data["kind"])
    if data["unit"] not in UNITS:
        raise located(path, f"{where}: unit", "one of " + ", ".join(UNITS), data["unit"])
    dim, factor = UNITS[data["unit"]]
    dims = KIND_DIMENSIONS[data["kind"]]
    if dim not in dims:
        allowed = ", ".join(u for u, (d, _) in UNITS.items() if d in dims)
        raise located(path, f"{where}: unit", f"a unit of {' or '.join(dims)} for a "
                      f"{data['kind']} ({allowed})", data["unit"])
    v = data["value"]
    lo, hi = (x / factor for x in SI_RANGES[dim])
    if not (_is_num(v) and math.isfinite(v) and lo <= v <= hi):
        raise located(path, f"{where}: value", f"a number from {lo:.3g} to {hi:.3g} "
                      f"{data['unit']} (a {dim} a measurement can have)", v)
    rng = data.get("range")
    if rng is not None:
        if not (isinstance(rng, list) and len(rng) == 2 and all(_is_num(x) and math.isfinite(x)
                                                               for x in rng)
                and 0 < rng[0] <= v <= rng[1]):
            raise located(path, f"{where}: range", "[low, high] around value, in its unit", rng)
        rng = (float(rng[0]), float(rng[1]))
    ints = {}
    for key in _INT_FIELDS:
        if key in data:
            x = data[key]
            low = 0 if key == "stall_cycles" else 1
            if not (isinstance(x, int) and not isinstance(x, bool)
                    and low <= x <= INT_LIMITS[key]):
                raise located(path, f"{where}: {key}", f"an integer from {low} to "
                              f"{INT_LIMITS[key]:,}", x)
            ints[key] = x
    prompts = data.get("prompts", [])
    if not (isinstance(prompts, list) and all(isinstance(x, int) and not isinstance(x, bool)
                                              and x >= 1 for x in prompts)):
        raise located(path, f"{where}: prompts", "a list of prompt lengths (integers >= 1)",
                      prompts)
    spread = data.get("spread")
    if spread is not None and not (_is_num(spread) and math.isfinite(spread)
                                   and 0 <= spread <= hi):
        raise located(path, f"{where}: spread", "a finite number >= 0 (in the entry's unit)",
                      spread)
    for key, allowed in (("device", DEVICES), ("span", SPANS)):
        if key in data and data[key] not in allowed:
            raise located(path, f"{where}: {key}", "one of " + ", ".join(allowed), data[key])
    if "fit" in data and not isinstance(data["fit"], bool):
        raise located(path, f"{where}: fit", "true or false", data["fit"])
    for key in ("per", "part_of", "note", "source"):
        if key in data and not isinstance(data[key], str):
            raise located(path, f"{where}: {key}", "a string", data[key])
    src = data.get("source") or source
    if not src.strip():
        raise located(path, f"{where}: source", "where the value came from (a file, a run, a "
                      "paper; or a source for the whole log)")
    cfg = base if "config" not in data else _config(data["config"], path, f"{where}: config",
                                                    base)
    return LogEntry(
        id=data["id"], kind=data["kind"], what=data["what"], value=float(v), unit=data["unit"],
        source=src, config=cfg, device=data.get("device", "pl"), span=data.get("span", "wall"),
        per=data.get("per"), part_of=data.get("part_of"), fit=data.get("fit", True),
        note=data.get("note", ""), range=rng,
        spread=None if spread is None else float(spread), ints=ints, prompts=tuple(prompts))


def log_from_dict(data: Any, path: str, sha256: str = "") -> MeasurementLog:
    """A validated log, or a one-line error naming the file and the entry."""
    if not isinstance(data, dict):
        raise located(path, "", "a JSON object (a dse measurement log)")
    if data.get("format") != FORMAT:
        raise located(path, "format", repr(FORMAT), data.get("format"))
    if data.get("version") != VERSION or isinstance(data.get("version"), bool):
        raise located(path, "version", f"{VERSION} (the measurement-log versions this dse "
                      f"reads)", data.get("version"))
    unknown = sorted(str(k) for k in data if k not in TOP_KEYS)
    if unknown:
        raise located(path, unknown[0], "one of " + ", ".join(TOP_KEYS))
    for key in ("title", "source", "created"):
        if key in data and not isinstance(data[key], str):
            raise located(path, key, "a string", data[key])
    if "config" not in data:
        raise located(path, "config", "a mapping (field is missing)")
    cfg = _config(data["config"], path, "config", None)
    entries = data.get("entries")
    if not isinstance(entries, list) or not entries:
        raise located(path, "entries", "a non-empty list of measurements", entries)
    source = data.get("source", "")
    out = [_entry(e, i, path, cfg, source) for i, e in enumerate(entries)]
    _check_parts(out, path)
    return MeasurementLog(title=data.get("title", ""), config=cfg, entries=tuple(out),
                          source=source, created=data.get("created", ""), path=path,
                          sha256=sha256)


def _check_parts(entries: list[LogEntry], path: str) -> None:
    """Unique ids; every ``part_of`` names another entry, the parts form no cycle, are of
    their whole's dimension, and (time, cycles, energy) add up to no more than it."""
    index: dict[str, int] = {}
    for i, e in enumerate(entries):
        if e.id in index:
            raise located(path, f"entries[{i}] ({e.id}): id", "an id no other entry has (it "
                          f"is also entries[{index[e.id]}])")
        index[e.id] = i
    parts: dict[str, list[int]] = {}
    for i, e in enumerate(entries):
        if e.part_of is None:
            continue
        where = f"entries[{i}] ({e.id}): part_of"
        if e.part_of not in index:
            raise located(path, where, "the id of another entry", e.part_of)
        whole = entries[index[e.part_of]]
        if whole.dimension != e.dimension:
            raise located(path, where, f"a whole of the part's dimension ({e.dimension}); "
                          f"{whole.id} is a {whole.dimension}", e.part_of)
        parts.setdefault(e.part_of, []).append(i)
    for i, e in enumerate(entries):
        seen = {e.id}
        at = e
        while at.part_of is not None:
            if at.part_of in seen:
                raise located(path, f"entries[{i}] ({e.id}): part_of", "parts that are not "
                              f"part of themselves (the chain {e.id} -> ... -> {at.part_of} "
                              f"is a cycle)", e.part_of)
            seen.add(at.part_of)
            at = entries[index[at.part_of]]
    for whole_id, members in parts.items():
        whole = entries[index[whole_id]]
        if whole.dimension not in ("time", "cycles", "energy"):
            continue
        total = 0.0
        for i in members:
            part = entries[i]
            total += part.si
            if part.si > whole.si * (1 + PARTS_TOLERANCE):
                raise located(path, f"entries[{i}] ({part.id}): value", f"at most its whole "
                              f"{whole.id} ({whole.value:g} {whole.unit})",
                              f"{part.value:g} {part.unit}")
        if total > whole.si * (1 + PARTS_TOLERANCE):
            raise located(path, f"entries[{index[whole_id]}] ({whole_id}): value",
                          f"at least the sum of its {len(members)} parts "
                          f"({total / UNITS[whole.unit][1]:.4g} {whole.unit})",
                          f"{whole.value:g} {whole.unit}")


def load_log(path: str | Path) -> MeasurementLog:
    """Read and validate a measurement log (JSON; a NaN or Infinity literal is refused)."""
    import hashlib

    p = Path(path)
    text = read_text(p, "measurement log")
    data = parse_json(text, p)
    return log_from_dict(data, str(p), hashlib.sha256(text.encode("utf-8")).hexdigest())


def entry_to_dict(e: LogEntry, base: LogConfig | None = None) -> dict[str, Any]:
    """An entry as the file holds it (its config only where it differs from ``base``)."""
    out: dict[str, Any] = {"id": e.id, "kind": e.kind, "what": e.what, "value": e.value,
                           "unit": e.unit}
    if e.range is not None:
        out["range"] = list(e.range)
    if e.spread is not None:
        out["spread"] = e.spread
    out.update(e.ints)
    if e.prompts:
        out["prompts"] = list(e.prompts)
    for key, default in (("device", "pl"), ("span", "wall"), ("per", None), ("part_of", None),
                         ("fit", True), ("note", "")):
        if getattr(e, key) != default:
            out[key] = getattr(e, key)
    if base is not None and e.config != base:
        out["config"] = {k: getattr(e.config, k) for k in CONFIG_KEYS
                         if getattr(e.config, k) != getattr(base, k)}
    elif base is None:
        out["config"] = e.config.to_dict()
    out["source"] = e.source
    return out


def log_to_json(log: MeasurementLog) -> str:
    """The log as the file format (what ``--log FILE`` writes)."""
    data = {"format": FORMAT, "version": VERSION, "title": log.title, "created": log.created,
            "source": log.source, "config": log.config.to_dict(),
            "entries": [entry_to_dict(e, log.config) for e in log.entries]}
    return json.dumps(data, indent=1, allow_nan=False) + "\n"


def check_config(log: MeasurementLog, board, design=None, board_file: str = "") -> None:
    """Each entry's configuration must be the board (and plan engine) it is applied to.

    A log measured on another board, at another PS clock or DDR rate, or on another engine
    than the plan's would fit parameters to a configuration the projections do not describe.
    """
    theirs = board_file or board.path or board.name
    checks = (("ps_clock_mhz", board.ps_cpu.clock_mhz),
              ("ddr_transfer_rate_mts", board.ddr.transfer_rate_mts))
    for i, e in enumerate(log.entries):
        cfg = e.config
        where = f"{log.path}: entries[{i}] ({e.id}): config"
        if cfg.board.strip().lower() != board.name.strip().lower():
            raise DseError(f"{where}.board: expected {board.name!r} (the board file {theirs}), "
                           f"got {cfg.board!r}")
        for key, want in checks:
            got = getattr(cfg, key)
            if got is not None and abs(got / want - 1) > 0.01:
                raise DseError(f"{where}.{key}: expected {want:g} (the board file {theirs}), "
                               f"got {got:g}")
        if design is not None and cfg.engine and e.device == "pl":
            for key in ("pe", "simd", "packing", "engines", "clock_mhz"):
                got = cfg.engine.get(key)
                want = getattr(design, key)
                if got is not None and got != want:
                    raise DseError(f"{where}.engine.{key}: expected {want!r} (the plan's "
                                   f"engine), got {got!r}")
