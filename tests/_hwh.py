"""A Vivado hardware handoff (.hwh) as the overlay's flow would write it, for the board
doctor's tests: the PS block with PL clock 0, each ternary_gemv and kv_attn with its
parameters (the subset of the real file ``dse.hw.doctor`` and pynq read)."""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from dse.hw.regs import PACKING_CODES


def hwh_text(engines: list[dict], attention: list[dict] = (), clock_mhz: float = 250.0,
             family: str = "zynqmp") -> str:
    """``engines``: {pe, simd, packing, vmax, kmax} each; ``attention``: {g, d, hmax, tmax}."""
    if family == "zynq7000":
        ps = ("processing_system7_0", "processing_system7",
              "xilinx.com:ip:processing_system7:5.5",
              {"PCW_FPGA0_PERIPHERAL_FREQMHZ": f"{clock_mhz:g}",
               "PCW_ACT_FPGA0_PERIPHERAL_FREQMHZ": f"{clock_mhz:.6f}"})
    else:
        ps = ("zynq_ultra_ps_e_0", "zynq_ultra_ps_e", "xilinx.com:ip:zynq_ultra_ps_e:3.4",
              {"PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ": f"{clock_mhz:g}",
               "PSU__CRL_APB__PL0_REF_CTRL__ACT_FREQMHZ": f"{clock_mhz:.6f}"})
    mods = [ps]
    for i, e in enumerate(engines):
        mods.append((f"ternary_gemv_{i}", "ternary_gemv", "dse:hls:ternary_gemv:1.0",
                     {"PE": e["pe"], "SIMD": e["simd"], "PACKING": PACKING_CODES[e["packing"]],
                      "VMAX": e["vmax"], "KMAX": e["kmax"]}))
    for i, a in enumerate(attention):
        mods.append((f"kv_attn_{i}", "kv_attn", "dse:hls:kv_attn:1.0",
                     {"G": a["g"], "D": a["d"], "HMAX": a["hmax"], "TMAX": a["tmax"]}))
    lines = ['<?xml version="1.0" encoding="UTF-8" standalone="no" ?>',
             '<EDKSYSTEM EDWVERSION="1.2" VIVADOVERSION="2024.1">',
             "  <MODULES>"]
    for inst, modtype, vlnv, params in mods:
        lines.append(f"    <MODULE FULLNAME={quoteattr('/' + inst)} INSTANCE={quoteattr(inst)} "
                     f"MODTYPE={quoteattr(modtype)} VLNV={quoteattr(vlnv)}>")
        lines.append("      <PARAMETERS>")
        lines += [f"        <PARAMETER NAME={quoteattr(k)} VALUE={quoteattr(str(v))}/>"
                  for k, v in params.items()]
        lines += ["      </PARAMETERS>", "    </MODULE>"]
    lines += ["  </MODULES>", "</EDKSYSTEM>", ""]
    return "\n".join(lines)
