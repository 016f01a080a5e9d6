// pq_act_buf: activation loader. Takes the act byte stream (4 bytes per word, up to 4 bytes per
// cycle, never across a column boundary) into two step buffers (double buffering); a step is
// two columns in INT2 outer-product mode (outer_i and >= 2 columns left), else one column.
// Read port: x0 = X[col 0 of step, k], x1 = X[col 1 of step, k], one cycle latency.
`default_nettype none
module pq_act_buf #(
    parameter integer MAX_COLS = 1024,
    parameter integer CW = 11            // width of a column index / count (holds MAX_COLS)
) (
    input  wire          clk_i,
    input  wire          rst_ni,
    input  wire          start_i,        // call start: load N columns of K bytes
    input  wire [CW-1:0] k_i,
    input  wire [31:0]   n_i,
    input  wire          outer_i,
    input  wire [31:0]   tdata_i,
    input  wire          tvalid_i,
    output wire          tready_o,
    // step buffers
    output reg  [1:0]    full_o,
    output reg  [1:0]    two_o,          // buffer holds two columns
    input  wire          release_i,
    input  wire          release_buf_i,
    // read port
    input  wire          rd_buf_i,
    /* verilator lint_off UNUSEDSIGNAL */  // k < MAX_COLS: the top bit of a count is never set here
    input  wire [CW-1:0] rd_k_i,
    /* verilator lint_on UNUSEDSIGNAL */
    output wire signed [7:0] x0_o,
    output wire signed [7:0] x1_o
);
  localparam integer LW = MAX_COLS / 4 * 2;      // words per lane memory (2 buffers)
  localparam integer LAW = $clog2(LW);

  reg          active;
  reg [31:0]   cols_left;   // columns not yet fully loaded
  reg          wbuf, colpar, step_two;
  reg [CW-1:0] k;
  reg [31:0]   hb;
  reg [2:0]    hcnt;
  reg [1:0]    hoff;

  // bytes taken this cycle: never past the column end
  wire [CW-1:0] rem = k_i - k;
  wire          can = active && !full_o[wbuf] && (hcnt != 3'd0);
  wire [2:0]    n = !can ? 3'd0 : (rem < {{(CW-3){1'b0}}, hcnt}) ? rem[2:0] : hcnt;
  wire          col_end = can && (rem == {{(CW-3){1'b0}}, n});
  wire          step_end = col_end && (colpar || !step_two);
  wire          last_col = (cols_left == 32'd1);
  wire          finish = col_end && last_col;
  wire [2:0]    hcnt_n = hcnt - n;
  assign tready_o = active && !finish && (hcnt_n == 3'd0);

  // lane memories: [colpar][lane], address {buffer, k[CW-1:2]}
  reg [7:0] m00 [0:LW-1]; reg [7:0] m01 [0:LW-1]; reg [7:0] m02 [0:LW-1]; reg [7:0] m03 [0:LW-1];
  reg [7:0] m10 [0:LW-1]; reg [7:0] m11 [0:LW-1]; reg [7:0] m12 [0:LW-1]; reg [7:0] m13 [0:LW-1];

  // per-lane write: lane e gets byte i = (e - k) mod 4 when i < n
  reg [3:0]       we;
  reg [4*LAW-1:0] wa;
  reg [31:0]      wd;
  integer e;
  reg [1:0]  i2;
  /* verilator lint_off UNUSEDSIGNAL */
  reg [CW-1:0] kk;      // only the word index bits address memory
  /* verilator lint_on UNUSEDSIGNAL */
  always @* begin
    we = 4'd0; wa = {4*LAW{1'b0}}; wd = 32'd0; i2 = 2'd0; kk = {CW{1'b0}};
    for (e = 0; e < 4; e = e + 1) begin
      i2 = e[1:0] - k[1:0];
      kk = k + {{(CW-2){1'b0}}, i2};
      we[e] = ({1'b0, i2} < n);
      wa[LAW*e +: LAW] = {wbuf, kk[LAW:2]};
      wd[8*e +: 8] = hb[{hoff + i2, 3'b000} +: 8];
    end
  end

  always @(posedge clk_i) begin
    if (we[0] && !colpar) m00[wa[LAW*0 +: LAW]] <= wd[8*0 +: 8];
    if (we[1] && !colpar) m01[wa[LAW*1 +: LAW]] <= wd[8*1 +: 8];
    if (we[2] && !colpar) m02[wa[LAW*2 +: LAW]] <= wd[8*2 +: 8];
    if (we[3] && !colpar) m03[wa[LAW*3 +: LAW]] <= wd[8*3 +: 8];
    if (we[0] && colpar)  m10[wa[LAW*0 +: LAW]] <= wd[8*0 +: 8];
    if (we[1] && colpar)  m11[wa[LAW*1 +: LAW]] <= wd[8*1 +: 8];
    if (we[2] && colpar)  m12[wa[LAW*2 +: LAW]] <= wd[8*2 +: 8];
    if (we[3] && colpar)  m13[wa[LAW*3 +: LAW]] <= wd[8*3 +: 8];
  end

  // read port
  wire [LAW-1:0] ra = {rd_buf_i, rd_k_i[LAW:2]};
  reg [7:0] r00, r01, r02, r03, r10, r11, r12, r13;
  reg [1:0] rl;
  always @(posedge clk_i) begin
    r00 <= m00[ra]; r01 <= m01[ra]; r02 <= m02[ra]; r03 <= m03[ra];
    r10 <= m10[ra]; r11 <= m11[ra]; r12 <= m12[ra]; r13 <= m13[ra];
    rl <= rd_k_i[1:0];
  end
  assign x0_o = (rl == 2'd0) ? r00 : (rl == 2'd1) ? r01 : (rl == 2'd2) ? r02 : r03;
  assign x1_o = (rl == 2'd0) ? r10 : (rl == 2'd1) ? r11 : (rl == 2'd2) ? r12 : r13;

  always @(posedge clk_i) begin
    if (!rst_ni) begin
      active <= 1'b0; cols_left <= 32'd0; wbuf <= 1'b0; colpar <= 1'b0; step_two <= 1'b0;
      k <= {CW{1'b0}}; hb <= 32'd0; hcnt <= 3'd0; hoff <= 2'd0;
      full_o <= 2'b00; two_o <= 2'b00;
    end else if (start_i) begin
      active <= 1'b1; cols_left <= n_i; wbuf <= 1'b0; colpar <= 1'b0;
      step_two <= outer_i && (n_i >= 32'd2);
      k <= {CW{1'b0}}; hcnt <= 3'd0; hoff <= 2'd0; full_o <= 2'b00;
    end else begin
      if (release_i) full_o[release_buf_i] <= 1'b0;
      hcnt <= hcnt_n;
      hoff <= hoff + n[1:0];
      k <= col_end ? {CW{1'b0}} : k + {{(CW-3){1'b0}}, n};
      if (col_end) begin
        cols_left <= cols_left - 32'd1;
        colpar <= step_end ? 1'b0 : 1'b1;
      end
      if (step_end) begin
        full_o[wbuf] <= 1'b1;
        two_o[wbuf] <= step_two;
        wbuf <= !wbuf;
        // next step: two columns when outer and at least two remain after this column
        step_two <= outer_i && (cols_left >= 32'd3);
      end
      if (finish) active <= 1'b0;
      if (tvalid_i && tready_o) begin
        hb <= tdata_i; hcnt <= 3'd4; hoff <= 2'd0;
      end
    end
  end
endmodule
`default_nettype wire
