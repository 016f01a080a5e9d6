// pq_axil_ctrl: AXI4-Lite slave with the Vitis HLS ap_ctrl_hs register layout
// (docs/HARDWARE.md section 2). Arguments are plain registers; the core samples them when
// it accepts ap_start (ap_ready).
`default_nettype none
module pq_axil_ctrl (
    input  wire        clk_i,
    input  wire        rst_ni,
    // AXI4-Lite
    input  wire        awvalid_i,
    output wire        awready_o,
    input  wire [5:0]  awaddr_i,
    input  wire        wvalid_i,
    output wire        wready_o,
    input  wire [31:0] wdata_i,
    input  wire [3:0]  wstrb_i,
    output reg         bvalid_o,
    input  wire        bready_i,
    output wire [1:0]  bresp_o,
    input  wire        arvalid_i,
    output wire        arready_o,
    input  wire [5:0]  araddr_i,
    output reg         rvalid_o,
    input  wire        rready_i,
    output reg  [31:0] rdata_o,
    output wire [1:0]  rresp_o,
    // core handshake
    output wire        ap_start_o,
    input  wire        ap_ready_i,   // pulse: core accepted the start (args sampled)
    input  wire        ap_done_i,    // pulse: call finished
    input  wire        ap_idle_i,
    output wire        interrupt_o,
    // arguments
    output reg  [31:0] prec_o,
    output reg  [31:0] rows_o,
    output reg  [31:0] cols_o,
    output reg  [31:0] ncols_o,
    output reg  [31:0] flags_o
);
  localparam [5:0] A_CTRL = 6'h00, A_GIE = 6'h04, A_IER = 6'h08, A_ISR = 6'h0C,
                   A_PREC = 6'h10, A_ROWS = 6'h18, A_COLS = 6'h20, A_NCOLS = 6'h28,
                   A_FLAGS = 6'h30;

  // ---- write channel: accept AW and W together (both must be valid), one at a time
  reg        aw_q;      // captured address valid
  reg [5:0]  awaddr_q;
  reg        w_q;
  reg [31:0] wdata_q;
  reg [3:0]  wstrb_q;
  assign awready_o = !aw_q && !bvalid_o;
  assign wready_o  = !w_q && !bvalid_o;
  assign bresp_o   = 2'b00;
  wire do_write = aw_q && w_q && !bvalid_o;

  reg        start_q, auto_restart_q, done_q, ready_q, gie_q;
  reg [1:0]  ier_q, isr_q;
  wire [31:0] wmask = {{8{wstrb_q[3]}}, {8{wstrb_q[2]}}, {8{wstrb_q[1]}}, {8{wstrb_q[0]}}};

  // ---- read channel
  assign arready_o = !rvalid_o;
  assign rresp_o   = 2'b00;
  wire do_read = arvalid_i && arready_o;
  wire rd_ctrl = do_read && (araddr_i == A_CTRL);

  assign ap_start_o  = start_q;
  assign interrupt_o = gie_q && |(isr_q & ier_q);

  always @(posedge clk_i) begin
    if (!rst_ni) begin
      aw_q <= 1'b0; w_q <= 1'b0; bvalid_o <= 1'b0; rvalid_o <= 1'b0; rdata_o <= 32'd0;
      awaddr_q <= 6'd0; wdata_q <= 32'd0; wstrb_q <= 4'd0;
      start_q <= 1'b0; auto_restart_q <= 1'b0; done_q <= 1'b0; ready_q <= 1'b0; gie_q <= 1'b0;
      ier_q <= 2'b00; isr_q <= 2'b00;
      prec_o <= 32'd0; rows_o <= 32'd0; cols_o <= 32'd0; ncols_o <= 32'd0; flags_o <= 32'd0;
    end else begin
      if (awvalid_i && awready_o) begin aw_q <= 1'b1; awaddr_q <= awaddr_i; end
      if (wvalid_i && wready_o) begin w_q <= 1'b1; wdata_q <= wdata_i; wstrb_q <= wstrb_i; end
      if (bvalid_o && bready_i) bvalid_o <= 1'b0;

      // ap_start: set by a write of 1, cleared when the core accepts (unless auto_restart)
      if (ap_ready_i && !auto_restart_q) start_q <= 1'b0;
      // ap_done / ap_ready: sticky, clear on read of AP_CTRL
      if (ap_done_i) done_q <= 1'b1; else if (rd_ctrl) done_q <= 1'b0;
      if (ap_ready_i) ready_q <= 1'b1; else if (rd_ctrl) ready_q <= 1'b0;

      // ISR: set by events enabled in IER, toggle on write
      if (ier_q[0] && ap_done_i) isr_q[0] <= 1'b1;
      else if (do_write && awaddr_q == A_ISR && wstrb_q[0]) isr_q[0] <= isr_q[0] ^ wdata_q[0];
      if (ier_q[1] && ap_ready_i) isr_q[1] <= 1'b1;
      else if (do_write && awaddr_q == A_ISR && wstrb_q[0]) isr_q[1] <= isr_q[1] ^ wdata_q[1];

      if (do_write) begin
        aw_q <= 1'b0; w_q <= 1'b0; bvalid_o <= 1'b1;
        case (awaddr_q)
          A_CTRL: if (wstrb_q[0]) begin
            if (wdata_q[0]) start_q <= 1'b1;
            auto_restart_q <= wdata_q[7];
          end
          A_GIE:   if (wstrb_q[0]) gie_q <= wdata_q[0];
          A_IER:   if (wstrb_q[0]) ier_q <= wdata_q[1:0];
          A_PREC:  prec_o  <= (prec_o  & ~wmask) | (wdata_q & wmask);
          A_ROWS:  rows_o  <= (rows_o  & ~wmask) | (wdata_q & wmask);
          A_COLS:  cols_o  <= (cols_o  & ~wmask) | (wdata_q & wmask);
          A_NCOLS: ncols_o <= (ncols_o & ~wmask) | (wdata_q & wmask);
          A_FLAGS: flags_o <= (flags_o & ~wmask) | (wdata_q & wmask);
          default: ;
        endcase
      end

      if (rvalid_o && rready_i) rvalid_o <= 1'b0;
      if (do_read) begin
        rvalid_o <= 1'b1;
        case (araddr_i)
          A_CTRL:  rdata_o <= {24'd0, auto_restart_q, 3'd0, ready_q, ap_idle_i, done_q, start_q};
          A_GIE:   rdata_o <= {31'd0, gie_q};
          A_IER:   rdata_o <= {30'd0, ier_q};
          A_ISR:   rdata_o <= {30'd0, isr_q};
          A_PREC:  rdata_o <= prec_o;
          A_ROWS:  rdata_o <= rows_o;
          A_COLS:  rdata_o <= cols_o;
          A_NCOLS: rdata_o <= ncols_o;
          A_FLAGS: rdata_o <= flags_o;
          default: rdata_o <= 32'd0;
        endcase
      end
    end
  end
endmodule
`default_nettype wire
