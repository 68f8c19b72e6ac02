"""One report, one story: explore then calibrate (sim and ``--from``) into one report, and
every figure given for the recommended plan agrees with the answer card, or says the
scenario (or the plan) it is of."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dse.cli import main
from dse.report.explore_md import card_summary
from dse.report.fonts import CJK_RE
from dse.report.numbers import ms

ROOT = Path(__file__).resolve().parents[1]
LOG = ROOT / "examples" / "measurements" / "bitnet-kv260.json"


def _run(capsys, *argv: str) -> str:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    assert rc == 0, err
    return out


def _section(text: str, kind: str, board: str) -> str:
    begin = f"<!-- dse:{kind} board={board} begin -->"
    end = f"<!-- dse:{kind} board={board} end -->"
    assert text.count(begin) == 1 and text.count(end) == 1
    return text[text.index(begin):text.index(end)]


def _row(section: str, first_cell: str) -> list[str]:
    """The cells of the Markdown table row whose first cell is ``first_cell``."""
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r}")


def test_explore_then_calibrate_from_agree_with_the_card(capsys, tmp_path):
    report = tmp_path / "kv260.en.md"
    _run(capsys, "explore", "--board", "kv260", "--report", str(report))
    card = card_summary(report.read_text(encoding="utf-8"), "kv260")
    out = _run(capsys, "calibrate", "--from", str(LOG), "--report", str(report), "-o",
               str(tmp_path / "cal.yaml"))
    assert "report: " in out
    text = report.read_text(encoding="utf-8")
    assert not CJK_RE.search(text)  # an English report, English throughout
    cal = _section(text, "calibrate", "kv260")
    # the re-projection's best is the card's plan, at the card's scenario, at its figure
    best = _row(cal, "`best`")
    assert best[1] == f"`{card['plan_id']}`" or best[1].startswith(f"`{card['plan_id']}` → ")
    assert best[3] == ms(card["ms_per_token"])
    assert f"the answer card above was of the same plan (plan `{card['plan_id']}`) at the " \
           f"same scenario" in cal
    assert "decode at 256 tokens of context, 1 sequence, KV int8" in cal
    # a fitted value prints at the precision its error supports, in its unit
    assert re.search(r"`cache_maint_bytes_per_s` \| 5.3 GB/s \| [\d.]+ ± [\d.]+ GB/s", cal)
    assert "e+0" not in cal and "e-0" not in cal

    # explored again at another context: the calibration section says its figures are of
    # another scenario (or another plan), naming the card's figure
    _run(capsys, "explore", "--board", "kv260", "--report", str(report), "--context-tokens",
         "1024")
    text = report.read_text(encoding="utf-8")
    card2 = card_summary(text, "kv260")
    # the card says the calibration section below was written against another scenario
    line = next(ln for ln in text.splitlines() if "**Calibration section below**" in ln)
    assert "at another scenario: context 256 vs 1024" in line or "of another plan" in line
    _run(capsys, "calibrate", "--from", str(LOG), "--report", str(report), "-o",
         str(tmp_path / "cal2.yaml"))
    cal = _section(report.read_text(encoding="utf-8"), "calibrate", "kv260")
    assert (f"at another scenario: context 1024 vs 256; the card's {ms(card2['ms_per_token'])} "
            f"ms/token holds for its own" in cal
            or f"Note: the answer card above recommends `best` (plan `{card2['plan_id']}`) "
               f"({ms(card2['ms_per_token'])} ms/token at decode at 1024 tokens" in cal)
    # explored once more at 256: the calibration section (the default search's plan, at
    # 256) is of the card's plan and scenario again, and the card says so
    _run(capsys, "explore", "--board", "kv260", "--report", str(report))
    text = report.read_text(encoding="utf-8")
    line = next(ln for ln in text.splitlines() if "**Calibration section below**" in ln)
    assert line.endswith(f"of this plan (`{card['plan_id']}`) at this scenario")


@pytest.mark.rtl
def test_explore_then_calibrate_sim_agree_with_the_card(capsys, tmp_path, monkeypatch):
    from test_calibrate_sim import _tools_or_skip

    _tools_or_skip()
    monkeypatch.chdir(tmp_path)
    report = tmp_path / "r.md"  # the default profile's language: Chinese
    _run(capsys, "explore", "--board", "zcu104", "--report", str(report))
    card = card_summary(report.read_text(encoding="utf-8"), "zcu104")
    out = _run(capsys, "calibrate", "--board", "zcu104", "--backend", "sim", "--layers",
               "model.layers.0.self_attn.[ko]_proj", "--repeats", "1", "--prefill-m", "2",
               "--report", str(report), "-o", "cal.yaml", "--log", "sim.json")
    # the console names the same plan and figure
    assert (f"end to end: plan best ({card['plan_id']}) on {card['design']}, decode at 256 "
            f"tokens of context, 1 sequence, KV int8: projected {ms(card['ms_per_token'])} "
            f"ms/token before calibration") in out
    cal = _section(report.read_text(encoding="utf-8"), "calibrate", "zcu104")
    same = f"与上方 `dse explore` 结论中的推荐方案相同（方案 `{card['plan_id']}`，同一场景）"
    assert same in cal
    before = _row(cal, "校准前预测")
    assert before[1] == ms(card["ms_per_token"])
    composed = _row(cal, "组合值")
    assert "仿真" in composed[-1] and "校准后的模型" in composed[-1]
    assert f"`{card['baseline_runtime']}`" in cal  # the baseline named by its runtime
    assert "PyTorch" not in cal

    # the log alone, fitted again: the replans table's best is still the card's figure
    _run(capsys, "calibrate", "--from", "sim.json", "--board", "zcu104", "--report",
         str(report), "-o", "cal2.yaml")
    cal = _section(report.read_text(encoding="utf-8"), "calibrate", "zcu104")
    assert _row(cal, "`best`")[3] == ms(card["ms_per_token"])
    assert f"方案 `{card['plan_id']}`，同一场景" in cal
