"""The best plan's per-token breakdown next to a measured design's split (pure).

A measurement log (``dse.model.measurement_log``) may hold the split of a whole decode token on
a real board, as the published KV260 design's does. Putting the best plan's components beside
it says where dse's answer differs from a design that was built and timed: which parts the plan
makes faster, which it leaves as they are, and what the measured design spends on that dse
does not model. The plan is projected at the context the measurement ran at (so the two
columns price the same token) and at the objective's context.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from dse.model.measurement_log import MeasurementLog
from dse.model.project import COMPONENTS, ITEMS, CostContext, Projection, project
from dse.model.workload import Workload

#: The projection's component each measured part of a token belongs to (``what`` of a log's
#: component entries): the breakdown's items (``dse.model.project.ITEMS``), the components
#: themselves, and the log's name for the head's sync + top-K; a part not listed has no
#: counterpart in the model.
COMPONENT_OF = {**ITEMS, **{c: c for c in COMPONENTS}, "head_sync_topk": "head"}


@dataclass(frozen=True)
class ReferenceRow:
    """One component: what the measured design spent on it (None: nothing measured), the parts
    of its split it sums, and the best plan's projection at both contexts."""

    component: str
    measured_ms: float | None
    parts: tuple[str, ...]
    best_ms: float
    best_objective_ms: float


@dataclass(frozen=True)
class ReferenceSplit:
    title: str
    path: str
    sha256: str
    source: str
    #: The context the measurement ran at (tokens), and the objective's.
    context_tokens: int
    objective_context_tokens: int
    measured_token_ms: float
    rows: tuple[ReferenceRow, ...]
    #: Measured parts without a model component: (what, ms).
    unmodelled: tuple[tuple[str, float], ...]
    best_token_ms: float
    best_objective_token_ms: float
    plan_label: str
    #: The best plan's decode tokens per second at the measurement's context (every sequence
    #: of a batched decode counts).
    best_tokens_per_s: float = 0.0

    @property
    def unattributed_ms(self) -> float:
        """What the measured token took beyond the sum of its listed parts."""
        listed = sum(r.measured_ms or 0.0 for r in self.rows) + sum(
            ms for _, ms in self.unmodelled)
        return self.measured_token_ms - listed


def _ms(value: float, unit: str) -> float:
    if unit == "ms":
        return value
    if unit == "s":
        return value * 1e3
    if unit == "us":
        return value * 1e-3
    if unit == "tok/s":
        return 1e3 / value
    raise ValueError(unit)


def reference_split(wl: Workload, ctx: CostContext, best: Projection, log: MeasurementLog,
                    label: str) -> ReferenceSplit | None:
    """The best plan (its decode projection ``best``) next to the log's measured decode
    token and its parts; None when the log holds no split of a decode token. The plan is
    re-projected at the context the measurement ran at, clipped to the model's."""
    token = next((e for e in log.entries if e.kind == "phase" and e.what == "decode"
                  and e.per == "token" and e.unit in ("ms", "s", "us", "tok/s")), None)
    if token is None:
        return None
    parts = [e for e in log.entries if e.part_of == token.id and e.kind == "component"
             and e.unit in ("ms", "s", "us")]
    if not parts:
        return None
    # the token's own context; else the one most of its parts ran at (ties: the largest)
    contexts = [e.ints["context"] for e in parts if "context" in e.ints]
    context = token.ints.get("context") or (
        max(sorted(set(contexts)), key=contexts.count) if contexts
        else best.scenario.context_tokens)
    context = min(context, wl.config.max_positions)
    at_ref = project(wl, best.plan, ctx, replace(best.scenario, context_tokens=context),
                     with_baselines=False)
    measured: dict[str, list[tuple[str, float]]] = {}
    unmodelled = []
    for e in parts:
        comp = COMPONENT_OF.get(e.what)
        if comp is None:
            unmodelled.append((e.what, _ms(e.value, e.unit)))
        else:
            measured.setdefault(comp, []).append((e.what, _ms(e.value, e.unit)))
    rows = []
    for comp in COMPONENTS:
        got = measured.get(comp)
        mine, objective = at_ref.components.get(comp, 0.0), best.components.get(comp, 0.0)
        if got is None and max(mine, objective) <= 0:
            continue
        rows.append(ReferenceRow(comp, None if got is None else sum(ms for _, ms in got),
                                 tuple(w for w, _ in got or ()), mine, objective))
    return ReferenceSplit(log.title, log.path, log.sha256, token.source, context,
                          best.scenario.context_tokens, _ms(token.value, token.unit),
                          tuple(rows), tuple(unmodelled), at_ref.plan_ms, best.plan_ms, label,
                          at_ref.tokens_per_s)
