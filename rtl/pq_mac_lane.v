// pq_mac_lane: one packed DSP (pq_dsp_mul) and its four fabric accumulators.
//   2-lane mode (outer_i=0): A = w0 + w1*2^18, B = x0          -> fields at bits 0 and 18
//   outer mode  (outer_i=1): A = x0 + x1*2^18, B = w0 + w1*2^9 -> fields at 0, 9, 18, 27
// P accumulates from first_i to last_i (the window, bounded so no field overflows, see
// docs/HARDWARE.md section 5); the cycle after last_i the fields are extracted with sign
// correction and added to acc0 (x0,w0), acc1 (x0,w1), acc2 (x1,w0), acc3 (x1,w1).
`default_nettype none
module pq_mac_lane (
    input  wire              clk_i,
    input  wire              outer_i,
    input  wire              clr_i,     // clear the fabric accumulators
    input  wire              valid_i,
    input  wire              first_i,
    input  wire              last_i,
    input  wire signed [7:0] w0_i,
    input  wire signed [7:0] w1_i,
    input  wire signed [7:0] x0_i,
    input  wire signed [7:0] x1_i,
    output reg  [31:0]       acc0_o,
    output reg  [31:0]       acc1_o,
    output reg  [31:0]       acc2_o,
    output reg  [31:0]       acc3_o
);
  wire signed [26:0] w0a = {{19{w0_i[7]}}, w0_i};
  wire signed [26:0] w1a = {{19{w1_i[7]}}, w1_i};
  wire signed [26:0] x0a = {{19{x0_i[7]}}, x0_i};
  wire signed [26:0] x1a = {{19{x1_i[7]}}, x1_i};
  wire signed [17:0] x0b = {{10{x0_i[7]}}, x0_i};
  wire signed [17:0] w0b = {{10{w0_i[7]}}, w0_i};
  wire signed [17:0] w1b = {{10{w1_i[7]}}, w1_i};
  wire signed [26:0] a = outer_i ? x0a + (x1a <<< 18) : w0a + (w1a <<< 18);
  wire signed [17:0] b = outer_i ? w0b + (w1b <<< 9) : x0b;
  wire signed [47:0] p;

  pq_dsp_mul u_dsp (.clk_i(clk_i), .ce_i(valid_i), .acc_i(!first_i), .a_i(a), .b_i(b), .p_o(p));

  reg ext_q;
  always @(posedge clk_i) ext_q <= valid_i && last_i;

  // sign-corrected field extraction
  wire [29:0] h18 = p[47:18] + {29'd0, p[17]};           // 2-lane: upper field
  wire [38:0] q1  = p[47:9] + {38'd0, p[8]};             // outer: remove field 0
  wire [29:0] q2  = q1[38:9] + {29'd0, q1[8]};           // remove field 1
  wire [20:0] q3  = q2[29:9] + {20'd0, q2[8]};           // field 3
  wire [31:0] f0 = outer_i ? {{23{p[8]}}, p[8:0]}   : {{14{p[17]}}, p[17:0]};
  wire [31:0] f1 = outer_i ? {{23{q1[8]}}, q1[8:0]} : {{2{h18[29]}}, h18};
  wire [31:0] f2 = outer_i ? {{23{q2[8]}}, q2[8:0]} : 32'd0;
  wire [31:0] f3 = outer_i ? {{11{q3[20]}}, q3}     : 32'd0;

  always @(posedge clk_i) begin
    if (clr_i) begin
      acc0_o <= 32'd0; acc1_o <= 32'd0; acc2_o <= 32'd0; acc3_o <= 32'd0;
    end else if (ext_q) begin
      acc0_o <= acc0_o + f0; acc1_o <= acc1_o + f1;
      acc2_o <= acc2_o + f2; acc3_o <= acc3_o + f3;
    end
  end
endmodule
`default_nettype wire
