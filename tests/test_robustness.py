"""One test per class of failure issue 16 found: what a careful user tries must end in one
line and exit 2 (or a correct result), never a traceback, a destroyed input, a lost report
section or half the outputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import fuzzkit
import pytest
import yaml

from dse.cli import main
from dse.errors import DseError
from dse.io import Outputs, json_text, lock_path

ROOT = Path(__file__).resolve().parents[1]
BOARD = yaml.safe_load((ROOT / "boards" / "zcu104.yaml").read_text(encoding="utf-8"))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def one_line(err: str, *parts: str) -> None:
    """The error is one line, no traceback, and names each of ``parts``."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for part in parts:
        assert part in lines[0], (part, lines[0])


@pytest.fixture
def files(tmp_path):
    """A folder with a small valid profile, plan and board (as the fuzz cases use)."""
    fuzzkit.Case({"board.yaml": yaml.safe_dump(BOARD),
                  "p.json": fuzzkit.json_text(fuzzkit._small_profile()),
                  "plan.yaml": yaml.safe_dump(fuzzkit._plan())}, []).materialize(tmp_path)
    return tmp_path


def project(capsys, folder: Path, *extra: str) -> tuple[int, str, str]:
    return run(capsys, "project", "--board", str(folder / "board.yaml"), "--profile",
               str(folder / "p.json"), "--plan", str(folder / "plan.yaml"), "--calibration",
               "none", *extra)


# -- profiles are type-checked ---------------------------------------------------------------

@pytest.mark.parametrize(("edit", "field", "expected"), [
    (lambda d: d.__setitem__("system", "x"), "system", "expected a mapping"),
    (lambda d: d["modules"][0].__setitem__("calls", "51"), "modules.0.calls",
     "expected an integer"),
    (lambda d: d.__setitem__("report_lang", "fr"), "report_lang", "'zh' or 'en'"),
    (lambda d: d["tokens"][2].__setitem__("ms", -1.0), "tokens.2.ms", "> 0"),
    (lambda d: d["tokens"][2].__setitem__("normalized_ms", -1.0), "tokens.2.normalized_ms",
     ">= 0"),
    (lambda d: d["phases"][0].__setitem__("ms", float("nan")), "p.json", "NaN"),
    (lambda d: d["modules"][1].__setitem__("calls", 0), "modules.1.calls", "> 0"),
    (lambda d: d["modules"][1].__setitem__("total_ms", 0), "modules.1.total_ms", "time > 0"),
    (lambda d: d["system"].__setitem__("reference_mhz", 0), "system.reference_mhz", "> 0"),
])
def test_profile_fields_are_type_checked(capsys, files, edit, field, expected):
    data = json.loads((files / "p.json").read_text(encoding="utf-8"))
    edit(data)
    (files / "p.json").write_text(json.dumps(data), encoding="utf-8")
    rc, out, err = project(capsys, files)
    assert rc == 2 and out == ""
    one_line(err, "p.json", field, expected)


# -- boards, overrides and calibrations: finite and in range ----------------------------------

@pytest.mark.parametrize(("section", "key", "value", "expected"), [
    ("clock", "max_mhz", float("inf"), "a number from 1.0 to 2000.0 (a PL clock in MHz)"),
    ("ddr", "peak_bandwidth_gb_s", float("inf"), "a number from 0.01 to 10000.0"),
    ("ddr", "pl_efficiency", float("nan"), "a finite number"),
    ("ddr", "peak_bandwidth_gb_s", 1e300, "to 10000.0 (a bandwidth in GB/s)"),
    ("ps_cpu", "memory_bandwidth_gb_s", 1e-300, "from 0.01 to 10000.0"),
    ("ps_cpu", "cores", 2**53, "an integer from 1 to 1024 (CPU cores)"),
    ("clock", "typical_mhz", 1e-300, "a number from 1.0 to 2000.0 (a PL clock in MHz)"),
    ("cost_overrides", "cache_maint_bytes_per_s", 0, "> 0"),
    ("cost_overrides", "lane_lut", float("nan"), "a finite number"),
    ("cost_overrides", "mm2s_efficiency", 1.5, "<= 1"),
])
def test_board_values_finite_and_in_range(capsys, tmp_path, section, key, value, expected):
    board = json.loads(json.dumps(BOARD))
    board.setdefault(section, {})[key] = value
    path = tmp_path / "b.yaml"
    path.write_text(yaml.safe_dump(board), encoding="utf-8")
    rc, _, err = run(capsys, "boards", "validate", str(path))
    assert rc == 2
    one_line(err, str(path), f"{section}.{key}", expected)


@pytest.mark.parametrize(("edit", "field"), [
    (lambda c: c.__setitem__("provenance", "abc"), "provenance"),
    (lambda c: c["parameters"]["ddr_pl_efficiency"].__setitem__("value", float("nan")),
     "parameters.ddr_pl_efficiency.value"),
    (lambda c: c.__setitem__("backend", float("inf")), "backend"),
])
def test_calibration_values_checked(capsys, files, edit, field):
    cal = yaml.safe_load(fuzzkit.calibration_text())
    edit(cal)
    (files / "cal.yaml").write_text(yaml.safe_dump(cal), encoding="utf-8")
    rc, _, err = run(capsys, "project", "--board", str(files / "board.yaml"), "--profile",
                     str(files / "p.json"), "--plan", str(files / "plan.yaml"),
                     "--calibration", str(files / "cal.yaml"))
    assert rc == 2
    one_line(err, "cal.yaml", field)


# -- writes fail early, all or nothing, with one line -------------------------------------------

def test_output_folder_checked_before_the_work(capsys, tmp_path):
    """calibrate refuses an output that is a folder before it simulates anything."""
    (tmp_path / "out").mkdir()
    rc, out, err = run(capsys, "calibrate", "--board", "zcu104", "--backend", "sim",
                       "--output", str(tmp_path / "out"), "--no-report")
    assert rc == 2 and "calibrating" not in out
    one_line(err, str(tmp_path / "out"), "is a folder")


def test_disk_full_is_one_line_and_writes_nothing(capsys, tmp_path, monkeypatch):
    """The second of two staged files fails (ENOSPC): neither lands, no temp file stays."""
    import dse.io

    real = dse.io._stage
    calls = []

    def stage(pend):
        calls.append(pend.path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device", str(pend.target))
        return real(pend)

    monkeypatch.setattr(dse.io, "_stage", stage)
    out = Outputs()
    out.add(tmp_path / "a.json", "{}")
    out.add(tmp_path / "b.json", "{}")
    with pytest.raises(DseError, match=r"b\.json: cannot write output \(No space left on "
                       r"device\); no output of this run was changed"):
        out.commit()
    assert list(tmp_path.iterdir()) == []


def test_oserror_escaping_a_command_is_one_line(capsys, monkeypatch):
    import dse.commands.boards

    def boom(args):
        raise PermissionError(13, "Permission denied", "/x/y")

    monkeypatch.setattr(dse.commands.boards, "run_list", boom)
    rc, _, err = run(capsys, "boards", "list")
    assert rc == 2
    one_line(err, "/x/y", "Permission denied")


def test_failed_explore_leaves_no_orphan_outputs(capsys, files):
    """A report whose section lost its end marker: no JSON and no plots are left behind."""
    report = files / "r.md"
    report.write_text("# report\n\n<!-- dse:explore board=board begin -->\nhalf\n",
                      encoding="utf-8")
    before = fuzzkit.snapshot(files)
    rc, _, err = run(capsys, "explore", "--board", str(files / "board.yaml"), "--profile",
                     str(files / "p.json"), "--calibration", "none", "--top", "2",
                     "--report", str(report), "--json", str(files / "e.json"))
    assert rc == 2
    one_line(err, "end marker")
    assert fuzzkit.snapshot(files) == before


# -- an output pointed at an input -------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["explore", "--board", "board.yaml", "--profile", "p.json", "--report", "p.json"],
    ["explore", "--board", "board.yaml", "--profile", "p.json", "--report", "x.md",
     "--json", "x.md"],
    ["import", "r.md", "-o", "r.md"],
    ["project", "--board", "board.yaml", "--profile", "p.json", "--plan", "plan.yaml",
     "--json", "plan.yaml"],
    ["project", "--board", "board.yaml", "--profile", "p.json", "--plan", "plan.yaml",
     "--json", "link.yaml"],
    # --fabric FILE was not counted as an input: each of these rewrote the evidence file
    ["explore", "--board", "board.yaml", "--profile", "p.json", "--fabric", "fab.yaml",
     "--report", "fab.yaml"],
    ["project", "--board", "board.yaml", "--profile", "p.json", "--plan", "plan.yaml",
     "--fabric", "fab.yaml", "--json", "fab.yaml"],
    ["calibrate", "--board", str(fuzzkit.ROOT / "boards" / "kv260.yaml"), "--from",
     str(fuzzkit.ROOT / "examples" / "measurements" / "bitnet-kv260.json"), "--fabric",
     "fab.yaml", "--output", "fab.yaml", "--no-report"],
])
def test_output_onto_an_input_is_refused(files, argv):
    (files / "r.md").write_text(fuzzkit.REPORT_MD.read_text(encoding="utf-8"), encoding="utf-8")
    os.link(files / "plan.yaml", files / "link.yaml")  # the same file under another name
    (files / "fab.yaml").write_bytes((fuzzkit.ROOT / "dse" / "data" / "fabric.yaml").read_bytes())
    res = fuzzkit.run_case(files, [*argv, "--calibration", "none"]
                           if argv[0] in ("explore", "project") else argv)
    assert res.code == 2 and res.ok, res.problems
    one_line(res.stderr, "input of this run" if "x.md" not in argv else "written twice")


# -- report rewrites: locked, and the file kept ---------------------------------------------

def _section(board: str, body: str) -> str:
    return (f"<!-- dse:explore board={board} begin -->\n{body}\n"
            f"<!-- dse:explore board={board} end -->\n")


def _add(board: str, body: str):
    from dse.report.sections import upsert_section

    return lambda current: upsert_section(current or "# r\n", "explore", board,
                                          _section(board, body))


def test_concurrent_rewrites_keep_both_sections(tmp_path):
    """Writer A has read the report and is still rendering when writer B commits: B waits
    for A's lock, then re-reads the report with A's section in it."""
    report = tmp_path / "r.md"
    report.write_text("# r\n", encoding="utf-8")
    a_read, a_go = threading.Event(), threading.Event()

    def slow(current):
        a_read.set()
        a_go.wait(10)
        return _add("a", "A")(current)

    errors = []

    def commit(update):
        try:
            out = Outputs()
            out.rewrite(report, update)
            out.commit()
        except Exception as exc:  # surfaced below
            errors.append(exc)

    ta = threading.Thread(target=commit, args=(slow,))
    ta.start()
    assert a_read.wait(10)
    tb = threading.Thread(target=commit, args=(_add("b", "B"),))
    tb.start()
    tb.join(1.0)  # without the lock B would be done by now, and A would overwrite it
    a_go.set()
    ta.join(10)
    tb.join(10)
    assert not errors
    text = report.read_text(encoding="utf-8")
    assert "\nA\n" in text and "\nB\n" in text
    assert not lock_path(report).exists()


def test_two_explores_of_different_boards_keep_both_sections(tmp_path):
    """The real thing: two `dse explore` processes, one report, run at the same time."""
    report = tmp_path / "r.md"
    report.write_text(fuzzkit.REPORT_MD.read_text(encoding="utf-8"), encoding="utf-8")
    procs = [subprocess.Popen(
        [sys.executable, "-m", "dse.cli", "explore", "--board", board, "--calibration",
         "none", "--top", "2", "--report", str(report)], cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for board in (str(ROOT / "boards" / "zcu104.yaml"), str(ROOT / "boards" / "kv260.yaml"))]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    text = report.read_text(encoding="utf-8")
    for stem in ("zcu104", "kv260"):
        assert text.count(f"<!-- dse:explore board={stem} begin -->") == 1


def test_rewrite_keeps_mode_symlink_and_hard_links(tmp_path):
    target = tmp_path / "real.md"
    target.write_text("# r\n", encoding="utf-8")
    target.chmod(0o600)
    link = tmp_path / "link.md"
    link.symlink_to(target.name)
    other = tmp_path / "other-name.md"
    os.link(target, other)
    out = Outputs()
    out.rewrite(link, _add("a", "A"))
    out.commit()
    assert link.is_symlink() and os.readlink(link) == target.name
    assert "\nA\n" in target.read_text(encoding="utf-8")
    assert other.read_text(encoding="utf-8") == target.read_text(encoding="utf-8")
    assert os.stat(target).st_nlink == 2
    assert target.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.md", "other-name.md",
                                                         "real.md"]


def test_new_output_gets_the_usual_mode(tmp_path):
    old = os.umask(0o022)
    try:
        out = Outputs()
        out.add(tmp_path / "n.json", "{}")
        out.commit()
    finally:
        os.umask(old)
    assert (tmp_path / "n.json").stat().st_mode & 0o777 == 0o644


# -- dse import rejects what dse later rejects ---------------------------------------------

def _import(capsys, tmp_path, text: str) -> tuple[int, str]:
    (tmp_path / "r.md").write_text(text, encoding="utf-8")
    rc, _, err = run(capsys, "import", str(tmp_path / "r.md"), "-o", str(tmp_path / "p.json"))
    assert not (tmp_path / "p.json").exists() or rc == 0
    return rc, err


def test_import_rejects_negative_calls_and_times(capsys, tmp_path, seed_report_text):
    row = next(ln for ln in seed_report_text.splitlines()
               if ln.startswith("| `model.layers.3.mlp.up_proj` |"))
    cells = row.split("|")
    for col, expected in ((2, "an integer >= 1"), (3, "a number >= 0")):
        bad = cells.copy()
        bad[col] = " -" + bad[col].strip() + " "
        rc, err = _import(capsys, tmp_path, seed_report_text.replace(row, "|".join(bad)))
        assert rc == 2
        one_line(err, "r.md", expected)


def test_import_rejects_a_token_list_cut_short(capsys, tmp_path, seed_report_text):
    lines = seed_report_text.splitlines(keepends=True)
    start = next(n for n, ln in enumerate(lines) if ln.startswith("### 4.2 "))
    i = next(n for n, ln in enumerate(lines) if n > start and ln.startswith("| 20 |"))
    rc, err = _import(capsys, tmp_path, "".join(lines[:i] + lines[i + 1:]))
    assert rc == 2
    one_line(err, "r.md", "table truncated?")


def test_imported_profile_loads(capsys, tmp_path, seed_report_text):
    rc, _ = _import(capsys, tmp_path, seed_report_text)
    assert rc == 0
    from dse.profile.format import load_profile

    assert len(load_profile(tmp_path / "p.json").linears) == 211


# -- nesting, interrupts, options, strict JSON -------------------------------------------------

@pytest.mark.parametrize("which", ["board", "profile", "plan", "calibration", "compare"])
def test_deep_nesting_is_one_line(tmp_path, which):
    case = next(c for c in (fuzzkit.nesting_case(_Pick(which)),))
    res = fuzzkit.try_case(case, tmp_path)
    assert res.code == 2 and res.ok, res.problems
    one_line(res.stderr, "nested too deeply")


class _Pick:
    """A stand-in ``random.Random`` whose ``choice`` returns one given item."""

    def __init__(self, item):
        self.item = item

    def choice(self, seq):
        return self.item if self.item in seq else seq[0]


def test_interrupt_during_start_up_is_one_line(capsys, monkeypatch):
    import dse.cli

    def interrupted(argv=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(dse.cli, "build_parser", interrupted)
    assert main(["boards", "list"]) == 130
    _, err = capsys.readouterr()
    assert err == "dse: interrupted\n"


def test_ctrl_c_in_a_real_run_is_one_line(tmp_path):
    """A `dse` process interrupted while it reads its profile (a FIFO: the moment it opens
    it is known exactly, so no timing is involved) prints one line and exits 130."""
    fifo = tmp_path / "p.json"
    os.mkfifo(fifo)
    dse = Path(sys.executable).parent / "dse"
    argv = [str(dse)] if dse.exists() else [sys.executable, "-m", "dse.cli"]
    p = subprocess.Popen([*argv, "explore", "--board", "zcu104", "--profile", str(fifo),
                          "--no-report", "--calibration", "none"], cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with open(fifo, "w"):  # returns once the child has opened it, inside main()
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert err == "dse: interrupted\n"


@pytest.mark.parametrize(("argv", "option"), [
    (["profile", "--preset", "tiny", "--memory-interval", "inf"], "--memory-interval"),
    (["profile", "--preset", "tiny", "--reference-mhz", "nan"], "--reference-mhz"),
    (["explore", "--board", "zcu104", "--top", "1e30"], "--top"),
    (["project", "--board", "zcu104", "--plan", "x.yaml", "--prompt-tokens", "-3"],
     "--prompt-tokens"),
    (["calibrate", "--board", "zcu104", "--timeout", "inf"], "--timeout"),
])
def test_option_values_checked_up_front(capsys, argv, option):
    rc, out, err = run(capsys, *argv)
    assert rc == 2 and out == ""
    one_line(err, option, "expected")


def test_json_out_is_strict():
    assert json_text({"a": [1.5, None]}) == '{\n "a": [\n  1.5,\n  null\n ]\n}\n'
    with pytest.raises(DseError, match=r"plans JSON: plans\.1\.x: expected a finite number"):
        json_text({"plans": [{"x": 1.0}, {"x": float("nan")}]}, "plans JSON")


def test_nan_literal_in_an_input_json_is_refused(capsys, files):
    text = (files / "p.json").read_text(encoding="utf-8")
    (files / "p.json").write_text(text.replace('"total_ms": ', '"total_ms": NaN, "x": ', 1),
                                  encoding="utf-8")
    rc, _, err = project(capsys, files)
    assert rc == 2
    one_line(err, "p.json", "NaN is not a JSON number")


def test_unreadable_report_fails_before_the_search(capsys, files):
    report = files / "r.md"
    report.write_bytes(b"\xff\xfe binary \x00")
    rc, out, err = run(capsys, "explore", "--board", str(files / "board.yaml"), "--profile",
                       str(files / "p.json"), "--calibration", "none", "--report", str(report))
    assert rc == 2 and out == ""  # no search summary: it failed before searching
    one_line(err, "r.md", "not UTF-8")
    assert report.read_bytes() == b"\xff\xfe binary \x00"


def test_an_endless_input_is_one_line(capsys, monkeypatch):
    """``--model /dev/zero`` read until the memory ran out (a MemoryError traceback, or the
    out-of-memory killer): an input stops at ``MAX_INPUT_CHARS`` (made small here)."""
    import dse.io

    monkeypatch.setattr(dse.io, "MAX_INPUT_CHARS", 1 << 20)
    rc, out, err = run(capsys, "explore", "--board", "kv260", "--no-report", "--model",
                       "/dev/zero")
    assert rc == 2 and out == ""
    assert err == ("dse: error: /dev/zero: cannot read model config file (more than 1 MiB of "
                   "text: no dse input is near that; a device like /dev/zero?)\n")


def test_stream_output_is_written_in_place(tmp_path):
    """``--json /dev/stdout`` style: a FIFO is written to, never renamed over."""
    import stat

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    out = Outputs()
    out.add(fifo, '{"a": 1}\n', "JSON")
    out.commit()
    reader.join(10)
    assert got == [b'{"a": 1}\n']
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("engines", 2**53, "<= 4096"),  # the cost model sums engines one by one: this hung
    ("pe", 10**30, "<= 2**53"),
    ("clock_mhz", float("inf"), "a number from 1.0 to 2000.0 (a PL clock in MHz)"),
    ("clock_mhz", 1e-300, "a number from 1.0 to 2000.0 (a PL clock in MHz)"),
])
def test_absurd_engine_fields_are_refused(capsys, files, field, value, expected):
    plan = yaml.safe_load((files / "plan.yaml").read_text(encoding="utf-8"))
    plan["engine"][field] = value
    (files / "plan.yaml").write_text(yaml.safe_dump(plan), encoding="utf-8")
    rc, _, err = project(capsys, files)
    assert rc == 2
    one_line(err, "plan.yaml", f"engine.{field}", expected)
