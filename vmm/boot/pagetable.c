/* Identity page tables for the boot contract: 2 MiB pages covering
 * [0, max(4 GiB, top of RAM)), U/S=1 at every level so a guest may drop to
 * ring 3 without building its own (required to run natively on PVM hosts),
 * and a flat boot GDT in the Linux layout (code 0x10, data 0x18). */
#include "vmm/boot/boot.h"
#include "vmm/layout.h"
#include "vmm/log.h"
#include "vmm/memory.h"

#include <errno.h>
#include <string.h>

#define PTE_P   0x1ULL
#define PTE_RW  0x2ULL
#define PTE_US  0x4ULL
#define PTE_PS  0x80ULL
#define GIB     (1ULL << 30)

uint64_t boot_map_top(const struct guest_mem *mem)
{
	uint64_t top = guest_mem_top(mem);

	if (top < LAYOUT_4G)
		top = LAYOUT_4G;
	return (top + GIB - 1) & ~(GIB - 1);
}

int boot_write_page_tables(struct guest_mem *mem)
{
	uint64_t npd = boot_map_top(mem) / GIB;
	uint64_t *pml4, *pdpt, *pd;

	if (npd > (LAYOUT_PT_END - LAYOUT_PD) / 4096 || npd > 512) {
		log_err("guest RAM ends at %llu GiB; the boot identity map reaches %llu GiB at most",
			(unsigned long long)npd,
			(unsigned long long)(LAYOUT_PT_END - LAYOUT_PD) / 4096);
		return -E2BIG;
	}
	pml4 = guest_mem_ptr(mem, LAYOUT_PML4, 4096);
	pdpt = guest_mem_ptr(mem, LAYOUT_PDPT, 4096);
	pd = guest_mem_ptr(mem, LAYOUT_PD, npd * 4096);
	if (!pml4 || !pdpt || !pd)
		return -EFAULT;
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = LAYOUT_PDPT | PTE_P | PTE_RW | PTE_US;
	for (uint64_t g = 0; g < npd; g++) {
		pdpt[g] = (LAYOUT_PD + g * 4096) | PTE_P | PTE_RW | PTE_US;
		for (uint64_t i = 0; i < 512; i++)
			pd[g * 512 + i] = (g * GIB + (i << 21)) | PTE_P | PTE_RW | PTE_US | PTE_PS;
	}
	return 0;
}

int boot_write_gdt(struct guest_mem *mem)
{
	static const uint64_t gdt[4] = {
		0,
		0,
		0x00af9b000000ffffULL,  /* 0x10: code, 64-bit, DPL 0 */
		0x00cf93000000ffffULL,  /* 0x18: data, flat 4 GiB, DPL 0 */
	};

	return guest_mem_write(mem, LAYOUT_GDT, gdt, sizeof(gdt));
}
