"""Fuzzing every loader and every command's arguments (hypothesis; the long run is
``bench/bench_fuzz.py``).

Each example is judged by ``fuzzkit.run_case``: no traceback, exit 0 or 2, every input file
unchanged (hashed before and after), no output left by a failed run, and no NaN, infinity
or negative time, utilization or speedup in a successful run's output.
"""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path

import fuzzkit
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dse.model.constants import CostConstants

#: Values hypothesis puts into a file: every JSON/YAML type, and the numbers that break
#: arithmetic (NaN, infinities, zero, negatives, huge).
values = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 0.0, -0.0, 1e-300, 1e308, "51", "", "x"]),
    st.text(max_size=8),
    st.lists(st.integers(-2, 2), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(-2, 2), max_size=2),
)

FAST = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


def _judge(case: fuzzkit.Case) -> None:
    with tempfile.TemporaryDirectory(prefix="dse-fuzz-") as tmp:
        res = fuzzkit.try_case(case, Path(tmp))
    assert res.ok, (case.what, res.problems, res.stderr[-500:])


def _files(**override: str) -> dict[str, str]:
    base = {"board.yaml": fuzzkit.BOARD_YAML.read_text(encoding="utf-8"),
            "p.json": fuzzkit.json_text(fuzzkit._small_profile()),
            "plan.yaml": fuzzkit.yaml_text(fuzzkit._plan())}
    return {**base, **override}


#: Loader -> (its valid tree, the file it lives in, how that file is written, command line).
_CAL_ARGV = [a if a != "none" else "cal.yaml" for a in fuzzkit.PROJECT]
LOADERS = {
    "board": (lambda: fuzzkit._base("board"), "board.yaml", fuzzkit.yaml_text,
              fuzzkit.PROJECT),
    "profile": (fuzzkit._small_profile, "p.json", fuzzkit.json_text, fuzzkit.PROJECT),
    "profile-prefill": (fuzzkit._small_profile, "p.json", fuzzkit.json_text,
                        fuzzkit.PROJECT_VARIANTS[2]),
    "plan": (fuzzkit._plan, "plan.yaml", fuzzkit.yaml_text, fuzzkit.PROJECT),
    "calibration": (lambda: yaml.safe_load(fuzzkit.calibration_text()), "cal.yaml",
                    fuzzkit.yaml_text, _CAL_ARGV),
    "compare": (lambda: json.loads(fuzzkit.projection_text()), "a.json", fuzzkit.json_text,
                ["compare", "a.json"]),
}


@pytest.mark.parametrize("kind", sorted(LOADERS))
@FAST
@given(index=st.integers(0, 10**6), value=values)
def test_loader(kind, index, value):
    base, name, write, argv = LOADERS[kind]
    tree, what = fuzzkit.set_at(base(), index, value)
    _judge(fuzzkit.Case(_files(**{name: write(tree)}), argv, ("out.json",), f"{kind}: {what}"))


@FAST
@given(name=st.sampled_from(CostConstants.names()), value=values)
def test_cost_overrides(name, value):
    board = json.loads(json.dumps(fuzzkit._base("board")))
    board["cost_overrides"] = {name: value}
    _judge(fuzzkit.Case(_files(**{"board.yaml": fuzzkit.yaml_text(board)}), fuzzkit.PROJECT,
                        ("out.json",), f"cost_overrides.{name} = {value!r}"))


#: Classes whose cases are built from a seed: edited reports, option values, output paths
#: (a folder, an input, a missing folder, twice the same, a report cut short), deep nesting.
SEEDED = {"import": fuzzkit.import_case, "options": fuzzkit.option_case,
          "outputs": fuzzkit.output_case, "nesting": fuzzkit.nesting_case}


@pytest.mark.parametrize("kind", sorted(SEEDED))
@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_seeded_class(kind, seed):
    _judge(SEEDED[kind](random.Random(seed)))


#: Issue 27's classes, with how many seeds each gets here (the bench runs many more): every
#: input kind (templates, measurement logs (refused edits: an accepted log is a fit of
#: seconds, the bench runs those), model configs, keys set twice, absurd values,
#: checkpoint headers, another version's JSON), reports built to be mangled, a disk that
#: fills, other environments and closed streams, and signals (the last two as subprocesses).
ROUND_TWO = {"template": 8, "model_config": 8, "duplicate_keys": 10, "absurd": 10,
             "weights": 10, "compare_version": 8, "log_edits": 8, "report": 3, "disk": 4,
             "environment": 2, "signal": 2}


@pytest.mark.parametrize(("kind", "seed"), [(k, i) for k, n in ROUND_TWO.items()
                                            for i in range(n)])
def test_round_two_class(kind, seed):
    _judge(fuzzkit.CLASSES[kind](random.Random(f"test-{kind}-{seed}")))


def test_valid_inputs_pass_the_judge():
    """The harness itself: a valid project run is judged ok and writes its JSON."""
    with tempfile.TemporaryDirectory(prefix="dse-fuzz-") as tmp:
        case = fuzzkit.Case(_files(), fuzzkit.PROJECT, ("out.json",))
        res = fuzzkit.try_case(case, Path(tmp))
        assert res.code == 0 and res.ok, res.problems
        assert json.loads((Path(tmp) / "out.json").read_text())["format"] == "dse-projection"


def test_the_judge_sees_every_failure(tmp_path, monkeypatch):
    """The harness itself: an altered input, an orphan output and a traceback are caught."""
    import dse.commands.boards

    (tmp_path / "b.yaml").write_text("x", encoding="utf-8")

    def clobber(args):
        Path(args.files[0]).write_text("destroyed", encoding="utf-8")
        Path("orphan.json").write_text("{}", encoding="utf-8")
        raise RuntimeError("a bug")

    monkeypatch.setattr(dse.commands.boards, "run_validate", clobber)
    res = fuzzkit.run_case(tmp_path, ["boards", "validate", "b.yaml"])
    assert set(res.problems) == {"traceback", "altered_input", "orphan_output"}
    assert res.altered_inputs == ["b.yaml"] and "orphan.json" in res.orphans
