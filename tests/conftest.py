"""Fixtures every test file shares, and what keeps the suite hermetic.

No test reads a file outside the repository (the seed report is the copy shipped in
``dse/data/``), and no test sees what an earlier command left behind: board names resolve to
a clean copy of ``boards/`` in a temporary folder (so a ``boards/calibration/<board>.yaml``
written by a real ``dse calibrate`` never changes an ``--calibration auto`` result), unless a
test is marked ``real_boards_dir`` because the shipped folder itself is what it checks.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "dse" / "data"
#: The seed profiling report (BitNet-2B-4T on a Ryzen 7 9700X), as shipped in the package.
SEED_REPORT = DATA / "bitnet-2b4t.zh.md"
#: The embedded default profile (``dse import`` of the seed report).
SEED_PROFILE_JSON = DATA / "bitnet-2b4t.profile.json"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "real_boards_dir: the test checks the shipped boards/ "
                            "folder itself (board names are not redirected to a clean copy)")


@pytest.fixture(scope="session")
def clean_boards_dir(tmp_path_factory) -> Path:
    """The shipped board files, and nothing else (no calibration/, no build output)."""
    folder = tmp_path_factory.mktemp("boards")
    for f in sorted((ROOT / "boards").glob("*.yaml")):
        shutil.copy2(f, folder / f.name)
    return folder


@pytest.fixture(autouse=True)
def _hermetic_boards(request, monkeypatch, clean_boards_dir: Path) -> None:
    if request.node.get_closest_marker("real_boards_dir"):
        return
    import dse.model.board

    monkeypatch.setattr(dse.model.board, "boards_dir", lambda: clean_boards_dir)


@pytest.fixture(scope="session")
def board_path(clean_boards_dir: Path):
    """``board_path("zcu104")`` -> the clean copy of ``boards/zcu104.yaml``."""
    return lambda name: clean_boards_dir / f"{name}.yaml"


@pytest.fixture(scope="session")
def seed_report_text() -> str:
    return SEED_REPORT.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def seed_profile():
    """The embedded default profile (the seed report imported)."""
    from dse.profile.default import default_profile

    return default_profile()


@pytest.fixture(scope="session")
def seed_workload(seed_profile):
    from dse.model.workload import workload_from_profile

    return workload_from_profile(seed_profile)


@pytest.fixture(scope="session")
def kv260_ctx():
    """The KV260 board (as shipped) with the model's default constants."""
    from dse.model.board import load_board
    from dse.model.project import CostContext

    return CostContext.for_board(load_board(Path(__file__).resolve().parents[1] / "boards"
                                            / "kv260.yaml"))
