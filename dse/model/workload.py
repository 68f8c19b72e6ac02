"""The workload: a profile's Linear layers as the cost model sees them.

A ``Layer`` is one Linear (N outputs, K inputs) with its measured host time per call (a
flagged warm-up excess removed), whether its weights are ternary (the lm_head is not), and the
group of layers that share its input (q/k/v, gate/up) and may be fused into one accelerator
call. A ``Workload`` adds what is not Linear: measured token time, non-Linear time and the
host's compute and memory figures, each with a note on where it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from dse.errors import DseError
from dse.profile.format import Profile

#: Roles sharing one quantized input (facts.md section 1: q/k/v and gate/up).
FUSE_GROUPS = {"q_proj": "qkv", "k_proj": "qkv", "v_proj": "qkv",
               "gate_proj": "gateup", "up_proj": "gateup"}

DTYPE_BYTES = {"float32": 4, "torch.float32": 4, "bfloat16": 2, "torch.bfloat16": 2,
               "float16": 2, "torch.float16": 2}


@dataclass(frozen=True)
class HostSpec:
    """Compute and memory peaks of a CPU, with their source."""

    name: str
    peak_fp32_gflops: float
    memory_bandwidth_gb_s: float
    clock_mhz: float
    source: str


@dataclass(frozen=True)
class Layer:
    """One Linear layer of the workload."""

    name: str
    role: str
    layer_index: int | None
    n: int
    k: int
    ternary: bool
    #: Host time of one forward call at decode (M=1), steady state, ms.
    host_call_ms: float
    calls: int
    measured_total_ms: float
    warmup_excess_ms: float = 0.0

    @property
    def weights(self) -> int:
        return self.n * self.k

    @property
    def fuse_key(self) -> str:
        """Layers with the same key share an input and can run as one accelerator call."""
        g = FUSE_GROUPS.get(self.role)
        return f"{self.layer_index}.{g}" if g and self.layer_index is not None else self.name


@dataclass(frozen=True)
class Workload:
    """Everything the cost model needs from a profile."""

    model: str
    dtype_bytes: int
    layers: tuple[Layer, ...]
    host: HostSpec
    #: Measured mean time of one generated token, ms.
    token_ms: float
    #: Token time not spent in Linear layers (norms, attention core, sampling, overhead), ms.
    nonlinear_ms: float
    #: Prefill phase as measured, warm-up excess removed, ms (None if unknown).
    prefill_steady_ms: float | None
    prompt_tokens: int | None
    #: KV-cache bytes per token of context (bf16 K and V of every layer).
    kv_bytes_per_token: int
    notes: tuple[str, ...]

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    @property
    def linear_call_ms(self) -> float:
        return sum(layer.host_call_ms for layer in self.layers)


_HOSTS_FILE = Path(__file__).resolve().parents[1] / "data" / "hosts.yaml"


def known_host(cpu_model: str) -> HostSpec | None:
    """Peak figures of a CPU from the shipped table (``dse/data/hosts.yaml``), if listed."""
    table = yaml.safe_load(_HOSTS_FILE.read_text(encoding="utf-8")) or {}
    for entry in table.get("hosts", []):
        if entry["match"].lower() in cpu_model.lower():
            return HostSpec(entry["name"], float(entry["peak_fp32_gflops"]),
                            float(entry["memory_bandwidth_gb_s"]), float(entry["clock_mhz"]),
                            entry["source"])
    return None


def host_spec(profile: Profile) -> HostSpec:
    """The profiling host's peaks: measured (in the profile) first, else the shipped table."""
    sysinfo = profile.system
    roof = sysinfo.roofline
    if roof.peak_fp32_gflops and roof.memory_bandwidth_gb_s:
        return HostSpec(sysinfo.cpu_model, roof.peak_fp32_gflops, roof.memory_bandwidth_gb_s,
                        sysinfo.current_mhz or sysinfo.base_mhz or 0.0,
                        f"measured by dse profile ({roof.method or 'host roofline'})")
    spec = known_host(sysinfo.cpu_model)
    if spec is None:
        raise DseError(f"{profile.provenance.source or 'profile'}: system.roofline: expected "
                       f"measured host peaks (run dse profile) or a CPU listed in "
                       f"dse/data/hosts.yaml, got {sysinfo.cpu_model!r}")
    return spec


def workload_from_profile(profile: Profile, where: str = "profile") -> Workload:
    """Build the cost model's view of a profile (pure)."""
    linears = profile.linears
    if not linears:
        raise DseError(f"{where}: modules: expected at least one Linear layer, got none")
    notes: list[str] = []
    layers = []
    for m in linears:
        if m.calls < 1:
            raise DseError(f"{where}: {m.name}.calls: expected >= 1, got {m.calls}")
        excess = m.outlier.excess_ms if m.outlier else 0.0
        if m.decode_ms is not None and m.decode_calls:
            call_ms = m.decode_ms / m.decode_calls
        else:
            call_ms = m.steady_total_ms / m.calls
        layers.append(Layer(
            name=m.name, role=m.role, layer_index=m.layer_index, n=m.out_features,
            k=m.in_features, ternary=m.role != "lm_head", host_call_ms=call_ms, calls=m.calls,
            measured_total_ms=m.total_ms, warmup_excess_ms=excess))
    if all(m.decode_ms is None for m in linears):
        notes.append("per-call host time = mean over all calls (the profile has no "
                     "prefill/decode split)")
    flagged = [m for m in linears if m.outlier]
    if flagged:
        notes.append("warm-up outliers replaced by their siblings' median: " + ", ".join(
            f"{m.name} ({m.total_ms:.0f} -> {m.outlier.steady_total_ms:.0f} ms)"
            for m in flagged))
    linear_ms = sum(layer.host_call_ms for layer in layers)
    token_ms = profile.decode_ms_per_token
    if token_ms is None:
        dec = profile.phase("decode")
        if dec is None or not profile.generated_tokens:
            token_ms = linear_ms
            notes.append("token time unknown: non-Linear time taken as 0")
        else:
            token_ms = dec.ms / max(1, profile.generated_tokens)
    nonlinear = max(0.0, token_ms - linear_ms)
    pre = profile.phase("prefill")
    prefill_steady = None
    if pre is not None:
        prefill_steady = max(0.0, pre.ms - sum(layer.warmup_excess_ms for layer in layers))
    kv_dim = next((layer.n for layer in layers if layer.role == "k_proj"), 0)
    n_blocks = len({layer.layer_index for layer in layers if layer.layer_index is not None})
    kv_bytes = 2 * n_blocks * kv_dim * 2
    dtype_bytes = DTYPE_BYTES.get(profile.dtype, 4)
    return Workload(profile.model, dtype_bytes, tuple(layers), host_spec(profile), token_ms,
                    nonlinear, prefill_steady, profile.prompt_tokens, kv_bytes, tuple(notes))
