// pq_accel: top level with the Vitis HLS port names (docs/HARDWARE.md sections 1-3).
`default_nettype none
module pq_accel #(
    parameter integer LANES      = 8,
    parameter integer MAX_ROWS   = 256,
    parameter integer MAX_COLS   = 1024,
    parameter integer WMEM_BYTES = 32768
) (
    input  wire        ap_clk,
    input  wire        ap_rst_n,
    /* verilator lint_off SYMRSVDWORD */  // Vitis port name fixed by the contract
    output wire        interrupt,
    /* verilator lint_on SYMRSVDWORD */
    input  wire        s_axi_control_AWVALID,
    output wire        s_axi_control_AWREADY,
    input  wire [5:0]  s_axi_control_AWADDR,
    input  wire        s_axi_control_WVALID,
    output wire        s_axi_control_WREADY,
    input  wire [31:0] s_axi_control_WDATA,
    input  wire [3:0]  s_axi_control_WSTRB,
    output wire        s_axi_control_BVALID,
    input  wire        s_axi_control_BREADY,
    output wire [1:0]  s_axi_control_BRESP,
    input  wire        s_axi_control_ARVALID,
    output wire        s_axi_control_ARREADY,
    input  wire [5:0]  s_axi_control_ARADDR,
    output wire        s_axi_control_RVALID,
    input  wire        s_axi_control_RREADY,
    output wire [31:0] s_axi_control_RDATA,
    output wire [1:0]  s_axi_control_RRESP,
    input  wire [31:0] wgt_TDATA,
    input  wire        wgt_TVALID,
    output wire        wgt_TREADY,
    input  wire [3:0]  wgt_TKEEP,
    input  wire [3:0]  wgt_TSTRB,
    input  wire        wgt_TLAST,
    input  wire [31:0] act_TDATA,
    input  wire        act_TVALID,
    output wire        act_TREADY,
    input  wire [3:0]  act_TKEEP,
    input  wire [3:0]  act_TSTRB,
    input  wire        act_TLAST,
    output wire [31:0] res_TDATA,
    output wire        res_TVALID,
    input  wire        res_TREADY,
    output wire [3:0]  res_TKEEP,
    output wire [3:0]  res_TSTRB,
    output wire        res_TLAST
);
  initial begin
    if (LANES < 2) begin
      $display("pq_accel: LANES must be >= 2"); $finish;
    end
  end
  wire ap_start, ap_ready, ap_done, ap_idle;
  wire [31:0] prec, rows, cols, ncols, flags;
  // TKEEP/TSTRB/TLAST of the input streams are ignored (contract)
  wire unused_ok = &{1'b0, wgt_TKEEP, wgt_TSTRB, wgt_TLAST, act_TKEEP, act_TSTRB, act_TLAST};
  assign res_TKEEP = 4'hF;
  assign res_TSTRB = 4'hF;

  pq_axil_ctrl u_ctrl (
    .clk_i(ap_clk), .rst_ni(ap_rst_n),
    .awvalid_i(s_axi_control_AWVALID), .awready_o(s_axi_control_AWREADY),
    .awaddr_i(s_axi_control_AWADDR), .wvalid_i(s_axi_control_WVALID),
    .wready_o(s_axi_control_WREADY), .wdata_i(s_axi_control_WDATA),
    .wstrb_i(s_axi_control_WSTRB), .bvalid_o(s_axi_control_BVALID),
    .bready_i(s_axi_control_BREADY), .bresp_o(s_axi_control_BRESP),
    .arvalid_i(s_axi_control_ARVALID), .arready_o(s_axi_control_ARREADY),
    .araddr_i(s_axi_control_ARADDR), .rvalid_o(s_axi_control_RVALID),
    .rready_i(s_axi_control_RREADY), .rdata_o(s_axi_control_RDATA),
    .rresp_o(s_axi_control_RRESP),
    .ap_start_o(ap_start), .ap_ready_i(ap_ready), .ap_done_i(ap_done), .ap_idle_i(ap_idle),
    .interrupt_o(interrupt),
    .prec_o(prec), .rows_o(rows), .cols_o(cols), .ncols_o(ncols), .flags_o(flags));

  pq_core #(.LANES(LANES), .MAX_ROWS(MAX_ROWS), .MAX_COLS(MAX_COLS), .WMEM_BYTES(WMEM_BYTES)) u_core (
    .clk_i(ap_clk), .rst_ni(ap_rst_n), .start_i(ap_start), .ready_o(ap_ready),
    .done_o(ap_done), .idle_o(ap_idle),
    .prec_i(prec), .rows_i(rows), .cols_i(cols), .ncols_i(ncols), .flags_i(flags),
    .wgt_tdata_i(wgt_TDATA), .wgt_tvalid_i(wgt_TVALID), .wgt_tready_o(wgt_TREADY),
    .act_tdata_i(act_TDATA), .act_tvalid_i(act_TVALID), .act_tready_o(act_TREADY),
    .res_tdata_o(res_TDATA), .res_tvalid_o(res_TVALID), .res_tready_i(res_TREADY),
    .res_tlast_o(res_TLAST));
endmodule
`default_nettype wire
