"""Flag modules whose measured time is a one-off artefact rather than their steady cost.

A profiler run that times every call from the first one charges lazy initialisation (weight
repacking, allocator growth, cold caches) to whichever module runs first: in the seed report
``model.layers.0.self_attn.q_proj`` took 4969 ms where its 29 siblings took ~178 ms each. Taken
at face value, such a module would look like the best thing to offload to the FPGA. Same-role
modules of a decoder stack have identical shapes and do identical work, so the median of the
siblings is a robust steady-state estimate, and a module far above it is flagged.

Thresholds (both must hold), chosen on the seed with a margin either side:

* ``total > RATIO_MIN x median`` with ``RATIO_MIN = 2.0``: a warm-up worth correcting costs a
  multiple of the steady time (seed: 28.0x for layer-0 q_proj, 3.4x for layer-0 down_proj),
  while ordinary run-to-run spread stays near 1 (seed: every other module is <= 1.12x except
  layer-0 k_proj at 1.65x, +30 ms, 0.04 % of the Linear time: probably a small warm-up too, but
  immaterial, and 1.5x would flag it; 2.0 sits between 1.65 and 3.4).
* ``total > median + MAD_K x MAD`` with ``MAD_K = 8``: the excess must also be large against the
  siblings' own scatter (median absolute deviation, unscaled), so a role whose times are noisy
  by nature is not flagged for noise. The two seed warm-ups sit at ~3900 and ~340 MADs; the seed's
  siblings are so steady that the ratio test is the binding one there (the other layer-0
  modules reach 6-60 MADs at 1.05-1.65x), while for a noisy role this test is.

A role is only judged when it has at least ``MIN_SIBLINGS`` (4) other modules: a median of
fewer says little, and ``lm_head`` (a single module) is never flagged.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from statistics import median

from dse.profile.format import ModuleRecord, Outlier

RATIO_MIN = 2.0
MAD_K = 8.0
MIN_SIBLINGS = 4
WARMUP = "warmup"


def _flag(module: ModuleRecord, siblings: Sequence[float]) -> Outlier | None:
    """The outlier record for ``module`` against its siblings' totals, or None if it is normal."""
    med = median(siblings)
    mad = median(abs(x - med) for x in siblings)
    if med <= 0 or module.total_ms <= RATIO_MIN * med or module.total_ms <= med + MAD_K * mad:
        return None
    if module.layer_index == 0:
        reason = (f"first-call/warm-up artefact: layer 0 runs first and pays one-off "
                  f"initialisation; {module.total_ms / med:.1f}x the median of "
                  f"{len(siblings)} siblings")
    else:
        reason = f"outlier vs {len(siblings)} siblings ({module.total_ms / med:.1f}x their median)"
    return Outlier(kind=WARMUP, ratio=round(module.total_ms / med, 3), steady_total_ms=med,
                   excess_ms=round(module.total_ms - med, 6), reason=reason)


def flag_warmup_outliers(modules: Sequence[ModuleRecord]) -> tuple[ModuleRecord, ...]:
    """Return ``modules`` (same order) with warm-up outliers flagged.

    Siblings are the other modules of the same type and role. A previous ``warmup`` flag that no
    longer holds is cleared; outliers of other kinds are left as they are.
    """
    groups: dict[tuple[str, str], list[ModuleRecord]] = defaultdict(list)
    for m in modules:
        groups[(m.module_type, m.role)].append(m)
    out = []
    for m in modules:
        keep = m.outlier if m.outlier and m.outlier.kind != WARMUP else None
        group = groups[(m.module_type, m.role)]
        siblings = [s.total_ms for s in group if s is not m]
        flagged = _flag(m, siblings) if len(siblings) >= MIN_SIBLINGS else None
        out.append(replace(m, outlier=flagged or keep))
    return tuple(out)


__all__ = ["MAD_K", "MIN_SIBLINGS", "RATIO_MIN", "WARMUP", "flag_warmup_outliers"]
