"""A prompt in groups of positions, the time to first token, and a chat turn (pure).

A runtime that drives the engines runs a prompt of P tokens as forwards of G positions each
(G at most the engine's VMAX, the vectors it holds per weight pass): every forward streams the
weights once for its G positions, writes their K/V rows, and attends causally within the group
and to every earlier position; only the last forward computes logits, for the prompt's last
position, which give the first generated token. So the time to first token is the prompt's
forwards plus that first token's head and sampling (the published bitnet-kv260 runtime times
its prompt that way: ``t_prompt`` in runtime/bitnet_kria.c ends after ``head_argmax``).

The groups are priced as weighted scenarios, one forward each (``project`` prices one
forward; the search sums the same weighted scenarios through its price table): the groups
before the last, priced at their mean context (every cost that depends on the context is
linear in it: attention's causal pairs ``positions(G, c)`` and its cache reads), as two
scenarios at the floor and the ceiling of that mean (each half the groups, exact when the mean
is a whole number of positions or the cost is linear), and the last group with logits. The
scenario count is fixed (``PROMPT_FORWARDS``), so every plan's objective has the same shape
whatever its G; a prompt of one group has its earlier scenarios at weight 0.

A CPU-only runtime takes the whole prompt in one forward (bitnet.cpp's default batch holds a
prompt of hundreds of tokens): G = P.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dse.errors import DseError
from dse.model.scenario import Scenario

#: Scenarios of a prompt: the groups before the last (at the floor and the ceiling of their
#: mean context) and the last group, with logits.
PROMPT_FORWARDS = 3
#: Scenarios of a chat turn's generated tokens after the first (floor and ceiling of their
#: mean context).
DECODE_FORWARDS = 2

Weighted = tuple[tuple[Scenario, float], ...]


def check_prompt(prompt_tokens: int, max_positions: int, option: str = "--prompt-tokens"
                 ) -> int:
    """The prompt length, refused (one line naming ``option``) beyond the model's context."""
    if isinstance(prompt_tokens, bool) or not isinstance(prompt_tokens, int) or \
            prompt_tokens < 1:
        raise DseError(f"{option}: expected an integer >= 1, got {prompt_tokens!r}")
    if prompt_tokens > max_positions:
        raise DseError(f"{option}: expected at most {max_positions} (the model's context, "
                       f"max_position_embeddings), got {prompt_tokens}")
    return prompt_tokens


def check_group(group: int, vmax: int, option: str = "--prompt-group",
                what: str = "the plan's engine") -> int:
    """A prompt group, refused (one line naming ``option``) beyond the VMAX of ``what``."""
    if isinstance(group, bool) or not isinstance(group, int) or group < 1:
        raise DseError(f"{option}: expected an integer >= 1, got {group!r}")
    if group > vmax:
        raise DseError(f"{option}: expected at most {vmax} (the vectors {what} holds per "
                       f"weight pass, VMAX), got {group}")
    return group


def _split_mean(total: float, count: float) -> tuple[tuple[int, float], tuple[int, float]]:
    """``count`` forwards whose contexts average ``total / count``, as (floor, weight) and
    (ceiling, weight) with the same count and the same mean (for a cost linear in the
    context, exact)."""
    mean = total / count
    lo, hi = math.floor(mean), math.ceil(mean)
    if lo == hi:
        return (lo, count / 2), (hi, count / 2)
    w_hi = count * (mean - lo)
    return (lo, count - w_hi), (hi, w_hi)


def prompt_scenarios(prompt_tokens: int, group: int, *, view: str = "on-board",
                     kv_dtype: str = "fp16", threads: int | None = None) -> Weighted:
    """The forwards of a prompt of ``prompt_tokens`` in groups of ``group`` positions, as
    ``PROMPT_FORWARDS`` weighted scenarios (see the module docstring)."""
    if group < 1 or prompt_tokens < 1:
        raise ValueError("prompt_scenarios: prompt and group must be >= 1")
    group = min(group, prompt_tokens)
    forwards = math.ceil(prompt_tokens / group)
    before = forwards - 1
    last = Scenario(view, "prefill", prompt_tokens - before * group, prompt_tokens, kv_dtype,
                    1, threads)
    if not before:
        idle = Scenario(view, "prefill", last.m, prompt_tokens, kv_dtype, 1, threads,
                        logits=False)
        return ((idle, 0.0), (idle, 0.0), (last, 1.0))
    # group j (1..before) ends at position j*group: the mean is group*(before+1)/2
    (lo, w_lo), (hi, w_hi) = _split_mean(group * before * (before + 1) / 2, before)
    early = tuple((Scenario(view, "prefill", group, c, kv_dtype, 1, threads, logits=False), w)
                  for c, w in ((lo, w_lo), (hi, w_hi)))
    return (*early, (last, 1.0))


def decode_scenarios(prompt_tokens: int, gen_tokens: int, *, sequences: int = 1,
                     view: str = "on-board", kv_dtype: str = "fp16",
                     threads: int | None = None, context: int | None = None) -> Weighted:
    """The forwards that generate tokens 2..N after a prompt (the first comes with the
    prompt's last forward): N - 1 decode rounds of ``sequences``, attending P + 1 .. P + N - 1
    positions (the mean P + N/2, split at floor and ceiling), or all at ``context``."""
    rounds = max(0, gen_tokens - 1)
    if context is not None:
        sc = Scenario(view, "decode", 1, context, kv_dtype, sequences, threads)
        return ((sc, rounds / 2), (sc, rounds / 2))
    if not rounds:
        sc = Scenario(view, "decode", 1, prompt_tokens + 1, kv_dtype, sequences, threads)
        return ((sc, 0.0), (sc, 0.0))
    first = prompt_tokens + 1
    (lo, w_lo), (hi, w_hi) = _split_mean(rounds * (2 * first + rounds - 1) / 2, rounds)
    return tuple((Scenario(view, "decode", 1, c, kv_dtype, sequences, threads), w)
                 for c, w in ((lo, w_lo), (hi, w_hi)))


@dataclass(frozen=True)
class PromptCost:
    """A prompt priced in groups: its forwards (each scenario's projection with its weight),
    the time to first token, and the prompt rate the published runtime reports
    (prompt tokens over that time)."""

    prompt_tokens: int
    group: int
    forwards: int
    parts: tuple[tuple[object, float], ...]   # (Projection, weight)

    @property
    def ttft_ms(self) -> float:
        return sum(w * p.plan_ms for p, w in self.parts)

    @property
    def tokens_per_s(self) -> float:
        return self.prompt_tokens * 1e3 / self.ttft_ms if self.ttft_ms > 0 else math.inf

    def component_ms(self) -> dict[str, float]:
        """The prompt's time by component (the forwards' breakdowns, weighted), ms."""
        out: dict[str, float] = {}
        for p, w in self.parts:
            for k, v in p.components.items():
                out[k] = out.get(k, 0.0) + w * v
        return out


def plan_group(plan, prompt_tokens: int, group: int | None = None,
               option: str = "--prompt-group") -> int:
    """The prompt group a plan runs: ``group`` if given (checked against its engine's VMAX),
    else the plan's ``prompt_group``, else its engine's VMAX; a plan that offloads nothing
    takes the whole prompt in one forward (a CPU runtime's batch)."""
    if not plan.offload:
        return prompt_tokens
    vmax = plan.design.vectors
    if group is not None:
        return check_group(group, vmax, option)
    if plan.prompt_group is not None:
        return check_group(plan.prompt_group, vmax, "prompt_group")
    return vmax


def prompt_cost(wl, plan, ctx, prompt_tokens: int, group: int | None = None, *,
                view: str = "on-board", kv_dtype: str = "fp16", threads: int | None = None,
                base=None, memo: dict | None = None) -> PromptCost:
    """The plan's prompt of ``prompt_tokens`` in groups (``plan_group``), each forward priced
    by ``project``. ``base``: the CPU-only baselines to attach to every forward (None: each
    forward's own); ``memo``: ``project``'s (one dict per workload and context)."""
    from dse.model.project import project

    check_prompt(prompt_tokens, wl.config.max_positions)
    g = plan_group(plan, prompt_tokens, group)
    parts = tuple((project(wl, plan, ctx, sc, with_baselines=False, base=base, memo=memo), w)
                  for sc, w in prompt_scenarios(prompt_tokens, g, view=view,
                                                kv_dtype=kv_dtype, threads=threads))
    return PromptCost(prompt_tokens, g, math.ceil(prompt_tokens / g), parts)
