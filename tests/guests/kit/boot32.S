/* Guest kit 32-bit entries, for booting the same ELF under QEMU:
 *  - a multiboot v1 header with the a.out kludge (flags bit 16): QEMU
 *    refuses ELF64 multiboot images otherwise (-M pc / q35);
 *  - a Xen PVH note (XEN_ELFNOTE_PHYS32_ENTRY) in a PT_NOTE.
 * Both enter in 32-bit protected mode with paging off. The trampoline loads
 * the kit GDT, points CR3 at identity page tables built at assembly time
 * (0..4 GiB, 2 MiB pages, U/S=1), enables long mode and joins kit_entry64
 * with RDI = 0 (boot vCPU) and RSI = 0 (no boot_params: one vCPU). Each
 * entry records which one ran (kit_boot32_magic: the multiboot EAX, or the
 * PVH magic) and its EBX (multiboot info / struct hvm_start_info) for
 * boot.c, which takes the command line and memory map from there.
 * QEMU 7.2 prefers the multiboot header when an image has both, also on
 * -M microvm; the PVH entry serves loaders that only speak PVH.
 * vmm never uses this file: it enters kit_entry64 (e_entry) directly. */
#include "layout.h"

#define MB_MAGIC	0x1badb002
#define MB_FLAGS	0x00010000	/* bit 16: address fields are valid */
#define KIT_PVH_MAGIC	0x336ec578	/* hvm_start_info.magic */

	.section .kit.head, "awx", @progbits
	.balign 4
#ifndef KIT_NO_MULTIBOOT
kit_multiboot_header:
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)
	.long kit_multiboot_header	/* header_addr */
	.long kit_image_start		/* load_addr */
	.long _edata			/* load_end_addr */
	.long _end			/* bss_end_addr */
	.long kit_entry32_multiboot	/* entry_addr */
#endif

	.code32
kit_entry32_multiboot:			/* EAX = 0x2badb002, EBX = multiboot info */
	cli
	mov %eax, kit_boot32_magic
	jmp 1f
	.globl kit_entry32
	.type kit_entry32, @function
kit_entry32:				/* PVH: EBX = struct hvm_start_info */
	cli
	movl $KIT_PVH_MAGIC, kit_boot32_magic
1:	mov %ebx, kit_boot32_info
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

	.balign 4
	.globl kit_boot32_magic, kit_boot32_info
kit_boot32_magic:	.long 0		/* KIT_PVH_MAGIC or multiboot EAX */
kit_boot32_info:	.long 0		/* EBX: start_info / multiboot info */

	.section .note.GNU-stack, "", @progbits
