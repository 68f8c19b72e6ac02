"""How a call's work is dealt out among the instances that run it: one home for every split.

The PYNQ driver, the RTL simulation and the cost model all call these, so a layer's rows (or
an attention call's kv heads) go to the same engine (or unit) everywhere.
"""

from __future__ import annotations

import functools
import math


@functools.lru_cache(maxsize=4096)
def instance_split(n: int, count: int) -> tuple[tuple[int, int], ...]:
    """Items [start, stop) each of ``count`` instances takes of ``n`` (kv heads, row folds):
    dealt as evenly as possible, the first instances taking one more; an instance left
    without any is not started (fewer ranges than instances when n < count)."""
    if min(n, count) < 1:
        raise ValueError("instance_split: n and count must be >= 1")
    base, extra = divmod(n, count)
    out = []
    start = 0
    for i in range(count):
        size = base + (1 if i < extra else 0)
        if size == 0:
            break
        out.append((start, start + size))
        start += size
    return tuple(out)


@functools.lru_cache(maxsize=4096)
def row_split(n: int, pe: int, engines: int) -> tuple[tuple[int, int], ...]:
    """Rows [start, stop) of an N-row layer each engine computes, as the driver splits them:
    whole PE-row folds dealt out by ``instance_split`` (the first engines taking one fold
    more); an engine left without a fold is not started (fewer ranges than engines when
    N < engines x PE)."""
    if min(n, pe, engines) < 1:
        raise ValueError("row_split: N, PE and engines must be >= 1")
    return tuple((a * pe, min(n, b * pe))
                 for a, b in instance_split(math.ceil(n / pe), engines))


def port_of_instance(i: int, engines: int) -> int:
    """The HP port unit instance ``i`` shares: engine ``i mod engines``'s (the Vivado flow
    joins each unit's DMA to that engine's data SmartConnect, ``attach: engines``)."""
    return i % max(1, engines)
