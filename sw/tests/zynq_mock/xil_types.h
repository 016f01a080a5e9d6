/* Mock of the Xilinx standalone BSP headers: the declarations hal_zynq.c uses, with the BSP's
 * signatures, so `test_zynq_platform_compiles` type-checks the Zynq HAL without Vitis. */
#ifndef MOCK_XIL_TYPES_H
#define MOCK_XIL_TYPES_H
#include <stdint.h>
#include <stddef.h>
typedef uint8_t u8; typedef uint16_t u16; typedef uint32_t u32; typedef uint64_t u64;
typedef int32_t s32; typedef uintptr_t UINTPTR; typedef intptr_t INTPTR;
#endif
