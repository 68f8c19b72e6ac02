"""The engine design space of a board.

Enumerates design points (packing, PE x SIMD, engines, stream width, vectors per pass, clock,
optional dense head unit) and keeps those whose resources fit the board's utilization caps and
whose streams the board's HP ports can feed. Small enough to enumerate exhaustively: a few
thousand points, priced in microseconds each by the search.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dse.model.board import Board
from dse.model.constants import CostConstants
from dse.model.engine import EngineDesign, engine_resources, link_limit_error
from dse.model.packing import DENSE_BYTES_PER_WEIGHT, PACKINGS


@dataclass(frozen=True)
class DesignSpace:
    """The values each design parameter may take."""

    packings: tuple[str, ...] = tuple(PACKINGS)
    pes: tuple[int, ...] = (4, 8, 16, 32, 64)
    simds: tuple[int, ...] = (8, 16, 32, 64, 128)
    engines: tuple[int, ...] = (1, 2, 4)
    stream_bits: tuple[int, ...] = (64, 128, 256)
    vectors: tuple[int, ...] = (1,)
    #: The lm_head is bf16 in BitNet; an int8 head re-quantizes it (accuracy unchecked), so it
    #: is offered only when asked for (``dse explore --int8-head``).
    heads: tuple[str | None, ...] = (None, "bf16")

    def size(self) -> int:
        return (len(self.packings) * len(self.pes) * len(self.simds) * len(self.engines)
                * len(self.stream_bits) * len(self.vectors) * len(self.heads) * 2)


def default_space(phase_kind: str, int8_head: bool = False) -> DesignSpace:
    """Vectors per pass only matter when M > 1 (prefill or a mix)."""
    heads: tuple[str | None, ...] = (None, "bf16", "int8") if int8_head else (None, "bf16")
    vectors = (1,) if phase_kind == "decode" else (1, 8, 32)
    return DesignSpace(vectors=vectors, heads=heads)


def head_macs_for(board: Board, clock_mhz: float, head: str) -> int:
    """MACs a dense head unit needs to keep up with DDR (power of two, at least 16)."""
    per_cycle = board.ddr_bytes_per_s / (clock_mhz * 1e6) / DENSE_BYTES_PER_WEIGHT[head]
    return max(16, 2 ** math.ceil(math.log2(max(1.0, per_cycle))))


def enumerate_designs(board: Board, c: CostConstants, space: DesignSpace, max_k: int
                      ) -> tuple[list[EngineDesign], int]:
    """Every design of ``space`` that fits ``board``; also the count rejected."""
    clocks = sorted({board.clock.typical_mhz, board.clock.max_mhz})
    out: list[EngineDesign] = []
    rejected = 0
    for packing in space.packings:
        for clock in clocks:
            for engines in space.engines:
                for bits in space.stream_bits:
                    for pe in space.pes:
                        for simd in space.simds:
                            for vectors in space.vectors:
                                for head in space.heads:
                                    d = EngineDesign(
                                        pe=pe, simd=simd, packing=packing, clock_mhz=clock,
                                        engines=engines, vectors=vectors, stream_bits=bits,
                                        max_k=max_k, head=head,
                                        head_macs=head_macs_for(board, clock, head) if head else 0)
                                    if link_limit_error(d, board) or engine_resources(
                                            d, board, c).overflow(board):
                                        rejected += 1
                                        continue
                                    out.append(d)
    return out, rejected
