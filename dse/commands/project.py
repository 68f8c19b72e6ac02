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

from dse.commands.common import calibration_input, check_serving, positive_int
from dse.commands.model_input import MODEL_HELP, load_model_input, not_measured
from dse.errors import DseError
from dse.io import Outputs, json_text
from dse.model.board import Board, resolve_board
from dse.model.cpu import RUNTIME_TEXT, check_runtime
from dse.model.engine import Resources
from dse.model.plan_file import check_units_fit, load_plan_file
from dse.model.project import VIEW_TEXT, VIEWS, CostContext, Projection, Scenario, project
from dse.model.template import mark_buildable, shipped_template
from dse.model.workload import Workload
from dse.report import numbers
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
                   help="decode (one token, M=1) or prefill (M = --prompt-tokens); default: "
                   "the plan file's scenario:, else decode")
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
                   help="independent sequences sharing each weight pass (batched decode; "
                   "default: the plan file's scenario:, else 1)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="CPU threads of the runtime (default: every core)")
    p.add_argument("--calibration", default=None,
                   help="calibration file to apply (default: the board file's calibration: "
                   "field, else none; 'none' ignores that field)")
    p.add_argument("--fabric", default=None,
                   help="fabric evidence file: synthesis relation, IP rows, clock closures "
                   "(default: the shipped dse/data/fabric.yaml)")
    p.add_argument("--json", type=Path, default=None, help="also write the projection as JSON")
    p.add_argument("--layers", action="store_true", help="print the per-layer table too")
    p.set_defaults(run=run)


def scenario_for(args: argparse.Namespace, wl: Workload, defaults: dict | None = None,
                 plan_kv: str | None = None) -> Scenario:
    """The scenario the options ask for, with the token counts checked; an option not given
    takes the plan file's ``scenario:`` value (``defaults``), else dse's default."""
    defaults = defaults or {}
    args = argparse.Namespace(**vars(args))
    for key in ("phase", "prompt_tokens", "context_tokens", "sequences"):
        if getattr(args, key, None) is None and key in defaults:
            setattr(args, key, defaults[key])
    args.phase = args.phase or "decode"
    args.sequences = 1 if args.sequences is None else args.sequences
    args.kv_dtype = args.kv_dtype or plan_kv or "fp16"
    prompt = args.prompt_tokens if args.prompt_tokens is not None else (
        wl.prompt_tokens or DEFAULT_PROMPT_TOKENS)
    if prompt < 1:
        raise DseError(f"--prompt-tokens: expected an integer >= 1, got {prompt}")
    context = args.context_tokens if args.context_tokens is not None else (
        prompt + DEFAULT_GEN_TOKENS)
    if context < 1:
        raise DseError(f"--context-tokens: expected an integer >= 1, got {context}")
    if context < prompt:
        raise DseError(f"--context-tokens: expected >= --prompt-tokens ({prompt}): the context "
                       f"holds the prompt, got {context}")
    m = prompt if args.phase == "prefill" else 1
    if args.phase == "prefill" and args.context_tokens is None:
        context = prompt
    check_serving(args)
    return Scenario(args.view, args.phase, m, context, args.kv_dtype, args.sequences,
                    args.threads)


def run(args: argparse.Namespace) -> int:
    board = resolve_board(args.board)
    mi = load_model_input(args.model, args.profile)
    wl, source = mi.workload, mi.source
    out = Outputs([*mi.inputs, args.plan, board.path or None,
                   calibration_input(board, args.calibration)])
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
    ctx = CostContext.resolve(board, args.calibration, args.fabric)
    check_units_fit(plan, ctx.board, ctx.constants, args.plan)
    proj = project(wl, plan, ctx, scenario)
    print(render(proj, board, source, str(args.plan), args.layers, not_measured(wl),
                 from_file))
    if args.json:
        from dse.report.plan_json import projection_to_dict

        data = projection_to_dict(proj, board)
        data["profile"] = source
        data["plan_file"] = str(args.plan)
        data["scenario"]["from_plan_file"] = from_file
        out.add(args.json, json_text(data, "projection JSON"), "JSON")
        out.commit()
        print(f"projection written to {args.json}")
    return 0


# -- text rendering (pure) -------------------------------------------------------------------

_ms = numbers.ms
_x = numbers.times


def _phase_text(sc: Scenario) -> str:
    if sc.phase == "prefill":
        return f"prefill of {sc.m} prompt tokens (M={sc.m}), context {sc.context_tokens} tokens"
    return f"decode, one token (M=1), context {sc.context_tokens} tokens"


def render(p: Projection, board: Board, source: str, plan_file: str, layers: bool,
           unmeasured: tuple[str, ...] = (), from_file: list[str] | tuple[str, ...] = ()
           ) -> str:
    """The report ``dse project`` prints (pure). ``from_file``: the scenario fields the plan
    file's ``scenario:`` set (no option overrode them)."""
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
        f"phase: {_phase_text(sc)}",
        f"calibration: {p.calibration}",
        f"engine design: {d.label()} (stream {d.stream_bits} bit, max K {d.max_k})",
        f"overlay: {plan.build_note or 'not checked against the engine template'}",
        "",
        f"PS runtime: {RUNTIME_TEXT[plan.runtime]}; CPU {p.cpu}, {p.threads} thread(s)",
        "",
        "end to end (ms per " + ("token" if sc.phase == "decode" else "prefill") + "):",
        text_table(["plan ms", "tok/s", "bound", "DDR floor ms"],
                   [[_ms(p.plan_ms), f"{p.tokens_per_s:.2f}", p.bound, _ms(p.ddr_floor_ms)]]),
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
