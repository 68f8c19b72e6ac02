"""The register contract as the RTL states it, read out of the Verilog: the shared control
slave's offsets (overlays/rtl/axil_ctrl.v's ADDR_*/STEP_* localparams) and each unit's
``axil_ctrl`` instantiation (ID, version, arguments and their reset values, build words), so
the RTL tests can hold both to dse/hw/regs.py's table."""

from __future__ import annotations

import re
from pathlib import Path

RTL = Path(__file__).resolve().parents[1] / "overlays" / "rtl"


def _number(text: str) -> int:
    """A Verilog number: ``32'h5447_4d56``, ``32'd1``, ``8'h10`` or a plain integer."""
    m = re.fullmatch(r"\s*(?:\d+)?'([hdb])([0-9a-fA-F_]+)\s*", text)
    if not m:
        return int(text)
    return int(m.group(2).replace("_", ""), {"h": 16, "d": 10, "b": 2}[m.group(1)])


def _strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*", "", text)


def common_offsets() -> tuple[dict[str, int], dict[str, int]]:
    """axil_ctrl.v's ``ADDR_<name>`` and ``STEP_<name>`` localparams by name."""
    text = _strip_comments((RTL / "axil_ctrl.v").read_text())
    found = {kind: {m.group(1): _number(m.group(2)) for m in re.finditer(
        rf"localparam \[7:0\] {kind}_(\w+)\s*=\s*([^;]+);", text)} for kind in ("ADDR", "STEP")}
    return found["ADDR"], found["STEP"]


def unit_contract(verilog: str) -> dict:
    """What a unit's RTL passes to axil_ctrl and how it names the arguments it gets back:
    ``nargs``, ``arg_reset`` (argument 0 first), ``id``, ``version``, ``nbuild``, ``build``
    (word 0 first: the names of the unit's parameters or localparams) and ``args`` (the
    argument names by index, from ``wire [31:0] arg_<name> = ctrl_args[32*i +: 32]``)."""
    text = _strip_comments((RTL / verilog).read_text())
    inst = re.search(r"axil_ctrl\s*#\((.*?)\)\s*u_ctrl\s*\(", text, re.DOTALL)
    if not inst:
        raise AssertionError(f"{verilog}: no axil_ctrl #(...) u_ctrl instance")
    params = {m.group(1): m.group(2).strip()
              for m in re.finditer(r"\.(\w+)\(([^()]*)\)", inst.group(1))}

    def concat(name: str) -> list[str]:   # {MSB, ..., LSB}: element 0 is the last
        body = params[name]
        assert body.startswith("{") and body.endswith("}"), (verilog, name, body)
        return [v.strip() for v in body[1:-1].split(",")][::-1]

    args = {int(m.group(2)): m.group(1).upper() for m in re.finditer(
        r"wire \[31:0\] arg_(\w+)\s*=\s*ctrl_args\[32\*(\d+) \+: 32\];", text)}
    return {
        "nargs": int(params["NARGS"]), "nbuild": int(params["NBUILD"]),
        "arg_reset": [_number(v) for v in concat("ARG_RESET")],
        "id": _number(params["ID_VALUE"]), "version": _number(params["VERSION_VALUE"]),
        "build": concat("BUILD_WORDS"), "args": [args[i] for i in sorted(args)],
        "ctrl_args_width": re.search(r"wire \[32\*(\d+)-1:0\] ctrl_args;", text).group(1),
    }


def check_unit(verilog: str, regmap) -> None:
    """Assert the unit's axil_ctrl instantiation says what ``regmap`` (a
    ``dse.hw.regs.RegisterMap``) says."""
    got = unit_contract(verilog)
    assert got["id"] == regmap.id_value, (verilog, hex(got["id"]), regmap.id_text)
    assert got["version"] == regmap.version, (verilog, got["version"], regmap.version)
    assert got["args"] == list(regmap.args), (verilog, got["args"], regmap.args)
    assert got["nargs"] == len(regmap.args) == int(got["ctrl_args_width"]), got
    assert got["arg_reset"] == list(regmap.arg_reset), (verilog, got["arg_reset"])
    assert got["build"] == list(regmap.build), (verilog, got["build"], regmap.build)
    assert got["nbuild"] == len(regmap.build), got
