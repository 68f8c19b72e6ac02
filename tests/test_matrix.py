"""Which model fits which board (`dse matrix`), and what an infeasible result says instead of
a plan that cannot run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dse.cli import main
from dse.model.arch import preset_config
from dse.model.board import load_board
from dse.model.project import CostContext
from dse.model.template import shipped_template
from dse.model.workload import workload_from_config
from dse.search.advice import fit_advice, min_memory_bytes
from dse.search.matrix import matrix

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cells():
    models = (preset_config("bitnet-b1.58-2B-4T"), preset_config("bitnet_b1_58-large"))
    boards = (load_board(ROOT / "boards" / "pynq-z2.yaml"),
              load_board(ROOT / "boards" / "kv260.yaml"))
    return {(c.model, c.board): c for c in matrix(models, boards, shipped_template())}


def test_large_fits_a_pynq_z2_and_2b4t_does_not(cells):
    ok = cells[("bitnet_b1_58-large", "PYNQ-Z2")]
    assert ok.feasible and ok.memory_mib <= ok.capacity_mib == 512
    assert ok.make.startswith("make -C overlays/vivado overlay BOARD=pynq-z2 ")
    assert "base3" in ok.plan and ok.decode_tok_s > 1 and ok.ttft_ms > 0
    assert ok.j_per_token is None  # the PYNQ-Z2 file has no power model
    assert ok.cpu_tok_s is None    # the native runtime alone does not fit 512 MiB
    no = cells[("bitnet-b1.58-2B-4T", "PYNQ-Z2")]
    assert not no.feasible and no.plan is None and no.make is None
    assert no.decode_tok_s is None and no.advice.need_bytes > 512 * 2**20
    assert "needs at least" in no.why and "the board has 512 MiB" in no.why
    assert "smaller models that fit PYNQ-Z2: bitnet_b1_58-large" in no.why
    assert "KV260 (4,096 MiB)" in no.why
    big = cells[("bitnet-b1.58-2B-4T", "KV260")]
    assert big.feasible and big.j_per_token > 0 and big.decode_tok_s > big.cpu_tok_s


def test_least_memory_is_the_base3_weights_the_head_and_the_runtime():
    """2B-4T: 417 MB of base-3 ternary weights, the head two-stage (a base-3 copy and int8
    rows, the tied embedding looked up in those), an int8 KV cache and the runtime."""
    board = load_board(ROOT / "boards" / "pynq-z2.yaml")
    ctx = CostContext.for_board(board)
    cfg = preset_config("bitnet-b1.58-2B-4T")
    wl = workload_from_config(cfg)
    ternary = sum(-(-la.k // 5) * la.n for la in wl.layers if la.ternary)
    head = -(-cfg.hidden // 5) * cfg.vocab + cfg.vocab * cfg.hidden
    kv = 2 * cfg.layers * cfg.kv_dim * 256
    want = ternary + head + kv + ctx.constants.runtime_bytes
    assert min_memory_bytes(wl, ctx, 256) == pytest.approx(want, rel=0.002)
    adv = fit_advice(wl, ctx, 256)
    assert not adv.fits and adv.max_context is None
    # a context a shorter cache would fit: 2B-4T on a board of 1.1 GiB
    roomy = board.model_copy(update={"ddr": board.ddr.model_copy(
        update={"capacity_bytes": min_memory_bytes(wl, ctx, 1) + 600 * 2 * cfg.layers
                * cfg.kv_dim})})
    adv = fit_advice(wl, CostContext.for_board(roomy), 4096)
    assert adv.max_context == 576 and "a context of at most 576 tokens" in str(
        adv.messages()[1])


def test_matrix_command_writes_the_table_and_the_plot(tmp_path, capsys):
    md, png, js = tmp_path / "m.md", tmp_path / "m.png", tmp_path / "m.json"
    assert main(["matrix", "--models", "bitnet_b1_58-large", "bitnet-b1.58-2B-4T",
                 "--boards", str(ROOT / "boards" / "pynq-z1.yaml"),
                 str(ROOT / "boards" / "ultra96-v2.yaml"), "--report", str(md), "--plot",
                 str(png), "--json", str(js)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"bitnet_b1_58-large\s+\d+\.\d\s+\d+\.\d", out), out
    assert re.search(r"bitnet-b1\.58-2B-4T\s+no\s+\d+\.\d", out), out
    assert "native runtime on the PS, torch not measured (no profile)" in out
    text = md.read_text()
    assert "| model | PYNQ-Z1 | Ultra96-V2 |" in text and "![decode tok/s" in text
    assert "| bitnet-b1.58-2B-4T | PYNQ-Z1 | no | bitnet-b1.58-2B-4T needs at least" in text
    assert "huggingface.co/1bitLLM/bitnet_b1_58-large config.json" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(js.read_text())
    assert len(data["cells"]) == 4 and data["runtime"] == "native"
    feasible = {(c["model"], c["board"]): c["feasible"] for c in data["cells"]}
    assert feasible == {("bitnet_b1_58-large", "PYNQ-Z1"): True,
                        ("bitnet_b1_58-large", "Ultra96-V2"): True,
                        ("bitnet-b1.58-2B-4T", "PYNQ-Z1"): False,
                        ("bitnet-b1.58-2B-4T", "Ultra96-V2"): True}


def test_matrix_no_report_writes_nothing_and_list_names_sources(tmp_path, capsys,
                                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["matrix", "--models", "tiny", "--boards", "kv260", "--no-report"]) == 0
    assert not list(tmp_path.iterdir())
    capsys.readouterr()
    assert main(["matrix", "--list"]) == 0
    out = capsys.readouterr().out
    assert "Falcon3-10B-Instruct-1.58bit: tiiuae/Falcon3-10B-Instruct-1.58bit" in out
    assert "tiny (test model)" in out


def test_matrix_replaces_only_its_own_report(tmp_path, capsys):
    """The matrix report is a whole document: it replaces an earlier one (either language),
    never a profiling report or one an explore section was added to (both were lost)."""
    mine = tmp_path / "m.md"
    argv = ["matrix", "--models", "tiny", "--boards", "kv260", "--quiet", "--report", str(mine)]
    assert main(argv) == 0 and main([*argv, "--lang", "zh"]) == 0
    assert mine.read_text(encoding="utf-8").startswith("# 哪个 BitNet 模型装得进哪块板卡\n")
    theirs = tmp_path / "r.md"
    for text in ("# My notes\n\nkeep me\n",
                 mine.read_text(encoding="utf-8") + "\n<!-- dse:explore board=kv260 begin -->\n"
                 "x\n<!-- dse:explore board=kv260 end -->\n"):
        theirs.write_text(text, encoding="utf-8")
        before = sorted(tmp_path.iterdir())
        capsys.readouterr()
        assert main([*argv[:-1], str(theirs)]) == 2
        err = capsys.readouterr().err
        assert err == (f"dse: error: {theirs}: expected a new file or a matrix report dse wrote "
                       f"(the matrix report replaces the whole file, and this one holds other "
                       f"text: a profiling or explore report?); name another --report\n")
        assert theirs.read_text(encoding="utf-8") == text and sorted(tmp_path.iterdir()) == before


def test_a_board_named_twice_is_one_column_and_two_of_one_name_are_refused(tmp_path, capsys):
    """kv260 and KV260 once counted 2 cells under one column; a second board file of the same
    name silently took the first one's column."""
    from dse.model.board import resolve_board

    kv260 = resolve_board("kv260").path
    assert main(["matrix", "--models", "tiny", "tiny", "--boards", "kv260", "KV260", str(kv260),
                 "--no-report", "--quiet"]) == 0
    assert "1 cells (1 models x 1 boards)" in capsys.readouterr().out
    copy = tmp_path / "b.yaml"
    copy.write_text(Path(kv260).read_text(encoding="utf-8").replace("cores: 4 ", "cores: 2 "),
                    encoding="utf-8")
    assert main(["matrix", "--models", "tiny", "--boards", "kv260", str(copy),
                 "--no-report", "--quiet"]) == 2
    assert capsys.readouterr().err == (f"dse: error: --boards: expected one model or board a "
                                       f"name, got two named 'KV260' ({kv260}; {copy})\n")


def test_an_infeasible_explore_prints_what_would_fit_and_no_make_line(tmp_path, capsys):
    report = tmp_path / "r.md"
    assert main(["explore", "--board", str(ROOT / "boards" / "pynq-z2.yaml"), "--report",
                 str(report)]) == 0
    out = capsys.readouterr().out
    assert "NO FEASIBLE PLAN on PYNQ-Z2" in out
    assert ("what would fit: bitnet-b1.58-2B-4T needs at least 1,039 MiB of DDR on PYNQ-Z2"
            in out)
    assert "smaller models that fit PYNQ-Z2: bitnet_b1_58-large" in out
    assert "make -C" not in out and "most sensitive" not in out
    text = report.read_text()
    section = text[text.index("<!-- dse:explore board=pynq-z2 begin -->"):]
    assert "make -C" not in section
    assert "### 敏感性" not in section and "### Sensitivity" not in section
    assert "没有能在这块板上运行的方案，所以没有 make 行" in section
    assert "bitnet_b1_58-large (460 MiB)" in section


def test_matrix_in_chinese(cells):
    """--lang zh: the document in Chinese, the why of each cell too; English has no CJK."""
    from dse.report.fonts import CJK_RE
    from dse.report.matrix import render_matrix_md

    cells = tuple(cells.values())
    zh = render_matrix_md(cells, prompt_tokens=128, gen_tokens=128, sources={}, lang="zh")
    en = render_matrix_md(cells, prompt_tokens=128, gen_tokens=128, sources={}, lang="en")
    assert zh.startswith("# 哪个 BitNet 模型装得进哪块板卡")
    assert "装得下：DDR 用 " in zh and "fits: " not in zh
    assert not CJK_RE.search(en) and "fits: " in en
