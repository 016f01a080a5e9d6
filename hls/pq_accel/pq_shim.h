// Minimal stand-ins for the three Vitis HLS headers this kernel uses (ap_int.h, hls_stream.h,
// ap_axi_sdata.h), written from scratch with standard integer types so the kernel builds with
// plain g++ where Vitis is absent. Only used when the real headers are not on the include path
// (see pq_types.h); Vitis (C simulation and synthesis) always compiles the kernel against its own.
//
// Semantics kept identical to Vitis for everything the kernel does: an ap_int<W>/ap_uint<W>
// (W <= 63 here) holds exactly W bits; assigning a wider value keeps the low W bits and
// re-interprets them in two's complement (signed) or as unsigned; arithmetic on operands is
// exact (the kernel sizes every intermediate so nothing wraps except where it assigns).
#ifndef PQ_SHIM_H
#define PQ_SHIM_H

#ifdef __SYNTHESIS__
#error "pq_shim.h is for g++ C simulation only; Vitis must use its own ap_int.h / hls_stream.h"
#endif

#include <cstddef>
#include <cstdio>
#include <deque>
#include <type_traits>

template <int W, bool S>
struct pq_apint {
    static_assert(W >= 1 && W <= 63, "pq_shim: widths 1..63 only");
    long long v;
    static long long norm(long long x) {
        unsigned long long mask = (1ULL << W) - 1ULL;
        unsigned long long u = static_cast<unsigned long long>(x) & mask;
        if (S && ((u >> (W - 1)) & 1ULL)) u |= ~mask;
        return static_cast<long long>(u);
    }
    pq_apint() : v(0) {}
    pq_apint(long long x) : v(norm(x)) {}  // NOLINT: implicit like ap_int
    template <int W2, bool S2>
    pq_apint(const pq_apint<W2, S2>& o) : v(norm(o.v)) {}  // NOLINT
    operator long long() const { return v; }  // NOLINT
    pq_apint& operator+=(long long x) { v = norm(v + x); return *this; }
    pq_apint& operator-=(long long x) { v = norm(v - x); return *this; }
    pq_apint& operator|=(long long x) { v = norm(v | x); return *this; }
    pq_apint& operator&=(long long x) { v = norm(v & x); return *this; }
    pq_apint& operator++() { v = norm(v + 1); return *this; }
    pq_apint operator++(int) { pq_apint t = *this; v = norm(v + 1); return t; }
};

// Left shifts go through unsigned arithmetic (well defined for negative values, like ap_int).
template <int W, bool S, class T>
inline typename std::enable_if<std::is_integral<T>::value, long long>::type operator<<(const pq_apint<W, S>& a,
                                                                                       T sh) {
    return static_cast<long long>(static_cast<unsigned long long>(a.v) << static_cast<int>(sh));
}
template <int W, bool S, int W2, bool S2>
inline long long operator<<(const pq_apint<W, S>& a, const pq_apint<W2, S2>& sh) {
    return a << static_cast<int>(sh.v);
}

template <int W> using ap_int = pq_apint<W, true>;
template <int W> using ap_uint = pq_apint<W, false>;

template <int D, int U, int TI, int TD>
struct ap_axiu {
    ap_uint<D> data;
    ap_uint<(D + 7) / 8> keep;
    ap_uint<(D + 7) / 8> strb;
    ap_uint<1> last;
};

namespace hls {

// Reads from an empty stream return a zero value and are counted here (Vitis C simulation
// warns instead); the C API and the test bench treat any count as a failed call.
inline long& stream_underflows() {
    static long n = 0;
    return n;
}

template <class T>
class stream {
   public:
    stream() {}
    explicit stream(const char*) {}
    T read() {
        if (q_.empty()) {
            ++stream_underflows();
            return T();
        }
        T t = q_.front();
        q_.pop_front();
        return t;
    }
    void read(T& t) { t = read(); }
    void write(const T& t) { q_.push_back(t); }
    bool empty() const { return q_.empty(); }
    std::size_t size() const { return q_.size(); }
    stream& operator>>(T& t) { t = read(); return *this; }
    stream& operator<<(const T& t) { write(t); return *this; }

   private:
    std::deque<T> q_;
};

}  // namespace hls

#endif  // PQ_SHIM_H
