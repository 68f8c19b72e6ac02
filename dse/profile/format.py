"""The Profile data model and its versioned JSON format (``"format": 1``).

A Profile is what every later stage reads: the host it was measured on, phase timings,
one record per module (shapes, calls, times, per-phase times where known), generated tokens,
the memory timeline and where it all came from. Values the source did not hold are ``None``
(unknown), never invented.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, with_config

from dse.errors import located
from dse.io import json_text, load_json
from dse.schema import STRICT, FiniteFloat, NonNegFloat, NonNegInt, PosFloat, PosInt
from dse.schema import validate as validate_schema

FORMAT_VERSION = 1

#: Phase keys, in run order. ``detokenize`` is the seed's "Detokenization (解码)".
PHASES = ("tokenizer_load", "model_load", "encode", "prefill", "decode", "detokenize")

#: Linear roles of a BitNet/Llama decoder layer, in execution order, plus the head.
LINEAR_ROLES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
                "lm_head")

#: A tensor shape: at least one dimension, each >= 1.
Shape = Annotated[tuple[PosInt, ...], Field(min_length=1)]
Name = Annotated[str, Field(min_length=1)]


@with_config(STRICT)
@dataclass(frozen=True)
class HostRoofline:
    """Measured peaks of the profiling host, used to scale host times to another CPU."""

    peak_fp32_gflops: PosFloat | None = None
    peak_bf16_gflops: PosFloat | None = None
    memory_bandwidth_gb_s: PosFloat | None = None
    method: str = ""


@with_config(STRICT)
@dataclass(frozen=True)
class SystemInfo:
    """The host the profile was measured on."""

    cpu_model: str
    arch: str = ""
    physical_cores: PosInt | None = None
    logical_cores: PosInt | None = None
    torch_threads: PosInt | None = None
    base_mhz: PosFloat | None = None
    current_mhz: PosFloat | None = None
    reference_mhz: PosFloat | None = None
    roofline: HostRoofline = field(default_factory=HostRoofline)

    @property
    def normalization(self) -> float:
        """normalized = measured x (current / reference), as in the seed report; 1.0 if unknown."""
        if self.current_mhz and self.reference_mhz:
            return self.current_mhz / self.reference_mhz
        return 1.0


@with_config(STRICT)
@dataclass(frozen=True)
class Phase:
    """One phase of the run (see ``PHASES``)."""

    name: Literal[PHASES]  # type: ignore[valid-type]
    ms: NonNegFloat
    normalized_ms: NonNegFloat | None = None
    #: Memory freed during a phase makes this negative.
    mem_delta_mb: FiniteFloat | None = None


@with_config(STRICT)
@dataclass(frozen=True)
class Outlier:
    """A module whose time is far above its same-role siblings.

    ``kind`` is ``"warmup"`` for a first-call artefact: the excess is paid once, so later
    stages use ``steady_total_ms`` (the siblings' median) instead of the measured total.
    """

    kind: Name
    ratio: NonNegFloat
    steady_total_ms: NonNegFloat
    excess_ms: FiniteFloat
    reason: str


@with_config(STRICT)
@dataclass(frozen=True)
class ModuleRecord:
    """One module's measurements, summed over all its calls."""

    name: Name
    module_type: Name
    role: str
    layer_index: NonNegInt | None
    input_shape: Shape
    output_shape: Shape
    params: NonNegInt | None
    #: Modules never called are not recorded: every record has at least one call.
    calls: PosInt
    total_ms: NonNegFloat
    prefill_ms: NonNegFloat | None = None
    decode_ms: NonNegFloat | None = None
    prefill_calls: NonNegInt | None = None
    decode_calls: NonNegInt | None = None
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


@with_config(STRICT)
@dataclass(frozen=True)
class Token:
    """One generated token and the time its decode step took."""

    index: NonNegInt
    token_id: NonNegInt | None
    text: str
    #: A decode step always takes time (the workload divides by the mean token time).
    ms: PosFloat
    normalized_ms: NonNegFloat | None = None
    mem_mb: NonNegFloat | None = None


@with_config(STRICT)
@dataclass(frozen=True)
class MemorySample:
    """One point of the memory timeline (process and system, MB = 2**20 bytes)."""

    t_s: NonNegFloat
    rss_mb: NonNegFloat
    vms_mb: NonNegFloat | None = None
    sys_used_mb: NonNegFloat | None = None
    sys_total_mb: NonNegFloat | None = None


@with_config(STRICT)
@dataclass(frozen=True)
class Provenance:
    """What produced the profile, from what, when, with which versions."""

    tool: str
    created: str
    source: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


@with_config(STRICT)
@dataclass(frozen=True)
class Profile:
    """A model's measured run on one host."""

    model: Name
    dtype: Name
    system: SystemInfo
    phases: tuple[Phase, ...]
    modules: tuple[ModuleRecord, ...]
    tokens: tuple[Token, ...]
    memory: tuple[MemorySample, ...]
    provenance: Provenance
    prompt_tokens: PosInt | None = None
    peak_memory_mb: NonNegFloat | None = None
    #: When the run was measured, as the source wrote it (the seed's 生成时间); ``None`` if
    #: unknown. Distinct from ``provenance.created``, which is when this Profile was made.
    measured_at: str | None = None
    report_lang: Literal["zh", "en"] = "zh"
    #: The model's transformers config fields (hidden_size, num_attention_heads, ...), which
    #: the operator list is built from; ``None`` when the source had none (the seed import).
    model_config: dict[str, Any] | None = None
    #: The report this profile was written with (``dse profile``) or imported from
    #: (``dse import``), relative to the profile JSON's folder: ``dse explore --profile``
    #: adds its section there. ``None``: not known (the report goes under ``reports/``).
    report: str | None = None
    format: Literal[1] = FORMAT_VERSION

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
    return json_text(profile_to_dict(profile), "profile").rstrip("\n")


def profile_from_dict(data: Any, path: str = "<profile>") -> Profile:
    """Validate and build a Profile from its JSON form (every field typed, finite, in range)."""
    if not isinstance(data, dict):
        raise located(path, "", "a JSON object holding a dse profile", type(data).__name__)
    fmt = data.get("format")
    if fmt != FORMAT_VERSION:
        raise located(path, "format", f"{FORMAT_VERSION} (a dse profile)", fmt)
    profile = validate_schema(Profile, data, path)
    _check_consistent(profile, path)
    return profile


def profile_from_checked_dict(data: dict[str, Any]) -> Profile:
    """Build a Profile from the JSON form of one that already passed ``profile_from_dict``:
    the profile shipped in the package (``dse.profile.default``), which a test builds both
    ways and compares field by field and type by type. Pydantic's schema for the profile
    takes about 15 ms to construct, which every ``dse explore`` and ``dse project`` on the
    embedded default paid (issue 28); this builds the same frozen tree directly (JSON arrays
    become the tuples the schema makes). Never for a file a user names: that is validated."""
    system = dict(data["system"])
    system["roofline"] = HostRoofline(**system.get("roofline", {}))
    modules = tuple(ModuleRecord(**{
        **m, "input_shape": tuple(m["input_shape"]), "output_shape": tuple(m["output_shape"]),
        "outlier": None if m.get("outlier") is None else Outlier(**m["outlier"])})
        for m in data["modules"])
    provenance = dict(data["provenance"])
    provenance["notes"] = tuple(provenance.get("notes", ()))
    return Profile(**{
        **data, "system": SystemInfo(**system), "phases": tuple(Phase(**p) for p in data["phases"]),
        "modules": modules, "tokens": tuple(Token(**t) for t in data["tokens"]),
        "memory": tuple(MemorySample(**m) for m in data["memory"]),
        "provenance": Provenance(**provenance)})


def _check_consistent(profile: Profile, path: str) -> None:
    """What no single field says: a Linear layer takes time, a split never exceeds its sum."""
    for i, m in enumerate(profile.modules):
        where = f"modules.{i}"
        if m.is_linear and not m.total_ms > 0:
            raise located(path, f"{where}.total_ms", f"a time > 0 ({m.name} is a Linear layer "
                          f"called {m.calls} times)", m.total_ms)
        for part in ("prefill_calls", "decode_calls"):
            n = getattr(m, part)
            if n is not None and n > m.calls:
                raise located(path, f"{where}.{part}", f"at most calls ({m.calls})", n)
        if m.decode_ms is not None and m.decode_calls == 0 and m.decode_ms > 0:
            raise located(path, f"{where}.decode_ms", "0 (decode_calls is 0)", m.decode_ms)
        if m.outlier is not None and m.outlier.steady_total_ms > m.total_ms:
            raise located(path, f"{where}.outlier.steady_total_ms",
                          f"at most total_ms ({m.total_ms})", m.outlier.steady_total_ms)


def load_profile(path: str | Path) -> Profile:
    """Read a profile JSON file."""
    p = Path(path)
    return profile_from_dict(load_json(p, "profile"), str(p))


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
