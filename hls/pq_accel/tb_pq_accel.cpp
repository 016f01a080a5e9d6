// C-simulation test bench for pq_accel (g++ here; Vitis `csim_design -argv "INDEX..."` elsewhere).
//
// Usage: tb_pq_accel INDEX.txt [INDEX.txt ...]
// Each index line is one accelerator call (blank lines and lines starting with '#' are skipped):
//     name prec M K N flags WGT X Y
// WGT/X/Y are byte-sequence files (pyquant golden `lNN_wgt.bin`, `lNN_x.bin`, `lNN_y.bin`, or the
// synthetic vectors of scripts/gen_hls_vectors.py), paths relative to the index file; WGT is "-"
// for a call with flags.reuse. The bench frames the bytes into 32-bit AXI4-Stream words
// (docs/HARDWARE.md section 3), calls pq_accel, and checks every result byte, the word count,
// TKEEP/TSTRB, TLAST on exactly the last word, the zero padding, and that the kernel consumed
// exactly the input words. Prints one summary line; exit status 0 only if everything matched.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "pq_accel.h"

namespace {

bool read_file(const std::string& path, std::vector<uint8_t>& out) {
    std::ifstream f(path.c_str(), std::ios::binary);
    if (!f) return false;
    out.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    return true;
}

std::string dir_of(const std::string& p) {
    size_t s = p.find_last_of('/');
    return s == std::string::npos ? std::string(".") : p.substr(0, s);
}

void frame(axis_stream& s, const std::vector<uint8_t>& b) {
    for (size_t i = 0; i < b.size(); i += 4) {
        uint32_t w = 0;
        for (size_t j = 0; j < 4 && i + j < b.size(); j++) w |= uint32_t(b[i + j]) << (8 * j);
        axis_word aw;
        aw.data = w;
        aw.keep = 0xF;
        aw.strb = 0xF;
        aw.last = (i + 4 >= b.size()) ? 1 : 0;
        s.write(aw);
    }
}

uint32_t row_bytes(uint32_t prec, uint32_t k) {
    return prec == 8 ? k : prec == 6 ? 3 * ((k + 3) / 4) : prec == 4 ? (k + 1) / 2 : (k + 3) / 4;
}

struct Totals {
    long calls = 0, bytes = 0, mismatches = 0, errors = 0;
};

// Runs one call; returns false (after printing one line) on a framing/format error.
bool run_call(const std::string& where, const std::string& name, uint32_t prec, uint32_t M, uint32_t K,
              uint32_t N, uint32_t flags, const std::vector<uint8_t>& wgt, const std::vector<uint8_t>& x,
              const std::vector<uint8_t>& y, Totals& t) {
    bool reuse = (flags & PQ_FLAG_REUSE) != 0;
    if (!(prec == 2 || prec == 4 || prec == 6 || prec == 8) || M < 1 || M > MAX_ROWS || K < 1 || K > MAX_COLS ||
        N < 1 || uint64_t(M) * row_bytes(prec, K) > WMEM_BYTES) {
        std::printf("ERROR %s: %s: arguments outside the kernel's capacity\n", where.c_str(), name.c_str());
        return false;
    }
    if ((!reuse && wgt.size() != size_t(M) * (8 + row_bytes(prec, K))) || x.size() != size_t(N) * K ||
        y.size() != size_t(N) * M) {
        std::printf("ERROR %s: %s: file sizes do not match prec/M/K/N\n", where.c_str(), name.c_str());
        return false;
    }
    axis_stream s_wgt, s_act, s_res;
    if (!reuse) frame(s_wgt, wgt);
    frame(s_act, x);
    pq_accel(s_wgt, s_act, s_res, prec, M, K, N, flags);
    bool ok = true;
    if (!s_wgt.empty() || !s_act.empty()) {
        std::printf("ERROR %s: %s: kernel left input words unread\n", where.c_str(), name.c_str());
        ok = false;
    }
    size_t nwords = (y.size() + 3) / 4;
    if (s_res.size() != nwords) {
        std::printf("ERROR %s: %s: %zu result words, expected %zu\n", where.c_str(), name.c_str(), s_res.size(),
                    nwords);
        ok = false;
    }
    long mism = 0;
    for (size_t i = 0; i < nwords && !s_res.empty(); i++) {
        axis_word w = s_res.read();
        if (uint32_t(w.keep) != 0xF || uint32_t(w.strb) != 0xF || (uint32_t(w.last) != 0) != (i + 1 == nwords)) {
            std::printf("ERROR %s: %s: word %zu has TKEEP/TSTRB/TLAST wrong\n", where.c_str(), name.c_str(), i);
            ok = false;
        }
        uint32_t d = uint32_t(w.data);
        for (size_t j = 0; j < 4; j++) {
            size_t idx = 4 * i + j;
            uint8_t got = uint8_t(d >> (8 * j));
            if (idx >= y.size()) {
                if (got != 0) {
                    std::printf("ERROR %s: %s: padding byte %zu of the last word is %d, not 0\n", where.c_str(),
                                name.c_str(), j, int(got));
                    ok = false;
                }
                continue;
            }
            if (got != y[idx]) {
                if (mism < 3)
                    std::printf("MISMATCH %s: %s: n=%zu m=%zu got %d expected %d\n", where.c_str(), name.c_str(),
                                idx / M, idx % M, int(int8_t(got)), int(int8_t(y[idx])));
                mism++;
            }
        }
    }
    t.calls++;
    t.bytes += long(y.size());
    t.mismatches += mism;
    return ok;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s INDEX.txt [INDEX.txt ...]\n", argv[0]);
        return 2;
    }
    Totals t;
    int files = 0;
    for (int a = 1; a < argc; a++) {
        std::string index = argv[a];
        std::ifstream f(index.c_str());
        if (!f) {
            std::printf("ERROR %s: cannot open index file\n", index.c_str());
            t.errors++;
            continue;
        }
        files++;
        std::string dir = dir_of(index), line;
        int lineno = 0;
        while (std::getline(f, line)) {
            lineno++;
            if (line.empty() || line[0] == '#') continue;
            std::istringstream ss(line);
            std::string name, fw, fx, fy;
            uint32_t prec, M, K, N, flags;
            std::string where = index + ":" + std::to_string(lineno);
            if (!(ss >> name >> prec >> M >> K >> N >> flags >> fw >> fx >> fy)) {
                std::printf("ERROR %s: malformed line (want: name prec M K N flags WGT X Y)\n", where.c_str());
                t.errors++;
                continue;
            }
            std::vector<uint8_t> wgt, x, y;
            bool reuse = (flags & PQ_FLAG_REUSE) != 0;
            if ((!reuse && !read_file(dir + "/" + fw, wgt)) || !read_file(dir + "/" + fx, x) ||
                !read_file(dir + "/" + fy, y)) {
                std::printf("ERROR %s: cannot read a vector file of %s\n", where.c_str(), name.c_str());
                t.errors++;
                continue;
            }
            if (!run_call(where, name, prec, M, K, N, flags, wgt, x, y, t)) t.errors++;
        }
    }
#ifndef PQ_REAL_HLS_HEADERS
    if (hls::stream_underflows() != 0) {
        std::printf("ERROR: kernel read %ld words past the end of its input streams\n", hls::stream_underflows());
        t.errors++;
    }
#endif
    bool pass = t.errors == 0 && t.mismatches == 0 && t.calls > 0;
#ifdef PQ_REAL_HLS_HEADERS
    const char* types = "Xilinx ap_int.h";
#else
    const char* types = "pq_shim.h";
#endif
    std::printf("%s: pq_accel C-sim (%s): %ld calls from %d index files, %ld result bytes, %ld mismatches, "
                "%ld errors\n",
                pass ? "PASS" : "FAIL", types, t.calls, files, t.bytes, t.mismatches, t.errors);
    return pass ? 0 : 1;
}
