// Result FIFO with a registered output (one beat per cycle in and out).
//
// Why: the engine never stalls its pipeline once a beat is issued (that keeps the pipeline a
// plain shift of valid bits and its latency fixed); instead the issue stage holds off while the
// results already in flight could overflow this FIFO (`pop` feeds that credit count).
`default_nettype none

module tgemv_fifo #(
    parameter integer WIDTH = 257,
    parameter integer DEPTH = 32          // power of two
) (
    input  wire             clk,
    input  wire             rst_n,
    input  wire             wr,
    input  wire [WIDTH-1:0] din,
    output wire             pop,          // a word moves to the output register this cycle
    output reg  [WIDTH-1:0] dout,
    output reg              dvalid,
    input  wire             dready
);
    localparam integer AW = $clog2(DEPTH);

    reg [WIDTH-1:0] mem [0:DEPTH-1];
    reg [AW-1:0]    wp, rp;
    reg [AW:0]      cnt;

    assign pop = (cnt != 0) && (!dvalid || dready);

    always @(posedge clk) begin
        if (wr) mem[wp] <= din;
        if (pop) dout <= mem[rp];
    end

    always @(posedge clk) begin
        if (!rst_n) begin
            wp     <= {AW{1'b0}};
            rp     <= {AW{1'b0}};
            cnt    <= {(AW+1){1'b0}};
            dvalid <= 1'b0;
        end else begin
            if (wr) wp <= wp + 1'b1;
            if (pop) rp <= rp + 1'b1;
            if (wr && !pop) cnt <= cnt + 1'b1;
            else if (pop && !wr) cnt <= cnt - 1'b1;
            if (pop) dvalid <= 1'b1;
            else if (dready) dvalid <= 1'b0;
        end
    end
endmodule

`default_nettype wire
