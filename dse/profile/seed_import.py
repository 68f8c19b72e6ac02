"""Read a profile report in the seed's Markdown format (Chinese or English) into a Profile.

The seed report is the only measurement of BitNet b1.58 2B4T we have, and ``dse profile``
writes the same format, so Markdown is an input format in its own right. Headings and labels
come from ``dse.report.i18n``, the table the writer uses too. The importer is strict: a report
whose Linear list was cut short would silently under-count the model, so the list is checked
against the report's own totals, and any malformed line is reported by number.

Values the Markdown does not hold stay unknown (``None``): the per-phase split of each layer's
calls and time, and the prompt length. Derived columns (shares, normalized times of layers,
the top-20 and per-role tables, token statistics) are not read; they follow from the rest.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar

from dse import __version__
from dse.errors import DseError, located
from dse.io import read_text
from dse.profile.format import (
    PHASES,
    MemorySample,
    ModuleRecord,
    Phase,
    Profile,
    Provenance,
    SystemInfo,
    Token,
    layer_index_of,
    profile_from_dict,
    profile_to_dict,
    role_of,
)
from dse.profile.outliers import flag_warmup_outliers
from dse.report.i18n import LANGS, UNKNOWN, columns, detect_lang, phase_label, split_row, t
from dse.report.i18n import uncode_cell as _uncode

#: Tolerance of the Linear-list cross-check: rows are printed to 0.01 ms, so 211 rounded rows
#: can drift from the printed total by ~0.01 ms; a missing row costs >= ~28 ms in the seed.
SUM_TOLERANCE_MS = 0.05

NOTES = (
    "imported from a Markdown report: per-module prefill/decode split (prefill_ms, decode_ms, "
    "prefill_calls, decode_calls) is not in the report and is unknown (None)",
    "imported from a Markdown report: the prompt token count is not in the report and is "
    "unknown (None)",
    "Linear params = in_features x out_features (no bias) where that agrees with the report's "
    "rounded value; otherwise the rounded value",
)

T = TypeVar("T")
_EMPTY = {"", UNKNOWN, "-", "–"}
_BOLD_FIELD = re.compile(r"^\s*(?:[-*]\s+)?\*\*(?P<key>[^*]+)\*\*\s*[:：]\s*(?P<val>.*?)\s*$")
_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?")
_UNITS = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9}


@dataclass(frozen=True)
class _Doc:
    """The report's lines with the source path and language, for located errors."""

    path: str
    lang: str
    lines: tuple[str, ...]

    def err(self, where: str, expected: str, got: object | None = None) -> DseError:
        return located(self.path, where, expected, got)

    def label(self, key: str) -> str:
        return t(key, self.lang)


# -- cell parsers (raise ValueError; the caller names the line) -------------------------------

def _float(cell: str) -> float:
    m = _NUMBER.fullmatch(cell.strip().strip("*").strip())
    if not m:
        raise ValueError("a number")
    value = float(m.group(0).replace(",", ""))
    if not math.isfinite(value):
        raise ValueError("a finite number")
    return value


def _opt_float(cell: str) -> float | None:
    return None if cell.strip() in _EMPTY else _float(cell)


def _time(cell: str) -> float:
    """A time, size or count: a finite number >= 0 (a negative one is a corrupt report)."""
    value = _float(cell)
    if value < 0:
        raise ValueError("a number >= 0")
    return value


def _opt_time(cell: str) -> float | None:
    return None if cell.strip() in _EMPTY else _time(cell)


def _int_at_least(cell: str, low: int) -> int:
    value = _float(cell)
    if value != int(value) or value < low:
        raise ValueError(f"an integer >= {low}")
    return int(value)


def _int(cell: str) -> int:
    return _int_at_least(cell, 0)


def _count(cell: str) -> int:
    """A call count: an integer >= 1 (a recorded module was called)."""
    return _int_at_least(cell, 1)


def _opt_int(cell: str) -> int | None:
    return None if cell.strip() in _EMPTY else _int(cell)


def _leading(cell: str, unit: str) -> float:
    """``"3793 MHz"`` -> 3793.0; ``"9901.12 MB (9.67 GB)"`` -> 9901.12."""
    m = re.match(rf"\s*({_NUMBER.pattern})\s*{re.escape(unit)}\b", cell)
    if not m:
        raise ValueError(f"a number in {unit}")
    return _float(m.group(1))


def _opt_leading(unit: str) -> Callable[[str], float | None]:
    return lambda cell: None if cell.strip() in _EMPTY else _leading(cell, unit)


def _shape(cell: str) -> tuple[int, ...]:
    """``"(1, 1, 2560)"`` -> (1, 1, 2560)."""
    body = cell.strip()
    if not (body.startswith("(") and body.endswith(")")):
        raise ValueError("a shape like (1, 1, 2560)")
    dims = [d.strip() for d in body[1:-1].split(",") if d.strip()]
    if not dims or not all(d.isdigit() and int(d) > 0 for d in dims):
        raise ValueError("a shape of positive integers like (1, 1, 2560)")
    return tuple(int(d) for d in dims)


def _params(cell: str) -> tuple[float, float]:
    """``"6.55M"`` -> (6.55e6, half a unit of the last printed digit)."""
    m = re.fullmatch(r"(\d+(?:\.(\d+))?)\s*([KMBG]?)", cell.strip().replace(",", ""))
    if not m:
        raise ValueError("a parameter count like 6.55M")
    unit = _UNITS[m.group(3)]
    decimals = len(m.group(2) or "")
    return float(m.group(1)) * unit, 0.5 * unit * 10.0**-decimals


def _text(cell: str) -> str:
    return "" if cell.strip() in _EMPTY else cell.strip()


def _code(cell: str) -> str:
    return _uncode(cell.strip())


def _cell(doc: _Doc, lineno: int, where: str, column: str, parse: Callable[[str], T],
          cell: str) -> T:
    try:
        return parse(cell)
    except ValueError as exc:
        raise doc.err(f"line {lineno} ({where}, column '{column}')", str(exc), cell) from None


# -- document structure ------------------------------------------------------------------------

def _find(doc: _Doc, key: str, *, after: int = 0) -> int | None:
    """Index of the heading line ``key`` (exact), or None."""
    want = doc.label(key)
    return next((i for i in range(after, len(doc.lines)) if doc.lines[i].rstrip() == want), None)


def _section(doc: _Doc, key: str, *, required: bool = True) -> tuple[int, int] | None:
    """Line range (start, end) of the body under heading ``key``, up to the next heading."""
    head = _find(doc, key)
    if head is None:
        if required:
            raise doc.err(f"section '{doc.label(key)}'", "this heading (section is missing)")
        return None
    end = next((i for i in range(head + 1, len(doc.lines)) if doc.lines[i].startswith("#")),
               len(doc.lines))
    return head + 1, end


def _fields(doc: _Doc, span: tuple[int, int]) -> dict[str, tuple[str, int]]:
    """``**label**: value`` lines in ``span``: label -> (value, 1-based line number)."""
    out: dict[str, tuple[str, int]] = {}
    for i in range(*span):
        m = _BOLD_FIELD.match(doc.lines[i])
        if m:
            out.setdefault(m.group("key").strip(), (m.group("val"), i + 1))
    return out


def _field(doc: _Doc, fields: dict[str, tuple[str, int]], key: str, where: str,
           parse: Callable[[str], T], *, required: bool = True) -> T | None:
    label = doc.label(key)
    if label not in fields:
        if required:
            raise doc.err(f"{where}, '**{label}**'", "this line (field is missing)")
        return None
    value, lineno = fields[label]
    try:
        return parse(value)
    except ValueError as exc:
        raise doc.err(f"line {lineno} ({where}, '{label}')", str(exc), value) from None


def _table(doc: _Doc, span: tuple[int, int], cols_key: str,
           where: str) -> list[tuple[int, tuple[str, ...]]]:
    """The rows (1-based line number, cells) of the table in ``span`` with header ``cols_key``."""
    want = columns(cols_key, doc.lang)
    start = next((i for i in range(*span) if doc.lines[i].lstrip().startswith("|")), None)
    if start is None:
        raise doc.err(f"section '{where}'", f"a table '{doc.label(cols_key)}' (table is missing)")
    header = split_row(doc.lines[start])
    if header != want:
        raise doc.err(f"line {start + 1} ({where})", f"the header '{doc.label(cols_key)}'",
                      doc.lines[start].strip())
    rows = []
    for i in range(start + 1, span[1]):
        line = doc.lines[i].strip()
        if not line.startswith("|"):
            break
        cells = split_row(line)
        if i == start + 1 and all(set(c) <= set("-: ") and c for c in cells):
            continue  # the |------|---| separator
        if len(cells) != len(want):
            raise doc.err(f"line {i + 1} ({where})", f"a row of {len(want)} cells",
                          f"{len(cells)} cells")
        rows.append((i + 1, cells))
    return rows


def _title(doc: _Doc, key: str) -> str:
    return doc.label(key).lstrip("#").strip()


# -- sections ----------------------------------------------------------------------------------

def _header(doc: _Doc, s1_start: int) -> tuple[str, str, str | None]:
    fields = _fields(doc, (0, s1_start))
    where = "report header"
    model = _field(doc, fields, "model_path", where, _code)
    dtype = _field(doc, fields, "dtype", where, _code)
    measured = _field(doc, fields, "generated", where, lambda v: None if v in _EMPTY else v,
                      required=False)
    return str(model), str(dtype), measured


def _system(doc: _Doc) -> SystemInfo:
    where = _title(doc, "s1.cpu")
    rows = _table(doc, _section(doc, "s1.cpu"), "cols.cpu", where)
    fields = {cells[0]: (cells[1], lineno) for lineno, cells in rows}

    def get(key: str, parse: Callable[[str], T], *, required: bool = False) -> T | None:
        return _field(doc, fields, key, where, parse, required=required)

    mhz = _opt_leading("MHz")
    norm = _section(doc, "s1.norm", required=False)
    reference = (_field(doc, _fields(doc, norm), "norm.reference", _title(doc, "s1.norm"), mhz,
                        required=False) if norm else None)
    return SystemInfo(
        cpu_model=str(get("cpu.model", _text, required=True)),
        arch=get("cpu.arch", _text) or "",
        physical_cores=get("cpu.physical", _opt_int),
        logical_cores=get("cpu.logical", _opt_int),
        torch_threads=get("cpu.threads", _opt_int),
        base_mhz=get("cpu.base_mhz", mhz),
        current_mhz=get("cpu.current_mhz", mhz),
        reference_mhz=reference,
    )


def _phases(doc: _Doc) -> tuple[Phase, ...]:
    where = _title(doc, "s2")
    rows = _table(doc, _section(doc, "s2"), "cols.phases", where)
    by_label = {phase_label(p, doc.lang): p for p in PHASES}
    total = doc.label("total")
    cols = columns("cols.phases", doc.lang)
    found: dict[str, Phase] = {}
    for lineno, cells in rows:
        label = cells[0].strip("*").strip()
        if label == total:
            continue
        if label not in by_label:
            raise doc.err(f"line {lineno} ({where}, column '{cols[0]}')",
                          "one of " + ", ".join(by_label), label)
        name = by_label[label]
        if name in found:
            raise doc.err(f"line {lineno} ({where})", "each phase once", label)
        found[name] = Phase(
            name=name,
            ms=_cell(doc, lineno, where, cols[1], _time, cells[1]),
            normalized_ms=_cell(doc, lineno, where, cols[2], _opt_time, cells[2]),
            mem_delta_mb=_cell(doc, lineno, where, cols[4], _opt_float, cells[4]),
        )
    if not found:
        raise doc.err(f"section '{where}'", "at least one phase row")
    return tuple(found[p] for p in PHASES if p in found)


def _peak_memory(doc: _Doc) -> float | None:
    span = _section(doc, "s2.summary", required=False)
    if span is None:
        return None
    return _field(doc, _fields(doc, span), "sum.peak_memory", _title(doc, "s2.summary"),
                  _opt_leading("MB"), required=False)


def _module(doc: _Doc, lineno: int, cells: tuple[str, ...], where: str) -> ModuleRecord:
    cols = columns("cols.full", doc.lang)
    name = _cell(doc, lineno, where, cols[0], _code, cells[0])
    if not name:
        raise doc.err(f"line {lineno} ({where}, column '{cols[0]}')", "a layer name", cells[0])
    in_shape = _cell(doc, lineno, where, cols[4], _shape, cells[4])
    out_shape = _cell(doc, lineno, where, cols[5], _shape, cells[5])
    params: int | None = None
    if cells[6].strip() not in _EMPTY:
        approx, half_unit = _cell(doc, lineno, where, cols[6], _params, cells[6])
        exact = in_shape[-1] * out_shape[-1]
        params = exact if abs(exact - approx) <= half_unit else round(approx)
    return ModuleRecord(
        name=name, module_type="Linear", role=role_of(name), layer_index=layer_index_of(name),
        input_shape=in_shape, output_shape=out_shape, params=params,
        calls=_cell(doc, lineno, where, cols[1], _count, cells[1]),
        total_ms=_cell(doc, lineno, where, cols[2], _time, cells[2]),
    )


def _linears(doc: _Doc) -> tuple[ModuleRecord, ...]:
    where = _title(doc, "s3")
    fields = _fields(doc, _section(doc, "s3"))
    count = _field(doc, fields, "lin.count", where, _int)
    total = _field(doc, fields, "lin.total", where, lambda v: _leading(v, "ms"))
    full = _title(doc, "s3.full")
    rows = _table(doc, _section(doc, "s3.full"), "cols.full", full)
    modules = tuple(_module(doc, lineno, cells, full) for lineno, cells in rows)
    names = [m.name for m in modules]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise doc.err(f"section '{full}'", "each layer once", dup)
    if len(modules) != count:
        raise doc.err(f"section '{full}'",
                      f"{count} rows ('{doc.label('lin.count')}'; table truncated?)",
                      f"{len(modules)} rows")
    got = sum(m.total_ms for m in modules)
    if total is not None and abs(got - total) > SUM_TOLERANCE_MS:
        raise doc.err(f"section '{full}'",
                      f"rows summing to {total:.2f} ms ('{doc.label('lin.total')}', within "
                      f"{SUM_TOLERANCE_MS} ms; table truncated?)", f"{got:.2f} ms")
    return modules


def _tokens(doc: _Doc) -> tuple[Token, ...]:
    where = _title(doc, "s4.list")
    cols = columns("cols.tokens", doc.lang)
    rows = _table(doc, _section(doc, "s4.list"), "cols.tokens", where)
    tokens = tuple(Token(
        index=_cell(doc, n, where, cols[0], _int, c[0]),
        token_id=_cell(doc, n, where, cols[1], _opt_int, c[1]),
        text=_cell(doc, n, where, cols[2], _code, c[2]),
        ms=_cell(doc, n, where, cols[3], _time, c[3]),
        normalized_ms=_cell(doc, n, where, cols[4], _opt_time, c[4]),
        mem_mb=_cell(doc, n, where, cols[5], _opt_time, c[5]),
    ) for n, c in rows)
    _check_token_count(doc, tokens, where)
    return tokens


def _check_token_count(doc: _Doc, tokens: tuple[Token, ...], where: str) -> None:
    """A token list cut short is caught by any count the report states and by a gap in the
    token numbers: every '**Generated tokens**: N' line, the '(N tokens)' of the list's
    fold, and indices running 1, 2, 3 ... without a hole."""
    counts = []
    label = doc.label("tok.count")
    expand = re.compile(re.escape(doc.label("tok.expand")).replace(r"\{n\}", r"(\d+)"))
    for i, line in enumerate(doc.lines):
        m = _BOLD_FIELD.match(line)
        if m and m.group("key").strip() == label:
            try:
                counts.append((i + 1, _int(m.group("val"))))
            except ValueError as exc:
                raise doc.err(f"line {i + 1} ('{label}')", str(exc), m.group("val")) from None
        m = expand.search(line)
        if m:
            counts.append((i + 1, int(m.group(1))))
    for lineno, count in counts:
        if count != len(tokens):
            raise doc.err(f"section '{where}'", f"{count} rows (line {lineno} says {count} "
                          f"tokens; table truncated?)", f"{len(tokens)} rows")
    for want, tok in enumerate(tokens, start=tokens[0].index if tokens else 0):
        if tok.index != want:
            raise doc.err(f"section '{where}'", f"token {want} after token {want - 1} (a row "
                          f"is missing or out of order)", f"token {tok.index}")


def _memory(doc: _Doc) -> tuple[MemorySample, ...]:
    where = _title(doc, "s5")
    cols = columns("cols.memory", doc.lang)
    rows = _table(doc, _section(doc, "s5"), "cols.memory", where)
    return tuple(MemorySample(
        t_s=_cell(doc, n, where, cols[0], _time, c[0]),
        rss_mb=_cell(doc, n, where, cols[1], _time, c[1]),
        vms_mb=_cell(doc, n, where, cols[2], _opt_time, c[2]),
        sys_used_mb=_cell(doc, n, where, cols[3], _opt_time, c[3]),
        sys_total_mb=_cell(doc, n, where, cols[4], _opt_time, c[4]),
    ) for n, c in rows)


# -- entry points ------------------------------------------------------------------------------

def parse_report(text: str, path: str = "<report>", *, created: str | None = None) -> Profile:
    """Build a Profile from the text of a seed-format report (pure but for the default time).

    ``created`` is the provenance timestamp; by default now (UTC, ISO 8601).
    """
    lang = detect_lang(text)
    if lang is None:
        heads = " or ".join(f"'{t('s1', lg)}'" for lg in LANGS)
        raise located(path, "", f"a dse/seed profile report in Markdown (no {heads} heading)")
    doc = _Doc(path=path, lang=lang, lines=tuple(text.splitlines()))
    s1 = _find(doc, "s1")
    if s1 is None:
        raise doc.err(f"section '{doc.label('s1')}'", "this heading (section is missing)")
    model, dtype, measured = _header(doc, s1)
    modules = flag_warmup_outliers(_linears(doc))
    profile = Profile(
        model=model, dtype=dtype, system=_system(doc), phases=_phases(doc), modules=modules,
        tokens=_tokens(doc), memory=_memory(doc),
        provenance=Provenance(
            tool="dse import", source=path,
            created=created or datetime.now(timezone.utc).isoformat(timespec="seconds"),
            versions={"dse": __version__}, notes=NOTES),
        prompt_tokens=None, peak_memory_mb=_peak_memory(doc), measured_at=measured,
        report_lang=lang,
    )
    # The net under the cell parsers: what the profile loader would refuse later (a value
    # out of range, a Linear layer that took no time) is refused now, by the same schema.
    return profile_from_dict(profile_to_dict(profile), path)


def import_report(path: str | Path) -> Profile:
    """Read and parse a seed-format Markdown report file."""
    p = Path(path)
    return parse_report(read_text(p, "report"), str(p))


__all__ = ["NOTES", "SUM_TOLERANCE_MS", "import_report", "parse_report"]
