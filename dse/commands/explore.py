"""``dse explore``: search offload plans for a board and add them to the profiling report."""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

from dse.commands.common import (
    add_evidence_options,
    add_lang_option,
    add_scenario_options,
    base_report_text,
    calibration_input,
    positive_int,
    report_target,
    scenario_fields,
    validation_input,
)
from dse.commands.model_input import MODEL_HELP, load_model_input, not_measured, runtimes_for
from dse.commands.progress import add_quiet_option
from dse.io import Outputs
from dse.model.board import resolve_board
from dse.model.project import VIEWS, CostContext
from dse.report.table import text_table
from dse.search.optimize import OBJECTIVES, Objective


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explore", help="search offload plans and append them to the report",
                       description="Search engine designs, packing, offload and resident sets "
                       "for a board; rank plans; add an 'FPGA design-space exploration' "
                       "section to the profiling report.")
    p.add_argument("--board", required=True, help="board YAML (boards/zcu104.yaml) or name")
    p.add_argument("--profile", type=Path, default=None,
                   help="profile JSON (default: the embedded BitNet-2B-4T profile, unless "
                   "--model is given)")
    p.add_argument("--model", default=None, help=MODEL_HELP)
    p.add_argument("--objective", choices=OBJECTIVES, default="decode",
                   help="decode: ms of a round of --sequences (one token each); throughput: "
                   "its ms per token (aggregate tok/s); ttft (or prefill): time to first "
                   "token of --prompt-tokens; chat: the prompt then --gen-tokens; mix: the "
                   "prompt plus --gen-tokens rounds at --context-tokens; energy, edp")
    p.add_argument("--prompt-tokens", type=positive_int, default=128,
                   help="prompt length (run in groups of up to VMAX positions)")
    p.add_argument("--gen-tokens", type=positive_int, default=128,
                   help="tokens generated (chat, mix)")
    p.add_argument("--prompt-group", type=positive_int, default=None,
                   help="prompt positions per forward, fixed (default: each design's VMAX, "
                   "the most it holds)")
    p.add_argument("--vectors-per-clock", default=None,
                   help="vectors per clock (VPC) the search may give the engines, a "
                   "comma-separated list among the template's (default: all it builds)")
    p.add_argument("--view", choices=VIEWS, default="on-board",
                   help="baseline view: CPU = the board's PS, or the profiled host")
    add_scenario_options(p, search=True)
    p.add_argument("--report", type=Path, default=None,
                   help="report to add the section to (default: the report the --profile "
                   "JSON was written with or imported from, else reports/<profile>.<lang>.md)")
    add_lang_option(p)
    p.add_argument("--no-report", action="store_true", help="print only; write no report")
    add_quiet_option(p)
    add_evidence_options(p)
    p.add_argument("--json", type=Path, default=None, help="write the plans as JSON")
    p.add_argument("--int8-head", action="store_true",
                   help="also consider an int8 lm_head unit (re-quantizes the bf16 head)")
    p.add_argument("--top", type=positive_int, default=12,
                   help="designs refined exactly by the MILP")
    p.add_argument("--reference", type=Path, default=None,
                   help="measurement log (dse-measurement-log JSON) of a measured design: the "
                   "report sets the best plan's per-token breakdown beside its measured split "
                   "(e.g. examples/measurements/bitnet-kv260.json)")
    p.add_argument("--template", type=Path, default=None,
                   help="engine template YAML: what the overlay can build (default: the "
                   "shipped overlays/ternary_gemv.yaml)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    board = resolve_board(args.board)
    mi = load_model_input(args.model, args.profile)
    profile, stem, source, wl = mi.profile, mi.stem, mi.source, mi.workload
    # Claim every output path before searching, so a bad path fails in a second, not after,
    # and no output can overwrite an input of this run.
    out = Outputs([*mi.inputs, board.path or None, args.template,
                   calibration_input(board, args.calibration), args.reference,
                   validation_input(args.validation), args.fabric])
    report_path, lang = None, None
    if not args.no_report:
        report_path, lang = report_target(args.report, args.lang, mi)
        report_path = out.claim(report_path, "report", rewrite=True)
        from dse.report.plots import plot_names

        for name in plot_names(report_path.stem, board.stem).values():
            out.claim(report_path.parent / name, "plot")
    if args.json:
        out.claim(args.json, "JSON")
    reference = None
    if args.reference is not None:
        from dse.model.measurement_log import load_log

        reference = load_log(args.reference)
    ctx = CostContext.resolve(board, args.calibration, args.fabric)
    from dse.validation_data import load_validation

    validation = load_validation(args.validation)
    from dse.model.template import load_template, shipped_template

    template = load_template(args.template) if args.template else shipped_template()
    # the PL units plans may add come from the template x the board (dse.search.space)
    fields = scenario_fields(args)
    fields["runtimes"] = runtimes_for(wl, fields["runtimes"], args.runtime)
    vpcs = check_engine_options(args, template)
    check_context(args)
    objective = Objective(args.objective, args.prompt_tokens, args.gen_tokens, args.view,
                          prompt_group=args.prompt_group, **fields)
    from dse.search.explore import explore
    from dse.search.space import default_space

    t0 = time.perf_counter()
    from dse.commands.progress import Progress

    with Progress(f"search {board.name}", "design", quiet=args.quiet) as bar:
        space = default_space(objective.kind, args.int8_head, template,
                              sequences=objective.sequences,
                              prompt_group=objective.prompt_group)
        if vpcs:
            space = replace(space, vpcs=vpcs)
        result = explore(wl, ctx, objective, space=space, top=args.top, progress=bar,
                         reference=reference, validation=validation,
                         curves=report_path is not None or bool(args.json))
    search_s = time.perf_counter() - t0
    if not result.best.feasible:
        result = replace(result, advice=_advice(wl, ctx, objective))
    print(_summary(result, source, search_s, not_measured(wl)))
    if args.json:
        from dse.report.explore_json import explore_to_json

        out.add(args.json, explore_to_json(result, source), "JSON")
    plots = None if report_path is None else _stage_report(result, profile, stem, report_path,
                                                           out, lang)
    out.commit()
    if args.json:
        print(f"plans written to {args.json}")
    if plots is not None:
        print(f"report: {report_path} (section for {result.board.name}; plots "
              f"{', '.join(plots.names.values())})" + (f"; {plots.note}" if plots.note else ""))
    return 0


def check_context(args) -> None:
    """An objective that runs the prompt and then decodes after it (chat, mix) decodes at
    a context holding the prompt: ``--context-tokens`` below ``--prompt-tokens`` there is a
    one-line error (it was priced as decode at the shorter context), as in ``dse project``."""
    from dse.errors import DseError

    if args.objective in ("chat", "mix") and args.context_tokens is not None and \
            args.context_tokens < args.prompt_tokens:
        raise DseError(f"--context-tokens: expected >= --prompt-tokens ({args.prompt_tokens}) "
                       f"with --objective {args.objective}: its decode follows the prompt, "
                       f"got {args.context_tokens}")


def check_engine_options(args, template) -> tuple[int, ...]:
    """What the round, the prompt group and the vectors per clock ask of the engines, against
    what the template builds (one line naming the option otherwise); the VPCs asked for
    (empty: all)."""
    from dse.errors import DseError
    from dse.model.prompt import check_group

    vmax = template.vmax_range[1]
    if args.sequences > vmax:
        raise DseError(f"--sequences: expected at most {vmax} (the vectors the engine "
                       f"template's VMAX holds per weight pass, {template.path}), got "
                       f"{args.sequences}")
    if args.prompt_group is not None:
        check_group(args.prompt_group, vmax, what="the engine template's largest VMAX")
        if args.objective not in ("ttft", "prefill", "chat", "mix"):
            raise DseError(f"--prompt-group: expected only with an objective that runs a "
                           f"prompt (ttft, prefill, chat, mix), got --objective "
                           f"{args.objective}")
    if args.vectors_per_clock is None:
        return ()
    out = []
    for text in str(args.vectors_per_clock).split(","):
        text = text.strip()
        if not text.isdigit() or int(text) not in template.vpc_values:
            raise DseError(f"--vectors-per-clock: expected one of "
                           f"{', '.join(map(str, template.vpc_values))} (the vectors per "
                           f"clock the engine template builds), got {text!r}")
        out.append(int(text))
    if args.objective in ("decode", "throughput", "energy", "edp") and \
            min(out) > args.sequences:
        # a weight pass then carries the round alone (VMAX = --sequences), and an engine
        # answers at most the vectors it holds a clock: no design could be searched (the
        # search said no design fits the board)
        raise DseError(f"--vectors-per-clock {args.vectors_per_clock}: expected at most "
                       f"--sequences ({args.sequences}): with --objective {args.objective} a "
                       f"weight pass carries the round's {args.sequences} vector(s); give "
                       f"--sequences {min(out)} or more, or an objective with a prompt")
    return tuple(dict.fromkeys(out))


def _stage_report(result, profile, stem: str, report_path: Path, out: Outputs, lang: str):
    """Stage the plots and the report's new section in ``lang`` (added to the report as it
    is when the outputs are committed, under its lock); return the plots (``PlotSet``)."""
    from dse.report.explore_md import render_explore_section, upsert_section
    from dse.report.plots import write_plots

    plots = write_plots(result, report_path.parent, report_path.stem, write=out.add,
                        lang=lang)

    def update(current: str | None) -> str:
        from dse.report.calibrate_md import calibrated_summary

        text, lang_ = base_report_text(current, profile, stem, lang, report_path)
        return upsert_section(text, result.board.stem, render_explore_section(
            result, lang_, plots.names, plot_note=plots.note,
            calibrated=calibrated_summary(text, result.board.stem)))

    out.rewrite(report_path, update)
    return plots


def _advice(wl, ctx, objective) -> tuple:
    """What would fit when nothing does: against the published presets and the shipped
    boards (``dse.search.advice``)."""
    from dse.model.arch import preset_config
    from dse.model.board import boards_dir, load_board
    from dse.profile.presets import PUBLISHED
    from dse.search.advice import fit_advice

    models = tuple(preset_config(name) for name in PUBLISHED)
    boards = tuple(load_board(p) for p in sorted(boards_dir().glob("*.yaml")))
    return fit_advice(wl, ctx, objective.context_tokens, models, boards).messages()


def _band_lines(result) -> list[str]:
    """The bands in the console: what they rest on, what the best plan was never measured
    in, the plans equivalent to it within the model's error."""
    from dse.report.band_lines import band_lines

    b = result.best.decode_band
    if b is None:
        return []
    ttft = (result.ttft_band, result.ttft_flags) if result.ttft_band is not None else None
    lines = band_lines(b, ttft, None)
    lines[0] = lines[0].replace("(?)", f"({result.validation})")
    equal = [f"{rp.label} ({rp.plan.identity})" for rp in result.plans
             if result.equivalent(rp)]
    lines.append("within the model's error of the best (bands overlap, '≈ best' above): "
                 + (", ".join(equal) if equal else "none: the ranking holds"))
    return lines


def _summary(result, source: str, search_s: float, unmeasured: tuple[str, ...] = ()) -> str:
    from dse.report import numbers

    obj = result.objective
    lines = [
        f"board: {result.board.name} ({result.board.part}); profile: {source}",
        f"objective: {obj.describe()}; view: {obj.view}; PS runtimes searched: "
        f"{', '.join(obj.runtimes)}; KV cache {' or '.join(obj.kv_formats)}"
        f"{' (searched)' if len(obj.kv_formats) > 1 else ''}; calibration: {result.calibration}",
        "CPU-only baselines: " + "; ".join(
            f"{b.runtime} (KV {b.kv_dtype}) {numbers.ms(b.ms)} ms"
            + (f", {b.energy.watts:.2f} W, {b.energy.j_per_token:.3f} J/token" if b.energy
               else "")
            + ("" if b.feasible else f" (does not fit: {b.reason})")
            for b in result.best.decode.baselines)
        + "".join(f"; {r}: not measured (no profile)" for r in unmeasured),
        f"searched {result.designs_evaluated} designs in {search_s:.2f} s "
        f"({result.designs_rejected} rejected by caps, link or clock evidence)",
        "",
    ]
    rows = []
    for i, rp in enumerate((*result.plans, result.naive), 1):
        d = rp.decode
        util = d.utilization
        e = d.energy
        db, ob = rp.decode_band, rp.objective_band
        rows.append([i, f"{rp.label} ({rp.plan.identity})"
                     + (" ≈ best" if result.equivalent(rp) else ""), rp.plan.design.label(),
                     rp.plan.runtime, d.scenario.kv_dtype,
                     " ".join(rp.plan.unit_labels) or "-", len(rp.plan.offload),
                     len(rp.plan.resident),
                     numbers.ms(rp.objective_ms) if ob is None else numbers.interval(ob),
                     f"{d.tokens_per_s:.2f}" if db is None
                     else numbers.interval(db.tokens_per_s, numbers.fixed),
                     f"{rp.speedup:.2f}x",
                     f"{e.watts:.2f}" if e else "n/a", f"{e.j_per_token:.3f}" if e else "n/a",
                     f"{util['lut']:.0%}", d.bound, "yes" if rp.feasible else "NO"])
    base = result.best.decode.baseline
    lines.append(text_table(
        ["#", "plan", "engine design", "PS runtime", "KV", "PL units", "offload", "resident",
         f"objective {obj.unit}", "decode tok/s", f"vs {base.runtime} CPU-only", "W",
         "J/token", "LUT", "bound", "feasible"], rows))
    if result.best.decode.energy is None:
        lines.append(f"energy: n/a ({result.board.path or result.board.name} has no power: "
                     f"model)")
    lines.append("")
    if not result.best.feasible:
        reasons = "; ".join(dict.fromkeys(str(r) for p in result.best.projections
                                          for r in p.infeasible))
        lines.append(f"NO FEASIBLE PLAN on {result.board.name}: {reasons}")
        lines.append("what would fit: " + "; ".join(map(str, result.advice)))
        return "\n".join(lines)  # no make line or sensitivity for a plan that cannot run
    from dse.report.unit_counts import unit_count_rows

    lines += [str(n) for n in result.notes
              if getattr(n, "key", "") in ("note.clock_beyond", "note.count_beyond")]
    lines += _band_lines(result)
    bases = dict.fromkeys(p.decode.evidence.resource_basis for p in result.plans
                          if p.decode.evidence is not None)
    lines += [f"resource basis: {b}" for b in bases]
    lines += [f"clock of {p.label} ({p.plan.design.clock_mhz:g} MHz): "
              + ("WHAT-IF, " if p.decode.evidence.beyond else "") + p.decode.evidence.clock_line
              for p in result.plans if p.decode.evidence is not None]
    lines += [f"{k.lower()}: {v}" for k, v in unit_count_rows(result, "en")]
    lines.append("naive top-5: " + "; ".join(map(str, result.naive.why)))
    best = result.best.plan
    lines.append(f"{'build the best plan' if best.buildable else 'best plan'}: "
                 f"{best.build_note or 'not checked against the engine template (what-if)'}")
    top = result.sensitivity[0] if result.sensitivity else None
    if top:
        lines.append(f"most sensitive: {top.parameter} (speedup {top.low_speedup:.2f}x at -20%, "
                     f"{top.high_speedup:.2f}x at +20%)")
    return "\n".join(lines)
