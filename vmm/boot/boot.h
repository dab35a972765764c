/* Loading a guest kernel and building what the boot contract promises it:
 * identity page tables, a boot GDT, the Linux zero page with e820 and the
 * command line. Loaders are pluggable: boot_load_kernel() probes each. */
#ifndef VMM_BOOT_H
#define VMM_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct guest_mem;

struct boot_info {
	const char *format;     /* "elf", ... */
	uint64_t entry;         /* guest-physical entry point */
	uint64_t zero_page;     /* passed in RSI */
	bool start_all_vcpus;   /* ELF contract: every vCPU starts at entry at once */
};

struct boot_e820 {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};

#define BOOT_E820_RAM      1
#define BOOT_E820_RESERVED 2
#define BOOT_E820_MAX      8

/* A kernel format: probe() looks at the first bytes of the file. */
struct boot_loader {
	const char *name;
	bool (*probe)(const uint8_t *head, size_t len);
	int (*load)(struct guest_mem *mem, int fd, const char *path, struct boot_info *info);
};

extern const struct boot_loader boot_loader_elf;

/* Load the kernel at path and everything the contract puts around it.
 * Errors are logged here, naming the file and the problem. */
int boot_load_kernel(struct guest_mem *mem, const char *path, const char *cmdline,
		     struct boot_info *info);

unsigned int boot_build_e820(const struct guest_mem *mem, struct boot_e820 *out,
			     unsigned int max);
int boot_write_zero_page(struct guest_mem *mem, const char *cmdline);
int boot_write_page_tables(struct guest_mem *mem);
int boot_write_gdt(struct guest_mem *mem);
/* Bytes of address space the identity map covers: all RAM and at least 4 GiB. */
uint64_t boot_map_top(const struct guest_mem *mem);

#endif
