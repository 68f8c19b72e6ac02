"""What is projected: the view, the phase, its tokens, the context and the serving setup."""

from __future__ import annotations

from dataclasses import dataclass

from dse.errors import DseError
from dse.model.arch import ModelConfig
from dse.model.ops import KV_DTYPES

PHASES = ("decode", "prefill")


@dataclass(frozen=True)
class Scenario:
    """One forward to price.

    ``m`` is the tokens per sequence in the forward (1 in decode, the prompt in prefill);
    ``context_tokens`` the position of its last token, which decode attends over (the KV cache
    holds that many tokens); ``sequences`` independent sequences share one weight pass;
    ``threads`` the CPU threads of the runtime (None: all cores).
    """

    view: str = "on-board"
    phase: str = "decode"
    m: int = 1
    context_tokens: int = 256
    kv_dtype: str = "fp16"
    sequences: int = 1
    threads: int | None = None

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
        if self.context_tokens > cfg.max_positions:
            raise DseError(f"--context-tokens: expected at most {cfg.max_positions} (the "
                           f"model's max_position_embeddings), got {self.context_tokens}")
        if self.m > self.context_tokens:
            raise DseError(f"--context-tokens: expected at least the {self.m} tokens of the "
                           f"forward, got {self.context_tokens}")
        if self.kv_dtype not in KV_DTYPES:
            raise DseError(f"--kv-dtype: expected one of {', '.join(KV_DTYPES)}, "
                           f"got {self.kv_dtype!r}")
        return self


def scenario_key(sc: Scenario, calibration: str = "none") -> dict:
    """A projection's scenario as plain values, with the calibration in force: what a figure
    holds for, kept beside it in summaries and JSON so sections can be compared."""
    return {"phase": sc.phase, "m": sc.m, "context_tokens": sc.context_tokens,
            "sequences": sc.sequences, "kv_dtype": sc.kv_dtype, "view": sc.view,
            "calibration": calibration or "none"}
