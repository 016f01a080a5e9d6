// pq_requant: y = sat8(relu?((s*mult + 2^(shift-1)) >>> shift)) with s = acc + bias (int32),
// exactly pyquant.intmath.requantize. One shared pq_dsp_mul, two cycles per result:
// s*mult = ((s >>> 17) * mult) * 2^17 + s[16:0] * mult.  Accepts one item every 2 cycles.
`default_nettype none
module pq_requant #(
    parameter integer TW = 10
) (
    input  wire          clk_i,
    input  wire          rst_ni,
    input  wire          valid_i,
    output wire          ready_o,
    input  wire [31:0]   acc_i,
    input  wire [31:0]   bias_i,
    input  wire [15:0]   mult_i,
    input  wire [5:0]    shift_i,
    input  wire          relu_i,
    input  wire [TW-1:0] tag_i,
    output reg           valid_o,
    output reg  [7:0]    y_o,
    output reg  [TW-1:0] tag_o,
    output wire          busy_o
);
  reg          ph_a, ph_b, ph_c;
  reg [31:0]   s_q;
  reg [15:0]   mult_q;
  reg [5:0]    sh_b, sh_c;
  reg          relu_b, relu_c;
  reg [TW-1:0] tag_b, tag_c;
  reg [47:0]   plo_q;

  assign ready_o = !ph_a;
  assign busy_o  = ph_a || ph_b || ph_c || valid_o;
  wire acc_ok = valid_i && ready_o;

  wire signed [26:0] a = ph_a ? {10'd0, s_q[16:0]} : {{12{s_q[31]}}, s_q[31:17]};
  wire signed [17:0] b = {2'b00, mult_q};
  wire signed [47:0] p;
  pq_dsp_mul u_dsp (.clk_i(clk_i), .ce_i(1'b1), .acc_i(1'b0), .a_i(a), .b_i(b), .p_o(p));

  // phase C: p = hi product, plo_q = lo product
  wire signed [48:0] prod = ({p[47], p} <<< 17) + {1'b0, plo_q};
  wire signed [48:0] rnd  = prod + ($signed(49'd1) <<< (sh_c - 6'd1));
  wire signed [48:0] t    = rnd >>> sh_c;
  wire signed [48:0] tr   = (relu_c && t[48]) ? 49'sd0 : t;
  wire [7:0] y = (tr > 49'sd127) ? 8'd127 : (tr < -49'sd128) ? 8'h80 : tr[7:0];

  always @(posedge clk_i) begin
    if (!rst_ni) begin
      ph_a <= 1'b0; ph_b <= 1'b0; ph_c <= 1'b0; valid_o <= 1'b0;
    end else begin
      ph_a <= acc_ok;
      ph_b <= ph_a;
      ph_c <= ph_b;
      valid_o <= ph_c;
    end
  end

  always @(posedge clk_i) begin
    if (acc_ok) begin
      s_q <= acc_i + bias_i;
      mult_q <= mult_i;
      sh_b <= shift_i; relu_b <= relu_i; tag_b <= tag_i;
    end
    if (ph_b) begin
      plo_q <= p;
      sh_c <= sh_b; relu_c <= relu_b; tag_c <= tag_b;
    end
    if (ph_c) begin
      y_o <= y; tag_o <= tag_c;
    end
  end
endmodule
`default_nettype wire
