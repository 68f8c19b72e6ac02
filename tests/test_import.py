"""``dse import``: the seed report -> Profile, the report writer, outliers, the embedded default."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from dse.cli import main
from dse.errors import DseError
from dse.profile.default import (
    DEFAULT_PROFILE_NAME,
    DEFAULT_REPORT_NAME,
    data_file,
    default_profile,
)
from dse.profile.format import (
    PHASES,
    ModuleRecord,
    Outlier,
    Profile,
    Token,
    load_profile,
    profile_to_dict,
)
from dse.profile.outliers import flag_warmup_outliers
from dse.profile.seed_import import import_report, parse_report
from dse.report.profile_md import render_profile_report

SEED_TEXT = data_file(DEFAULT_REPORT_NAME).read_text(encoding="utf-8")
Q0 = "model.layers.0.self_attn.q_proj"
DOWN0 = "model.layers.0.mlp.down_proj"


@pytest.fixture(scope="module")
def seed() -> Profile:
    return parse_report(SEED_TEXT, "seed.md")


def _lines(text: str) -> list[str]:
    return text.splitlines()


def _index(lines: list[str], prefix: str) -> int:
    return next(i for i, line in enumerate(lines) if line.startswith(prefix))


def _write(tmp_path: Path, lines: list[str], name: str = "report.md") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _no_prov(p: Profile) -> Profile:
    return replace(p, provenance=None, report_lang="")  # type: ignore[arg-type]


def _cli_error(capsys: pytest.CaptureFixture[str], argv: list[str], *names: str) -> str:
    """Run the CLI expecting a user error: exit 2 and one stderr line naming ``names``."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    for name in names:
        assert name in err, err
    return err


# -- the seed -------------------------------------------------------------------------------------

def test_seed_header_and_system(seed: Profile) -> None:
    assert seed.model == "../models/microsoftbitnet-b1.58-2B-4T-bf16"
    assert seed.dtype == "torch.float32"
    assert seed.measured_at == "2026-01-19 16:41:06"
    assert seed.report_lang == "zh"
    s = seed.system
    assert "Ryzen 7 9700X" in s.cpu_model
    assert s.arch == "X86_64"
    assert (s.physical_cores, s.logical_cores, s.torch_threads) == (8, 16, 8)
    assert (s.base_mhz, s.current_mhz, s.reference_mhz) == (3793, 3793, 3000)
    assert seed.peak_memory_mb == pytest.approx(9901.12)
    assert seed.prompt_tokens is None


def test_seed_phases(seed: Profile) -> None:
    assert tuple(p.name for p in seed.phases) == PHASES
    ms = {p.name: p.ms for p in seed.phases}
    assert ms == pytest.approx({"tokenizer_load": 238.48, "model_load": 4127.54, "encode": 2.77,
                                "prefill": 7758.78, "decode": 66137.80, "detokenize": 0.08})
    prefill = seed.phase("prefill")
    assert prefill is not None
    assert prefill.normalized_ms == pytest.approx(9809.13)
    assert prefill.mem_delta_mb == pytest.approx(54.10)


def test_seed_linears(seed: Profile) -> None:
    lin = seed.linears
    assert len(lin) == len(seed.modules) == 211
    # The 211 rows are each rounded to 0.01 ms: they sum to 69729.65, 0.04 ms from the printed
    # total 69729.61, so the check uses the importer's tolerance (0.05 ms), not 0.01.
    assert sum(m.total_ms for m in lin) == pytest.approx(69729.61, abs=0.05)
    q0 = next(m for m in lin if m.name == Q0)
    assert (q0.calls, q0.total_ms, q0.role, q0.layer_index) == (51, 4969.12, "q_proj", 0)
    assert (q0.input_shape, q0.output_shape, q0.params) == ((1, 1, 2560), (1, 1, 2560), 6553600)
    head = next(m for m in lin if m.name == "lm_head")
    assert (head.role, head.layer_index, head.params) == ("lm_head", None, 2560 * 128256)
    assert {m.role for m in lin} == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                     "up_proj", "down_proj", "lm_head"}
    assert all(m.module_type == "Linear" for m in lin)
    assert all(m.params == m.in_features * m.out_features for m in lin)
    assert all(m.prefill_ms is m.decode_ms is m.prefill_calls is m.decode_calls is None
               for m in lin)
    assert any("prefill/decode split" in n for n in seed.provenance.notes)


def test_seed_outliers(seed: Profile) -> None:
    flagged = {m.name: m.outlier for m in seed.modules if m.outlier}
    assert set(flagged) == {Q0, DOWN0}
    q, d = flagged[Q0], flagged[DOWN0]
    assert q is not None and d is not None
    assert q.kind == d.kind == "warmup"
    assert q.steady_total_ms == pytest.approx(177.57)
    assert d.steady_total_ms == pytest.approx(531.56)
    assert q.excess_ms == pytest.approx(4969.12 - 177.57)
    assert q.ratio == pytest.approx(4969.12 / 177.57, rel=1e-3)
    assert "warm-up" in q.reason and "29 siblings" in q.reason
    q0 = next(m for m in seed.modules if m.name == Q0)
    assert q0.steady_total_ms == pytest.approx(177.57)


def test_seed_tokens_and_memory(seed: Profile) -> None:
    assert len(seed.tokens) == 50
    first = seed.tokens[0]
    assert first == Token(index=1, token_id=8173, text=" interested", ms=1416.69,
                          normalized_ms=1791.06, mem_mb=9891.61)
    assert seed.tokens[8].text == "’s"
    assert seed.decode_ms_per_token == pytest.approx(1322.28, abs=0.01)
    assert len(seed.memory) == 10
    assert seed.memory[-1].t_s == pytest.approx(78.27)
    assert seed.memory[3].vms_mb == pytest.approx(14542.95)


def test_provenance(seed: Profile) -> None:
    prov = seed.provenance
    assert prov.tool == "dse import" and prov.source == "seed.md"
    assert prov.versions["dse"] and prov.created


# -- round trips through the writer ----------------------------------------------------------

@pytest.mark.parametrize("lang", ["zh", "en"])
def test_round_trip(seed: Profile, lang: str) -> None:
    text = render_profile_report(seed, lang)
    again = parse_report(text, "rendered.md")
    assert again.report_lang == lang
    assert _no_prov(again) == _no_prov(seed)
    assert render_profile_report(again, lang) == text  # a fixed point


def test_render_sections(seed: Profile) -> None:
    zh = render_profile_report(seed, "zh")
    for heading in ("## 1. 系统信息", "## 2. 推理阶段分析", "### 3.3 完整 Linear 层列表",
                    "## 4. Token 生成详情", "## 5. 内存占用时间线", "dse explore"):
        assert heading in zh
    assert "FPGA 加速建议" not in zh
    en = render_profile_report(seed, "en")
    assert "| Phase | Time (ms) | Normalized time (ms) | Share (%) | Memory change (MB) |" in en
    assert "Decode (token by token)" in en and "177.57" in en


def test_render_unknown_values_and_odd_tokens(seed: Profile) -> None:
    odd = (Token(1, None, "a|b", 1.0), Token(2, 7, "line\nbreak\t`", 2.0, None, None),
           Token(3, 8, "back\\slash", 3.0))
    p = replace(seed, tokens=odd, peak_memory_mb=None, measured_at=None,
                system=replace(seed.system, reference_mhz=None, arch=""))
    text = render_profile_report(p, "en")
    assert "| 1 | — |" in text
    again = parse_report(text, "odd.md")
    assert again.tokens == odd
    assert _no_prov(again) == _no_prov(p)


# -- the embedded default -------------------------------------------------------------------------

def test_embedded_json_matches_fresh_import() -> None:
    fresh = import_report(Path(str(data_file(DEFAULT_REPORT_NAME))))
    shipped = json.loads(data_file(DEFAULT_PROFILE_NAME).read_text(encoding="utf-8"))
    want = profile_to_dict(fresh)
    for d in (want, shipped):
        d["provenance"].pop("created")
        d["provenance"].pop("source")
    assert shipped == want, "regenerate: dse import dse/data/bitnet-2b4t.zh.md " \
                            "-o dse/data/bitnet-2b4t.profile.json"


def _typed(obj):
    """A tree with every value's type beside it: 5 and 5.0, a list and a tuple differ."""
    from dataclasses import fields, is_dataclass

    if is_dataclass(obj):
        return (type(obj).__name__, tuple((f.name, _typed(getattr(obj, f.name)))
                                          for f in fields(obj)))
    if isinstance(obj, dict):
        return ("dict", tuple((k, _typed(v)) for k, v in obj.items()))
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, tuple(_typed(v) for v in obj))
    return (type(obj).__name__, obj)


def test_embedded_profile_built_without_the_schema_is_the_schemas() -> None:
    """``default_profile`` skips pydantic's schema (15 ms a run); what it builds must be what
    the schema builds from the same file, type for type (tuples, floats, nested records)."""
    from dse.profile.format import profile_from_checked_dict, profile_from_dict

    data = json.loads(data_file(DEFAULT_PROFILE_NAME).read_text(encoding="utf-8"))
    checked = profile_from_dict(json.loads(json.dumps(data)), "shipped")
    assert _typed(default_profile()) == _typed(checked)
    assert default_profile() == checked
    # and for the parts the shipped file happens not to hold: an outlier, notes, a config
    odd = json.loads(json.dumps(data))
    odd["modules"][0]["outlier"] = {"kind": "warmup", "ratio": 3.0, "steady_total_ms": 0.5,
                                    "excess_ms": 1.0, "reason": "first call"}
    odd["provenance"]["notes"] = ["a", "b"]
    odd["model_config"] = {"hidden_size": 64, "list": [1, 2]}
    assert _typed(profile_from_checked_dict(json.loads(json.dumps(odd)))) == _typed(
        profile_from_dict(odd, "odd"))


def test_default_profile_cached(seed: Profile) -> None:
    p = default_profile()
    assert p is default_profile()
    assert _no_prov(p) == _no_prov(seed)


# -- outlier flagging ---------------------------------------------------------------------------

def _mod(name: str, ms: float, outlier: Outlier | None = None) -> ModuleRecord:
    from dse.profile.format import layer_index_of, role_of
    return ModuleRecord(name, "Linear", role_of(name), layer_index_of(name), (1, 8), (1, 8), 64,
                        1, ms, outlier=outlier)


def test_outliers_need_siblings_and_say_why() -> None:
    few = [_mod(f"model.layers.{i}.mlp.up_proj", 10.0) for i in range(4)]
    few.append(_mod("model.layers.4.mlp.up_proj", 1000.0))
    assert all(m.outlier is None for m in flag_warmup_outliers(few[1:]))  # 3 siblings: no
    flagged = flag_warmup_outliers(few)
    assert [m.outlier is not None for m in flagged] == [False] * 4 + [True]
    reason = flagged[-1].outlier.reason  # type: ignore[union-attr]
    assert reason.startswith("outlier vs 4 siblings") and "warm-up" not in reason
    # a stale warm-up flag is cleared when the module is back in line
    stale = Outlier("warmup", 9.0, 1.0, 8.0, "old")
    fixed = flag_warmup_outliers([*few[:4], _mod("model.layers.4.mlp.up_proj", 10.0, stale)])
    assert all(m.outlier is None for m in fixed)


# -- the command ----------------------------------------------------------------------------------

def test_cli_import_writes_loadable_json(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         seed: Profile) -> None:
    src = _write(tmp_path, _lines(SEED_TEXT), "seed.zh.md")
    out = tmp_path / "seed.profile.json"
    assert main(["import", str(src), "-o", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert len(stdout.splitlines()) == 1
    assert "211 Linear layers" in stdout and "69729.65 ms" in stdout and "2 outlier" in stdout
    loaded = load_profile(out)
    assert loaded.report == "seed.zh.md"  # the report it came from, beside the JSON
    assert _no_prov(replace(loaded, report=None)) == _no_prov(seed)
    assert loaded.provenance.source == str(src)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_cli_import_english_report(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   seed: Profile) -> None:
    src = tmp_path / "seed.en.md"
    src.write_text(render_profile_report(seed, "en"), encoding="utf-8")
    assert main(["import", str(src), "-o", str(tmp_path / "p.json")]) == 0
    assert load_profile(tmp_path / "p.json").report_lang == "en"


# -- bad input: one line, exit 2, the file named ------------------------------------------------

def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.md"
    _cli_error(capsys, ["import", str(missing), "-o", str(tmp_path / "o.json")], str(missing),
               "no such report")


def test_not_a_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _write(tmp_path, ["# Shopping list", "", "- eggs", "- | a | table |"])
    _cli_error(capsys, ["import", str(src), "-o", str(tmp_path / "o.json")], str(src),
               "profile report")


def test_truncated_full_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = _lines(SEED_TEXT)
    first = _index(lines, "| `lm_head` | 51 | 2208.01 | 3.17 |")
    del lines[first + 100:first + 110]
    src = _write(tmp_path, lines)
    _cli_error(capsys, ["import", str(src), "-o", str(tmp_path / "o.json")], str(src),
               "211 rows", "201 rows")


def test_truncated_list_with_count_edited(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    lines = _lines(SEED_TEXT)
    first = _index(lines, "| `lm_head` | 51 | 2208.01 | 3.17 |")
    del lines[first + 50]
    lines[_index(lines, "**总计 Linear 层数量**")] = "**总计 Linear 层数量**: 210"
    src = _write(tmp_path, lines)
    _cli_error(capsys, ["import", str(src), "-o", str(tmp_path / "o.json")], str(src),
               "69729.61 ms")


def test_malformed_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = _lines(SEED_TEXT)
    row = _index(lines, "| `lm_head` | 51 | 2208.01 | 3.17 |")
    lines[row] = lines[row].replace("(1, 1, 128256)", "(1, 1, x)")
    src = _write(tmp_path, lines)
    _cli_error(capsys, ["import", str(src), "-o", str(tmp_path / "o.json")], str(src),
               f"line {row + 1}", "输出形状")
    lines[row] = "| `lm_head` | 51 | 2208.01 |"
    _write(tmp_path, lines)
    _cli_error(capsys, ["import", str(src), "-o", str(tmp_path / "o.json")], str(src),
               f"line {row + 1}", "7 cells")


def test_missing_phase_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = _lines(SEED_TEXT)
    start = _index(lines, "| 阶段 |")
    end = _index(lines, "| **总计** |")
    del lines[start:end + 1]
    src = _write(tmp_path, lines)
    _cli_error(capsys, ["import", str(src), "-o", str(tmp_path / "o.json")], str(src),
               "推理阶段分析", "table is missing")


def test_missing_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [ln for ln in _lines(SEED_TEXT) if ln != "## 5. 内存占用时间线"]
    src = _write(tmp_path, lines)
    _cli_error(capsys, ["import", str(src), "-o", str(tmp_path / "o.json")], str(src),
               "section is missing")


def test_missing_output_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _write(tmp_path, _lines(SEED_TEXT))
    out = tmp_path / "no" / "such" / "p.json"
    _cli_error(capsys, ["import", str(src), "-o", str(out)], str(out), "does not exist")


def test_parse_errors_are_dse_errors() -> None:
    with pytest.raises(DseError, match=r"^x\.md: "):
        parse_report("hello", "x.md")


# -- the JSON loader ------------------------------------------------------------------------------

def test_load_profile_wrong_format(tmp_path: Path, seed: Profile) -> None:
    data = profile_to_dict(seed)
    data["format"] = 2
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(DseError) as exc:
        load_profile(path)
    msg = str(exc.value)
    assert str(path) in msg and "format" in msg and "\n" not in msg


def test_load_profile_bad_json(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text('{"format": 1,\n  oops', encoding="utf-8")
    with pytest.raises(DseError) as exc:
        load_profile(path)
    msg = str(exc.value)
    assert str(path) in msg and "line 2" in msg and "\n" not in msg
