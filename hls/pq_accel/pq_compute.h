// pq_accel compute templates: stream byte framing, weight store, runtime-precision unpacking,
// DSP48E2-packed multiply-accumulate with lane extraction, requantisation.
// Arithmetic: docs/FORMAT.md section 4 (pyquant.intmath.layer_int), bit for bit.
// Packing and accumulation-depth bounds: config.h and docs/HARDWARE.md "4.x HLS kernel".
#ifndef PQ_COMPUTE_H
#define PQ_COMPUTE_H

#include "config.h"
#include "pq_types.h"

typedef ap_int<8> code_t;      // weight code (|w| <= qmax) or int8 activation
typedef ap_int<32> acc_t;      // int32 accumulator (wraps like hardware; the final sum fits int32)
typedef ap_int<48> dsp_acc_t;  // DSP48E2 P register
typedef ap_uint<16> waddr_t;   // address inside one weight bank
typedef ap_uint<14> bitpos_t;  // bit position of a code inside a packed row (k * prec < 8192)

// C-simulation loop statistics for the cycle model (docs/HARDWARE.md 4.x); compiled only into
// the host C API build (-DPQ_SIM_STATS), never into synthesis.
#if !defined(__SYNTHESIS__) && defined(PQ_SIM_STATS)
struct PqSimStats {
    unsigned long long iters, entries, mac_entries;
};
inline PqSimStats& pq_sim_stats() {
    static PqSimStats s = {0, 0, 0};
    return s;
}
#define PQ_STAT_ITER() (pq_sim_stats().iters++)
#define PQ_STAT_ENTRY() (pq_sim_stats().entries++)
#define PQ_STAT_MAC_ENTRY() (pq_sim_stats().mac_entries++)
#else
#define PQ_STAT_ITER() ((void)0)
#define PQ_STAT_ENTRY() ((void)0)
#define PQ_STAT_MAC_ENTRY() ((void)0)
#endif

// ---------------------------------------------------------------- stream byte framing
// Byte j of a stream's byte sequence is bits [8*(j%4), 8*(j%4)+8) of word j/4 (HARDWARE.md s3).
struct ByteReader {
    ap_uint<32> word;
    ap_uint<2> idx;  // bytes of `word` already consumed; 0: a new word is needed
    void init() {
        word = 0;
        idx = 0;
    }
};

struct ByteWriter {
    ap_uint<32> word;
    ap_uint<2> idx;
    void init() {
        word = 0;
        idx = 0;
    }
    // Append one byte; a word is emitted when full or when `last` (zero-padded, TLAST set).
    void put(axis_stream& s, ap_uint<8> b, bool last) {
#pragma HLS INLINE
        ap_uint<32> shifted = ap_uint<32>(b) << (8 * idx);
        word = word | shifted;
        if (idx == 3 || last) {
            axis_word w;
            w.data = word;
            w.keep = 0xF;
            w.strb = 0xF;
            w.last = last ? 1 : 0;
            s.write(w);
            word = 0;
            idx = 0;
        } else {
            idx++;
        }
    }
};

// Packed row length in bytes for `cols` codes (docs/FORMAT.md section 3).
inline ap_uint<12> row_bytes(ap_uint<4> prec, ap_uint<11> cols) {
#pragma HLS INLINE
    ap_uint<12> g4 = (cols + 3) >> 2;
    if (prec == 8) return cols;
    if (prec == 6) return g4 * 3;
    if (prec == 4) return (cols + 1) >> 1;
    return g4;
}

// ---------------------------------------------------------------- load: weights + constants
// The constants take 8 bytes = 2 whole stream words per row; the packed codes then start on a
// word boundary and are written one stream word (4 bytes) per cycle. Row m of the codes goes to
// bank m % NB at address (m / NB) * rb; inside a bank the rows are contiguous, so the bytes of one
// word that land in one bank have consecutive addresses, hence distinct sub-banks (address % 4):
// every sub-bank takes at most one byte per cycle.
template <int NB>
void load_weights(axis_stream& wgt, ap_uint<4> prec, ap_uint<9> rows, ap_uint<11> cols,
                  ap_uint<8> wmem[NB][4][SUB_WORDS], acc_t cbias[MAX_ROWS], ap_uint<16> cmult[MAX_ROWS],
                  ap_uint<6> cshift[MAX_ROWS]) {
    ap_uint<10> nconst = ap_uint<10>(rows) * 2;
    const int kMaxConstWords = 2 * MAX_ROWS;  // constants in pragmas: const ints, not expressions
    (void)kMaxConstWords;  // only pragmas read it
    PQ_STAT_ENTRY();
load_consts:
    for (ap_uint<10> i = 0; i < nconst; i++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=2 max=kMaxConstWords
        PQ_STAT_ITER();
        ap_uint<32> w = wgt.read().data;
        ap_uint<9> r = i >> 1;
        if ((i & 1) == 0) {
            cbias[r] = acc_t(w);  // bias, i32 LE
        } else {
            cmult[r] = ap_uint<16>(w);        // mult, u16 LE
            cshift[r] = ap_uint<6>(w >> 16);  // shift, u8 (1..47); byte 3 is 0
        }
    }

    ap_uint<12> rb = row_bytes(prec, cols);
    ap_uint<20> total = ap_uint<20>(rows) * rb;
    ap_uint<20> nwords = (total + 3) >> 2;
    ap_uint<12> cb = 0;  // byte inside the current row
    ap_uint<5> bank = 0;  // row % NB
    waddr_t base = 0;     // (row / NB) * rb
    ap_uint<20> pos = 0;  // byte position in the code sequence
    const int kMaxCodeWords = WMEM_BYTES / 4;  // constants in pragmas: const ints, not expressions
    (void)kMaxCodeWords;  // only pragmas read it
    PQ_STAT_ENTRY();
load_codes:
    for (ap_uint<20> i = 0; i < nwords; i++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=kMaxCodeWords
        PQ_STAT_ITER();
        ap_uint<32> w = wgt.read().data;
        ap_uint<5> bk[4];
        waddr_t ad[4];
        bool ok[4];
#pragma HLS ARRAY_PARTITION variable=bk complete
#pragma HLS ARRAY_PARTITION variable=ad complete
#pragma HLS ARRAY_PARTITION variable=ok complete
    place_bytes:
        for (int j = 0; j < 4; j++) {
#pragma HLS UNROLL
            ok[j] = pos + j < total;
            bk[j] = bank;
            ad[j] = base + cb;
            if (cb == rb - 1) {
                cb = 0;
                if (bank == NB - 1) {
                    bank = 0;
                    base += rb;
                } else {
                    bank++;
                }
            } else {
                cb++;
            }
        }
    write_banks:
        for (int b = 0; b < NB; b++) {
#pragma HLS UNROLL
        write_subbanks:
            for (int sb = 0; sb < 4; sb++) {
#pragma HLS UNROLL
                // Select the (at most one) byte of this word bound for sub-bank [b][sb] first, then
                // write once: one store per sub-bank per iteration, so a 1-write-port RAM allows II=1
                // (four guarded stores to the same array would each need a port of their own).
                bool hit = false;
                ap_uint<8> val = 0;
                waddr_t wa = 0;
            select_byte:
                for (int j = 0; j < 4; j++) {
#pragma HLS UNROLL
                    if (ok[j] && bk[j] == b && ap_uint<2>(ad[j]) == sb) {
                        hit = true;
                        val = ap_uint<8>(w >> (8 * j));
                        wa = ad[j] >> 2;
                    }
                }
                if (hit) wmem[b][sb][wa] = val;
            }
        }
        pos += 4;
    }
}

// ---------------------------------------------------------------- load: one activation column
// Up to 4 bytes per cycle (the rest of the current stream word, or a new one); x[k] goes to
// sub-buffer k % 4 at k / 4.
inline void load_acts(axis_stream& act, ByteReader& rd, code_t xbuf[4][XSUB_WORDS], ap_uint<11> cols) {
    ap_uint<11> k = 0;
    const int kMaxActWords = MAX_COLS / 4;  // constants in pragmas: const ints, not expressions
    (void)kMaxActWords;  // only pragmas read it
    PQ_STAT_ENTRY();
load_x:
    while (k < cols) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=kMaxActWords
        PQ_STAT_ITER();
        if (rd.idx == 0) rd.word = act.read().data;
        ap_uint<3> avail = ap_uint<3>(4) - rd.idx;
        ap_uint<11> remain = cols - k;
        ap_uint<3> take = remain < avail ? ap_uint<3>(remain) : avail;
    spread:
        for (int sb = 0; sb < 4; sb++) {
#pragma HLS UNROLL
            ap_uint<2> j = ap_uint<2>(sb) - ap_uint<2>(k);  // byte of this step that lands in sub-buffer sb
            if (j < take) {
                ap_uint<11> kk = k + j;
                xbuf[sb][kk >> 2] = code_t(ap_uint<8>(rd.word >> (8 * (rd.idx + j))));
            }
        }
        k += take;
        rd.idx += take;  // wraps to 0 when the word is used up
    }
}

// ---------------------------------------------------------------- unpack one code
// Code k of a packed row sits at bits [k*prec, (k+1)*prec) of the row read as a little-endian
// bit string (true for all four group layouts), so a 16-bit window at byte bitpos/8 holds it.
inline code_t fetch_code(const ap_uint<8> bank[4][SUB_WORDS], waddr_t base, bitpos_t bitpos, ap_uint<4> prec) {
#pragma HLS INLINE
    waddr_t addr = base + (bitpos >> 3);
    ap_uint<3> off = bitpos;
    ap_uint<8> by[4];
#pragma HLS ARRAY_PARTITION variable=by complete
read_subbanks:
    for (int sb = 0; sb < 4; sb++) {  // one read per sub-bank: bytes addr .. addr+3
#pragma HLS UNROLL
        ap_uint<2> d = ap_uint<2>(sb) - ap_uint<2>(addr);
        waddr_t a = addr + d;
        by[sb] = bank[sb][a >> 2];
    }
    ap_uint<2> s0 = addr;
    ap_uint<2> s1 = s0 + 1;
    ap_uint<16> win = by[s0] | (ap_uint<16>(by[s1]) << 8);
    ap_uint<8> raw = win >> off;
    ap_int<2> c2 = raw;
    ap_int<4> c4 = raw;
    ap_int<6> c6 = raw;
    ap_int<8> c8 = raw;
    if (prec == 8) return c8;
    if (prec == 6) return c6;
    if (prec == 4) return c4;
    return c2;
}

// ---------------------------------------------------------------- requantisation
// t = (acc*mult + 2^(shift-1)) >> shift (floor), relu, saturate to int8. |acc*mult| < 2^46.
inline code_t requant(acc_t acc, ap_uint<16> mult, ap_uint<6> shift, bool relu) {
#pragma HLS INLINE
    ap_int<48> prod = ap_int<48>(acc) * ap_int<17>(mult);
    ap_int<48> rnd = ap_int<48>(1) << (shift - 1);
    ap_int<49> sum = ap_int<49>(prod) + ap_int<49>(rnd);
    ap_int<48> t = sum >> shift;
    if (relu && t < 0) t = 0;
    if (t > 127) t = 127;
    if (t < -128) t = -128;
    return code_t(t);
}

// ---------------------------------------------------------------- compute: 2 lanes per DSP
// One column x[K] against row group g: DSP l multiplies A = w[2l+1,k]*2^18 + w[2l,k] (27 bits)
// by B = x[k] (18 bits) and accumulates P; every `depth` products (and after the last one) the
// low lane is read back as the signed P[17:0] and the high lane as (P - low) >> 18.
template <int L>
void compute_2lane(ap_uint<8> wmem[2 * L][4][SUB_WORDS], const code_t xbuf[4][XSUB_WORDS], ap_uint<4> prec,
                   ap_uint<9> rows, ap_uint<11> cols, acc_t cbias[MAX_ROWS], ap_uint<16> cmult[MAX_ROWS],
                   ap_uint<6> cshift[MAX_ROWS], bool relu, code_t ybuf[MAX_ROWS]) {
    ap_uint<12> rb = row_bytes(prec, cols);
    ap_uint<9> depth = prec == 8 ? DEPTH_INT8 : prec == 6 ? DEPTH_INT6 : prec == 4 ? DEPTH_INT4 : DEPTH_INT2_1COL;
    waddr_t base = 0;
    const int kMaxGroups = MAX_ROWS / (2 * L);  // constants in pragmas: const ints, not expressions
    (void)kMaxGroups;  // only pragmas read it
row_groups:
    for (ap_uint<10> m0 = 0; m0 < rows; m0 += 2 * L) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=kMaxGroups
        acc_t acc[2 * L];
#pragma HLS ARRAY_PARTITION variable=acc complete
        dsp_acc_t p[L];
#pragma HLS ARRAY_PARTITION variable=p complete
    init_acc:
        for (int j = 0; j < 2 * L; j++) {
#pragma HLS UNROLL
            acc[j] = (m0 + j < rows) ? cbias[m0 + j] : acc_t(0);
        }
    init_p:
        for (int l = 0; l < L; l++) {
#pragma HLS UNROLL
            p[l] = 0;
        }
        ap_uint<9> cnt = 0;
        bitpos_t bitpos = 0;
        PQ_STAT_ENTRY();
        PQ_STAT_MAC_ENTRY();
    mac_k:
        for (ap_uint<11> k = 0; k < cols; k++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=MAX_COLS
            PQ_STAT_ITER();
            code_t x = xbuf[ap_uint<2>(k)][k >> 2];
            bool flush = (cnt == depth - 1) || (k == cols - 1);
        lanes:
            for (int l = 0; l < L; l++) {
#pragma HLS UNROLL
                code_t w_lo = (m0 + 2 * l < rows) ? fetch_code(wmem[2 * l], base, bitpos, prec) : code_t(0);
                code_t w_hi = (m0 + 2 * l + 1 < rows) ? fetch_code(wmem[2 * l + 1], base, bitpos, prec) : code_t(0);
                ap_int<27> a = (ap_int<27>(w_hi) << LANE2_SHIFT) + ap_int<27>(w_lo);
                ap_int<18> b = x;
                ap_int<45> prod = a * b;  // one DSP48E2: 27 x 18 signed
#pragma HLS BIND_OP variable=prod op=mul impl=dsp
                dsp_acc_t pn = p[l] + prod;
                if (flush) {
                    ap_int<LANE2_SHIFT> lo = pn;                       // signed P[17:0]
                    ap_int<30> hi = (pn - lo) >> LANE2_SHIFT;           // sign-corrected high lane
                    acc[2 * l] += lo;
                    acc[2 * l + 1] += hi;
                    p[l] = 0;
                } else {
                    p[l] = pn;
                }
            }
            cnt = flush ? ap_uint<9>(0) : ap_uint<9>(cnt + 1);
            bitpos += prec;
        }
    requant_rows:
        for (int j = 0; j < 2 * L; j++) {
#pragma HLS PIPELINE II=1
            PQ_STAT_ITER();
            if (m0 + j < rows) ybuf[m0 + j] = requant(acc[j], cmult[m0 + j], cshift[m0 + j], relu);
        }
        base += rb;
    }
}

// ---------------------------------------------------------------- compute: INT2 2x2 per DSP
// Two columns x0, x1 against two rows w0, w1 (ternary): B = (x0+128) + x1*2^10 (18 bits),
// A = w0 + w1*2^20 (27 bits), P += A*B - 128*A. Lanes of 10 bits at 0 / 10 / 20 / 30 hold
// x0w0 / x1w0 / x0w1 / x1w1; extracted with sign correction every DEPTH_INT2_2X2 products.
template <int L>
void compute_2x2(ap_uint<8> wmem[2 * L][4][SUB_WORDS], const code_t xbuf0[4][XSUB_WORDS], const code_t xbuf1[4][XSUB_WORDS],
                 ap_uint<9> rows, ap_uint<11> cols, acc_t cbias[MAX_ROWS], ap_uint<16> cmult[MAX_ROWS],
                 ap_uint<6> cshift[MAX_ROWS], bool relu, code_t ybuf0[MAX_ROWS], code_t ybuf1[MAX_ROWS]) {
    ap_uint<12> rb = row_bytes(2, cols);
    waddr_t base = 0;
    const int kMaxGroups = MAX_ROWS / (2 * L);
    (void)kMaxGroups;  // only pragmas read it
row_groups2:
    for (ap_uint<10> m0 = 0; m0 < rows; m0 += 2 * L) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=kMaxGroups
        acc_t acc0[2 * L];  // column 0, rows m0 + j
        acc_t acc1[2 * L];  // column 1
#pragma HLS ARRAY_PARTITION variable=acc0 complete
#pragma HLS ARRAY_PARTITION variable=acc1 complete
        dsp_acc_t p[L];
#pragma HLS ARRAY_PARTITION variable=p complete
    init_acc2:
        for (int j = 0; j < 2 * L; j++) {
#pragma HLS UNROLL
            acc_t b0 = (m0 + j < rows) ? cbias[m0 + j] : acc_t(0);
            acc0[j] = b0;
            acc1[j] = b0;
        }
    init_p2:
        for (int l = 0; l < L; l++) {
#pragma HLS UNROLL
            p[l] = 0;
        }
        ap_uint<2> cnt = 0;
        bitpos_t bitpos = 0;
        PQ_STAT_ENTRY();
        PQ_STAT_MAC_ENTRY();
    mac_k2:
        for (ap_uint<11> k = 0; k < cols; k++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=MAX_COLS
            PQ_STAT_ITER();
            code_t x0 = xbuf0[ap_uint<2>(k)][k >> 2];
            code_t x1 = xbuf1[ap_uint<2>(k)][k >> 2];
            ap_uint<8> x0u = ap_int<10>(x0) + 128;  // x0 + 128 in [0, 255]
            ap_int<18> b = ap_int<18>(x0u) + (ap_int<18>(x1) << OP_XSHIFT);
            bool flush = (cnt == DEPTH_INT2_2X2 - 1) || (k == cols - 1);
        lanes2:
            for (int l = 0; l < L; l++) {
#pragma HLS UNROLL
                code_t w0 = (m0 + 2 * l < rows) ? fetch_code(wmem[2 * l], base, bitpos, 2) : code_t(0);
                code_t w1 = (m0 + 2 * l + 1 < rows) ? fetch_code(wmem[2 * l + 1], base, bitpos, 2) : code_t(0);
                ap_int<27> a = (ap_int<27>(w1) << OP_WSHIFT) + ap_int<27>(w0);
                ap_int<35> c = -(ap_int<35>(a) << 7);  // C port: removes the +128 offset of x0
                ap_int<45> prod = a * b;                // one DSP48E2: 27 x 18 signed
#pragma HLS BIND_OP variable=prod op=mul impl=dsp
                dsp_acc_t pn = p[l] + prod + c;
                if (flush) {
                    ap_int<OP_XSHIFT> l0 = pn;
                    ap_int<40> r1 = (pn - l0) >> OP_XSHIFT;
                    ap_int<OP_XSHIFT> l1 = r1;
                    ap_int<30> r2 = (r1 - l1) >> OP_XSHIFT;
                    ap_int<OP_XSHIFT> l2 = r2;
                    ap_int<20> l3 = (r2 - l2) >> OP_XSHIFT;
                    acc0[2 * l] += l0;      // x0 w0
                    acc1[2 * l] += l1;      // x1 w0
                    acc0[2 * l + 1] += l2;  // x0 w1
                    acc1[2 * l + 1] += l3;  // x1 w1
                    p[l] = 0;
                } else {
                    p[l] = pn;
                }
            }
            cnt = flush ? ap_uint<2>(0) : ap_uint<2>(cnt + 1);
            bitpos += 2;
        }
    requant_rows2:
        for (int j = 0; j < 2 * L; j++) {
#pragma HLS PIPELINE II=1
            PQ_STAT_ITER();
            if (m0 + j < rows) {
                ybuf0[m0 + j] = requant(acc0[j], cmult[m0 + j], cshift[m0 + j], relu);
                ybuf1[m0 + j] = requant(acc1[j], cmult[m0 + j], cshift[m0 + j], relu);
            }
        }
        base += rb;
    }
}

// ---------------------------------------------------------------- store: one result column
inline void store_col(axis_stream& res, ByteWriter& wr, const code_t ybuf[MAX_ROWS], ap_uint<9> rows, bool last_col) {
    PQ_STAT_ENTRY();
store_y:
    for (ap_uint<9> m = 0; m < rows; m++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=MAX_ROWS
        PQ_STAT_ITER();
        wr.put(res, ap_uint<8>(ybuf[m]), last_col && (m == rows - 1));
    }
}

#endif  // PQ_COMPUTE_H
