// Base-3 weight decoder: one byte holding 5 trits -> five 2-bit i2 codes.
//
// Why: base-3 packing (8 bits per 5 weights, STREAM.md) saves 20% of the weight stream over
// 2-bit codes. The byte value is sum_t (w_t + 1) * 3**t, so base-3 digit t *is* the i2 code of
// trit t and the lanes downstream are shared with the i2 build. A 256-entry ROM of 10 bits is
// the whole decoder (8-input functions: a few LUT6 per output bit). Values 243..255 never occur
// in a valid stream; they decode to whatever the arithmetic gives, harmlessly.
`default_nettype none

module tgemv_b3dec (
    input  wire [7:0] byte_in,
    output wire [9:0] codes     // code of trit t at [2t +: 2]
);
    // Truth table of code bit `bit` (0..9) over all 256 byte values. One 256-entry table per
    // output bit, indexed directly by the byte, is an 8-input function each: synthesis maps it
    // to a few LUT6s and muxes (a single 2560-bit table indexed by 10*byte would make a
    // multiplier and a wide shifter out of the index).
    function [255:0] code_bit;
        input integer bit_index;
        integer b, x, t, d;
        begin
            for (b = 0; b < 256; b = b + 1) begin
                x = b;
                for (t = 0; t < bit_index / 2; t = t + 1) x = x / 3;
                d = x % 3;
                code_bit[b] = d[bit_index % 2];
            end
        end
    endfunction

    genvar k;
    generate
        for (k = 0; k < 10; k = k + 1) begin : g_bit
            localparam [255:0] TABLE = code_bit(k);
            assign codes[k] = TABLE[byte_in];
        end
    endgenerate
endmodule

`default_nettype wire
