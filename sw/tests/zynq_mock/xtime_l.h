#include "xil_types.h"
typedef u64 XTime;
#define COUNTS_PER_SECOND (666666687u / 2u)
void XTime_GetTime(XTime *Xtime_Global);
