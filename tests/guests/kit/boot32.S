/* Guest kit 32-bit entries, for booting the same ELF under QEMU:
 *  - a multiboot v1 header with the a.out kludge (flags bit 16): QEMU
 *    refuses ELF64 multiboot images otherwise (-M pc / q35);
 *  - a Xen PVH note (XEN_ELFNOTE_PHYS32_ENTRY) in a PT_NOTE (-M microvm).
 * Both enter in 32-bit protected mode with paging off. The trampoline loads
 * the kit GDT, points CR3 at identity page tables built at assembly time
 * (0..4 GiB, 2 MiB pages, U/S=1), enables long mode and joins kit_entry64
 * with RDI = 0 (boot vCPU) and RSI = 0 (no boot_params: the C side then
 * uses defaults: empty cmdline, default RAM size, one vCPU).
 * vmm never uses this file: it enters kit_entry64 (e_entry) directly. */
#include "layout.h"

#define MB_MAGIC	0x1badb002
#define MB_FLAGS	0x00010000	/* bit 16: address fields are valid */

	.section .kit.head, "awx", @progbits
	.balign 4
kit_multiboot_header:
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)
	.long kit_multiboot_header	/* header_addr */
	.long kit_image_start		/* load_addr */
	.long _edata			/* load_end_addr */
	.long _end			/* bss_end_addr */
	.long kit_entry32		/* entry_addr */

	.code32
	.globl kit_entry32
	.type kit_entry32, @function
kit_entry32:
	cli
	lgdt kit_gdt_desc		/* 6-byte form: limit + 32-bit base */
	mov $0x620, %eax		/* CR4: PAE | OSFXSR | OSXMMEXCPT */
	mov %eax, %cr4
	mov $kit_pml4, %eax
	mov %eax, %cr3
	mov $0xc0000080, %ecx		/* EFER.LME */
	rdmsr
	or $0x100, %eax
	wrmsr
	mov %cr0, %eax
	and $~0x6000000c, %eax		/* clear CD, NW, TS, EM */
	or $0x80000003, %eax		/* PG | MP | PE */
	mov %eax, %cr0
	ljmp $KIT_SEL_KCODE, $kit_entry32_long
	.size kit_entry32, . - kit_entry32

	.code64
kit_entry32_long:
	mov $KIT_SEL_KDATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	xor %edi, %edi
	xor %esi, %esi
	jmp kit_entry64

/* XEN_ELFNOTE_PHYS32_ENTRY: name "Xen", type 18, 4-byte 32-bit entry. */
	.section .note.Xen, "a", @note
	.balign 4
	.long 4				/* namesz */
	.long 4				/* descsz */
	.long 18			/* type */
	.asciz "Xen"
	.long kit_entry32

/* Identity map of 0..4 GiB with 2 MiB pages, U/S=1 at every level, built by
 * the assembler so no loop runs at boot. Only the 32-bit path uses it. */
	.data
	.balign 4096
kit_pml4:
	.quad kit_pdpt + 0x7		/* P | RW | US */
	.fill 511, 8, 0
kit_pdpt:
	.set i, 0
	.rept 4
	.quad kit_pd + i * 4096 + 0x7
	.set i, i + 1
	.endr
	.fill 508, 8, 0
kit_pd:
	.set addr, 0
	.rept 2048
	.quad addr + 0x87		/* P | RW | US | PS (2 MiB) */
	.set addr, addr + 0x200000
	.endr

	.section .note.GNU-stack, "", @progbits
