// pq_core: the accelerator datapath and sequencer (everything but the AXI-Lite slave).
//   load constants (8 bytes per row) -> load packed rows into 2*LANES banks -> per step (one
//   column, or two in INT2 outer-product mode) and per row group of 2*LANES rows: stream K
//   codes from every bank and K activations through LANES packed DSPs, hand the accumulators
//   to the requantiser (one shared DSP), emit results m-fastest. See docs/HARDWARE.md.
`default_nettype none
module pq_core #(
    parameter integer LANES      = 8,
    parameter integer MAX_ROWS   = 256,
    parameter integer MAX_COLS   = 1024,
    parameter integer WMEM_BYTES = 32768
) (
    input  wire        clk_i,
    input  wire        rst_ni,
    input  wire        start_i,
    output reg         ready_o,   // pulse: call accepted, arguments sampled
    output reg         done_o,    // pulse: call finished
    output wire        idle_o,
    /* verilator lint_off UNUSEDSIGNAL */  // 32-bit registers; only the in-range low bits matter
    input  wire [31:0] prec_i,
    input  wire [31:0] rows_i,
    input  wire [31:0] cols_i,
    input  wire [31:0] ncols_i,
    input  wire [31:0] flags_i,
    /* verilator lint_on UNUSEDSIGNAL */
    input  wire [31:0] wgt_tdata_i,
    input  wire        wgt_tvalid_i,
    output wire        wgt_tready_o,
    input  wire [31:0] act_tdata_i,
    input  wire        act_tvalid_i,
    output wire        act_tready_o,
    output wire [31:0] res_tdata_o,
    output wire        res_tvalid_o,
    input  wire        res_tready_i,
    output wire        res_tlast_o
);
  localparam integer NB = 2 * LANES;                 // banks = rows per group
  localparam integer RPB = (MAX_ROWS + NB - 1) / NB; // max rows per bank
  localparam integer BW_CAP = WMEM_BYTES / (4 * NB) + RPB + MAX_COLS / 4 + 2;
  localparam integer BW_MAX = RPB * (MAX_COLS / 4);
  localparam integer BANK_WORDS = (BW_CAP < BW_MAX) ? BW_CAP : BW_MAX;
  localparam integer BAW = $clog2(BANK_WORDS);
  localparam integer RW = $clog2(MAX_ROWS + 1);
  localparam integer CW = $clog2(MAX_COLS + 1);
  localparam integer MW = $clog2(MAX_ROWS);
  localparam integer NI = 4 * LANES;                 // accumulators per group
  localparam [31:0] NB1_32 = NB - 1;
  localparam [31:0] NB_32 = NB;
  localparam [31:0] NI1_32 = NI - 1;
  localparam [$clog2(NB)-1:0] NB1 = NB1_32[$clog2(NB)-1:0];
  localparam [RW+5:0] NBW = NB_32[RW+5:0];
  localparam [$clog2(NI)-1:0] NI1 = NI1_32[$clog2(NI)-1:0];

  localparam [2:0] S_IDLE = 3'd0, S_CONST = 3'd1, S_WLOAD = 3'd2, S_RUN = 3'd3, S_FIN = 3'd4;
  localparam [2:0] R_WAIT = 3'd0, R_PRIME = 3'd1, R_MAC = 3'd2, R_DRAIN = 3'd3, R_HAND = 3'd4;

  reg [2:0]    st, rs;
  reg [3:0]    bits;
  reg [RW-1:0] M;
  reg [CW-1:0] K;
  reg [31:0]   N;
  reg          relu;
  reg [CW-1:0] rb;        // packed bytes per row
  /* verilator lint_off UNUSEDSIGNAL */  // rw/tpos: top bit only for widths; b_ready: all banks prime alike
  wire [CW-1:0] rw = (rb + 3) >> 2;   // words per row slot in a bank
  assign idle_o = (st == S_IDLE);

  // ---------------- constants
  reg [31:0] bias_mem [0:MAX_ROWS-1];
  reg [23:0] ms_mem   [0:MAX_ROWS-1];
  reg [RW:0] cwc;        // constant word counter

  // ---------------- weight loader state (byte 0 of the next word)
  reg [$clog2(NB)-1:0] lb;
  reg [CW-1:0]         lpos;
  reg [BAW-1:0]        lbase;
  reg [RW-1:0]         lrow;
  localparam integer BBW = $clog2(NB);
  // byte j of the current word: bank, position in row, bank word base, row (flattened, j=0..4)
  reg [5*BBW-1:0] jb;
  reg [5*CW-1:0]  jpos;
  reg [5*BAW-1:0] jbase;
  reg [5*RW-1:0]  jrow;
  integer j, q;
  always @* begin
    jb = {5*BBW{1'b0}}; jpos = {5*CW{1'b0}}; jbase = {5*BAW{1'b0}}; jrow = {5*RW{1'b0}};
    jb[BBW-1:0] = lb; jpos[CW-1:0] = lpos; jbase[BAW-1:0] = lbase; jrow[RW-1:0] = lrow;
    for (j = 0; j < 4; j = j + 1) begin
      if (jpos[CW*j +: CW] + 1'b1 == rb) begin
        jpos[CW*(j+1) +: CW] = {CW{1'b0}};
        jrow[RW*(j+1) +: RW] = jrow[RW*j +: RW] + 1'b1;
        if (jb[BBW*j +: BBW] == NB1) begin
          jb[BBW*(j+1) +: BBW] = {BBW{1'b0}};
          jbase[BAW*(j+1) +: BAW] = jbase[BAW*j +: BAW] + rw[BAW-1:0];
        end else begin
          jb[BBW*(j+1) +: BBW] = jb[BBW*j +: BBW] + 1'b1;
          jbase[BAW*(j+1) +: BAW] = jbase[BAW*j +: BAW];
        end
      end else begin
        jpos[CW*(j+1) +: CW] = jpos[CW*j +: CW] + 1'b1;
        jrow[RW*(j+1) +: RW] = jrow[RW*j +: RW];
        jb[BBW*(j+1) +: BBW] = jb[BBW*j +: BBW];
        jbase[BAW*(j+1) +: BAW] = jbase[BAW*j +: BAW];
      end
    end
  end
  wire wgt_hs = wgt_tvalid_i && wgt_tready_o;
  assign wgt_tready_o = (st == S_CONST) || (st == S_WLOAD);

  reg [4*NB-1:0]     b_we;    // [bank][lane]
  reg [4*BAW*NB-1:0] b_wa;
  reg [32*NB-1:0]    b_wd;
  reg [CW-1:0]       tpos;
  /* verilator lint_on UNUSEDSIGNAL */
  integer e;
  always @* begin
    tpos = {CW{1'b0}}; b_we = {4*NB{1'b0}}; b_wa = {4*BAW*NB{1'b0}}; b_wd = {32*NB{1'b0}};
    for (q = 0; q < NB; q = q + 1) begin
      for (e = 0; e < 4; e = e + 1) begin
        for (j = 0; j < 4; j = j + 1) begin
          if (st == S_WLOAD && wgt_hs && jrow[RW*j +: RW] < M && jb[BBW*j +: BBW] == q[BBW-1:0]
              && jpos[CW*j +: 2] == e[1:0]) begin
            tpos = jpos[CW*j +: CW] >> 2;
            b_we[4*q + e] = 1'b1;
            b_wa[BAW*(4*q + e) +: BAW] = jbase[BAW*j +: BAW] + tpos[BAW-1:0];
            b_wd[32*q + 8*e +: 8] = wgt_tdata_i[8*j +: 8];
          end
        end
      end
    end
  end

  // ---------------- run state
  reg          cur;          // step buffer (act and result)
  reg          step_two;
  reg [31:0]   cols_left;
  reg [RW+5:0] gb;           // first row of the group
  reg [BAW-1:0] gw;          // bank word address of the group's rows
  reg [CW-1:0] k;
  reg [7:0]    wk;           // position inside the accumulation window
  reg [1:0]    dcnt;
  reg          bstart;
  reg [1:0]    claim;
  wire         outer = step_two;
  wire [7:0]   dmax = outer ? 8'd0 : (bits == 4'd8) ? 8'd7 : (bits == 4'd6) ? 8'd31 : 8'd127;
  wire         k_last = (k == K - 1'b1);
  wire         w_last = (wk == dmax) || k_last;
  wire         mac = (st == S_RUN) && (rs == R_MAC);

  // activation buffer
  wire [1:0] a_full, a_two;
  reg        a_start, a_rel, a_rel_buf;
  wire signed [7:0] x0, x1;
  pq_act_buf #(.MAX_COLS(MAX_COLS), .CW(CW)) u_act (
    .clk_i(clk_i), .rst_ni(rst_ni), .start_i(a_start), .k_i(K), .n_i(N), .outer_i(bits == 4'd2),
    .tdata_i(act_tdata_i), .tvalid_i(act_tvalid_i), .tready_o(act_tready_o),
    .full_o(a_full), .two_o(a_two), .release_i(a_rel), .release_buf_i(a_rel_buf),
    .rd_buf_i(cur), .rd_k_i(k), .x0_o(x0), .x1_o(x1));

  // banks
  wire [8*NB-1:0] codes;
  /* verilator lint_off UNUSEDSIGNAL */
  wire [NB-1:0]   b_ready;   // all banks prime in lock-step; bank 0 stands for all
  /* verilator lint_on UNUSEDSIGNAL */
  genvar gi;
  generate
    for (gi = 0; gi < NB; gi = gi + 1) begin : g_bank
      pq_wbank #(.WORDS(BANK_WORDS), .AW(BAW)) u_bank (
        .clk_i(clk_i), .rst_ni(rst_ni),
        .we_i(b_we[4*gi +: 4]), .waddr_i(b_wa[4*BAW*gi +: 4*BAW]), .wbyte_i(b_wd[32*gi +: 32]),
        .start_i(bstart), .base_i(gw), .bits_i(bits), .take_i(mac),
        .code_o(codes[8*gi +: 8]), .ready_o(b_ready[gi]));
    end
  endgenerate

  // stage 1: codes of valid rows, window flags
  reg [8*NB-1:0] code_q;
  reg s1_v, s1_first, s1_last, lclr;
  integer r;
  always @(posedge clk_i) begin
    s1_v <= mac && rst_ni;
    s1_first <= (wk == 8'd0);
    s1_last <= w_last;
    for (r = 0; r < NB; r = r + 1)
      code_q[8*r +: 8] <= (gb + r[RW+5:0] < {6'd0, M}) ? codes[8*r +: 8] : 8'd0;
  end

  wire [32*NI-1:0] accs;
  generate
    for (gi = 0; gi < LANES; gi = gi + 1) begin : g_lane
      pq_mac_lane u_lane (
        .clk_i(clk_i), .outer_i(outer), .clr_i(lclr), .valid_i(s1_v), .first_i(s1_first),
        .last_i(s1_last), .w0_i(code_q[16*gi +: 8]), .w1_i(code_q[16*gi+8 +: 8]),
        .x0_i(x0), .x1_i(x1),
        .acc0_o(accs[128*gi +: 32]), .acc1_o(accs[128*gi+32 +: 32]),
        .acc2_o(accs[128*gi+64 +: 32]), .acc3_o(accs[128*gi+96 +: 32]));
    end
  endgenerate

  // ---------------- holding registers + requant feeder
  reg [32*NI-1:0] hold;
  reg          h_busy, h_two, h_buf, h_lastg, h_lasts;
  reg [RW+5:0] h_gb;
  reg [$clog2(NI)-1:0] fi;
  reg          fph;
  reg [2:0]    ccnt;
  reg          committing;
  wire [RW+5:0] f_row = h_gb + {{(RW+7-$clog2(NI)){1'b0}}, fi[$clog2(NI)-1:2], fi[0]};
  wire         f_col = fi[1];
  wire         f_ok = (f_row < {6'd0, M}) && (!f_col || h_two);
  wire         f_end = (fi == NI1);
  reg [31:0]   cb_q;
  /* verilator lint_off UNUSEDSIGNAL */
  reg [23:0]   cm_q;          // bits 23:22: the zero byte and shift's unused top bits
  /* verilator lint_on UNUSEDSIGNAL */
  wire         rq_ready, rq_v;
  /* verilator lint_off UNUSEDSIGNAL */
  wire         rq_busy;       // observability only (the commit delay covers the pipeline)
  /* verilator lint_on UNUSEDSIGNAL */
  wire [7:0]   rq_y;
  wire [MW+1:0] rq_tag;
  wire         rq_in = h_busy && !committing && fph;
  always @(posedge clk_i) begin
    if (h_busy && !fph) begin cb_q <= bias_mem[f_row[MW-1:0]]; cm_q <= ms_mem[f_row[MW-1:0]]; end
  end
  pq_requant #(.TW(MW + 2)) u_rq (
    .clk_i(clk_i), .rst_ni(rst_ni), .valid_i(rq_in), .ready_o(rq_ready),
    .acc_i(hold[32*fi +: 32]), .bias_i(cb_q), .mult_i(cm_q[15:0]), .shift_i(cm_q[21:16]),
    .relu_i(relu), .tag_i({h_buf, f_col, f_row[MW-1:0]}),
    .valid_o(rq_v), .y_o(rq_y), .tag_o(rq_tag), .busy_o(rq_busy));

  reg  commit;
  wire freed, freed_buf, r_done;
  pq_res_out #(.MAX_ROWS(MAX_ROWS), .RW(RW)) u_out (
    .clk_i(clk_i), .rst_ni(rst_ni), .start_i(ready_o), .m_i(M),
    .we_i(rq_v), .waddr_i(rq_tag), .wdata_i(rq_y),
    .commit_i(commit), .commit_buf_i(h_buf), .commit_two_i(h_two), .commit_last_i(h_lasts),
    .freed_o(freed), .freed_buf_o(freed_buf), .done_o(r_done),
    .tdata_o(res_tdata_o), .tvalid_o(res_tvalid_o), .tready_i(res_tready_i), .tlast_o(res_tlast_o));

  wire [31:0] step_cols = step_two ? 32'd2 : 32'd1;
  wire        hand = (st == S_RUN) && (rs == R_HAND) && !h_busy;

  always @(posedge clk_i) begin
    if (!rst_ni) begin
      st <= S_IDLE; rs <= R_WAIT; ready_o <= 1'b0; a_rel_buf <= 1'b0; done_o <= 1'b0; a_start <= 1'b0; a_rel <= 1'b0;
      bstart <= 1'b0; lclr <= 1'b0; claim <= 2'b00; h_busy <= 1'b0; fph <= 1'b0; fi <= 0;
      commit <= 1'b0; committing <= 1'b0; ccnt <= 3'd0; cur <= 1'b0; k <= {CW{1'b0}}; wk <= 8'd0;
      bits <= 4'd8; M <= {RW{1'b0}}; K <= {CW{1'b0}}; N <= 32'd0; relu <= 1'b0; rb <= {CW{1'b0}};
      step_two <= 1'b0; cols_left <= 32'd0; gb <= 0; gw <= {BAW{1'b0}}; dcnt <= 2'd0;
      cwc <= 0; lb <= 0; lpos <= 0; lbase <= 0; lrow <= 0;
      h_two <= 1'b0; h_buf <= 1'b0; h_lastg <= 1'b0; h_lasts <= 1'b0; h_gb <= 0;
    end else begin
      ready_o <= 1'b0; done_o <= 1'b0; a_start <= 1'b0; a_rel <= 1'b0; bstart <= 1'b0;
      lclr <= 1'b0; commit <= 1'b0;
      if (freed) claim[freed_buf] <= 1'b0;
      case (st)
        S_IDLE: if (start_i && !ready_o) begin
          ready_o <= 1'b1;
          bits <= prec_i[3:0];
          M <= rows_i[RW-1:0];
          K <= cols_i[CW-1:0];
          N <= ncols_i;
          relu <= flags_i[0];
          case (prec_i[3:0])
            4'd2: rb <= (cols_i[CW-1:0] + 3) >> 2;
            4'd4: rb <= (cols_i[CW-1:0] + 1) >> 1;
            4'd6: rb <= ((cols_i[CW-1:0] + 3) >> 2) + (((cols_i[CW-1:0] + 3) >> 2) << 1);
            default: rb <= cols_i[CW-1:0];
          endcase
          cwc <= 0; lb <= 0; lpos <= 0; lbase <= 0; lrow <= 0;
          claim <= 2'b00; cur <= 1'b0; cols_left <= ncols_i; rs <= R_WAIT;
          if (flags_i[1]) begin st <= S_RUN; a_start <= 1'b1; end
          else st <= S_CONST;
        end
        S_CONST: if (wgt_hs) begin
          if (!cwc[0]) bias_mem[cwc[MW:1]] <= wgt_tdata_i;
          else ms_mem[cwc[MW:1]] <= wgt_tdata_i[23:0];
          cwc <= cwc + 1'b1;
          if (cwc == {M - 1'b1, 1'b1}) st <= S_WLOAD;
        end
        S_WLOAD: if (wgt_hs) begin
          lb <= jb[4*BBW +: BBW]; lpos <= jpos[4*CW +: CW]; lbase <= jbase[4*BAW +: BAW]; lrow <= jrow[4*RW +: RW];
          if (jrow[4*RW +: RW] >= M) begin st <= S_RUN; a_start <= 1'b1; end
        end
        S_RUN: case (rs)
          R_WAIT: if (!a_start && a_full[cur] && !claim[cur]) begin
            claim[cur] <= 1'b1;
            step_two <= a_two[cur];
            gb <= 0; gw <= {BAW{1'b0}};
            bstart <= 1'b1; lclr <= 1'b1; dcnt <= 2'd0;
            rs <= R_PRIME;
          end
          R_PRIME: if (!bstart && b_ready[0]) begin
            k <= {CW{1'b0}}; wk <= 8'd0; rs <= R_MAC;
          end
          R_MAC: begin
            k <= k + 1'b1;
            wk <= w_last ? 8'd0 : wk + 1'b1;
            if (k_last) begin rs <= R_DRAIN; dcnt <= 2'd0; end
          end
          R_DRAIN: begin
            dcnt <= dcnt + 1'b1;
            if (dcnt == 2'd2) rs <= R_HAND;
          end
          default: if (hand) begin   // R_HAND
            if (gb + NBW < {6'd0, M}) begin
              gb <= gb + NBW; gw <= gw + rw[BAW-1:0];
              bstart <= 1'b1; lclr <= 1'b1; rs <= R_PRIME;
            end else begin
              a_rel <= 1'b1; a_rel_buf <= cur; cur <= !cur; cols_left <= cols_left - step_cols;
              if (cols_left == step_cols) st <= S_FIN; else rs <= R_WAIT;
            end
          end
        endcase
        S_FIN: if (r_done) begin st <= S_IDLE; done_o <= 1'b1; end
        default: st <= S_IDLE;
      endcase

      // holding registers and feeder
      if (hand) begin
        hold <= accs; h_busy <= 1'b1; h_two <= step_two; h_buf <= cur; h_gb <= gb;
        h_lastg <= !(gb + NBW < {6'd0, M}); h_lasts <= !(gb + NBW < {6'd0, M}) && (cols_left == step_cols);
        fi <= 0; fph <= 1'b0;
      end else if (h_busy) begin
        if (committing) begin
          ccnt <= ccnt + 1'b1;
          if (ccnt == 3'd6) begin commit <= 1'b1; committing <= 1'b0; h_busy <= 1'b0; end
        end else if (!fph) begin
          if (f_ok) fph <= 1'b1;
          else if (f_end) begin
            if (h_lastg) begin committing <= 1'b1; ccnt <= 3'd0; end else h_busy <= 1'b0;
          end else fi <= fi + 1'b1;
        end else if (rq_ready) begin
          fph <= 1'b0;
          if (f_end) begin
            if (h_lastg) begin committing <= 1'b1; ccnt <= 3'd0; end else h_busy <= 1'b0;
          end else fi <= fi + 1'b1;
        end
      end
    end
  end
endmodule
`default_nettype wire
