"""dse's own sections inside a profiling report, fenced by HTML-comment markers.

Each stage (``explore``, ``calibrate``) owns one section per board. Re-running replaces exactly
that span, markers inclusive; the profiling report and every other section stay byte-identical.
"""

from __future__ import annotations

from dse.errors import DseError


def section_markers(kind: str, board_stem: str) -> tuple[str, str]:
    """The begin and end lines that fence one board's section of one stage."""
    return (f"<!-- dse:{kind} board={board_stem} begin -->",
            f"<!-- dse:{kind} board={board_stem} end -->")


def upsert_section(report_text: str, kind: str, board_stem: str, section: str) -> str:
    """Replace this board's section (markers inclusive) or append it after a blank line."""
    begin, end = section_markers(kind, board_stem)
    body = section.strip("\n")
    if not (body.startswith(begin) and body.endswith(end)):
        raise ValueError(f"section: expected text fenced by {begin!r} and {end!r}")
    start = report_text.find(begin)
    if start >= 0:
        stop = report_text.find(end, start)
        if stop < 0:
            raise DseError(f"report: the {kind} section for board {board_stem} has its begin "
                           f"marker but no end marker; expected {end!r} (fix or remove it by "
                           f"hand)")
        return report_text[:start] + body + report_text[stop + len(end):]
    if not report_text or report_text.endswith("\n\n"):
        sep = ""
    elif report_text.endswith("\n"):
        sep = "\n"
    else:
        sep = "\n\n"
    return report_text + sep + body + "\n"
