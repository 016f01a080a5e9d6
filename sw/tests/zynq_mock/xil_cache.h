#include "xil_types.h"
void Xil_DCacheFlushRange(INTPTR adr, u32 len);
void Xil_DCacheInvalidateRange(INTPTR adr, u32 len);
