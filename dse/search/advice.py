"""What would fit: the advice an infeasible result gives instead of a plan that cannot run.

When no plan fits a board (a model too large for its DDR), the useful answer is not the make
line of a plan that cannot run but what would: the least DDR the model can need there (every
ternary Linear in base-3, the densest packing the overlay decodes, the head wherever it takes
less, an int8 KV cache), and against it the smaller models and the larger boards that fit,
and the longest context that would. Pure: the caller passes the candidate models and boards.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from dse.model.arch import ModelConfig
from dse.model.board import Board
from dse.model.engine import EngineDesign
from dse.model.msg import Msg, msg
from dse.model.ops import kv_bytes
from dse.model.project import CostContext, Plan, Scenario, memory_bytes
from dse.model.workload import Workload, workload_from_config

#: The densest packing the shipped overlay decodes (1.6 bits per weight).
DENSEST = "base3"
#: The smallest KV-cache format plans may keep (with a scale per cached row).
SMALLEST_KV = "int8"


def min_memory_bytes(wl: Workload, ctx: CostContext, context_tokens: int,
                     sequences: int = 1) -> int:
    """The least DDR ``wl`` can need on ``ctx.board`` at that context (on-board view): every
    ternary Linear on the engines in base-3, the head on the CPU (f16) or two-stage on the
    engines, whichever needs less, an int8 KV cache, and the runtime's own memory."""
    design = EngineDesign(1, 5, DENSEST)
    ternary = frozenset(layer.name for layer in wl.layers if layer.ternary)
    sc = Scenario("on-board", "decode", 1, context_tokens, SMALLEST_KV, sequences)
    return min(memory_bytes(wl, Plan("least memory", design, off, runtime="native"), ctx, sc)
               for off in (ternary, frozenset(layer.name for layer in wl.layers)))


@dataclass(frozen=True)
class FitAdvice:
    """The least DDR a model needs on a board, and what would fit instead."""

    model: str
    board: str
    need_bytes: int
    capacity_bytes: int
    #: Models (name, least bytes on this board) that fit it, largest first.
    smaller_models: tuple[tuple[str, int], ...] = ()
    #: Boards (name, DDR bytes) on which this model fits, smallest first.
    larger_boards: tuple[tuple[str, int], ...] = ()
    #: The longest context that would fit (None: none, or the asked one already fits).
    max_context: int | None = None

    @property
    def fits(self) -> bool:
        return self.need_bytes <= self.capacity_bytes

    def messages(self) -> tuple[Msg, ...]:
        """The advice as report messages (one per kind of change)."""
        out = [msg("advice.need", "{model} needs at least {need:,.0f} MiB of DDR on {board} "
                   "(every ternary Linear in base-3 packing, 1.6 bits per weight, the densest "
                   "the overlay decodes; int8 KV cache), the board has {have:,.0f} MiB",
                   model=self.model, board=self.board, need=self.need_bytes / 2**20,
                   have=self.capacity_bytes / 2**20)]
        if self.max_context:
            out.append(msg("advice.context", "a context of at most {n:,} tokens would fit "
                           "(--context-tokens)", n=self.max_context))
        if self.smaller_models:
            out.append(msg("advice.models", "smaller models that fit {board}: {items}",
                           board=self.board, items=", ".join(
                               f"{name} ({b / 2**20:,.0f} MiB)"
                               for name, b in self.smaller_models)))
        if self.larger_boards:
            out.append(msg("advice.boards", "boards with more DDR that fit {model}: {items}",
                           model=self.model, items=", ".join(
                               f"{name} ({b / 2**20:,.0f} MiB)"
                               for name, b in self.larger_boards)))
        if not (self.max_context or self.smaller_models or self.larger_boards):
            out.append(msg("advice.none", "no shipped board and no smaller preset fits it"))
        return tuple(out)


def _max_context(wl: Workload, ctx: CostContext, asked: int) -> int | None:
    """The longest context (a multiple of 64, at most the model's) that fits, if shorter
    than ``asked`` and at least 64 tokens."""
    cfg = wl.config
    base = min_memory_bytes(wl, ctx, 1)
    per_token = cfg.kv_bytes_per_token(kv_bytes(SMALLEST_KV))
    room = ctx.board.ddr.capacity_bytes - base
    n = int(room // per_token) // 64 * 64 if per_token > 0 else 0
    n = min(n, cfg.max_positions)
    return n if 64 <= n < asked else None


def fit_advice(wl: Workload, ctx: CostContext, context_tokens: int,
               models: tuple[ModelConfig, ...] = (), boards: tuple[Board, ...] = ()
               ) -> FitAdvice:
    """How far ``wl`` is from fitting ``ctx.board``, and which of ``models`` (on this board)
    and ``boards`` (for this model) would fit, each at its least memory (pure)."""
    board = ctx.board
    need = min_memory_bytes(wl, ctx, context_tokens)
    cap = board.ddr.capacity_bytes
    smaller = []
    for cfg in models:
        if cfg.name == wl.config.name:
            continue
        other = workload_from_config(cfg)
        b = min_memory_bytes(other, ctx, min(context_tokens, cfg.max_positions))
        if b <= cap:
            smaller.append((cfg.name, b))
    larger = []
    for other_board in boards:
        if other_board.name == board.name or other_board.ddr.capacity_bytes <= cap:
            continue
        octx = replace(ctx, board=other_board)
        if min_memory_bytes(wl, octx, context_tokens) <= other_board.ddr.capacity_bytes:
            larger.append((other_board.name, other_board.ddr.capacity_bytes))
    return FitAdvice(wl.config.name, board.name, need, cap,
                     tuple(sorted(smaller, key=lambda x: -x[1])),
                     tuple(sorted(larger, key=lambda x: x[1])),
                     None if need <= cap else _max_context(wl, ctx, context_tokens))


__all__ = ["FitAdvice", "fit_advice", "min_memory_bytes"]
