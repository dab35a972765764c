/* Guest RAM: one memfd, mapped once in vmm, exposed to KVM as one slot below
 * the MMIO hole and one above 4 GiB. Every access vmm or a device makes goes
 * through this API, which bounds-checks it against guest RAM (and will mark
 * pages dirty for checkpoints). */
#ifndef VMM_MEMORY_H
#define VMM_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_MEM_MAX_REGIONS 2

struct guest_mem_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t offset;  /* into the memfd and the host mapping */
};

struct guest_mem {
	int memfd;
	uint8_t *host;    /* mapping of the whole memfd */
	uint64_t *dirty;  /* one bit per 4 KiB page of the memfd: written by vmm */
	uint64_t size;    /* total RAM bytes */
	unsigned int nregions;
	struct guest_mem_region regions[GUEST_MEM_MAX_REGIONS];
};

/* Lay out size bytes of RAM around the MMIO hole (no allocation). */
void guest_mem_layout(struct guest_mem *mem, uint64_t size);
int guest_mem_create(struct guest_mem *mem, uint64_t size);
void guest_mem_destroy(struct guest_mem *mem);

/* Host pointer for [gpa, gpa+len) if it lies wholly inside one RAM region, else NULL. */
void *guest_mem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len);
bool guest_mem_is_ram(const struct guest_mem *mem, uint64_t gpa, uint64_t len);
int guest_mem_read(const struct guest_mem *mem, uint64_t gpa, void *buf, uint64_t len);
int guest_mem_write(struct guest_mem *mem, uint64_t gpa, const void *buf, uint64_t len);
/* Record that vmm (a device, the loader) wrote [gpa, gpa+len): KVM's dirty
 * log never sees these writes, so checkpoints OR this bitmap with KVM's.
 * guest_mem_write() does it itself; code that writes through a pointer
 * from guest_mem_ptr() (e.g. io_uring reads into guest buffers) calls it.
 * Safe from any thread. */
void guest_mem_mark_dirty(struct guest_mem *mem, uint64_t gpa, uint64_t len);
/* Was page (gpa / 4096) written by vmm since the last clear? */
bool guest_mem_page_dirty(const struct guest_mem *mem, uint64_t gpa);
void guest_mem_clear_dirty(struct guest_mem *mem);

/* Highest guest-physical address of RAM, plus one. */
uint64_t guest_mem_top(const struct guest_mem *mem);

#endif
