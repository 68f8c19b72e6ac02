"""One test per hazard of issue 27 (robustness, round two): users' files, disks, pipes, logs
and boards. Each reproduces what a new user or an adversary tried, and asserts the promise:
a correct run, or one line naming the file, the field and what was expected, exit 2 (143 for
SIGTERM), nothing altered or half-written.

The measurement-log hazards (2**62 engines, a part_of cycle, a 1e308 ms part, a component in
W, n: 1e30) are cases of ``tests/test_measurement_log.py::BAD_LOGS``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import fuzzkit
import pytest
import yaml

from dse.cli import main
from dse.errors import DseError
from dse.io import Outputs

ROOT = Path(__file__).resolve().parents[1]
BOARD_TEXT = (ROOT / "boards" / "zcu104.yaml").read_text(encoding="utf-8")
KV260 = ROOT / "boards" / "kv260.yaml"
KV260_LOG = ROOT / "examples" / "measurements" / "bitnet-kv260.json"
DSE = Path(sys.executable).parent / "dse"
DSE_ARGV = [str(DSE)] if DSE.exists() else [sys.executable, "-m", "dse.cli"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def one_line(err: str, *parts: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for part in parts:
        assert part in lines[0], (part, lines[0])
    return lines[0]


@pytest.fixture
def files(tmp_path):
    """A small valid profile, plan and board, as the fuzz cases use."""
    fuzzkit.Case({"board.yaml": BOARD_TEXT,
                  "p.json": fuzzkit.json_text(fuzzkit._small_profile()),
                  "plan.yaml": fuzzkit.yaml_text(fuzzkit._plan())}, []).materialize(tmp_path)
    return tmp_path


def explore(folder: Path, *extra: str) -> list[str]:
    return ["explore", "--board", str(folder / "board.yaml"), "--profile", str(folder / "p.json"),
            "--calibration", "none", "--top", "1", *extra]


def dse(folder: Path, *argv: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*DSE_ARGV, *argv], cwd=folder, capture_output=True, text=True,
                          env=env, timeout=300, **kw)


# -- outputs: all or nothing ---------------------------------------------------------------

def test_hard_linked_report_on_a_full_disk_is_never_cut(tmp_path, monkeypatch):
    """The disk fills while the longer new report is written into the shared inode: both
    names keep the old text byte for byte, no temporary file stays, the error names it."""
    import dse.io

    report = tmp_path / "r.md"
    report.write_bytes(b"# my report\r\n\r\nmy notes\r\n")
    os.link(report, tmp_path / "other name.md")
    before = fuzzkit.snapshot(tmp_path)
    real = dse.io._pwrite
    staged = []

    def pwrite(fd, data, offset):
        if os.fstat(fd).st_ino == os.stat(report).st_ino:
            n = real(fd, bytes(data[:5]), offset)  # a few bytes fit, then the disk is full
            if n and len(data) > 5:
                raise OSError(28, "No space left on device")
            return n
        staged.append(fd)
        return real(fd, data, offset)

    monkeypatch.setattr(dse.io, "_pwrite", pwrite)
    out = Outputs()
    out.rewrite(report, lambda old: old + "<!-- dse:x board=b begin -->\r\n" * 40)
    with pytest.raises(DseError, match=r"r\.md: cannot replace report \(No space left on "
                       r"device\); no output of this run was changed"):
        out.commit()
    assert staged  # the new text was staged in full first
    assert fuzzkit.snapshot(tmp_path) == before
    assert os.stat(report).st_nlink == 2


def test_hard_linked_report_is_rewritten_in_place(tmp_path):
    report = tmp_path / "r.md"
    report.write_text("# r\n", encoding="utf-8")
    os.link(report, tmp_path / "alias.md")
    out = Outputs()
    out.rewrite(report, lambda old: old + "more\n")
    out.commit()
    assert (tmp_path / "alias.md").read_text(encoding="utf-8") == "# r\nmore\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alias.md", "r.md"]


def test_unwritable_json_target_replaces_nothing(capsys, files):
    """``--json /dev/full``: the run fails before the report and its plots are replaced."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    report = files / "r.md"
    report.write_text("# mine\n", encoding="utf-8")
    before = fuzzkit.snapshot(files)
    rc, _, err = run(capsys, *explore(files, "--report", str(report), "--json", "/dev/full"))
    assert rc == 2
    one_line(err, "/dev/full", "cannot write JSON", "no output of this run was changed")
    assert fuzzkit.snapshot(files) == before


def test_a_failed_install_puts_the_first_outputs_back(tmp_path, monkeypatch):
    """The second rename fails: the first file gets its old contents back."""
    import dse.io

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text("old a", encoding="utf-8")
    b.write_text("old b", encoding="utf-8")
    real = os.replace

    def replace(src, dst):
        if str(dst) == str(b):
            raise OSError(30, "Read-only file system")
        return real(src, dst)

    monkeypatch.setattr(dse.io.os, "replace", replace)
    out = Outputs()
    out.add(a, "new a")
    out.add(b, "new b")
    with pytest.raises(DseError, match=r"b\.json: cannot replace output"):
        out.commit()
    monkeypatch.setattr(dse.io.os, "replace", real)
    assert a.read_text(encoding="utf-8") == "old a" and b.read_text(encoding="utf-8") == "old b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]


# -- the user's report is the user's ---------------------------------------------------------

def test_crlf_report_keeps_its_bytes(capsys, files):
    report = files / "r.md"
    mine = "# 我的报告\r\n\r\nnotes, kept as they are\r\n".encode()
    report.write_bytes(mine)
    assert run(capsys, *explore(files, "--report", str(report)))[0] == 0
    data = report.read_bytes()
    assert data.startswith(mine)
    assert b"\n" not in data.replace(b"\r\n", b"")  # dse's own lines are CRLF too
    assert run(capsys, *explore(files, "--report", str(report)))[0] == 0  # replaced in place
    assert report.read_bytes() == data


def test_markers_inside_code_fences_are_the_users(capsys, files):
    """A report that quotes dse's markers in a fenced code block: the quote is left alone,
    the real section is added after it."""
    quoted = ("# r\n\nHow dse marks its section:\n\n```markdown\n"
              "<!-- dse:explore board=board begin -->\n(the section)\n"
              "<!-- dse:explore board=board end -->\n```\n")
    report = files / "r.md"
    report.write_text(quoted, encoding="utf-8")
    assert run(capsys, *explore(files, "--report", str(report)))[0] == 0
    text = report.read_text(encoding="utf-8")
    assert text.startswith(quoted)
    assert text.count("<!-- dse:explore board=board begin -->") == 2


def test_a_fence_with_only_a_begin_marker_is_not_an_orphan(capsys, files):
    report = files / "r.md"
    report.write_text("# r\n\n~~~\n<!-- dse:explore board=board begin -->\n~~~\n",
                      encoding="utf-8")
    assert run(capsys, *explore(files, "--report", str(report)))[0] == 0


def test_duplicated_section_is_replaced_by_one(capsys, files):
    section = ("<!-- dse:explore board=board begin -->\nold\n"
               "<!-- dse:explore board=board end -->\n")
    report = files / "r.md"
    report.write_text(f"# r\n\n{section}\nbetween\n\n{section}\nafter\n", encoding="utf-8")
    assert run(capsys, *explore(files, "--report", str(report)))[0] == 0
    text = report.read_text(encoding="utf-8")
    assert text.count("<!-- dse:explore board=board begin -->") == 1
    assert "\nold\n" not in text and "between" in text and text.endswith("after\n")


@pytest.mark.parametrize("summary", [
    '{"board": "Old board", "tokens_per_s": 3.0}',                     # fields missing
    '{"board": ["x"], "design": 1}',                                   # wrong types
    "not json at all",
    '{"board": "B", "design": "d", "tokens_per_s": 1e999, "speedup": 1}',  # non-finite
])
def test_summary_from_another_version_is_read_defensively(capsys, files, summary):
    """An old section's summary: the boards table names it instead of crashing."""
    old = ("<!-- dse:explore board=old begin -->\n## FPGA design-space exploration: Old\n\n"
           f"<!-- dse:summary {summary} -->\n\n<!-- dse:explore board=old end -->\n")
    report = files / "r.md"
    report.write_text(f"# r\n\n{old}", encoding="utf-8")
    rc, _, err = run(capsys, *explore(files, "--report", str(report)))
    assert rc == 0, err
    text = report.read_text(encoding="utf-8")
    assert "Not compared: `old`" in text and old in text


def test_board_named_to_end_a_comment_is_refused(capsys, tmp_path):
    board = yaml.safe_load(BOARD_TEXT)
    board["name"] = "ZCU104} -->"
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(board), encoding="utf-8")
    rc, _, err = run(capsys, "boards", "validate", str(tmp_path / "b.yaml"))
    assert rc == 2
    one_line(err, "b.yaml", "line", "name: expected one line of text without <, >, |",
             "'ZCU104} -->'")


def test_summary_comment_survives_any_value():
    """Written safely anyway: whatever a name holds, the summary reads back whole."""
    from dse.report.sections import read_summaries, section_markers, summary_comment

    sm = {"board": "x} --> <b>|`\n", "design": "-->"}
    begin, end = section_markers("explore", "a -->b")
    text = f"{begin}\n{summary_comment(sm)}\n{end}\n"
    assert "-->" not in summary_comment(sm)[4:-4] and "-->b" not in begin
    assert read_summaries(text) == [(begin.split("board=")[1].split()[0], sm)]


def test_file_names_with_spaces_in_links_and_the_make_line(capsys, files):
    (files / "my board.yaml").write_text(BOARD_TEXT, encoding="utf-8")
    report = files / "my report.md"
    rc, out, err = run(capsys, "explore", "--board", str(files / "my board.yaml"), "--profile",
                       str(files / "p.json"), "--calibration", "none", "--top", "1",
                       "--report", str(report))
    assert rc == 0, err
    text = report.read_text(encoding="utf-8")
    assert "](my%20report-my%20board-roofline.png)" in text
    assert (files / "my report-my board-roofline.png").exists()
    assert "BOARD='my board' " in out
    assert "<!-- dse:explore board=my%20board begin -->" in text


# -- duplicate keys and absurd numbers -------------------------------------------------------

def test_duplicate_yaml_keys_are_refused(capsys, files):
    """A calibration with a second ``value:`` (which flipped the KV260 recommendation), a
    board and a plan with a key set twice: one line naming both lines."""
    cal = (ROOT / "examples" / "calibrations" / "kv260-published.yaml").read_text(
        encoding="utf-8")
    lines = cal.splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("value:"))
    lines.insert(at + 1, "    value: 0.05")
    (files / "cal.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    rc, _, err = run(capsys, "explore", "--board", str(KV260), "--no-report", "--calibration",
                     str(files / "cal.yaml"))
    assert rc == 2
    one_line(err, f"cal.yaml: line {at + 2}: parameters.ddr_pl_efficiency.value: expected "
             f"each key once, 'value' is already set on line {at + 1}")
    (files / "b2.yaml").write_text(BOARD_TEXT + "name: Other\n", encoding="utf-8")
    rc, _, err = run(capsys, "boards", "validate", str(files / "b2.yaml"))
    assert rc == 2
    one_line(err, "b2.yaml", "name: expected each key once")
    (files / "plan.yaml").write_text("engine: {pe: 16, simd: 32, pe: 8}\noffload: ['*']\n",
                                     encoding="utf-8")
    rc, _, err = run(capsys, "project", "--board", str(files / "board.yaml"), "--profile",
                     str(files / "p.json"), "--plan", str(files / "plan.yaml"))
    assert rc == 2
    one_line(err, "plan.yaml: line 1: engine.pe: expected each key once")


def test_duplicate_json_keys_are_refused(tmp_path):
    from dse.model.measurement_log import load_log

    text = KV260_LOG.read_text(encoding="utf-8").replace('"value": 4.78,',
                                                         '"value": 4.78, "value": 0.01,', 1)
    (tmp_path / "log.json").write_text(text, encoding="utf-8")
    with pytest.raises(DseError, match=r"log\.json: entries\.\d+\.value: expected each key "
                       r"once in a JSON object"):
        load_log(tmp_path / "log.json")


@pytest.mark.parametrize(("section", "key", "value", "expected"), [
    ("ddr", "peak_bandwidth_gb_s", 25.0, "bus_width_bits / 8 x transfer_rate_mts = 17.06"),
    ("ps_cpu", "memory_bandwidth_gb_s", 40.0, "at most the DDR's peak"),
    ("ps_cpu", "peak_fp32_gflops", 5000.0, "at most cores x clock x 64 FLOP/cycle"),
])
def test_board_fields_agree_with_each_other(capsys, tmp_path, section, key, value, expected):
    board = yaml.safe_load(BOARD_TEXT)
    board[section][key] = value
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(board), encoding="utf-8")
    rc, _, err = run(capsys, "boards", "validate", str(tmp_path / "b.yaml"))
    assert rc == 2
    one_line(err, f"{section}.{key}", expected)


@pytest.mark.parametrize(("edit", "field", "expected"), [
    (lambda c: c.update(vocab_size=10**30), "model_config: vocab_size",
     "an integer from 1 to 16,777,216"),
    (lambda c: c.update(vocab_size=1000), "model_config.vocab_size",
     "expected 128256 (the profile's lm_head has 128,256 rows)"),
    (lambda c: c.update(intermediate_size=64), "model_config.intermediate_size", "6912"),
])
def test_model_config_against_the_profile(capsys, files, edit, field, expected):
    from dse.profile.presets import PRESETS

    prof = json.loads((files / "p.json").read_text(encoding="utf-8"))
    cfg = {"model_type": "bitnet", **PRESETS["bitnet-b1.58-2B-4T"], "num_hidden_layers": 2}
    edit(cfg)
    prof["model_config"] = cfg
    (files / "p.json").write_text(json.dumps(prof), encoding="utf-8")
    rc, _, err = run(capsys, "project", "--board", str(files / "board.yaml"), "--profile",
                     str(files / "p.json"), "--plan", str(files / "plan.yaml"),
                     "--calibration", "none")
    assert rc == 2
    one_line(err, "p.json", field, expected)


def test_calibration_value_outside_its_physical_range(capsys, tmp_path):
    cal = yaml.safe_load((ROOT / "examples" / "calibrations" / "kv260-published.yaml")
                         .read_text(encoding="utf-8"))
    cal["parameters"]["ps_memory_bandwidth_gb_s"]["value"] = 1e-300
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cal), encoding="utf-8")
    rc, _, err = run(capsys, "explore", "--board", str(KV260), "--no-report", "--calibration",
                     str(tmp_path / "c.yaml"))
    assert rc == 2
    one_line(err, "parameters.ps_memory_bandwidth_gb_s.value",
             "a number from 0.01 to 1000 (its physical range)")


def test_ten_thousand_entry_log_loads_quickly(tmp_path):
    """Loading is linear in the entries (the duplicate-id check was quadratic)."""
    from dse.model.measurement_log import load_log

    data = json.loads(KV260_LOG.read_text(encoding="utf-8"))
    base = data["entries"][0]
    data["entries"] = [{**base, "id": f"e{i}"} for i in range(10_000)]
    (tmp_path / "big.json").write_text(json.dumps(data), encoding="utf-8")
    t0 = time.perf_counter()
    assert len(load_log(tmp_path / "big.json").entries) == 10_000
    assert time.perf_counter() - t0 < 20  # minutes before; a generous ceiling, not a bench


# -- commands on odd input -----------------------------------------------------------------

def _explore_json(capsys, files) -> dict:
    assert run(capsys, *explore(files, "--no-report", "--json", str(files / "e.json")))[0] == 0
    return json.loads((files / "e.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("edit", [
    lambda d: d["summary"].pop("design"),                 # a field an older version lacked
    lambda d: d["summary"].update(board=["a", "list"]),   # unhashable where a name was
    lambda d: d.update(summary="old"),                    # not a mapping
    lambda d: d["summary"].update(lut="13%"),             # a string where a number was
])
def test_compare_json_from_another_version(capsys, files, edit):
    data = _explore_json(capsys, files)
    other = json.loads(json.dumps(data))
    edit(other)
    (files / "old.json").write_text(json.dumps(other), encoding="utf-8")
    rc, out, err = run(capsys, "compare", str(files / "e.json"), str(files / "old.json"))
    assert rc == 0 and err == "", err
    assert f"not in the boards table: {files / 'old.json'}" in out


def test_weights_inspect_empty_and_negative_shapes(capsys, tmp_path):
    np = pytest.importorskip("numpy")
    pytest.importorskip("safetensors")
    header_of = {"zero": [0, 16], "negative": [-4, -16]}
    for name, shape in header_of.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text('{"model_type": "bitnet"}', encoding="utf-8")
        data = np.ones(64, np.uint16).tobytes() if name == "negative" else b""
        header = json.dumps({"model.layers.0.mlp.up_proj.weight": {
            "dtype": "BF16", "shape": shape, "data_offsets": [0, len(data)]}}).encode()
        header += b" " * (-len(header) % 8)
        (folder / "m.safetensors").write_bytes(len(header).to_bytes(8, "little") + header
                                               + data)
        rc, _, err = run(capsys, "weights", "inspect", str(folder))
        assert rc == 2
        one_line(err, "m.safetensors", "up_proj.weight: shape: expected", str(shape))


def test_calibrate_pynq_off_the_board_is_one_line(capsys, tmp_path):
    import importlib.util

    if importlib.util.find_spec("pynq") is not None:
        pytest.skip("pynq is installed here")
    (tmp_path / "o.bit").write_bytes(b"bit")
    (tmp_path / "o.hwh").write_text("<xml/>", encoding="utf-8")
    rc, out, err = run(capsys, "calibrate", "--board", "kv260", "--backend", "pynq",
                       "--overlay", str(tmp_path / "o.bit"), "--no-report")
    assert rc == 2 and out == ""
    one_line(err, "--backend pynq: expected the pynq package")


# -- pipes, environment, signals -------------------------------------------------------------

def test_closed_stdout_reader_still_writes_the_outputs(files):
    """``dse explore ... | true``: the reader is gone before dse prints; the report and JSON
    are written all the same, exit 0."""
    p = subprocess.Popen([*DSE_ARGV, *explore(files, "--report", "r.md", "--json", "e.json")],
                         cwd=files, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()  # the reader goes away at once
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert json.loads((files / "e.json").read_text(encoding="utf-8"))["format"] == "dse-explore"
    assert "<!-- dse:explore board=board begin -->" in (files / "r.md").read_text("utf-8")


def test_closed_stderr_is_a_correct_run(files):
    """``2>&-``: the progress bar and messages have nowhere to go; the run is still right."""
    res = dse(files, *explore(files, "--report", "r.md", "--json", "e.json"),
              stderr=None, preexec_fn=lambda: os.close(2))
    assert res.returncode == 0
    assert (files / "e.json").exists() and (files / "r.md").exists()


def _env(**change: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in change}
    env.update({k: v for k, v in change.items() if v is not None})
    return env


def test_c_locale_gives_a_correct_run(capsys, files):
    """``LC_ALL=C PYTHONUTF8=0``: calibrate and compare print non-ASCII text (±, —) to an
    ASCII terminal; it is escaped, not fatal."""
    env = _env(LC_ALL="C", PYTHONUTF8="0", PYTHONIOENCODING=None, LANG=None)
    res = dse(files, "calibrate", "--from", str(KV260_LOG), "--board", str(KV260), "-o",
              "c.yaml", "--report", "r.md", env=env)
    assert res.returncode == 0, res.stderr
    assert "\\xb1" in res.stdout and (files / "c.yaml").exists()
    _explore_json(capsys, files)
    res = dse(files, "compare", "e.json", env=env)
    assert res.returncode == 0 and res.stderr == "", res.stderr


def test_no_home_and_a_dumb_terminal_give_a_correct_run(files):
    res = dse(files, *explore(files, "--json", "e.json", "--report", "r.md"),
              env=_env(HOME=None, TERM="dumb", MPLCONFIGDIR=None))
    assert res.returncode == 0, res.stderr
    assert (files / "e.json").exists() and (files / "r.md").exists()


_SIGTERM_CHILD = r"""
import os, subprocess, sys, time
from pathlib import Path
import dse.cli
from dse.io import Outputs

def work(argv):
    if argv == ["children"]:
        # a child that starts a grandchild, as the Verilator runner does
        subprocess.run(["sh", "-c", "sleep 120 & echo $! > grandchild; sleep 120"])
        return 0
    out = Outputs()
    def update(current):
        Path("in-lock").write_text("")
        time.sleep(120)
        return "new"
    out.rewrite("r.md", update)
    out.commit()
    return 0

dse.cli._run = work
sys.exit(dse.cli.main(sys.argv[1:]))
"""


def _wait_for(path: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_sigterm_releases_the_lock_and_writes_nothing(tmp_path):
    (tmp_path / "r.md").write_text("mine\n", encoding="utf-8")
    p = subprocess.Popen([sys.executable, "-c", _SIGTERM_CHILD, "report"], cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(tmp_path / "in-lock")
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143 and err == "dse: terminated\n", err
    assert sorted(x.name for x in tmp_path.iterdir()) == ["in-lock", "r.md"]
    assert (tmp_path / "r.md").read_text(encoding="utf-8") == "mine\n"


def test_sigterm_ends_the_processes_dse_started(tmp_path):
    p = subprocess.Popen([sys.executable, "-c", _SIGTERM_CHILD, "children"], cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(tmp_path / "grandchild")
    time.sleep(0.2)
    grandchild = int((tmp_path / "grandchild").read_text().split()[0])
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143 and err == "dse: terminated\n", err
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        stat = Path(f"/proc/{grandchild}/stat")
        if stat.exists() and stat.read_text().split(") ")[1].startswith("Z"):
            break  # exited, waiting for init to reap it
        time.sleep(0.05)
    else:
        os.kill(grandchild, signal.SIGKILL)
        pytest.fail("the grandchild outlived dse")


_SIGNAL_IN_FINALIZER = r"""
import os, signal, sys, time
import dse.cli

class Finalized:
    def __del__(self):  # the signal lands here, where Python drops exceptions
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)

def work(argv):
    Finalized()
    time.sleep(30)
    return 0

dse.cli._run = work
sys.exit(dse.cli.main())
"""


def test_a_signal_landing_in_a_finalizer_still_stops_the_run(tmp_path):
    """Raised inside a ``__del__``, the interrupt would be printed as 'Exception ignored'
    and lost; it is put off by 10 ms and stops the run, in one line."""
    res = subprocess.run([sys.executable, "-c", _SIGNAL_IN_FINALIZER], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 143 and res.stderr == "dse: terminated\n", res.stderr
