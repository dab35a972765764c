/* Unit tests for devices/virtio/queue.c over real guest RAM (a memfd): a tiny
 * "driver" in this file builds descriptor tables and rings in guest memory,
 * the device side pops, pushes and decides on notifications. Every malformed
 * queue must give -EINVAL with a reason and consume nothing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "devices/virtio/queue.h"
#include "vmm/memory.h"

#define RAM_SIZE   (4ULL << 20)
#define DESC_GPA   0x10000ULL
#define AVAIL_GPA  0x20000ULL
#define USED_GPA   0x30000ULL
#define ITABLE_GPA 0x40000ULL   /* indirect tables */
#define DATA_GPA   0x100000ULL  /* buffers */
#define QSIZE      8

/* Test state: guest RAM, the queue, and the driver's own avail index. */
struct drv {
	struct guest_mem mem;
	struct virtq vq;
	uint16_t avail_idx;
	struct virtq_chain chain;
};

static int drv_setup_size(void **state, uint16_t size)
{
	struct drv *d = calloc(1, sizeof(*d));

	if (!d || guest_mem_create(&d->mem, RAM_SIZE))
		return -1;
	d->vq.mem = &d->mem;
	d->vq.size = size;
	d->vq.desc_gpa = DESC_GPA;
	d->vq.avail_gpa = AVAIL_GPA;
	d->vq.used_gpa = USED_GPA;
	d->vq.ready = true;
	*state = d;
	return 0;
}

static int drv_setup(void **state)
{
	return drv_setup_size(state, QSIZE);
}

static int drv_teardown(void **state)
{
	struct drv *d = *state;

	guest_mem_destroy(&d->mem);
	free(d);
	return 0;
}

static void *gptr(struct drv *d, uint64_t gpa, uint64_t len)
{
	void *p = guest_mem_ptr(&d->mem, gpa, len);

	assert_non_null(p);
	return p;
}

static void put16(struct drv *d, uint64_t gpa, uint16_t v)
{
	uint16_t le = htole16(v);

	memcpy(gptr(d, gpa, 2), &le, 2);
}

static uint16_t get16(struct drv *d, uint64_t gpa)
{
	uint16_t le;

	memcpy(&le, gptr(d, gpa, 2), 2);
	return le16toh(le);
}

static uint32_t get32(struct drv *d, uint64_t gpa)
{
	uint32_t le;

	memcpy(&le, gptr(d, gpa, 4), 4);
	return le32toh(le);
}

/* Write descriptor i of the table at table_gpa. */
static void desc_at(struct drv *d, uint64_t table_gpa, unsigned int i, uint64_t addr,
		    uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *p = gptr(d, table_gpa + 16ULL * i, 16);
	uint64_t a = htole64(addr);
	uint32_t l = htole32(len);
	uint16_t f = htole16(flags), n = htole16(next);

	memcpy(p, &a, 8);
	memcpy(p + 8, &l, 4);
	memcpy(p + 12, &f, 2);
	memcpy(p + 14, &n, 2);
}

static void desc(struct drv *d, unsigned int i, uint64_t addr, uint32_t len,
		 uint16_t flags, uint16_t next)
{
	desc_at(d, DESC_GPA, i, addr, len, flags, next);
}

/* Make head available: ring entry, then idx (the driver's order). */
static void publish(struct drv *d, uint16_t head)
{
	put16(d, AVAIL_GPA + 4 + 2ULL * (d->avail_idx % d->vq.size), head);
	d->avail_idx++;
	put16(d, AVAIL_GPA + 2, d->avail_idx);
}

static void set_avail_flags(struct drv *d, uint16_t flags)
{
	put16(d, AVAIL_GPA, flags);
}

static void set_used_event(struct drv *d, uint16_t v)
{
	put16(d, AVAIL_GPA + 4 + 2ULL * d->vq.size, v);
}

static uint16_t used_idx(struct drv *d)
{
	return get16(d, USED_GPA + 2);
}

static uint16_t used_flags(struct drv *d)
{
	return get16(d, USED_GPA);
}

static uint16_t avail_event(struct drv *d)
{
	return get16(d, USED_GPA + 4 + 8ULL * d->vq.size);
}

static void used_elem(struct drv *d, uint16_t slot, uint32_t *id, uint32_t *len)
{
	uint64_t gpa = USED_GPA + 4 + 8ULL * (slot % d->vq.size);

	*id = get32(d, gpa);
	*len = get32(d, gpa + 4);
}

static void pop_ok(struct drv *d)
{
	const char *why = NULL;
	int r = virtq_pop(&d->vq, &d->chain, &why);

	if (r != 1)
		fail_msg("pop gave %d (%s)", r, why ? why : "");
}

/* The queue is malformed: -EINVAL, a reason, nothing consumed. */
static void pop_bad(struct drv *d, const char *want)
{
	uint16_t before = d->vq.last_avail;
	const char *why = NULL;

	assert_int_equal(virtq_pop(&d->vq, &d->chain, &why), -EINVAL);
	assert_non_null(why);
	assert_string_equal(why, want);
	assert_int_equal(d->vq.last_avail, before);
	/* And it stays broken: a retry gives the same answer. */
	why = NULL;
	assert_int_equal(virtq_pop(&d->vq, &d->chain, &why), -EINVAL);
	assert_non_null(why);
	assert_string_equal(why, want);
	assert_int_equal(d->vq.last_avail, before);
}

static void check_bad(struct drv *d, const char *want)
{
	const char *why = NULL;

	assert_int_equal(virtq_check(&d->vq, &why), -EINVAL);
	assert_non_null(why);
	assert_string_equal(why, want);
}

/* ---- layout checks ---- */

static void test_check_good(void **state)
{
	struct drv *d = *state;
	const char *why = NULL;

	for (unsigned int s = 1; s <= VIRTQ_MAX_SIZE; s *= 2) {
		d->vq.size = (uint16_t)s;
		assert_int_equal(virtq_check(&d->vq, &why), 0);
	}
	/* A ring ending exactly at the end of RAM is fine. */
	d->vq.size = 4;
	d->vq.avail_gpa = RAM_SIZE - (4 + 2 * 4 + 2);
	assert_int_equal(virtq_check(&d->vq, &why), 0);
}

static void test_check_size(void **state)
{
	struct drv *d = *state;

	d->vq.size = 0;
	check_bad(d, "queue size is zero");
	d->vq.size = 3;
	check_bad(d, "queue size not a power of 2");
	d->vq.size = 1000;
	check_bad(d, "queue size not a power of 2");
	d->vq.size = VIRTQ_MAX_SIZE * 2;
	check_bad(d, "queue size above the maximum");
	d->vq.size = 0xffff;
	check_bad(d, "queue size above the maximum");
	d->vq.size = 0x8000;
	check_bad(d, "queue size above the maximum");
	/* and pop refuses too, touching nothing */
	publish(d, 0);
	pop_bad(d, "queue size above the maximum");
}

static void test_check_align(void **state)
{
	struct drv *d = *state;

	d->vq.desc_gpa = DESC_GPA + 8;
	check_bad(d, "descriptor table not 16-byte aligned");
	d->vq.desc_gpa = DESC_GPA;
	d->vq.avail_gpa = AVAIL_GPA + 1;
	check_bad(d, "avail ring not 2-byte aligned");
	d->vq.avail_gpa = AVAIL_GPA;
	d->vq.used_gpa = USED_GPA + 2;
	check_bad(d, "used ring not 4-byte aligned");
	d->vq.used_gpa = USED_GPA;
	d->vq.mem = NULL;
	check_bad(d, "queue has no guest memory");
}

static void test_check_outside(void **state)
{
	struct drv *d = *state;

	d->vq.desc_gpa = RAM_SIZE;
	check_bad(d, "descriptor table outside guest RAM");
	d->vq.desc_gpa = RAM_SIZE - 16 * (QSIZE - 1);   /* last entries past the end */
	check_bad(d, "descriptor table outside guest RAM");
	d->vq.desc_gpa = 0xfffffffffffffff0ULL;
	check_bad(d, "descriptor table outside guest RAM");
	d->vq.desc_gpa = DESC_GPA;
	d->vq.avail_gpa = RAM_SIZE - 4 - 2 * QSIZE;      /* used_event past the end */
	check_bad(d, "avail ring outside guest RAM");
	d->vq.avail_gpa = AVAIL_GPA;
	d->vq.used_gpa = RAM_SIZE - 4 - 8 * QSIZE;       /* avail_event past the end */
	check_bad(d, "used ring outside guest RAM");
	d->vq.used_gpa = 0xfffffffffffffffcULL;
	check_bad(d, "used ring outside guest RAM");
	assert_false(virtq_has_work(&d->vq));
	assert_int_equal(virtq_push(&d->vq, 0, 0), -EINVAL);
	assert_true(virtq_should_notify(&d->vq));     /* when in doubt, interrupt */
	assert_false(virtq_enable_notify(&d->vq, true));
}

/* ---- good chains ---- */

static void test_pop_empty(void **state)
{
	struct drv *d = *state;
	const char *why = NULL;

	assert_false(virtq_has_work(&d->vq));
	assert_int_equal(virtq_pop(&d->vq, &d->chain, &why), 0);
	assert_int_equal(d->vq.last_avail, 0);
}

static void test_pop_single(void **state)
{
	struct drv *d = *state;
	struct virtq_chain *c = &d->chain;

	desc(d, 5, DATA_GPA, 100, 0, 0);
	publish(d, 5);
	assert_true(virtq_has_work(&d->vq));
	pop_ok(d);
	assert_int_equal(c->head, 5);
	assert_int_equal(c->nbufs, 1);
	assert_int_equal(c->nread, 1);
	assert_int_equal(c->read_len, 100);
	assert_int_equal(c->write_len, 0);
	assert_int_equal(c->bufs[0].gpa, DATA_GPA);
	assert_int_equal(c->bufs[0].len, 100);
	assert_false(c->bufs[0].write);
	assert_ptr_equal(c->bufs[0].host, d->mem.host + DATA_GPA);
	assert_int_equal(d->vq.last_avail, 1);
	assert_false(virtq_has_work(&d->vq));
}

static void test_pop_read_write(void **state)
{
	struct drv *d = *state;
	struct virtq_chain *c = &d->chain;

	/* 2 -> 7 -> 0 -> 3: header, data, data (write), status (write) */
	desc(d, 2, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 7);
	desc(d, 7, DATA_GPA + 0x1000, 512, VIRTQ_DESC_F_NEXT, 0);
	desc(d, 0, DATA_GPA + 0x2000, 4096, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 3);
	desc(d, 3, DATA_GPA + 0x3000, 1, VIRTQ_DESC_F_WRITE, 0);
	publish(d, 2);
	pop_ok(d);
	assert_int_equal(c->head, 2);
	assert_int_equal(c->nbufs, 4);
	assert_int_equal(c->nread, 2);
	assert_int_equal(c->read_len, 16 + 512);
	assert_int_equal(c->write_len, 4096 + 1);
	assert_false(c->bufs[1].write);
	assert_true(c->bufs[2].write);
	assert_int_equal(c->bufs[3].gpa, DATA_GPA + 0x3000);
	assert_ptr_equal(c->bufs[3].host, d->mem.host + DATA_GPA + 0x3000);
}

static void test_pop_indirect(void **state)
{
	struct drv *d = *state;
	struct virtq_chain *c = &d->chain;

	desc_at(d, ITABLE_GPA, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 2);
	desc_at(d, ITABLE_GPA, 2, DATA_GPA + 0x100, 32, VIRTQ_DESC_F_NEXT, 1);
	desc_at(d, ITABLE_GPA, 1, DATA_GPA + 0x200, 64, VIRTQ_DESC_F_WRITE, 0);
	/* WRITE on the indirect descriptor itself is ignored (2.7.5.3.2) */
	desc(d, 4, ITABLE_GPA, 3 * 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0);
	publish(d, 4);
	pop_ok(d);
	assert_int_equal(c->head, 4);
	assert_int_equal(c->nbufs, 3);
	assert_int_equal(c->nread, 2);
	assert_int_equal(c->read_len, 48);
	assert_int_equal(c->write_len, 64);
	assert_int_equal(c->bufs[2].gpa, DATA_GPA + 0x200);

	/* Direct descriptors may precede the (final) indirect one. */
	desc(d, 1, DATA_GPA + 0x300, 8, VIRTQ_DESC_F_NEXT, 4);
	publish(d, 1);
	pop_ok(d);
	assert_int_equal(c->head, 1);
	assert_int_equal(c->nbufs, 4);
	assert_int_equal(c->nread, 3);
	assert_int_equal(c->read_len, 56);
}

static void test_pop_zero_len(void **state)
{
	struct drv *d = *state;
	struct virtq_chain *c = &d->chain;

	/* Zero-length buffers are skipped, whatever their address or flags. */
	desc(d, 0, DATA_GPA, 10, VIRTQ_DESC_F_NEXT, 1);
	desc(d, 1, UINT64_MAX, 0, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
	desc(d, 2, DATA_GPA, 0, VIRTQ_DESC_F_NEXT, 3);
	desc(d, 3, DATA_GPA + 0x10, 20, VIRTQ_DESC_F_WRITE, 0);
	publish(d, 0);
	pop_ok(d);
	assert_int_equal(c->nbufs, 2);
	assert_int_equal(c->nread, 1);
	assert_int_equal(c->read_len, 10);
	assert_int_equal(c->write_len, 20);
}

static void test_pop_full_size_chain(void **state)
{
	struct drv *d = *state;

	/* A chain using every descriptor is legal. */
	for (unsigned int i = 0; i < QSIZE; i++)
		desc(d, i, DATA_GPA + i, 1, i + 1 < QSIZE ? VIRTQ_DESC_F_NEXT : 0,
		     (uint16_t)(i + 1));
	publish(d, 0);
	pop_ok(d);
	assert_int_equal(d->chain.nbufs, QSIZE);
}

static void test_push_used(void **state)
{
	struct drv *d = *state;
	uint32_t id, len;

	desc(d, 6, DATA_GPA, 64, VIRTQ_DESC_F_WRITE, 0);
	publish(d, 6);
	pop_ok(d);
	guest_mem_clear_dirty(&d->mem);
	assert_false(guest_mem_page_dirty(&d->mem, USED_GPA));
	assert_int_equal(virtq_push(&d->vq, 6, 42), 0);
	assert_int_equal(used_idx(d), 1);
	assert_int_equal(d->vq.used_idx, 1);
	used_elem(d, 0, &id, &len);
	assert_int_equal(id, 6);
	assert_int_equal(len, 42);
	assert_true(guest_mem_page_dirty(&d->mem, USED_GPA));
	assert_false(guest_mem_page_dirty(&d->mem, AVAIL_GPA));

	assert_int_equal(virtq_push(&d->vq, QSIZE, 0), -EINVAL);
	assert_int_equal(virtq_push(&d->vq, 0xffff, 0), -EINVAL);
	assert_int_equal(used_idx(d), 1);
}

/* Fill the ring, drain it, return everything in reverse; repeat. */
static void test_fill_ring(void **state)
{
	struct drv *d = *state;
	const char *why = NULL;
	uint16_t heads[QSIZE];
	uint32_t id, len;

	for (unsigned int round = 0; round < 3; round++) {
		for (unsigned int i = 0; i < QSIZE; i++) {
			desc(d, i, DATA_GPA + 0x100 * i, 0x10 + i, VIRTQ_DESC_F_WRITE, 0);
			publish(d, (uint16_t)i);
		}
		for (unsigned int i = 0; i < QSIZE; i++) {
			pop_ok(d);
			heads[i] = d->chain.head;
			assert_int_equal(heads[i], i);
			assert_int_equal(d->chain.write_len, 0x10 + i);
		}
		assert_int_equal(virtq_pop(&d->vq, &d->chain, &why), 0);
		for (unsigned int i = 0; i < QSIZE; i++)
			assert_int_equal(virtq_push(&d->vq, heads[QSIZE - 1 - i], i), 0);
		assert_int_equal(used_idx(d), (round + 1) * QSIZE);
		for (unsigned int i = 0; i < QSIZE; i++) {
			used_elem(d, (uint16_t)i, &id, &len);
			assert_int_equal(id, QSIZE - 1 - i);
			assert_int_equal(len, i);
		}
	}
}

/* 16-bit indices wrap across 65535 on both rings. */
static void test_wraparound(void **state)
{
	struct drv *d = *state;
	uint32_t id, len;

	d->avail_idx = 65530;
	put16(d, AVAIL_GPA + 2, d->avail_idx);
	d->vq.last_avail = 65530;
	d->vq.used_idx = 65531;
	for (unsigned int i = 0; i < 20; i++) {
		uint16_t h = (uint16_t)(i % QSIZE);

		desc(d, h, DATA_GPA, 1 + i, 0, 0);
		publish(d, h);
		publish(d, (uint16_t)((h + 1) % QSIZE));
		pop_ok(d);
		assert_int_equal(d->chain.head, h);
		assert_int_equal(d->chain.read_len, 1 + i);
		pop_ok(d);
		assert_int_equal(virtq_push(&d->vq, h, i), 0);
		used_elem(d, (uint16_t)(d->vq.used_idx - 1), &id, &len);
		assert_int_equal(id, h);
		assert_int_equal(len, i);
		assert_int_equal(used_idx(d), d->vq.used_idx);
	}
	assert_int_equal(d->vq.last_avail, (uint16_t)(65530 + 40));
	assert_int_equal(used_idx(d), (uint16_t)(65531 + 20));
}

/* ---- notifications ---- */

static void test_notify_flags(void **state)
{
	struct drv *d = *state;

	desc(d, 0, DATA_GPA, 1, 0, 0);
	publish(d, 0);
	pop_ok(d);
	assert_int_equal(virtq_push(&d->vq, 0, 0), 0);
	assert_true(virtq_should_notify(&d->vq));
	set_avail_flags(d, VIRTQ_AVAIL_F_NO_INTERRUPT);
	assert_int_equal(virtq_push(&d->vq, 0, 0), 0);
	assert_false(virtq_should_notify(&d->vq));
	set_avail_flags(d, 0);
	assert_true(virtq_should_notify(&d->vq));
}

static void test_notify_event_idx(void **state)
{
	struct drv *d = *state;

	d->vq.event_idx = true;
	set_used_event(d, 100);  /* far away */
	/* first decision always notifies: nothing signalled yet */
	assert_int_equal(virtq_push(&d->vq, 0, 0), 0);
	assert_true(virtq_should_notify(&d->vq));
	assert_int_equal(d->vq.signalled_used, 1);
	/* used_event = 2: "interrupt me once entry 2 is used", i.e. idx 3 */
	set_used_event(d, 2);
	assert_int_equal(virtq_push(&d->vq, 0, 0), 0);   /* idx 2: not crossed */
	assert_false(virtq_should_notify(&d->vq));
	assert_int_equal(virtq_push(&d->vq, 0, 0), 0);   /* idx 3: crossed */
	assert_true(virtq_should_notify(&d->vq));
	assert_int_equal(virtq_push(&d->vq, 0, 0), 0);   /* idx 4: already past */
	assert_false(virtq_should_notify(&d->vq));
	/* several pushes at once, event in the middle of the batch */
	set_used_event(d, 5);
	for (int i = 0; i < 3; i++)
		assert_int_equal(virtq_push(&d->vq, 0, 0), 0);
	assert_true(virtq_should_notify(&d->vq));
	/* the flags word is ignored with event_idx */
	set_avail_flags(d, VIRTQ_AVAIL_F_NO_INTERRUPT);
	set_used_event(d, d->vq.used_idx);
	assert_int_equal(virtq_push(&d->vq, 0, 0), 0);
	assert_true(virtq_should_notify(&d->vq));
	/* crossing across the 16-bit wrap */
	d->vq.used_idx = 65534;
	d->vq.signalled_used = 65534;
	set_used_event(d, 65535);
	assert_int_equal(virtq_push(&d->vq, 0, 0), 0);   /* 65535: not crossed */
	assert_false(virtq_should_notify(&d->vq));
	assert_int_equal(virtq_push(&d->vq, 0, 0), 0);   /* 0: crossed */
	assert_true(virtq_should_notify(&d->vq));
	/* a reset forgets the signalled position: notify again */
	virtq_reset(&d->vq);
	assert_false(d->vq.signalled_valid);
	set_used_event(d, 1000);
	assert_true(virtq_should_notify(&d->vq));
}

static void test_enable_notify_flags(void **state)
{
	struct drv *d = *state;

	guest_mem_clear_dirty(&d->mem);
	assert_false(virtq_enable_notify(&d->vq, false));
	assert_int_equal(used_flags(d), VIRTQ_USED_F_NO_NOTIFY);
	assert_true(guest_mem_page_dirty(&d->mem, USED_GPA));
	/* a chain published while notifications were off: true on enable */
	desc(d, 0, DATA_GPA, 1, 0, 0);
	publish(d, 0);
	assert_true(virtq_enable_notify(&d->vq, true));
	assert_int_equal(used_flags(d), 0);
	pop_ok(d);
	assert_false(virtq_enable_notify(&d->vq, true));
	assert_int_equal(used_flags(d), 0);
	assert_int_equal(avail_event(d), 0);  /* untouched without event_idx */
}

static void test_enable_notify_event_idx(void **state)
{
	struct drv *d = *state;

	d->vq.event_idx = true;
	desc(d, 0, DATA_GPA, 1, 0, 0);
	publish(d, 0);
	publish(d, 0);
	pop_ok(d);
	guest_mem_clear_dirty(&d->mem);
	assert_true(virtq_enable_notify(&d->vq, true));
	assert_int_equal(avail_event(d), 1);
	assert_true(guest_mem_page_dirty(&d->mem, USED_GPA));
	pop_ok(d);
	assert_false(virtq_enable_notify(&d->vq, true));
	assert_int_equal(avail_event(d), 2);
	/* disabling writes nothing with event_idx */
	assert_false(virtq_enable_notify(&d->vq, false));
	assert_int_equal(avail_event(d), 2);
	assert_int_equal(used_flags(d), 0);
}

static void test_reset(void **state)
{
	struct drv *d = *state;

	d->vq.last_avail = 3;
	d->vq.used_idx = 4;
	d->vq.signalled_used = 2;
	d->vq.signalled_valid = true;
	virtq_reset(&d->vq);
	assert_false(d->vq.ready);
	assert_int_equal(d->vq.last_avail, 0);
	assert_int_equal(d->vq.used_idx, 0);
	assert_int_equal(d->vq.signalled_used, 0);
	assert_false(d->vq.signalled_valid);
	assert_int_equal(d->vq.size, QSIZE);   /* layout is the transport's */
}

/* ---- malformed queues ---- */

static void test_bad_head(void **state)
{
	struct drv *d = *state;

	publish(d, QSIZE);
	pop_bad(d, "descriptor head out of range");
	put16(d, AVAIL_GPA + 4, 0xffff);
	pop_bad(d, "descriptor head out of range");
}

static void test_bad_next(void **state)
{
	struct drv *d = *state;

	desc(d, 0, DATA_GPA, 1, VIRTQ_DESC_F_NEXT, QSIZE);
	publish(d, 0);
	pop_bad(d, "descriptor next out of range");
}

static void test_bad_loop(void **state)
{
	struct drv *d = *state;

	desc(d, 0, DATA_GPA, 1, VIRTQ_DESC_F_NEXT, 1);   /* a -> b -> a */
	desc(d, 1, DATA_GPA, 1, VIRTQ_DESC_F_NEXT, 0);
	publish(d, 0);
	pop_bad(d, "descriptor chain loops or is longer than the queue");
	desc(d, 0, DATA_GPA, 1, VIRTQ_DESC_F_NEXT, 0);   /* a -> a */
	pop_bad(d, "descriptor chain loops or is longer than the queue");
	/* zero-length descriptors still count toward the bound */
	desc(d, 0, DATA_GPA, 0, VIRTQ_DESC_F_NEXT, 0);
	pop_bad(d, "descriptor chain loops or is longer than the queue");
}

static void test_bad_too_long(void **state)
{
	struct drv *d = *state;

	/* every descriptor, then back to the start: size + 1 entries */
	for (unsigned int i = 0; i < QSIZE; i++)
		desc(d, i, DATA_GPA, 1, VIRTQ_DESC_F_NEXT, (uint16_t)((i + 1) % QSIZE));
	publish(d, 0);
	pop_bad(d, "descriptor chain loops or is longer than the queue");
}

static void test_bad_outside_ram(void **state)
{
	struct drv *d = *state;

	desc(d, 0, RAM_SIZE, 1, 0, 0);
	publish(d, 0);
	pop_bad(d, "descriptor buffer outside guest RAM");
	desc(d, 0, RAM_SIZE - 8, 9, 0, 0);                 /* straddles the end */
	pop_bad(d, "descriptor buffer outside guest RAM");
	desc(d, 0, UINT64_MAX - 10, 100, 0, 0);            /* addr + len wraps */
	pop_bad(d, "descriptor buffer outside guest RAM");
	desc(d, 0, UINT64_MAX, 1, 0, 0);
	pop_bad(d, "descriptor buffer outside guest RAM");
	desc(d, 0, DATA_GPA, UINT32_MAX, 0, 0);
	pop_bad(d, "descriptor buffer outside guest RAM");
	desc(d, 0, DATA_GPA, 1, VIRTQ_DESC_F_NEXT, 1);     /* second one bad */
	desc(d, 1, 0xC0000000ULL, 16, VIRTQ_DESC_F_WRITE, 0);
	pop_bad(d, "descriptor buffer outside guest RAM");
}

static void test_bad_order(void **state)
{
	struct drv *d = *state;

	desc(d, 0, DATA_GPA, 1, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	desc(d, 1, DATA_GPA, 1, 0, 0);
	publish(d, 0);
	pop_bad(d, "readable descriptor after a writable one");
	/* across the indirect boundary */
	desc(d, 0, DATA_GPA, 1, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	desc(d, 1, ITABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	desc_at(d, ITABLE_GPA, 0, DATA_GPA, 1, 0, 0);
	pop_bad(d, "readable descriptor after a writable one");
}

static void test_bad_indirect_next(void **state)
{
	struct drv *d = *state;

	desc_at(d, ITABLE_GPA, 0, DATA_GPA, 1, 0, 0);
	desc(d, 0, ITABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
	desc(d, 1, DATA_GPA, 1, 0, 0);
	publish(d, 0);
	pop_bad(d, "indirect descriptor with NEXT set");
}

static void test_bad_indirect_nested(void **state)
{
	struct drv *d = *state;

	desc_at(d, ITABLE_GPA, 0, DATA_GPA, 1, VIRTQ_DESC_F_NEXT, 1);
	desc_at(d, ITABLE_GPA, 1, ITABLE_GPA + 0x1000, 16, VIRTQ_DESC_F_INDIRECT, 0);
	desc_at(d, ITABLE_GPA + 0x1000, 0, DATA_GPA, 1, 0, 0);
	desc(d, 0, ITABLE_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	publish(d, 0);
	pop_bad(d, "nested indirect descriptor");
	/* an indirect pointing at itself */
	desc_at(d, ITABLE_GPA, 0, ITABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	desc(d, 0, ITABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	pop_bad(d, "nested indirect descriptor");
}

static void test_bad_indirect_table(void **state)
{
	struct drv *d = *state;

	for (unsigned int i = 0; i < 4; i++)
		desc_at(d, ITABLE_GPA, i, DATA_GPA, 1, 0, 0);
	publish(d, 0);
	desc(d, 0, ITABLE_GPA, 24, VIRTQ_DESC_F_INDIRECT, 0);        /* not * 16 */
	pop_bad(d, "indirect table length not a multiple of 16");
	desc(d, 0, ITABLE_GPA, 15, VIRTQ_DESC_F_INDIRECT, 0);
	pop_bad(d, "indirect table length not a multiple of 16");
	desc(d, 0, ITABLE_GPA, 0, VIRTQ_DESC_F_INDIRECT, 0);         /* empty */
	pop_bad(d, "empty indirect table");
	desc(d, 0, ITABLE_GPA, 16 * (VIRTQ_MAX_BUFS + 1), VIRTQ_DESC_F_INDIRECT, 0);
	pop_bad(d, "indirect table too big");
	desc(d, 0, ITABLE_GPA, 0xfffffff0u, VIRTQ_DESC_F_INDIRECT, 0);
	pop_bad(d, "indirect table too big");
	desc(d, 0, RAM_SIZE - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);     /* past RAM */
	pop_bad(d, "indirect table outside guest RAM");
	desc(d, 0, UINT64_MAX - 15, 32, VIRTQ_DESC_F_INDIRECT, 0);   /* wraps */
	pop_bad(d, "indirect table outside guest RAM");
	/* next inside the table out of range, and a loop inside it */
	desc(d, 0, ITABLE_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	desc_at(d, ITABLE_GPA, 0, DATA_GPA, 1, VIRTQ_DESC_F_NEXT, 2);
	pop_bad(d, "indirect next out of range");
	desc_at(d, ITABLE_GPA, 0, DATA_GPA, 1, VIRTQ_DESC_F_NEXT, 1);
	desc_at(d, ITABLE_GPA, 1, DATA_GPA, 1, VIRTQ_DESC_F_NEXT, 0);
	pop_bad(d, "indirect chain loops or is longer than its table");
	/* a buffer inside the table outside RAM */
	desc_at(d, ITABLE_GPA, 1, RAM_SIZE, 1, 0, 0);
	pop_bad(d, "descriptor buffer outside guest RAM");
	/* and the same table fixed is accepted */
	desc_at(d, ITABLE_GPA, 1, DATA_GPA, 1, 0, 0);
	pop_ok(d);
	assert_int_equal(d->chain.nbufs, 2);
}

static void test_bad_too_many_bufs(void **state)
{
	struct drv *d = *state;

	/* one direct buffer plus a full indirect table: VIRTQ_MAX_BUFS + 1 */
	for (unsigned int i = 0; i < VIRTQ_MAX_BUFS; i++)
		desc_at(d, ITABLE_GPA, i, DATA_GPA, 1,
			i + 1 < VIRTQ_MAX_BUFS ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	desc(d, 0, DATA_GPA, 1, VIRTQ_DESC_F_NEXT, 1);
	desc(d, 1, ITABLE_GPA, 16 * VIRTQ_MAX_BUFS, VIRTQ_DESC_F_INDIRECT, 0);
	publish(d, 0);
	pop_bad(d, "chain has too many buffers");
	/* the full table alone is fine */
	publish(d, 1);
	d->vq.last_avail = 1;
	pop_ok(d);
	assert_int_equal(d->chain.nbufs, VIRTQ_MAX_BUFS);
}

static void test_bad_too_many_bytes(void **state)
{
	struct drv *d = *state;
	uint32_t chunk = 3u << 20;  /* buffers may overlap: 3 MiB each at gpa 0 */
	unsigned int n = (unsigned int)(VIRTQ_MAX_CHAIN_BYTES / chunk) + 1;

	for (unsigned int i = 0; i < n; i++)
		desc_at(d, ITABLE_GPA, i, 0, chunk, i + 1 < n ? VIRTQ_DESC_F_NEXT : 0,
			(uint16_t)(i + 1));
	desc(d, 0, ITABLE_GPA, 16 * n, VIRTQ_DESC_F_INDIRECT, 0);
	publish(d, 0);
	pop_bad(d, "readable part of the chain too long");
	for (unsigned int i = 0; i < n; i++)
		desc_at(d, ITABLE_GPA, i, 0, chunk,
			VIRTQ_DESC_F_WRITE | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0),
			(uint16_t)(i + 1));
	pop_bad(d, "writable part of the chain too long");
	/* exactly at the bound is fine */
	for (unsigned int i = 0; i < 64; i++)
		desc_at(d, ITABLE_GPA, i, 0, 4u << 20, i + 1 < 64 ? VIRTQ_DESC_F_NEXT : 0,
			(uint16_t)(i + 1));
	desc(d, 0, ITABLE_GPA, 16 * 64, VIRTQ_DESC_F_INDIRECT, 0);
	pop_ok(d);
	assert_int_equal(d->chain.read_len, VIRTQ_MAX_CHAIN_BYTES);
}

static void test_bad_ran_ahead(void **state)
{
	struct drv *d = *state;
	const char *why = NULL;

	desc(d, 0, DATA_GPA, 1, 0, 0);
	put16(d, AVAIL_GPA + 2, QSIZE + 1);
	pop_bad(d, "avail index ran ahead");
	put16(d, AVAIL_GPA + 2, 0xffff);   /* "behind": as far ahead as it gets */
	pop_bad(d, "avail index ran ahead");
	/* exactly size outstanding is fine */
	put16(d, AVAIL_GPA + 2, QSIZE);
	for (unsigned int i = 0; i < QSIZE; i++)
		pop_ok(d);
	assert_int_equal(virtq_pop(&d->vq, &d->chain, &why), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, drv_setup, drv_teardown)
		T(test_check_good),
		T(test_check_size),
		T(test_check_align),
		T(test_check_outside),
		T(test_pop_empty),
		T(test_pop_single),
		T(test_pop_read_write),
		T(test_pop_indirect),
		T(test_pop_zero_len),
		T(test_pop_full_size_chain),
		T(test_push_used),
		T(test_fill_ring),
		T(test_wraparound),
		T(test_notify_flags),
		T(test_notify_event_idx),
		T(test_enable_notify_flags),
		T(test_enable_notify_event_idx),
		T(test_reset),
		T(test_bad_head),
		T(test_bad_next),
		T(test_bad_loop),
		T(test_bad_too_long),
		T(test_bad_outside_ram),
		T(test_bad_order),
		T(test_bad_indirect_next),
		T(test_bad_indirect_nested),
		T(test_bad_indirect_table),
		T(test_bad_too_many_bufs),
		T(test_bad_too_many_bytes),
		T(test_bad_ran_ahead),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
