# Package overlays/rtl as the IP dse:hls:ternary_gemv:1.0 (the VLNV dse.hw.pynq_driver binds).
#
# Usage (Vivado 2022.1, batch):
#   vivado -mode batch -source package_ip.tcl -tclargs <ip_repo_dir>
# build_overlay.tcl sources this file and calls package_ternary_gemv itself.
#
# Why package at all: PYNQ binds drivers by the VLNV it reads from the .hwh, and an IP with
# inferred AXI interfaces lets the block design connect the DMA and the PS by interface.

set ::tgemv_rtl_dir [file normalize [file join [file dirname [info script]] .. rtl]]
set ::tgemv_rtl_files {
    tgemv_ctrl.v tgemv_dot.v tgemv_b3dec.v tgemv_actbuf.v tgemv_fifo.v ternary_gemv.v
}

proc package_ternary_gemv {repo_dir part} {
    file mkdir $repo_dir
    set ip_dir [file join $repo_dir ternary_gemv]
    set proj_dir [file join $repo_dir _package_project]
    create_project -force tgemv_package $proj_dir -part $part
    foreach f $::tgemv_rtl_files {
        add_files -norecurse [file join $::tgemv_rtl_dir $f]
    }
    set_property top ternary_gemv [current_fileset]
    update_compile_order -fileset sources_1

    ipx::package_project -root_dir $ip_dir -vendor dse -library hls -taxonomy /UserIP \
        -import_files -set_current true
    set core [ipx::current_core]
    set_property name ternary_gemv $core
    set_property version 1.0 $core
    set_property display_name "Ternary GEMV engine (BitNet b1.58)" $core
    set_property description "Ternary matrix-vector engine: AXI4-Stream weights and int8\
        activations in, int32 results out, AXI4-Lite control (see overlays/README.md)" $core
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
    foreach {name value} {PE 8 SIMD 16 PACKING 0 VMAX 4 KMAX 8192 OUT_DEPTH 32} {
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

# Run directly: package into the directory given as the first -tclargs argument.
if {![info exists ::tgemv_sourced] && [llength $::argv] >= 1} {
    set part [expr {[llength $::argv] >= 2 ? [lindex $::argv 1] : "xczu7ev-ffvc1156-2-e"}]
    package_ternary_gemv [file normalize [lindex $::argv 0]] $part
}
