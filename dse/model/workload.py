"""The workload: a profile's Linear layers as the cost model sees them.

A ``Layer`` is one Linear (N outputs, K inputs) with its measured host time per call (a
flagged warm-up excess removed), whether its weights are ternary (the lm_head is not), and the
group of layers that share its input (q/k/v, gate/up) and may be fused into one accelerator
call. A ``Workload`` adds the model's other operators (``dse.model.ops``, built from its config),
the profile's measurements of them where it has any, and the host's compute and memory
figures, each with a note on where it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from dse.errors import DseError
from dse.model.arch import ModelConfig, config_from_linears, config_from_mapping
from dse.model.cores import Core, find_core
from dse.model.cpu import RUNTIMES, Measured
from dse.model.msg import Msg, msg
from dse.model.ops import Op, decoder_ops
from dse.profile.format import ModuleRecord, Profile

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
    cores: int = 1
    #: The core microarchitecture (dse.model.cores), where known.
    core: Core | None = None


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

    @cached_property
    def fuse_key(self) -> str:
        """Layers with the same key share an input and can run as one accelerator call."""
        g = FUSE_GROUPS.get(self.role)
        return f"{self.layer_index}.{g}" if g and self.layer_index is not None else self.name


@dataclass(frozen=True)
class Workload:
    """Everything the cost model needs from a profile: the Linears, the other operators of a
    forward (from the model's config), and what the profile measured of them on the host."""

    model: str
    config: ModelConfig
    dtype_bytes: int
    layers: tuple[Layer, ...]
    ops: tuple[Op, ...]
    #: Measured host time per call of profiled non-Linear modules, by role:
    #: (role, decode measurement, prefill measurement or None).
    measured: tuple[tuple[str, Measured | None, Measured | None], ...]
    #: The profiled host (None: a model config alone, no host measured).
    host: HostSpec | None
    #: Measured mean time of one generated token, ms (None if the profile has no tokens).
    token_ms: float | None
    #: Prefill phase as measured, warm-up excess removed, ms (None if unknown).
    prefill_steady_ms: float | None
    prompt_tokens: int | None
    notes: tuple[Msg, ...]
    #: The CPU runtimes this workload can price: ``torch`` needs a profile's measured host
    #: times, so a workload built from a model config alone has only ``native``.
    runtimes: tuple[str, ...] = RUNTIMES

    @property
    def measured_host(self) -> bool:
        """Whether the workload carries host times measured by a profile."""
        return "torch" in self.runtimes

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def measured_op(self, role: str, phase: str) -> Measured | None:
        """The profile's measurement of module ``role`` in ``phase`` (decode/prefill), if any."""
        for r, dec, pre in self.measured:
            if r == role:
                return pre if phase == "prefill" else dec
        return None

    @property
    def linear_call_ms(self) -> float:
        return sum(layer.host_call_ms for layer in self.layers)


_HOSTS_FILE = Path(__file__).resolve().parents[1] / "data" / "hosts.yaml"


def known_host(cpu_model: str) -> HostSpec | None:
    """Peak figures of a CPU from the shipped table (``dse/data/hosts.yaml``), if listed."""
    from dse.io import parse_yaml

    table = parse_yaml(_HOSTS_FILE.read_text(encoding="utf-8"), "dse/data/hosts.yaml") or {}
    for entry in table.get("hosts", []):
        if entry["match"].lower() in cpu_model.lower():
            return HostSpec(entry["name"], float(entry["peak_fp32_gflops"]),
                            float(entry["memory_bandwidth_gb_s"]), float(entry["clock_mhz"]),
                            entry["source"], int(entry.get("cores", 1)),
                            find_core(entry.get("core", entry["name"])))
    return None


def host_spec(profile: Profile) -> HostSpec:
    """The profiling host's peaks: measured (in the profile) first, else the shipped table."""
    sysinfo = profile.system
    roof = sysinfo.roofline
    if roof.peak_fp32_gflops and roof.memory_bandwidth_gb_s:
        return HostSpec(sysinfo.cpu_model, roof.peak_fp32_gflops, roof.memory_bandwidth_gb_s,
                        sysinfo.current_mhz or sysinfo.base_mhz or 0.0,
                        f"measured by dse profile ({roof.method or 'host roofline'})",
                        sysinfo.physical_cores or 1, find_core(sysinfo.cpu_model))
    spec = known_host(sysinfo.cpu_model)
    if spec is None:
        raise DseError(f"{profile.provenance.source or 'profile'}: system.roofline: expected "
                       f"measured host peaks (run dse profile) or a CPU listed in "
                       f"dse/data/hosts.yaml, got {sysinfo.cpu_model!r}")
    return spec


def _config(profile: Profile, linears: tuple[ModuleRecord, ...], where: str) -> ModelConfig:
    """The model's config: the one the profile carries, else one built from its Linears."""
    blocks = {m.layer_index for m in linears if m.layer_index is not None}
    shapes = {}
    for m in linears:
        shapes.setdefault(m.role, (m.out_features, m.in_features))
    if profile.model_config is not None:
        cfg = config_from_mapping(profile.model_config, f"{where}: model_config")
        q = shapes.get("q_proj")
        if q is not None and (q[1] != cfg.hidden or len(blocks) != cfg.layers):
            raise DseError(f"{where}: model_config: expected hidden_size {q[1]} and "
                           f"{len(blocks)} layers (the profile's Linears), got "
                           f"{cfg.hidden} and {cfg.layers}")
        # every size the profile's Linears show must be the config's
        for role, field, want, got in (
                ("lm_head", "vocab_size", lambda n: n, cfg.vocab),
                ("gate_proj", "intermediate_size", lambda n: n, cfg.intermediate),
                ("k_proj", "num_key_value_heads", lambda n: n // cfg.head_dim, cfg.kv_heads)):
            if role in shapes and want(shapes[role][0]) != got:
                raise DseError(f"{where}: model_config.{field}: expected "
                               f"{want(shapes[role][0])} (the profile's {role} has "
                               f"{shapes[role][0]:,} rows), got {got:,}")
        return cfg
    return config_from_linears(profile.model, shapes, len(blocks), where)


def _measured(profile: Profile, cfg: ModelConfig
              ) -> tuple[tuple[str, Measured | None, Measured | None], ...]:
    """Mean host time per call of each profiled non-Linear module role, per phase.

    Decode calls attend over the prompt plus, on average, half the generated tokens; the
    prefill call runs the whole prompt (M = context = prompt tokens).
    """
    prompt = profile.prompt_tokens or 1
    dec_ctx = prompt + (profile.generated_tokens + 1) // 2
    by_role: dict[str, list[ModuleRecord]] = {}
    for m in profile.modules:
        if not m.is_linear:
            by_role.setdefault(m.role, []).append(m)
    out = []
    for role, mods in by_role.items():
        dec = pre = None
        if all(m.decode_ms is not None and m.decode_calls for m in mods):
            calls = sum(m.decode_calls for m in mods)
            dec = Measured(role, sum(m.decode_ms for m in mods) / calls, 1, min(
                dec_ctx, cfg.max_positions))
        elif all(m.calls for m in mods):
            dec = Measured(role, sum(m.steady_total_ms for m in mods) / sum(m.calls for m in mods),
                           1, min(dec_ctx, cfg.max_positions))
        if profile.prompt_tokens and all(m.prefill_ms is not None and m.prefill_calls
                                         for m in mods):
            calls = sum(m.prefill_calls for m in mods)
            pre = Measured(role, sum(m.prefill_ms for m in mods) / calls, prompt, prompt)
        out.append((role, dec, pre))
    return tuple(out)


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
        notes.append(msg("note.no_split", "per-call host time = mean over all calls (the "
                         "profile has no prefill/decode split)"))
    flagged = [m for m in linears if m.outlier]
    if flagged:
        notes.append(msg("note.outliers", "warm-up outliers replaced by their siblings' "
                         "median: {items}", items=", ".join(
                             f"`{m.name}` ({m.total_ms:.0f} -> {m.outlier.steady_total_ms:.0f} "
                             f"ms)" for m in flagged)))
    cfg = _config(profile, linears, where)
    notes.append(msg("note.config", "operators from the model config: {source}",
                     source=cfg.source))
    measured = _measured(profile, cfg)
    if not measured:
        notes.append(msg("note.linears_only", "the profile measured Linear layers only: "
                         "every other operator under the torch runtime is priced by roofline "
                         "plus PyTorch's per-op dispatch cost"))
    token_ms = profile.decode_ms_per_token
    if token_ms is None:
        dec = profile.phase("decode")
        if dec is not None and profile.generated_tokens:
            token_ms = dec.ms / profile.generated_tokens
    pre = profile.phase("prefill")
    prefill_steady = None
    if pre is not None:
        prefill_steady = max(0.0, pre.ms - sum(layer.warmup_excess_ms for layer in layers))
    dtype_bytes = DTYPE_BYTES.get(profile.dtype, 4)
    return Workload(profile.model, cfg, dtype_bytes, tuple(layers), decoder_ops(cfg), measured,
                    host_spec(profile), token_ms, prefill_steady, profile.prompt_tokens,
                    tuple(notes))


# -- a workload from a model config alone ------------------------------------------------------

#: The module path of each Linear role in a BitNet/Llama checkpoint (transformers' names).
_MODULE = {"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn",
           "o_proj": "self_attn", "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp"}


def workload_from_config(cfg: ModelConfig, host: HostSpec | None = None) -> Workload:
    """The cost model's view of a model from its config alone (pure): every Linear's shape
    from the config, no measured host time, so only the ``native`` runtime (which prices each
    kernel from instruction counts) can price it; ``host`` (a known CPU) serves the
    host-attached view."""
    layers = [Layer(name=f"model.layers.{i}.{_MODULE[role]}.{role}", role=role, layer_index=i,
                    n=n, k=k, ternary=True, host_call_ms=0.0, calls=1, measured_total_ms=0.0)
              for i in range(cfg.layers)
              for role, (n, k) in cfg.linear_shapes().items() if role != "lm_head"]
    n, k = cfg.linear_shapes()["lm_head"]
    layers.append(Layer("lm_head", "lm_head", None, n, k, False, 0.0, 1, 0.0))
    notes = (msg("note.config", "operators from the model config: {source}", source=cfg.source),
             msg("note.no_profile", "no profile: every Linear's shape from the config, no "
                 "host time measured; the torch runtime is not measured (give --profile to "
                 "price it), the native runtime prices each kernel from instruction counts"))
    return Workload(cfg.name, cfg, 2, tuple(layers), decoder_ops(cfg), (), host, None, None, None,
                    notes, runtimes=("native",))


def with_config(wl: Workload, cfg: ModelConfig, where: str) -> Workload:
    """A profile's workload with the operators of ``cfg`` (a model config the user named), or
    a one-line error naming ``where`` if the config's shapes contradict the profile's Linears
    (pure)."""
    shapes = cfg.linear_shapes()
    blocks = {layer.layer_index for layer in wl.layers if layer.layer_index is not None}
    if blocks and len(blocks) != cfg.layers:
        raise DseError(f"{where}: num_hidden_layers: expected {len(blocks)} (the profile's "
                       f"decoder layers), got {cfg.layers}")
    for layer in wl.layers:
        want = shapes.get(layer.role)
        if want is not None and (layer.n, layer.k) != want:
            raise DseError(f"{where}: expected the shapes of the profile's Linears "
                           f"({layer.name} is {layer.n}x{layer.k}), got {want[0]}x{want[1]} "
                           f"for {layer.role} from the config")
    notes = tuple(n for n in wl.notes if getattr(n, "key", "") != "note.config")
    notes = (msg("note.config", "operators from the model config: {source}",
                 source=cfg.source), *notes)
    return Workload(wl.model, cfg, wl.dtype_bytes, wl.layers, decoder_ops(cfg), wl.measured,
                    wl.host, wl.token_ms, wl.prefill_steady_ms, wl.prompt_tokens, notes,
                    wl.runtimes)
