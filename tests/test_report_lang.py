"""The report's language and place: ``--lang``, a report name's ``.en.md``, an existing
report's own language, and the report a profile JSON came from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dse.cli import main
from dse.report.fonts import CJK_RE

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "dse" / "data" / "bitnet-2b4t.zh.md"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_lang_en_writes_an_english_report_from_the_chinese_profile(capsys, tmp_path):
    report = tmp_path / "r.md"
    rc, _, err = run(capsys, "explore", "--board", "kv260", "--lang", "en", "--report",
                       str(report))
    assert rc == 0, err
    text = report.read_text(encoding="utf-8")
    assert text.startswith("# BitNet b1.58 Inference Performance Report")
    assert "## FPGA design-space exploration — KV260" in text
    assert [ln for ln in text.splitlines() if CJK_RE.search(ln)] == []


def test_a_report_named_en_is_english_without_lang(capsys, tmp_path):
    report = tmp_path / "r.en.md"
    assert run(capsys, "explore", "--board", "kv260", "--report", str(report))[0] == 0
    assert not CJK_RE.search(report.read_text(encoding="utf-8"))


def test_default_report_path_follows_lang(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "explore", "--board", "kv260", "--lang", "en")[0] == 0
    assert sorted(p.name for p in (tmp_path / "reports").glob("*.md")) == ["bitnet-2b4t.en.md"]


def test_lang_against_an_existing_report_of_the_other_language_is_refused(capsys, tmp_path):
    report = tmp_path / "r.md"
    report.write_bytes(SEED.read_bytes())
    rc, _, err = run(capsys, "explore", "--board", "kv260", "--lang", "en", "--report",
                       str(report))
    assert rc == 2
    assert err.strip().splitlines() == [
        f"dse: error: --lang en: {report} is a Chinese report; expected --lang zh for it, or a "
        f"new --report file for the English one"]
    assert report.read_bytes() == SEED.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.md"]


def test_an_existing_report_keeps_its_language(capsys, tmp_path):
    report = tmp_path / "r.en.md"  # the name says en, the text is Chinese: the text wins
    report.write_bytes(SEED.read_bytes())
    assert run(capsys, "explore", "--board", "kv260", "--report", str(report))[0] == 0
    assert "## FPGA 设计空间探索 — KV260" in report.read_text(encoding="utf-8")


def test_explore_profile_adds_to_the_report_the_profile_was_imported_from(capsys, tmp_path,
                                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "study").mkdir()
    src = tmp_path / "study" / "host.zh.md"
    src.write_bytes(SEED.read_bytes())
    prof = tmp_path / "profiles" / "host.profile.json"
    prof.parent.mkdir()
    assert run(capsys, "import", str(src), "-o", str(prof))[0] == 0
    assert json.loads(prof.read_text(encoding="utf-8"))["report"] == "../study/host.zh.md"
    rc, out, err = run(capsys, "explore", "--board", "kv260", "--profile", str(prof))
    assert rc == 0, err
    text = src.read_text(encoding="utf-8")
    assert text.startswith(SEED.read_text(encoding="utf-8"))
    assert "<!-- dse:explore board=kv260 begin -->" in text
    assert (tmp_path / "study" / "host.zh-kv260-pareto.png").is_file()
    assert not (tmp_path / "reports").exists()
    assert f"report: {src} (section for KV260" in out


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_model_without_a_profile_gets_a_report_in_the_asked_language(capsys, tmp_path, lang):
    report = tmp_path / "m.md"
    rc, _, err = run(capsys, "explore", "--board", "kv260", "--model", "bitnet_b1_58-large",
                     "--lang", lang, "--report", str(report))
    assert rc == 0, err
    text = report.read_text(encoding="utf-8")
    assert bool(CJK_RE.search(text)) == (lang == "zh")
