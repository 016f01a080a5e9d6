#include "xil_types.h"
typedef struct { u16 DeviceId; UINTPTR BaseAddress; u32 InputClockHz; s32 ModemPinsConnected; } XUartPs_Config;
typedef struct { XUartPs_Config Config; u32 InputClockHz; u32 IsReady; } XUartPs;
#define XUARTPS_FIFO_OFFSET 0x0030U
#define XUARTPS_SR_OFFSET 0x002CU
#define XUARTPS_SR_RXEMPTY 0x00000002U
#define XUARTPS_OPER_MODE_NORMAL (u8)0x00U
#define XUartPs_ReadReg(BaseAddress, RegOffset) Xil_In32((BaseAddress) + (u32)(RegOffset))
#define XUartPs_IsReceiveData(BaseAddress) !((Xil_In32((BaseAddress) + XUARTPS_SR_OFFSET) & (u32)XUARTPS_SR_RXEMPTY) == (u32)XUARTPS_SR_RXEMPTY)
XUartPs_Config *XUartPs_LookupConfig(u16 DeviceId);
s32 XUartPs_CfgInitialize(XUartPs *InstancePtr, XUartPs_Config *Config, UINTPTR EffectiveAddr);
s32 XUartPs_SetBaudRate(XUartPs *InstancePtr, u32 BaudRate);
void XUartPs_SetOperMode(XUartPs *InstancePtr, u8 OperationMode);
void XUartPs_SendByte(UINTPTR BaseAddress, u8 Data);
u32 Xil_In32(UINTPTR Addr);
