// backend_verilated.cpp - the host firmware's accelerator backend (sw/include/backend.h) on the
// Verilated RTL top `pq_accel` (rtl/, ports as in docs/HARDWARE.md sections 1-3).
//
// One clock cycle (tick): drive the inputs (AXI4-Lite master state, the heads of the wgt/act
// input FIFOs with TVALID, res TREADY while the result FIFO has room), evaluate with the clock
// low, record which handshakes complete (VALID && READY as seen before the edge, and the res
// data word), raise the clock and evaluate again, then retire the completed transfers.
// Cycle counts (backend_cycles) are these simulated ap_clk cycles, including the cycles of the
// AXI4-Lite register transactions.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>

#include "Vpq_accel.h"
#include "verilated.h"

extern "C" {
#include "backend.h"
}

namespace {

constexpr std::size_t kInFifoWords = 64;   // per input stream (like a small DMA MM2S FIFO)
constexpr std::size_t kResFifoWords = 256; // result FIFO; TREADY low when full
constexpr uint64_t kBusTimeout = 10000;    // cycles an AXI4-Lite transaction may take

std::unique_ptr<VerilatedContext> g_ctx;
std::unique_ptr<Vpq_accel> g_top;
uint64_t g_cycles = 0;
std::deque<uint32_t> g_in[2];
std::deque<uint32_t> g_res;
bool g_bus_error = false;
// PQ_VL_DEBUG=1: one stderr line per accelerator call (words moved on each stream)
bool g_debug = false;
uint64_t g_n_wgt = 0, g_n_act = 0, g_n_res = 0, g_call_start = 0;

// AXI4-Lite master signals held between ticks
struct Lite {
    bool awvalid = false, wvalid = false, bready = false, arvalid = false, rready = false;
    uint32_t awaddr = 0, wdata = 0, araddr = 0;
} g_lite;

void drive_inputs()
{
    Vpq_accel &t = *g_top;
    t.s_axi_control_AWVALID = g_lite.awvalid;
    t.s_axi_control_AWADDR = g_lite.awaddr & 0x3Fu;
    t.s_axi_control_WVALID = g_lite.wvalid;
    t.s_axi_control_WDATA = g_lite.wdata;
    t.s_axi_control_WSTRB = 0xFu;
    t.s_axi_control_BREADY = g_lite.bready;
    t.s_axi_control_ARVALID = g_lite.arvalid;
    t.s_axi_control_ARADDR = g_lite.araddr & 0x3Fu;
    t.s_axi_control_RREADY = g_lite.rready;
    t.wgt_TVALID = !g_in[0].empty();
    t.wgt_TDATA = g_in[0].empty() ? 0u : g_in[0].front();
    t.wgt_TKEEP = 0xFu;
    t.wgt_TSTRB = 0xFu;
    t.wgt_TLAST = g_in[0].size() == 1;
    t.act_TVALID = !g_in[1].empty();
    t.act_TDATA = g_in[1].empty() ? 0u : g_in[1].front();
    t.act_TKEEP = 0xFu;
    t.act_TSTRB = 0xFu;
    t.act_TLAST = g_in[1].size() == 1;
    t.res_TREADY = g_res.size() < kResFifoWords;
}

// Handshakes that complete on this edge, sampled before it.
struct Fired {
    bool wgt, act, res, aw, w, b, ar, r;
    uint32_t res_data, rdata;
};

Fired tick()
{
    Vpq_accel &t = *g_top;
    drive_inputs();
    t.ap_clk = 0;
    t.eval();
    Fired f{};
    f.wgt = t.wgt_TVALID && t.wgt_TREADY;
    f.act = t.act_TVALID && t.act_TREADY;
    f.res = t.res_TVALID && t.res_TREADY;
    f.res_data = t.res_TDATA;
    f.aw = t.s_axi_control_AWVALID && t.s_axi_control_AWREADY;
    f.w = t.s_axi_control_WVALID && t.s_axi_control_WREADY;
    f.b = t.s_axi_control_BVALID && t.s_axi_control_BREADY;
    f.ar = t.s_axi_control_ARVALID && t.s_axi_control_ARREADY;
    f.r = t.s_axi_control_RVALID && t.s_axi_control_RREADY;
    f.rdata = t.s_axi_control_RDATA;
    t.ap_clk = 1;
    t.eval();
    g_ctx->timeInc(1);
    ++g_cycles;
    if (f.wgt) { g_in[0].pop_front(); ++g_n_wgt; }
    if (f.act) { g_in[1].pop_front(); ++g_n_act; }
    if (f.res) { g_res.push_back(f.res_data); ++g_n_res; }
    if (g_debug && g_call_start && g_cycles - g_call_start == 200000u)
        std::fprintf(stderr, "pq_accel(vl): call running for 200000 cycles: %llu wgt, %llu act, %llu res words; "
                     "fifo wgt %zu act %zu res %zu; TREADY wgt %d act %d\n",
                     (unsigned long long)g_n_wgt, (unsigned long long)g_n_act, (unsigned long long)g_n_res,
                     g_in[0].size(), g_in[1].size(), g_res.size(), (int)g_top->wgt_TREADY, (int)g_top->act_TREADY);
    return f;
}

void bus_fail(const char *what, uint32_t off)
{
    if (!g_bus_error)
        std::fprintf(stderr, "pqfw-host(verilated): AXI4-Lite %s at 0x%02x did not complete in %llu cycles\n",
                     what, (unsigned)off, (unsigned long long)kBusTimeout);
    g_bus_error = true;
    g_lite = Lite{};
}

} // namespace

extern "C" int backend_init(void)
{
    g_ctx = std::make_unique<VerilatedContext>();
    g_ctx->debug(0);
    g_ctx->randReset(0);
    g_top = std::make_unique<Vpq_accel>(g_ctx.get(), "pq_accel");
    const char *dbg = std::getenv("PQ_VL_DEBUG");
    g_debug = dbg && *dbg && *dbg != '0';
    g_cycles = 0;
    g_in[0].clear();
    g_in[1].clear();
    g_res.clear();
    g_lite = Lite{};
    g_top->ap_rst_n = 0;
    for (int i = 0; i < 8; i++) tick();
    g_top->ap_rst_n = 1;
    for (int i = 0; i < 2; i++) tick();
    return 0;
}

extern "C" void backend_close(void)
{
    if (g_debug && g_call_start)
        std::fprintf(stderr, "pq_accel(vl): last call: %llu wgt, %llu act, %llu res words in %llu cycles\n",
                     (unsigned long long)g_n_wgt, (unsigned long long)g_n_act, (unsigned long long)g_n_res,
                     (unsigned long long)(g_cycles - g_call_start));
    if (g_top) g_top->final();
    g_top.reset();
    g_ctx.reset();
}

extern "C" uint8_t backend_kind(void) { return 1; /* RTL (simulated) */ }

extern "C" void backend_reg_write(uint32_t off, uint32_t val)
{
    if (g_debug && off == 0x00u && (val & 1u)) {
        if (g_call_start)
            std::fprintf(stderr, "pq_accel(vl): previous call: %llu wgt, %llu act, %llu res words in %llu cycles\n",
                         (unsigned long long)g_n_wgt, (unsigned long long)g_n_act, (unsigned long long)g_n_res,
                         (unsigned long long)(g_cycles - g_call_start));
        g_n_wgt = g_n_act = g_n_res = 0;
        g_call_start = g_cycles;
    }
    g_lite = Lite{};
    g_lite.awvalid = g_lite.wvalid = true;
    g_lite.awaddr = off;
    g_lite.wdata = val;
    g_lite.bready = true;
    bool aw = false, w = false;
    uint64_t n = 0;
    for (;;) {
        Fired f = tick();
        if (f.aw) { aw = true; g_lite.awvalid = false; }
        if (f.w) { w = true; g_lite.wvalid = false; }
        if (f.b && aw && w) break;
        if (++n > kBusTimeout) { bus_fail("write", off); return; }
    }
    g_lite = Lite{};
}

extern "C" uint32_t backend_reg_read(uint32_t off)
{
    g_lite = Lite{};
    g_lite.arvalid = true;
    g_lite.araddr = off;
    g_lite.rready = true;
    uint64_t n = 0;
    uint32_t data = 0;
    for (;;) {
        Fired f = tick();
        if (f.ar) g_lite.arvalid = false;
        if (f.r) { data = f.rdata; break; }
        if (++n > kBusTimeout) { bus_fail("read", off); return 0xFFFFFFFFu; }
    }
    g_lite = Lite{};
    return data;
}

extern "C" int backend_push(int stream, uint32_t word)
{
    if (stream < 0 || stream > 1) return 0;
    if (g_in[stream].size() >= kInFifoWords) return 0;
    g_in[stream].push_back(word);
    return 1;
}

extern "C" int backend_pop(uint32_t *word)
{
    if (g_res.empty()) return 0;
    *word = g_res.front();
    g_res.pop_front();
    return 1;
}

extern "C" void backend_step(uint32_t cycles)
{
    for (uint32_t i = 0; i < cycles; i++) tick();
}

extern "C" uint64_t backend_cycles(void) { return g_cycles; }
