"""Plan files: a user-written YAML naming an engine design and the layers it runs.

A plan file is how a person states a design by hand (and how ``dse project`` reproduces a plan
that ``dse explore`` found). Layers are named by ``fnmatch`` globs over the profile's layer
names, so one line covers every block. Everything is checked against the workload before
anything is priced: a glob that matches nothing is almost always a typo that would otherwise
silently project a plan offloading less than intended.

::

    name: my-plan
    engine: {pe: 16, simd: 32, packing: base3, clock_mhz: 250, engines: 2}
    offload: ["model.layers.*.mlp.*"]
    resident: ["model.layers.0.mlp.down_proj"]   # optional, a subset of offload
    fuse: true                                   # optional
    runtime: native                              # optional: PS runtime, torch or native
    head_top_k: 256                              # optional: an offloaded head without a dense
                                                 # unit runs two-stage, rescoring this many
    glue: {passes: 2, cycles_per_elem: 1}        # optional: an FFN glue unit in the PL
    attention: {count: 2}                        # optional: attention units (kv_attn) in the
                                                 # PL: count, group, head_dim, max_kv_heads,
                                                 # max_positions, latency_cycles (omitted:
                                                 # the engine template's default build)
    kv_dtype: int8                               # optional: the KV cache the plan keeps
    prompt_group: 4                              # optional: prompt positions per forward
                                                 # (at most engine.vectors; default: it)
    scenario: {context_tokens: 65}               # optional: the scenario the plan's figures
                                                 # hold for (context_tokens, prompt_tokens,
                                                 # sequences, phase), dse project's defaults

Every PL unit kind (``dse.model.units``) has its own top-level key, read by that kind.
"""

from __future__ import annotations

import re
from dataclasses import MISSING, fields
from fnmatch import fnmatchcase
from pathlib import Path

from dse.errors import located
from dse.io import load_yaml
from dse.model.cpu import RUNTIMES
from dse.model.engine import EngineDesign
from dse.model.ops import KV_DTYPES
from dse.model.project import Plan
from dse.model.units import kinds
from dse.model.workload import Layer, Workload
from dse.schema import MAX_COUNT, QUANTITIES, check_quantity

#: A plan's own fields; each registered PL unit kind adds its key (``top_keys``).
PLAN_KEYS = ("name", "engine", "offload", "resident", "fuse", "note", "runtime", "head_top_k",
             "kv_dtype", "prompt_group", "scenario")
#: What a plan's ``scenario:`` may set.
SCENARIO_KEYS = ("context_tokens", "prompt_tokens", "sequences", "phase")


def top_keys() -> tuple[str, ...]:
    return (*PLAN_KEYS, *(k.name for k in kinds()))


TOP_KEYS = top_keys()
#: Engine fields a plan may set (buildable/build_note are the engine template's to say).
ENGINE_KEYS = tuple(f.name for f in fields(EngineDesign)
                    if f.name not in ("buildable", "build_note"))
_REQUIRED_ENGINE = tuple(f.name for f in fields(EngineDesign)
                         if f.default is MISSING and f.default_factory is MISSING)
#: Integer engine fields that may be 0; EngineDesign.validate checks the >= 1 ones.
_NON_NEG_INT = ("resident_bytes", "head_macs")
#: More engines than any part has DMA channels and HP-port shares for (a ZU19EG has 4 HP
#: ports); the cost model sums engines one by one, so an absurd count must stop here.
MAX_ENGINES = int(QUANTITIES["engines"].high)
#: Integer engine fields (checked here for type and the sanity ceiling ``MAX_COUNT``).
_INT_FIELDS = ("pe", "simd", "engines", "vectors", "stream_bits", "max_k", *_NON_NEG_INT)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _engine(data: object, path: str, widest: Layer | None) -> EngineDesign:
    """The ``engine:`` mapping as a validated EngineDesign."""
    if not isinstance(data, dict):
        raise located(path, "engine", "a mapping of engine fields (pe, simd, packing, ...)",
                      None if data is None else type(data).__name__)
    unknown = sorted(str(k) for k in data if k not in ENGINE_KEYS)
    if unknown:
        raise located(path, f"engine.{unknown[0]}",
                      f"one of the engine fields ({', '.join(ENGINE_KEYS)})")
    for name in _REQUIRED_ENGINE:
        if name not in data:
            raise located(path, f"engine.{name}", "a value (field is missing)")
    for name in _INT_FIELDS:
        low = 0 if name in _NON_NEG_INT else 1
        if name in data and not (_is_int(data[name]) and data[name] >= low):
            raise located(path, f"engine.{name}", f"an integer >= {low}", data[name])
        if name in data and data[name] > MAX_COUNT:
            raise located(path, f"engine.{name}", "an integer <= 2**53", data[name])
    if _is_int(data.get("engines")) and data["engines"] > MAX_ENGINES:
        raise located(path, "engine.engines", f"an integer <= {MAX_ENGINES}", data["engines"])
    if "packing" in data and not isinstance(data["packing"], str):
        raise located(path, "engine.packing", "a packing name (a string)", data["packing"])
    kwargs = dict(data)
    check_quantity(path, "engine.clock_mhz", "pl_clock_mhz", kwargs.get("clock_mhz", 250.0))
    head = kwargs.get("head")
    if isinstance(head, str) and head.lower() == "none":
        kwargs["head"] = None
    if "max_k" not in kwargs and widest is not None:
        kwargs["max_k"] = widest.k
    design = EngineDesign(**kwargs).validate(f"{path}: engine")
    if widest is not None and design.max_k < widest.k:
        raise located(path, "engine.max_k", f"an integer >= {widest.k} (K of {widest.name}, the "
                      f"widest offloaded layer)", design.max_k)
    return design


def _select(patterns: object, names: list[str], path: str, field: str) -> list[str]:
    """Layer names matched by a list of globs, in workload order; every glob must match."""
    if not isinstance(patterns, list):
        raise located(path, field, "a list of layer-name globs",
                      None if patterns is None else type(patterns).__name__)
    chosen: set[str] = set()
    for i, pat in enumerate(patterns):
        if not isinstance(pat, str) or not pat:
            raise located(path, f"{field}[{i}]", "a layer-name glob (a non-empty string)", pat)
        hits = [n for n in names if fnmatchcase(n, pat)]
        if not hits:
            raise located(path, f"{field}[{i}]", f"a glob matching at least one of the "
                          f"workload's {len(names)} layer names (e.g. {names[0]})", pat)
        chosen.update(hits)
    return [n for n in names if n in chosen]


def plan_from_mapping(data: object, wl: Workload, path: str | Path = "<plan>",
                      template=None) -> Plan:
    """Validate a parsed plan YAML against ``wl`` and build the Plan (pure). ``template``: the
    engine template whose unit sections fill a unit entry's omitted build parameters and say
    whether the overlay builds it (None: no sections, every unit a what-if)."""
    path = str(path)
    keys = top_keys()
    if not isinstance(data, dict):
        raise located(path, "", "a YAML mapping with engine: and offload:",
                      None if data is None else type(data).__name__)
    unknown = sorted(str(k) for k in data if k not in keys)
    if unknown:
        raise located(path, unknown[0], f"one of the plan fields ({', '.join(keys)})")
    for key in ("engine", "offload"):
        if key not in data:
            raise located(path, key, "a value (field is missing)")
    name = data.get("name", Path(path).stem)
    if not isinstance(name, str) or not name.strip() or re.search(r"[\x00-\x1f\x7f]", name):
        raise located(path, "name", "a non-empty string on one line (no control characters: "
                      "it heads the projection and names the plan in JSON)", name)
    note = data.get("note", "")
    if not isinstance(note, str):
        raise located(path, "note", "a string", note)
    fuse = data.get("fuse", True)
    if not isinstance(fuse, bool):
        raise located(path, "fuse", "true or false", fuse)
    runtime = data.get("runtime", "native")
    if runtime not in RUNTIMES:
        raise located(path, "runtime", f"one of {', '.join(RUNTIMES)}", runtime)
    top_k = data.get("head_top_k", 256)
    if not _is_int(top_k) or not 1 <= top_k <= wl.config.vocab:
        raise located(path, "head_top_k", f"an integer from 1 to {wl.config.vocab} (the "
                      f"vocabulary)", top_k)
    names = [layer.name for layer in wl.layers]
    if not names:
        raise located(path, "offload", "a workload with at least one layer")
    offload = _select(data["offload"], names, path, "offload")
    resident_globs = data.get("resident")
    resident = _select([] if resident_globs is None else resident_globs, names, path,
                       "resident")
    off = set(offload)
    stray = [n for n in resident if n not in off]
    if stray:
        raise located(path, "resident", "layers that are also in offload", stray[0])
    chosen = [layer for layer in wl.layers if layer.name in off]
    for layer in chosen:
        if layer.n < 1 or layer.k < 1:
            raise located(path, "offload", f"layers with N >= 1 and K >= 1 ({layer.name} has "
                          f"N={layer.n}, K={layer.k})")
    widest = max(chosen, key=lambda layer: layer.k, default=None)
    design = _engine(data["engine"], path, widest)
    units = tuple(kind.from_mapping(data[kind.name], path, _section(template, kind.name))
                  for kind in kinds() if data.get(kind.name) is not None)
    kv = data.get("kv_dtype")
    if kv is not None and (not isinstance(kv, str) or kv not in KV_DTYPES):
        raise located(path, "kv_dtype", f"one of {', '.join(KV_DTYPES)}", kv)
    group = data.get("prompt_group")
    if group is not None and not (_is_int(group) and 1 <= group <= design.vectors):
        raise located(path, "prompt_group", f"an integer from 1 to engine.vectors "
                      f"({design.vectors}: a prompt group is at most the vectors the engine "
                      f"holds per weight pass)", group)
    if template is not None and design.vectors_per_clock not in template.vpc_values:
        raise located(path, "engine.vectors_per_clock", f"one of "
                      f"{', '.join(map(str, template.vpc_values))} (the vectors per clock the "
                      f"engine template builds, {template.path or 'its parameters.vpc'})",
                      design.vectors_per_clock)
    return Plan(name, design, frozenset(offload), frozenset(resident), fuse, note, runtime,
                top_k, units, kv, group)


def scenario_from_mapping(data: object, path: str | Path = "<plan>") -> dict:
    """A plan's ``scenario:`` (the scenario its note's figures hold for), checked: the
    defaults ``dse project`` prices the plan at unless an option says otherwise."""
    path = str(path)
    sc = data.get("scenario") if isinstance(data, dict) else None
    if sc is None:
        return {}
    if not isinstance(sc, dict):
        raise located(path, "scenario", f"a mapping of {', '.join(SCENARIO_KEYS)}",
                      type(sc).__name__)
    unknown = sorted(str(k) for k in sc if k not in SCENARIO_KEYS)
    if unknown:
        raise located(path, f"scenario.{unknown[0]}", f"one of {', '.join(SCENARIO_KEYS)}")
    for key in ("context_tokens", "prompt_tokens", "sequences"):
        v = sc.get(key)
        if v is not None and not (_is_int(v) and 1 <= v <= MAX_COUNT):
            raise located(path, f"scenario.{key}", "an integer >= 1", v)
    if sc.get("phase") not in (None, "decode", "prefill"):
        raise located(path, "scenario.phase", "decode or prefill", sc.get("phase"))
    return {k: v for k, v in sc.items() if v is not None}


def check_units_fit(plan: Plan, board, c, path: str | Path) -> None:
    """Refuse (one line naming the unit kind) a plan whose PL units push a design that fits
    the board's caps beyond them: the units were asked for, and cannot be built there."""
    from dse.model.engine import engine_resources

    res = engine_resources(plan.design, board, c)
    if res.overflow(board):
        return  # the engines alone do not fit: the projection says so
    for u in plan.units:
        res = res + u.resources(c)
        over = res.overflow(board)
        if over:
            raise located(path, u.kind, f"units that fit {board.stem}'s fabric beside the "
                          f"engines; with {u.label} the plan needs {', '.join(over)}")


def _section(template, kind: str):
    """The engine template's section of a unit kind (None: no template, or no such unit)."""
    return None if template is None else template.unit_section(kind)


def load_plan(path: str | Path, wl: Workload, template=None) -> Plan:
    """Read a plan YAML (safe loader only) and validate it against ``wl`` and ``template``
    (default: the shipped engine template)."""
    from dse.model.template import shipped_template

    p = Path(path)
    return plan_from_mapping(load_yaml(p, "plan"), wl, p,
                             shipped_template() if template is None else template)


def load_plan_file(path: str | Path, wl: Workload, template=None) -> tuple[Plan, dict]:
    """``load_plan`` and the plan's ``scenario:`` (``scenario_from_mapping``), one read."""
    from dse.model.template import shipped_template

    p = Path(path)
    data = load_yaml(p, "plan")
    plan = plan_from_mapping(data, wl, p, shipped_template() if template is None else template)
    return plan, scenario_from_mapping(data, p)
