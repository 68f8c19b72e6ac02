"""What several commands do alike at the edge: take the --profile option, open the report.

Not a sub-command (it is not listed in ``dse.commands.COMMANDS``).
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

from dse.errors import DseError
from dse.io import read_text
from dse.profile.format import Profile

#: File stem of reports made from the embedded default profile.
DEFAULT_STEM = "bitnet-2b4t"


def load_profile_option(path: Path | None) -> tuple[Profile, str, str]:
    """(profile, report stem, where it came from) for ``--profile`` (None: the embedded one)."""
    from dse.profile.default import default_profile
    from dse.profile.format import load_profile

    if path is None:
        return default_profile(), DEFAULT_STEM, "embedded default (BitNet-2B-4T, seed report)"
    stem = re.sub(r"(\.profile)?$", "", path.stem)
    return load_profile(path), stem, str(path)


def default_report_path(profile: Profile | None, stem: str) -> Path:
    """``reports/<stem>.<lang>.md``, creating ``reports/`` (only this default folder); a
    model without a profile gets an English report."""
    Path("reports").mkdir(exist_ok=True)
    lang = "en" if profile is None else profile.report_lang or "zh"
    return Path("reports") / f"{stem}.{lang}.md"


def report_text(report_path: Path, profile: Profile, stem: str) -> tuple[str, str]:
    """(text, language) of the report at ``report_path`` to add a section to."""
    current = read_text(report_path, "report") if report_path.exists() else None
    return base_report_text(current, profile, stem)


def base_report_text(current: str | None, profile: Profile | None, stem: str
                     ) -> tuple[str, str]:
    """(text, language) of the report to add a section to, given its current text.

    An existing report is taken as it is (its text is never altered, only appended to); a new
    one (``current`` None) starts as the profiling report: the seed itself for the embedded
    default, else one rendered from the profile.
    """
    from dse.report.i18n import detect_lang

    if current is not None:
        text = current
    elif profile is None:  # a model config alone: no profiling report to append to
        text = (f"# {stem}\n\nNo profile: the model's operators and Linear shapes come from "
                f"its config; the native runtime prices every kernel from instruction counts "
                f"and the torch runtime is not measured.\n")
    else:
        from dse.profile.default import DEFAULT_REPORT_NAME, data_file
        from dse.report.profile_md import render_profile_report

        lang = profile.report_lang or "zh"
        if stem == DEFAULT_STEM and lang == "zh":
            text = data_file(DEFAULT_REPORT_NAME).read_text(encoding="utf-8")
        else:
            text = render_profile_report(profile, lang)
    return text, detect_lang(text) or "en"


def profile_inputs(path: Path | None) -> list[Path]:
    """The files ``--profile`` makes the run read: the named one, or (the embedded default)
    the shipped profile and seed report, which no output may overwrite either."""
    if path is not None:
        return [path]
    from dse.profile.default import DEFAULT_PROFILE_NAME, DEFAULT_REPORT_NAME, data_file

    return [Path(str(data_file(name))) for name in (DEFAULT_PROFILE_NAME, DEFAULT_REPORT_NAME)]


def calibration_input(board, option: str | None) -> Path | None:
    """The calibration file the run reads (an input), if any: ``--calibration FILE``, else
    the board file's ``calibration:`` field, else none."""
    from dse.model.calibration import calibration_file

    return calibration_file(board, option)


# -- option types: bad values fail in argparse, before anything is loaded ----------------------

#: Sanity ceiling of integer options (tokens, repeats, lanes): far above any real run.
MAX_INT_OPTION = 10**7


def _int_option(low: int):
    """argparse type: an integer from ``low`` to MAX_INT_OPTION."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}"
                                             ) from None
        if not low <= value <= MAX_INT_OPTION:
            raise argparse.ArgumentTypeError(
                f"expected an integer >= {low} and <= {MAX_INT_OPTION:,}, got {text!r}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


positive_int = _int_option(1)
non_negative_int = _int_option(0)


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (``inf`` and ``nan`` are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not (math.isfinite(value) and 0 < value <= 1e9):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def add_scenario_options(p, search: bool = False) -> None:
    """The serving scenario options shared by explore and project (``search``: explore,
    where ``--kv-dtype`` may list several formats for the search to choose among)."""
    from dse.model.cpu import RUNTIMES
    from dse.model.ops import KV_DTYPES

    p.add_argument("--runtime", default="any",
                   help=f"PS runtime for what stays on the CPU: any (searched), "
                   f"{' or '.join(RUNTIMES)}")
    p.add_argument("--context-tokens", type=positive_int, default=None,
                   help="context decode attends over (default: prompt + generated tokens)")
    if search:
        from dse.search.optimize import SEARCHED_KV_DTYPES

        searched = ",".join(SEARCHED_KV_DTYPES)
        p.add_argument("--kv-dtype", default=searched,
                       help=f"KV-cache element type, or a comma-separated list the search "
                       f"chooses among per plan ({', '.join(KV_DTYPES)}; default "
                       f"{searched})")
    else:
        p.add_argument("--kv-dtype", default="fp16",
                       help=f"KV-cache element type: {', '.join(KV_DTYPES)}")
    p.add_argument("--sequences", type=positive_int, default=1,
                   help="independent sequences sharing each weight pass (batched decode)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="CPU threads of the runtime (default: every core)")


def kv_formats(text: str) -> tuple[str, ...]:
    """``--kv-dtype``'s formats, in order, each checked (one line naming a bad one)."""
    from dse.model.ops import kv_bytes

    formats = tuple(dict.fromkeys(f.strip() for f in str(text).split(",")))
    for f in formats:
        kv_bytes(f, "--kv-dtype")
    return formats


def check_serving(args, counts: tuple[str, ...] = ("sequences", "threads")) -> None:
    """The KV-cache type and the counting options (>= 1 where given), one line each."""
    from dse.model.ops import kv_bytes

    kv_bytes(args.kv_dtype, "--kv-dtype")
    for name in counts:
        v = getattr(args, name)
        if v is not None and v < 1:
            raise DseError(f"--{name.replace('_', '-')}: expected an integer >= 1, got {v}")


def scenario_fields(args) -> dict:
    """Objective fields from the scenario options, each checked with a one-line error."""
    from dse.model.cpu import RUNTIMES, check_runtime

    runtime = args.runtime
    runtimes = RUNTIMES if runtime == "any" else (check_runtime(runtime, "--runtime"),)
    kvs = kv_formats(args.kv_dtype)
    args = argparse.Namespace(**{**vars(args), "kv_dtype": kvs[0]})
    check_serving(args, ("context_tokens", "sequences", "threads"))
    return {"runtimes": runtimes, "context": args.context_tokens, "kv_dtype": kvs[0],
            "kv_dtypes": kvs if len(kvs) > 1 else (), "sequences": args.sequences,
            "threads": args.threads}
