"""The Profile data model and its versioned JSON format (``"format": 1``).

A Profile is what every later stage reads: the host it was measured on, phase timings,
one record per module (shapes, calls, times, per-phase times where known), generated tokens,
the memory timeline and where it all came from. Values the source did not hold are ``None``
(unknown), never invented.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from dse.errors import DseError, located
from dse.io import read_text

FORMAT_VERSION = 1

#: Phase keys, in run order. ``detokenize`` is the seed's "Detokenization (解码)".
PHASES = ("tokenizer_load", "model_load", "encode", "prefill", "decode", "detokenize")

#: Linear roles of a BitNet/Llama decoder layer, in execution order, plus the head.
LINEAR_ROLES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
                "lm_head")


@dataclass(frozen=True)
class HostRoofline:
    """Measured peaks of the profiling host, used to scale host times to another CPU."""

    peak_fp32_gflops: float | None = None
    peak_bf16_gflops: float | None = None
    memory_bandwidth_gb_s: float | None = None
    method: str = ""


@dataclass(frozen=True)
class SystemInfo:
    """The host the profile was measured on."""

    cpu_model: str
    arch: str = ""
    physical_cores: int | None = None
    logical_cores: int | None = None
    torch_threads: int | None = None
    base_mhz: float | None = None
    current_mhz: float | None = None
    reference_mhz: float | None = None
    roofline: HostRoofline = field(default_factory=HostRoofline)

    @property
    def normalization(self) -> float:
        """normalized = measured x (current / reference), as in the seed report; 1.0 if unknown."""
        if self.current_mhz and self.reference_mhz:
            return self.current_mhz / self.reference_mhz
        return 1.0


@dataclass(frozen=True)
class Phase:
    """One phase of the run (see ``PHASES``)."""

    name: str
    ms: float
    normalized_ms: float | None = None
    mem_delta_mb: float | None = None


@dataclass(frozen=True)
class Outlier:
    """A module whose time is far above its same-role siblings.

    ``kind`` is ``"warmup"`` for a first-call artefact: the excess is paid once, so later
    stages use ``steady_total_ms`` (the siblings' median) instead of the measured total.
    """

    kind: str
    ratio: float
    steady_total_ms: float
    excess_ms: float
    reason: str


@dataclass(frozen=True)
class ModuleRecord:
    """One module's measurements, summed over all its calls."""

    name: str
    module_type: str
    role: str
    layer_index: int | None
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    params: int | None
    calls: int
    total_ms: float
    prefill_ms: float | None = None
    decode_ms: float | None = None
    prefill_calls: int | None = None
    decode_calls: int | None = None
    outlier: Outlier | None = None

    @property
    def in_features(self) -> int:
        return int(self.input_shape[-1])

    @property
    def out_features(self) -> int:
        return int(self.output_shape[-1])

    @property
    def steady_total_ms(self) -> float:
        """Total time with a flagged warm-up excess removed."""
        return self.outlier.steady_total_ms if self.outlier else self.total_ms

    @property
    def is_linear(self) -> bool:
        return self.module_type == "Linear"


@dataclass(frozen=True)
class Token:
    """One generated token and the time its decode step took."""

    index: int
    token_id: int | None
    text: str
    ms: float
    normalized_ms: float | None = None
    mem_mb: float | None = None


@dataclass(frozen=True)
class MemorySample:
    """One point of the memory timeline (process and system, MB = 2**20 bytes)."""

    t_s: float
    rss_mb: float
    vms_mb: float | None = None
    sys_used_mb: float | None = None
    sys_total_mb: float | None = None


@dataclass(frozen=True)
class Provenance:
    """What produced the profile, from what, when, with which versions."""

    tool: str
    created: str
    source: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Profile:
    """A model's measured run on one host."""

    model: str
    dtype: str
    system: SystemInfo
    phases: tuple[Phase, ...]
    modules: tuple[ModuleRecord, ...]
    tokens: tuple[Token, ...]
    memory: tuple[MemorySample, ...]
    provenance: Provenance
    prompt_tokens: int | None = None
    peak_memory_mb: float | None = None
    #: When the run was measured, as the source wrote it (the seed's 生成时间); ``None`` if
    #: unknown. Distinct from ``provenance.created``, which is when this Profile was made.
    measured_at: str | None = None
    report_lang: str = "zh"
    #: The model's transformers config fields (hidden_size, num_attention_heads, ...), which
    #: the operator list is built from; ``None`` when the source had none (the seed import).
    model_config: dict[str, Any] | None = None
    format: int = FORMAT_VERSION

    # -- views used by the cost model and the reports ---------------------------------------
    @property
    def linears(self) -> tuple[ModuleRecord, ...]:
        return tuple(m for m in self.modules if m.is_linear)

    def phase(self, name: str) -> Phase | None:
        return next((p for p in self.phases if p.name == name), None)

    @property
    def generated_tokens(self) -> int:
        return len(self.tokens)

    @property
    def decode_ms_per_token(self) -> float | None:
        """Mean measured time of one generated token (the seed's 平均每 Token 耗时)."""
        if self.tokens:
            return sum(t.ms for t in self.tokens) / len(self.tokens)
        return None


# -- JSON ------------------------------------------------------------------------------------

def _clean(obj: Any) -> Any:
    """Make a dataclass tree JSON-safe: tuples -> lists, NaN -> None."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def profile_to_dict(profile: Profile) -> dict[str, Any]:
    data = _clean(asdict(profile))
    data = {"format": data.pop("format"), **data}
    return data


def profile_to_json(profile: Profile) -> str:
    return json.dumps(profile_to_dict(profile), ensure_ascii=False, indent=1)


def _build(cls: type, data: Any, path: str, where: str) -> Any:
    """Construct dataclass ``cls`` from a JSON mapping, naming the field on any mismatch."""
    if not isinstance(data, dict):
        raise located(path, where or "(top level)", f"an object for {cls.__name__}",
                      type(data).__name__)
    names = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise located(path, f"{where}.{unknown[0]}".lstrip("."), "no such field (unknown key)")
    kwargs: dict[str, Any] = {}
    for name, f in names.items():
        sub = f"{where}.{name}".lstrip(".")
        if name not in data:
            if f.default is not MISSING or f.default_factory is not MISSING:
                continue
            raise located(path, sub, "a value (field is missing)")
        kwargs[name] = data[name]
    return cls(**kwargs)


_NESTED = {
    "system": SystemInfo,
    "provenance": Provenance,
}


def _num(path: str, where: str, value: Any, *, allow_none: bool = True) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise located(path, where, "a number", value)
    if not math.isfinite(value) or value < 0:
        raise located(path, where, "a finite number >= 0", value)
    return float(value)


def profile_from_dict(data: Any, path: str = "<profile>") -> Profile:
    """Validate and build a Profile from its JSON form."""
    if not isinstance(data, dict):
        raise located(path, "", "a JSON object holding a dse profile", type(data).__name__)
    fmt = data.get("format")
    if fmt != FORMAT_VERSION:
        raise located(path, "format", f"{FORMAT_VERSION} (a dse profile)", fmt)
    try:
        sysd = dict(data["system"])
        sysd["roofline"] = _build(HostRoofline, sysd.get("roofline", {}), path, "system.roofline")
        system = _build(SystemInfo, sysd, path, "system")
        prov = dict(data["provenance"])
        prov["notes"] = tuple(prov.get("notes", ()))
        provenance = _build(Provenance, prov, path, "provenance")
        phases = tuple(_build(Phase, p, path, f"phases.{i}") for i, p in enumerate(data["phases"]))
        modules = []
        for i, m in enumerate(data["modules"]):
            m = dict(m)
            where = f"modules.{i}"
            for key in ("input_shape", "output_shape"):
                shape = m.get(key)
                if not isinstance(shape, list) or not shape or not all(
                        isinstance(d, int) and d > 0 for d in shape):
                    raise located(path, f"{where}.{key}", "a list of positive integers", shape)
                m[key] = tuple(shape)
            _num(path, f"{where}.total_ms", m.get("total_ms"), allow_none=False)
            if m.get("outlier") is not None:
                m["outlier"] = _build(Outlier, m["outlier"], path, f"{where}.outlier")
            modules.append(_build(ModuleRecord, m, path, where))
        tokens = tuple(_build(Token, t, path, f"tokens.{i}") for i, t in enumerate(data["tokens"]))
        memory = tuple(_build(MemorySample, s, path, f"memory.{i}")
                       for i, s in enumerate(data["memory"]))
    except KeyError as exc:
        raise located(path, str(exc.args[0]), "a value (field is missing)") from None
    except TypeError as exc:
        raise located(path, "", f"a dse profile ({exc})") from None
    rest = {k: v for k, v in data.items()
            if k not in ("system", "provenance", "phases", "modules", "tokens", "memory")}
    top = {"system": system, "provenance": provenance, "phases": phases,
           "modules": tuple(modules), "tokens": tokens, "memory": memory, **rest}
    return _build(Profile, top, path, "")


def load_profile(path: str | Path) -> Profile:
    """Read a profile JSON file."""
    p = Path(path)
    text = read_text(p, "profile")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DseError(f"{p}: line {exc.lineno}: expected JSON ({exc.msg})") from None
    return profile_from_dict(data, str(p))


_LAYER_RE = re.compile(r"(?:^|\.)layers\.(\d+)\.")


def layer_index_of(name: str) -> int | None:
    """``model.layers.12.mlp.up_proj`` -> 12; modules outside the decoder stack -> None."""
    m = _LAYER_RE.search(name)
    return int(m.group(1)) if m else None


def role_of(name: str) -> str:
    """The module's role: its last name component (``q_proj``, ``lm_head``, ``input_layernorm``)."""
    return name.rsplit(".", 1)[-1]


__all__ = [
    "FORMAT_VERSION", "LINEAR_ROLES", "PHASES", "HostRoofline", "MemorySample", "ModuleRecord",
    "Outlier", "Phase", "Profile", "Provenance", "SystemInfo", "Token", "layer_index_of",
    "load_profile", "profile_from_dict", "profile_to_dict", "profile_to_json", "replace", "role_of",
]
