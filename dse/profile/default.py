"""The embedded default profile: BitNet b1.58 2B4T measured on a Ryzen 7 9700X (the seed).

Shipped so that ``dse explore`` and friends work out of the box, without torch or a model
download. The JSON is the seed report (also shipped, ``DEFAULT_REPORT_NAME``) run through
``dse import``; a test re-imports the report and compares, so the two cannot drift apart.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from importlib.abc import Traversable

from dse.profile.format import Profile, profile_from_checked_dict

DEFAULT_PROFILE_NAME = "bitnet-2b4t.profile.json"
DEFAULT_REPORT_NAME = "bitnet-2b4t.zh.md"


def data_file(name: str) -> Traversable:
    """A file shipped in ``dse/data`` (works from a wheel or an editable checkout)."""
    return resources.files("dse") / "data" / name


@lru_cache(maxsize=1)
def default_profile() -> Profile:
    """The embedded profile; loaded once (a Profile is frozen, so sharing it is safe). Built
    without the schema: it ships with the package, and tests/test_import.py holds it equal,
    type for type, to the schema's build of the same file."""
    f = data_file(DEFAULT_PROFILE_NAME)
    return profile_from_checked_dict(json.loads(f.read_text(encoding="utf-8")))


__all__ = ["DEFAULT_PROFILE_NAME", "DEFAULT_REPORT_NAME", "data_file", "default_profile"]
