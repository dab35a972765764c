/* The Linux zero page (struct boot_params) that the boot contract hands every
 * guest in RSI: an e820 RAM map and the command line. */
#include "vmm/boot/boot.h"
#include "vmm/layout.h"
#include "vmm/log.h"
#include "vmm/memory.h"

#include <asm/bootparam.h>
#include <errno.h>
#include <string.h>

static unsigned int e820_add(struct boot_e820 *out, unsigned int n, unsigned int max,
			     uint64_t addr, uint64_t size, uint32_t type)
{
	if (size && n < max)
		out[n++] = (struct boot_e820){ .addr = addr, .size = size, .type = type };
	return n;
}

unsigned int boot_build_e820(const struct guest_mem *mem, struct boot_e820 *out,
			     unsigned int max)
{
	const struct guest_mem_region *low = &mem->regions[0];
	unsigned int n = 0;

	n = e820_add(out, n, max, 0, LAYOUT_LOW_RAM_END, BOOT_E820_RAM);
	n = e820_add(out, n, max, LAYOUT_LOW_RAM_END, LAYOUT_HIGH_RAM - LAYOUT_LOW_RAM_END,
		     BOOT_E820_RESERVED);
	n = e820_add(out, n, max, LAYOUT_HIGH_RAM, low->size - LAYOUT_HIGH_RAM, BOOT_E820_RAM);
	if (mem->nregions > 1)
		n = e820_add(out, n, max, mem->regions[1].gpa, mem->regions[1].size,
			     BOOT_E820_RAM);
	return n;
}

int boot_write_zero_page(struct guest_mem *mem, const char *cmdline)
{
	struct boot_e820 e820[BOOT_E820_MAX];
	struct boot_params *bp;
	size_t len = strlen(cmdline);
	unsigned int n;

	if (len >= LAYOUT_CMDLINE_MAX) {
		log_err("the kernel command line is %zu bytes (--cmdline and the virtio_mmio.device= entries of the devices); the limit is %llu",
			len, LAYOUT_CMDLINE_MAX - 1);
		return -E2BIG;
	}
	bp = guest_mem_ptr(mem, LAYOUT_ZERO_PAGE, sizeof(*bp));
	if (!bp || guest_mem_write(mem, LAYOUT_CMDLINE, cmdline, len + 1) < 0)
		return -EFAULT;
	memset(bp, 0, sizeof(*bp));
	bp->hdr.boot_flag = 0xaa55;
	bp->hdr.header = 0x53726448;    /* "HdrS" */
	bp->hdr.version = 0x020f;
	bp->hdr.type_of_loader = 0xff;  /* undefined loader */
	bp->hdr.cmd_line_ptr = (uint32_t)LAYOUT_CMDLINE;
	bp->hdr.cmdline_size = (uint32_t)(LAYOUT_CMDLINE_MAX - 1);
	n = boot_build_e820(mem, e820, BOOT_E820_MAX);
	for (unsigned int i = 0; i < n; i++) {
		bp->e820_table[i].addr = e820[i].addr;
		bp->e820_table[i].size = e820[i].size;
		bp->e820_table[i].type = e820[i].type;
	}
	bp->e820_entries = (uint8_t)n;
	return 0;
}
