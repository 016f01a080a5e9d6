/* fuzz_frame.c - libFuzzer target: the frame decoder and the whole protocol engine.
 * Byte 0 selects the mode: even = the input is fed as raw UART bytes (COBS/NAK/resync paths);
 * odd = the rest is a list of records [u16 len][bytes], each turned into a frame with a VALID
 * CRC and COBS encoding, so the fuzzer reaches every command handler and its checks. */
#include <stdint.h>
#include <string.h>
#include <zlib.h>
#include "hal_test.h"
#include "pq_accel.h"
#include "pq_fw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t frame[PROTO_FRAME_MAX + 16], enc[PROTO_ENC_MAX + 16], sink[1 << 16];
static int ready;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t i;
    if (!ready) { accel_init(); ready = 1; }
    test_uart_reset();
    proto_init();
    if (size == 0) return 0;
    if ((data[0] & 1u) == 0u) {
        for (i = 1; i < size; i++) proto_rx_byte(data[i]);
        proto_rx_byte(0);
    } else {
        i = 1;
        while (i + 2 <= size) {
            size_t n = (size_t)data[i] | ((size_t)data[i + 1] << 8), e;
            uint32_t crc;
            i += 2;
            if (n > size - i) n = size - i;
            if (n < 6) { i += n; continue; }
            if (n > PROTO_FRAME_MAX - 4) n = PROTO_FRAME_MAX - 4;
            memcpy(frame, data + i, n);
            i += n;
            frame[4] = (uint8_t)(n - 6); frame[5] = (uint8_t)((n - 6) >> 8);  /* consistent len */
            crc = (uint32_t)crc32(0L, frame, (uInt)n);
            frame[n] = (uint8_t)crc; frame[n + 1] = (uint8_t)(crc >> 8);
            frame[n + 2] = (uint8_t)(crc >> 16); frame[n + 3] = (uint8_t)(crc >> 24);
            e = cobs_encode(frame, n + 4, enc, sizeof(enc));
            enc[e++] = 0;
            {
                size_t k;
                for (k = 0; k < e; k++) proto_rx_byte(enc[k]);
            }
            while (test_uart_take(sink, sizeof(sink))) {}
        }
    }
    while (test_uart_take(sink, sizeof(sink))) {}
    return 0;
}
