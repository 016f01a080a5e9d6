// pq_res_out: result buffer (two step buffers of up to two columns of MAX_ROWS bytes) and the
// res stream packer: after commit_i for a buffer, its columns are emitted m-fastest, one byte
// per cycle, packed little-endian into 32-bit words (4-word FIFO); TLAST on the call's last word.
`default_nettype none
module pq_res_out #(
    parameter integer MAX_ROWS = 256,
    parameter integer RW = 9           // width of a row count (holds MAX_ROWS)
) (
    input  wire          clk_i,
    input  wire          rst_ni,
    input  wire          start_i,      // call start (all buffers are empty)
    input  wire [RW-1:0] m_i,          // rows of the call
    // write port (requantiser): address {buf, col, row}
    input  wire          we_i,
    input  wire [$clog2(MAX_ROWS)+1:0] waddr_i,
    input  wire [7:0]    wdata_i,
    // commit a finished step buffer
    input  wire          commit_i,
    input  wire          commit_buf_i,
    input  wire          commit_two_i,
    input  wire          commit_last_i,
    output reg           freed_o,      // pulse: the last byte of buffer freed_buf_o was read
    output reg           freed_buf_o,
    output reg           done_o,       // pulse: TLAST word accepted
    // res stream
    output wire [31:0]   tdata_o,
    output wire          tvalid_o,
    input  wire          tready_i,
    output wire          tlast_o
);
  localparam integer MW = $clog2(MAX_ROWS);
  reg [7:0] mem [0:4*MAX_ROWS-1];
  always @(posedge clk_i) if (we_i) mem[waddr_i] <= wdata_i;

  // committed buffers (in order): a 2-entry queue because commits alternate buffers
  reg [1:0] pend, two, last;
  reg        cur;      // buffer being emitted
  reg        col;
  reg [RW-1:0] m;

  // word FIFO
  reg [32:0] fifo [0:3];
  reg [1:0]  wp, rp;
  reg [2:0]  fcnt;
  reg [23:0] coll;
  reg [1:0]  ccnt;
  reg        rd_v, rd_fin;    // byte read issued last cycle; it is the call's last byte

  wire       active = pend[cur];
  wire       issue = active && (fcnt <= 3'd2) && !(rd_v && rd_fin);
  wire       last_row = (m == m_i - 1'b1);
  wire       buf_end = last_row && (col || !two[cur]);
  reg  [7:0] rbyte;
  always @(posedge clk_i) if (issue) rbyte <= mem[{cur, col, m[MW-1:0]}];

  wire       pop = tvalid_o && tready_i;
  wire       mkword = rd_v && (ccnt == 2'd3 || rd_fin);
  wire [31:0] word = (ccnt == 2'd0) ? {24'd0, rbyte} :
                     (ccnt == 2'd1) ? {16'd0, rbyte, coll[7:0]} :
                     (ccnt == 2'd2) ? {8'd0, rbyte, coll[15:0]} : {rbyte, coll};
  assign tvalid_o = (fcnt != 3'd0);
  assign tdata_o  = fifo[rp][31:0];
  assign tlast_o  = fifo[rp][32];

  always @(posedge clk_i) begin
    if (!rst_ni) begin
      pend <= 2'b00; two <= 2'b00; last <= 2'b00; cur <= 1'b0; col <= 1'b0;
      m <= {RW{1'b0}}; wp <= 2'd0; rp <= 2'd0; fcnt <= 3'd0; ccnt <= 2'd0; rd_v <= 1'b0;
      rd_fin <= 1'b0; done_o <= 1'b0; coll <= 24'd0; freed_o <= 1'b0; freed_buf_o <= 1'b0;
    end else if (start_i) begin
      cur <= 1'b0; col <= 1'b0; m <= {RW{1'b0}}; pend <= 2'b00; done_o <= 1'b0; freed_o <= 1'b0;
    end else begin
      done_o <= pop && tlast_o;
      if (commit_i) begin
        pend[commit_buf_i] <= 1'b1; two[commit_buf_i] <= commit_two_i;
        last[commit_buf_i] <= commit_last_i;
      end
      rd_v <= issue;
      freed_o <= issue && buf_end;
      freed_buf_o <= cur;
      rd_fin <= issue && buf_end && last[cur];
      if (issue) begin
        if (last_row) begin
          m <= {RW{1'b0}};
          if (buf_end) begin col <= 1'b0; pend[cur] <= 1'b0; cur <= !cur; end
          else col <= 1'b1;
        end else m <= m + 1'b1;
      end
      if (rd_v) begin
        if (mkword) ccnt <= 2'd0; else ccnt <= ccnt + 2'd1;
        case (ccnt)
          2'd0: coll[7:0] <= rbyte;
          2'd1: coll[15:8] <= rbyte;
          default: coll[23:16] <= rbyte;
        endcase
      end
      if (mkword) begin fifo[wp] <= {rd_fin, word}; wp <= wp + 2'd1; end
      if (pop) rp <= rp + 2'd1;
      fcnt <= fcnt + {2'd0, mkword} - {2'd0, pop};
    end
  end
endmodule
`default_nettype wire
