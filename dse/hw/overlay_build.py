"""The Vivado flow's arguments, checked against the engine template (run by the Makefile).

``overlays/vivado/Makefile`` calls ``python -m dse.hw.overlay_build`` with the board and a
plan's engine parameters; this prints the ``-tclargs`` of ``build_overlay.tcl`` (the packing
code, the derived stream widths and the HP port of each engine, all from
``overlays/ternary_gemv.yaml``; the result stream is 32*PE*VPC bits), or one line naming the
template rule the configuration breaks and exits with status 2. So the Tcl keeps no copy of the
build rules: it builds what it is given.

``--attn N`` adds N instances of the attention unit kv_attn (the template's ``attention:``
section, up to its ``max_units``): their parameters default to the section's ``defaults``
(``--attn-g`` etc. override them; HMAX is what each instance holds, the driver dealing the kv
heads out with ``dse.model.units.instance_split``), are checked against its rules, and reach
the Tcl as one last argument ``N,G,D,HMAX,TMAX,in_bits,out_bits`` (``none`` without the
unit).
"""

from __future__ import annotations

import argparse
import sys

from dse.errors import DseError
from dse.model.board import Board, resolve_board
from dse.model.template import EngineTemplate, load_template, shipped_template_path

#: build_overlay.tcl's PS kind per board family (the MPSoC PS on ZU+ and RFSoC).
PS_KIND = {"zynqmp": "zynqmp", "rfsoc": "zynqmp", "zynq7000": "zynq7"}
#: HP port data widths each PS kind offers: Zynq-7000's S_AXI_HP0-3 are 32 or 64 bits (UG585
#: ch. 5), Zynq UltraScale+'s S_AXI_HP0-3_FPD 32, 64 or 128 (PG201).
HP_BITS = {"zynq7": (32, 64), "zynqmp": (32, 64, 128)}


#: build_overlay.tcl's last argument when the overlay has no attention unit.
NO_ATTN = "none"
ATTN_PARAMS = ("g", "d", "hmax", "tmax")


def attn_arg(t: EngineTemplate, attn: dict[str, int] | None) -> str:
    """The Tcl's attention argument for ``attn`` (kv_attn's instance count and G, D, HMAX,
    TMAX; None: no unit), checked against the template's ``attention:`` section (pure;
    ``DseError`` if broken)."""
    if attn is None:
        return NO_ATTN
    count = attn.get("count", 1)
    at = t.attention
    if at is None:
        raise DseError(f"{t.path}: cannot build ATTN={count}: the template has no attention "
                       f"section")
    why = at.violations(**{k: attn[k] for k in ATTN_PARAMS}, count=count)
    if why:
        shown = " ".join(f"{k.upper()}={attn[k]}" for k in ATTN_PARAMS)
        raise DseError(f"{t.path}: cannot build {count} attention unit(s) {shown}: {why[0]}")
    return ",".join(str(v) for v in (count, *(attn[k] for k in ATTN_PARAMS), at.stream_bits,
                                     at.out_bits(attn["g"])))


def tcl_args(t: EngineTemplate, board: Board, *, pe: int, simd: int, packing: str, vmax: int,
             kmax: int, engines: int, clock_mhz: float, name: str, out_dir: str,
             attn: dict[str, int] | None = None, vpc: int = 1) -> list[str]:
    """The build's ``-tclargs``; a ``DseError`` naming the first rule broken (pure).

    ``attn``: kv_attn's parameters (G, D, HMAX, TMAX as g, d, hmax, tmax), or None for an
    overlay without the attention unit."""
    why = t.violations(pe=pe, simd=simd, packing=packing, engines=engines, vectors=vmax,
                       max_k=kmax, clock_mhz=clock_mhz, family=board.family,
                       board_hp_ports=board.link.hp_ports, vectors_per_clock=vpc)
    if clock_mhz > board.clock.max_mhz:
        why.append(f"clock {clock_mhz:g} MHz: the board file allows up to "
                   f"{board.clock.max_mhz:g} MHz")
    widths = HP_BITS[PS_KIND[board.family]]
    if board.link.port_width_bits not in widths:
        why.append(f"link.port_width_bits {board.link.port_width_bits}: a "
                   f"{board.family} HP port is {' or '.join(map(str, widths))} bits wide")
    if why:
        raise DseError(f"{t.path}: cannot build PE={pe} SIMD={simd} {packing} VMAX={vmax} "
                       f"VPC={vpc} KMAX={kmax} ENGINES={engines} for {board.stem}: {why[0]}")
    attention = attn_arg(t, attn)
    in_bits = t.stream_bits(pe, simd, packing)
    ports = t.ports_for(board.family)[:engines]
    return [board.stem, PS_KIND[board.family], board.part, f"{clock_mhz:g}", name, out_dir,
            str(pe), str(simd), str(t.packing_codes[packing]), str(vmax), str(vpc), str(kmax),
            str(engines), str(in_bits), str(32 * pe * vpc), ",".join(ports),
            str(board.link.port_width_bits), attention]


def attn_request(t: EngineTemplate, attn: str, overrides: dict[str, str | None]
                 ) -> dict[str, int] | None:
    """``--attn`` (0, or how many kv_attn instances) and the ``--attn-*`` overrides (the
    Makefile's ATTN, ATTN_G, ..., as text so a bad value gets the flow's one-line error) ->
    kv_attn's parameters with ``count``, or None."""
    top = t.attention.max_units if t.attention is not None else 1
    if not attn.isdigit() or int(attn) > top:
        raise DseError(f"ATTN={attn}: expected 0 (no attention unit) to {top} (that many "
                       f"kv_attn instances)")
    given = {k: v for k, v in overrides.items() if v is not None}
    if attn == "0":
        if given:
            raise DseError(f"ATTN_{next(iter(given)).upper()} given without ATTN=1..{top}")
        return None
    if t.attention is None:
        raise DseError(f"{t.path}: cannot build ATTN={attn}: the template has no attention "
                       f"section")
    out = {**t.attention.default, "count": int(attn)}
    for k, v in given.items():
        if not v.isdigit():
            raise DseError(f"ATTN_{k.upper()}={v}: expected a positive integer")
        out[k] = int(v)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", required=True, help="board YAML or name")
    ap.add_argument("--template", default=None, help="engine template (default: the shipped)")
    for name in ("pe", "simd", "vmax", "kmax", "engines"):
        ap.add_argument(f"--{name}", type=int, required=True)
    ap.add_argument("--vpc", type=int, default=1, help="vectors answered per clock (VPC)")
    ap.add_argument("--packing", required=True)
    ap.add_argument("--clock-mhz", type=float, default=None,
                    help="PL clock (default: the board file's clock.typical_mhz)")
    ap.add_argument("--name", default=None, help="output base name")
    ap.add_argument("--out", default="build")
    ap.add_argument("--attn", default="0",
                    help="N: add N instances of the attention unit kv_attn (0: none)")
    for k in ATTN_PARAMS:
        ap.add_argument(f"--attn-{k}", default=None,
                        help=f"kv_attn {k.upper()} (default: the template's)")
    args = ap.parse_args(argv)
    try:
        board = resolve_board(args.board)
        t = load_template(args.template or shipped_template_path())
        clock = args.clock_mhz if args.clock_mhz is not None else board.clock.typical_mhz
        attn = attn_request(t, args.attn, {k: getattr(args, f"attn_{k}") for k in ATTN_PARAMS})
        name = args.name or (f"tgemv_{board.stem.replace('-', '_')}_{args.packing}_"
                             f"{args.pe}x{args.simd}_v{args.vmax}"
                             + (f"c{args.vpc}" if args.vpc != 1 else "")
                             + (f"_x{args.engines}" if args.engines > 1 else "")
                             + (f"_attn{attn['count']}" if attn else ""))
        out = tcl_args(t, board, pe=args.pe, simd=args.simd, packing=args.packing,
                       vmax=args.vmax, kmax=args.kmax, engines=args.engines, clock_mhz=clock,
                       name=name, out_dir=args.out, attn=attn, vpc=args.vpc)
    except DseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(" ".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
