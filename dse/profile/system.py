"""Describe the profiling host: CPU, cores, clocks, and its measured roofline.

The roofline (peak GEMM GFLOP/s in fp32 and bf16, memory bandwidth) is what lets the cost
model scale a host time to another CPU (``dse.model.workload.host_spec``): a data-sheet peak
says little about what PyTorch reaches on a shared 2-core VM, so it is measured with the same
library and thread count as the profile. It is kept quick (best of a few ~10 ms repeats, ~2 s
in all here) and can be skipped (``--no-roofline``), in which case the cost model falls back to
``dse/data/hosts.yaml``.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

from dse.profile.format import HostRoofline, SystemInfo

#: The seed report's reference clock for normalized times.
DEFAULT_REFERENCE_MHZ = 3000.0

#: GEMM edge (n x n @ n x n) per dtype: large enough for the cache-blocked kernels to reach
#: their plateau, small enough for ~10-30 ms per product on a 2-core host.
GEMM_N = {"float32": 1024, "bfloat16": 2048}
GEMM_REPEATS = 5
#: Bytes copied per bandwidth repeat (read + write counted): source + destination (512 MiB)
#: exceed the largest L3 lscpu shows on the VMs here (480 MiB). 256 MiB and 1 GiB measured the
#: same bandwidth (26.5 GB/s); the larger buffer only costs page faults (2 s against 0.1 s).
COPY_BYTES = 2**28
COPY_REPEATS = 3


def _cpuinfo() -> dict[str, list[str]]:
    """``/proc/cpuinfo`` fields (Linux), every value of each key; empty elsewhere."""
    fields: dict[str, list[str]] = {}
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return fields
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), []).append(value.strip())
    return fields


def _sys_mhz(name: str) -> float | None:
    """cpu0 cpufreq value in MHz (kHz in sysfs), if the kernel exposes it."""
    try:
        return int(Path(f"/sys/devices/system/cpu/cpu0/cpufreq/{name}").read_text()) / 1000
    except (OSError, ValueError):
        return None


def cpu_model() -> str:
    info = _cpuinfo()
    for key in ("model name", "Hardware", "Processor", "cpu model"):
        if info.get(key):
            return info[key][0]
    return platform.processor() or platform.machine() or "unknown CPU"


def current_mhz() -> float | None:
    """Mean current clock over cores: /proc/cpuinfo's ``cpu MHz``, else psutil."""
    values = [float(v) for v in _cpuinfo().get("cpu MHz", [])
              if v.replace(".", "", 1).isdigit()]
    if values:
        return sum(values) / len(values)
    import psutil

    freq = psutil.cpu_freq()
    return float(freq.current) if freq and freq.current else None


def base_mhz() -> float | None:
    """Nominal clock: sysfs ``base_frequency`` (Intel), else the max from cpufreq, else the
    current clock (a VM often exposes nothing else)."""
    import psutil

    freq = psutil.cpu_freq()
    return (_sys_mhz("base_frequency") or (float(freq.max) if freq and freq.max else None)
            or current_mhz())


def measure_roofline(threads: int) -> HostRoofline:
    """Peak fp32/bf16 GEMM GFLOP/s and copy bandwidth of this host (best of a few repeats)."""
    import torch

    gflops: dict[str, float | None] = {}
    for name, n in GEMM_N.items():
        dtype = getattr(torch, name)
        try:
            a = torch.randn(n, n).to(dtype)
            b = torch.randn(n, n).to(dtype)
            torch.matmul(a, b)  # warm-up: oneDNN/BLAS primitive creation
            best = float("inf")
            for _ in range(GEMM_REPEATS):
                t0 = time.perf_counter()
                torch.matmul(a, b)
                best = min(best, time.perf_counter() - t0)
            gflops[name] = 2.0 * n**3 / best / 1e9
        except RuntimeError:  # dtype unsupported by this build
            gflops[name] = None
    src = torch.ones(COPY_BYTES // 4, dtype=torch.float32)
    dst = torch.empty_like(src)
    dst.copy_(src)  # fault the pages in before timing
    best = float("inf")
    for _ in range(COPY_REPEATS):
        t0 = time.perf_counter()
        dst.copy_(src)
        best = min(best, time.perf_counter() - t0)
    del src, dst
    bandwidth = 2 * COPY_BYTES / best / 1e9
    method = (f"torch {torch.__version__}, {threads} thread(s): torch.matmul "
              + ", ".join(f"{n}x{n}x{n} {name}" for name, n in GEMM_N.items())
              + f", best of {GEMM_REPEATS} (2*n^3 flops); bandwidth = Tensor.copy_ of "
              f"{COPY_BYTES // 2**20} MiB fp32, read + write bytes, best of {COPY_REPEATS}")
    return HostRoofline(peak_fp32_gflops=_round(gflops["float32"]),
                        peak_bf16_gflops=_round(gflops["bfloat16"]),
                        memory_bandwidth_gb_s=_round(bandwidth), method=method)


def _round(x: float | None) -> float | None:
    """Two decimals; a clock, peak or bandwidth the host reports as 0 is unknown (None)."""
    return None if x is None or not x > 0 else round(x, 2)


def system_info(threads: int, reference_mhz: float = DEFAULT_REFERENCE_MHZ,
                roofline: HostRoofline | None = None) -> SystemInfo:
    """The host as ``SystemInfo`` (clocks read now)."""
    import psutil

    return SystemInfo(
        cpu_model=cpu_model(), arch=platform.machine().upper(),
        physical_cores=psutil.cpu_count(logical=False), logical_cores=psutil.cpu_count(),
        torch_threads=threads, base_mhz=_round(base_mhz()), current_mhz=_round(current_mhz()),
        reference_mhz=reference_mhz, roofline=roofline or HostRoofline(method="not measured"),
    )


__all__ = ["DEFAULT_REFERENCE_MHZ", "base_mhz", "cpu_model", "current_mhz", "measure_roofline",
           "system_info"]
