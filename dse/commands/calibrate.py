"""``dse calibrate``: fit the model to measurements, write a calibration where the user says.

``--from LOG`` fits a measurement log (a board run, a paper's figures) with no board or
simulator at hand. ``--backend pynq`` runs the plan's layers on the board's overlay (and the
same layers on its PS); ``--backend sim`` runs the overlay's RTL in Verilator with the board
file's DDR timing at the stream. Either backend writes what it measured as a log
(``--log FILE``) and fits it exactly like ``--from``. Every result is checked bit-exactly
before anything is written; the calibration (``-o FILE``, default a dated file under
``calibrations/`` of the current directory, never ``boards/``) and the report section are
written atomically, only at the end, and nothing reads them unless the user names them.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from dataclasses import replace
from pathlib import Path

from dse.commands.common import (
    add_lang_option,
    non_negative_int,
    positive_float,
    positive_int,
)
from dse.commands.model_input import MODEL_HELP, load_model_input
from dse.commands.progress import add_quiet_option
from dse.errors import DseError
from dse.io import Outputs, load_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="measure layers on the overlay (board or RTL sim), fit "
                       "the cost model, report projected vs measured",
                       description="Run the best plan's layers (or --layers GLOB) on the "
                       "overlay, verify them bit-exactly, fit the model's free parameters and "
                       "append 'Projected vs measured' to the report.")
    p.add_argument("--board", default=None,
                   help="board YAML or name (with --from: default the log's board by name)")
    p.add_argument("--from", dest="from_log", type=Path, default=None, metavar="LOG",
                   help="fit a measurement log (docs/measurement-log.md); no board or "
                   "simulator needed")
    p.add_argument("--backend", choices=("sim", "pynq"), default="pynq",
                   help="pynq: the overlay on this board; sim: the RTL in Verilator")
    p.add_argument("--log", type=Path, default=None,
                   help="also write what the backend measured as a measurement log")
    p.add_argument("--profile", type=Path, default=None,
                   help="profile JSON (default: embedded, unless --model is given)")
    p.add_argument("--model", default=None, help=MODEL_HELP)
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
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="calibration file (default: calibrations/<board>-<UTC time>.yaml in "
                   "the current directory)")
    p.add_argument("--report", type=Path, default=None,
                   help="report to add the section to (default: the report the --profile "
                   "JSON was written with or imported from, else reports/<profile>.<lang>.md)")
    add_lang_option(p)
    p.add_argument("--no-report", action="store_true")
    add_quiet_option(p)
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--fabric", default=None,
                   help="fabric evidence file, as dse explore's (default: the shipped "
                   "dse/data/fabric.yaml): the search it re-projects with is explore's")
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


def _preflight(args) -> None:
    """What the backend needs, checked before the search: off the board, ``--backend pynq``
    fails in a second, in one line."""
    if args.backend == "pynq":
        from dse.hw.pynq_backend import check_ready

        check_ready(args.overlay)


def _plan_attention(path: Path | None):
    """The attention unit of ``--plan``'s best plan (None: no plan, or a plan without one)."""
    if path is None:
        return None
    from dataclasses import fields

    from dse.model.project import AttentionUnit

    data = load_json(path, "plan")
    try:
        att = data["plans"][0]["projections"][0]["plan"].get("attention")
    except (KeyError, IndexError, TypeError, AttributeError):
        return None
    if not isinstance(att, dict):
        return None
    known = {f.name for f in fields(AttentionUnit)} - {"buildable", "build_note"}
    try:
        return AttentionUnit(**{k: v for k, v in att.items() if k in known})
    except TypeError:
        raise DseError(f"{path}: plans.0.projections.0.plan.attention: expected the "
                       f"attention unit's fields") from None


def _doctor(args, backend, planned) -> None:
    """The board doctor (``dse.hw.doctor``) before anything runs on the board: a mismatch
    between the board, the bitstream and the plan refuses the calibration in one line."""
    from dse.hw import doctor

    findings = doctor.examine(backend.engine, args.overlay.with_suffix(".hwh"), planned,
                              _plan_attention(args.plan))
    print("board doctor:")
    for f in findings:
        print(f.line())
    doctor.verdict(findings, args.overlay)


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

    return PynqBackend(board, args.overlay, timeout_s=args.timeout)


def _fabric(args):
    """The fabric evidence in force (``--fabric``, else the shipped file), as ``dse explore``
    loads it: the plans calibrate re-projects must be the ones explore's card shows."""
    from dse.fabric_data import load_fabric

    return load_fabric(getattr(args, "fabric", None))


def _search(wl=None):
    """(objective, space) the calibration re-projects with: ``dse explore``'s default search
    (decode at its default context, the KV formats it searches, what the shipped overlay
    template builds, the runtimes the workload can price), so the plan calibrated is the
    plan the answer card of a default ``dse explore`` recommends."""
    from dse.model.template import shipped_template
    from dse.search.optimize import SEARCHED_KV_DTYPES, Objective
    from dse.search.space import default_space

    kv = {"kv_dtype": SEARCHED_KV_DTYPES[0], "kv_dtypes": SEARCHED_KV_DTYPES}
    objective = Objective(**kv) if wl is None else Objective(runtimes=wl.runtimes, **kv)
    return objective, default_space(objective.kind, template=shipped_template())


def default_output(board_stem: str) -> Path:
    """``calibrations/<board>-<UTC time>.yaml`` under the current directory (created)."""
    from datetime import datetime, timezone

    Path("calibrations").mkdir(exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path("calibrations") / f"{board_stem}-{stamp}.yaml"


def _outputs(args, mi, inputs) -> tuple[Outputs, Path | None, Path | None]:
    """The run's outputs claimed up front (none may be one of its inputs): (outputs,
    calibration path or None for the dated default, report path or None); the report's
    language is left in ``args.lang``."""
    from dse.commands.common import report_target

    out = Outputs([*mi.inputs, args.plan, args.weights, args.overlay, args.fabric, *inputs])
    cal = None if args.output is None else out.claim(args.output, "calibration")
    if args.log is not None:
        out.claim(args.log, "measurement log")
    report_path = None
    if not args.no_report:
        report_path, args.lang = report_target(args.report, args.lang, mi)
        report_path = out.claim(report_path, "report", rewrite=True)
    return out, cal, report_path


def _log_plan_design(path: Path | None):
    """The engine design of ``--plan``'s best plan (for the log's configuration check)."""
    if path is None:
        return None
    _, _, fields = _best_plan(path)
    return _plan_design(fields, path)


def run(args: argparse.Namespace) -> int:
    if args.from_log is not None:
        return _run_from_log(args)
    if args.board is None:
        raise DseError("--board: expected a board YAML or name (or --from LOG)")
    return _run_backend(args)


def _run_from_log(args: argparse.Namespace) -> int:
    """Fit a measurement log: no board, no simulator, only the log and the model."""
    from dse.model.board import resolve_board
    from dse.model.measurement_log import check_config, load_log
    from dse.model.project import CostContext

    log = load_log(args.from_log)
    board = resolve_board(args.board or log.config.board)
    check_config(log, board, _log_plan_design(args.plan))
    mi = load_model_input(args.model, args.profile)
    wl, profile, stem = mi.workload, mi.profile, mi.stem
    out, out_path, report_path = _outputs(args, mi, [args.from_log, board.path])
    ctx0 = CostContext.for_board(board, None, _fabric(args))
    res = _fit(args, log, wl, ctx0)
    print(f"fitting {log.path} ({len(log.entries)} entries, {log.config.backend} log) for "
          f"{board.name}")
    return _finish(args, res, log, board, ctx0, wl, profile, stem, out, out_path, report_path,
                   {"log": log.path, "log_sha256": log.sha256, "log_title": log.title,
                    "board_file": board.path}, None)


def _run_backend(args: argparse.Namespace) -> int:
    from dse.hw import calibrate as flow
    from dse.model.board import resolve_board
    from dse.model.measurement_log import log_to_json
    from dse.model.project import CostContext
    from dse.search.explore import explore

    board = resolve_board(args.board)
    _preflight(args)
    mi = load_model_input(args.model, args.profile)
    wl, profile, stem = mi.workload, mi.profile, mi.stem
    out, out_path, report_path = _outputs(args, mi, [board.path])
    ctx0 = CostContext.for_board(board, None, _fabric(args))
    best_before = explore(wl, ctx0, *_search(wl), curves=False).best
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
    if args.backend == "pynq":
        _doctor(args, backend, planned)
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
    from dse.commands.progress import Progress, note

    with Progress(f"{backend.name} calls", "call", quiet=args.quiet, delay_s=2.0) as bar:
        measurements = flow.measure(backend, jobs, args.repeats, design, bar,
                                    lambda line: note(f"{line} (once per engine design; about "
                                                      f"a minute)", args.quiet))
    ps = backend.ps_baseline(jobs, args.repeats) if hasattr(backend, "ps_baseline") else ()
    print(f"ran and verified bit-exactly in {time.perf_counter() - t0:.1f} s"
          + (f" (and the same layers on the PS: {len(ps)} timings)" if ps else ""))
    provenance = backend.provenance()
    log = flow.log_from_measurements(measurements, backend.name, board, design, provenance,
                                     ps)
    if args.log is not None:
        # what was measured is kept even if the fit then fails (it is the run's only record)
        log = replace(log, path=str(args.log))
        logged = Outputs([])
        logged.add(args.log, log_to_json(log), "measurement log")
        logged.commit()
        print(f"measurement log: {args.log}")
    res = _fit(args, log, wl, ctx0)
    kind = "simulated" if backend.name == "sim" else "measured"
    return _finish(args, res, log, board, ctx0, wl, profile, stem, out, out_path, report_path,
                   provenance, (best_before, design, measurements, kind, args.repeats))


def _fit(args, log, wl, ctx0):
    """``fit_log`` with its evaluations counted on stderr (a 10,000-entry log takes ~30 s)."""
    from dse.commands.progress import Progress
    from dse.model.fit import fit_log

    with Progress("fit", "evaluation", quiet=args.quiet, delay_s=2.0) as bar:
        return fit_log(log, wl, ctx0.board, ctx0.constants, progress=bar)


def _finish(args, res, log, board, ctx0, wl, profile, stem, out, out_path, report_path,
            provenance, run_info) -> int:
    """Package, print, write the calibration and the report section (atomically, at the end)."""
    from dse.commands.common import base_report_text
    from dse.hw import calibrate as flow
    from dse.model.calibration import calibration_to_yaml
    from dse.model.project import CostContext
    from dse.search.explore import explore

    cal = flow.calibration_from_fit(res, log, board, provenance)
    if not cal.params:
        raise DseError(f"{log.path or 'the measurements'}: expected entries the model prices "
                       f"and can fit ({res.message}); no calibration written")
    out_path = out_path or default_output(board.stem)
    cal = replace(cal, path=str(out_path))
    text_yaml = calibration_to_yaml(cal)
    cal = replace(cal, sha256=hashlib.sha256(text_yaml.encode("utf-8")).hexdigest())
    ctx1 = CostContext.for_board(board, cal, ctx0.constants.fabric)
    e2e = None
    if run_info is not None:
        best, design, measurements, kind, _ = run_info
        # the recommended plan at the scenario the search priced it at (the card's)
        e2e = flow.end_to_end(wl, best.plan, design, measurements, ctx0, ctx1, kind,
                              best.decode.scenario)
    replans = []
    if report_path is not None:  # the section's re-projected plans (the console has none)
        before = explore(wl, ctx0, *_search(wl), curves=False)
        after = explore(wl, ctx1, *_search(wl), curves=False)
        replans = [(b, next((a for a in after.plans if a.label == b.label), after.best))
                   for b in before.plans[:4]]
    _print_summary(cal, res, e2e)
    out.add(out_path, text_yaml, "calibration")
    if report_path is not None:
        from dse.report.calibrate_md import render_calibration_section
        from dse.report.explore_md import card_summary
        from dse.report.sections import upsert_section

        def update(current: str | None) -> str:
            text, lang = base_report_text(current, profile, stem, args.lang, report_path)
            section = render_calibration_section(
                cal, res, board.stem, lang, log=log, e2e=e2e, replans=replans,
                repeats=None if run_info is None else run_info[4],
                card=card_summary(text, board.stem))
            return upsert_section(text, "calibrate", board.stem, section)

        out.rewrite(report_path, update)
    out.commit()
    print(f"calibration: {out_path} (used only where named: --calibration {out_path})")
    if report_path is not None:
        print(f"report: {report_path} (Projected vs measured for {board.name})")
    return 0


def _load_weights(path: Path, names: set[str]):
    from dse.packing.loaders import load_weights

    return {layer.name: layer.w for layer in load_weights(path) if layer.name in names}


def _print_summary(cal, res, e2e) -> None:
    b, a = cal.error_before, cal.error_after
    print(f"model error over {len(res.fitted())} fitted entries: before max "
          f"{b['max_abs_rel_error']:.1%} (mean {b['mean_abs_rel_error']:.1%}), after max "
          f"{a['max_abs_rel_error']:.1%} (mean {a['mean_abs_rel_error']:.1%})")
    from dse.report.numbers import param_value

    for name, p in cal.params.items():
        print(f"  {name}: {param_value(name, p.default)} -> "
              f"{param_value(name, p.value, p.stderr, with_err=True)}")
    for r in res.entries:
        if r.status == "composed":
            print(f"{r.id}: measured {r.measured:g} {r.unit}; composed {r.before:.4g} -> "
                  f"{r.after:.4g} {r.unit} ({r.error_after:+.1%}), of which "
                  f"{r.measured_fraction:.0%} is taken from the measurement and "
                  f"{1 - r.measured_fraction:.0%} is modelled")
    unpriced = [r.id for r in res.entries if r.status == "not priced"]
    if unpriced:
        print(f"not priced by this model yet ({len(unpriced)}): {', '.join(unpriced)}")
    held = res.held_out
    if held and "max_abs_rel_error" in held:
        print(f"held-out: fitted on {len(held['train'])} entries, predicting the other "
              f"{len(held['test'])}: max error {held['max_abs_rel_error']:.1%}")
    if e2e:
        from dse.report.identity import scenario_text
        from dse.report.numbers import ms

        print(f"end to end: plan {e2e.plan} ({e2e.plan_id}) on {e2e.design}"
              + (" (the engine as built, not the plan's)" if e2e.as_built else "")
              + f", {scenario_text(e2e.scenario, 'en', False)}: projected "
              f"{ms(e2e.projected_before_ms)} ms/token before calibration, "
              f"{ms(e2e.projected_after_ms)} after; composed {ms(e2e.composed_ms)} ms/token, of "
              f"which {e2e.run_fraction:.0%} {e2e.kind} ({e2e.run_layers}/"
              f"{e2e.offloaded_layers} PL layers' shapes) and the rest modelled; baseline "
              f"{e2e.baseline_runtime} CPU-only (KV {e2e.baseline_kv}) {ms(e2e.baseline_ms)} "
              f"ms/token")
