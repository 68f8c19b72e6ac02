# Build a PYNQ overlay around ternary_gemv: <name>.bit and <name>.hwh, same base name.
#
# Target: Vivado 2022.1 (the release PYNQ v3.0 images and overlays were built with); IP
# versions are looked up, not pinned, so later releases work too.
#
# Usage (the Makefile passes these, from dse.hw.overlay_build; see overlays/README.md):
#   vivado -mode batch -source build_overlay.tcl -tclargs \
#       <board> <ps_kind> <part> <clock_mhz> <name> <out_dir> <PE> <SIMD> <PACKING> <VMAX> \
#       <VPC> <KMAX> <ENGINES> <in_bits> <out_bits> <hp_ports> <hp_bits> <attn>
#   VPC: vectors answered per clock; out_bits is the result beat, 32*PE*VPC;
#   ps_kind: zynqmp | zynq7; hp_ports: comma-separated PS slave ports, one per engine;
#   hp_bits: their data width, the board file's link.port_width_bits (64 on Zynq-7000's
#   S_AXI_HP, up to 128 on Zynq UltraScale+'s S_AXI_HP_FPD); a DMA wider than its port
#   reaches it through its SmartConnect's width converter;
#   attn: "none", or N,G,D,HMAX,TMAX,in_bits,out_bits: N attention units (ATTN=N).
#
# Why the widths come in as arguments: what the RTL and the DMA can build is the engine
# template's to say (overlays/ternary_gemv.yaml); dse.hw.overlay_build checks a configuration
# against it and derives the stream widths and ports, so this script keeps no copy of the rules.
#
# Block design: the PS (Zynq UltraScale+ MPSoC or Zynq-7000) runs one PL clock at
# <clock_mhz>; its HPM0 master reaches every engine's AXI4-Lite control and every AXI DMA's
# registers through one SmartConnect. Engine i has its own AXI DMA (simple mode, 26-bit length
# register, no scatter-gather): MM2S streams weights and activations into the engine, S2MM
# takes its results back, both through a SmartConnect of its own onto its own HP port
# (the i-th of <hp_ports>), so the engines never share a port.
#
# With <attn>: N attention units kv_attn_<a> (overlays/KV_ATTN.md), each with its own AXI DMA
# (axi_dma_attn_<a>, simple mode) whose two masters join the data SmartConnect of engine
# (a mod ENGINES), so unit a shares that engine's HP port: in a decode step the engines and the
# units never run at the same time (units on one port share its beats; the cost model counts
# it). Each unit's DMA and control slave take the control SmartConnect's next two outputs,
# after the engines'.
#
# DSE_VIVADO_DRY_RUN=1 in the environment skips the output copies (tests run this script in
# plain tclsh with Vivado's commands stubbed, to check the flow's Tcl beyond its syntax).

set script_dir [file normalize [file dirname [info script]]]
set ::tgemv_sourced 1
source [file join $script_dir package_ip.tcl]

if {[llength $::argv] != 18} {
    error "usage: -tclargs board ps_kind part clock_mhz name out_dir PE SIMD PACKING VMAX VPC\
           KMAX ENGINES in_bits out_bits hp_ports hp_bits attn (see overlays/vivado/Makefile)"
}
lassign $::argv board ps_kind part clock_mhz name out_dir PE SIMD PACKING VMAX VPC KMAX \
    ENGINES in_bits out_bits hp_ports hp_bits attn
set out_dir [file normalize $out_dir]
set dry_run [expr {[info exists ::env(DSE_VIVADO_DRY_RUN)] && $::env(DSE_VIVADO_DRY_RUN)}]
set ports [split $hp_ports ,]
if {[llength $ports] != $ENGINES} {
    error "ENGINES=$ENGINES but [llength $ports] HP ports given ($hp_ports): one port per engine"
}
if {$attn eq "none"} {
    set ATTN 0
} else {
    set attn_fields [split $attn ,]
    if {[llength $attn_fields] != 7} {
        error "attn '$attn': expected none or N,G,D,HMAX,TMAX,in_bits,out_bits"
    }
    lassign $attn_fields ATTN ATTN_G ATTN_D ATTN_HMAX ATTN_TMAX attn_in_bits attn_out_bits
    if {![string is integer -strict $ATTN] || $ATTN < 1 || 2 * ($ENGINES + $ATTN) > 16} {
        error "attn '$attn': N must be 1.. with 2 * (ENGINES + N) <= 16 control ports"
    }
}
# engine e's data SmartConnect takes the DMAs of the units a with a mod ENGINES == e
proc units_on {e} {
    set out {}
    for {set a 0} {$a < $::ATTN} {incr a} {
        if {$a % $::ENGINES == $e} { lappend out $a }
    }
    return $out
}

# ---- board presets (Vivado board files; any other board builds for its bare part) ----------
switch -- $board {
    zcu104 { set board_part "xilinx.com:zcu104:part0:1.1"; set board_conn {} }
    kv260 {
        set board_part "xilinx.com:kv260_som:part0:1.4"
        set board_conn {som240_1_connector xilinx.com:kv260_carrier:som240_1_connector:1.3}
    }
    pynq-z2 { set board_part "tul.com.tw:pynq-z2:part0:1.0"; set board_conn {} }
    pynq-z1 { set board_part "www.digilentinc.com:pynq-z1:part0:1.0"; set board_conn {} }
    default { set board_part ""; set board_conn {} }
}
if {$ps_kind ni {zynqmp zynq7}} { error "ps_kind '$ps_kind': expected zynqmp or zynq7" }
# HP port widths each PS offers (UG585 S_AXI_HP: 32/64; PG201 S_AXI_HP_FPD: 32/64/128)
set hp_widths [expr {$ps_kind eq "zynq7" ? {32 64} : {32 64 128}}]
if {$hp_bits ni $hp_widths} {
    error "hp_bits '$hp_bits': expected one of $hp_widths for $ps_kind HP ports"
}

# HP port index of each engine's port (S_AXI_HP<i>_FPD or S_AXI_HP<i>).
set port_idx {}
foreach port $ports {
    if {![regexp {^S_AXI_HP([0-3])(_FPD)?$} $port -> i]} {
        error "HP port '$port': expected S_AXI_HP0..3 (_FPD on Zynq UltraScale+)"
    }
    lappend port_idx $i
}

# Latest installed version of a Xilinx IP (so the script is not tied to one release).
proc ipdef {name} {
    set defs [lsort -dictionary [get_ipdefs -all "xilinx.com:ip:${name}:*"]]
    if {![llength $defs]} { error "IP xilinx.com:ip:$name not found in this Vivado" }
    return [lindex $defs end]
}

# An AXI DMA in simple mode (26-bit length register, no scatter-gather), MM2S streaming
# <in_bits> into a unit and S2MM taking its <out_bits> results back: every DMA of the overlay.
proc add_dma {cell in_bits out_bits} {
    set dma [create_bd_cell -type ip -vlnv [ipdef axi_dma] $cell]
    set_property -dict [list \
        CONFIG.c_include_sg {0} \
        CONFIG.c_sg_length_width {26} \
        CONFIG.c_sg_include_stscntrl_strm {0} \
        CONFIG.c_include_mm2s {1} \
        CONFIG.c_include_s2mm {1} \
        CONFIG.c_include_mm2s_dre {0} \
        CONFIG.c_include_s2mm_dre {0} \
        CONFIG.c_m_axi_mm2s_data_width $in_bits \
        CONFIG.c_m_axis_mm2s_tdata_width $in_bits \
        CONFIG.c_m_axi_s2mm_data_width $out_bits \
        CONFIG.c_s_axis_s2mm_tdata_width $out_bits \
        CONFIG.c_mm2s_burst_size {64} \
        CONFIG.c_s2mm_burst_size {64} \
    ] $dma
    return $dma
}

# ---- project ---------------------------------------------------------------------------------
set proj_dir [file join $out_dir _vivado_$name]
set ip_repo [file join $out_dir _ip_repo]
package_ternary_gemv $ip_repo $part
if {$ATTN} { package_kv_attn $ip_repo $part }

create_project -force $name $proj_dir -part $part
if {$board_part ne "" && [llength [get_board_parts -quiet $board_part]]} {
    set_property board_part $board_part [current_project]
    if {[llength $board_conn]} {
        set_property board_connections $board_conn [current_project]
    }
    set have_board 1
} else {
    puts "WARNING: board files $board_part are not installed: building for part $part with the\
          PS defaults (PYNQ's image configures the PS at boot; only the PL clock matters here)"
    set have_board 0
}
set_property ip_repo_paths [list $ip_repo] [current_project]
update_ip_catalog

create_bd_design $name

# ---- processing system -------------------------------------------------------------------------
if {$ps_kind eq "zynqmp"} {
    set ps [create_bd_cell -type ip -vlnv [ipdef zynq_ultra_ps_e] ps]
    if {$have_board} {
        apply_bd_automation -rule xilinx.com:bd_rule:zynq_ultra_ps_e \
            -config {apply_board_preset "1"} $ps
    }
    set cfg [list \
        CONFIG.PSU__USE__M_AXI_GP0 {1} \
        CONFIG.PSU__USE__M_AXI_GP1 {0} \
        CONFIG.PSU__USE__M_AXI_GP2 {0} \
        CONFIG.PSU__FPGA_PL0_ENABLE {1} \
        CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ $clock_mhz]
    # S_AXI_HP<i>_FPD is the PS's S_AXI_GP<i+2>
    foreach i $port_idx {
        set gp [expr {$i + 2}]
        lappend cfg CONFIG.PSU__USE__S_AXI_GP$gp {1} CONFIG.PSU__SAXIGP${gp}__DATA_WIDTH $hp_bits
    }
    set_property -dict $cfg $ps
    set ps_master [get_bd_intf_pins ps/M_AXI_HPM0_FPD]
    set ps_clk [get_bd_pins ps/pl_clk0]
    set ps_rstn [get_bd_pins ps/pl_resetn0]
    set ps_aclks [list ps/maxihpm0_fpd_aclk]
    foreach i $port_idx { lappend ps_aclks ps/saxihp${i}_fpd_aclk }
} else {
    set ps [create_bd_cell -type ip -vlnv [ipdef processing_system7] ps]
    if {$have_board} {
        apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 \
            -config {make_external "FIXED_IO, DDR" apply_board_preset "1"} $ps
    }
    set cfg [list \
        CONFIG.PCW_USE_M_AXI_GP0 {1} \
        CONFIG.PCW_EN_CLK0_PORT {1} \
        CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ $clock_mhz]
    foreach i $port_idx {
        lappend cfg CONFIG.PCW_USE_S_AXI_HP$i {1} CONFIG.PCW_S_AXI_HP${i}_DATA_WIDTH $hp_bits
    }
    set_property -dict $cfg $ps
    set ps_master [get_bd_intf_pins ps/M_AXI_GP0]
    set ps_clk [get_bd_pins ps/FCLK_CLK0]
    set ps_rstn [get_bd_pins ps/FCLK_RESET0_N]
    set ps_aclks [list ps/M_AXI_GP0_ACLK]
    foreach i $port_idx { lappend ps_aclks ps/S_AXI_HP${i}_ACLK }
}

# ---- engines, their DMAs and data paths, the control interconnect, reset ----------------------
set rst [create_bd_cell -type ip -vlnv [ipdef proc_sys_reset] rst_pl]
set ctrl_ic [create_bd_cell -type ip -vlnv [ipdef smartconnect] ctrl_ic]
set_property -dict [list CONFIG.NUM_SI {1} CONFIG.NUM_MI [expr {2 * $ENGINES + 2 * $ATTN}]] \
    $ctrl_ic
connect_bd_intf_net $ps_master [get_bd_intf_pins ctrl_ic/S00_AXI]
set clk_pins [concat $ps_aclks {ctrl_ic/aclk rst_pl/slowest_sync_clk}]
set rst_pins {ctrl_ic/aresetn}

for {set e 0} {$e < $ENGINES} {incr e} {
    set port [lindex $ports $e]
    set eng [create_bd_cell -type ip -vlnv dse:hls:ternary_gemv:1.0 ternary_gemv_$e]
    set_property -dict [list CONFIG.PE $PE CONFIG.SIMD $SIMD CONFIG.PACKING $PACKING \
        CONFIG.VMAX $VMAX CONFIG.VPC $VPC CONFIG.KMAX $KMAX] $eng

    add_dma axi_dma_$e $in_bits $out_bits

    # engine e's data SmartConnect also takes the DMAs of the attention units on its port
    set data_ic [create_bd_cell -type ip -vlnv [ipdef smartconnect] data_ic_$e]
    set n_si [expr {2 + 2 * [llength [units_on $e]]}]
    set_property -dict [list CONFIG.NUM_SI $n_si CONFIG.NUM_MI {1}] $data_ic

    set mi_dma [format "ctrl_ic/M%02d_AXI" [expr {2 * $e}]]
    set mi_eng [format "ctrl_ic/M%02d_AXI" [expr {2 * $e + 1}]]
    connect_bd_intf_net [get_bd_intf_pins $mi_dma] [get_bd_intf_pins axi_dma_$e/S_AXI_LITE]
    connect_bd_intf_net [get_bd_intf_pins $mi_eng] \
        [get_bd_intf_pins ternary_gemv_$e/s_axi_control]
    connect_bd_intf_net [get_bd_intf_pins axi_dma_$e/M_AXI_MM2S] \
        [get_bd_intf_pins data_ic_$e/S00_AXI]
    connect_bd_intf_net [get_bd_intf_pins axi_dma_$e/M_AXI_S2MM] \
        [get_bd_intf_pins data_ic_$e/S01_AXI]
    connect_bd_intf_net [get_bd_intf_pins data_ic_$e/M00_AXI] [get_bd_intf_pins ps/$port]
    connect_bd_intf_net [get_bd_intf_pins axi_dma_$e/M_AXIS_MM2S] \
        [get_bd_intf_pins ternary_gemv_$e/s_axis]
    connect_bd_intf_net [get_bd_intf_pins ternary_gemv_$e/m_axis] \
        [get_bd_intf_pins axi_dma_$e/S_AXIS_S2MM]
    lappend clk_pins ternary_gemv_$e/ap_clk axi_dma_$e/s_axi_lite_aclk \
        axi_dma_$e/m_axi_mm2s_aclk axi_dma_$e/m_axi_s2mm_aclk data_ic_$e/aclk
    lappend rst_pins ternary_gemv_$e/ap_rst_n axi_dma_$e/axi_resetn data_ic_$e/aresetn
}

# ---- the attention units: each with its own DMA, on engine (a mod ENGINES)'s HP port ---------
for {set a 0} {$a < $ATTN} {incr a} {
    set e [expr {$a % $ENGINES}]
    set slot [lsearch [units_on $e] $a]
    set attn_cell [create_bd_cell -type ip -vlnv dse:hls:kv_attn:1.0 kv_attn_$a]
    set_property -dict [list CONFIG.G $ATTN_G CONFIG.D $ATTN_D CONFIG.HMAX $ATTN_HMAX \
        CONFIG.TMAX $ATTN_TMAX] $attn_cell
    add_dma axi_dma_attn_$a $attn_in_bits $attn_out_bits

    set mi_dma [format "ctrl_ic/M%02d_AXI" [expr {2 * $ENGINES + 2 * $a}]]
    set mi_attn [format "ctrl_ic/M%02d_AXI" [expr {2 * $ENGINES + 2 * $a + 1}]]
    set si_mm2s [format "data_ic_$e/S%02d_AXI" [expr {2 + 2 * $slot}]]
    set si_s2mm [format "data_ic_$e/S%02d_AXI" [expr {3 + 2 * $slot}]]
    connect_bd_intf_net [get_bd_intf_pins $mi_dma] [get_bd_intf_pins axi_dma_attn_$a/S_AXI_LITE]
    connect_bd_intf_net [get_bd_intf_pins $mi_attn] [get_bd_intf_pins kv_attn_$a/s_axi_control]
    connect_bd_intf_net [get_bd_intf_pins axi_dma_attn_$a/M_AXI_MM2S] [get_bd_intf_pins $si_mm2s]
    connect_bd_intf_net [get_bd_intf_pins axi_dma_attn_$a/M_AXI_S2MM] [get_bd_intf_pins $si_s2mm]
    connect_bd_intf_net [get_bd_intf_pins axi_dma_attn_$a/M_AXIS_MM2S] \
        [get_bd_intf_pins kv_attn_$a/s_axis]
    connect_bd_intf_net [get_bd_intf_pins kv_attn_$a/m_axis] \
        [get_bd_intf_pins axi_dma_attn_$a/S_AXIS_S2MM]
    lappend clk_pins kv_attn_$a/ap_clk axi_dma_attn_$a/s_axi_lite_aclk \
        axi_dma_attn_$a/m_axi_mm2s_aclk axi_dma_attn_$a/m_axi_s2mm_aclk
    lappend rst_pins kv_attn_$a/ap_rst_n axi_dma_attn_$a/axi_resetn
}

foreach pin $clk_pins { connect_bd_net $ps_clk [get_bd_pins $pin] }
connect_bd_net $ps_rstn [get_bd_pins rst_pl/ext_reset_in]
foreach pin $rst_pins {
    connect_bd_net [get_bd_pins rst_pl/peripheral_aresetn] [get_bd_pins $pin]
}

assign_bd_address
validate_bd_design
save_bd_design

# ---- implementation ----------------------------------------------------------------------------
set bd_file [get_files $name.bd]
make_wrapper -files $bd_file -top
add_files -norecurse [file join $proj_dir $name.gen sources_1 bd $name hdl ${name}_wrapper.v]
set_property top ${name}_wrapper [current_fileset]
update_compile_order -fileset sources_1

launch_runs impl_1 -to_step write_bitstream -jobs 4
wait_on_run impl_1
if {[get_property PROGRESS [get_runs impl_1]] ne "100%"} {
    error "implementation of $name did not finish: see $proj_dir"
}

# ---- outputs: <name>.bit and <name>.hwh side by side (PYNQ's Overlay needs both) ---------------
set bit [file join $proj_dir $name.runs impl_1 ${name}_wrapper.bit]
set hwh [file join $proj_dir $name.gen sources_1 bd $name hw_handoff $name.hwh]
file mkdir $out_dir
foreach {src dst} [list $bit [file join $out_dir $name.bit] $hwh [file join $out_dir $name.hwh]] {
    if {$dry_run} {
        puts "dry run: would copy $src -> $dst"
    } else {
        file copy -force $src $dst
    }
}
puts "overlay: [file join $out_dir $name.bit] + [file join $out_dir $name.hwh]\
      ($ENGINES x ${in_bits}-bit in, ${out_bits}-bit out on $hp_ports ($hp_bits-bit),\
      PE=$PE SIMD=$SIMD VMAX=$VMAX VPC=$VPC @ $clock_mhz MHz)"
for {set a 0} {$a < $ATTN} {incr a} {
    set e [expr {$a % $ENGINES}]
    puts "  + kv_attn_$a G=$ATTN_G D=$ATTN_D HMAX=$ATTN_HMAX TMAX=$ATTN_TMAX\
          (${attn_in_bits}-bit in, ${attn_out_bits}-bit out, on [lindex $ports $e] with engine $e)"
}
