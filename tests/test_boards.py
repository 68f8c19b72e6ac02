"""The shipped board library (boards/*.yaml) and the board schema's error messages."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from dse.cli import main
from dse.errors import DseError
from dse.model.board import Board, board_from_mapping, boards_dir, load_board, resolve_board
from dse.schema import QUANTITIES

BOARDS_DIR = Path(__file__).resolve().parents[1] / "boards"
EXPECTED = {
    "zcu104": "xczu7ev-ffvc1156-2-e",
    "kv260": "xck26-sfvc784-2LV-c",
    "pynq-z2": "xc7z020clg400-1",
    "pynq-z1": "xc7z020clg400-1",
    "ultra96-v2": "xczu3eg-sbva484-1-i",
    "zcu102": "xczu9eg-ffvb1156-2-e",
    "rfsoc4x2": "xczu48dr-ffvg1517-2-e",
}
SHIPPED = sorted(BOARDS_DIR.glob("*.yaml"))
GROUPS = ("pl", "clock", "ddr", "ps_cpu", "link", "caps")


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


# --------------------------------------------------------------------------- shipped boards


@pytest.mark.real_boards_dir
def test_library_has_every_expected_board():
    assert boards_dir() == BOARDS_DIR
    stems = {p.stem for p in SHIPPED}
    assert set(EXPECTED) <= stems


@pytest.mark.parametrize("path", SHIPPED, ids=_ids(SHIPPED))
def test_shipped_board_validates(path: Path):
    board = load_board(path)
    assert isinstance(board, Board)
    assert board.path == str(path)
    assert board.stem == path.stem
    if path.stem in EXPECTED:
        assert board.part == EXPECTED[path.stem]
    assert 0 < len(board.name) <= 16, "name: keep it short and human"


@pytest.mark.parametrize("path", SHIPPED, ids=_ids(SHIPPED))
def test_shipped_board_values_are_sensible(path: Path):
    b = load_board(path)
    ddr = b.ddr
    derived = ddr.bus_width_bits / 8 * ddr.transfer_rate_mts / 1000
    assert ddr.peak_bandwidth_gb_s == pytest.approx(derived, rel=0.02)
    assert ddr.bus_width_bits in (16, 32, 64, 72)
    assert 0.5 <= ddr.pl_efficiency <= 0.95
    assert ddr.capacity_bytes >= 256 * 2**20
    assert ddr.capacity_bytes & (ddr.capacity_bytes - 1) == 0, "capacity: a power of two"
    assert b.ddr_bytes_per_s == pytest.approx(ddr.peak_bandwidth_gb_s * 1e9 * ddr.pl_efficiency)

    for cap in (b.caps.lut, b.caps.ff, b.caps.bram36, b.caps.uram, b.caps.dsp):
        assert 0 < cap <= 1

    assert 50 <= b.clock.typical_mhz <= b.clock.max_mhz <= 500
    assert b.pl.ff >= b.pl.lut  # every 7-series / UltraScale+ slice has 2 FFs per LUT

    cpu = b.ps_cpu
    flop_per_cycle = cpu.peak_fp32_gflops / (cpu.cores * cpu.clock_mhz / 1000)
    assert flop_per_cycle == pytest.approx(4, rel=0.02)  # A53 and A9 NEON: 4 fp32 FLOP/cycle
    assert 0 < cpu.memory_bandwidth_gb_s < ddr.peak_bandwidth_gb_s

    expected_width = 64 if b.family == "zynq7000" else 128
    assert b.link.port_width_bits == expected_width
    assert b.link.hp_ports == 4
    assert 10 <= b.link.per_call_overhead_us <= 500
    if b.family == "zynq7000":
        assert b.pl.uram == 0


@pytest.mark.parametrize("path", SHIPPED, ids=_ids(SHIPPED))
def test_shipped_board_sources_cover_every_group(path: Path):
    b = load_board(path)
    cited = [f for s in b.sources for f in s.fields]
    for group in GROUPS:
        assert any(f == group or f.startswith(group + ".") for f in cited), group
    for name in cited:  # every cited field exists in the schema
        head, _, rest = name.partition(".")
        assert head in Board.model_fields, name
        if rest:
            sub = getattr(b, head)
            assert rest in type(sub).model_fields, name


def test_resolve_board_by_name_and_path():
    assert resolve_board("zcu104").part == EXPECTED["zcu104"]
    assert resolve_board("KV260").part == EXPECTED["kv260"]
    assert resolve_board(str(BOARDS_DIR / "pynq-z2.yaml")).name == "PYNQ-Z2"
    with pytest.raises(DseError, match=r"^nosuchboard: no such board file or board name \(known: "):
        resolve_board("nosuchboard")


# --------------------------------------------------------------------------- bad input


@pytest.fixture
def base() -> dict:
    return yaml.safe_load((BOARDS_DIR / "zcu104.yaml").read_text(encoding="utf-8"))


def _write(tmp_path: Path, data: object, name: str = "bad.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return p


def _error(path: Path) -> str:
    """The one-line error, with its ``line N:`` checked (that line holds the field or the
    mapping it is missing from) and then taken out."""
    with pytest.raises(DseError) as info:
        load_board(path)
    return without_line(str(info.value), path)


def without_line(msg: str, path: Path) -> str:
    assert "\n" not in msg
    m = re.match(rf"{re.escape(str(path))}: line (\d+): ", msg)
    if m is None:
        return msg
    text = path.read_text(encoding="utf-8").splitlines()[int(m.group(1)) - 1]
    field = msg[m.end():].split(":")[0]
    named = [part for part in field.split(".") if not part.isdigit()]
    assert " " in field or any(part in text for part in named), (msg, text)
    return f"{path}: {msg[m.end():]}"


def _mutated(base: dict, section: str | None, key: str, value: object = ...) -> dict:
    data = copy.deepcopy(base)
    target = data if section is None else data[section]
    if value is ...:
        del target[key]
    else:
        target[key] = value
    return data


TOP_KEYS = ("name, part, family, pl, clock, ddr, ps_cpu, link, caps, power, cost_overrides, "
            "sources, notes, calibration")
MISSING = ...  # sentinel: delete the key instead of setting it


def _q(kind: str) -> str:
    """What the schema expects of a physical quantity (``dse.schema.QUANTITIES``)."""
    return QUANTITIES[kind].expected()


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        pytest.param(None, "colour", "red", f"one of {TOP_KEYS} (unknown key)", id="unknown-top"),
        pytest.param("pl", "luts", 230400,
                     "one of lut, ff, dsp, bram36, uram (unknown key; did you mean 'lut'?)",
                     id="unknown-nested"),
        pytest.param("ddr", "peak_bandwidth_gb_s", MISSING, "a value (field is missing)",
                     id="missing"),
        pytest.param("pl", "lut", "many", f"{_q('pl_resource')}, got 'many'", id="type-str"),
        pytest.param("pl", "lut", 1.5, f"{_q('pl_resource')}, got 1.5", id="type-float"),
        pytest.param("pl", "lut", True, f"{_q('pl_resource')}, got True", id="type-bool"),
        pytest.param("pl", "dsp", 0, f"{_q('pl_resource')}, got 0", id="zero-dsp"),
        pytest.param("pl", "lut", -5, f"{_q('pl_resource')}, got -5", id="negative-lut"),
        pytest.param("pl", "uram", -1, f"{_q('pl_resource_or_none')}, got -1", id="negative-uram"),
        pytest.param("caps", "lut", 1.5, "a value <= 1.0, got 1.5", id="cap-above-1"),
        pytest.param("caps", "ff", 0, "a value > 0.0, got 0", id="cap-zero"),
        pytest.param("ddr", "pl_efficiency", 1.2, "a value <= 1.0, got 1.2",
                     id="efficiency-above-1"),
        pytest.param("ddr", "peak_bandwidth_gb_s", "fast", f"{_q('bandwidth_gb_s')}, got 'fast'",
                     id="float-str"),
        pytest.param("ddr", "peak_bandwidth_gb_s", True, f"{_q('bandwidth_gb_s')}, got True",
                     id="float-bool"),
        pytest.param("link", "per_call_overhead_us", -1, f"{_q('overhead_us')}, got -1",
                     id="negative-overhead"),
        pytest.param("clock", "max_mhz", 200, ">= clock.typical_mhz (250.0), got 200.0",
                     id="max-below-typical"),
        pytest.param(None, "family", "virtex",
                     "one of 'zynq7000', 'zynqmp' or 'rfsoc', got 'virtex'", id="family"),
        pytest.param(None, "pl", [1, 2], "a mapping, got [1, 2]", id="pl-not-mapping"),
        pytest.param(None, "name", "", "a non-empty string, got ''", id="empty-name"),
        pytest.param(None, "sources", [], "a non-empty list, got []", id="no-sources"),
    ],
)
def test_bad_field(tmp_path: Path, base: dict, section, key, value, expected):
    path = _write(tmp_path, _mutated(base, section, key, value))
    field = key if section is None else f"{section}.{key}"
    assert _error(path) == f"{path}: {field}: expected {expected}"


def test_bad_source_entry(tmp_path: Path, base: dict):
    base["sources"][0]["fields"] = []
    path = _write(tmp_path, base)
    assert _error(path) == f"{path}: sources.0.fields: expected a non-empty list, got []"


def test_unknown_key_in_source_entry(tmp_path: Path, base: dict):
    base["sources"][1]["page"] = 12
    path = _write(tmp_path, base)
    assert _error(path) == f"{path}: sources.1.page: expected one of fields, source (unknown key)"


@pytest.mark.parametrize(
    ("text", "got"),
    [("- pl\n- ddr\n", "a list"), ("just a string\n", "a string"), ("42\n", "a number"),
     ("", "an empty document")],
    ids=["list", "string", "number", "empty"],
)
def test_non_mapping_yaml(tmp_path: Path, text: str, got: str):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    assert _error(path) == f"{path}: expected a YAML mapping of board fields, got {got}"


def test_board_from_mapping_rejects_non_mapping():
    expected = r"^<board>: expected a YAML mapping of board fields, got a list$"
    with pytest.raises(DseError, match=expected):
        board_from_mapping([1, 2])


def test_invalid_yaml_syntax(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: ZCU104\npl: [unclosed\npart: x\n", encoding="utf-8")
    with pytest.raises(DseError) as info:
        load_board(path)
    assert str(info.value).startswith(f"{path}: line 3: expected valid YAML (")


def test_missing_file(tmp_path: Path):
    path = tmp_path / "nope.yaml"
    assert _error(path) == f"{path}: no such board file"


def test_directory_and_binary_file(tmp_path: Path):
    folder = tmp_path / "dir.yaml"
    folder.mkdir()
    assert _error(folder) == f"{folder}: cannot read board file (Is a directory)"
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    assert _error(binary) == f"{binary}: cannot read board file (not UTF-8 text)"


def test_round_trip_of_shipped_mapping_is_valid(tmp_path: Path, base: dict):
    """The helpers build bad files from a dumped copy: the unmutated dump must still validate."""
    assert load_board(_write(tmp_path, base, "good.yaml")).name == "ZCU104"


# --------------------------------------------------------------------------- CLI


def test_cli_validate_good_and_bad(tmp_path: Path, base: dict, capsys):
    good = BOARDS_DIR / "zcu104.yaml"
    bad = _write(tmp_path, _mutated(base, "pl", "dsp", 0))
    assert main(["boards", "validate", str(good), str(bad)]) == 2
    out, err = capsys.readouterr()
    assert f"ok      {good} (ZCU104, xczu7ev-ffvc1156-2-e)" in out
    assert f"INVALID {bad}: line 7: pl.dsp: expected {_q('pl_resource')}, got 0" in err
    assert str(good) not in err


def test_cli_validate_all_shipped(capsys):
    assert main(["boards", "validate", *map(str, SHIPPED)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.count("ok      ") == len(SHIPPED)


def test_cli_validate_missing_file(tmp_path: Path, capsys):
    missing = tmp_path / "nope.yaml"
    assert main(["boards", "validate", str(missing)]) == 2
    assert f"INVALID {missing}: no such board file" in capsys.readouterr().err


def test_cli_list(capsys):
    assert main(["boards", "list"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["file", "name", "part"]
    for stem, part in EXPECTED.items():
        row = next((ln for ln in lines if ln.split()[:1] == [stem]), None)
        assert row is not None, stem
        assert part in row
    assert len(lines) >= 2 + len(EXPECTED)


def test_cli_list_empty_dir(tmp_path: Path, capsys):
    assert main(["boards", "list", "--dir", str(tmp_path)]) == 2
    assert f"{tmp_path}: no board files (*.yaml) found" in capsys.readouterr().err
