/* Guest kit memory layout and CPU constants, shared by the assembly files.
 *
 * Why fixed addresses: the IDT gates and the TSS descriptors split addresses
 * into bit fields, which the assembler can only compute for constants (ELF has
 * no relocation for "bits 16..23 of a symbol"). guest.ld places .kit.fixed at
 * KIT_FIXED_BASE and asserts it, so every ring-0 table is built at assembly
 * time and the boot path runs a couple of dozen ring-0 instructions (ring 0 is
 * emulated instruction by instruction on PVM hosts). */
#ifndef KIT_LAYOUT_H
#define KIT_LAYOUT_H

#define KIT_LOAD_BASE		0x100000	/* image start (1 MiB) */
#define KIT_FIXED_BASE		0x101000	/* .kit.fixed, see guest.ld */

#define KIT_MAX_CPUS		64

/* Offsets inside .kit.fixed. */
#define KIT_VEC_OFF		0x0800		/* exception stubs, 16 bytes each */
#define KIT_DESC_OFF		0x0e40		/* GDT and IDT pseudo-descriptors */
#define KIT_GDT_OFF		0x1000
#define KIT_TSS_OFF		0x1480		/* KIT_MAX_CPUS TSSes, then the I/O bitmap */
#define KIT_IRQ_VEC_OFF		0x5100		/* interrupt stubs (32..255), 16 bytes each */
#define KIT_IDT_OFF		0x6000		/* KIT_IDT_ENTRIES gates */

#define KIT_IDT_ENTRIES		256		/* 32 exceptions, then interrupts (irq.c) */
#define KIT_IRQ_FIRST		32
#define KIT_IRQ_SPURIOUS	0xff		/* LAPIC spurious vector: counted, no EOI */

/* GDT selectors; user data sits right below user code so that a
 * sysret-style STAR (base 0x10) yields SS = 0x18|3, CS = 0x20|3. */
#define KIT_SEL_KCODE		0x08
#define KIT_SEL_KDATA		0x10
#define KIT_SEL_UDATA		0x18
#define KIT_SEL_UCODE		0x20
#define KIT_SEL_TSS0		0x28		/* 16 bytes per vCPU */
#define KIT_GDT_SIZE		(KIT_SEL_TSS0 + 16 * KIT_MAX_CPUS)

/* A TSS is 104 bytes; they are packed 112 apart and all point their I/O
 * permission bitmap (iomap_base) at one shared all-zero bitmap after the
 * array, followed by the 0xff terminator byte. An all-zero bitmap is needed
 * on PVM for ring-3 in/out to work despite IOPL=3. */
#define KIT_TSS_STRIDE		112
#define KIT_IOMAP_OFF		(KIT_TSS_OFF + KIT_TSS_STRIDE * KIT_MAX_CPUS)
#define KIT_IOMAP_BYTES		8192

#define KIT_STACK0_SHIFT	12		/* ring-0 stack: 4 KiB per vCPU */
#define KIT_STACK3_SHIFT	14		/* ring-3 stack: 16 KiB per vCPU */

#define KIT_RFLAGS_USER		0x3002		/* IOPL=3, IF=0, bit 1 */

#define KIT_COM1		0x3f8

#define KIT_LAPIC_BASE		0xfee00000	/* xAPIC MMIO */
#define KIT_LAPIC_EOI		(KIT_LAPIC_BASE + 0xb0)
#define KIT_IOAPIC_BASE		0xfec00000

#endif
