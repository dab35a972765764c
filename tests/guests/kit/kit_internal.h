/* Guest kit internals shared between its own files; guests use kit.h. */
#ifndef KIT_INTERNAL_H
#define KIT_INTERNAL_H

#include "kit.h"

/* Console lock; also taken (bounded) by the ring-0 panic path in entry.S. */
extern uint32_t kit_console_lock;

/* CPUID as read in ring 0 by kit_entry64 (layout = its r8, r9, r10). */
struct kit_boot_cpuid {
	uint32_t max_basic;		/* leaf 0 EAX */
	uint32_t pad;
	uint32_t leaf1_ebx;		/* APIC id in bits 31:24 */
	uint32_t leafb1_ebx;		/* logical CPUs at core level in 15:0 */
	uint32_t hv_max;		/* leaf 0x40000000 EAX */
	uint32_t hv_tsc_khz;		/* leaf 0x40000010 EAX */
	uint64_t pad2;
};

/* Called from entry.S in ring 3 on every vCPU. */
void kit_start(uint64_t cpu, uint64_t boot_params,
	       const struct kit_boot_cpuid *id) KIT_NORETURN;

/* Set by the 32-bit QEMU entries in boot32.S (0 otherwise): which entry ran
 * (the PVH magic 0x336ec578, or the multiboot EAX 0x2badb002) and its EBX
 * (struct hvm_start_info / multiboot info physical address). */
extern uint32_t kit_boot32_magic, kit_boot32_info;

/* Boot-vCPU-only setup, before the other vCPUs are released. */
void kit_boot_init(const void *boot_params);
void kit_cpu_init(bool have_boot_params, const struct kit_boot_cpuid *id);

/* Output sink for the formatter. */
struct kit_sink {
	void (*put)(struct kit_sink *sink, char c);
	char *buf;
	size_t size;
	size_t len;
};
void kit_vformat(struct kit_sink *sink, const char *fmt, va_list ap);

/* Console output for a caller that holds kit_console_lock. */
void kit_console_vprintf_locked(const char *fmt, va_list ap);
void kit_console_puts_locked(const char *s);

/* The value of digit c in base 10 or 16, for the kit's number parsers. */
static inline bool kit_digit(char c, unsigned int base, unsigned int *d)
{
	if (c >= '0' && c <= '9')
		*d = (unsigned int)(c - '0');
	else if (base == 16 && c >= 'a' && c <= 'f')
		*d = (unsigned int)(c - 'a' + 10);
	else if (base == 16 && c >= 'A' && c <= 'F')
		*d = (unsigned int)(c - 'A' + 10);
	else
		return false;
	return true;
}

#endif
