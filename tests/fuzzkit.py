"""The robustness harness shared by ``tests/test_fuzz.py`` (short, in CI) and
``bench/bench_fuzz.py`` (long, counts recorded in ``bench/results/fuzz.json``).

One *case* is a folder of input files plus a ``dse`` command line. ``run_case`` runs it in
process (``dse.cli.main``) inside that folder and judges the outcome by what the README
promises, whatever the input:

- ``traceback``: an exception escaped ``main``, it exited with a code other than 0, 2, 130,
  or it hung (still running after ``HANG_S``);
- ``altered_input``: a file that existed before the run (every input) changed or vanished,
  other than the outputs the command was asked to write;
- ``orphan_output``: the run failed (exit != 0) yet left a new or changed file behind;
- ``non_finite``: the run succeeded but an output (JSON, report, stdout) holds NaN, infinity or
  a negative time, utilization or speedup;
- ``accepted_bad``: a case built to be refused (a key set twice, an absurd value) was accepted.

A temporary, backup, lock or scratch file of the output layer (``.NAME.*.tmp``, ``.old``,
``.lock``, ``.check``) left behind is an orphan whatever the exit code. A run stopped by a
signal (exit 130 or 143) may have written all of its outputs (the signal came while they were
put in place) or none, never some. Cases may run in a subprocess (closed stdout or stderr,
another locale, no HOME, a signal after a delay) or with a fault injected in process (the disk
filling at a chosen byte, a rename failing).

The mutators turn a valid input (a board, a profile, a plan, a calibration, an engine template,
a measurement log, a model config, a report, a checkpoint header) into the kinds of bad input
a careful user or an adversary tries: wrong types, non-finite, out-of-range and absurd
numbers, missing, unknown and duplicated keys, deep nesting, truncation, markers in code
fences, CRLF line endings, another version's JSON.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import math
import os
import random
import re
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

#: Where the valid inputs the cases start from come from: this checkout, or (``DSE_FUZZ_FILES``)
#: another one, so that two versions of dse can be fuzzed with exactly the same cases.
ROOT = Path(os.environ.get("DSE_FUZZ_FILES") or Path(__file__).resolve().parents[1])
BOARD_YAML = ROOT / "boards" / "zcu104.yaml"
PLAN_YAML = ROOT / "examples" / "plans" / "zcu104-ffn.yaml"
PROFILE_JSON = ROOT / "dse" / "data" / "bitnet-2b4t.profile.json"
REPORT_MD = ROOT / "dse" / "data" / "bitnet-2b4t.zh.md"

#: Values a careless or hostile file puts where a number, string or mapping belongs.
BAD_VALUES: tuple[Any, ...] = (
    "x", "51", "", float("nan"), float("inf"), -float("inf"), -1, -0.5, 0, 1e308, 10**30,
    None, [], {}, True, [1, 2], {"a": 1}, 1.5,
)
#: Keys of JSON/YAML outputs whose values are times, fractions or speedups: never negative.
_NON_NEG_KEY = re.compile(r"((^|_)(ms|us|bytes|calls)|_s|_fraction|speedup\w*|utilization\w*)$")
#: A non-finite number as text renders it (``nan``, ``inf``, ``-inf``, ``NaN``, ``Infinity``).
_NON_FINITE_TEXT = re.compile(r"(?<![\w.])[-+]?(nan|inf|infinity)(?![\w])", re.IGNORECASE)


@dataclass
class Outcome:
    """What one case did, judged."""

    code: int | None
    stdout: str
    stderr: str
    traceback: str = ""
    altered_inputs: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    non_finite: list[str] = field(default_factory=list)
    accepted_bad: list[str] = field(default_factory=list)

    @property
    def problems(self) -> dict[str, list[str]]:
        out = {}
        if self.traceback:
            out["traceback"] = [self.traceback.strip().splitlines()[-1]]
        if self.altered_inputs:
            out["altered_input"] = self.altered_inputs
        if self.orphans:
            out["orphan_output"] = self.orphans
        if self.non_finite:
            out["non_finite"] = self.non_finite
        if self.accepted_bad:
            out["accepted_bad"] = self.accepted_bad
        return out

    @property
    def ok(self) -> bool:
        return not self.problems


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """{relative path: (sha256 or 'symlink->target', mode)} of every file under ``folder``."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        st = p.lstat()
        if p.is_symlink():
            out[rel] = (f"symlink->{os.readlink(p)}", st.st_mode)
        elif p.is_file():
            out[rel] = (hashlib.sha256(p.read_bytes()).hexdigest(), st.st_mode)
        elif p.is_dir():
            out[rel] = ("dir", st.st_mode)
    return out


@contextlib.contextmanager
def _cwd(folder: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(old)


#: A run longer than this is a hang (the slowest legitimate case, an explore, takes seconds).
HANG_S = 30.0


class Hang(BaseException):
    """Raised in a run that outlived ``HANG_S`` (by SIGALRM)."""


def _alarm(signum, frame):
    raise Hang(f"still running after {HANG_S:g} s")


def run_dse(argv: list[str], folder: Path) -> tuple[int | None, str, str, str]:
    """(exit code, stdout, stderr, traceback text or '') of ``dse ARGV`` run in ``folder``;
    a run that hangs is stopped after ``HANG_S`` and reported as ``Hang`` in the traceback."""
    from dse.cli import main

    out, err = io.StringIO(), io.StringIO()
    tb = ""
    code: int | None = None
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, HANG_S)
    with _cwd(folder), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse usage errors
            code = exc.code if isinstance(exc.code, int) else 2
        except BaseException:
            tb = traceback.format_exc()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
    if code not in (0, 2, 130) and not tb:
        tb = f"exit code {code}"
    return code, out.getvalue(), err.getvalue(), tb


def run_case(folder: Path, argv: list[str], outputs: tuple[str, ...] = ()) -> Outcome:
    """Run ``dse ARGV`` in ``folder`` and judge it (see the module docstring).

    ``outputs`` are the files (relative to ``folder``) the command was asked to write, which
    may change on success; everything else that existed before is an input.
    """
    before = snapshot(folder)
    code, stdout, stderr, tb = run_dse(argv, folder)
    return judge(folder, before, Outcome(code, stdout, stderr, tb), outputs)


#: Files the output layer makes beside an output and must always remove.
_LAYER_FILE = re.compile(r"(^|/)\.[^/]+\.(tmp|old|lock|check)$")


def judge(folder: Path, before: dict, res: Outcome, outputs: tuple[str, ...]) -> Outcome:
    """Fill in ``res``'s problems from the folder before and after the run."""
    after = snapshot(folder)
    changed = [p for p in after if before.get(p) != after[p]]
    res.altered_inputs = [p for p, v in before.items()
                          if p not in outputs and after.get(p) != v]
    res.orphans = [p for p in changed if _LAYER_FILE.search(p)]
    if res.code in (130, 143):
        # stopped by a signal: all of the outputs or none (it may come while they are put
        # in place, which it waits for)
        written = [p for p in outputs if p in changed]
        if written and len(written) < len(outputs):
            res.orphans += [p for p in changed if p not in res.orphans]
    elif res.code != 0:
        res.orphans += [p for p in changed if p not in res.orphans]
    else:
        res.non_finite = non_finite_outputs(folder, changed, res.stdout)
    return res


def non_finite_outputs(folder: Path, changed: list[str], stdout: str) -> list[str]:
    """Where a successful run printed or wrote a non-finite or negative quantity."""
    bad = []
    if _NON_FINITE_TEXT.search(stdout):
        bad.append(f"stdout: {_NON_FINITE_TEXT.search(stdout).group(0)!r}")
    for rel in changed:
        p = folder / rel
        if not p.is_file() or (p.is_symlink() and not p.exists()):
            continue
        if rel.endswith(".json"):
            try:
                data = json.loads(p.read_text(encoding="utf-8"), parse_constant=_reject)
            except ValueError as exc:
                bad.append(f"{rel}: not strict JSON ({exc})")
                continue
            bad += [f"{rel}: {w}" for w in _bad_numbers(data, "")]
        elif rel.endswith(".md"):
            m = _NON_FINITE_TEXT.search(p.read_text(encoding="utf-8"))
            if m:
                bad.append(f"{rel}: {m.group(0)!r}")
    return bad


def _reject(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _bad_numbers(obj: Any, where: str) -> Iterator[str]:
    if isinstance(obj, dict):
        # a credit row (time a unit takes back from another's account) is negative by design
        credit = obj.get("kind") == "credit"
        for k, v in obj.items():
            sub = f"{where}.{k}".lstrip(".")
            if (isinstance(v, (int, float)) and not isinstance(v, bool) and not credit
                    and _NON_NEG_KEY.search(str(k)) and v < 0):
                yield f"{sub} = {v} (negative)"
            yield from _bad_numbers(v, sub)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _bad_numbers(v, f"{where}.{i}")


# -- mutators ----------------------------------------------------------------------------------

def paths_of(obj: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path into a JSON/YAML tree (mappings and lists), leaves and inner nodes."""
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += paths_of(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:3]):  # a few items of long lists are enough
            out += paths_of(v, (*prefix, i))
    return out


def _get_parent(obj: Any, path: tuple) -> tuple[Any, Any]:
    for k in path[:-1]:
        obj = obj[k]
    return obj, path[-1]


def nested(depth: int) -> Any:
    """A list nested ``depth`` deep: every recursive loader's nightmare."""
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def mutate_tree(tree: Any, rng: random.Random) -> tuple[Any, str]:
    """One random edit of a parsed JSON/YAML tree, and a description of it."""
    tree = copy.deepcopy(tree)
    paths = paths_of(tree)
    path = rng.choice(paths)
    parent, key = _get_parent(tree, path)
    kind = rng.random()
    where = ".".join(str(p) for p in path)
    if kind < 0.12 and isinstance(parent, dict):
        del parent[key]
        return tree, f"delete {where}"
    if kind < 0.20 and isinstance(parent, dict):
        parent[f"{key}_typo"] = parent[key]
        return tree, f"unknown key {where}_typo"
    if kind < 0.23:
        parent[key] = nested(rng.choice((20, 150)))  # deeper: nesting_case
        return tree, f"nest {where}"
    value = rng.choice(BAD_VALUES)
    parent[key] = value
    return tree, f"{where} = {value!r}"


def set_at(tree: Any, index: int, value: Any) -> tuple[Any, str]:
    """A copy of ``tree`` with the node at ``paths_of(tree)[index % n]`` replaced by ``value``
    (hypothesis draws both)."""
    tree = copy.deepcopy(tree)
    paths = paths_of(tree)
    path = paths[index % len(paths)]
    parent, key = _get_parent(tree, path)
    parent[key] = value
    return tree, f"{'.'.join(str(p) for p in path)} = {value!r}"


def yaml_text(tree: Any) -> str:
    return yaml.safe_dump(tree, sort_keys=False, allow_unicode=True, width=10**6)


def json_text(tree: Any) -> str:
    return json.dumps(tree, ensure_ascii=False, indent=1)  # NaN/Infinity on purpose


def mutate_text(text: str, rng: random.Random) -> tuple[str, str]:
    """A textual edit: a line cut, a number negated or made huge, the file truncated."""
    lines = text.splitlines(keepends=True)
    kind = rng.random()
    if kind < 0.25:
        i = rng.randrange(len(lines))
        return "".join(lines[:i] + lines[i + 1:]), f"drop line {i + 1}"
    if kind < 0.35:
        cut = rng.randrange(len(text))
        return text[:cut], f"truncate at {cut}"
    numbers = list(re.finditer(r"(?<![\w.])\d+(?:\.\d+)?", text))
    if not numbers:
        return text[: len(text) // 2], "truncate in half"
    m = rng.choice(numbers)
    new = rng.choice(("-" + m.group(0), "nan", "inf", "1e999", "0", "-0.01", "abc"))
    return text[:m.start()] + new + text[m.end():], f"number at {m.start()} -> {new}"


# -- case classes ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """A folder's files and the command to run there.

    ``must_fail``: the input is bad by construction (accepting it is a failure).
    ``process``: run as a subprocess instead, with ``env`` (a value None removes the variable),
    ``close`` ("stdout": its reader goes away at once, "stderr": the descriptor is closed)
    and ``signal`` (signal number, seconds after the start).
    ``fault``: a context manager factory wrapped around the in-process run (a full disk).
    ``check``: more promises, ``check(folder, before, outcome)`` -> what broke them (counted
    as altered inputs: the user's text changed).
    """

    files: dict[str, str | bytes]
    argv: list[str]
    outputs: tuple[str, ...] = ()
    what: str = ""
    setup: Callable[[Path], None] | None = None
    must_fail: bool = False
    process: dict | None = None
    fault: Callable[[], Any] | None = None
    check: Callable[[Path, dict, Outcome], list[str]] | None = None

    def materialize(self, folder: Path) -> None:
        for rel, data in self.files.items():
            p = folder / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(data, bytes):
                p.write_bytes(data)
            else:
                p.write_text(data, encoding="utf-8")
        if self.setup:
            self.setup(folder)


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


_CACHE: dict[str, Any] = {}


def _base(name: str) -> Any:
    if name not in _CACHE:
        _CACHE[name] = {
            "board": lambda: _load_yaml(BOARD_YAML),
            "plan": lambda: _load_yaml(PLAN_YAML),
            "profile": lambda: json.loads(PROFILE_JSON.read_text(encoding="utf-8")),
            "report": lambda: REPORT_MD.read_text(encoding="utf-8"),
        }[name]()
    return _CACHE[name]


def _small_profile() -> dict:
    """The embedded profile cut to two decoder blocks and the head: same shapes, fast runs."""
    prof = copy.deepcopy(_base("profile"))
    keep = [m for m in prof["modules"]
            if (m.get("layer_index") is not None and m["layer_index"] < 2)
            or m["role"] == "lm_head"]
    prof["modules"] = keep
    return prof


def _plan() -> dict:
    return copy.deepcopy(_base("plan"))


PROJECT = ["project", "--board", "board.yaml", "--profile", "p.json", "--plan", "plan.yaml",
           "--calibration", "none", "--json", "out.json"]


def board_case(rng: random.Random) -> Case:
    tree, what = mutate_tree(_base("board"), rng)
    return Case({"board.yaml": yaml_text(tree), "p.json": json_text(_small_profile()),
                 "plan.yaml": yaml_text(_plan())}, PROJECT, ("out.json",), f"board: {what}")


def override_case(rng: random.Random) -> Case:
    from dse.model.constants import CostConstants

    board = copy.deepcopy(_base("board"))
    name = rng.choice(CostConstants.names())
    value = rng.choice((0, -1, float("nan"), float("inf"), 1e308, 1e-300, "x", 0.5, None))
    board["cost_overrides"] = {name: value}
    return Case({"board.yaml": yaml_text(board), "p.json": json_text(_small_profile()),
                 "plan.yaml": yaml_text(_plan())}, PROJECT, ("out.json",),
                f"cost_overrides.{name} = {value!r}")


#: ``dse project`` in each phase and view: a profile feeds decode, prefill and both baselines.
PROJECT_VARIANTS = (PROJECT, [*PROJECT, "--phase", "prefill"],
                    [*PROJECT, "--view", "host-attached", "--phase", "prefill"],
                    [*PROJECT, "--view", "host-attached"])


def profile_case(rng: random.Random) -> Case:
    tree, what = mutate_tree(_small_profile(), rng)
    return Case({"board.yaml": BOARD_YAML.read_text(encoding="utf-8"), "p.json": json_text(tree),
                 "plan.yaml": yaml_text(_plan())}, rng.choice(PROJECT_VARIANTS), ("out.json",),
                f"profile: {what}")


def explore_case(rng: random.Random) -> Case:
    """A mutated profile or board through the whole of ``dse explore`` (search, report,
    plots, JSON) with a random objective, view and baseline: slow, so the bench runs it."""
    files = {"board.yaml": BOARD_YAML.read_text(encoding="utf-8"),
             "p.json": json_text(_small_profile()), "r.md": _base("report")}
    kind = rng.random()
    what = "valid inputs"
    if kind < 0.3:
        pass  # valid files: the objective, view, baseline and prompt length vary
    elif kind < 0.65:
        tree, what = mutate_tree(_small_profile(), rng)
        files["p.json"], what = json_text(tree), f"profile: {what}"
    else:
        tree, what = mutate_tree(_base("board"), rng)
        files["board.yaml"], what = yaml_text(tree), f"board: {what}"
    opts = ["--objective", rng.choice(("decode", "prefill", "mix")), "--view",
            rng.choice(("on-board", "host-attached")), "--prompt-tokens",
            str(rng.choice((1, 7, 512)))]
    argv = ["explore", "--board", "board.yaml", "--profile", "p.json", "--calibration", "none",
            "--top", "1", "--report", "r.md", "--json", "e.json", *opts]
    return Case(files, argv, ("r.md", "e.json", "r-board-roofline.png", "r-board-pareto.png"),
                f"explore {' '.join(opts)}; {what}")


def plan_case(rng: random.Random) -> Case:
    tree, what = mutate_tree(_plan(), rng)
    return Case({"board.yaml": BOARD_YAML.read_text(encoding="utf-8"),
                 "p.json": json_text(_small_profile()), "plan.yaml": yaml_text(tree)},
                PROJECT, ("out.json",), f"plan: {what}")


def calibration_text() -> str:
    """A valid calibration file, as ``dse calibrate`` writes one."""
    return yaml_text({
        "format": 1, "board": "ZCU104", "backend": "sim", "created": "2026-01-01T00:00:00",
        "parameters": {"ddr_pl_efficiency": {"value": 0.7, "stderr": 0.01, "default": 0.75},
                       "per_call_overhead_us": {"value": 50.0, "stderr": 1.0, "default": 68.0}},
        "provenance": {"backend": "sim"}, "error_before": {"max_abs_rel_error": 0.2},
        "error_after": {"max_abs_rel_error": 0.05}, "per_layer": [],
    })


def calibration_case(rng: random.Random) -> Case:
    tree, what = mutate_tree(yaml.safe_load(calibration_text()), rng)
    argv = [a if a != "none" else "cal.yaml" for a in PROJECT]
    return Case({"board.yaml": BOARD_YAML.read_text(encoding="utf-8"),
                 "p.json": json_text(_small_profile()), "plan.yaml": yaml_text(_plan()),
                 "cal.yaml": yaml_text(tree)}, argv, ("out.json",), f"calibration: {what}")


def projection_text() -> str:
    """A valid ``dse project --json`` file (made once per process, in a scratch folder)."""
    if "projection" not in _CACHE:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="dse-fuzz-") as tmp:
            folder = Path(tmp)
            Case({"board.yaml": BOARD_YAML.read_text(encoding="utf-8"),
                  "p.json": json_text(_small_profile()), "plan.yaml": yaml_text(_plan())},
                 PROJECT).materialize(folder)
            code, _, err, tb = run_dse(PROJECT, folder)
            assert code == 0 and not tb, err + tb
            _CACHE["projection"] = (folder / "out.json").read_text(encoding="utf-8")
    return _CACHE["projection"]


def compare_case(rng: random.Random) -> Case:
    tree, what = mutate_tree(json.loads(projection_text()), rng)
    return Case({"a.json": json_text(tree)}, ["compare", "a.json"], (), f"compare: {what}")


def import_case(rng: random.Random) -> Case:
    text, what = mutate_text(_base("report"), rng)
    return Case({"r.md": text}, ["import", "r.md", "-o", "p.json"], ("p.json",),
                f"import: {what}")


#: Numeric options of each command and values to try on them.
OPTION_VALUES = ("inf", "nan", "-inf", "-1", "0", "1e30", "abc", "", "99999999999999999999",
                 "3", "0.5")
OPTIONS = {
    "explore": ("--prompt-tokens", "--gen-tokens", "--top", "--context-tokens", "--sequences",
                "--threads"),
    "project": ("--prompt-tokens", "--context-tokens", "--sequences"),
    "profile": ("--memory-interval", "--reference-mhz", "--threads", "--gen-tokens",
                "--prompt-tokens", "--warmup"),
    "calibrate": ("--prefill-m", "--repeats", "--timeout", "--sim-pe", "--sim-simd"),
}


def option_case(rng: random.Random) -> Case:
    cmd = rng.choice(sorted(OPTIONS))
    opt = rng.choice(OPTIONS[cmd])
    value = rng.choice(OPTION_VALUES)
    files = {"board.yaml": BOARD_YAML.read_text(encoding="utf-8"),
             "p.json": json_text(_small_profile()), "plan.yaml": yaml_text(_plan())}
    base = {
        "explore": ["explore", "--board", "board.yaml", "--profile", "p.json", "--calibration",
                    "none", "--no-report", "--top", "2"],
        "project": PROJECT[:-2],
        # --preset with a bad option must fail in the option check, before torch is touched;
        # a valid one would start a real run, so every profile case carries a bad value.
        "profile": ["profile", "--preset", "tiny", "--no-roofline", "--no-plots",
                    "--gen-tokens", "2", "--no-progress"],
        # calibrate --backend pynq fails (no board) after the option check: never slow.
        "calibrate": ["calibrate", "--board", "board.yaml", "--profile", "p.json",
                      "--backend", "pynq", "--no-report", "--output", "cal.yaml"],
    }[cmd]
    if cmd == "profile" and value in ("1e30", "99999999999999999999", "3", "0.5", "0"):
        value = "inf"  # a valid value would start a real torch run
    return Case(files, [*base, f"{opt}={value}"], (), f"{cmd} {opt}={value}")


def output_case(rng: random.Random) -> Case:
    """An output path that is a folder, an input, missing its folder, or twice the same."""
    files = {"board.yaml": BOARD_YAML.read_text(encoding="utf-8"),
             "p.json": json_text(_small_profile()), "plan.yaml": yaml_text(_plan()),
             "r.md": _base("report"), "dir/keep": "x"}
    explore = ["explore", "--board", "board.yaml", "--profile", "p.json", "--calibration",
               "none", "--top", "2"]
    choices = [
        ([*explore, "--report", "p.json"], (), "explore --report onto its --profile"),
        ([*explore, "--report", "x.md", "--json", "x.md"], (), "explore --json X --report X"),
        ([*explore, "--report", "dir"], (), "explore --report a folder"),
        ([*explore, "--json", "dir", "--report", "x.md"], (), "explore --json a folder"),
        ([*explore, "--json", "nodir/x.json", "--report", "x.md"], (), "--json folder missing"),
        ([*explore, "--report", "nodir/x.md"], (), "explore --report folder missing"),
        ([*explore, "--json", "board.yaml", "--no-report"], (), "explore --json onto --board"),
        ([*PROJECT[:-1], "plan.yaml"], (), "project --json onto its plan"),
        ([*PROJECT[:-1], "p.json"], (), "project --json onto its profile"),
        ([*PROJECT[:-1], "dir"], (), "project --json a folder"),
        (["import", "r.md", "-o", "r.md"], (), "import onto itself"),
        (["import", "r.md", "-o", "dir"], (), "import -o a folder"),
        (["import", "r.md", "-o", "nodir/p.json"], (), "import -o folder missing"),
        (["calibrate", "--board", "board.yaml", "--backend", "pynq", "--profile", "p.json",
          "--output", "p.json", "--no-report"], (), "calibrate --output onto its profile"),
    ]
    # A report whose section for this board lost its end marker: explore must fail (exit 2)
    # without leaving its JSON or plots behind.
    broken = _base("report") + "\n<!-- dse:explore board=board begin -->\nhalf a section\n"
    choices.append(([*explore, "--report", "r.md", "--json", "e.json"], (),
                    "explore onto a report with a section cut short"))
    argv, outputs, what = rng.choice(choices)
    if what.startswith("explore onto a report"):
        files = {**files, "r.md": broken}
    return Case(files, argv, outputs, what)


def nesting_case(rng: random.Random) -> Case:
    """A deeply nested document for each loader."""
    deep_json = "[" * 3000 + "]" * 3000
    deep_yaml = "[" * 3000 + "]" * 3000
    which = rng.choice(("board", "profile", "plan", "calibration", "compare", "import"))
    files = {"board.yaml": BOARD_YAML.read_text(encoding="utf-8"),
             "p.json": json_text(_small_profile()), "plan.yaml": yaml_text(_plan())}
    if which == "board":
        files["board.yaml"] = deep_yaml
        argv = ["boards", "validate", "board.yaml"]
    elif which == "profile":
        files["p.json"] = '{"format": 1, "system": ' + deep_json + "}"
        argv = PROJECT
    elif which == "plan":
        files["plan.yaml"] = "engine: " + deep_yaml
        argv = PROJECT
    elif which == "calibration":
        files["cal.yaml"] = "parameters: " + deep_yaml
        argv = [a if a != "none" else "cal.yaml" for a in PROJECT]
    elif which == "compare":
        files["e.json"] = deep_json
        argv = ["compare", "e.json"]
    else:
        files["r.md"] = "# " + "> " * 3000
        argv = ["import", "r.md", "-o", "q.json"]
    return Case(files, argv, (), f"deep nesting: {which}")


# -- issue 27: every input kind, and the classes of the second robustness round -------------

TEMPLATE_YAML = ROOT / "overlays" / "ternary_gemv.yaml"
LOG_JSON = ROOT / "examples" / "measurements" / "bitnet-kv260.json"
KV260_YAML = ROOT / "boards" / "kv260.yaml"
EXPLORE = ["explore", "--board", "board.yaml", "--profile", "p.json", "--calibration", "none",
           "--top", "1"]
CALIBRATE = ["calibrate", "--from", "log.json", "--board", "kv260.yaml", "-o", "cal.yaml",
             "--no-report"]


def _log() -> dict:
    if "log" not in _CACHE:
        _CACHE["log"] = json.loads(LOG_JSON.read_text(encoding="utf-8"))
    return copy.deepcopy(_CACHE["log"])


def _template() -> dict:
    if "template" not in _CACHE:
        _CACHE["template"] = _load_yaml(TEMPLATE_YAML)
    return copy.deepcopy(_CACHE["template"])


def _config_profile() -> dict:
    """The small profile carrying its model's config (the 2B-4T preset, two blocks)."""
    from dse.profile.presets import PRESETS

    prof = _small_profile()
    prof["model_config"] = {"model_type": "bitnet", **PRESETS["bitnet-b1.58-2B-4T"],
                            "num_hidden_layers": 2}
    return prof


def _files(**override: str | bytes) -> dict[str, str | bytes]:
    base = {"board.yaml": BOARD_YAML.read_text(encoding="utf-8"),
            "p.json": json_text(_small_profile()), "plan.yaml": yaml_text(_plan())}
    return {**base, **override}


def template_case(rng: random.Random) -> Case:
    """A mutated engine template through explore (the search builds from it)."""
    tree, what = mutate_tree(_template(), rng)
    return Case(_files(**{"t.yaml": yaml_text(tree)}),
                [*EXPLORE, "--template", "t.yaml", "--no-report", "--json", "e.json"],
                ("e.json",), f"template: {what}")


#: Edits only a measurement log can get wrong, each refused at load.
def _log_edits(rng: random.Random) -> tuple[dict, str]:
    log = _log()
    entries = log["entries"]
    e = rng.choice(entries)
    kind = rng.randrange(9)
    if kind == 0:
        log["config"]["engine"]["engines"] = rng.choice((2**62, 10**6, 4097))
        return log, f"config.engine.engines = {log['config']['engine']['engines']}"
    if kind == 1:
        a, b = rng.sample(entries, 2)
        a["part_of"], b["part_of"] = b["id"], a["id"]
        return log, f"part_of cycle {a['id']} <-> {b['id']}"
    if kind == 2:
        e["value"] = rng.choice((1e308, 1e-300, 1e30))
        return log, f"{e['id']}.value = {e['value']}"
    if kind == 3:
        e["unit"] = rng.choice(("W", "mW", "J")) if e["kind"] != "phase" else "furlongs"
        return log, f"{e['id']}.unit = {e['unit']}"
    if kind == 4:
        e[rng.choice(("n", "k", "m", "context", "calls", "bytes"))] = rng.choice(
            (10**30, 2**60, -1, 0))
        return log, f"{e['id']}: a huge or negative count"
    if kind == 5:
        e["id"] = rng.choice(entries)["id"]
        return log, f"duplicate id {e['id']}"
    if kind == 6:
        parts = [x for x in entries if x.get("part_of")]
        part = rng.choice(parts)
        part["value"] = part["value"] * rng.choice((30, 1000))
        return log, f"part {part['id']} larger than its whole"
    if kind == 7:
        log["config"][rng.choice(("pl_clock_mhz", "ps_clock_mhz"))] = rng.choice((1e-300, 1e9))
        return log, "an absurd clock"
    e["part_of"] = e["id"]
    return log, f"{e['id']} part of itself"


def log_case(rng: random.Random) -> Case:
    """A measurement log mutated anyhow (an accepted one is fitted: seconds)."""
    tree, what = mutate_tree(_log(), rng)
    files = {"log.json": json_text(tree), "kv260.yaml": KV260_YAML.read_text(encoding="utf-8")}
    return Case(files, CALIBRATE, ("cal.yaml",), f"log: {what}")


def log_edit_case(rng: random.Random) -> Case:
    """A measurement log edited in a way only a log can be wrong: refused at load."""
    tree, what = _log_edits(rng)
    files = {"log.json": json_text(tree), "kv260.yaml": KV260_YAML.read_text(encoding="utf-8")}
    return Case(files, CALIBRATE, ("cal.yaml",), f"log: {what}", must_fail=True)


def model_config_case(rng: random.Random) -> Case:
    """A profile's model config: mutated, or sizes that contradict its Linears."""
    prof = _config_profile()
    cfg = prof["model_config"]
    if rng.random() < 0.5:
        # a size dse reads: absurd, or (but the context length) at odds with the Linears
        key = rng.choice(("hidden_size", "intermediate_size", "num_hidden_layers",
                          "num_attention_heads", "num_key_value_heads", "vocab_size",
                          "max_position_embeddings"))
        odd = () if key == "max_position_embeddings" else (cfg[key] * 2 + 1,)
        cfg[key] = rng.choice((10**30, 2**53, 0, -3, *odd))
        what, bad = f"model_config.{key} = {cfg[key]}", True
    else:
        tree, what = mutate_tree(cfg, rng)
        prof["model_config"], what, bad = tree, f"model_config: {what}", False
    return Case(_files(**{"p.json": json_text(prof)}), PROJECT, ("out.json",), what,
                must_fail=bad)


def _duplicate_yaml(text: str, rng: random.Random) -> tuple[str, str]:
    """The text with one ``key: value`` line repeated (another value) right after itself."""
    lines = text.splitlines(keepends=True)
    spots = [i for i, line in enumerate(lines)
             if re.match(r"^\s*(- )?[A-Za-z_]\w*: \S", line)]
    i = rng.choice(spots)
    m = re.match(r"^(\s*)(- )?([A-Za-z_]\w*): ", lines[i])
    indent = m.group(1) + ("  " if m.group(2) else "")
    dup = f"{indent}{m.group(3)}: {rng.choice(('0.05', '1', 'x', '[]', '9999'))}\n"
    return "".join([*lines[:i + 1], dup, *lines[i + 1:]]), f"{m.group(3)} twice (line {i + 2})"


def _duplicate_json(text: str, rng: random.Random) -> tuple[str, str]:
    """The text with a key of some object set twice (the copy first, another value)."""
    keys = list(re.finditer(r'\n(\s*)"([A-Za-z_]\w*)": ', text))
    m = rng.choice(keys)
    value = rng.choice(("0.05", "1", '"x"', "[]"))
    dup = f'\n{m.group(1)}"{m.group(2)}": {value},'
    return text[:m.start()] + dup + text[m.start():], f"{m.group(2)} twice"


def duplicate_case(rng: random.Random) -> Case:
    """A key set twice in any input kind: refused, whichever value the author meant."""
    kind = rng.choice(("board", "plan", "calibration", "template", "log", "profile"))
    if kind == "board":
        text, what = _duplicate_yaml(BOARD_YAML.read_text(encoding="utf-8"), rng)
        return Case(_files(**{"board.yaml": text}), PROJECT, ("out.json",),
                    f"board: {what}", must_fail=True)
    if kind == "plan":
        text, what = _duplicate_yaml(yaml_text(_plan()), rng)
        return Case(_files(**{"plan.yaml": text}), PROJECT, ("out.json",), f"plan: {what}",
                    must_fail=True)
    if kind == "calibration":
        text, what = _duplicate_yaml(calibration_text(), rng)
        argv = [a if a != "none" else "cal.yaml" for a in PROJECT]
        return Case(_files(**{"cal.yaml": text}), argv, ("out.json",),
                    f"calibration: {what}", must_fail=True)
    if kind == "template":
        text, what = _duplicate_yaml(TEMPLATE_YAML.read_text(encoding="utf-8"), rng)
        return Case(_files(**{"t.yaml": text}),
                    [*EXPLORE, "--template", "t.yaml", "--no-report", "--json", "e.json"],
                    ("e.json",), f"template: {what}", must_fail=True)
    if kind == "log":
        text, what = _duplicate_json(json_text(_log()), rng)
        return Case({"log.json": text, "kv260.yaml": KV260_YAML.read_text(encoding="utf-8")},
                    CALIBRATE, ("cal.yaml",), f"log: {what}", must_fail=True)
    text, what = _duplicate_json(json_text(_small_profile()), rng)
    return Case(_files(**{"p.json": text}), PROJECT, ("out.json",), f"profile: {what}",
                must_fail=True)


def absurd_case(rng: random.Random) -> Case:
    """The absurd values issue 27 found priced, and their kin: every one refused at load."""
    board = _base("board")
    choice = rng.randrange(7)
    if choice < 3:
        board = copy.deepcopy(board)
        section, key, value = [
            ("ps_cpu", "memory_bandwidth_gb_s", rng.choice((1e-300, 1e-9, 1e9))),
            ("ps_cpu", "cores", rng.choice((2**53, 10**6, 2**31))),
            ("ddr", "peak_bandwidth_gb_s", rng.choice((1e-300, 170.6, 1.0))),
        ][choice]
        board[section][key] = value
        return Case(_files(**{"board.yaml": yaml_text(board)}), PROJECT, ("out.json",),
                    f"board {section}.{key} = {value}", must_fail=True)
    if choice == 3:
        plan = _plan()
        plan["engine"]["clock_mhz"] = rng.choice((1e-300, 1e-3, 1e6))
        return Case(_files(**{"plan.yaml": yaml_text(plan)}), PROJECT, ("out.json",),
                    f"plan clock_mhz = {plan['engine']['clock_mhz']}", must_fail=True)
    if choice == 4:
        prof = _config_profile()
        prof["model_config"]["vocab_size"] = rng.choice((10**30, 2**40, 1000))
        return Case(_files(**{"p.json": json_text(prof)}), PROJECT, ("out.json",),
                    f"vocab_size = {prof['model_config']['vocab_size']}", must_fail=True)
    if choice == 5:
        log = _log()
        log["config"]["engine"]["engines"] = 2**62
        return Case({"log.json": json_text(log),
                     "kv260.yaml": KV260_YAML.read_text(encoding="utf-8")}, CALIBRATE,
                    ("cal.yaml",), "log engines = 2**62", must_fail=True)
    cal = yaml.safe_load(calibration_text())
    cal["parameters"]["per_call_overhead_us"]["value"] = rng.choice((1e300, 1e9))
    argv = [a if a != "none" else "cal.yaml" for a in PROJECT]
    return Case(_files(**{"cal.yaml": yaml_text(cal)}), argv, ("out.json",),
                "calibration per_call_overhead_us absurd", must_fail=True)


_BEGIN = "<!-- dse:explore board=board begin -->"
_END = "<!-- dse:explore board=board end -->"


def report_case(rng: random.Random) -> Case:
    """A user's report built from pieces (text, CRLF, a BOM, dse's markers quoted in code
    fences, an old section of this board, another version's section of another board), then
    explored into: everything outside the board's own section must stay byte for byte."""
    eol = rng.choice(("\n", "\r\n"))
    pieces = [rng.choice(("", "\ufeff")) + "# 我的报告 / my report" + eol + eol]
    quoted = rng.choice(("```", "~~~~", "```markdown"))
    close = quoted[:3] if quoted.startswith("`") else quoted
    user_bits = [
        f"notes: tokens/s ≥ 20 — café{eol}{eol}",
        f"{quoted}{eol}{_BEGIN}{eol}(how dse marks a section){eol}{_END}{eol}{close}{eol}{eol}",
        f"{quoted}{eol}{_BEGIN}{eol}{close}{eol}{eol}",
        f"    {_BEGIN}{eol}{eol}",   # indented: not a marker line
        f"inline `{_BEGIN}` quoted{eol}{eol}",
        "<!-- dse:summary {not json} -->" + eol + eol,
    ]
    for _ in range(rng.randrange(1, 4)):
        pieces.append(rng.choice(user_bits))
    old_other = rng.random() < 0.5
    if old_other:
        pieces.append("<!-- dse:explore board=old begin -->" + eol + "## FPGA old" + eol
                      + rng.choice(('<!-- dse:summary {"board": "Old"} -->',
                                    "<!-- dse:summary [1, 2] -->",
                                    '<!-- dse:summary {"board": ["x"], "design": 1} -->'))
                      + eol + "<!-- dse:explore board=old end -->" + eol + eol)
    own = rng.random() < 0.4
    at = len(pieces)
    if own:
        pieces.append(_BEGIN + eol + "an old section of this board" + eol + _END + eol)
        pieces.append(eol + "after the section" + eol)
    text = "".join(pieces)
    tail = "" if rng.random() < 0.5 else "no newline at the end"
    text += tail
    prefix = "".join(pieces[:at])
    suffix = ("".join(pieces[at + 1:]) + tail) if own else None

    def check(folder: Path, before: dict, res: Outcome) -> list[str]:
        if res.code != 0:
            return []
        new = (folder / "r.md").read_bytes().decode("utf-8")
        # dse's own boards table (before the first section, two boards or more) aside
        new = re.sub(r"<!-- dse:boards begin -->.*?<!-- dse:boards end -->(\r?\n)*", "", new,
                     flags=re.DOTALL)
        bad = []
        if not new.startswith(prefix):
            bad.append("r.md: the user's text before dse's section changed")
        if suffix is not None and not new.endswith(suffix):
            bad.append("r.md: the user's text after dse's section changed")
        if new.count(_BEGIN) != text.count(_BEGIN) + (0 if own else 1):
            bad.append("r.md: dse's section was not added exactly once")
        if eol == "\r\n" and "\n" in new.replace("\r\n", ""):
            bad.append("r.md: LF line endings written into a CRLF report")
        return bad

    return Case(_files(**{"r.md": text.encode("utf-8")}),
                [*EXPLORE, "--report", "r.md", "--json", "e.json"],
                ("r.md", "e.json", *(f"r-board-{k}.png" for k in _PLOT_KINDS)),
                f"report: {len(pieces)} pieces, eol {eol!r}, own section {own}", check=check)


_PLOT_KINDS = ("roofline", "pareto", "breakdown", "context", "energy")


@contextlib.contextmanager
def disk_fills_at(after_bytes: int, rename_fails: int | None = None) -> Iterator[None]:
    """The output layer's writes fail with ENOSPC once ``after_bytes`` bytes are written
    (and, with ``rename_fails``, that rename fails with EROFS)."""
    import dse.io

    real_pwrite, real_replace = dse.io._pwrite, dse.io.os.replace
    state = {"bytes": 0, "renames": 0}

    def pwrite(fd, data, offset):
        room = after_bytes - state["bytes"]
        if room <= 0:
            raise OSError(28, "No space left on device")
        n = real_pwrite(fd, bytes(data[:room]), offset)
        state["bytes"] += n
        return n

    def replace(src, dst):
        state["renames"] += 1
        if rename_fails is not None and state["renames"] == rename_fails:
            raise OSError(30, "Read-only file system")
        return real_replace(src, dst)

    dse.io._pwrite = pwrite
    dse.io.os.replace = replace
    try:
        yield
    finally:
        dse.io._pwrite = real_pwrite
        dse.io.os.replace = real_replace


def disk_case(rng: random.Random) -> Case:
    """The disk fills at a random byte (or a rename fails) while a run writes its outputs;
    the report may have hard links or be a symlink. Nothing half-written, nothing altered."""
    link = rng.choice((None, "hard", "sym"))

    def setup(folder: Path) -> None:
        if link == "hard":
            os.link(folder / "r.md", folder / "r-copy.md")
        elif link == "sym":
            (folder / "real.md").write_bytes((folder / "r.md").read_bytes())
            (folder / "r.md").unlink()
            (folder / "r.md").symlink_to("real.md")

    after = rng.choice((0, 100, 5_000, 50_000, 500_000, 10**7))
    rename = rng.choice((None, None, 1, 2, 3))
    outputs = ("r.md", "e.json", "real.md", "r-copy.md",
               *(f"r-board-{k}.png" for k in _PLOT_KINDS))
    return Case(_files(**{"r.md": "# mine\r\n\r\nkept\r\n"}), [*EXPLORE, "--report", "r.md",
                                                            "--json", "e.json"],
                outputs, f"disk full after {after} bytes, rename {rename} fails, link {link}",
                setup=setup, fault=lambda: disk_fills_at(after, rename))


#: Environments and streams a run may start in (a value None removes the variable).
ENVIRONMENTS = (
    {"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": None, "LANG": None},
    {"HOME": None},
    {"TERM": "dumb"},
    {"HOME": None, "TERM": "dumb", "LC_ALL": "C", "PYTHONUTF8": "0"},
    {"LC_ALL": "POSIX", "PYTHONIOENCODING": "ascii"},
)


def env_case(rng: random.Random) -> Case:
    """A run as a subprocess in another environment, with its stdout reader gone or its
    stderr closed: a correct run or one clear error."""
    env = rng.choice(ENVIRONMENTS)
    close = rng.choice((None, "stdout", "stderr"))
    which = rng.randrange(4)
    files = {**_files(), "log.json": json_text(_log()),
             "kv260.yaml": KV260_YAML.read_text(encoding="utf-8")}
    if which == 0:
        argv, outputs = [*EXPLORE, "--report", "r.md", "--json", "e.json"], ("r.md", "e.json")
    elif which == 1:
        argv, outputs = CALIBRATE, ("cal.yaml",)
    elif which == 2:
        files["a.json"] = projection_text()
        argv, outputs = ["compare", "a.json"], ()
    else:
        argv, outputs = PROJECT, ("out.json",)

    def check(folder: Path, before: dict, res: Outcome) -> list[str]:
        if res.code == 0:
            return [f"{o}: not written by a run that exited 0" for o in outputs
                    if not (folder / o).exists()]
        return []

    return Case(files, argv, outputs, f"{argv[0]} with {env}, {close or 'no stream'} closed",
                process={"env": env, "close": close}, check=check)


def signal_case(rng: random.Random) -> Case:
    """SIGTERM (or Ctrl-C) at a random moment of a run: exit 143 (130), children ended, no
    temporary file or lock left, the outputs all written or none."""
    sig = rng.choice((signal.SIGTERM, signal.SIGTERM, signal.SIGINT))
    delay = rng.choice((0.05, 0.3, 0.8, 1.2, 1.6, 2.0, 3.0))
    if rng.random() < 0.5:
        files = _files(**{"r.md": "# mine\n"})
        argv, outputs = [*EXPLORE, "--report", "r.md", "--json", "e.json"], ("r.md", "e.json")
    else:
        files = {"log.json": json_text(_log()),
                 "kv260.yaml": KV260_YAML.read_text(encoding="utf-8")}
        argv, outputs = CALIBRATE, ("cal.yaml",)
    return Case(files, argv, outputs, f"{argv[0]}: signal {int(sig)} after {delay} s",
                process={"signal": (sig, delay)})


def weights_case(rng: random.Random) -> Case:
    """A checkpoint whose safetensors header lies: shapes empty, negative, huge, not numbers;
    offsets past the data; dtypes unknown."""
    shape = rng.choice(([0, 16], [-4, -16], [16, 0], [2**40, 2**40], ["a", 1], [16], [8, 16],
                        [8, 16, 2], None))
    dtype = rng.choice(("BF16", "F32", "F16", "U8", "I64", "Q4", 7))
    data = bytes(rng.randrange(256) for _ in range(rng.choice((0, 7, 256, 512))))
    offsets = rng.choice(([0, len(data)], [0, 10**12], [len(data), 0], [-1, 4], "x"))
    header = {"model.layers.0.mlp.up_proj.weight": {"dtype": dtype, "shape": shape,
                                                    "data_offsets": offsets}}
    if rng.random() < 0.3:
        header["model.layers.0.mlp.up_proj.weight_scale"] = {
            "dtype": "F32", "shape": [1], "data_offsets": [0, 4]}
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    blob = len(raw).to_bytes(8, "little") + raw + data
    files = {"ck/config.json": json.dumps({"model_type": "bitnet"}),
             "ck/m.safetensors": blob}
    return Case(files, ["weights", "inspect", "ck"], (),
                f"weights: shape {shape}, dtype {dtype}, offsets {offsets}, {len(data)} B")


def explore_json_text() -> str:
    """A valid ``dse explore --json`` file (made once per process)."""
    if "explore_json" not in _CACHE:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="dse-fuzz-") as tmp:
            folder = Path(tmp)
            Case(_files(), []).materialize(folder)
            code, _, err, tb = run_dse([*EXPLORE, "--no-report", "--json", "e.json"], folder)
            assert code == 0 and not tb, err + tb
            _CACHE["explore_json"] = (folder / "e.json").read_text(encoding="utf-8")
    return _CACHE["explore_json"]


def compare_version_case(rng: random.Random) -> Case:
    """``dse compare`` on explore JSON from another version: summary or plan fields missing,
    renamed or of another type."""
    data = json.loads(explore_json_text())
    other = copy.deepcopy(data)
    where = rng.choice(("summary", "plans", "naive", "top"))
    if where == "top":
        key = rng.choice(sorted(other))
        other[f"{key}_v0"] = other.pop(key)
        what = f"top-level {key} renamed"
    else:
        target = other[where] if where != "plans" else other["plans"][0]
        if isinstance(target, dict) and target:
            key = rng.choice(sorted(target))
            if rng.random() < 0.5:
                del target[key]
                what = f"{where}.{key} missing"
            else:
                target[key] = rng.choice(BAD_VALUES)
                what = f"{where}.{key} = {target[key]!r}"
        else:
            what = "unchanged"
    return Case({"e.json": explore_json_text(), "old.json": json_text(other)},
                ["compare", "e.json", "old.json", *(["--all"] if rng.random() < 0.3 else [])],
                (), f"compare another version: {what}")


#: Every class, as the bench runs them (``explore`` runs the whole search per case).
CLASSES: dict[str, Callable[[random.Random], Case]] = {
    "explore": explore_case,
    "board": board_case,
    "cost_overrides": override_case,
    "profile": profile_case,
    "plan": plan_case,
    "calibration": calibration_case,
    "import": import_case,
    "compare": compare_case,
    "options": option_case,
    "outputs": output_case,
    "nesting": nesting_case,
    # issue 27
    "template": template_case,
    "log": log_case,
    "log_edits": log_edit_case,
    "model_config": model_config_case,
    "duplicate_keys": duplicate_case,
    "absurd": absurd_case,
    "report": report_case,
    "disk": disk_case,
    "environment": env_case,
    "signal": signal_case,
    "weights": weights_case,
    "compare_version": compare_version_case,
}

#: Classes whose every case runs dse as a subprocess (seconds each: fewer cases in the bench).
SUBPROCESS_CLASSES = ("environment", "signal")


def try_case(case: Case, folder: Path) -> Outcome:
    folder.mkdir(parents=True, exist_ok=True)
    case.materialize(folder)
    before = snapshot(folder)
    if case.process is not None:
        res = run_process(case, folder)
    elif case.fault is not None:
        with case.fault():
            code, out, err, tb = run_dse(case.argv, folder)
        res = Outcome(code, out, err, tb)
    else:
        code, out, err, tb = run_dse(case.argv, folder)
        res = Outcome(code, out, err, tb)
    res = judge(folder, before, res, case.outputs)
    if case.must_fail and res.code == 0:
        res.accepted_bad = [case.what]
    if case.check is not None:
        res.altered_inputs += case.check(folder, before, res)
    return res


#: The dse command as a subprocess (the console script of this venv, else ``-m dse.cli``).
_DSE_SCRIPT = Path(sys.executable).parent / "dse"
DSE_ARGV = [str(_DSE_SCRIPT)] if _DSE_SCRIPT.exists() else [sys.executable, "-m", "dse.cli"]


def run_process(case: Case, folder: Path) -> Outcome:
    """Run a case's command as a subprocess with its environment, closed streams and signal;
    a traceback on stderr, an exit code other than 0, 2, 130 or 143, or a hang is judged."""
    import subprocess
    import time

    opts = case.process or {}
    env = dict(os.environ)
    for k, v in (opts.get("env") or {}).items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    close = opts.get("close")
    stderr = None if close == "stderr" else subprocess.PIPE
    p = subprocess.Popen([*DSE_ARGV, *case.argv], cwd=folder, env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
                         preexec_fn=(lambda: os.close(2)) if close == "stderr" else None)
    if close == "stdout":
        p.stdout.close()
    sig = opts.get("signal")
    if sig is not None:
        deadline = time.monotonic() + sig[1]
        while p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if p.poll() is None:
            p.send_signal(sig[0])
    try:
        out, err = p.communicate(timeout=HANG_S * 4)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return Outcome(None, "", "", f"Hang: still running after {HANG_S * 4:g} s")
    out = (out or b"").decode("utf-8", "replace")
    err = (err or b"").decode("utf-8", "replace")
    code = p.returncode
    if code in (-signal.SIGINT, -signal.SIGTERM):
        code = 128 - code  # stopped before dse could handle it (starting up): as a shell sees it
    tb = ""
    if "Traceback (most recent call last)" in err:
        tb = err[err.index("Traceback"):]
    elif code not in (0, 2, 130, 143):
        tb = f"exit code {code}"
    return Outcome(code, out, err, tb)


def finite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)
