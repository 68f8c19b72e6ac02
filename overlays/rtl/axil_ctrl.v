// The hardware contract every PL unit of the overlay shares: an AXI4-Lite control slave with
// an HLS-like register map and the 64-bit busy/stall counters.
//
// Why one block: the engine (ternary_gemv.v) and the attention unit (kv_attn.v) speak the
// same protocol, so one driver base class (dse/hw/pynq_driver.py) and one emulator base
// (dse/hw/emulated.py) run both. The offsets below are dse/hw/regs.py's common ones (a test
// keeps them in step); each unit passes its ID, VERSION, argument count and reset values and
// its read-only build words, and dse/hw/regs.py's RegisterMap of that unit says the same (a
// test reads the instantiation's parameters back).
//
// Register map (byte offsets):
//   0x00            CTRL: bit0 ap_start (reads 1 while running), bit1 ap_done (until the next
//                   start: no clear-on-read, so a stray read cannot lose it), bit2 ap_idle,
//                   bit3 ap_ready; writing bit0 = 1 starts a call (a one-cycle start pulse)
//   0x10 + 8*i      argument i (r/w), i < NARGS <= 4 (HLS's 8-byte argument steps)
//   0x30            STATUS: bit0 the last start was refused (the unit's err)
//   0x40/0x44       BUSY lo/hi: cycles not idle
//   0x48/0x4c       STALL_IN lo/hi: cycles the unit was ready for an input beat with none
//   0x50/0x54       STALL_OUT lo/hi: cycles the unit waited for room for its results
//   0x60            ID, 0x64 VERSION
//   0x68 + 4*j      build word j (read-only), j < NBUILD <= 38
// Everything else reads 0 (no interrupts: 0x04..0x0c read 0) and ignores writes.
//
// The counters: BUSY counts the cycles the unit is not idle (the same signal CTRL's ap_idle
// reads, so the two cannot disagree); stall_in and stall_out are the unit's per-cycle strobes.
// Each unit makes every busy cycle either nominal or exactly one kind of stall, so
// busy = its cycle formula + stall_in + stall_out.
`default_nettype none

module axil_ctrl #(
    parameter integer        NARGS         = 1,
    parameter [32*NARGS-1:0] ARG_RESET     = {(32*NARGS){1'b0}},   // argument i at [32i +: 32]
    parameter [31:0]         ID_VALUE      = 32'd0,
    parameter [31:0]         VERSION_VALUE = 32'd0,
    parameter integer        NBUILD        = 1,
    parameter [32*NBUILD-1:0] BUILD_WORDS  = {(32*NBUILD){1'b0}}   // word j at [32j +: 32]
) (
    input  wire        clk,
    input  wire        rst_n,
    input  wire [7:0]  awaddr,
    input  wire        awvalid,
    output wire        awready,
    input  wire [31:0] wdata,
    input  wire [3:0]  wstrb,
    input  wire        wvalid,
    output wire        wready,
    output wire [1:0]  bresp,
    output reg         bvalid,
    input  wire        bready,
    input  wire [7:0]  araddr,
    input  wire        arvalid,
    output wire        arready,
    output reg  [31:0] rdata,
    output wire [1:0]  rresp,
    output reg         rvalid,
    input  wire        rready,
    // to/from the unit
    output wire [32*NARGS-1:0] args,   // argument i at [32i +: 32]
    output reg         start,          // one-cycle pulse: CTRL bit 0 written with 1
    input  wire        idle,
    input  wire        done,
    input  wire        err,
    input  wire        stall_in,       // this cycle is an input stall
    input  wire        stall_out       // this cycle is an output stall
);
    // Register map (byte offsets): dse/hw/regs.py's common offsets.
    localparam [7:0] ADDR_CTRL          = 8'h00;
    localparam [7:0] ADDR_ARG0          = 8'h10;
    localparam [7:0] ADDR_STATUS        = 8'h30;
    localparam [7:0] ADDR_BUSY_LO       = 8'h40;
    localparam [7:0] ADDR_BUSY_HI       = 8'h44;
    localparam [7:0] ADDR_STALL_IN_LO   = 8'h48;
    localparam [7:0] ADDR_STALL_IN_HI   = 8'h4c;
    localparam [7:0] ADDR_STALL_OUT_LO  = 8'h50;
    localparam [7:0] ADDR_STALL_OUT_HI  = 8'h54;
    localparam [7:0] ADDR_ID            = 8'h60;
    localparam [7:0] ADDR_VERSION       = 8'h64;
    localparam [7:0] ADDR_BUILD0        = 8'h68;
    localparam [7:0] STEP_ARG           = 8'h08;    // argument i at ADDR_ARG0 + 8*i
    localparam [7:0] STEP_BUILD         = 8'h04;    // build word j at ADDR_BUILD0 + 4*j

    generate
        if (NARGS < 1 || NARGS > 4 || NBUILD < 1 || NBUILD > 38) begin : g_bad_params
            // Elaboration error on purpose: the arguments must end below STATUS (0x30) and
            // the build words inside the 8-bit address space.
            axil_ctrl_bad_parameters u_bad ();
        end
    endgenerate

    // The byte offset of slot i of a block of registers (8-bit arithmetic: the arguments
    // are ADDR_ARG0 + STEP_ARG*i, i < 4; the build words ADDR_BUILD0 + STEP_BUILD*j, j < 38).
    function [7:0] slot_addr;
        input [7:0] base;
        input [7:0] step;
        input [7:0] slot;
        begin
            slot_addr = base + slot * step;
        end
    endfunction

    function [31:0] merge;
        input [31:0] old;
        input [31:0] val;
        input [3:0]  strb;
        integer byte_i;
        begin
            for (byte_i = 0; byte_i < 4; byte_i = byte_i + 1)
                merge[8*byte_i +: 8] = strb[byte_i] ? val[8*byte_i +: 8] : old[8*byte_i +: 8];
        end
    endfunction

    assign bresp = 2'b00;
    assign rresp = 2'b00;

    // ---- counters: they only move while the unit is busy ----------------------------------
    reg [63:0] busy_cnt, stall_in_cnt, stall_out_cnt;
    always @(posedge clk) begin
        if (!rst_n) begin
            busy_cnt      <= 64'd0;
            stall_in_cnt  <= 64'd0;
            stall_out_cnt <= 64'd0;
        end else begin
            if (!idle)     busy_cnt      <= busy_cnt + 1'b1;
            if (stall_in)  stall_in_cnt  <= stall_in_cnt + 1'b1;
            if (stall_out) stall_out_cnt <= stall_out_cnt + 1'b1;
        end
    end

    // ---- writes: address and data may arrive in either order --------------------------
    reg        aw_full, w_full;
    reg [7:0]  aw_q;
    reg [31:0] w_q;
    reg [3:0]  s_q;
    reg [32*NARGS-1:0] args_r;
    wire [7:0] wa = aw_q & 8'hfc;
    integer wi;

    assign awready = !aw_full;
    assign wready  = !w_full;
    assign args    = args_r;

    always @(posedge clk) begin
        if (!rst_n) begin
            aw_full <= 1'b0;
            w_full  <= 1'b0;
            bvalid  <= 1'b0;
            start   <= 1'b0;
            args_r  <= ARG_RESET;
            aw_q    <= 8'd0;
            w_q     <= 32'd0;
            s_q     <= 4'd0;
        end else begin
            start <= 1'b0;
            if (awvalid && !aw_full) begin
                aw_full <= 1'b1;
                aw_q    <= awaddr;
            end
            if (wvalid && !w_full) begin
                w_full <= 1'b1;
                w_q    <= wdata;
                s_q    <= wstrb;
            end
            if (aw_full && w_full && !bvalid) begin
                aw_full <= 1'b0;
                w_full  <= 1'b0;
                bvalid  <= 1'b1;
                if (wa == ADDR_CTRL) start <= s_q[0] && w_q[0];
                for (wi = 0; wi < NARGS; wi = wi + 1)
                    if (wa == slot_addr(ADDR_ARG0, STEP_ARG, wi[7:0]))
                        args_r[32*wi +: 32] <= merge(args_r[32*wi +: 32], w_q, s_q);
            end
            if (bvalid && bready) bvalid <= 1'b0;
        end
    end

    // ---- reads ---------------------------------------------------------------------------
    wire [7:0] ra = araddr & 8'hfc;
    reg [31:0] rword;
    integer ri;
    always @(*) begin
        case (ra)
            // bit0 ap_start (high while running), bit1 ap_done, bit2 ap_idle, bit3 ap_ready
            ADDR_CTRL:         rword = {28'd0, idle, idle, done, !idle};
            ADDR_STATUS:       rword = {31'd0, err};
            ADDR_BUSY_LO:      rword = busy_cnt[31:0];
            ADDR_BUSY_HI:      rword = busy_cnt[63:32];
            ADDR_STALL_IN_LO:  rword = stall_in_cnt[31:0];
            ADDR_STALL_IN_HI:  rword = stall_in_cnt[63:32];
            ADDR_STALL_OUT_LO: rword = stall_out_cnt[31:0];
            ADDR_STALL_OUT_HI: rword = stall_out_cnt[63:32];
            ADDR_ID:           rword = ID_VALUE;
            ADDR_VERSION:      rword = VERSION_VALUE;
            default:           rword = 32'd0;
        endcase
        for (ri = 0; ri < NARGS; ri = ri + 1)
            if (ra == slot_addr(ADDR_ARG0, STEP_ARG, ri[7:0])) rword = args_r[32*ri +: 32];
        for (ri = 0; ri < NBUILD; ri = ri + 1)
            if (ra == slot_addr(ADDR_BUILD0, STEP_BUILD, ri[7:0])) rword = BUILD_WORDS[32*ri +: 32];
    end

    assign arready = !rvalid;

    always @(posedge clk) begin
        if (!rst_n) begin
            rvalid <= 1'b0;
            rdata  <= 32'd0;
        end else if (arvalid && !rvalid) begin
            rvalid <= 1'b1;
            rdata  <= rword;
        end else if (rvalid && rready) begin
            rvalid <= 1'b0;
        end
    end
endmodule

`default_nettype wire
