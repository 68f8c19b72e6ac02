# Package overlays/rtl as the IPs dse:hls:ternary_gemv:1.0 (the VLNV dse.hw.pynq_driver binds)
# and dse:hls:kv_attn:1.0 (the attention unit, built with ATTN=1).
#
# Usage (Vivado 2022.1, batch):
#   vivado -mode batch -source package_ip.tcl -tclargs <ip_repo_dir> [part] [attn]
# build_overlay.tcl sources this file and calls package_ternary_gemv (and package_kv_attn)
# itself.
#
# Why package at all: PYNQ binds drivers by the VLNV it reads from the .hwh, and an IP with
# inferred AXI interfaces lets the block design connect the DMA and the PS by interface.

set ::tgemv_rtl_dir [file normalize [file join [file dirname [info script]] .. rtl]]
# Both IPs instantiate the shared AXI4-Lite control slave and counters (axil_ctrl.v).
set ::tgemv_rtl_files {
    axil_ctrl.v tgemv_dot.v tgemv_b3dec.v tgemv_actbuf.v tgemv_fifo.v ternary_gemv.v
}
# kv_attn reuses the engine's result FIFO.
set ::kvattn_rtl_files {axil_ctrl.v tgemv_fifo.v kv_attn.v}

# Package one top of overlays/rtl as dse:hls:<top>:1.0 under <repo_dir>/<top>. Both IPs have
# the same bus ports (s_axi_control_*, s_axis_*, m_axis_* on ap_clk, ap_rst_n active low);
# <params> are the build parameters' defaults, editable in the block design.
proc package_rtl_ip {repo_dir part top files display description params} {
    file mkdir $repo_dir
    set ip_dir [file join $repo_dir $top]
    set proj_dir [file join $repo_dir _package_$top]
    create_project -force ${top}_package $proj_dir -part $part
    foreach f $files {
        add_files -norecurse [file join $::tgemv_rtl_dir $f]
    }
    set_property top $top [current_fileset]
    update_compile_order -fileset sources_1

    ipx::package_project -root_dir $ip_dir -vendor dse -library hls -taxonomy /UserIP \
        -import_files -set_current true
    set core [ipx::current_core]
    set_property name $top $core
    set_property version 1.0 $core
    set_property display_name $display $core
    set_property description $description $core
    set_property supported_families {zynq Production zynquplus Production} $core

    # Interfaces are inferred from the port names (s_axi_control_*, s_axis_*, m_axis_*);
    # tie them to the clock and the active-low reset explicitly.
    ipx::associate_bus_interfaces -busif s_axi_control -clock ap_clk $core
    ipx::associate_bus_interfaces -busif s_axis -clock ap_clk $core
    ipx::associate_bus_interfaces -busif m_axis -clock ap_clk $core
    ipx::associate_bus_interfaces -clock ap_clk -reset ap_rst_n $core
    set rst [ipx::get_bus_interfaces ap_rst_n -of_objects $core]
    if {[llength $rst]} {
        set pol [ipx::get_bus_parameters POLARITY -of_objects $rst]
        if {![llength $pol]} { set pol [ipx::add_bus_parameter POLARITY $rst] }
        set_property value ACTIVE_LOW $pol
    }

    # Build parameters editable in the block design (and read back by software from the
    # config registers).
    foreach {name value} $params {
        set p [ipx::get_user_parameters $name -of_objects $core]
        if {[llength $p]} { set_property value $value $p }
    }

    ipx::create_xgui_files $core
    ipx::update_checksums $core
    ipx::check_integrity $core
    ipx::save_core $core
    close_project
    return $ip_dir
}

proc package_ternary_gemv {repo_dir part} {
    return [package_rtl_ip $repo_dir $part ternary_gemv $::tgemv_rtl_files \
        "Ternary GEMV engine (BitNet b1.58)" \
        "Ternary matrix-vector engine: AXI4-Stream weights and int8 activations in, int32\
         results out, AXI4-Lite control (see overlays/README.md)" \
        {PE 8 SIMD 16 PACKING 0 VMAX 4 VPC 1 KMAX 8192 OUT_DEPTH 32}]
}

proc package_kv_attn {repo_dir part} {
    return [package_rtl_ip $repo_dir $part kv_attn $::kvattn_rtl_files \
        "KV-cache attention unit (q.K and p.V, int8)" \
        "Decode attention's two dot-product passes over an int8 KV cache: 128-bit\
         AXI4-Stream in, G int32 per beat out, AXI4-Lite control (see overlays/KV_ATTN.md)" \
        {G 4 D 128 HMAX 5 TMAX 4096 OUT_DEPTH 32}]
}

# Run directly: package into the directory given as the first -tclargs argument (the
# attention unit too when a third argument "attn" is given).
if {![info exists ::tgemv_sourced] && [llength $::argv] >= 1} {
    set part [expr {[llength $::argv] >= 2 ? [lindex $::argv 1] : "xczu7ev-ffvc1156-2-e"}]
    set repo [file normalize [lindex $::argv 0]]
    package_ternary_gemv $repo $part
    if {[lindex $::argv 2] eq "attn"} { package_kv_attn $repo $part }
}
