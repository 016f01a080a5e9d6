/* main_zynq.c - firmware entry on the Zynq-7000 standalone BSP: bring up the UART and the
 * accelerator, then serve docs/PROTOCOL.md forever. */
#include "xil_printf.h"

#include "hal.h"
#include "pq_accel.h"
#include "pq_fw.h"

int main(void)
{
    if (hal_uart_init() != HAL_OK) return 1;
    if (accel_init() != ACCEL_OK) {
        /* keep serving: HELLO still answers, RUN reports E_ACCEL */
        xil_printf("pqfw: accelerator/DMA init failed (check the block design, see README)\r\n");
    }
    proto_init();
    for (;;) proto_serve();   /* hal_uart_getc never reports HAL_CLOSED on the board */
    return 0;
}
