/*
 * hal_zynq.c - HAL of the firmware on a Zynq-7000 (Cortex-A9, Xilinx standalone BSP).
 *
 * Hardware (Vivado block design, see README.md):
 *   - PS UART (XUartPs) to the host, 8N1, PQ_BAUD (default 115200), polled;
 *   - pq_accel (RTL or Vitis HLS IP) s_axi_control on M_AXI_GP0, at PQ_ACCEL_BASEADDR;
 *   - AXI DMA "dma_w" (simple mode): MM2S -> pq_accel.wgt, S2MM <- pq_accel.res;
 *   - AXI DMA "dma_a" (simple mode): MM2S -> pq_accel.act;
 *     both with "Width of Buffer Length Register" >= 17 bits (one S2MM transfer must hold a
 *     whole result tile, up to PQ_RESBUF_BYTES = 64 KiB);
 *   - Cortex-A9 global timer (XTime) for timeouts and per-layer cycle counts
 *     (counts at CPU clock / 2 = COUNTS_PER_SECOND).
 * Polling only, no interrupts. Buffers live in cached DDR: flushed before MM2S, invalidated
 * around S2MM.
 */
#include "xparameters.h"
#include "xaxidma.h"
#include "xil_cache.h"
#include "xil_io.h"
#include "xstatus.h"
#include "xtime_l.h"
#include "xuartps.h"

#include "hal.h"
#include "pq_config.h"

#ifndef PQ_ACCEL_BASEADDR
#define PQ_ACCEL_BASEADDR XPAR_PQ_ACCEL_0_S_AXI_CONTROL_BASEADDR
#endif
#ifndef PQ_UART_ID
#define PQ_UART_ID XPAR_XUARTPS_0_DEVICE_ID
#endif
#ifndef PQ_DMA_W_ID
#define PQ_DMA_W_ID XPAR_AXIDMA_0_DEVICE_ID   /* MM2S -> wgt, S2MM <- res */
#endif
#ifndef PQ_DMA_A_ID
#define PQ_DMA_A_ID XPAR_AXIDMA_1_DEVICE_ID   /* MM2S -> act */
#endif
#ifndef PQ_BAUD
#define PQ_BAUD 115200u
#endif
#ifndef PQ_ACCEL_KIND
#define PQ_ACCEL_KIND 3u                      /* hardware */
#endif
/* longest single MM2S transfer; longer sends are split (streams ignore TLAST) */
#define PQ_DMA_CHUNK (1u << 16)

static XUartPs uart;
static XAxiDma dma_w, dma_a;
static uint32_t *rx_dst;
static uint32_t rx_bytes;
static int rx_armed;

uint64_t hal_timer_cycles(void)
{
    XTime t;
    XTime_GetTime(&t);
    return (uint64_t)t;
}

uint32_t hal_time_ms(void) { return (uint32_t)(hal_timer_cycles() / (COUNTS_PER_SECOND / 1000u)); }

int hal_uart_init(void)
{
    XUartPs_Config *cfg = XUartPs_LookupConfig(PQ_UART_ID);
    if (!cfg || XUartPs_CfgInitialize(&uart, cfg, cfg->BaseAddress) != XST_SUCCESS) return HAL_ERROR;
    if (XUartPs_SetBaudRate(&uart, PQ_BAUD) != XST_SUCCESS) return HAL_ERROR;
    XUartPs_SetOperMode(&uart, XUARTPS_OPER_MODE_NORMAL);
    return HAL_OK;
}

int hal_uart_getc(uint32_t timeout_ms)
{
    uint32_t t0 = hal_time_ms();
    do {
        if (XUartPs_IsReceiveData(uart.Config.BaseAddress))
            return (int)XUartPs_ReadReg(uart.Config.BaseAddress, XUARTPS_FIFO_OFFSET) & 0xFF;
    } while ((uint32_t)(hal_time_ms() - t0) < timeout_ms);
    return HAL_TIMEOUT;
}

void hal_uart_write(const uint8_t *buf, size_t len)
{
    while (len--) XUartPs_SendByte(uart.Config.BaseAddress, *buf++);
}

static int dma_setup(XAxiDma *d, u32 id)
{
    XAxiDma_Config *cfg = XAxiDma_LookupConfig(id);
    if (!cfg || XAxiDma_CfgInitialize(d, cfg) != XST_SUCCESS || (XAxiDma_HasSg(d))) return HAL_ERROR;
    if (cfg->SgLengthWidth < 17) return HAL_ERROR; /* see header comment */
    XAxiDma_IntrDisable(d, XAXIDMA_IRQ_ALL_MASK, XAXIDMA_DEVICE_TO_DMA);
    XAxiDma_IntrDisable(d, XAXIDMA_IRQ_ALL_MASK, XAXIDMA_DMA_TO_DEVICE);
    return HAL_OK;
}

int hal_accel_init(void)
{
    if (dma_setup(&dma_w, PQ_DMA_W_ID) != HAL_OK || dma_setup(&dma_a, PQ_DMA_A_ID) != HAL_OK) return HAL_ERROR;
    Xil_Out32(PQ_ACCEL_BASEADDR + 0x04u, 0u);  /* GIE off: polling */
    return (Xil_In32(PQ_ACCEL_BASEADDR) & 0x4u) ? HAL_OK : HAL_ERROR; /* ap_idle after reset */
}

uint8_t hal_accel_kind(void) { return (uint8_t)PQ_ACCEL_KIND; }
uint32_t hal_reg_read(uint32_t off) { return Xil_In32(PQ_ACCEL_BASEADDR + off); }
void hal_reg_write(uint32_t off, uint32_t val) { Xil_Out32(PQ_ACCEL_BASEADDR + off, val); }
void hal_poll(void) {}

int hal_stream_rx_start(uint32_t *dst, uint32_t n_words)
{
    rx_dst = dst;
    rx_bytes = n_words * 4u;
    Xil_DCacheInvalidateRange((UINTPTR)dst, rx_bytes);
    rx_armed = XAxiDma_SimpleTransfer(&dma_w, (UINTPTR)dst, rx_bytes, XAXIDMA_DEVICE_TO_DMA) == XST_SUCCESS;
    return rx_armed ? HAL_OK : HAL_ERROR;
}

int hal_stream_tx(int stream, const uint32_t *src, uint32_t n_words, uint32_t timeout_ms)
{
    XAxiDma *d = stream == HAL_STREAM_WGT ? &dma_w : &dma_a;
    const uint8_t *p = (const uint8_t *)src;
    uint32_t left = n_words * 4u, t0 = hal_time_ms();
    Xil_DCacheFlushRange((UINTPTR)src, left);
    while (left) {
        uint32_t n = left < PQ_DMA_CHUNK ? left : PQ_DMA_CHUNK;
        if (XAxiDma_SimpleTransfer(d, (UINTPTR)p, n, XAXIDMA_DMA_TO_DEVICE) != XST_SUCCESS) return HAL_ERROR;
        while (XAxiDma_Busy(d, XAXIDMA_DMA_TO_DEVICE))
            if ((uint32_t)(hal_time_ms() - t0) > timeout_ms) { XAxiDma_Reset(d); return HAL_TIMEOUT; }
        p += n;
        left -= n;
    }
    return HAL_OK;
}

int hal_stream_rx_wait(uint32_t timeout_ms)
{
    uint32_t t0 = hal_time_ms();
    if (!rx_armed) return HAL_ERROR;
    while (XAxiDma_Busy(&dma_w, XAXIDMA_DEVICE_TO_DMA))
        if ((uint32_t)(hal_time_ms() - t0) > timeout_ms) { XAxiDma_Reset(&dma_w); rx_armed = 0; return HAL_TIMEOUT; }
    Xil_DCacheInvalidateRange((UINTPTR)rx_dst, rx_bytes);
    rx_armed = 0;
    return HAL_OK;
}
