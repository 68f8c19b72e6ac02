"""``dse profile``: measure a BitNet model on this CPU; write the profile JSON, report and plots.

Options are checked before anything heavy happens (torch is imported only once they are
valid, so a typo fails in milliseconds with one line), output folders before the run (a
20-minute run must not end in "folder does not exist"). The roofline is measured after the
run, with the same thread count, so its buffers never add to the run's peak memory.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import replace
from pathlib import Path

from dse.commands.common import non_negative_int, positive_float, positive_int
from dse.errors import DseError
from dse.io import Outputs
from dse.profile.runner import DEFAULT_GEN_TOKENS, DTYPES, RunOptions
from dse.report.i18n import LANGS

REPORTS_DIR = Path("reports")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "profile", help="measure a BitNet model on this CPU (needs the [profile] extra)",
        description="Run a BitNet b1.58 model with transformers on the CPU (a local checkpoint "
        "folder, or a preset built from its config with random weights), time every Linear "
        "and the other costly modules per call in prefill and decode, sample memory, measure "
        "the host roofline, and write the profile JSON, a Markdown report and PNG plots.")
    src = p.add_argument_group("model (exactly one)")
    src.add_argument("--model", type=Path, default=None,
                     help="checkpoint folder (config.json model_type 'bitnet'; bf16 or packed "
                          "ternary quantization_config)")
    src.add_argument("--preset", default=None,
                     help="bitnet-b1.58-2B-4T, bitnet_b1_58-large, bitnet_b1_58-3B or tiny")
    p.add_argument("--dtype", default="float32", help=f"one of {', '.join(DTYPES)}")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="torch threads (default: torch's)")
    p.add_argument("--prompt", default=None, help="prompt text (needs a tokenizer in --model)")
    p.add_argument("--prompt-tokens", type=positive_int, default=None,
                   help="synthesize N prompt ids instead (default 32 without --prompt)")
    p.add_argument("--gen-tokens", type=positive_int, default=DEFAULT_GEN_TOKENS,
                   help="decode steps = tokens generated and timed")
    p.add_argument("--warmup", type=non_negative_int, default=1,
                   help="unrecorded warm-up runs first")
    p.add_argument("--lang", default="zh", help="report language: zh or en")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="profile JSON (default: reports/<model>.profile.json)")
    p.add_argument("--report", type=Path, default=None,
                   help="Markdown report (default: <model>.<lang>.md beside the JSON); PNGs "
                   "beside it")
    p.add_argument("--reference-mhz", type=positive_float, default=None,
                   help="clock that normalized times refer to (default 3000, as the seed)")
    p.add_argument("--no-roofline", action="store_true",
                   help="skip measuring the host's GEMM and bandwidth peaks")
    p.add_argument("--no-plots", action="store_true", help="write no PNGs")
    p.add_argument("--memory-interval", type=positive_float, default=0.25,
                   help="seconds between memory samples")
    p.add_argument("--no-progress", "--quiet", dest="no_progress", action="store_true",
                   help="no progress bars on stderr")
    p.set_defaults(run=run)


def options_from_args(args: argparse.Namespace) -> RunOptions:
    if args.memory_interval <= 0:
        raise DseError(f"--memory-interval: expected seconds > 0, got {args.memory_interval}")
    return RunOptions(model=args.model, preset=args.preset, dtype=args.dtype,
                      threads=args.threads, prompt=args.prompt,
                      prompt_tokens=args.prompt_tokens, gen_tokens=args.gen_tokens,
                      warmup=args.warmup, memory_interval_s=args.memory_interval,
                      progress=not args.no_progress)


def stem_of(opts: RunOptions) -> str:
    """File stem of the outputs: the preset name, or the checkpoint folder's name."""
    name = opts.preset if opts.preset is not None else Path(opts.model or "model").resolve().name
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "model"


def output_paths(args: argparse.Namespace, opts: RunOptions, out: Outputs | None = None
                 ) -> tuple[Path, Path]:
    """The profile JSON, the report and (unless --no-plots) its plots, claimed in ``out``."""
    from dse.report.profile_plots import plot_names

    out = out or Outputs()
    stem = stem_of(opts)
    json_path = args.output or REPORTS_DIR / f"{stem}.profile.json"
    # Without --report the report (and its plots) go beside the JSON: -o DIR/x.json puts
    # them in DIR, not under a reports/ folder of the current directory.
    report = args.report or json_path.parent / f"{stem}.{args.lang}.md"
    json_path, report = out.claim(json_path, "profile"), out.claim(report, "report")
    if not args.no_plots:
        for name in plot_names(report.stem).values():
            out.claim(report.parent / name, "plot")
    return json_path, report


#: Packages of the ``[profile]`` extra that ``dse profile`` imports.
EXTRA = ("torch", "transformers", "psutil")


def require_profile_extra() -> None:
    """A one-line error instead of an ImportError traceback when the extra is missing."""
    from importlib.util import find_spec

    missing = [name for name in EXTRA if find_spec(name) is None]
    if missing:
        raise DseError(f"dse profile: expected the [profile] extra to be installed (pip install "
                       f"-e '.[profile]'), missing {', '.join(missing)}")


def run(args: argparse.Namespace) -> int:
    from dse.profile.runner import check_options
    from dse.profile.system import DEFAULT_REFERENCE_MHZ

    if args.lang not in LANGS:
        raise DseError(f"--lang: expected one of {', '.join(LANGS)}, got {args.lang!r}")
    reference = DEFAULT_REFERENCE_MHZ if args.reference_mhz is None else args.reference_mhz
    if not reference > 0:
        raise DseError(f"--reference-mhz: expected a clock > 0, got {args.reference_mhz}")
    opts = options_from_args(args)
    source = check_options(opts)
    out = Outputs([args.model])
    json_path, report_path = output_paths(args, opts, out)
    require_profile_extra()

    from dse.profile.assemble import build_profile
    from dse.profile.format import profile_from_dict, profile_to_dict, profile_to_json
    from dse.profile.runner import run as run_model
    from dse.profile.system import measure_roofline, system_info
    from dse.report.profile_md import render_profile_report

    data = run_model(opts, source)
    roofline = None if args.no_roofline else measure_roofline(data.threads)
    profile = build_profile(data, system_info(data.threads, reference, roofline),
                            lang=args.lang)
    # the profile names its report, so `dse explore --profile` adds its section there
    from dse.commands.common import relative_to_json

    profile = replace(profile, report=relative_to_json(report_path, json_path))
    # What dse writes, dse must read back: the profile passes the loader's schema first.
    profile = profile_from_dict(profile_to_dict(profile), str(json_path))
    out.add(json_path, profile_to_json(profile) + "\n", "profile")
    plots: dict[str, str] = {}
    if not args.no_plots:
        from dse.report.profile_plots import write_profile_plots

        plots = write_profile_plots(profile, report_path.parent, report_path.stem,
                                    write=out.add, lang=args.lang)
    out.add(report_path, render_profile_report(profile, args.lang, plots=plots), "report")
    out.commit()
    print(summary(profile, data.model_bytes, json_path, report_path))
    return 0


def summary(profile, model_bytes: int, json_path: Path, report_path: Path) -> str:
    """One line: what was measured and where it went."""
    lin = profile.linears
    tok = profile.decode_ms_per_token
    peak = profile.peak_memory_mb
    ratio = f" ({peak * 2**20 / model_bytes:.2f}x model bytes)" if peak and model_bytes else ""
    return (f"{profile.model} {profile.dtype}: {len(lin)} Linear, "
            f"{len(profile.modules) - len(lin)} other modules, {profile.generated_tokens} tokens"
            f" at {tok:.2f} ms/token, peak RSS {peak:.0f} MB{ratio} -> {json_path}, "
            f"{report_path}")

