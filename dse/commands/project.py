"""``dse project``: price one hand-written plan on one board and print what it buys.

The search (``dse explore``) proposes plans; this command answers "what would *this* plan do",
so a person can check an idea, reproduce a reported plan, or see per layer where the time goes.
An infeasible plan (over a resource cap, out of DDR) is a result, not a user error: it is
printed as INFEASIBLE with the reason and the command exits 0.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from dse.commands.common import (
    add_evidence_options,
    calibration_input,
    check_serving,
    positive_int,
    validation_input,
)
from dse.commands.model_input import MODEL_HELP, load_model_input, not_measured
from dse.errors import DseError
from dse.io import Outputs, json_text
from dse.model.band import bands_of, forwards_band, plan_band
from dse.model.board import Board, resolve_board
from dse.model.cpu import RUNTIME_TEXT, check_runtime
from dse.model.engine import Resources
from dse.model.plan_file import check_units_fit, load_plan_file
from dse.model.project import VIEW_TEXT, VIEWS, CostContext, Projection, Scenario, project
from dse.model.template import mark_buildable, shipped_template
from dse.model.workload import Workload
from dse.report import numbers
from dse.report.band_lines import band_lines
from dse.report.table import text_table

PHASES = ("decode", "prefill")
#: Tokens generated after the prompt when --context-tokens is not given (as dse explore).
DEFAULT_GEN_TOKENS = 128
DEFAULT_PROMPT_TOKENS = 128


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("project", help="project one plan file on a board",
                       description="Price a plan (engine design + offloaded layers, from a YAML "
                       "file) on a board: every operator of a token on its device, end-to-end "
                       "time against the CPU-only runtimes, resources, memory and "
                       "feasibility.")
    p.add_argument("--board", required=True, help="board YAML (boards/zcu104.yaml) or name")
    p.add_argument("--profile", type=Path, default=None,
                   help="profile JSON (default: the embedded BitNet-2B-4T profile, unless "
                   "--model is given)")
    p.add_argument("--model", default=None, help=MODEL_HELP)
    p.add_argument("--plan", type=Path, required=True, help="plan YAML (examples/plans/)")
    p.add_argument("--view", choices=VIEWS, default="on-board",
                   help="baseline view: CPU = the board's PS, or the profiled host")
    p.add_argument("--phase", choices=PHASES, default=None,
                   help="decode (one token of each of --sequences, a round) or prefill (the "
                   "prompt of --prompt-tokens in groups of --prompt-group positions, to its "
                   "first token); default: the plan file's scenario:, else decode")
    p.add_argument("--prompt-tokens", type=positive_int, default=None,
                   help=f"prompt length, the prefill M (default: the profile's, else "
                   f"{DEFAULT_PROMPT_TOKENS})")
    p.add_argument("--context-tokens", type=positive_int, default=None,
                   help=f"tokens of context held in the KV cache (default: the plan file's "
                   f"scenario:, else prompt + {DEFAULT_GEN_TOKENS})")
    p.add_argument("--runtime", default=None,
                   help="PS runtime for what stays on the CPU: torch or native (default: the "
                   "plan's, else native)")
    p.add_argument("--kv-dtype", default=None, help="KV-cache element type: fp32, bf16, "
                   "fp16 or int8 (default: the plan's kv_dtype:, else fp16)")
    p.add_argument("--sequences", type=positive_int, default=None,
                   help="independent sequences sharing each weight pass (a decode round; at "
                   "most the plan engine's vectors; default: the plan file's scenario:, "
                   "else 1)")
    p.add_argument("--prompt-group", type=positive_int, default=None,
                   help="prompt positions per forward in prefill (default: the plan's "
                   "prompt_group, else its engine's vectors; at most those)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="CPU threads of the runtime (default: every core)")
    add_evidence_options(p)
    p.add_argument("--json", type=Path, default=None, help="also write the projection as JSON")
    p.add_argument("--layers", action="store_true", help="print the per-layer table too")
    p.set_defaults(run=run)


def scenario_for(args: argparse.Namespace, wl: Workload, defaults: dict | None = None,
                 plan_kv: str | None = None) -> Scenario:
    """The scenario the options ask for, with the token counts checked: a decode round at
    ``--context-tokens`` (default: the prompt plus ``DEFAULT_GEN_TOKENS``), or the prompt's
    last forward in prefill (``dse.model.prompt`` prices all its forwards). An option not
    given takes the plan file's ``scenario:`` value (``defaults``), else dse's default."""
    from dse.model.prompt import check_prompt

    defaults = defaults or {}
    args = argparse.Namespace(**vars(args))
    for key in ("phase", "prompt_tokens", "context_tokens", "sequences"):
        if getattr(args, key, None) is None and key in defaults:
            setattr(args, key, defaults[key])
    args.phase = args.phase or "decode"
    args.sequences = 1 if args.sequences is None else args.sequences
    args.kv_dtype = args.kv_dtype or plan_kv or "fp16"
    given = args.prompt_tokens is not None
    prompt = args.prompt_tokens if given else (wl.prompt_tokens or DEFAULT_PROMPT_TOKENS)
    if prompt < 1:
        raise DseError(f"--prompt-tokens: expected an integer >= 1, got {prompt}")
    if args.phase == "prefill" or given:
        check_prompt(prompt, wl.config.max_positions)
    context = args.context_tokens if args.context_tokens is not None else (
        prompt + DEFAULT_GEN_TOKENS)
    if context < 1:
        raise DseError(f"--context-tokens: expected an integer >= 1, got {context}")
    # a decode context needs to hold the prompt only when one was named
    if context < prompt and (given or args.phase == "prefill"):
        raise DseError(f"--context-tokens: expected >= --prompt-tokens ({prompt}): the context "
                       f"holds the prompt, got {context}")
    check_serving(args)
    if args.phase == "prefill":
        if args.sequences != 1:
            raise DseError(f"--sequences: expected 1 with --phase prefill (a prompt is one "
                           f"sequence's), got {args.sequences}")
        return Scenario(args.view, "prefill", prompt, prompt, args.kv_dtype, 1, args.threads)
    if args.prompt_group is not None:
        raise DseError("--prompt-group: expected only with --phase prefill")
    return Scenario(args.view, args.phase, 1, context, args.kv_dtype, args.sequences,
                    args.threads)


def check_round(plan, sequences: int) -> None:
    """A decode round must fit one weight pass of the plan's engines (one line otherwise)."""
    if plan.offload and sequences > plan.design.vectors:
        raise DseError(f"--sequences: expected at most {plan.design.vectors} (the vectors the "
                       f"plan's engine holds per weight pass, engine.vectors), got {sequences}")


def run(args: argparse.Namespace) -> int:
    board = resolve_board(args.board)
    mi = load_model_input(args.model, args.profile)
    wl, source = mi.workload, mi.source
    out = Outputs([*mi.inputs, args.plan, board.path or None,
                   calibration_input(board, args.calibration),
                   validation_input(args.validation), args.fabric])
    if args.json:
        out.claim(args.json, "JSON")
    plan, defaults = load_plan_file(args.plan, wl)
    if args.runtime is not None:
        plan = replace(plan, runtime=check_runtime(args.runtime, "--runtime"))
    # say whether the shipped overlay builds the plan's engine (or which rule it breaks)
    plan = replace(plan, design=mark_buildable(shipped_template(), plan.design, board))
    scenario = scenario_for(args, wl, defaults, plan.kv_dtype)
    from_file = [k for k in ("phase", "prompt_tokens", "context_tokens", "sequences")
                 if k in defaults and getattr(args, k) is None]
    check_round(plan, scenario.sequences)
    ctx = CostContext.resolve(board, args.calibration, args.fabric)
    check_units_fit(plan, ctx.board, ctx.constants, args.plan)
    from dse.validation_data import load_validation

    bands = bands_of(load_validation(args.validation))
    prompt = None
    if scenario.phase == "prefill":
        from dse.model.prompt import prompt_cost

        prompt = prompt_cost(wl, plan, ctx, scenario.m, args.prompt_group, view=args.view,
                             kv_dtype=scenario.kv_dtype, threads=args.threads)
        # the forward shown in detail: the prompt's last (the head and the first token)
        proj = project(wl, plan, ctx, prompt.parts[-1][0].scenario)
    else:
        proj = project(wl, plan, ctx, scenario)
    band = None if bands is None else plan_band(wl, plan, ctx, proj, bands)
    ttft = None
    if bands is not None and prompt is not None:
        ttft = forwards_band(wl, plan, ctx, prompt.parts, bands)
    print(render(proj, board, source, str(args.plan), args.layers, not_measured(wl), prompt,
                 from_file, band, ttft, bands))
    if args.json:
        from dse.report.plan_json import projection_to_dict

        data = projection_to_dict(proj, board, band)
        data["profile"] = source
        data["plan_file"] = str(args.plan)
        data["scenario"]["from_plan_file"] = from_file
        if prompt is not None:
            data["prompt"] = prompt_to_dict(prompt)
            if ttft is not None:
                data["prompt"]["ttft_band_ms"] = None if ttft[0] is None else [
                    round(ttft[0].lo, 6), round(ttft[0].hi, 6)]
                data["prompt"]["never_measured"] = [str(f) for f in ttft[1]]
        out.add(args.json, json_text(data, "projection JSON"), "JSON")
        out.commit()
        print(f"projection written to {args.json}")
    return 0


# -- text rendering (pure) -------------------------------------------------------------------

_ms = numbers.ms
_x = numbers.times


def _phase_text(sc: Scenario, prompt=None) -> str:
    if prompt is not None:
        return (f"prefill of {prompt.prompt_tokens} prompt tokens in {prompt.forwards} "
                f"forward(s) of up to {prompt.group} positions; the last forward (M={sc.m}, "
                f"context {sc.context_tokens}) shown below")
    if sc.sequences > 1:
        return (f"decode, a round of {sc.sequences} sequences (one token each, M=1) sharing "
                f"each weight pass, context {sc.context_tokens} tokens")
    return f"decode, one token (M=1), context {sc.context_tokens} tokens"


def prompt_to_dict(prompt) -> dict:
    """The prompt's figures for the JSON: time to first token, rate, forwards."""
    return {"prompt_tokens": prompt.prompt_tokens, "group": prompt.group,
            "forwards": prompt.forwards, "ttft_ms": round(prompt.ttft_ms, 6),
            "tokens_per_s": round(prompt.tokens_per_s, 6),
            "components_ms": {k: round(v, 6) for k, v in prompt.component_ms().items()},
            "scenarios": [{"m": p.scenario.m, "context_tokens": p.scenario.context_tokens,
                           "logits": p.scenario.logits, "weight": w,
                           "ms": round(p.plan_ms, 6)} for p, w in prompt.parts]}


def _serving_lines(p: Projection, prompt, band=None, ttft=None) -> list[str]:
    """What a round or a prompt gives a user: per-sequence latency and aggregate tok/s, or
    the time to first token (with their bands, if any)."""
    sc = p.scenario
    if prompt is not None:
        iv = ttft[0] if ttft else None
        shown = _ms(prompt.ttft_ms) if iv is None else numbers.interval(iv, _ms)
        return [f"time to first token: {shown} ms for {prompt.prompt_tokens} "
                f"prompt tokens ({prompt.tokens_per_s:.2f} tok/s: {prompt.forwards} forward(s) "
                f"of up to {prompt.group} positions, the head only for the last position)", ""]
    if sc.sequences > 1:
        agg = (f"{p.tokens_per_s:.2f}" if band is None
               else numbers.interval(band.tokens_per_s, numbers.fixed))
        lat = _ms(p.plan_ms) if band is None else numbers.interval(band.ms, _ms)
        return [f"round of {sc.sequences} sequences: per-sequence latency {lat} ms "
                f"({1e3 / p.plan_ms:.2f} tok/s each), aggregate {agg} tok/s", ""]
    return []


def render(p: Projection, board: Board, source: str, plan_file: str, layers: bool,
           unmeasured: tuple[str, ...] = (), prompt=None,
           from_file: list[str] | tuple[str, ...] = (), band=None, ttft=None,
           bands=None) -> str:
    """The report ``dse project`` prints (pure); ``prompt``: the prefill's ``PromptCost``;
    ``from_file``: the scenario fields the plan file's ``scenario:`` set (no option overrode
    them); ``band``: the forward's ``ProjectionBand`` and ``ttft`` the prompt's (interval,
    flags), from ``bands``."""
    from dse.report.identity import scenario_key, scenario_text

    plan, sc, d = p.plan, p.scenario, p.plan.design
    scen = scenario_text(scenario_key(sc, p.calibration), "en").replace("`", "")
    lines = [
        f"board: {board.name} ({board.part})",
        f"profile: {source}",
        f"plan: {plan.name} (plan {plan.identity}, {plan_file}); {len(plan.offload)} layers "
        f"offloaded in {len(p.calls)} calls, {len(plan.resident)} resident, fuse "
        f"{'on' if plan.fuse else 'off'}",
        f"scenario: {scen}" + (f" ({', '.join(from_file)} from the plan file's scenario:)"
                               if from_file else ""),
        *([f"plan note: {plan.note}"] if plan.note else []),
        f"view: {VIEW_TEXT[sc.view]}",
        f"phase: {_phase_text(sc, prompt)}",
        f"calibration: {p.calibration}",
        f"engine design: {d.label()} (stream {d.stream_bits} bit, max K {d.max_k})",
        f"overlay: {plan.build_note or 'not checked against the engine template'}",
        "",
        f"PS runtime: {RUNTIME_TEXT[plan.runtime]}; CPU {p.cpu}, {p.threads} thread(s)",
        "",
        *_serving_lines(p, prompt, band, ttft),
        "end to end (ms per " + ("forward" if sc.phase == "decode" else "prompt forward")
        + (", 90% bands" if band is not None else "") + "):",
        text_table(["plan ms", "tok/s", "bound", "DDR floor ms"],
                   [[_ms(p.plan_ms) if band is None else numbers.interval(band.ms, _ms),
                     f"{p.tokens_per_s:.2f}" if band is None
                     else numbers.interval(band.tokens_per_s, numbers.fixed),
                     p.bound, _ms(p.ddr_floor_ms)]]),
        *band_lines(band, ttft, bands),
        f"DDR floor: {p.ddr_weight_bytes:,} streamed weight bytes / "
        f"{board.ddr.peak_bandwidth_gb_s:g} GB/s peak DDR bandwidth",
        "",
        "CPU-only baselines (everything on the CPU):",
        text_table(["runtime", "ms", "speedup of the plan", "memory MiB", "fits the board"],
                   [[b.runtime, _ms(b.ms), _x(b.ms / p.plan_ms), f"{b.memory_bytes / 2**20:,.0f}",
                     "yes" if b.feasible else f"NO ({b.reason})"] for b in p.baselines]
                   + [[r, "not measured (no profile)", "", "", ""] for r in unmeasured]),
        "",
        "where a token goes (ms per forward):",
        text_table(["component", "ms", "share"],
                   [[k, _ms(v), f"{v / p.plan_ms:.1%}"] for k, v in p.components.items()
                    if v > 0]),
        "",
        "resources:",
        text_table(["resource", "used", "available", "utilization", "cap", "status"],
                   [_resource_row(p, board, kind) for kind in Resources.KINDS]),
        f"memory (DDR): needs {p.memory_bytes / 2**20:,.1f} MiB of "
        f"{p.memory_capacity_bytes / 2**20:,.0f} MiB "
        f"({p.memory_bytes / p.memory_capacity_bytes:.0%})",
    ]
    if p.evidence is not None:
        lines += [f"resource basis: {p.evidence.resource_basis}",
                  f"clock evidence: {p.evidence.clock_line}"]
        if p.evidence.beyond:
            lines.append(f"warning: what-if: the plan's {p.plan.design.clock_mhz:g} MHz is "
                         "beyond what the clock evidence supports")
    lines.append("")
    if p.feasible:
        lines.append("feasibility: feasible")
    else:
        lines.append("feasibility: INFEASIBLE: " + "; ".join(map(str, p.infeasible)))
    if layers:
        lines += ["", "per layer:", _layer_table(p)]
    for note in p.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def _resource_row(p: Projection, board: Board, kind: str) -> list[str]:
    used = getattr(p.resources, kind)
    have = getattr(board.pl, kind)
    cap = getattr(board.caps, kind)
    util = p.utilization[kind]
    over = util > cap + 1e-12
    return [kind.upper() if kind != "bram36" else "BRAM36", f"{used:,.0f}", f"{have:,}",
            f"{util:.1%}", f"{cap:.0%}", "OVER CAP" if over else "ok"]


def _layer_table(p: Projection) -> str:
    rows = []
    for r in p.layers:
        speedup = r.cpu_ms / r.time_ms if r.time_ms > 0 else float("inf")
        rows.append([r.name, r.placement, _ms(r.cpu_ms), _ms(r.time_ms), _x(speedup),
                     r.bound or "cpu"])
    ops = [[o.role, o.device, "", _ms(o.time_ms), "", f"{o.bound}: {o.basis}"] for o in p.ops]
    return text_table(["layer / operator", "placement", "CPU ms", "plan ms",
                       "speedup vs CPU", "bound"], rows + ops)
