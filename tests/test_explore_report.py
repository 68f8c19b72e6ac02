"""The exploration section (zh/en), its upsert into a report, and the plots."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from dse.errors import DseError
from dse.model.board import load_board
from dse.model.project import CostContext
from dse.report.explore_md import (
    render_explore_section,
    section_markers,
    upsert_section,
)
from dse.report.plots import write_plots
from dse.search.explore import ExploreResult, explore
from dse.search.optimize import Objective

ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLOTS = {"roofline": "r-zcu104-roofline.png", "pareto": "r-zcu104-pareto.png"}


@pytest.fixture(scope="module")
def seed_text(seed_report_text: str) -> str:
    return seed_report_text


@pytest.fixture(scope="module")
def result(seed_workload) -> ExploreResult:
    wl = seed_workload
    ctx = CostContext.for_board(load_board(ROOT / "boards" / "zcu104.yaml"))
    return explore(wl, ctx, Objective())


@pytest.fixture(scope="module")
def sections(result: ExploreResult) -> dict[str, str]:
    return {lang: render_explore_section(result, lang, PLOTS) for lang in ("zh", "en")}


def _plan_rows(section: str) -> list[str]:
    """Body rows of the plan comparison table (the first table whose header has 'Rank')."""
    lines = section.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("| Rank |"))
    rows = []
    for ln in lines[start + 2:]:
        if not ln.startswith("|"):
            break
        rows.append(ln)
    return rows


def test_section_is_fenced_by_the_board_markers(result, sections):
    begin, end = section_markers("zcu104")
    for text in sections.values():
        assert text.startswith(begin + "\n")
        assert text.endswith(end + "\n")
        assert text.count(begin) == 1 and text.count(end) == 1


def test_plan_table_has_best_first_and_naive_last(result, sections):
    rows = _plan_rows(sections["en"])
    assert len(rows) == len(result.plans) + 1
    best = result.best
    # each plan named by its label and its identity (the same plan's in every section)
    assert rows[0].startswith(f"| 1 | `best` (`{best.plan.identity}`) |")
    assert f"`naive top-5` (`{result.naive.plan.identity}`)" in rows[-1]
    assert f"{best.speedup:.2f}x" in rows[0]
    # PyTorch fp32 of 2B-4T does not fit the ZCU104: its speedup column says so
    assert f"{best.decode.speedup_vs('torch'):.2f}x (does not fit)" in rows[0]
    assert "`native`" in rows[0]


def test_every_speedup_header_names_its_baseline(sections):
    for line in sections["en"].splitlines():
        if line.startswith("| ") and "peedup" in line and "---" not in line:
            for cell in line.split("|"):
                if "peedup" in cell:
                    assert "CPU" in cell, cell


def test_zh_and_en_headings(sections):
    zh, en = sections["zh"], sections["en"]
    assert "## FPGA 设计空间探索 — ZCU104" in zh
    assert "## FPGA design-space exploration — ZCU104" in en
    assert "design-space exploration" not in zh
    for heading in ("### 板卡", "### 方案对比", "### 物理极限", "### 敏感性", "### 帕累托前沿"):
        assert heading in zh
    for heading in ("### Board", "### Plans compared", "### Physical limit", "### Sensitivity",
                    "### Pareto fronts"):
        assert heading in en
    assert "无校准" in zh and "no calibration: model defaults" in en


def test_naive_why_mentions_the_warm_up_artefact(sections):
    for lang, heading, words in (
            ("en", "#### Why the naive top-5 plan falls short", "is a warm-up artefact"),
            ("zh", "#### 为何朴素的 Top-5 方案不够", "是预热造成的假象")):
        after = sections[lang].split(heading, 1)[1]
        paragraph = after.strip().split("\n\n", 1)[0]
        assert f"`model.layers.0.self_attn.q_proj` {words}" in paragraph


def test_plots_are_embedded_and_sensitivity_named(result, sections):
    en = sections["en"]
    for name in PLOTS.values():
        assert f"]({name})" in en
    top = max(result.sensitivity, key=lambda r: r.swing)
    assert f"most sensitive parameter is **{top.parameter}**" in en
    assert "<details>" in en and "</details>" in en


def test_time_breakdown_adds_up_to_the_plan(result):
    """The calls' parts add up to their time, and with every other account to the plan."""
    proj = result.best.decode
    parts = proj.limit_parts(result.board.ddr_bytes_per_s)
    calls = sum(parts[k] for k in ("weights", "actout", "compute", "overhead", "ps"))
    total_ms = sum(cc.time_s for cc in proj.calls.values()) * 1e3
    assert math.isclose(calls, total_ms, rel_tol=1e-9)
    assert math.isclose(sum(parts.values()), proj.plan_ms, rel_tol=1e-9)
    assert all(parts[k] >= -1e-12 for k in ("weights", "actout", "compute", "overhead", "ps"))


def test_unknown_language_is_rejected(result):
    with pytest.raises(ValueError, match="lang"):
        render_explore_section(result, "fr", {})


# -- upsert ----------------------------------------------------------------------------------

def _fake_section(stem: str, body: str) -> str:
    begin, end = section_markers(stem)
    return f"{begin}\n## {body}\n{end}\n"


def test_upsert_appends_then_replaces_in_place(seed_text, sections):
    once = upsert_section(seed_text, "zcu104", sections["zh"])
    assert once.startswith(seed_text)
    assert once[len(seed_text):].startswith("\n")  # after a blank line
    twice = upsert_section(once, "zcu104", sections["en"])
    begin, end = section_markers("zcu104")
    assert twice.count(begin) == 1 and twice.count(end) == 1
    assert twice.startswith(seed_text)
    assert "## FPGA design-space exploration — ZCU104" in twice
    assert "## FPGA 设计空间探索" not in twice
    assert upsert_section(twice, "zcu104", sections["en"]) == twice  # idempotent


def test_upsert_keeps_other_boards_and_surrounding_text(seed_text, sections):
    kv = _fake_section("kv260", "KV260 section")
    head = seed_text + "\n"
    tail = "\ntext a person wrote after the section\n\n"
    report = head + sections["zh"] + tail + kv
    out = upsert_section(report, "zcu104", sections["en"])
    begin, _ = section_markers("zcu104")
    assert out.startswith(head)
    assert out.endswith(tail + kv)
    assert out[len(head):].startswith(begin)
    # a board with no section yet is appended; the others stay byte-identical
    u96 = _fake_section("ultra96-v2", "Ultra96 section")
    out2 = upsert_section(out, "ultra96-v2", u96)
    assert out2.startswith(out)
    assert out2.endswith(u96)
    assert out2.count(kv) == 1


def test_upsert_does_not_match_a_board_whose_stem_extends_another(sections):
    other = _fake_section("zcu104-pl", "PL DDR variant")
    out = upsert_section(other, "zcu104", sections["en"])
    assert out.startswith(other)
    assert out.count("<!-- dse:explore board=zcu104 begin -->") == 1


def test_upsert_refuses_a_truncated_section(sections):
    begin, _ = section_markers("zcu104")
    broken = f"# report\n\n{begin}\n## half a section\n"
    with pytest.raises(DseError, match="no end marker"):
        upsert_section(broken, "zcu104", sections["en"])


def test_upsert_rejects_a_section_for_another_board(sections):
    with pytest.raises(ValueError, match="fenced"):
        upsert_section("# report\n", "kv260", sections["en"])


# -- plots -----------------------------------------------------------------------------------

def test_write_plots_writes_valid_pngs_atomically(result, tmp_path):
    plots = write_plots(result, tmp_path, "report")
    names = plots.names
    assert (plots.lang, plots.note) == ("en", "")
    assert names == {"breakdown": "report-zcu104-breakdown.png",
                     "roofline": "report-zcu104-roofline.png",
                     "pareto": "report-zcu104-pareto.png",
                     "energy": "report-zcu104-energy.png",
                     "context": "report-zcu104-context.png",
                     "sequences": "report-zcu104-sequences.png",
                     "ttft": "report-zcu104-ttft.png"}
    for name in names.values():
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE)
        assert len(data) > 20_000
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names.values())


def test_write_plots_into_a_missing_folder_fails_cleanly(result, tmp_path):
    with pytest.raises(DseError, match="does not exist"):
        write_plots(result, tmp_path / "nope", "report")
