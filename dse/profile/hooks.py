"""Time every call of the costly modules of a model, with low enough overhead to trust.

The timing code runs inside the model's forward, so what it does is overhead on the very
numbers it records. Each timed module gets a per-instance ``forward`` wrapper (a pre/post
hook pair in one function) that only appends to flat lists through pre-bound ``append``
methods (no dict look-ups, tuples, string formatting or phase checks): one event id and one
``perf_counter_ns`` stamp per event (shapes: see ``CallRecorder``). The start stamp is the last
thing before the module's own forward and the end stamp the first thing after it, so the
bookkeeping falls outside the timed window. Phases are not tagged per call: ``mark`` records
where in the event stream a phase starts, and ``dse.profile.calls`` turns the raw stream into
per-call and per-module figures afterwards (pure Python, no torch).

Why a wrapper and not ``register_forward_pre_hook``/``register_forward_hook``: a module with
hooks leaves ``nn.Module._call_impl``'s fast path, which costs ~3.9 us per call here against
~1.5 us for the wrapper (same bookkeeping, measured on an ``nn.Identity``). On the ``tiny``
preset (29 timed modules, ~1 ms per decode step) that is the difference between ~12 % and
~4 % overhead; on 2B-4T both are well under 1 %. ``detach`` deletes the instance attribute,
which restores the class's ``forward`` exactly.

What is timed (``select_modules``): every Linear (``nn.Linear`` and transformers' BitNet
``BitLinear``/``AutoBitLinear``), the embedding, every RMSNorm, the MLP activation and the
attention module. The attention module's projections and sub-norm are timed too, so its
time is later reported *exclusive* of them: what remains is the attention core (rotary,
KV-cache update, softmax(QK^T)V, reshapes). Modules inside a Linear (BitLinear's optional
norm) are not timed separately: a Linear is timed as a whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

#: module_type recorded for each kind (``ModuleRecord.module_type``). "Linear" is what the cost
#: model reads as a Linear layer, whatever class implements it.
LINEAR = "Linear"
ATTENTION = "Attention"
KINDS_EXCLUSIVE = frozenset({ATTENTION})

_LINEAR_CLASSES = frozenset({"Linear", "BitLinear", "AutoBitLinear"})


def module_kind(name: str, module: Any) -> str | None:
    """The kind of module to time (``module_type``), or None to leave it alone."""
    import torch

    cls = type(module).__name__
    if isinstance(module, torch.nn.Linear) or cls in _LINEAR_CLASSES:
        return LINEAR
    if isinstance(module, torch.nn.Embedding):
        return "Embedding"
    if cls.endswith("RMSNorm") or cls.endswith("LayerNorm"):
        return "RMSNorm" if cls.endswith("RMSNorm") else "LayerNorm"
    if cls.endswith("Attention") and hasattr(module, "o_proj"):
        return ATTENTION
    if name.endswith(".act_fn") or cls.endswith("Activation") or cls in {"SiLU", "ReLU", "GELU"}:
        return "Activation"
    return None


def select_modules(model: torch.nn.Module) -> list[tuple[str, Any, str]]:
    """(name, module, kind) of every module to time, in registration order; nothing inside a
    Linear (its internals are part of the Linear's time)."""
    chosen: list[tuple[str, Any, str]] = []
    linear_prefixes: list[str] = []
    for name, module in model.named_modules():
        if not name or any(name.startswith(p) for p in linear_prefixes):
            continue
        kind = module_kind(name, module)
        if kind is None:
            continue
        if kind == LINEAR:
            linear_prefixes.append(name + ".")
        chosen.append((name, module, kind))
    return chosen


@dataclass
class RawTrace:
    """The recorder's raw stream (``dse.profile.calls`` interprets it).

    ``events[j]`` is ``i`` for the start of a call of module ``i`` and ``~i`` (< 0) for its
    end, stamped ``times_ns[j]``. ``probes`` are (index of the call's start event, module
    index, input shape, output shape) of the first call of each module after each ``mark``;
    ``marks`` are (phase, index of the first event of the phase).
    """

    names: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    params: list[int] = field(default_factory=list)
    events: list[int] = field(default_factory=list)
    times_ns: list[int] = field(default_factory=list)
    probes: list[tuple[int, int, tuple[int, ...], tuple[int, ...]]] = field(
        default_factory=list)
    marks: list[tuple[str, int]] = field(default_factory=list)


def _shape_of(x: Any) -> tuple[int, ...]:
    """Shape of a tensor, or of the first tensor of a tuple output (attention); else ()."""
    if isinstance(x, (tuple, list)):
        x = x[0] if x else None
    return tuple(x.shape) if hasattr(x, "shape") else ()


def _input_shape(args: tuple, kwargs: dict[str, Any]) -> tuple[int, ...]:
    """Shape of the first tensor argument (attention gets ``hidden_states=`` as a keyword)."""
    for v in (*args, *kwargs.values()):
        if hasattr(v, "shape"):
            return tuple(v.shape)
    return ()


def _params(module: Any) -> int:
    """Weights of a module as the model holds them (a packed BitLinear counts its unpacked
    weights: out x in)."""
    if hasattr(module, "in_features") and hasattr(module, "out_features"):
        return int(module.in_features) * int(module.out_features)
    return sum(int(p.numel()) for p in module.parameters(recurse=False))


class CallRecorder:
    """Wrap the selected modules' ``forward``, record into a ``RawTrace``, unwrap.

    Usage: ``rec = CallRecorder(model).attach(); rec.mark("prefill"); ...; rec.detach()``.
    Warm-up runs are done before ``attach`` (or followed by ``clear``), so they never count.

    Shapes: a module's input and output shapes are constant within a phase of a decoder LLM
    (prefill is one call over the prompt, decode one token per call), while reading them costs
    ~0.6 us per call (~2 % of a ``tiny`` decode step). So each module's first call after a
    ``mark`` runs a *probing* wrapper that also records the shapes, then swaps itself for the
    lean timing wrapper; ``dse.profile.calls`` gives every call the shapes of its phase's probe.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.trace = RawTrace()
        self._selected = select_modules(model)
        self._fast: list[Any] = []
        self._probe: list[Any] = []
        self._wrapped = False
        for name, module, kind in self._selected:
            self.trace.names.append(name)
            self.trace.kinds.append(kind)
            self.trace.params.append(_params(module))
        self._build()

    def _build(self) -> None:
        """Make each module's lean and probing wrappers (closures over the trace lists)."""
        events = self.trace.events
        ev = events.append
        tm = self.trace.times_ns.append
        pr = self.trace.probes.append
        pc = perf_counter_ns
        for i, (_, module, _) in enumerate(self._selected):
            f = module.forward  # the bound class method

            def general(*a: Any, _f: Any = f, _i: int = i, **k: Any) -> Any:
                ev(_i)
                tm(pc())
                out = _f(*a, **k)
                tm(pc())
                ev(~_i)
                return out

            # Linears, norms, activations, embeddings take one positional tensor: skipping the
            # *args/**kwargs packing saves ~0.2 us a call. The probe checks that it holds.
            def lean(x: Any, _f: Any = f, _i: int = i) -> Any:
                ev(_i)
                tm(pc())
                out = _f(x)
                tm(pc())
                ev(~_i)
                return out

            def probe(*a: Any, _f: Any = f, _i: int = i, _m: Any = module, _lean: Any = lean,
                      _general: Any = general, **k: Any) -> Any:
                j = len(events)
                ev(_i)
                tm(pc())
                out = _f(*a, **k)
                tm(pc())
                ev(~_i)
                pr((j, _i, _input_shape(a, k), _shape_of(out)))
                # Attention is called with keywords (hidden_states=...): the general wrapper.
                self._fast[_i] = _lean if len(a) == 1 and not k else _general
                _m.forward = self._fast[_i]
                return out

            self._fast.append(general)
            self._probe.append(probe)

    @property
    def attached(self) -> bool:
        return self._wrapped

    def attach(self, probe: bool = True) -> CallRecorder:
        """Start timing; with ``probe`` each module's next call also records its shapes
        (``probe=False`` re-attaches the lean wrappers only, e.g. between benchmark steps)."""
        if probe:
            self._arm()
        else:
            for (_, module, _), fast in zip(self._selected, self._fast, strict=True):
                module.forward = fast
        self._wrapped = True
        return self

    def _arm(self) -> None:
        for (_, module, _), probe in zip(self._selected, self._probe, strict=True):
            module.forward = probe

    def detach(self) -> None:
        """Restore the modules' own ``forward`` (deleting the instance attribute)."""
        if self._wrapped:
            for _, module, _ in self._selected:
                module.__dict__.pop("forward", None)
        self._wrapped = False

    def mark(self, phase: str) -> None:
        """Calls from here on belong to ``phase`` (``prefill``, ``decode``, ...)."""
        self.trace.marks.append((phase, len(self.trace.events)))
        if self._wrapped:
            self._arm()

    def clear(self) -> None:
        """Forget recorded calls (keep the module table)."""
        self.trace.events.clear()
        self.trace.times_ns.clear()
        self.trace.probes.clear()
        self.trace.marks.clear()

    def __enter__(self) -> CallRecorder:
        return self.attach()

    def __exit__(self, *exc: object) -> None:
        self.detach()


__all__ = ["ATTENTION", "KINDS_EXCLUSIVE", "LINEAR", "CallRecorder", "RawTrace", "module_kind",
           "select_modules"]
