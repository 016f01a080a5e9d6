// C entry points around the pq_accel top function for host-side testing (pytest via ctypes and
// the C-sim test bench). Not synthesised. Byte sequences in and out, framed into 32-bit AXI4-Stream
// words exactly as docs/HARDWARE.md section 3 describes; every framing rule is checked.
#include "pq_accel_capi.h"

#include <cstring>
#include <vector>

#include "pq_accel.h"
#include "pq_compute.h"

namespace {

struct Loaded {
    bool valid;
    uint32_t prec, rows, cols;
};
Loaded g_loaded = {false, 0, 0, 0};

uint32_t rb_of(uint32_t prec, uint32_t cols) {
    switch (prec) {
        case 8: return cols;
        case 6: return 3 * ((cols + 3) / 4);
        case 4: return (cols + 1) / 2;
        default: return (cols + 3) / 4;
    }
}

void push_bytes(axis_stream& s, const uint8_t* b, size_t n) {
    for (size_t i = 0; i < n; i += 4) {
        uint32_t w = 0;
        for (size_t j = 0; j < 4 && i + j < n; j++) w |= uint32_t(b[i + j]) << (8 * j);
        axis_word aw;
        aw.data = w;
        aw.keep = 0xF;
        aw.strb = 0xF;
        aw.last = (i + 4 >= n) ? 1 : 0;
        s.write(aw);
    }
}

}  // namespace

extern "C" int pq_accel_config(uint32_t* out4) {
    out4[0] = MAX_ROWS;
    out4[1] = MAX_COLS;
    out4[2] = WMEM_BYTES;
    out4[3] = LANES;
    return 0;
}

extern "C" const char* pq_accel_strerror(int code) {
    switch (code) {
        case PQ_OK: return "ok";
        case PQ_E_ARGS: return "argument out of range (prec/rows/cols/ncols/flags or weight store capacity)";
        case PQ_E_WGT_LEN: return "weight byte sequence has the wrong length for prec/rows/cols";
        case PQ_E_CONST: return "per-row constant out of contract (mult > 32767, shift not in 1..47, or pad byte != 0)";
        case PQ_E_REUSE: return "reuse flag without a previous call of the same prec/rows/cols";
        case PQ_E_ACT_LEN: return "activation/result buffer length is not N*K / N*M";
        case PQ_E_UNDERFLOW: return "kernel read past the end of an input stream";
        case PQ_E_LEFTOVER: return "kernel left input stream words unread";
        case PQ_E_RES_FRAMING: return "result stream framing wrong (word count, TKEEP/TSTRB or TLAST)";
        default: return "unknown error";
    }
}

extern "C" int pq_accel_call(uint32_t prec, uint32_t rows, uint32_t cols, uint32_t ncols, uint32_t flags,
                             const uint8_t* wgt, size_t wgt_len, const int8_t* x, size_t x_len, int8_t* y,
                             size_t y_len) {
    if (!(prec == 2 || prec == 4 || prec == 6 || prec == 8) || rows < 1 || rows > MAX_ROWS || cols < 1 ||
        cols > MAX_COLS || ncols < 1 || (flags & ~3u) != 0)
        return PQ_E_ARGS;
    const uint32_t rb = rb_of(prec, cols);
    if (uint64_t(rows) * rb > WMEM_BYTES) return PQ_E_ARGS;
    const bool reuse = (flags & PQ_FLAG_REUSE) != 0;
    if (reuse) {
        if (!g_loaded.valid || g_loaded.prec != prec || g_loaded.rows != rows || g_loaded.cols != cols)
            return PQ_E_REUSE;
        if (wgt_len != 0) return PQ_E_WGT_LEN;
    } else {
        if (wgt_len != size_t(rows) * 8 + size_t(rows) * rb) return PQ_E_WGT_LEN;
        for (uint32_t r = 0; r < rows; r++) {
            const uint8_t* c = wgt + 8 * r;
            uint32_t mult = c[4] | (uint32_t(c[5]) << 8);
            if (mult > 32767 || c[6] < 1 || c[6] > 47 || c[7] != 0) return PQ_E_CONST;
        }
    }
    if (x_len != size_t(ncols) * cols || y_len != size_t(ncols) * rows) return PQ_E_ACT_LEN;

    axis_stream s_wgt, s_act, s_res;
    if (!reuse) push_bytes(s_wgt, wgt, wgt_len);
    push_bytes(s_act, reinterpret_cast<const uint8_t*>(x), x_len);
#ifndef PQ_REAL_HLS_HEADERS
    long under0 = hls::stream_underflows();
#endif
#ifdef PQ_SIM_STATS
    pq_sim_stats() = PqSimStats{0, 0, 0};
#endif
    if (!reuse) g_loaded.valid = false;  // a failed load leaves nothing reusable

    pq_accel(s_wgt, s_act, s_res, prec, rows, cols, ncols, flags);

#ifndef PQ_REAL_HLS_HEADERS
    if (hls::stream_underflows() != under0) return PQ_E_UNDERFLOW;
#endif
    if (!s_wgt.empty() || !s_act.empty()) return PQ_E_LEFTOVER;
    if (!reuse) g_loaded = {true, prec, rows, cols};
    const size_t nwords = (y_len + 3) / 4;
    if (s_res.size() != nwords) return PQ_E_RES_FRAMING;
    for (size_t i = 0; i < nwords; i++) {
        axis_word w = s_res.read();
        if (uint32_t(w.keep) != 0xF || uint32_t(w.strb) != 0xF) return PQ_E_RES_FRAMING;
        if ((uint32_t(w.last) != 0) != (i + 1 == nwords)) return PQ_E_RES_FRAMING;
        uint32_t d = uint32_t(w.data);
        for (size_t j = 0; j < 4; j++) {
            size_t idx = 4 * i + j;
            if (idx < y_len) y[idx] = int8_t(uint8_t(d >> (8 * j)));
            else if (((d >> (8 * j)) & 0xFF) != 0) return PQ_E_RES_FRAMING;  // padding must be zero
        }
    }
    return PQ_OK;
}

extern "C" uint64_t pq_accel_cycle_estimate(uint32_t prec, uint32_t rows, uint32_t cols, uint32_t ncols,
                                            uint32_t flags) {
    // Trip counts of the kernel's pipelined loops (II = 1), plus PQ_CYC_LOOP per loop entry and
    // the MAC pipeline depth per row group (docs/HARDWARE.md 4.x):
    //   load  = [!reuse] (LOOP + 2M) + (LOOP + ceil(M*row_bytes/4))        (one stream word per cycle)
    //   act   = sum over columns n of LOOP + ceil(((n*K) % 4 + K) / 4)     (words the column touches)
    //   group = LOOP + K + MAC_DEPTH + 2*LANES                             (mac_k + requant_rows)
    //   total = CALL + load + act + (N1 + N2)*G*group + N*(LOOP + M)       (store_y: 1 byte/cycle)
    //   G = ceil(M / (2*LANES)); N2 = floor(N/2) column pairs for INT2 (2x2), else 0; N1 = N - 2*N2.
    const uint64_t M = rows, K = cols, N = ncols, L = PQ_CYC_LOOP;
    const uint64_t G = (M + 2 * LANES - 1) / (2 * LANES);
    uint64_t cyc = PQ_CYC_CALL;
    if (!(flags & PQ_FLAG_REUSE)) cyc += (L + 2 * M) + (L + (M * rb_of(prec, cols) + 3) / 4);
    for (uint64_t r = 0; r < 4; r++) {  // (n*K) % 4 repeats with period 4 in n
        const uint64_t count = N / 4 + (r < N % 4 ? 1 : 0);
        cyc += count * (L + ((r * K) % 4 + K + 3) / 4);
    }
    const uint64_t n2 = (prec == 2) ? N / 2 : 0;
    const uint64_t n1 = N - 2 * n2;
    cyc += (n1 + n2) * G * (L + K + PQ_CYC_MAC_DEPTH + 2 * LANES);
    cyc += N * (L + M);
    return cyc;
}

extern "C" int pq_accel_sim_stats(uint64_t* out3) {
#ifdef PQ_SIM_STATS
    out3[0] = pq_sim_stats().iters;
    out3[1] = pq_sim_stats().entries;
    out3[2] = pq_sim_stats().mac_entries;
    return 0;
#else
    out3[0] = out3[1] = out3[2] = 0;
    return -1;
#endif
}
