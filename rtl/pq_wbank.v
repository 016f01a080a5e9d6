// pq_wbank: one weight bank (the packed rows of every (2*LANES)-th output row, each row
// starting on a 32-bit word) plus a sequential unpacker that returns one sign-extended code
// of the current precision per `take`. Four byte-lane memories: the loader writes up to four
// consecutive bytes of a row per cycle (each to its own lane, addresses may differ by one word);
// the unpacker reads one 32-bit word (all lanes at one address).
`default_nettype none
module pq_wbank #(
    parameter integer WORDS = 512,
    parameter integer AW    = 9
) (
    input  wire          clk_i,
    input  wire          rst_ni,
    // write port (weight loader)
    input  wire [3:0]      we_i,      // per byte lane
    input  wire [4*AW-1:0] waddr_i,   // per byte lane
    input  wire [31:0]     wbyte_i,   // per byte lane
    // unpacker
    input  wire          start_i,   // restart at word base_i (drops buffered bits)
    input  wire [AW-1:0] base_i,
    input  wire [3:0]    bits_i,    // 2, 4, 6 or 8
    input  wire          take_i,    // consume one code this cycle
    output reg  signed [7:0] code_o,
    output wire          ready_o    // >= 32 bits buffered: safe to take every cycle
);
  reg [7:0] mem0 [0:WORDS-1];
  reg [7:0] mem1 [0:WORDS-1];
  reg [7:0] mem2 [0:WORDS-1];
  reg [7:0] mem3 [0:WORDS-1];
  reg [31:0] rdata;
  reg [AW-1:0] ptr;
  reg [63:0] buf_q;
  reg [6:0]  cnt;
  reg        inflight;

  always @(posedge clk_i) begin
    if (we_i[0]) mem0[waddr_i[0*AW +: AW]] <= wbyte_i[7:0];
    if (we_i[1]) mem1[waddr_i[1*AW +: AW]] <= wbyte_i[15:8];
    if (we_i[2]) mem2[waddr_i[2*AW +: AW]] <= wbyte_i[23:16];
    if (we_i[3]) mem3[waddr_i[3*AW +: AW]] <= wbyte_i[31:24];
  end

  // current code (low bits of the buffer), sign-extended
  always @* begin
    case (bits_i)
      4'd2:    code_o = {{6{buf_q[1]}}, buf_q[1:0]};
      4'd4:    code_o = {{4{buf_q[3]}}, buf_q[3:0]};
      4'd6:    code_o = {{2{buf_q[5]}}, buf_q[5:0]};
      default: code_o = buf_q[7:0];
    endcase
  end

  wire [6:0]  cnt_t = take_i ? cnt - {3'd0, bits_i} : cnt;
  wire [63:0] buf_t = take_i ? (buf_q >> bits_i) : buf_q;
  // a refill arrives only when the read was issued with cnt_n < 32, so cnt_t < 32 here
  // (at most 8 bits are consumed meanwhile): a 5-bit shift amount suffices
  wire [63:0] buf_n = inflight ? (buf_t | ({32'd0, rdata} << cnt_t[4:0])) : buf_t;
  wire [6:0]  cnt_n = inflight ? cnt_t + 7'd32 : cnt_t;
  wire        issue = (cnt_n < 7'd32) && !start_i;
  assign ready_o = (cnt >= 7'd32);

  always @(posedge clk_i) begin
    if (issue) rdata <= {mem3[ptr], mem2[ptr], mem1[ptr], mem0[ptr]};
  end

  always @(posedge clk_i) begin
    if (!rst_ni) begin
      ptr <= {AW{1'b0}}; buf_q <= 64'd0; cnt <= 7'd0; inflight <= 1'b0;
    end else if (start_i) begin
      ptr <= base_i; buf_q <= 64'd0; cnt <= 7'd0; inflight <= 1'b0;
    end else begin
      buf_q <= buf_n;
      cnt <= cnt_n;
      inflight <= issue;
      if (issue) ptr <= ptr + 1'b1;
    end
  end
endmodule
`default_nettype wire
