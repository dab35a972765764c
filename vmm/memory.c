#include "vmm/memory.h"
#include "vmm/layout.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void guest_mem_layout(struct guest_mem *mem, uint64_t size)
{
	uint64_t low = size < LAYOUT_MMIO_START ? size : LAYOUT_MMIO_START;

	mem->size = size;
	mem->nregions = 1;
	mem->regions[0] = (struct guest_mem_region){ .gpa = 0, .size = low, .offset = 0 };
	if (size > low) {
		mem->regions[1] = (struct guest_mem_region){
			.gpa = LAYOUT_4G, .size = size - low, .offset = low };
		mem->nregions = 2;
	}
}

static size_t guest_mem_dirty_words(uint64_t size)
{
	uint64_t pages = (size + 4095) / 4096;

	return (size_t)((pages + 63) / 64);
}

int guest_mem_create(struct guest_mem *mem, uint64_t size)
{
	void *p;
	int err;

	memset(mem, 0, sizeof(*mem));
	mem->memfd = -1;
	guest_mem_layout(mem, size);
	/* A memfd, so RAM can later be shared, dirty-logged and handed across exec. */
	mem->memfd = memfd_create("vmm-guest-ram", MFD_CLOEXEC);
	if (mem->memfd < 0)
		return -errno;
	if (ftruncate(mem->memfd, (off_t)size) < 0)
		goto fail;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
		 mem->memfd, 0);
	if (p == MAP_FAILED)
		goto fail;
	mem->host = p;
	/* Huge pages for guest RAM where the host allows them for shared
	 * memory (transparent_hugepage/shmem_enabled = advise or always):
	 * fewer TLB misses for the guest and for devices copying into it. */
	madvise(p, size, MADV_HUGEPAGE);
	mem->dirty = calloc(guest_mem_dirty_words(size), sizeof(uint64_t));
	if (!mem->dirty) {
		guest_mem_destroy(mem);
		return -ENOMEM;
	}
	return 0;
fail:
	err = -errno;
	close(mem->memfd);
	mem->memfd = -1;
	return err;
}

void guest_mem_destroy(struct guest_mem *mem)
{
	free(mem->dirty);
	mem->dirty = NULL;
	if (mem->host)
		munmap(mem->host, mem->size);
	if (mem->memfd >= 0)
		close(mem->memfd);
	mem->host = NULL;
	mem->memfd = -1;
}

/* The region holding all of [gpa, gpa+len), or NULL. Written so no sum can overflow. */
static const struct guest_mem_region *guest_mem_find(const struct guest_mem *mem,
						     uint64_t gpa, uint64_t len)
{
	for (unsigned int i = 0; i < mem->nregions; i++) {
		const struct guest_mem_region *r = &mem->regions[i];

		if (gpa >= r->gpa && gpa - r->gpa <= r->size &&
		    len <= r->size - (gpa - r->gpa))
			return r;
	}
	return NULL;
}

void *guest_mem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	const struct guest_mem_region *r = guest_mem_find(mem, gpa, len);

	if (!r || !mem->host)
		return NULL;
	return mem->host + r->offset + (gpa - r->gpa);
}

bool guest_mem_is_ram(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	return guest_mem_find(mem, gpa, len) != NULL;
}

int guest_mem_read(const struct guest_mem *mem, uint64_t gpa, void *buf, uint64_t len)
{
	const void *src = guest_mem_ptr(mem, gpa, len);

	if (!src)
		return -EFAULT;
	memcpy(buf, src, len);
	return 0;
}

int guest_mem_write(struct guest_mem *mem, uint64_t gpa, const void *buf, uint64_t len)
{
	void *dst = guest_mem_ptr(mem, gpa, len);

	if (!dst)
		return -EFAULT;
	memcpy(dst, buf, len);
	guest_mem_mark_dirty(mem, gpa, len);
	return 0;
}

/* The bitmap is indexed by memfd offset, so it is dense across the hole. */
void guest_mem_mark_dirty(struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	const struct guest_mem_region *r = guest_mem_find(mem, gpa, len);
	uint64_t first, last;

	if (!r || !mem->dirty || len == 0)
		return;
	first = (r->offset + (gpa - r->gpa)) / 4096;
	last = (r->offset + (gpa - r->gpa) + len - 1) / 4096;
	for (uint64_t p = first; p <= last; p++)
		__atomic_fetch_or(&mem->dirty[p / 64], 1ULL << (p % 64), __ATOMIC_RELAXED);
}

bool guest_mem_page_dirty(const struct guest_mem *mem, uint64_t gpa)
{
	const struct guest_mem_region *r = guest_mem_find(mem, gpa, 1);
	uint64_t p;

	if (!r || !mem->dirty)
		return false;
	p = (r->offset + (gpa - r->gpa)) / 4096;
	return __atomic_load_n(&mem->dirty[p / 64], __ATOMIC_RELAXED) & (1ULL << (p % 64));
}

void guest_mem_clear_dirty(struct guest_mem *mem)
{
	if (mem->dirty)
		memset(mem->dirty, 0, guest_mem_dirty_words(mem->size) * sizeof(uint64_t));
}

uint64_t guest_mem_top(const struct guest_mem *mem)
{
	const struct guest_mem_region *r = &mem->regions[mem->nregions - 1];

	return r->gpa + r->size;
}
