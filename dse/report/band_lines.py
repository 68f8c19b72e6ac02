"""The console's lines on a projection's bands: what they rest on, what the plan was never
measured in, its energy and resources as intervals.

Printed by ``dse project`` and by ``dse explore``'s summary (which loads this, not the
project command, to print them: issue 28's start-up).
"""

from __future__ import annotations

from dse.report import numbers


def band_lines(band, ttft=None, bands=None) -> list[str]:
    """What the bands rest on and what in the plan was never measured (one line each)."""
    if band is None:
        return []
    cal = ("uncalibrated" if band.calibration_sigma is None else
           f"plus the calibration's parameter uncertainty (1-sigma of the time "
           f"{numbers.pct(band.calibration_sigma, 2)})")
    flags = list(dict.fromkeys([*map(str, band.flags), *map(str, ttft[1] if ttft else ())]))
    lines = [f"bands: 90% of the model's error per component class over the validation rows "
             f"({bands.source if bands is not None else '?'}); {cal}",
             "outside the measurements: " + ("; ".join(flags) if flags else
                                   "nothing: every part of the plan is in a measured regime")]
    e = band.j_per_token
    if e is not None:
        lines.append(f"energy: {numbers.interval(band.watts, numbers.fixed)} W, "
                     f"{numbers.interval(e, lambda x: numbers.fixed(x, 3))} J/token")
    if band.resources:
        lines.append("resources (90% band): " + ", ".join(
            f"{k.upper() if k != 'bram36' else 'BRAM36'} {numbers.interval(v, numbers.count)}"
            for k, v in band.resources.items()))
    return lines


__all__ = ["band_lines"]
