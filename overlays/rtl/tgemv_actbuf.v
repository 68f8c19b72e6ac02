// Activation buffer: VMAX vectors of up to KMAX int8, written one stream beat per cycle and
// read as one SIMD-wide window per cycle at any (vector, column fold).
//
// Why banks: a beat is R = W/8 bytes and a window is SIMD bytes starting at byte c*SIMD of its
// vector, so with R not a multiple of SIMD (base-3, PE=8, SIMD=20: R=32) a window straddles
// rows. The rows are spread over NB banks (row q in bank q % NB), so the NB consecutive rows a
// window can touch are read in one cycle; one mux per activation bit, over the NB * R/G
// possible window starts, then cuts the window. When R is a multiple of SIMD (i2 with PE a
// multiple of 4) there is one bank and the mux has R/SIMD inputs. Each bank is a plain
// 1-write/1-read RAM with a registered read, kept in block RAM (ram_style) because a beat-wide,
// shallow memory would otherwise go to LUT RAM: W bits x VMAX*KMAX/(W/8) rows.
`default_nettype none

module tgemv_actbuf #(
    parameter integer RBYTES = 32,    // bytes per row (= per input beat)
    parameter integer SIMD   = 16,    // bytes per read window
    parameter integer ROWS   = 1024,  // rows stored (VMAX * rows per vector)
    parameter integer G      = 16     // window offset step: gcd(SIMD, RBYTES), from the top
) (
    input  wire                clk,
    input  wire                we,
    input  wire [31:0]         wrow,     // row indices are 32-bit: synthesis trims them
    input  wire [8*RBYTES-1:0] wdata,
    // window = bytes [runit*G, runit*G + SIMD) of rows rrow, rrow+1, ...
    input  wire [31:0]         rrow,
    input  wire [31:0]         runit,
    output reg  [8*SIMD-1:0]   rdata     // the cycle after rrow/runit
);
    localparam integer NU    = RBYTES / G;                        // distinct offsets in a row
    localparam integer NBMIN = (RBYTES - G + SIMD + RBYTES - 1) / RBYTES;
    localparam integer LNB   = $clog2(NBMIN);
    localparam integer NB    = 1 << LNB;                          // banks
    localparam integer BD    = (ROWS + NB - 1) / NB + 1;          // a window may run 1 row past
    localparam integer RBITS = 8 * RBYTES;

    localparam integer NS    = NB * NU;                           // window start positions
    localparam integer LNS   = (NS > 1) ? $clog2(NS) : 1;

    wire [NB*RBITS-1:0] qall;                  // bank b's row at bytes [b*RBYTES, ...)
    reg  [LNS-1:0]      sel_q;                 // window start in G-byte units within qall

    // The window's byte j sits at (rot*RBYTES + runit*G + j) mod (NB*RBYTES) in qall, where
    // rot = rrow % NB is the bank of its first row: one NS-input mux per activation bit.
    /* verilator lint_off UNUSEDSIGNAL */   // 32-bit index arithmetic: the mux takes LNS bits
    wire [31:0] sel_next = (rrow & (NB - 1)) * NU + runit;
    /* verilator lint_on UNUSEDSIGNAL */
    always @(posedge clk) sel_q <= sel_next[LNS-1:0];

    genvar b, j, k;
    generate
        for (b = 0; b < NB; b = b + 1) begin : g_bank
            (* ram_style = "block" *) reg [RBITS-1:0] mem [0:BD-1];
            reg [RBITS-1:0] q;
            /* verilator lint_off UNUSEDSIGNAL */   // the RAM takes the bits BD needs
            wire [31:0] ra = (rrow >> LNB) + (((rrow & (NB - 1)) > b) ? 32'd1 : 32'd0);
            /* verilator lint_on UNUSEDSIGNAL */
            always @(posedge clk) begin
                if (we && (wrow & (NB - 1)) == b) mem[wrow >> LNB] <= wdata;
                q <= mem[ra];
            end
            assign qall[b*RBITS +: RBITS] = q;
        end

        for (j = 0; j < SIMD; j = j + 1) begin : g_byte
            // candidates of window byte j, one per start position (padded to a power of two)
            wire [8*(1 << LNS)-1:0] cand;
            for (k = 0; k < (1 << LNS); k = k + 1) begin : g_cand
                if (k < NS) begin : g_real
                    assign cand[8*k +: 8] = qall[8*((k*G + j) % (NB*RBYTES)) +: 8];
                end else begin : g_pad
                    assign cand[8*k +: 8] = 8'd0;
                end
            end
            always @(*) rdata[8*j +: 8] = cand[{sel_q, 3'b000} +: 8];
        end
    endgenerate
endmodule

`default_nettype wire
