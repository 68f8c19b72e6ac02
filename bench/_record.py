"""Writing a torch benchmark's recorded result: one shape for every bench/results/*.json.

Bench scripts run as ``python bench/<name>.py``, so ``bench/`` is on ``sys.path`` and they
import this as ``_record``.
"""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_torch_result(name: str, doc: str, results: list) -> Path:
    """Write ``bench/results/<name>.json`` with date, host versions, method and results."""
    import torch
    import transformers

    out = ROOT / "bench" / "results" / f"{name}.json"
    out.write_text(json.dumps({
        "bench": name,
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": {"cpu": platform.processor() or platform.machine(),
                 "python": platform.python_version(), "torch": torch.__version__,
                 "transformers": transformers.__version__},
        "method": doc.split("\n\n")[1].replace("\n", " "),
        "results": results,
    }, indent=1) + "\n", encoding="utf-8")
    print(f"-> {out.relative_to(ROOT)}")
    return out
