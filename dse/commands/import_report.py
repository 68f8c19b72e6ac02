"""``dse import REPORT.md -o PROFILE.json``: turn a seed-format Markdown report into a profile."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from dse.commands.common import relative_to_json
from dse.io import Outputs
from dse.profile.format import Profile, profile_to_json
from dse.profile.seed_import import import_report


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import",
                       help="read a profile report (Markdown, zh or en) into a profile JSON")
    p.add_argument("report", type=Path, help="report in the seed's Markdown format")
    p.add_argument("-o", "--output", type=Path, required=True, help="profile JSON to write")
    p.set_defaults(run=run)


def summary(profile: Profile) -> str:
    """One line: what was imported."""
    lin = profile.linears
    flagged = [m.name for m in profile.modules if m.outlier]
    out = f"{len(flagged)} outlier(s) flagged" + (f" ({', '.join(flagged)})" if flagged else "")
    return (f"{len(lin)} Linear layers, Linear total {sum(m.total_ms for m in lin):.2f} ms, "
            f"{len(profile.tokens)} tokens, {out}")


def run(args: argparse.Namespace) -> int:
    out = Outputs([args.report])
    out.claim(args.output, "profile")
    profile = import_report(args.report)
    # the profile names the report it came from: `dse explore --profile` adds to that report
    profile = replace(profile, report=relative_to_json(args.report, args.output))
    out.add(args.output, profile_to_json(profile) + "\n")
    out.commit()
    print(f"{args.report} -> {args.output}: {summary(profile)}")
    return 0
