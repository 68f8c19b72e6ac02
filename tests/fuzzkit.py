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
  a negative time, utilization or speedup.

The mutators turn a valid input (a board, a profile, a plan, a calibration, a report) into the
kinds of bad input a careful user tries: wrong types, non-finite and out-of-range numbers,
missing and unknown keys, deep nesting, truncation.
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
    after = snapshot(folder)
    res = Outcome(code, stdout, stderr, tb)
    res.altered_inputs = [p for p, v in before.items()
                          if p not in outputs and after.get(p) != v]
    if code != 0:
        res.orphans = [p for p, v in after.items() if before.get(p) != v]
    else:
        res.non_finite = non_finite_outputs(folder, [p for p in after if before.get(p)
                                                     != after[p]], stdout)
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
        for k, v in obj.items():
            sub = f"{where}.{k}".lstrip(".")
            if (isinstance(v, (int, float)) and not isinstance(v, bool)
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
    """A folder's files and the command to run there."""

    files: dict[str, str | bytes]
    argv: list[str]
    outputs: tuple[str, ...] = ()
    what: str = ""
    setup: Callable[[Path], None] | None = None

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
}


def try_case(case: Case, folder: Path) -> Outcome:
    folder.mkdir(parents=True, exist_ok=True)
    case.materialize(folder)
    return run_case(folder, case.argv, case.outputs)


def finite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)
