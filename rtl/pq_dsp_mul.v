// pq_dsp_mul: one DSP48E2-shaped multiply-accumulate: P <= (acc ? P : 0) + A(27b) * B(18b).
// Every multiplier of the accelerator is an instance of this module, so synthesis maps
// exactly one DSP slice per instance (the 45-bit product and 48-bit P as in a DSP48E2).
`default_nettype none
module pq_dsp_mul (
    input  wire               clk_i,
    input  wire               ce_i,    // clock enable for P
    input  wire               acc_i,   // 1: P + A*B, 0: A*B
    input  wire signed [26:0] a_i,
    input  wire signed [17:0] b_i,
    output reg  signed [47:0] p_o
);
  (* use_dsp = "yes" *) wire signed [44:0] m = a_i * b_i;
  wire signed [47:0] m48 = {{3{m[44]}}, m};
  always @(posedge clk_i) begin
    if (ce_i) p_o <= (acc_i ? p_o : 48'sd0) + m48;
  end
endmodule
`default_nettype wire
