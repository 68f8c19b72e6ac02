// One PE row of the ternary engine: SIMD ternary weights x SIMD int8 activations -> a sum.
//
// Why it looks like this: a ternary "multiply" is a select between a, -a and 0. Written as
// (a ^ {9{neg}}) & {9{nz}} plus a +1 correction when negating, the select folds into the LUT
// that feeds each first-level adder bit (6 inputs: two activation bits and two (nz, neg)
// pairs), so a lane costs no adder of its own and no multiplier. The +1 corrections ride the
// tree as carry-ins, one per adder; the one left over leaves as `cout` for the accumulator.
//
// Pipeline: a register after every second tree level (and after the last), then padding up
// to STAGES registers, so the latency is STAGES cycles whatever SIMD is: the cost model uses
// one latency constant for every design point.
`default_nettype none

module tgemv_dot #(
    parameter integer SIMD   = 16,
    parameter integer STAGES = 4
) (
    input  wire                        clk,
    // i2 codes, 2 bits per lane: 0 -> -1, 1 -> 0, 2 -> +1, 3 -> 0 (see overlays/STREAM.md)
    input  wire [2*SIMD-1:0]           codes,
    input  wire [8*SIMD-1:0]           acts,
    // sum of the lanes minus `cout` (two's complement, 9 + clog2(SIMD) bits)
    output wire [8+$clog2(SIMD):0]     sum,
    output wire                        cout
);
    localparam integer LV = $clog2(SIMD);   // tree levels
    localparam integer S2 = 1 << LV;        // lanes padded to a power of two (pads are 0)
    localparam integer RS = (LV + 1) / 2;   // register stages the tree itself needs

    genvar l, j;
    generate
        if (SIMD < 2 || RS > STAGES) begin : g_bad_params
            // Elaboration error on purpose: SIMD must be 2..2**(2*STAGES).
            tgemv_dot_bad_parameters u_bad ();
        end

        for (l = 0; l <= LV; l = l + 1) begin : g_lv
            // Level l holds S2 >> l nodes of 9 + l bits, and as many pending +1 carries.
            wire [(S2 >> l)*(9 + l)-1:0] val;
            wire [(S2 >> l)-1:0]         lo;

            if (l == 0) begin : g_lanes
                for (j = 0; j < S2; j = j + 1) begin : g_lane
                    if (j < SIMD) begin : g_real
                        wire       nz = ~codes[2*j];       // codes 0 and 2 are nonzero
                        wire       ng = ~codes[2*j + 1];   // code 0 is -1
                        wire [8:0] a  = {acts[8*j + 7], acts[8*j +: 8]};
                        assign val[9*j +: 9] = (a ^ {9{ng}}) & {9{nz}};
                        assign lo[j]         = nz & ng;
                    end else begin : g_pad
                        assign val[9*j +: 9] = 9'd0;
                        assign lo[j]         = 1'b0;
                    end
                end
            end else begin : g_adders
                localparam integer WD = 9 + l;
                wire [(S2 >> l)*WD-1:0] s;
                wire [(S2 >> l)-1:0]    left;
                for (j = 0; j < (S2 >> l); j = j + 1) begin : g_node
                    wire [WD-2:0] x = g_lv[l-1].val[(2*j)*(WD-1) +: WD-1];
                    wire [WD-2:0] y = g_lv[l-1].val[(2*j+1)*(WD-1) +: WD-1];
                    assign s[j*WD +: WD] = {x[WD-2], x} + {y[WD-2], y}
                                         + {{(WD-1){1'b0}}, g_lv[l-1].lo[2*j]};
                    assign left[j] = g_lv[l-1].lo[2*j + 1];
                end
                if ((l % 2 == 0) || (l == LV)) begin : g_reg
                    reg [(S2 >> l)*WD-1:0] r_s;
                    reg [(S2 >> l)-1:0]    r_left;
                    always @(posedge clk) begin
                        r_s    <= s;
                        r_left <= left;
                    end
                    assign val = r_s;
                    assign lo  = r_left;
                end else begin : g_comb
                    assign val = s;
                    assign lo  = left;
                end
            end
        end

        // Pad to exactly STAGES registers (SRLs on Xilinx: no reset on purpose).
        if (STAGES > RS) begin : g_pad_delay
            reg [9+LV:0] dly [0:STAGES-RS-1];   // {carry, sum}
            integer d;
            always @(posedge clk) begin
                dly[0] <= {g_lv[LV].lo[0], g_lv[LV].val};
                for (d = 1; d < STAGES - RS; d = d + 1) dly[d] <= dly[d-1];
            end
            assign sum  = dly[STAGES-RS-1][8+LV:0];
            assign cout = dly[STAGES-RS-1][9+LV];
        end else begin : g_no_pad
            assign sum  = g_lv[LV].val;
            assign cout = g_lv[LV].lo[0];
        end
    endgenerate
endmodule

`default_nettype wire
