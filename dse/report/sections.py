"""dse's own sections inside a profiling report, fenced by HTML-comment markers.

Each stage (``explore``, ``calibrate``) owns one section per board. Re-running replaces exactly
that span, markers inclusive; the profiling report and every other section stay byte-identical
(line endings included: a CRLF report gets its new section in CRLF too).

The report is the user's, so dse's text is recognised only as dse writes it: a marker is a
whole line, exactly as ``section_markers`` writes it, outside fenced code blocks (a user may
quote dse's markers in a code block, and that quote is theirs). The same board's section
written twice (two copies pasted, a merge) is replaced by one; a begin marker without its end
is reported in one line, never guessed at. A board's name reaches a marker only through
``marker_token`` and a summary only through ``summary_comment``, so nothing in a name can end
an HTML comment early.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import quote

from dse.errors import DseError

SUMMARY_PREFIX = "<!-- dse:summary "
SUMMARY_SUFFIX = " -->"


@dataclass(frozen=True)
class Line:
    """One line of a text: where it starts, where its text ends (before the line ending),
    where the next line starts, and its text."""

    start: int
    stop: int
    next: int
    text: str


_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")


def lines_outside_fences(text: str) -> list[Line]:
    """The lines of ``text`` that are not inside a fenced code block (CommonMark: a fence is
    three or more backticks or tildes, indented at most three spaces, closed by a line of at
    least as many of the same character; an unclosed fence runs to the end)."""
    out: list[Line] = []
    fence: str | None = None
    pos = 0
    for raw in text.splitlines(keepends=True):
        body = raw.rstrip("\r\n")
        line = Line(pos, pos + len(body), pos + len(raw), body)
        pos += len(raw)
        m = _FENCE.fullmatch(body)
        if fence is None:
            if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
                fence = m.group(1)
                continue
            out.append(line)
        elif m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) \
                and not m.group(2).strip():
            fence = None
    return out


def line_ending(text: str) -> str:
    """The report's line ending: ``\\r\\n`` when most of its lines end so, else ``\\n``."""
    crlf = text.count("\r\n")
    return "\r\n" if crlf and crlf * 2 >= text.count("\n") else "\n"


def with_line_ending(text: str, eol: str) -> str:
    """dse's own text (written with ``\\n``) in the report's line ending."""
    return text if eol == "\n" else text.replace("\r\n", "\n").replace("\n", eol)


def marker_token(board_stem: str) -> str:
    """A board's stem as it appears in a marker: unchanged for the usual names (``zcu104``,
    ``pynq-z2``), percent-encoded otherwise, so a file named ``a -->.yaml`` cannot end the
    comment early."""
    return quote(board_stem, safe="-_.~+")


def section_markers(kind: str, board_stem: str) -> tuple[str, str]:
    """The begin and end lines that fence one board's section of one stage."""
    token = marker_token(board_stem)
    return (f"<!-- dse:{kind} board={token} begin -->",
            f"<!-- dse:{kind} board={token} end -->")


def spans(text: str, begin: str, end: str, what: str) -> list[tuple[Line, Line]]:
    """Each (begin line, end line) pair of ``begin``/``end`` marker lines outside fences.

    A begin marker with no end marker after it (before the next begin marker) is dse's
    text cut short: where it ended cannot be known, so it is reported, naming ``what``.
    """
    out: list[tuple[Line, Line]] = []
    opened: Line | None = None
    for line in lines_outside_fences(text):
        if line.text == begin:
            if opened is not None:
                break
            opened = line
        elif line.text == end and opened is not None:
            out.append((opened, line))
            opened = None
    if opened is not None:
        raise DseError(f"report: {what} has its begin marker but no end marker; expected "
                       f"{end!r} (fix or remove it by hand)")
    return out


def drop_spans(text: str, pairs: list[tuple[Line, Line]]) -> str:
    """``text`` without the given spans (markers inclusive), each with the blank line after
    it, if any."""
    for first, last in reversed(pairs):
        stop = last.next
        if text[stop:stop + 2] == "\r\n":
            stop += 2
        elif text[stop:stop + 1] == "\n":
            stop += 1
        text = text[:first.start] + text[stop:]
    return text


def upsert_section(report_text: str, kind: str, board_stem: str, section: str) -> str:
    """Replace this board's section (markers inclusive) or append it after a blank line.

    More than one copy of the section: the first is replaced, the others removed.
    """
    begin, end = section_markers(kind, board_stem)
    body = section.strip("\n")
    if not (body.startswith(begin) and body.endswith(end)):
        raise ValueError(f"section: expected text fenced by {begin!r} and {end!r}")
    eol = line_ending(report_text)
    body = with_line_ending(body, eol)
    pairs = spans(report_text, begin, end, f"the {kind} section for board {board_stem}")
    if pairs:
        text = drop_spans(report_text, pairs[1:])
        first, last = pairs[0]
        return text[:first.start] + body + text[last.stop:]
    if not report_text or report_text.endswith(eol + eol) or report_text.endswith("\n\n"):
        sep = ""
    elif report_text.endswith("\n"):
        sep = eol
    else:
        sep = eol + eol
    return report_text + sep + body + eol


# -- summaries: a board's best plan in a line of JSON, read back by the boards table ---------

def summary_comment(summary: dict) -> str:
    """The summary line of a section: JSON inside an HTML comment, with ``<``, ``>`` and
    ``&`` escaped (``\\u003c`` ...) so no value, whatever a board is named, ends it early."""
    text = json.dumps(summary, ensure_ascii=False, sort_keys=True)
    for ch, esc in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e")):
        text = text.replace(ch, esc)
    return f"{SUMMARY_PREFIX}{text}{SUMMARY_SUFFIX}"


_SECTION_BEGIN = re.compile(r"<!-- dse:explore board=(\S+) begin -->")


_NONE = object()


def read_summaries(text: str) -> list[tuple[str, dict | None]]:
    """(board token, summary) of each explore section of the report that holds a summary
    line, in order; the summary is None where dse cannot read it (another version's, or
    edited). A section with no summary line at all is not listed."""
    out: list[tuple[str, dict | None]] = []
    current: str | None = None
    found: object = _NONE
    for line in lines_outside_fences(text):
        m = _SECTION_BEGIN.fullmatch(line.text)
        if m:
            current, found = m.group(1), _NONE
            continue
        if current is None:
            continue
        if line.text == f"<!-- dse:explore board={current} end -->":
            if found is not _NONE:
                out.append((current, found))
            current = None
        elif (found is _NONE and line.text.startswith(SUMMARY_PREFIX)
              and line.text.endswith(SUMMARY_SUFFIX)):
            found = _parse_summary(line.text[len(SUMMARY_PREFIX):-len(SUMMARY_SUFFIX)])
    return out


def _parse_summary(text: str) -> dict | None:
    try:
        data = json.loads(text, parse_constant=lambda name: None)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def first_section_start(text: str, kind: str) -> int | None:
    """Where the first ``kind`` section's begin marker line starts (None: no section)."""
    pattern = re.compile(rf"<!-- dse:{kind} board=\S+ begin -->")
    return next((line.start for line in lines_outside_fences(text)
                 if pattern.fullmatch(line.text)), None)


def image_link(alt: str, file_name: str) -> str:
    """A Markdown image whose file name may hold spaces or brackets (percent-encoded)."""
    return f"![{alt}]({quote(file_name)})"
