/* CRC32C (Castagnoli, reflected polynomial 0x82F63B78), as in iSCSI, ext4
 * and btrfs: crc32c(0, "123456789", 9) == 0xE3069283. The crc argument is
 * the previous result (0 to start), so crc32c(crc32c(0, a, la), b, lb) is
 * the CRC of a followed by b. Uses the SSE4.2 crc32 instruction when the CPU
 * has it, slicing-by-8 tables otherwise. */
#ifndef SNAPSHOT_CRC32C_H
#define SNAPSHOT_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

uint32_t crc32c(uint32_t crc, const void *buf, size_t len);
/* The two implementations, for tests and benchmarks. crc32c_hw() must only
 * be called when crc32c_hw_available(). */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);
uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len);
bool crc32c_hw_available(void);

#endif
