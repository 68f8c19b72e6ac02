"""Benchmark: peak RSS of ``dse profile`` on 2B-4T bf16 against the model's own bytes (bar 1.3x).

Runs the real command in a fresh process (so the kernel's high-water mark, ``ru_maxrss``, is
the profiler's alone) on the ``bitnet-b1.58-2B-4T`` preset in bf16 with a short generation, and
compares the profile's ``peak_memory_mb`` with the bytes of the model's parameters and buffers
(tied embedding/head counted once), computed on the ``meta`` device without allocating. The
difference is the Python/torch/transformers runtime, activations, KV cache and the profiler's
own lists. The run's profile, reports (en, and zh rendered from the same JSON) and plots are
kept in bench/results/ as a sample.

Records to bench/results/profile_memory.json.
Run: python bench/bench_profile_memory.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from dse.profile.runner import prepare_environment

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
OUT = RESULTS / "profile_memory.json"
PRESET, DTYPE = "bitnet-b1.58-2B-4T", "bfloat16"
BAR = 1.3
MB = 2**20


def model_bytes_meta(preset: str, dtype: str) -> int:
    """Parameter + buffer bytes of the preset's model, built on the meta device (no memory)."""
    import torch
    from transformers import BitNetForCausalLM

    from dse.profile.presets import preset_config

    config = preset_config(preset)
    with torch.device("meta"):
        model = BitNetForCausalLM(config).to(getattr(torch, dtype))
    if config.tie_word_embeddings:
        model.lm_head.weight = model.model.embed_tokens.weight
    seen, total = set(), 0
    for t in (*model.parameters(), *model.buffers()):
        if id(t) not in seen:
            seen.add(id(t))
            total += t.numel() * t.element_size()
    return total


def main() -> None:
    prepare_environment()
    model_b = model_bytes_meta(PRESET, DTYPE)
    stem = RESULTS / f"{PRESET}.{DTYPE}"
    # --threads 1: on this shared 2-vCPU VM other jobs often hold a core, and 2 OpenMP threads
    # then crawl (a 0.45 s step becomes 1.9 s, one token took 131 s under memory pressure).
    cmd = [sys.executable, "-m", "dse.cli", "profile", "--preset", PRESET, "--dtype", DTYPE,
           "--threads", "1", "--prompt-tokens", "32", "--gen-tokens", "8", "--lang", "en",
           "--no-progress",
           "-o", f"{stem}.profile.json", "--report", f"{stem}.en.md"]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"dse profile failed ({done.returncode}): {done.stderr.strip()}")
    # The same run's report in Chinese too (the seed's language), linking the same plots.
    from dse.io import atomic_write_text
    from dse.profile.format import load_profile
    from dse.report.profile_md import render_profile_report
    from dse.report.profile_plots import plot_names

    plots = plot_names(f"{stem.name}.en")
    atomic_write_text(f"{stem}.zh.md", render_profile_report(
        load_profile(f"{stem}.profile.json"), "zh", plots=plots))
    profile = json.loads(Path(f"{stem}.profile.json").read_text(encoding="utf-8"))
    peak_mb = profile["peak_memory_mb"]
    ratio = peak_mb * MB / model_b
    tokens = profile["tokens"]
    result = {
        "bench": "profile_memory",
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(cmd[1:]).replace(str(RESULTS) + "/", "bench/results/"),
        "wall_s": round(wall, 1),
        "model_bytes": model_b, "model_mb": round(model_b / MB, 1),
        "peak_rss_mb": peak_mb, "ratio": round(ratio, 3), "bar": BAR, "meets_bar": ratio < BAR,
        "ms_per_token": round(sum(t["ms"] for t in tokens) / len(tokens), 1),
        "phases_ms": {p["name"]: p["ms"] for p in profile["phases"]},
        "stdout": done.stdout.strip(),
        "method": __doc__.split("\n\n")[1].replace("\n", " "),
    }
    OUT.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"{PRESET} {DTYPE}: peak RSS {peak_mb:.0f} MB vs model {model_b / MB:.0f} MB = "
          f"{ratio:.3f}x (bar {BAR}x); {result['ms_per_token']} ms/token; wall {wall:.0f} s")
    print(f"-> {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
