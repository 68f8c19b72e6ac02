// ternary_gemv: a BitNet b1.58 matrix-vector engine, y = W x for M int8 vectors, W ternary.
//
// The input stream carries, per pass of up to V vectors, the pass's activations and then the
// weight tiles (overlays/STREAM.md is the contract); the output stream carries int32 results,
// TLAST on the call's last beat. PE rows x SIMD columns of W are consumed per weight beat, and
// each beat is applied to every vector of the pass, VPC vectors per cycle (VPC lanes of dot
// products, each with its own copy of the activation buffer holding every VPC-th vector), so a
// round of sequences or a prompt group reads the weights once per V vectors and spends
// ceil(V/VPC) cycles per weight beat.
//
// Why the structure is this simple: the cost model's cycle formula
// (dse.model.engine.engine_cycles) is checked against this RTL, so every cycle is accounted
// for. Activation beats take one cycle each; a weight tile takes one cycle per group of VPC
// vectors; each pass ends with a fixed drain of LATENCY cycles. Once issued, a beat flows through a pipeline
// that never stalls; the issue stage waits instead (no input beat: stall_in; results that could
// overflow the output FIFO: stall_out), and each such cycle is counted, so
// busy = engine_cycles(...) + stall_in + stall_out exactly.
`default_nettype none

module ternary_gemv #(
    parameter integer PE        = 8,      // output rows in parallel
    parameter integer SIMD      = 16,     // weights per row per cycle (base-3: multiple of 5)
    parameter integer PACKING   = 0,      // 0 = i2 (2-bit codes), 1 = base3 (5 trits per byte)
    parameter integer VMAX      = 4,      // vectors held per weight pass
    parameter integer VPC       = 1,      // vectors answered per clock (lanes of dot products)
    parameter integer KMAX      = 8192,   // largest K
    parameter integer OUT_DEPTH = 32      // result FIFO depth (power of two)
) (
    input  wire        ap_clk,
    input  wire        ap_rst_n,

    input  wire [7:0]  s_axi_control_awaddr,
    input  wire        s_axi_control_awvalid,
    output wire        s_axi_control_awready,
    input  wire [31:0] s_axi_control_wdata,
    input  wire [3:0]  s_axi_control_wstrb,
    input  wire        s_axi_control_wvalid,
    output wire        s_axi_control_wready,
    output wire [1:0]  s_axi_control_bresp,
    output wire        s_axi_control_bvalid,
    input  wire        s_axi_control_bready,
    input  wire [7:0]  s_axi_control_araddr,
    input  wire        s_axi_control_arvalid,
    output wire        s_axi_control_arready,
    output wire [31:0] s_axi_control_rdata,
    output wire [1:0]  s_axi_control_rresp,
    output wire        s_axi_control_rvalid,
    input  wire        s_axi_control_rready,

    // Input stream: W = PE * (i2: 2*SIMD, base3: 8*SIMD/5) bits.
    input  wire [PE*((PACKING != 0) ? (8*SIMD)/5 : 2*SIMD)-1:0]   s_axis_tdata,
    input  wire [PE*((PACKING != 0) ? (8*SIMD)/5 : 2*SIMD)/8-1:0] s_axis_tkeep,
    input  wire        s_axis_tlast,
    input  wire        s_axis_tvalid,
    output wire        s_axis_tready,

    // Output stream: 32*PE*VPC bits, one beat per (row fold, group of VPC vectors).
    output wire [32*PE*VPC-1:0] m_axis_tdata,
    output wire [4*PE*VPC-1:0]  m_axis_tkeep,
    output wire        m_axis_tlast,
    output wire        m_axis_tvalid,
    input  wire        m_axis_tready
);
    function integer gcd;
        input integer a;
        input integer b;
        integer x, y, t, i;
        begin
            x = a;
            y = b;
            for (i = 0; i < 64; i = i + 1) begin
                if (y != 0) begin
                    t = x % y;
                    x = y;
                    y = t;
                end
            end
            gcd = x;
        end
    endfunction

    localparam integer RB    = (PACKING != 0) ? (8*SIMD)/5 : 2*SIMD;   // bits per row chunk
    localparam integer W     = PE * RB;                               // stream width
    localparam integer R     = W / 8;                                 // activations per beat
    localparam integer ABMAX = (KMAX + R - 1) / R;                    // beats per vector
    localparam integer G     = gcd(SIMD, R);
    localparam integer SQ    = SIMD / R;                              // window advance per fold:
    localparam integer SRU   = (SIMD % R) / G;                        //   SQ rows + SRU units
    localparam integer RU    = R / G;                                 // units per row
    localparam integer TS    = 4;                                     // adder-tree stages
    localparam integer SW    = 9 + $clog2(SIMD);                      // adder-tree sum width
    localparam integer VG    = (VMAX + VPC - 1) / VPC;                // vector groups per pass
    localparam integer VW    = (VG > 1) ? $clog2(VG) : 1;
    localparam integer RW    = 32 * PE;                               // one vector's results
    localparam integer PW    = $clog2(OUT_DEPTH) + 1;
    // Per-pass fill/drain, in cycles: 1 (first weight beat accepted, nothing issued)
    // + 2 (activation read, window select and decode) + TS (adder tree) + 1 (accumulate)
    // + 1 (result into the FIFO) + 1 (pipeline seen empty) + 1 (flush: the FIFO hands the
    // last result to the output register, which sends it in that same cycle when nothing
    // stalls; a later pass starts instead).
    localparam integer LATENCY = TS + 6;

    generate
        if ((PACKING != 0 && SIMD % 5 != 0) || W % 8 != 0 || PE < 1 || VMAX < 1
            || VPC < 1 || VPC > VMAX
            || (OUT_DEPTH & (OUT_DEPTH - 1)) != 0 || OUT_DEPTH < 4) begin : g_bad_params
            // Elaboration error on purpose: base-3 needs SIMD % 5 == 0, the stream whole
            // bytes, 1 <= VPC <= VMAX, OUT_DEPTH a power of two >= 4.
            ternary_gemv_bad_parameters u_bad ();
        end
    endgenerate

    wire clk   = ap_clk;
    wire rst_n = ap_rst_n;

    // ---- control registers (axil_ctrl.v; dse/hw/regs.py ENGINE is the same map) -------------
    // build words read back by software: the input stream width and the per-pass fill/drain
    localparam integer STREAM_BITS = W;
    wire [32*4-1:0] ctrl_args;
    wire [31:0] arg_n = ctrl_args[32*0 +: 32];
    wire [31:0] arg_k = ctrl_args[32*1 +: 32];
    wire [31:0] arg_m = ctrl_args[32*2 +: 32];
    wire [31:0] arg_v = ctrl_args[32*3 +: 32];
    wire        start;
    reg         done_r, err_r;
    wire        stall_in_now, stall_out_now;

    localparam [2:0] S_IDLE = 3'd0, S_ACT = 3'd1, S_W = 3'd2, S_DRAIN = 3'd3, S_FLUSH = 3'd4;
    reg [2:0] state;

    axil_ctrl #(
        .NARGS(4),
        .ARG_RESET({32'd1, 32'd0, 32'd0, 32'd0}),                    // V = 1, M, K, N = 0
        .ID_VALUE(32'h5447_4d56),                                    // "TGMV"
        .VERSION_VALUE(32'd2),
        .NBUILD(9),
        .BUILD_WORDS({VPC, OUT_DEPTH, LATENCY, STREAM_BITS, KMAX, VMAX, PACKING, SIMD, PE})
    ) u_ctrl (
        .clk(clk), .rst_n(rst_n),
        .awaddr(s_axi_control_awaddr), .awvalid(s_axi_control_awvalid),
        .awready(s_axi_control_awready),
        .wdata(s_axi_control_wdata), .wstrb(s_axi_control_wstrb),
        .wvalid(s_axi_control_wvalid), .wready(s_axi_control_wready),
        .bresp(s_axi_control_bresp), .bvalid(s_axi_control_bvalid),
        .bready(s_axi_control_bready),
        .araddr(s_axi_control_araddr), .arvalid(s_axi_control_arvalid),
        .arready(s_axi_control_arready),
        .rdata(s_axi_control_rdata), .rresp(s_axi_control_rresp),
        .rvalid(s_axi_control_rvalid), .rready(s_axi_control_rready),
        .args(ctrl_args), .start(start),
        .idle(state == S_IDLE), .done(done_r), .err(err_r),
        .stall_in(stall_in_now), .stall_out(stall_out_now)
    );

    // ---- call state ------------------------------------------------------------------------
    reg [31:0] n_r, k_r, v_r;
    reg [31:0] m_left;          // vectors from the current pass on
    reg [31:0] vp;              // vectors in the current pass
    wire [31:0] vg = (vp + VPC - 1) / VPC;   // groups of VPC vectors in the current pass
    wire       p_last = (m_left <= v_r);
    reg        sent_last;       // the TLAST beat has left

    // activation loading
    reg [31:0] a_k;             // first column of the current activation beat
    reg [31:0] ab_w;            // beat within the vector
    reg [31:0] vrow_w;          // first buffer row of the vector being loaded (in its lane)
    reg [31:0] iw;              // vector being loaded
    reg [31:0] wlane;           // its lane: vector iw sits in lane iw % VPC, row iw / VPC
    wire       act_beat  = (state == S_ACT) && s_axis_tvalid;
    wire       a_vec_end = (a_k + R >= k_r);

    // weight issue
    reg          wt_valid;
    reg  [W-1:0] tile;
    reg  [31:0]  iv;            // group of the next issue (vectors iv*VPC .. iv*VPC+VPC-1)
    reg  [31:0]  ivb;           // its first vector, iv * VPC
    reg  [31:0]  vrow_r;        // its first buffer row (the same in every lane)
    reg  [31:0]  c_k;           // first column of the tile
    reg  [31:0]  crow;          // window start: row within the vector ...
    reg  [31:0]  cu;            // ... and G-byte unit within that row
    reg  [31:0]  r_n;           // first row of the tile
    reg  [PW-1:0] pending;      // results issued and not yet out of the FIFO
    wire         iv_last   = (iv + 1 == vg);
    wire         c_last    = (c_k + SIMD >= k_r);
    wire         r_last    = (r_n + PE >= n_r);
    wire         credit_ok = ({{(32-PW){1'b0}}, pending} < OUT_DEPTH);
    wire         issue     = (state == S_W) && wt_valid && credit_ok;
    wire         out_pop;
    wire         pipe_busy;     // a beat is between issue and the result FIFO
    wire         final_xfer = m_axis_tvalid && m_axis_tready && m_axis_tlast;

    assign s_axis_tready = (state == S_ACT)
        || ((state == S_W) && (!wt_valid || (issue && iv_last && !(c_last && r_last))));

    // stalls (counted by axil_ctrl): every busy cycle is nominal or exactly one kind of stall
    assign stall_in_now  = s_axis_tready && !s_axis_tvalid;
    assign stall_out_now = ((state == S_W) && wt_valid && !credit_ok)
                        || ((state == S_FLUSH) && p_last && !sent_last && !final_xfer);

    wire bad_args = (arg_n == 0) || (arg_k == 0) || (arg_k > KMAX) || (arg_m == 0)
                 || (arg_v == 0) || (arg_v > VMAX);

    always @(posedge clk) begin
        if (!rst_n) begin
            state         <= S_IDLE;
            done_r        <= 1'b0;
            err_r         <= 1'b0;
            wt_valid      <= 1'b0;
            pending       <= {PW{1'b0}};
            sent_last     <= 1'b0;
            n_r <= 32'd0; k_r <= 32'd0; v_r <= 32'd1; m_left <= 32'd0; vp <= 32'd1;
            a_k <= 32'd0; ab_w <= 32'd0; vrow_w <= 32'd0; iw <= 32'd0; wlane <= 32'd0;
            iv <= 32'd0; ivb <= 32'd0; vrow_r <= 32'd0; c_k <= 32'd0; crow <= 32'd0;
            cu <= 32'd0;
            r_n <= 32'd0;
        end else begin
            if (issue && c_last) begin
                if (!out_pop) pending <= pending + 1'b1;
            end else if (out_pop) begin
                pending <= pending - 1'b1;
            end
            if (final_xfer) sent_last <= 1'b1;

            // weight tile register
            if ((state == S_W) && s_axis_tready && s_axis_tvalid) begin
                tile     <= s_axis_tdata;
                wt_valid <= 1'b1;
            end else if (issue && iv_last) begin
                wt_valid <= 1'b0;
            end

            case (state)
                S_IDLE: if (start) begin
                    done_r <= bad_args;
                    err_r  <= bad_args;
                    if (!bad_args) begin
                        n_r    <= arg_n;
                        k_r    <= arg_k;
                        v_r    <= arg_v;
                        m_left <= arg_m;
                        vp     <= (arg_m < arg_v) ? arg_m : arg_v;
                        sent_last <= 1'b0;
                        state  <= S_ACT;
                    end
                end
                S_ACT: if (act_beat) begin
                    if (a_vec_end) begin
                        a_k  <= 32'd0;
                        ab_w <= 32'd0;
                        if (iw + 1 == vp) begin
                            iw     <= 32'd0;
                            wlane  <= 32'd0;
                            vrow_w <= 32'd0;
                            state  <= S_W;
                        end else begin
                            iw <= iw + 1;
                            if (wlane + 1 == VPC) begin
                                wlane  <= 32'd0;
                                vrow_w <= vrow_w + ABMAX;
                            end else begin
                                wlane <= wlane + 1;
                            end
                        end
                    end else begin
                        a_k  <= a_k + R;
                        ab_w <= ab_w + 1;
                    end
                end
                S_W: if (issue) begin
                    if (iv_last) begin
                        iv     <= 32'd0;
                        ivb    <= 32'd0;
                        vrow_r <= 32'd0;
                        if (c_last) begin
                            c_k  <= 32'd0;
                            crow <= 32'd0;
                            cu   <= 32'd0;
                            if (r_last) begin
                                r_n   <= 32'd0;
                                state <= S_DRAIN;
                            end else begin
                                r_n <= r_n + PE;
                            end
                        end else begin
                            c_k <= c_k + SIMD;
                            if (cu + SRU >= RU) begin
                                cu   <= cu + SRU - RU;
                                crow <= crow + SQ + 1;
                            end else begin
                                cu   <= cu + SRU;
                                crow <= crow + SQ;
                            end
                        end
                    end else begin
                        iv     <= iv + 1;
                        ivb    <= ivb + VPC;
                        vrow_r <= vrow_r + ABMAX;
                    end
                end
                S_DRAIN: if (!pipe_busy) state <= S_FLUSH;
                S_FLUSH: begin
                    // one cycle, or until the last result has left (then the extra cycles
                    // are output stalls: the FIFO held a backlog)
                    if (!p_last) begin
                        m_left <= m_left - vp;
                        vp     <= (m_left - vp < v_r) ? m_left - vp : v_r;
                        state  <= S_ACT;
                    end else if (sent_last || final_xfer) begin
                        done_r <= 1'b1;
                        state  <= S_IDLE;
                    end
                end
                default: state <= S_IDLE;
            endcase
        end
    end

    // ---- activation buffers: one per lane, lane l holding vectors l, l+VPC, ... -----------
    wire [VPC*8*SIMD-1:0] win;
    genvar ln;
    generate
        for (ln = 0; ln < VPC; ln = ln + 1) begin : g_act
            tgemv_actbuf #(
                .RBYTES(R), .SIMD(SIMD), .ROWS(VG * ABMAX), .G(G)
            ) u_act (
                .clk(clk),
                .we(act_beat && wlane == ln), .wrow(vrow_w + ab_w), .wdata(s_axis_tdata),
                .rrow(vrow_r + crow), .runit(cu), .rdata(win[ln*8*SIMD +: 8*SIMD])
            );
        end
    endgenerate

    // ---- pipeline: s1 (buffer read), s2 (window + decode), tree, accumulate ----------------
    reg           s1_v, s1_first, s1_last, s1_tl;
    reg [VW-1:0]  s1_vi;
    reg [VPC-1:0] s1_mask;      // lanes holding a vector of the pass (the last group may not)
    reg [W-1:0]   s1_tile;
    integer li;
    always @(posedge clk) begin
        s1_tile  <= tile;
        s1_vi    <= iv[VW-1:0];
        for (li = 0; li < VPC; li = li + 1) s1_mask[li] <= (ivb + li < vp);
        s1_first <= (c_k == 0);
        s1_last  <= c_last;
        s1_tl    <= p_last && r_last && c_last && iv_last;
    end

    wire [2*PE*SIMD-1:0] codes1;
    genvar i, b;
    generate
        if (PACKING == 0) begin : g_i2
            assign codes1 = s1_tile;                  // i2: the codes are the stream bits
        end else begin : g_base3
            for (i = 0; i < PE; i = i + 1) begin : g_row
                for (b = 0; b < SIMD / 5; b = b + 1) begin : g_byte
                    tgemv_b3dec u_dec (
                        .byte_in(s1_tile[i*RB + 8*b +: 8]),
                        .codes(codes1[i*2*SIMD + 10*b +: 10])
                    );
                end
            end
        end
    endgenerate

    reg                   s2_v, s2_first, s2_last, s2_tl;
    reg [VW-1:0]          s2_vi;
    reg [VPC-1:0]         s2_mask;
    reg [2*PE*SIMD-1:0]   s2_codes;
    reg [VPC*8*SIMD-1:0]  s2_act;
    always @(posedge clk) begin
        s2_codes <= codes1;
        s2_act   <= win;
        s2_vi    <= s1_vi;
        s2_mask  <= s1_mask;
        s2_first <= s1_first;
        s2_last  <= s1_last;
        s2_tl    <= s1_tl;
    end

    // lane l's row i at dsum[(l*PE + i)*SW +: SW]: VPC x PE dot products share each tile
    wire [VPC*PE*SW-1:0] dsum;
    wire [VPC*PE-1:0]    dcin;
    generate
        for (ln = 0; ln < VPC; ln = ln + 1) begin : g_lane
            for (i = 0; i < PE; i = i + 1) begin : g_pe
                tgemv_dot #(.SIMD(SIMD), .STAGES(TS)) u_dot (
                    .clk(clk),
                    .codes(s2_codes[i*2*SIMD +: 2*SIMD]),
                    .acts(s2_act[ln*8*SIMD +: 8*SIMD]),
                    .sum(dsum[(ln*PE + i)*SW +: SW]),
                    .cout(dcin[ln*PE + i])
                );
            end
        end
    endgenerate

    // flags ride alongside the tree
    reg [TS-1:0]  d_v, d_first, d_last, d_tl;
    reg [VW-1:0]  d_vi [0:TS-1];
    reg [VPC-1:0] d_mask [0:TS-1];
    integer t;
    always @(posedge clk) begin
        d_first   <= {d_first[TS-2:0], s2_first};
        d_last    <= {d_last[TS-2:0], s2_last};
        d_tl      <= {d_tl[TS-2:0], s2_tl};
        d_vi[0]   <= s2_vi;
        d_mask[0] <= s2_mask;
        for (t = 1; t < TS; t = t + 1) begin
            d_vi[t]   <= d_vi[t-1];
            d_mask[t] <= d_mask[t-1];
        end
    end

    // accumulate: one 32-bit accumulator per (vector, row); LUT RAM indexed by the group, a
    // word holding the group's VPC vectors
    reg  [VPC*RW-1:0] acc_mem [0:VG-1];
    wire [VW-1:0]     a_vi    = d_vi[TS-1];
    wire [VPC*RW-1:0] acc_old = acc_mem[a_vi];
    reg  [VPC*RW-1:0] acc_new;
    always @(*) begin
        for (t = 0; t < VPC*PE; t = t + 1)
            acc_new[32*t +: 32] = (d_first[TS-1] ? 32'd0 : acc_old[32*t +: 32])
                + {{(32-SW){dsum[t*SW + SW-1]}}, dsum[t*SW +: SW]} + {31'd0, dcin[t]};
    end

    // a lane without a vector of the pass (the last group of an odd pass) sends zeros
    reg               o_v, o_tl;
    reg [VPC*RW-1:0]  o_data;
    always @(posedge clk) begin
        if (d_v[TS-1]) acc_mem[a_vi] <= acc_new;
        for (t = 0; t < VPC; t = t + 1)
            o_data[RW*t +: RW] <= d_mask[TS-1][t] ? acc_new[RW*t +: RW] : {RW{1'b0}};
        o_tl   <= d_tl[TS-1];
    end

    always @(posedge clk) begin
        if (!rst_n) begin
            s1_v <= 1'b0;
            s2_v <= 1'b0;
            d_v  <= {TS{1'b0}};
            o_v  <= 1'b0;
        end else begin
            s1_v <= issue;
            s2_v <= s1_v;
            d_v  <= {d_v[TS-2:0], s2_v};
            o_v  <= d_v[TS-1] && d_last[TS-1];
        end
    end

    assign pipe_busy = s1_v || s2_v || (|d_v) || o_v;

    // ---- results ---------------------------------------------------------------------------
    tgemv_fifo #(.WIDTH(VPC*RW + 1), .DEPTH(OUT_DEPTH)) u_out (
        .clk(clk), .rst_n(rst_n),
        .wr(o_v), .din({o_tl, o_data}),
        .pop(out_pop),
        .dout({m_axis_tlast, m_axis_tdata}),
        .dvalid(m_axis_tvalid),
        .dready(m_axis_tready)
    );
    assign m_axis_tkeep = {(4*PE*VPC){1'b1}};

    // The call's shape fixes the number of input beats: TLAST and TKEEP are not needed.
    wire unused_ok = &{1'b0, s_axis_tlast, s_axis_tkeep};
endmodule

`default_nettype wire
