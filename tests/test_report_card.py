"""The report a person reads: the summary card first, boards compared, one language at a time."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dse.cli import main
from dse.model.board import load_board
from dse.model.project import CostContext
from dse.model.workload import workload_from_profile
from dse.profile.default import default_profile
from dse.report.explore_md import render_explore_section, summary_of, upsert_section
from dse.search.explore import explore
from dse.search.optimize import Objective

ROOT = Path(__file__).resolve().parents[1]
BOARDS = ("kv260", "pynq-z1")  # one that fits (with a power model), one that does not
BASE = "# report\n\nsome profiling text\n"


@pytest.fixture(scope="module")
def results():
    wl = workload_from_profile(default_profile())
    return {b: explore(wl, CostContext.for_board(load_board(ROOT / "boards" / f"{b}.yaml")),
                       Objective()) for b in BOARDS}


@pytest.fixture(scope="module")
def reports(results):
    out = {}
    for lang in ("zh", "en"):
        text = BASE
        for b in BOARDS:
            text = upsert_section(text, b, render_explore_section(results[b], lang, {}))
        out[lang] = text
    return out


#: A run of three or more ASCII words: an English sentence (or a fragment of one).
_ASCII_SENTENCE = re.compile(r"[A-Za-z]{2,}(?:[ ,;:'()/-]+[A-Za-z]{2,}){2,}")


def _prose(text: str) -> str:
    """The report with code spans, HTML comments and image links removed (names, units and
    figures stay, they are not sentences)."""
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = re.sub(r"`[^`]*`", "", text)
    return re.sub(r"!\[[^\]]*\]\([^)]*\)", "", text)


def test_zh_sections_have_no_english_sentences(reports):
    zh = reports["zh"].split("some profiling text", 1)[1]
    bad = [cell.strip() for line in _prose(zh).splitlines() for cell in line.split("|")
           if _ASCII_SENTENCE.search(cell)]
    assert bad == []


def test_en_sections_are_english(reports):
    en = reports["en"].split("some profiling text", 1)[1]
    assert not re.search(r"[\u4e00-\u9fff]", _prose(en))


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_card_comes_first_with_the_answer(reports, results, lang):
    heading = {"zh": "### 结论", "en": "### The answer"}[lang]
    section = reports[lang].split("<!-- dse:explore board=kv260 begin -->", 1)[1]
    first_h3 = re.search(r"^### .*$", section, flags=re.M).group(0)
    assert first_h3 == heading
    card = section.split(heading, 1)[1].split("### ", 1)[0]
    sm = summary_of(results["kv260"])
    assert f"{sm['tokens_per_s']:.2f} tok/s" in card
    assert f"`{sm['design']}`" in card
    assert f"{sm['speedup']:.2f}x" in card and "`native`" in card
    assert f"{sm['j_per_token']:.3f} J/token" in card  # the KV260 has a power model
    label = {"zh": "首 token 时间", "en": "time to first token"}[lang]
    assert label in card and f"{results['kv260'].ttft_ms:,.1f} ms" in card
    # the summary the boards table is built from rides along, machine-readable
    assert json.loads(re.search(r"<!-- dse:summary (\{.*?\}) -->", section).group(1)) == sm


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_boards_compared_before_the_sections(reports, results, lang):
    text = reports[lang]
    heading = {"zh": "## 板卡对比", "en": "## Boards compared"}[lang]
    assert text.count(heading) == 1
    assert text.index(heading) < text.index("<!-- dse:explore board=kv260 begin -->")
    table = text.split(heading, 1)[1].split("<!-- dse:boards end -->", 1)[0]
    rows = [ln for ln in table.splitlines() if ln.startswith("| ") and "---" not in ln][1:]
    assert [r.split("|")[1].strip() for r in rows] == ["KV260", "PYNQ-Z1"]
    kv = summary_of(results["kv260"])
    assert f"{kv['tokens_per_s']:.2f}" in rows[0] and f"{kv['lut']:.0%}" in rows[0]
    assert "n/a" in rows[1]  # the PYNQ-Z1 has no power model


def test_boards_table_kept_in_step(results):
    one = upsert_section(BASE, "kv260", render_explore_section(results["kv260"], "en", {}))
    assert "## Boards compared" not in one  # a single board needs no comparison
    two = upsert_section(one, "pynq-z1", render_explore_section(results["pynq-z1"], "en", {}))
    again = upsert_section(two, "kv260", render_explore_section(results["kv260"], "en", {}))
    assert again == two  # re-running replaces; nothing duplicated
    assert again.startswith(BASE)


@pytest.mark.parametrize(("ends", "shown"), [
    ([19.0, 20.0], "19.55 (19.00–20.00)"),
    ([100.0, 1.0], "19.55 |"),        # reversed: once shown as "19.55 (100.00–1.00)"
    ([-5.0, 1e308], "19.55 |"),       # once shown with a 309-digit upper end
    ([20.0, 30.0], "19.55 |"),        # a band that does not hold its figure
])
def test_a_summary_s_band_is_shown_only_when_it_is_one(ends, shown):
    """A summary is read back from a report or a JSON file (another version's, or edited):
    the boards table shows its decode band only when it holds the figure."""
    from dse.report.explore_md import boards_table

    sm = {"board": "KV260", "design": "d", "tokens_per_s": 19.55, "speedup": 7.5,
          "baseline_runtime": "native", "lut": 0.39, "bram36": 0.75, "uram": 0.0,
          "j_per_token": 0.316, "bound": "ddr", "band": {"tokens_per_s": ends}}
    row = boards_table([sm], "en").splitlines()[-1]
    assert f"| `d` | {shown}" in row, row


def test_compare_prints_the_boards_table(tmp_path, capsys):
    files = []
    for b in ("kv260", "zcu104"):
        f = tmp_path / f"{b}.json"
        assert main(["explore", "--board", b, "--no-report", "--json", str(f)]) == 0
        files.append(str(f))
    capsys.readouterr()
    assert main(["compare", *files]) == 0
    out = capsys.readouterr().out
    table = out.split("boards compared (best plan of each):", 1)[1]
    assert "| KV260 |" in table and "| ZCU104 |" in table and "DDR bandwidth" in table


def test_what_ifs_never_rank_first(reports):
    section = reports["en"].split("<!-- dse:explore board=kv260 begin -->", 1)[1]
    lines = section.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("| Rank |"))
    rows = []
    for ln in lines[start + 2:]:
        if not ln.startswith("|"):
            break
        rows.append(ln.split("|")[2].strip())
    assert rows[0].startswith("`best` (`")
    kinds = [r.startswith("`what-if") for r in rows[:-1]]  # the naive plan closes the table
    assert kinds == sorted(kinds)  # every what-if after every buildable plan
