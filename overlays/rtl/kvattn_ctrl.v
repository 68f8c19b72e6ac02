// AXI4-Lite control slave and register file of the attention unit kv_attn (HLS-like map).
//
// Why the same shape as tgemv_ctrl.v: one driver style for both IPs (PYNQ's DefaultIP polls
// 0x00 for ap_start/ap_done/ap_idle, arguments from 0x10 at 8-byte steps), and the counters
// sit at the engine's offsets so the same "busy = formula + stalls" check reads both. The
// build parameters are readable so software can refuse a bitstream whose G, D, HMAX or TMAX
// do not fit the model it runs. dse/hw/kv_attn_regs.py mirrors these offsets (a test keeps
// them in step).
//
// As in the engine: ap_done stays set until the next start (no clear-on-read); no interrupts.
`default_nettype none

module kvattn_ctrl #(
    parameter integer G           = 4,
    parameter integer D           = 128,
    parameter integer HMAX        = 5,
    parameter integer TMAX        = 4096,
    parameter integer STREAM_BITS = 128,
    parameter integer LATENCY     = 0,
    parameter integer OUT_DEPTH   = 32
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
    output reg  [31:0] arg_mode,
    output reg  [31:0] arg_t,
    output reg  [31:0] arg_h,
    output reg         start,        // one-cycle pulse: CTRL bit 0 written with 1
    input  wire        idle,
    input  wire        done,
    input  wire        err,
    input  wire [63:0] busy_cycles,
    input  wire [63:0] stall_in_cycles,
    input  wire [63:0] stall_out_cycles
);
    // Register map (byte offsets).
    localparam [7:0] ADDR_CTRL          = 8'h00;
    localparam [7:0] ADDR_MODE          = 8'h10;
    localparam [7:0] ADDR_T             = 8'h18;
    localparam [7:0] ADDR_H             = 8'h20;
    localparam [7:0] ADDR_STATUS        = 8'h30;
    localparam [7:0] ADDR_BUSY_LO       = 8'h40;
    localparam [7:0] ADDR_BUSY_HI       = 8'h44;
    localparam [7:0] ADDR_STALL_IN_LO   = 8'h48;
    localparam [7:0] ADDR_STALL_IN_HI   = 8'h4c;
    localparam [7:0] ADDR_STALL_OUT_LO  = 8'h50;
    localparam [7:0] ADDR_STALL_OUT_HI  = 8'h54;
    localparam [7:0] ADDR_ID            = 8'h60;
    localparam [7:0] ADDR_VERSION       = 8'h64;
    localparam [7:0] ADDR_G             = 8'h68;
    localparam [7:0] ADDR_D             = 8'h6c;
    localparam [7:0] ADDR_HMAX          = 8'h70;
    localparam [7:0] ADDR_TMAX          = 8'h74;
    localparam [7:0] ADDR_STREAM_BITS   = 8'h78;
    localparam [7:0] ADDR_LATENCY       = 8'h7c;
    localparam [7:0] ADDR_OUT_DEPTH     = 8'h80;

    localparam [31:0] ID_VALUE      = 32'h4b56_4154;   // "KVAT"
    localparam [31:0] VERSION_VALUE = 32'd2;

    assign bresp = 2'b00;
    assign rresp = 2'b00;

    // ---- writes: address and data may arrive in either order --------------------------
    reg        aw_full, w_full;
    reg [7:0]  aw_q;
    reg [31:0] w_q;
    reg [3:0]  s_q;

    assign awready = !aw_full;
    assign wready  = !w_full;

    function [31:0] merge;
        input [31:0] old;
        input [31:0] val;
        input [3:0]  strb;
        integer i;
        begin
            for (i = 0; i < 4; i = i + 1)
                merge[8*i +: 8] = strb[i] ? val[8*i +: 8] : old[8*i +: 8];
        end
    endfunction

    always @(posedge clk) begin
        if (!rst_n) begin
            aw_full  <= 1'b0;
            w_full   <= 1'b0;
            bvalid   <= 1'b0;
            start    <= 1'b0;
            arg_mode <= 32'd0;
            arg_t    <= 32'd0;
            arg_h    <= 32'd0;
            aw_q     <= 8'd0;
            w_q      <= 32'd0;
            s_q      <= 4'd0;
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
                case (aw_q & 8'hfc)
                    ADDR_CTRL: start    <= s_q[0] && w_q[0];
                    ADDR_MODE: arg_mode <= merge(arg_mode, w_q, s_q);
                    ADDR_T:    arg_t    <= merge(arg_t, w_q, s_q);
                    ADDR_H:    arg_h    <= merge(arg_h, w_q, s_q);
                    default: ;
                endcase
            end
            if (bvalid && bready) bvalid <= 1'b0;
        end
    end

    // ---- reads ---------------------------------------------------------------------------
    assign arready = !rvalid;

    always @(posedge clk) begin
        if (!rst_n) begin
            rvalid <= 1'b0;
            rdata  <= 32'd0;
        end else if (arvalid && !rvalid) begin
            rvalid <= 1'b1;
            case (araddr & 8'hfc)
                // bit0 ap_start (high while running), bit1 ap_done, bit2 ap_idle, bit3 ap_ready
                ADDR_CTRL:         rdata <= {28'd0, idle, idle, done, !idle};
                ADDR_MODE:         rdata <= arg_mode;
                ADDR_T:            rdata <= arg_t;
                ADDR_H:            rdata <= arg_h;
                ADDR_STATUS:       rdata <= {31'd0, err};
                ADDR_BUSY_LO:      rdata <= busy_cycles[31:0];
                ADDR_BUSY_HI:      rdata <= busy_cycles[63:32];
                ADDR_STALL_IN_LO:  rdata <= stall_in_cycles[31:0];
                ADDR_STALL_IN_HI:  rdata <= stall_in_cycles[63:32];
                ADDR_STALL_OUT_LO: rdata <= stall_out_cycles[31:0];
                ADDR_STALL_OUT_HI: rdata <= stall_out_cycles[63:32];
                ADDR_ID:           rdata <= ID_VALUE;
                ADDR_VERSION:      rdata <= VERSION_VALUE;
                ADDR_G:            rdata <= G;
                ADDR_D:            rdata <= D;
                ADDR_HMAX:         rdata <= HMAX;
                ADDR_TMAX:         rdata <= TMAX;
                ADDR_STREAM_BITS:  rdata <= STREAM_BITS;
                ADDR_LATENCY:      rdata <= LATENCY;
                ADDR_OUT_DEPTH:    rdata <= OUT_DEPTH;
                default:           rdata <= 32'd0;
            endcase
        end else if (rvalid && rready) begin
            rvalid <= 1'b0;
        end
    end
endmodule

`default_nettype wire
