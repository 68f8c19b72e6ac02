"""What is projected: the view, the phase, its tokens, the contexts and the serving setup."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from dse.errors import DseError
from dse.model.arch import ModelConfig
from dse.model.ops import KV_DTYPES

PHASES = ("decode", "prefill")


@dataclass(frozen=True)
class Scenario:
    """One forward to price.

    ``m`` is the tokens per sequence in the forward (1 in decode, a group of the prompt's
    positions in prefill); ``context_tokens`` the position of its last token, which decode
    attends over (the KV cache holds that many tokens); ``sequences`` independent sequences
    share one weight pass (a *round*), each at its own context where ``contexts`` gives them
    (one per sequence, their largest is ``context_tokens``; empty: every sequence at
    ``context_tokens``); ``threads`` the CPU threads of the runtime (None: all cores);
    ``logits`` False for a forward that computes no logits (a prompt group before the last:
    no head, no sampling).
    """

    view: str = "on-board"
    phase: str = "decode"
    m: int = 1
    context_tokens: int = 256
    kv_dtype: str = "fp16"
    sequences: int = 1
    threads: int | None = None
    contexts: tuple[int, ...] = ()
    logits: bool = True

    @property
    def sequence_contexts(self) -> tuple[int, ...]:
        """The context of each sequence of the round."""
        return self.contexts or (self.context_tokens,) * self.sequences

    def context_counts(self) -> tuple[tuple[int, int], ...]:
        """(context, sequences at it) of the round, by increasing context: what the
        per-sequence operators (attention over each sequence's own cache) are priced over."""
        return tuple(sorted(Counter(self.sequence_contexts).items()))

    @property
    def cached_tokens(self) -> int:
        """Tokens the round's KV caches hold together (every sequence's own)."""
        return sum(self.sequence_contexts)

    def validate(self, cfg: ModelConfig, where: str = "scenario") -> Scenario:
        """One-line errors for values the model cannot run with."""
        if self.phase not in PHASES:
            raise DseError(f"{where}: phase: expected one of {', '.join(PHASES)}, "
                           f"got {self.phase!r}")
        for name in ("m", "context_tokens", "sequences"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise DseError(f"{where}: {name}: expected an integer >= 1, got {v!r}")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise DseError(f"--threads: expected an integer >= 1, got {self.threads!r}")
        if self.contexts:
            if len(self.contexts) != self.sequences or any(
                    isinstance(c, bool) or not isinstance(c, int) for c in self.contexts):
                raise DseError(f"{where}: contexts: expected one integer per sequence "
                               f"({self.sequences}), got {self.contexts!r}")
            if max(self.contexts) != self.context_tokens:
                raise DseError(f"{where}: context_tokens: expected the largest of the round's "
                               f"contexts ({max(self.contexts)}), got {self.context_tokens}")
        if self.context_tokens > cfg.max_positions:
            raise DseError(f"--context-tokens: expected at most {cfg.max_positions} (the "
                           f"model's max_position_embeddings), got {self.context_tokens}")
        if self.m > min(self.sequence_contexts):
            raise DseError(f"--context-tokens: expected at least the {self.m} tokens of the "
                           f"forward, got {min(self.sequence_contexts)}")
        if self.kv_dtype not in KV_DTYPES:
            raise DseError(f"--kv-dtype: expected one of {', '.join(KV_DTYPES)}, "
                           f"got {self.kv_dtype!r}")
        return self


def round_scenario(contexts: tuple[int, ...], *, view: str = "on-board", kv_dtype: str = "fp16",
                   threads: int | None = None) -> Scenario:
    """A decode round of ``len(contexts)`` sequences, each generating one token at its own
    context (all equal: a plain ``sequences`` scenario)."""
    if not contexts:
        raise DseError("round: expected at least one sequence")
    same = len(set(contexts)) == 1
    return Scenario(view, "decode", 1, max(contexts), kv_dtype, len(contexts), threads,
                    () if same else tuple(contexts))


def scenario_key(sc: Scenario, calibration: str = "none") -> dict:
    """A projection's scenario as plain values, with the calibration in force: what a figure
    holds for, kept beside it in summaries and JSON so sections can be compared."""
    return {"phase": sc.phase, "m": sc.m, "context_tokens": sc.context_tokens,
            "sequences": sc.sequences, "kv_dtype": sc.kv_dtype, "view": sc.view,
            "calibration": calibration or "none"}
