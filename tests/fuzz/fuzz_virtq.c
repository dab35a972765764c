/* libFuzzer target for devices/virtio/queue.c: the fuzzer plays a hostile
 * driver. The first bytes choose the queue (size, ring addresses, start
 * positions, event_idx); the rest is copied into guest RAM at gpa 0 (or
 * into the last bytes of RAM), where the rings and descriptors usually
 * land. Then chains are popped and pushed back, and the invariants
 * checked: every buffer lies inside guest RAM, the chain's counts and
 * totals add up, an error consumes nothing.
 * Build and run: scripts/fuzz fuzz_virtq */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "devices/virtio/queue.h"
#include "vmm/memory.h"

#define FUZZ_RAM_SIZE (1ULL << 20)
#define FUZZ_HDR      16
#define FUZZ_MAX_POPS 64
#define FUZZ_WINDOW   (64ULL << 10)    /* most payload copied into RAM */
#define FUZZ_ITABLE_GPA (256ULL << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint16_t fuzz_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* Move guest RAM so an inaccessible page follows it: a read even one byte
 * past RAM then faults (ASan cannot see into the memfd mapping, and the
 * page after a fresh mmap is usually another mapping). */
static void fuzz_add_guard(struct guest_mem *mem)
{
	void *area = mmap(NULL, FUZZ_RAM_SIZE + 4096, PROT_NONE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	void *moved;

	if (area == MAP_FAILED)
		abort();
	moved = mremap(mem->host, FUZZ_RAM_SIZE, FUZZ_RAM_SIZE,
		       MREMAP_MAYMOVE | MREMAP_FIXED, area);
	if (moved != area)
		abort();
	mem->host = moved;
}

/* Ring addresses: an offset from the start of RAM, or (flag 0x10, the
 * payload then sits in the last bytes of RAM) back from its end, so that
 * tables ending exactly at the end of RAM, or one entry past it, are
 * reachable with a short input. */
static uint64_t fuzz_gpa(bool end, uint64_t off)
{
	return end ? FUZZ_RAM_SIZE - off : off;
}

/* A short input cannot hold a 1024-entry indirect table, so build one at
 * FUZZ_ITABLE_GPA from the input's first descriptor, chained 0 -> 1 -> ...
 * -> n-1: with a direct buffer before it, or big buffers, it reaches the
 * buffer-count and byte bounds. The driver side still has to point at it. */
static void fuzz_fill_itable(struct guest_mem *mem, const uint8_t *desc, unsigned int n)
{
	uint8_t *t = mem->host + FUZZ_ITABLE_GPA;

	for (unsigned int i = 0; i < n; i++) {
		uint16_t flags = (uint16_t)(fuzz_le16(desc + 12) | VIRTQ_DESC_F_NEXT);
		uint16_t next = (uint16_t)(i + 1);

		if (i + 1 == n)
			flags &= (uint16_t)~VIRTQ_DESC_F_NEXT;
		memcpy(t + 16 * i, desc, 12);
		memcpy(t + 16 * i + 12, &flags, 2);
		memcpy(t + 16 * i + 14, &next, 2);
	}
}

/* Abort unless every invariant of a successfully popped chain holds. */
static void fuzz_check_chain(const struct guest_mem *mem, const struct virtq *vq,
			     const struct virtq_chain *c)
{
	uint64_t rd = 0, wr = 0;
	uintptr_t lo = (uintptr_t)mem->host, hi = lo + (uintptr_t)mem->size;

	if (c->head >= vq->size || c->nbufs > VIRTQ_MAX_BUFS || c->nread > c->nbufs)
		abort();
	for (unsigned int i = 0; i < c->nbufs; i++) {
		const struct virtq_buf *b = &c->bufs[i];
		uintptr_t h = (uintptr_t)b->host;

		/* One region (1 MiB is below the MMIO hole): host = base + gpa. */
		if (b->len == 0 || h < lo || h > hi || b->len > hi - h ||
		    b->gpa >= mem->size || h != lo + b->gpa)
			abort();
		if (b->write != (i >= c->nread))
			abort();
		if (b->write)
			wr += b->len;
		else
			rd += b->len;
	}
	if (rd != c->read_len || wr != c->write_len ||
	    rd > VIRTQ_MAX_CHAIN_BYTES || wr > VIRTQ_MAX_CHAIN_BYTES)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* One guest memory for the whole run: creating a memfd per input
	 * would dominate the time. Reset below so inputs stay independent. */
	static struct guest_mem mem;
	static bool have_mem;
	static struct virtq_chain chain;
	struct virtq vq;
	uint64_t payload;
	bool end;
	uint8_t flags;
	unsigned int pops;

	if (!have_mem) {
		if (guest_mem_create(&mem, FUZZ_RAM_SIZE))
			abort();
		fuzz_add_guard(&mem);
		have_mem = true;
	}
	if (size < FUZZ_HDR)
		return 0;
	flags = data[3];
	end = flags & 0x10;
	memset(mem.host, 0, FUZZ_RAM_SIZE);
	guest_mem_clear_dirty(&mem);
	payload = size - FUZZ_HDR < FUZZ_WINDOW ? size - FUZZ_HDR : FUZZ_WINDOW;
	memcpy(mem.host + (end ? FUZZ_RAM_SIZE - payload : 0), data + FUZZ_HDR, payload);
	if ((flags & 0x40) && payload >= 16)
		fuzz_fill_itable(&mem, data + FUZZ_HDR, 1023 + (data[15] & 3));

	/* Header: mostly valid layouts, with room to be wrong. */
	memset(&vq, 0, sizeof(vq));
	vq.mem = &mem;
	vq.size = (data[0] & 0x80) ? fuzz_le16(data + 1) : (uint16_t)(1u << (data[0] % 11));
	vq.desc_gpa = fuzz_gpa(end, (uint64_t)(fuzz_le16(data + 4) & 0xfff) * 16);
	vq.avail_gpa = fuzz_gpa(end, (uint64_t)(fuzz_le16(data + 6) & 0x7fff) * 2);
	vq.used_gpa = fuzz_gpa(end, (uint64_t)(fuzz_le16(data + 8) & 0x3fff) * 4);
	if (flags & 2) {
		vq.desc_gpa += data[15] & 8;
		vq.avail_gpa += data[15] & 1;
		vq.used_gpa += data[15] & 2;
	}
	if (flags & 4)   /* past the end of RAM, or far from the payload */
		vq.used_gpa += FUZZ_WINDOW;
	if (flags & 0x20)
		vq.avail_gpa += FUZZ_WINDOW;
	vq.event_idx = flags & 1;
	vq.last_avail = fuzz_le16(data + 10);
	vq.used_idx = fuzz_le16(data + 12);
	vq.signalled_used = vq.used_idx;
	vq.ready = true;
	pops = data[14] % FUZZ_MAX_POPS + 1;

	{
		const char *why = NULL;
		int ok = virtq_check(&vq, &why) == 0;

		if (!ok && !why)
			abort();
		(void)virtq_has_work(&vq);
	}

	for (unsigned int i = 0; i < pops; i++) {
		uint16_t before = vq.last_avail, used_before = vq.used_idx;
		const char *why = NULL;
		int r = virtq_pop(&vq, &chain, &why);

		if (r < 0) {
			if (r != -EINVAL || !why || vq.last_avail != before)
				abort();
			break;
		}
		if (r == 0) {
			if (vq.last_avail != before)
				abort();
			/* The "re-enable, then look again" dance of a device. */
			if (!virtq_enable_notify(&vq, true))
				break;
			continue;
		}
		if (r != 1 || vq.last_avail != (uint16_t)(before + 1))
			abort();
		fuzz_check_chain(&mem, &vq, &chain);
		if (virtq_push(&vq, chain.head, (uint32_t)chain.write_len) != 0 ||
		    vq.used_idx != (uint16_t)(used_before + 1) ||
		    !guest_mem_page_dirty(&mem, vq.used_gpa + 2))
			abort();
		(void)virtq_should_notify(&vq);
		if (flags & 8)
			(void)virtq_enable_notify(&vq, false);
	}
	if (flags & 0x80) {
		virtq_reset(&vq);
		if (vq.ready || vq.last_avail || vq.used_idx || vq.signalled_valid)
			abort();
	}
	return 0;
}
