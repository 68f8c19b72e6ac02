"""``dse calibrate``: run the chosen layers on the overlay, fit the model, report the result.

``--backend pynq`` runs on the board's overlay; ``--backend sim`` runs the overlay's RTL in
Verilator with the board file's DDR/link timing for what the RTL does not simulate. Every
result is checked bit-exactly against the golden model before anything is written; the
calibration file and the report section are written atomically, only at the end.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

from dse.commands.common import non_negative_int, positive_float, positive_int
from dse.errors import DseError
from dse.io import Outputs, load_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="measure layers on the overlay (board or RTL sim), fit "
                       "the cost model, report projected vs measured",
                       description="Run the best plan's layers (or --layers GLOB) on the "
                       "overlay, verify them bit-exactly, fit the model's free parameters and "
                       "append 'Projected vs measured' to the report.")
    p.add_argument("--board", required=True, help="board YAML or name")
    p.add_argument("--backend", choices=("sim", "pynq"), default="pynq",
                   help="pynq: the overlay on this board; sim: the RTL in Verilator")
    p.add_argument("--profile", type=Path, default=None, help="profile JSON (default: embedded)")
    p.add_argument("--plan", type=Path, default=None,
                   help="dse explore --json file: calibrate its best plan's layers on its "
                   "engine (the overlay must match it)")
    p.add_argument("--layers", default=None, help="glob of layer names instead of a plan")
    p.add_argument("--weights", type=Path, default=None,
                   help="HF checkpoint dir or GGUF file (default: random ternary weights)")
    p.add_argument("--prefill-m", type=positive_int, default=4, help="M of the prefill measurement")
    p.add_argument("--repeats", type=positive_int, default=3, help="runs per layer and M")
    p.add_argument("--overlay", type=Path, default=None,
                   help="pynq: the .bit (with .hwh beside it); sim: ignored")
    p.add_argument("--sim-pe", type=positive_int, default=None,
                   help="sim: PE of the RTL build (default: the plan's engine)")
    p.add_argument("--sim-simd", type=positive_int, default=None,
                   help="sim: SIMD of the RTL build (default: the plan's engine)")
    p.add_argument("--sim-packing", choices=("i2", "base3"), default=None,
                   help="sim: packing of the RTL build (default: the plan's engine)")
    p.add_argument("--timeout", type=positive_float, default=10.0,
                   help="pynq: seconds per DMA call")
    p.add_argument("--output", type=Path, default=None,
                   help="calibration file (default: boards/calibration/<board>.yaml)")
    p.add_argument("--report", type=Path, default=None,
                   help="report to append to (default: reports/<profile>.<lang>.md)")
    p.add_argument("--no-report", action="store_true")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.set_defaults(run=run)


def _best_plan(path: Path) -> tuple[set[str], str, dict]:
    """(offloaded layer names, label, engine design fields) of an explore JSON's best plan."""
    data = load_json(path, "plan")
    try:
        best = data["plans"][0]
        plan = best["projections"][0]["plan"]
        return set(plan["offload"]), best["label"], dict(plan["design"])
    except (KeyError, IndexError, TypeError):
        raise DseError(f"{path}: plans.0.projections.0.plan: expected a dse explore "
                       f"JSON file") from None


def _plan_design(fields: dict, path: Path):
    """The plan's whole engine design (PE, SIMD, packing, engines, vectors, ...)."""
    from dataclasses import fields as dc_fields

    from dse.model.engine import EngineDesign

    known = {f.name for f in dc_fields(EngineDesign)}
    try:
        return EngineDesign(**{k: v for k, v in fields.items() if k in known}).validate(
            f"{path}: plans.0.projections.0.plan.design")
    except TypeError as exc:
        raise DseError(f"{path}: plans.0.projections.0.plan.design: expected engine design "
                       f"fields ({exc})") from None


def _make_backend(args, board, design):
    """sim: the RTL build of exactly ``design`` (the plan's engine; --sim-* override it)."""
    if args.backend == "sim":
        from dse.hw.sim_backend import SimBackend
        from dse.model.template import shipped_template

        over = {k: v for k, v in (("pe", args.sim_pe), ("simd", args.sim_simd),
                                  ("packing", args.sim_packing)) if v is not None}
        if over:
            from dse.packing.stream import stream_bits

            design = replace(design, **over)
            design = replace(design, stream_bits=stream_bits(design.pe, design.simd,
                                                             design.packing))
        return SimBackend.for_design(board, design, shipped_template())
    from dse.hw.pynq_backend import PynqBackend

    if args.overlay is None:
        raise DseError("--overlay: expected the overlay's .bit file for --backend pynq")
    return PynqBackend(board, args.overlay, timeout_s=args.timeout)


def run(args: argparse.Namespace) -> int:
    from dse.commands.common import (
        base_report_text,
        default_report_path,
        load_profile_option,
        profile_inputs,
    )
    from dse.hw import calibrate as flow
    from dse.model.board import resolve_board
    from dse.model.calibration import calibration_path, calibration_to_yaml
    from dse.model.project import CostContext
    from dse.model.template import shipped_template
    from dse.model.workload import workload_from_profile
    from dse.search.explore import explore
    from dse.search.optimize import Objective
    from dse.search.space import default_space

    board = resolve_board(args.board)
    profile, stem, source = load_profile_option(args.profile)
    wl = workload_from_profile(profile, source)
    out_path = args.output or calibration_path(board)
    if out_path is None:
        raise DseError("--output: expected a path (the board has no file location)")
    if args.output is None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
    out = Outputs([*profile_inputs(args.profile), board.path or None, args.plan, args.weights,
                   args.overlay])
    out.claim(out_path, "calibration")
    report_path = None
    if not args.no_report:
        report_path = out.claim(default_report_path(profile, stem) if args.report is None
                                else args.report, "report", rewrite=True)
    ctx0 = CostContext.for_board(board)
    objective = Objective()
    space = default_space(objective.kind, template=shipped_template())
    before = explore(wl, ctx0, objective, space=space)
    best_before = before.best
    planned = None
    if args.layers:
        layers = flow.select_layers(wl, glob=args.layers)
        plan_label = f"--layers {args.layers}"
    elif args.plan:
        names, plan_label, fields = _best_plan(args.plan)
        layers = flow.select_layers(wl, names=names, where=str(args.plan))
        if fields.get("packing") not in ("i2", "base3"):
            raise DseError(f"{args.plan}: packing: expected i2 or base3 (the overlay's "
                           f"decoders), got {fields.get('packing')!r}")
        planned = _plan_design(fields, args.plan)
    else:
        layers = flow.select_layers(wl, names=best_before.plan.offload, where="best plan")
        plan_label = best_before.label
    weights = _load_weights(args.weights, {la.name for la in layers}) if args.weights else None
    # the build to measure: the plan's engine (the best plan's by default)
    backend = _make_backend(args, board, planned or best_before.plan.design)
    design = backend.overlay_design()
    flow.check_design(design, planned)
    shapes = flow.unique_shapes(layers)
    jobs = flow.make_jobs(shapes, sorted({1, args.prefill_m}), design.vectors, args.seed,
                          weights)
    print(f"calibrating {board.name} on {backend.name}: {len(shapes)} shapes x "
          f"{len({1, args.prefill_m})} M x {args.repeats} repeats, overlay {design.label()} "
          f"(layers of {plan_label})")
    if "rtl_engine" in (prov := backend.provenance()):
        print(f"simulating RTL build {prov['rtl_build']}: {prov['rtl_engine']}")
    t0 = time.perf_counter()
    measurements = flow.measure(backend, jobs, args.repeats, design)
    print(f"measured and verified bit-exactly in {time.perf_counter() - t0:.1f} s")
    cal, _ = flow.fit_calibration(measurements, board, ctx0.constants, backend.name,
                                    backend.provenance())
    held = flow.held_out_error(measurements, board, ctx0.constants)
    cal = replace(cal, path=str(out_path))
    ctx1 = CostContext.for_board(board, cal)
    e2e = flow.end_to_end(wl, best_before.plan, design, measurements, ctx0, ctx1)
    after = explore(wl, ctx1, objective, space=space)
    replans = [(b, next((a for a in after.plans if a.label == b.label), after.best))
               for b in before.plans[:4]]
    _print_summary(cal, held, e2e)
    out.add(out_path, calibration_to_yaml(cal), "calibration")
    if report_path is not None:
        from dse.report.calibrate_md import render_calibration_section
        from dse.report.sections import upsert_section

        def update(current: str | None) -> str:
            text, lang = base_report_text(current, profile, stem)
            section = render_calibration_section(
                cal, board.stem, lang, design_label=design.label(),
                repeats=args.repeats, e2e=e2e, replans=replans, held_out=held)
            return upsert_section(text, "calibrate", board.stem, section)

        out.rewrite(report_path, update)
    out.commit()
    print(f"calibration: {out_path}")
    if report_path is not None:
        print(f"report: {report_path} (Projected vs measured for {board.name})")
    return 0


def _load_weights(path: Path, names: set[str]):
    from dse.packing.loaders import load_weights

    return {layer.name: layer.w for layer in load_weights(path) if layer.name in names}


def _print_summary(cal, held, e2e) -> None:
    b, a = cal.error_before, cal.error_after
    print(f"model error per measurement: before max {b['max_abs_rel_error']:.1%} "
          f"(mean {b['mean_abs_rel_error']:.1%}), after max {a['max_abs_rel_error']:.1%} "
          f"(mean {a['mean_abs_rel_error']:.1%})")
    for name, p in cal.params.items():
        err = "unconstrained" if p.stderr is None else f"± {p.stderr:.2g}"
        print(f"  {name}: {p.default:g} -> {p.value:.4g} ({err})")
    if held:
        print(f"held-out shapes: max error {held['max_abs_rel_error']:.1%}")
    print(f"end to end ({e2e.plan} on {e2e.design}): projected {e2e.projected_before_ms:.1f} -> "
          f"{e2e.projected_after_ms:.1f} ms/token, measured {e2e.measured_ms:.1f} ms/token "
          f"(speedup {e2e.speedup(e2e.measured_ms):.2f}x vs PyTorch)")
