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


LANG_NAMES = {"zh": "Chinese", "en": "English"}


def add_lang_option(p: argparse.ArgumentParser) -> None:
    """``--lang zh|en``: the language of the report the command writes."""
    p.add_argument("--lang", choices=("zh", "en"), default=None,
                   help="language of the report (and its plots): zh or en (default: an "
                   "existing report's own; a new report's name's .zh.md/.en.md; else the "
                   "profile's, English without a profile)")


def add_evidence_options(p: argparse.ArgumentParser) -> None:
    """``--calibration``, ``--fabric``, ``--validation``: the files a projection's figures and
    their bands rest on, the same for every command that projects (explore, project)."""
    p.add_argument("--calibration", default=None,
                   help="calibration file to apply (default: the board file's calibration: "
                   "field, else none; 'none' ignores that field)")
    p.add_argument("--fabric", default=None,
                   help="fabric evidence file: synthesis relation, IP rows, clock closures "
                   "(default: the shipped dse/data/fabric.yaml)")
    p.add_argument("--validation", default=None,
                   help="validation rows every figure's band comes from (default: the shipped "
                   "dse/data/validation.json; 'none': no bands)")


def profile_lang(profile: Profile | None) -> str:
    """The language a profile's report is in (English for a model without a profile)."""
    return "en" if profile is None else profile.report_lang or "zh"


def default_report_path(profile: Profile | None, stem: str, lang: str | None = None) -> Path:
    """``reports/<stem>.<lang>.md``, creating ``reports/`` (only this default folder)."""
    Path("reports").mkdir(exist_ok=True)
    return Path("reports") / f"{stem}.{lang or profile_lang(profile)}.md"


def _name_lang(path: Path) -> str | None:
    """The language a report's file name states (``r.en.md`` -> en), if any."""
    parts = path.name.split(".")
    return parts[-2] if len(parts) >= 3 and parts[-2] in LANG_NAMES else None


def existing_lang(text: str) -> str | None:
    """The language an existing report is written in: its headings' (the profiling report's),
    else Chinese if it has any Chinese character at all, else English; None for an empty
    file (it has none yet)."""
    from dse.report.fonts import CJK_RE
    from dse.report.i18n import detect_lang

    if not text.strip():
        return None
    return detect_lang(text) or ("zh" if CJK_RE.search(text) else "en")


def report_target(report: Path | None, lang: str | None, mi) -> tuple[Path, str]:
    """(report path, language) of the report a command adds its section to.

    The path: ``--report``; else the report the profile was written with or imported from
    (``Profile.report``, beside its JSON); else ``reports/<stem>.<lang>.md``. The language:
    ``--lang``; else an existing report's own; else the name's ``.zh.md``/``.en.md``; else
    the profile's. ``--lang`` against an existing report in the other language is a one-line
    error (a report is written in one language).
    """

    if report is not None:
        path = report
    elif getattr(mi, "report", None) is not None:
        path = mi.report
    else:
        path = default_report_path(mi.profile, mi.stem, lang)
    existing = None
    if path.is_file():
        existing = existing_lang(read_text(path, "report"))
    if lang and existing and existing != lang:
        raise DseError(f"--lang {lang}: {path} is a {LANG_NAMES[existing]} report; expected "
                       f"--lang {existing} for it, or a new --report file for the "
                       f"{LANG_NAMES[lang]} one")
    return path, lang or existing or _name_lang(path) or profile_lang(mi.profile)


def report_text(report_path: Path, profile: Profile, stem: str,
                lang: str | None = None) -> tuple[str, str]:
    """(text, language) of the report at ``report_path`` to add a section to."""
    current = read_text(report_path, "report") if report_path.exists() else None
    return base_report_text(current, profile, stem, lang, report_path)


_NO_PROFILE = {
    "en": ("# {stem}\n\nNo profile: the model's operators and Linear shapes come from its "
           "config; the native runtime prices every kernel from instruction counts and the torch "
           "runtime is not measured.\n"),
    "zh": ("# {stem}\n\n没有 profile：模型的算子与 Linear 形状取自其配置；native 运行时按指令数"
           "为每个内核定价，torch 运行时未测量。\n"),
}


def base_report_text(current: str | None, profile: Profile | None, stem: str,
                     lang: str | None = None, path: Path | str = "report"
                     ) -> tuple[str, str]:
    """(text, language) of the report to add a section to, given its current text.

    An existing report is taken as it is (its text is never altered, only appended to) in
    its own language (``lang``, if given, must be it); a new one (``current`` None) starts
    as the profiling report in ``lang`` (default the profile's): the seed itself for the
    embedded default in Chinese, else one rendered from the profile.
    """

    if current is not None:
        found = existing_lang(current)
        if lang and found and found != lang:
            raise DseError(f"--lang {lang}: {path} is a {LANG_NAMES[found]} report; expected "
                           f"--lang {found} for it, or a new --report file")
        return current, found or lang or "en"
    lang = lang or profile_lang(profile)
    if profile is None:  # a model config alone: no profiling report to append to
        return _NO_PROFILE[lang].format(stem=stem), lang
    from dse.profile.default import DEFAULT_REPORT_NAME, data_file
    from dse.report.profile_md import render_profile_report

    if stem == DEFAULT_STEM and lang == "zh" and profile.report_lang == "zh":
        return data_file(DEFAULT_REPORT_NAME).read_text(encoding="utf-8"), lang
    return render_profile_report(profile, lang), lang


def relative_to_json(report: Path, json_path: Path) -> str:
    """``report``'s path as seen from the profile JSON's folder (``Profile.report``)."""
    import os

    return Path(os.path.relpath(report.resolve(), json_path.resolve().parent)).as_posix()


def profile_inputs(path: Path | None) -> list[Path]:
    """The files ``--profile`` makes the run read: the named one, or (the embedded default)
    the shipped profile and seed report, which no output may overwrite either."""
    if path is not None:
        return [path]
    from dse.profile.default import DEFAULT_PROFILE_NAME, DEFAULT_REPORT_NAME, data_file

    return [Path(str(data_file(name))) for name in (DEFAULT_PROFILE_NAME, DEFAULT_REPORT_NAME)]


def validation_input(option: str | None) -> Path | None:
    """The validation rows the run reads (an input), if the user named a file."""
    return None if option in (None, "none") else Path(option)


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
