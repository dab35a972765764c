/* Split virtqueues, device side (virtio 1.x section 2.7).
 *
 * The rings live in guest RAM and a driver on another vCPU writes them while
 * we read, so the rules here are:
 *   - every ring, descriptor and buffer is looked up with guest_mem_ptr(),
 *     which refuses anything not wholly inside one RAM region (and cannot
 *     overflow on addr + len);
 *   - each descriptor is copied once into a local and only the copy is
 *     validated and used (no re-reading a field after checking it);
 *   - avail->idx is read with acquire semantics so the ring entries and
 *     descriptors written before it are visible; used->idx is published
 *     with a release store after the used element;
 *   - every write into guest RAM is dirty-tracked (guest_mem_write or
 *     guest_mem_mark_dirty after an atomic store).
 * Ring layouts (little-endian, the event fields always reserved):
 *   desc[size]  {le64 addr, le32 len, le16 flags, le16 next}
 *   avail       {le16 flags, le16 idx, le16 ring[size], le16 used_event}
 *   used        {le16 flags, le16 idx, {le32 id, le32 len} ring[size], le16 avail_event}
 */
#include "devices/virtio/queue.h"
#include "vmm/memory.h"

#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

_Static_assert(sizeof(struct virtq_desc) == 16, "virtq_desc is 16 bytes");
_Static_assert(sizeof(struct virtq_used_elem) == 8, "virtq_used_elem is 8 bytes");

/* Offsets into the avail and used rings. */
#define VIRTQ_RING_FLAGS 0
#define VIRTQ_RING_IDX   2
#define VIRTQ_RING_ENTRIES 4

/* Host pointers to the three rings of a queue whose layout passed the checks. */
struct virtq_rings {
	const uint8_t *desc;  /* read with memcpy only: the driver may change it under us */
	uint16_t *avail;      /* [0] flags, [1] idx, [2 + i] ring[i], [2 + size] used_event */
	uint8_t *used;
};

static uint64_t virtq_desc_bytes(uint16_t size)
{
	return 16ULL * size;
}

static uint64_t virtq_avail_bytes(uint16_t size)
{
	return VIRTQ_RING_ENTRIES + 2ULL * size + 2;
}

static uint64_t virtq_used_bytes(uint16_t size)
{
	return VIRTQ_RING_ENTRIES + 8ULL * size + 2;
}

/* Validate the layout and find the rings. Cheap (three region lookups), so
 * every entry point calls it rather than trusting that the transport did:
 * a queue whose registers changed, or that was never checked, cannot make
 * us touch memory outside guest RAM. */
static int virtq_map(const struct virtq *vq, struct virtq_rings *r, const char **why)
{
	uint16_t size = vq->size;

	if (!vq->mem) {
		*why = "queue has no guest memory";
		return -EINVAL;
	}
	if (size == 0) {
		*why = "queue size is zero";
		return -EINVAL;
	}
	if (size > VIRTQ_MAX_SIZE) {
		*why = "queue size above the maximum";
		return -EINVAL;
	}
	if (size & (size - 1)) {
		*why = "queue size not a power of 2";
		return -EINVAL;
	}
	if (vq->desc_gpa % 16) {
		*why = "descriptor table not 16-byte aligned";
		return -EINVAL;
	}
	if (vq->avail_gpa % 2) {
		*why = "avail ring not 2-byte aligned";
		return -EINVAL;
	}
	if (vq->used_gpa % 4) {
		*why = "used ring not 4-byte aligned";
		return -EINVAL;
	}
	r->desc = guest_mem_ptr(vq->mem, vq->desc_gpa, virtq_desc_bytes(size));
	if (!r->desc) {
		*why = "descriptor table outside guest RAM";
		return -EINVAL;
	}
	r->avail = guest_mem_ptr(vq->mem, vq->avail_gpa, virtq_avail_bytes(size));
	if (!r->avail) {
		*why = "avail ring outside guest RAM";
		return -EINVAL;
	}
	r->used = guest_mem_ptr(vq->mem, vq->used_gpa, virtq_used_bytes(size));
	if (!r->used) {
		*why = "used ring outside guest RAM";
		return -EINVAL;
	}
	return 0;
}

int virtq_check(const struct virtq *vq, const char **why)
{
	struct virtq_rings r;

	return virtq_map(vq, &r, why);
}

void virtq_reset(struct virtq *vq)
{
	vq->ready = false;
	vq->last_avail = 0;
	vq->used_idx = 0;
	vq->signalled_used = 0;
	vq->signalled_valid = false;
}

/* avail->idx as the driver last published it. The acquire pairs with the
 * driver's write barrier before its idx store: ring entries and descriptors
 * it wrote before are visible once we see the new idx. */
static uint16_t virtq_avail_idx(const struct virtq_rings *r)
{
	return le16toh(__atomic_load_n(&r->avail[1], __ATOMIC_ACQUIRE));
}

/* Add one non-empty buffer to the chain, enforcing order and bounds. */
static int virtq_add_buf(struct virtq *vq, struct virtq_chain *chain,
			 uint64_t addr, uint32_t len, bool write, const char **why)
{
	struct virtq_buf *b;
	void *host;

	if (chain->nbufs >= VIRTQ_MAX_BUFS) {
		*why = "chain has too many buffers";
		return -EINVAL;
	}
	if (!write && chain->nread != chain->nbufs) {
		*why = "readable descriptor after a writable one";
		return -EINVAL;
	}
	host = guest_mem_ptr(vq->mem, addr, len);
	if (!host) {
		*why = "descriptor buffer outside guest RAM";
		return -EINVAL;
	}
	/* Each len is < 4 GiB and there are at most 2 * VIRTQ_MAX_BUFS of
	 * them, so the u64 sums cannot overflow before the bound trips. */
	if (write) {
		chain->write_len += len;
		if (chain->write_len > VIRTQ_MAX_CHAIN_BYTES) {
			*why = "writable part of the chain too long";
			return -EINVAL;
		}
	} else {
		chain->read_len += len;
		if (chain->read_len > VIRTQ_MAX_CHAIN_BYTES) {
			*why = "readable part of the chain too long";
			return -EINVAL;
		}
		chain->nread++;
	}
	b = &chain->bufs[chain->nbufs++];
	b->gpa = addr;
	b->len = len;
	b->write = write;
	b->host = host;
	return 0;
}

/* Walk one descriptor table (the queue's, or an indirect one) from index
 * start. entries bounds both `next` and the number of descriptors visited,
 * which is how a loop (a -> b -> a) is caught: no loop-free chain in a
 * table of n entries is longer than n. */
static int virtq_walk(struct virtq *vq, struct virtq_chain *chain, const uint8_t *table,
		      unsigned int entries, unsigned int start, bool indirect,
		      const char **why)
{
	unsigned int idx = start;

	for (unsigned int n = 0;; n++) {
		struct virtq_desc d;
		uint64_t addr;
		uint32_t len;
		uint16_t flags;

		if (n == entries) {
			*why = indirect ? "indirect chain loops or is longer than its table"
					: "descriptor chain loops or is longer than the queue";
			return -EINVAL;
		}
		/* One copy, then only the copy: the driver may be rewriting it. */
		memcpy(&d, table + 16ULL * idx, sizeof(d));
		addr = le64toh(d.addr);
		len = le32toh(d.len);
		flags = le16toh(d.flags);

		if (flags & VIRTQ_DESC_F_INDIRECT) {
			const uint8_t *itable;
			int err;

			if (indirect) {
				*why = "nested indirect descriptor";
				return -EINVAL;
			}
			/* 2.7.5.3.1: a driver MUST NOT set both; refuse rather than guess. */
			if (flags & VIRTQ_DESC_F_NEXT) {
				*why = "indirect descriptor with NEXT set";
				return -EINVAL;
			}
			if (len == 0) {
				*why = "empty indirect table";
				return -EINVAL;
			}
			if (len % 16) {
				*why = "indirect table length not a multiple of 16";
				return -EINVAL;
			}
			if (len / 16 > VIRTQ_MAX_BUFS) {
				*why = "indirect table too big";
				return -EINVAL;
			}
			itable = guest_mem_ptr(vq->mem, addr, len);
			if (!itable) {
				*why = "indirect table outside guest RAM";
				return -EINVAL;
			}
			/* The WRITE flag of this descriptor is ignored (2.7.5.3.2).
			 * Without NEXT it ends the chain, so direct descriptors
			 * before it are allowed, as in vhost. */
			err = virtq_walk(vq, chain, itable, len / 16, 0, true, why);
			return err;
		}

		/* A zero-length buffer carries nothing: it is skipped (not
		 * added to bufs, its address not checked, no effect on the
		 * readable/writable order) but still counts toward the chain
		 * bound above. */
		if (len) {
			int err = virtq_add_buf(vq, chain, addr, len,
						flags & VIRTQ_DESC_F_WRITE, why);
			if (err)
				return err;
		}

		if (!(flags & VIRTQ_DESC_F_NEXT))
			return 0;
		idx = le16toh(d.next);
		if (idx >= entries) {
			*why = indirect ? "indirect next out of range" : "descriptor next out of range";
			return -EINVAL;
		}
	}
}

int virtq_pop(struct virtq *vq, struct virtq_chain *chain, const char **why)
{
	struct virtq_rings r;
	uint16_t avail_idx, head;
	int err;

	err = virtq_map(vq, &r, why);
	if (err)
		return err;
	avail_idx = virtq_avail_idx(&r);
	if (avail_idx == vq->last_avail)
		return 0;
	/* The driver can have at most size chains outstanding; more means it
	 * is broken (or hostile), and the ring entries would be stale. */
	if ((uint16_t)(avail_idx - vq->last_avail) > vq->size) {
		*why = "avail index ran ahead";
		return -EINVAL;
	}
	head = le16toh(__atomic_load_n(&r.avail[2 + (vq->last_avail & (vq->size - 1))],
				       __ATOMIC_RELAXED));
	if (head >= vq->size) {
		*why = "descriptor head out of range";
		return -EINVAL;
	}
	chain->head = head;
	chain->nbufs = 0;
	chain->nread = 0;
	chain->read_len = 0;
	chain->write_len = 0;
	err = virtq_walk(vq, chain, r.desc, vq->size, head, false, why);
	if (err)
		return err;
	vq->last_avail++;
	return 1;
}

int virtq_push(struct virtq *vq, uint16_t head, uint32_t written)
{
	struct virtq_used_elem elem = { .id = htole32(head), .len = htole32(written) };
	struct virtq_rings r;
	const char *why;
	uint64_t gpa;
	uint16_t *idx;
	int err;

	if (virtq_map(vq, &r, &why))
		return -EINVAL;
	if (head >= vq->size)
		return -EINVAL;
	gpa = vq->used_gpa + VIRTQ_RING_ENTRIES + 8ULL * (vq->used_idx & (vq->size - 1));
	err = guest_mem_write(vq->mem, gpa, &elem, sizeof(elem));
	if (err)
		return err;
	vq->used_idx++;
	/* Release: the element (and the data the caller wrote into the
	 * buffers) is visible before the driver can see the new idx. A single
	 * atomic store so the driver never reads a torn index; the page is
	 * marked dirty after the store so a concurrent checkpoint that copies
	 * it before the store still sees the mark. */
	idx = (uint16_t *)(r.used + VIRTQ_RING_IDX);
	__atomic_store_n(idx, htole16(vq->used_idx), __ATOMIC_RELEASE);
	guest_mem_mark_dirty(vq->mem, vq->used_gpa + VIRTQ_RING_IDX, 2);
	return 0;
}

/* vring_need_event() of the spec: has new_idx moved past event since old? */
static bool virtq_need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

bool virtq_should_notify(struct virtq *vq)
{
	struct virtq_rings r;
	const char *why;
	uint16_t old = vq->signalled_used;
	bool valid = vq->signalled_valid;
	bool notify;

	/* The window is always "since the last time we were asked" (as QEMU
	 * and vhost do): keeping an old position across many unnotified
	 * pushes would let the u16 window wrap and miss used_event. */
	vq->signalled_used = vq->used_idx;
	vq->signalled_valid = true;
	/* A broken layout: a spurious interrupt is harmless, a lost one hangs. */
	if (virtq_map(vq, &r, &why))
		return true;
	/* Full fence: our used->idx store must be globally visible before we
	 * read the driver's flags/used_event. Otherwise (store->load
	 * reordering, allowed even on x86) we could read a stale "no
	 * interrupt" while the driver, having set used_event and re-read
	 * used->idx, still sees our old idx: both sides wait, the
	 * completion is lost. Pairs with the driver's mb() in
	 * virtqueue_enable_cb. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx) {
		uint16_t flags = le16toh(__atomic_load_n(&r.avail[0], __ATOMIC_RELAXED));

		notify = !(flags & VIRTQ_AVAIL_F_NO_INTERRUPT);
	} else {
		uint16_t used_event = le16toh(__atomic_load_n(&r.avail[2 + vq->size],
							      __ATOMIC_RELAXED));

		notify = !valid || virtq_need_event(used_event, vq->used_idx, old);
	}
	return notify;
}

bool virtq_enable_notify(struct virtq *vq, bool enable)
{
	struct virtq_rings r;
	const char *why;

	if (virtq_map(vq, &r, &why))
		return false;
	if (!vq->event_idx) {
		uint16_t *flags = (uint16_t *)(r.used + VIRTQ_RING_FLAGS);
		uint16_t v = le16toh(__atomic_load_n(flags, __ATOMIC_RELAXED));

		/* Only the device writes used->flags, so read-modify-write is safe. */
		v = enable ? v & ~VIRTQ_USED_F_NO_NOTIFY : v | VIRTQ_USED_F_NO_NOTIFY;
		__atomic_store_n(flags, htole16(v), __ATOMIC_RELAXED);
		guest_mem_mark_dirty(vq->mem, vq->used_gpa + VIRTQ_RING_FLAGS, 2);
	} else if (enable) {
		/* "Kick me when you publish entry last_avail." Disabling with
		 * event_idx needs no write: the driver only kicks when it
		 * crosses avail_event, which we simply stop advancing. */
		uint64_t off = VIRTQ_RING_ENTRIES + 8ULL * vq->size;
		uint16_t *event = (uint16_t *)(r.used + off);

		__atomic_store_n(event, htole16(vq->last_avail), __ATOMIC_RELAXED);
		guest_mem_mark_dirty(vq->mem, vq->used_gpa + off, 2);
	}
	/* Full fence, then look at avail->idx again: the driver may have
	 * published a chain after we last looked but before it could see the
	 * notification request above, and then it will not kick. Our store
	 * must be visible before our load (store->load order needs a full
	 * fence); the driver has the mirror-image fence between its idx store
	 * and its flags/avail_event load. The caller polls again on true. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return virtq_avail_idx(&r) != vq->last_avail;
}

void virtq_unpop(struct virtq *vq)
{
	vq->last_avail--;
}

bool virtq_has_work(const struct virtq *vq)
{
	struct virtq_rings r;
	const char *why;

	if (virtq_map(vq, &r, &why))
		return false;
	return virtq_avail_idx(&r) != vq->last_avail;
}
