// pq_accel top level (Vitis HLS top function `pq_accel`): interface pragmas, then
// load (weights + per-row constants, unless flags.reuse) / per column block: load activations,
// compute, store results. The stages and their loops live in pq_compute.h.
#include "pq_accel.h"

#include "pq_compute.h"

void pq_accel(axis_stream& wgt, axis_stream& act, axis_stream& res, ap_uint<32> prec, ap_uint<32> rows,
              ap_uint<32> cols, ap_uint<32> ncols, ap_uint<32> flags) {
#pragma HLS INTERFACE axis port=wgt
#pragma HLS INTERFACE axis port=act
#pragma HLS INTERFACE axis port=res
#pragma HLS INTERFACE s_axilite port=prec offset=0x10 bundle=control
#pragma HLS INTERFACE s_axilite port=rows offset=0x18 bundle=control
#pragma HLS INTERFACE s_axilite port=cols offset=0x20 bundle=control
#pragma HLS INTERFACE s_axilite port=ncols offset=0x28 bundle=control
#pragma HLS INTERFACE s_axilite port=flags offset=0x30 bundle=control
#pragma HLS INTERFACE s_axilite port=return bundle=control
#pragma HLS INTERFACE ap_ctrl_hs port=return

    const int kRowsPerGroup = ROWS_PER_GROUP;  // constants in pragmas: const ints, not expressions
    (void)kRowsPerGroup;  // only pragmas read it
    // Persist across calls (flags.reuse): packed codes and per-row constants.
    static ap_uint<8> wmem[ROWS_PER_GROUP][4][SUB_WORDS];
#pragma HLS ARRAY_PARTITION variable=wmem dim=1 complete
#pragma HLS ARRAY_PARTITION variable=wmem dim=2 complete
#pragma HLS BIND_STORAGE variable=wmem type=ram_2p impl=bram
    static acc_t cbias[MAX_ROWS];
    static ap_uint<16> cmult[MAX_ROWS];
    static ap_uint<6> cshift[MAX_ROWS];
#pragma HLS ARRAY_PARTITION variable=cbias cyclic factor=kRowsPerGroup
#pragma HLS ARRAY_PARTITION variable=cmult cyclic factor=kRowsPerGroup
#pragma HLS ARRAY_PARTITION variable=cshift cyclic factor=kRowsPerGroup
    code_t xbuf0[4][XSUB_WORDS], xbuf1[4][XSUB_WORDS];
#pragma HLS ARRAY_PARTITION variable=xbuf0 dim=1 complete
#pragma HLS ARRAY_PARTITION variable=xbuf1 dim=1 complete
    code_t ybuf0[MAX_ROWS], ybuf1[MAX_ROWS];
#pragma HLS ARRAY_PARTITION variable=ybuf0 cyclic factor=kRowsPerGroup
#pragma HLS ARRAY_PARTITION variable=ybuf1 cyclic factor=kRowsPerGroup

    const ap_uint<4> p = prec;
    const ap_uint<9> m = rows;
    const ap_uint<11> k = cols;
    const ap_uint<32> n_total = ncols;
    const bool relu = (flags & PQ_FLAG_RELU) != 0;
    const bool reuse = (flags & PQ_FLAG_REUSE) != 0;

    if (!reuse) load_weights<ROWS_PER_GROUP>(wgt, p, m, k, wmem, cbias, cmult, cshift);

    ByteReader ard;
    ard.init();
    ByteWriter wr;
    wr.init();
columns:
    for (ap_uint<32> n = 0; n < n_total;) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=1024
        const bool two = (p == 2) && (n + 1 < n_total);  // INT2: 2x2 outer product per DSP
        const bool last = (n + (two ? 2 : 1)) >= n_total;
        load_acts(act, ard, xbuf0, k);
        if (two) {
            load_acts(act, ard, xbuf1, k);
            compute_2x2<LANES>(wmem, xbuf0, xbuf1, m, k, cbias, cmult, cshift, relu, ybuf0, ybuf1);
            store_col(res, wr, ybuf0, m, false);
            store_col(res, wr, ybuf1, m, last);
            n += 2;
        } else {
            compute_2lane<LANES>(wmem, xbuf0, p, m, k, cbias, cmult, cshift, relu, ybuf0);
            store_col(res, wr, ybuf0, m, last);
            n += 1;
        }
    }
}
