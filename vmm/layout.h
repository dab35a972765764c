/* The guest-physical memory map vmm builds (documented in docs/boot-contract.md).
 * Everything vmm places in guest RAM lives below 1 MiB; guest images load at or
 * above LAYOUT_HIGH_RAM. */
#ifndef VMM_LAYOUT_H
#define VMM_LAYOUT_H

#define LAYOUT_GDT           0x500ULL    /* boot GDT: null, null, code64 0x10, data 0x18 */
#define LAYOUT_ZERO_PAGE     0x7000ULL   /* Linux boot_params */
#define LAYOUT_CMDLINE       0x8000ULL   /* kernel command line */
#define LAYOUT_CMDLINE_MAX   4096ULL     /* bytes, including the NUL */
#define LAYOUT_PML4          0x9000ULL   /* identity page tables ... */
#define LAYOUT_PDPT          0xA000ULL
#define LAYOUT_PD            0xB000ULL   /* ... one 4 KiB PD per GiB mapped */
#define LAYOUT_PT_END        0x9F000ULL  /* page tables end here */
#define LAYOUT_LOW_RAM_END   0x9FC00ULL  /* conventional RAM; legacy hole above */
#define LAYOUT_HIGH_RAM      0x100000ULL /* 1 MiB: guest images start here */
#define LAYOUT_MMIO_START    0xC0000000ULL  /* RAM below 4 GiB stops here */
#define LAYOUT_VIRTIO_BASE   0xD0000000ULL  /* virtio-mmio window */
#define LAYOUT_IOAPIC        0xFEC00000ULL
#define LAYOUT_LAPIC         0xFEE00000ULL
#define LAYOUT_4G            0x100000000ULL

#define LAYOUT_BOOT_CS       0x10
#define LAYOUT_BOOT_DS       0x18

#define LAYOUT_MIN_MEM       (2ULL << 20)

#endif
