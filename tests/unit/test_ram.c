/* Unit tests for snapshot/ram.c, guest RAM as the snapshot section "ram":
 * round trips of RAM images (data and zero pages, runs at region
 * boundaries, single pages, a run longer than a record's 64 MiB cap)
 * through a memory stream, a real file with the page-aligned layout
 * (checked by an independent parser that pread()s every page at its file
 * offset) and a sparse 5 GiB guest with RAM above 4 GiB; stats; damaged
 * input of every kind refused with a message and without a write outside
 * the runs already validated; fault injection on every write and read. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "snapshot/format.h"
#include "snapshot/ram.h"
#include "snapshot/stream.h"
#include "vmm/layout.h"
#include "vmm/memory.h"

#define PG 4096ull
#define MiB (1ull << 20)
#define GiB (1ull << 30)
#define MSG_LEN 512
#define SENTINEL 0xa5

static const uint64_t created = 1700000000123456789ull;

struct fixture {
	char dir[64];
	char path[128];
};

/* ---- helpers ------------------------------------------------------- */

static void le_put(uint8_t *p, uint64_t v, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t le_get(const uint8_t *p, unsigned int n)
{
	uint64_t v = 0;

	for (unsigned int i = n; i-- > 0;)
		v = v << 8 | p[i];
	return v;
}

static void pattern_fill(uint8_t *p, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull | 1;

	for (size_t i = 0; i + 8 <= len; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(p + i, &x, 8);
	}
}

/* Page index (in the memfd) of a guest-physical address. */
static uint64_t page_index(const struct guest_mem *mem, uint64_t gpa)
{
	uint8_t *p = guest_mem_ptr(mem, gpa, PG);

	assert_non_null(p);
	return (uint64_t)(p - mem->host) / PG;
}

/* A RAM image under construction: which pages hold data. */
struct image {
	struct guest_mem mem;
	uint8_t *want;              /* [size / 4096]: 1 = non-zero page */
	uint64_t data_pages;
};

static void image_create(struct image *img, uint64_t size)
{
	assert_int_equal(guest_mem_create(&img->mem, size), 0);
	img->want = calloc(size / PG, 1);
	assert_non_null(img->want);
	img->data_pages = 0;
}

static void image_destroy(struct image *img)
{
	guest_mem_destroy(&img->mem);
	free(img->want);
}

/* npages pages of pattern at gpa. */
static void image_fill(struct image *img, uint64_t gpa, uint64_t npages)
{
	uint8_t *p = guest_mem_ptr(&img->mem, gpa, npages * PG);

	assert_non_null(p);
	pattern_fill(p, npages * PG, gpa / PG + 1);
	for (uint64_t i = 0; i < npages; i++) {
		uint64_t idx = page_index(&img->mem, gpa + i * PG);

		img->data_pages += !img->want[idx];
		img->want[idx] = 1;
	}
}

/* One byte of a page non-zero, the rest zero. */
static void image_byte(struct image *img, uint64_t gpa, unsigned int off)
{
	uint8_t *p = guest_mem_ptr(&img->mem, gpa, PG);

	memset(p, 0, PG);
	p[off] = 0x80;
	img->data_pages += !img->want[page_index(&img->mem, gpa)];
	img->want[page_index(&img->mem, gpa)] = 1;
}

/* 256 MiB: first page, single pages, short runs, pages with one byte set
 * at either end, a 70 MiB run (over the 64 MiB record cap), the last page. */
static void image_256(struct image *img)
{
	image_create(img, 256 * MiB);
	image_fill(img, 0, 1);
	image_fill(img, 2 * PG, 1);
	image_fill(img, 4 * PG, 1);
	image_fill(img, 6 * PG, 1);
	image_fill(img, 16 * PG, 16);
	image_byte(img, 40 * PG, 4095);
	image_byte(img, 42 * PG, 0);
	image_byte(img, 43 * PG, 2048);
	image_fill(img, 1024 * PG, 70 * MiB / PG);
	image_fill(img, 100 * MiB, 3);
	image_fill(img, 256 * MiB - PG, 1);
}

/* Compare a's data extents with b (holes read as zero). */
static void compare_extents(const struct guest_mem *a, const struct guest_mem *b)
{
	off_t off = 0, end = (off_t)a->size;

	while (off < end) {
		off_t d = lseek(a->memfd, off, SEEK_DATA), h;

		if (d < 0) {
			assert_int_equal(errno, ENXIO);
			break;
		}
		h = lseek(a->memfd, d, SEEK_HOLE);
		assert_true(h > d);
		assert_memory_equal(a->host + d, b->host + d, (size_t)(h - d));
		off = h;
	}
}

/* Byte for byte, touching only pages either side has allocated. */
static void assert_ram_equal(const struct guest_mem *a, const struct guest_mem *b)
{
	assert_int_equal(a->size, b->size);
	compare_extents(a, b);
	compare_extents(b, a);
}

static uint64_t memfd_bytes(const struct guest_mem *mem)
{
	struct stat st;

	assert_int_equal(fstat(mem->memfd, &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

/* ---- an independent parser of the written file --------------------- */

struct src {
	int fd;                     /* pread from it, or ... */
	const uint8_t *buf;         /* ... from this */
	size_t len;
};

static void src_read(const struct src *s, uint64_t off, void *out, size_t n)
{
	if (s->buf) {
		assert_true(off + n <= s->len);
		memcpy(out, s->buf + off, n);
	} else {
		assert_int_equal(pread(s->fd, out, n, (off_t)off), (ssize_t)n);
	}
}

struct parsed {
	unsigned int records;       /* of section "ram" */
	unsigned int data_records;  /* PART/END records with page data */
	uint64_t runs, data_pages;
};

/* One RAM PART/END record at off: run list, padding, each page read at
 * its file offset and compared with the original. */
static void parse_ram_record(const struct src *s, uint64_t off, uint8_t flags, uint64_t plen,
			     const struct image *img, bool aligned, uint8_t *seen,
			     struct parsed *p)
{
	uint8_t head[8], run[16];
	uint64_t n, pad, data = 0, prev_end = UINT64_MAX, pos;
	uint8_t *page = malloc(PG);

	assert_non_null(page);
	src_read(s, off + 32, head, 8);
	n = le_get(head, 4);
	assert_int_equal(le_get(head + 4, 4), 0);
	pad = flags & 1 ? -(off + 32 + 8 + 16 * n) & (PG - 1) : 0;
	pos = off + 32 + 8 + 16 * n + pad;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t gpa, npages;

		src_read(s, off + 32 + 8 + 16 * i, run, 16);
		gpa = le_get(run, 8);
		npages = le_get(run + 8, 8);
		assert_true(npages > 0 && npages >> 56 == 0);   /* data runs only */
		assert_non_null(guest_mem_ptr(&img->mem, gpa, npages * PG));
		assert_true(gpa != prev_end);                   /* runs are maximal */
		prev_end = gpa + npages * PG;
		if (aligned)
			assert_int_equal(pos % PG, 0);
		for (uint64_t k = 0; k < npages; k++, pos += PG) {
			uint64_t idx = page_index(&img->mem, gpa + k * PG);

			src_read(s, pos, page, PG);
			assert_memory_equal(page, img->mem.host + idx * PG, PG);
			assert_int_equal(img->want[idx], 1);
			seen[idx]++;
		}
		data += npages * PG;
	}
	assert_int_equal(plen, 8 + 16 * n + pad + data);
	assert_true(data <= RAM_RECORD_DATA_MAX);
	assert_int_equal(!!(flags & 1), aligned && data);
	p->runs += n;
	p->data_pages += data / PG;
	p->data_records += data > 0;
	free(page);
}

/* Walk every record; check the RAM section against img. */
static void parse_check(const struct src *s, const struct image *img, bool aligned,
			struct parsed *p)
{
	uint64_t off = SNAP_FILE_HEADER_SIZE, npages = img->mem.size / PG;
	uint8_t *seen = calloc(npages, 1);
	uint32_t ram_id = 0;

	assert_non_null(seen);
	memset(p, 0, sizeof(*p));
	for (;;) {
		uint8_t h[32], ident[16];
		uint64_t plen;
		uint32_t id;

		src_read(s, off, h, 32);
		plen = le_get(h + 8, 8);
		id = (uint32_t)le_get(h + 4, 4);
		if (h[0] == SNAP_REC_EOF)
			break;
		if (h[0] == SNAP_REC_START) {
			src_read(s, off + 32, ident, 5);
			if (le_get(ident, 2) == 3 && !memcmp(ident + 2, "ram", 3)) {
				ram_id = id;
				p->records++;
			}
		} else if ((h[0] == SNAP_REC_PART || h[0] == SNAP_REC_END) && id == ram_id) {
			parse_ram_record(s, off, h[1], plen, img, aligned, seen, p);
			p->records++;
		}
		off += 32 + plen + 4;
	}
	assert_int_not_equal(ram_id, 0);
	for (uint64_t i = 0; i < npages; i++)
		if (seen[i] != img->want[i])
			fail_msg("page %llu: sent %u times, want %u", (unsigned long long)i, seen[i],
				 img->want[i]);
	free(seen);
}

/* ---- writing and loading whole snapshots ---------------------------- */

/* A snapshot holding only the RAM section. */
static int write_snapshot(struct snap_stream *s, uint32_t flags, struct guest_mem *mem,
			  struct ram_stats *st)
{
	struct snap_writer w;
	int err;

	snap_writer_begin(s, flags, created, "vmm test", &w);
	err = ram_save(&w, mem, st);
	if (!err)
		err = snap_writer_eof(&w);
	snap_writer_release(&w);
	return err ? err : snap_writer_error(&w);
}

/* Read a snapshot, handing RAM records to ram_load_record. */
static int load_stream(struct snap_stream *s, struct guest_mem *mem, struct ram_stats *st,
		       char *err)
{
	char rmsg[MSG_LEN];
	struct snap_reader r;
	struct snap_record rec;
	int e;

	memset(st, 0, sizeof(*st));
	err[0] = '\0';
	e = snap_reader_begin(s, &r, rmsg, sizeof(rmsg));
	while (!e) {
		e = snap_reader_next(&r, &rec);
		if (e || rec.type == SNAP_REC_EOF)
			break;
		e = ram_load_record(&r, &rec, mem, st, err, MSG_LEN);
	}
	if (e && !err[0])
		snprintf(err, MSG_LEN, "%s", rmsg);
	snap_reader_release(&r);
	return e;
}

static int load_bytes(const uint8_t *data, size_t len, struct guest_mem *mem,
		      struct ram_stats *st, char *err)
{
	struct snap_stream *s;
	int e;

	assert_int_equal(snap_stream_open_mem_read(data, len, &s), 0);
	e = load_stream(s, mem, st, err);
	snap_stream_close(s);
	return e;
}

/* The bytes a memory stream holds (malloc'ed). */
static uint8_t *mem_stream_take(struct snap_stream *s, size_t *len)
{
	const uint8_t *d = snap_stream_mem_data(s, len);
	uint8_t *copy = malloc(*len ? *len : 1);

	assert_non_null(copy);
	memcpy(copy, d, *len);
	assert_int_equal(snap_stream_commit(s), 0);
	return copy;
}

static void check_save_stats(const struct ram_stats *st, const struct image *img,
			     const struct parsed *p)
{
	assert_int_equal(st->pages_total, img->mem.size / PG);
	assert_int_equal(st->pages_data, img->data_pages);
	assert_int_equal(st->pages_zero, img->mem.size / PG - img->data_pages);
	assert_int_equal(st->bytes_data, img->data_pages * PG);
	assert_int_equal(st->runs, p->runs);
	assert_int_equal(st->records, p->records);
	assert_int_equal(p->data_pages, img->data_pages);
}

static void check_load_stats(const struct ram_stats *ld, const struct ram_stats *sv)
{
	assert_int_equal(ld->pages_total, sv->pages_total);
	assert_int_equal(ld->pages_data, sv->pages_data);
	assert_int_equal(ld->pages_zero, 0);      /* no zero runs are written */
	assert_int_equal(ld->bytes_data, sv->bytes_data);
	assert_int_equal(ld->runs, sv->runs);
	assert_int_equal(ld->records, sv->records);
}

/* Save img through a memory stream or an aligned file, parse, load into a
 * fresh guest of the same size, compare. Returns the parse. */
static void roundtrip(struct fixture *f, struct image *img, bool file, struct parsed *p)
{
	struct ram_stats sv, ld;
	struct guest_mem out;
	struct snap_stream *s;
	char err[MSG_LEN];
	uint8_t *bytes = NULL;
	size_t len = 0;
	int fd;

	if (file) {
		unlink(f->path);
		assert_int_equal(snap_stream_create_file(f->path, false, &s), 0);
		assert_int_equal(write_snapshot(s, SNAP_FLAG_PAGE_ALIGNED, &img->mem, &sv), 0);
		assert_int_equal(snap_stream_commit(s), 0);
		fd = open(f->path, O_RDONLY);
		assert_true(fd >= 0);
		parse_check(&(struct src){ .fd = fd }, img, true, p);
		close(fd);
	} else {
		assert_int_equal(snap_stream_open_mem_write(&s), 0);
		assert_int_equal(write_snapshot(s, 0, &img->mem, &sv), 0);
		bytes = mem_stream_take(s, &len);
		parse_check(&(struct src){ .fd = -1, .buf = bytes, .len = len }, img, false, p);
	}
	check_save_stats(&sv, img, p);

	assert_int_equal(guest_mem_create(&out, img->mem.size), 0);
	if (file) {
		assert_int_equal(snap_stream_open_file(f->path, &s), 0);
		assert_int_equal(load_stream(s, &out, &ld, err), 0);
		snap_stream_close(s);
	} else {
		assert_int_equal(load_bytes(bytes, len, &out, &ld, err), 0);
	}
	check_load_stats(&ld, &sv);
	assert_ram_equal(&img->mem, &out);
	/* what the loader wrote is dirty, nothing else */
	for (unsigned int i = 0; i < out.nregions; i++)
		for (uint64_t gpa = out.regions[i].gpa;
		     gpa < out.regions[i].gpa + out.regions[i].size; gpa += PG)
			if (guest_mem_page_dirty(&out, gpa) != img->want[page_index(&out, gpa)])
				fail_msg("page at gpa 0x%llx: dirty bit wrong",
					 (unsigned long long)gpa);
	guest_mem_destroy(&out);
	free(bytes);
}

/* ---- round trips ------------------------------------------------------ */

static void test_page_is_zero(void **state)
{
	static const unsigned int offs[] = { 0, 1, 7, 8, 63, 64, 127, 2047, 2048, 4032, 4095 };
	uint8_t *buf = aligned_alloc(PG, 2 * PG);

	assert_non_null(buf);
	memset(buf, 0, 2 * PG);
	assert_true(ram_page_is_zero(buf));
	assert_true(ram_page_is_zero(buf + 1));       /* any alignment */
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		buf[offs[i]] = 1;
		assert_false(ram_page_is_zero(buf));
		buf[offs[i]] = 0;
		buf[offs[i] + 1] = 0x80;
		assert_false(ram_page_is_zero(buf + 1));
		buf[offs[i] + 1] = 0;
	}
	buf[PG] = 1;                                  /* the next page is not looked at */
	assert_true(ram_page_is_zero(buf));
	free(buf);
}

static void test_roundtrip_mem(void **state)
{
	struct image img;
	struct parsed p;

	image_256(&img);
	roundtrip(*state, &img, false, &p);
	/* START, the 70 MiB run split across records, END */
	assert_true(p.data_records >= 2);
	assert_true(p.records >= 3);
	image_destroy(&img);
}

static void test_roundtrip_file_aligned(void **state)
{
	struct image img;
	struct parsed p;

	image_256(&img);
	roundtrip(*state, &img, true, &p);
	assert_true(p.data_records >= 2);
	image_destroy(&img);
}

/* 5 GiB: [0, 3 GiB) and [4 GiB, 6 GiB), sparse. Runs end at the top of the
 * low region and start at 4 GiB; saving neither reads nor allocates the
 * untouched memfd. */
static void test_roundtrip_high(void **state)
{
	struct image img;
	struct parsed p;

	image_create(&img, 5 * GiB);
	assert_int_equal(img.mem.nregions, 2);
	image_fill(&img, 0, 2);
	image_fill(&img, LAYOUT_MMIO_START - 3 * PG, 3);
	image_fill(&img, LAYOUT_4G, 2);
	image_fill(&img, LAYOUT_4G + GiB + 5 * PG, 1);
	image_fill(&img, guest_mem_top(&img.mem) - PG, 1);
	for (int file = 0; file < 2; file++) {
		roundtrip(*state, &img, file, &p);
		assert_int_equal(p.runs, 5);
		assert_true(memfd_bytes(&img.mem) < 64 * MiB);
	}
	image_destroy(&img);
}

/* All of RAM zero: START and an empty END. */
static void test_roundtrip_empty(void **state)
{
	struct image img;
	struct parsed p;

	image_create(&img, 8 * MiB);
	roundtrip(*state, &img, false, &p);
	assert_int_equal(p.records, 2);
	assert_int_equal(p.runs, 0);
	roundtrip(*state, &img, true, &p);
	image_destroy(&img);
}

/* Every write of a save fails in turn, then every read of a load. */
static void test_fault_walk(void **state)
{
	struct image img;
	struct ram_stats st;
	struct guest_mem out;
	struct snap_stream *s;
	char err[MSG_LEN];
	uint8_t *bytes;
	size_t len;
	unsigned long n;
	int e;

	image_create(&img, 8 * MiB);
	image_fill(&img, PG, 3);
	image_fill(&img, 1 * MiB, 100);
	image_fill(&img, 8 * MiB - PG, 1);
	for (n = 1;; n++) {
		assert_int_equal(snap_stream_open_mem_write(&s), 0);
		snap_stream_inject_fault(s, SNAP_FAULT_WRITE, n, -ENOSPC);
		e = write_snapshot(s, 0, &img.mem, &st);
		if (!e)
			break;
		assert_int_equal(e, -ENOSPC);
		snap_stream_close(s);
	}
	assert_true(n > 3);
	bytes = mem_stream_take(s, &len);
	assert_int_equal(guest_mem_create(&out, img.mem.size), 0);
	for (n = 1;; n++) {
		assert_int_equal(snap_stream_open_mem_read(bytes, len, &s), 0);
		snap_stream_inject_fault(s, SNAP_FAULT_READ, n, -EIO);
		e = load_stream(s, &out, &st, err);
		snap_stream_close(s);
		if (!e)
			break;
		assert_int_equal(e, -EIO);
		assert_true(err[0]);
	}
	assert_ram_equal(&img.mem, &out);
	guest_mem_destroy(&out);
	free(bytes);
	image_destroy(&img);
}

/* ---- damaged input ---------------------------------------------------- */

struct raw_run {
	uint64_t gpa;
	uint64_t v;                 /* npages | kind << 56 */
};

#define DATA(gpa, n) { (gpa), (n) }
#define ZERO(gpa, n) { (gpa), (n) | (uint64_t)RAM_RUN_ZERO << 56 }

/* A RAM layout's START data for mem. */
static size_t layout_bytes(const struct guest_mem *mem, uint8_t *b)
{
	le_put(b, mem->size, 8);
	le_put(b + 8, mem->nregions, 4);
	le_put(b + 12, 0, 4);
	for (unsigned int i = 0; i < mem->nregions; i++) {
		le_put(b + 16 + 16 * i, mem->regions[i].gpa, 8);
		le_put(b + 24 + 16 * i, mem->regions[i].size, 8);
	}
	return 16 + 16 * mem->nregions;
}

/* A snapshot: START (start/start_len as its data, at version), one PART
 * with the run list as given (reserved field `reserved`) and data_pages
 * pages of pattern — payload_len is what is actually written, whatever the
 * runs say — an empty END, EOF. Bytes malloc'ed. */
struct raw {
	const uint8_t *start;
	size_t start_len;
	uint32_t version;
	uint32_t flags;
	const struct raw_run *runs;
	uint32_t nruns;             /* run_count written */
	uint32_t runs_given;        /* entries of runs[] written (normally nruns) */
	uint32_t reserved;
	uint64_t data_pages;
};

static uint8_t *raw_snapshot(const struct raw *d, size_t *len)
{
	struct snap_stream *s;
	struct snap_writer w;
	uint64_t prefix = 8 + 16ull * d->runs_given, data = d->data_pages * PG, pad;
	bool aligned = d->flags & SNAP_FLAG_PAGE_ALIGNED;
	uint8_t *pages = aligned_alloc(PG, data ? data : PG);
	uint32_t id;

	assert_non_null(pages);
	pattern_fill(pages, data, 77);
	assert_int_equal(snap_stream_open_mem_write(&s), 0);
	snap_writer_begin(s, d->flags, created, "vmm test", &w);
	snap_writer_section_begin(&w, SNAP_REC_START, "ram", 0, d->version, &id);
	snap_writer_put_bytes(&w, d->start, d->start_len);
	snap_writer_record_end(&w);
	pad = aligned ? snap_writer_pad_len(&w, prefix) : 0;
	snap_writer_part_begin(&w, id, SNAP_REC_PART, prefix + pad + data, aligned);
	snap_writer_put_le32(&w, d->nruns);
	snap_writer_put_le32(&w, d->reserved);
	for (uint32_t i = 0; i < d->runs_given; i++) {
		snap_writer_put_le64(&w, d->runs[i].gpa);
		snap_writer_put_le64(&w, d->runs[i].v);
	}
	snap_writer_put_pad(&w);
	snap_writer_put_pages(&w, pages, data);
	snap_writer_record_end(&w);
	snap_writer_part_begin(&w, id, SNAP_REC_END, 8, false);
	snap_writer_put_le64(&w, 0);
	snap_writer_record_end(&w);
	snap_writer_eof(&w);
	assert_int_equal(snap_writer_error(&w), 0);
	snap_writer_release(&w);
	free(pages);
	return mem_stream_take(s, len);
}

static void sentinel_fill(struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	memset(guest_mem_ptr(mem, gpa, len), SENTINEL, len);
}

/* [gpa, gpa+len) still holds the sentinel, except pages in [skip, skip_end). */
static void sentinel_check(const struct guest_mem *mem, uint64_t gpa, uint64_t len,
			   uint64_t skip, uint64_t skip_end)
{
	const uint8_t *p = guest_mem_ptr(mem, gpa, len);

	assert_non_null(p);
	for (uint64_t i = 0; i < len; i++) {
		if (gpa + i >= skip && gpa + i < skip_end)
			continue;
		if (p[i] != SENTINEL)
			fail_msg("byte at gpa 0x%llx written", (unsigned long long)(gpa + i));
	}
}

/* Load a snapshot into mem; expect code and a message containing want. */
static void expect_refused_in(struct guest_mem *mem, const uint8_t *bytes, size_t len, int code,
			      const char *want)
{
	struct ram_stats st;
	char err[MSG_LEN];
	int e = load_bytes(bytes, len, mem, &st, err);

	if (e != code || !strstr(err, want))
		fail_msg("got %d '%s', want %d '%s'", e, err, code, want);
}

/* Load d into a 16 MiB guest full of sentinel: code, a message containing
 * want, and not a byte of RAM changed. */
static void expect_refused(const struct raw *d, int code, const char *want)
{
	struct guest_mem mem;
	uint8_t *bytes;
	size_t len;

	assert_int_equal(guest_mem_create(&mem, 16 * MiB), 0);
	sentinel_fill(&mem, 0, mem.size);
	bytes = raw_snapshot(d, &len);
	expect_refused_in(&mem, bytes, len, code, want);
	sentinel_check(&mem, 0, mem.size, 0, 0);     /* nothing written */
	free(bytes);
	guest_mem_destroy(&mem);
}

/* Layouts: a snapshot of a different size (the message names both),
 * different regions, malformed START data, wrong version. */
static void test_bad_layout(void **state)
{
	struct image img;
	struct guest_mem small, lay;
	struct snap_stream *s;
	struct ram_stats st;
	uint8_t start[64], *bytes;
	char err[MSG_LEN];
	size_t len, n;

	image_create(&img, 256 * MiB);
	image_fill(&img, 0, 1);
	assert_int_equal(snap_stream_open_mem_write(&s), 0);
	assert_int_equal(write_snapshot(s, 0, &img.mem, &st), 0);
	bytes = mem_stream_take(s, &len);
	assert_int_equal(guest_mem_create(&small, 128 * MiB), 0);
	assert_int_equal(load_bytes(bytes, len, &small, &st, err), -EPROTO);
	assert_non_null(strstr(err, "snapshot RAM is 256 MiB, this VM has 128 MiB"));
	assert_non_null(strstr(err, "section 'ram'"));
	guest_mem_destroy(&small);
	free(bytes);
	image_destroy(&img);

	guest_mem_layout(&lay, 16 * MiB);
	n = layout_bytes(&lay, start);
	le_put(start + 16, PG, 8);                     /* region at 4 KiB */
	expect_refused(&(struct raw){ start, n, 1, 0, NULL, 0, 0, 0, 0 }, -EPROTO,
		       "snapshot RAM region 0 is 0x1000+0x1000000");
	n = layout_bytes(&lay, start);
	le_put(start + 12, 1, 4);
	expect_refused(&(struct raw){ start, n, 1, 0, NULL, 0, 0, 0, 0 }, -EINVAL,
		       "reserved field 0x1 not zero");
	le_put(start + 12, 0, 4);
	le_put(start + 8, 0, 4);
	expect_refused(&(struct raw){ start, n, 1, 0, NULL, 0, 0, 0, 0 }, -EINVAL, "has 0 regions");
	le_put(start + 8, 2, 4);
	expect_refused(&(struct raw){ start, n, 1, 0, NULL, 0, 0, 0, 0 }, -EINVAL,
		       "layout of 2 regions is 48 bytes, but START holds 32");
	expect_refused(&(struct raw){ start, 8, 1, 0, NULL, 0, 0, 0, 0 }, -EINVAL, "too short");
	n = layout_bytes(&lay, start);
	expect_refused(&(struct raw){ start, n, 2, 0, NULL, 0, 0, 0, 0 }, -EPROTO,
		       "version 2, this vmm supports 1");
	expect_refused(&(struct raw){ start, n + 1, 1, 0, NULL, 0, 0, 0, 0 }, -EINVAL,
		       "is 32 bytes, but START holds 33");
	/* the good layout and empty records load */
	expect_refused(&(struct raw){ start, n, 1, 0, NULL, 0, 0, 0, 0 }, 0, "");
}

/* Bad runs in a 16 MiB guest, through both layouts: nothing is written. */
static void test_bad_runs(void **state)
{
	static const struct {
		struct raw_run run;
		uint64_t data_pages;
		int code;
		const char *want;
	} cases[] = {
		{ DATA(16 * MiB, 1), 1, -EINVAL, "run 1: gpa 0x1000000 + 1 pages is outside guest RAM" },
		{ DATA(16 * MiB - PG, 2), 2, -EINVAL, "runs past the end of RAM region 0 at 0x1000000" },
		{ DATA(1ull << 40, 1), 1, -EINVAL, "outside guest RAM" },
		{ DATA(PG, RAM_RUN_NPAGES_MASK), 1, -EINVAL, "runs past the end" },
		{ DATA(0x1800, 1), 1, -EINVAL, "run 1: gpa 0x1800 not 4 KiB aligned" },
		{ DATA(0x3000, 0), 0, -EINVAL, "run 1 at gpa 0x3000: no pages" },
		{ { 0x3000, 1 | 2ull << 56 }, 1, -EINVAL, "run 1 at gpa 0x3000: unknown kind 2" },
		{ { 0x3000, 1 | 0xffull << 56 }, 1, -EINVAL, "unknown kind 255" },
		{ DATA(0x3000, 2), 1, -EINVAL, "payload" },                    /* data short */
		{ DATA(0x3000, 1), 2, -EINVAL, "payload_len" },                /* data left over */
		{ ZERO(0x3000, 1), 1, -EINVAL, "payload_len" },                /* zero run has no data */
		{ DATA(0x3000, 1), 0, -EINVAL, "payload" },
	};
	struct guest_mem lay;
	uint8_t start[64];
	size_t n;

	guest_mem_layout(&lay, 16 * MiB);
	n = layout_bytes(&lay, start);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* a good run first, so "nothing written" means validation came first */
		struct raw_run runs[2] = { DATA(0, 1), cases[i].run };

		for (uint32_t flags = 0; flags <= SNAP_FLAG_PAGE_ALIGNED; flags++)
			expect_refused(&(struct raw){ start, n, 1, flags, runs, 2, 2, 0,
						      1 + cases[i].data_pages },
				       cases[i].code, cases[i].want);
	}
}

/* Run lists that do not fit: run_count over the payload or the bound,
 * reserved bits, a payload shorter than the list head. */
static void test_bad_run_list(void **state)
{
	struct raw_run runs[1] = { DATA(0, 1) };
	struct guest_mem lay;
	uint8_t start[64];
	size_t n;

	guest_mem_layout(&lay, 16 * MiB);
	n = layout_bytes(&lay, start);
	expect_refused(&(struct raw){ start, n, 1, 0, runs, 2, 1, 0, 0 }, -EINVAL,
		       "run_count 2 needs 40 bytes, payload_len is 24");
	expect_refused(&(struct raw){ start, n, 1, 0, runs, 1000000, 1, 0, 1 }, -EINVAL,
		       "run_count 1000000 over the bound (65536)");
	expect_refused(&(struct raw){ start, n, 1, 0, runs, 1, 1, 7, 1 }, -EINVAL,
		       "run list reserved field 0x7 not zero");
	/* an empty run list is fine */
	expect_refused(&(struct raw){ start, n, 1, 0, runs, 0, 0, 0, 0 }, 0, "");
}

/* A 4 GiB guest: runs that cross from below the MMIO hole into it, lie in
 * it, cross into 4 GiB or past the top of RAM are refused; the pages around
 * stay unwritten. */
static void test_bad_runs_hole(void **state)
{
	static const struct {
		struct raw_run run;
		const char *want;
	} bad[] = {
		{ DATA(LAYOUT_MMIO_START - PG, 2), "runs past the end of RAM region 0 at 0xc0000000" },
		{ DATA(LAYOUT_MMIO_START + 256 * MiB, 1), "gpa 0xd0000000 + 1 pages is outside guest RAM" },
		{ DATA(LAYOUT_4G - PG, 1), "outside guest RAM" },
		{ DATA(LAYOUT_MMIO_START - PG, (LAYOUT_4G - LAYOUT_MMIO_START) / PG + 2),
		  "runs past the end of RAM region 0" },
		{ DATA(LAYOUT_4G + GiB - PG, 2), "runs past the end of RAM region 1 at 0x140000000" },
	};
	struct guest_mem mem;
	uint8_t start[64], *bytes;
	size_t n, len;

	assert_int_equal(guest_mem_create(&mem, 4 * GiB), 0);
	assert_int_equal(mem.nregions, 2);
	sentinel_fill(&mem, LAYOUT_MMIO_START - 16 * PG, 16 * PG);
	sentinel_fill(&mem, LAYOUT_4G, 16 * PG);
	n = layout_bytes(&mem, start);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct raw_run runs[2] = { DATA(LAYOUT_MMIO_START - 8 * PG, 1), bad[i].run };
		uint64_t data = 1 + (bad[i].run.v < 16 ? bad[i].run.v : 0);

		bytes = raw_snapshot(&(struct raw){ start, n, 1, SNAP_FLAG_PAGE_ALIGNED, runs, 2, 2, 0,
						    data }, &len);
		expect_refused_in(&mem, bytes, len, -EINVAL, bad[i].want);
		free(bytes);
		sentinel_check(&mem, LAYOUT_MMIO_START - 16 * PG, 16 * PG, 0, 0);
		sentinel_check(&mem, LAYOUT_4G, 16 * PG, 0, 0);
	}
	/* the same runs, good: the last page below the hole and the first above */
	{
		struct raw_run runs[2] = { DATA(LAYOUT_MMIO_START - PG, 1), DATA(LAYOUT_4G, 1) };

		bytes = raw_snapshot(&(struct raw){ start, n, 1, SNAP_FLAG_PAGE_ALIGNED, runs, 2, 2, 0,
						    2 }, &len);
		expect_refused_in(&mem, bytes, len, 0, "");
		free(bytes);
		sentinel_check(&mem, LAYOUT_MMIO_START - 16 * PG, 15 * PG, 0, 0);
		sentinel_check(&mem, LAYOUT_4G + PG, 15 * PG, 0, 0);
	}
	assert_true(memfd_bytes(&mem) < 64 * MiB);
	guest_mem_destroy(&mem);
}

/* Zero runs zero their pages (and only those); data runs write theirs. */
static void test_zero_runs(void **state)
{
	struct raw_run runs[3] = { ZERO(PG, 2), DATA(8 * PG, 2), ZERO(1 * MiB, 300) };
	struct guest_mem lay, mem;
	struct ram_stats st;
	uint8_t start[64], *bytes;
	char err[MSG_LEN];
	size_t n, len;

	guest_mem_layout(&lay, 16 * MiB);
	n = layout_bytes(&lay, start);
	for (uint32_t flags = 0; flags <= SNAP_FLAG_PAGE_ALIGNED; flags++) {
		assert_int_equal(guest_mem_create(&mem, 16 * MiB), 0);
		sentinel_fill(&mem, 0, mem.size);
		bytes = raw_snapshot(&(struct raw){ start, n, 1, flags, runs, 3, 3, 0, 2 }, &len);
		assert_int_equal(load_bytes(bytes, len, &mem, &st, err), 0);
		assert_int_equal(st.pages_zero, 302);
		assert_int_equal(st.pages_data, 2);
		assert_int_equal(st.runs, 3);
		assert_int_equal(st.records, 3);
		for (uint64_t i = 0; i < 2 * PG; i++)
			assert_int_equal(mem.host[PG + i], 0);
		for (uint64_t i = 0; i < 300 * PG; i++)
			assert_int_equal(mem.host[MiB + i], 0);
		sentinel_check(&mem, 0, PG, 0, 0);
		sentinel_check(&mem, 3 * PG, MiB - 3 * PG, 8 * PG, 10 * PG);
		sentinel_check(&mem, MiB + 300 * PG, 15 * MiB - 300 * PG, 0, 0);
		assert_true(guest_mem_page_dirty(&mem, PG));
		assert_true(guest_mem_page_dirty(&mem, 9 * PG));
		assert_false(guest_mem_page_dirty(&mem, 10 * PG));
		free(bytes);
		guest_mem_destroy(&mem);
	}
}

/* The pages of test_truncated_and_corrupt's runs ([4, 6) and [100, 103))
 * may have been written; no other byte of RAM. */
static void check_outside_runs(const struct guest_mem *mem)
{
	sentinel_check(mem, 0, 4 * PG, 0, 0);
	sentinel_check(mem, 6 * PG, 94 * PG, 0, 0);
	sentinel_check(mem, 103 * PG, 16 * MiB - 103 * PG, 0, 0);
}

/* Truncated inside the page data of the second run, and a flipped byte
 * of page data: the first is refused as truncated, the second by the
 * payload CRC; either way only the validated runs' pages were written. */
static void test_truncated_and_corrupt(void **state)
{
	struct raw_run runs[2] = { DATA(4 * PG, 2), DATA(100 * PG, 3) };
	struct guest_mem lay, mem;
	uint8_t start[64], *bytes;
	size_t n, len, data_off;

	guest_mem_layout(&lay, 16 * MiB);
	n = layout_bytes(&lay, start);
	for (uint32_t flags = 0; flags <= SNAP_FLAG_PAGE_ALIGNED; flags++) {
		bytes = raw_snapshot(&(struct raw){ start, n, 1, flags, runs, 2, 2, 0, 5 }, &len);
		/* find the page data: the pattern's first 8 bytes */
		{
			uint8_t first[8];

			pattern_fill(first, 8, 77);
			for (data_off = 0; memcmp(bytes + data_off, first, 8); data_off++)
				assert_true(data_off + 8 < len);
		}
		if (flags)
			assert_int_equal(data_off % PG, 0);
		for (int cut = 0; cut < 3; cut++) {
			/* cut inside run 2, inside run 1, at the CRC */
			static const uint64_t at[] = { 3 * PG + 100, PG, 5 * PG + 2 };

			assert_int_equal(guest_mem_create(&mem, 16 * MiB), 0);
			sentinel_fill(&mem, 0, mem.size);
			expect_refused_in(&mem, bytes, data_off + at[cut], -ENODATA, "truncated");
			check_outside_runs(&mem);
			guest_mem_destroy(&mem);
		}
		assert_int_equal(guest_mem_create(&mem, 16 * MiB), 0);
		sentinel_fill(&mem, 0, mem.size);
		bytes[data_off + 3 * PG + 17] ^= 1;
		expect_refused_in(&mem, bytes, len, -EINVAL, "payload checksum mismatch");
		check_outside_runs(&mem);
		guest_mem_destroy(&mem);
		free(bytes);
	}
}

/* The fixture: a temporary directory for the file stream. */
static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_ram.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/snap", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	unlink(f->path);
	if (rmdir(f->dir))
		return -1;
	free(f);
	return 0;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_page_is_zero),
		T(test_roundtrip_mem),
		T(test_roundtrip_file_aligned),
		T(test_roundtrip_high),
		T(test_roundtrip_empty),
		T(test_fault_walk),
		T(test_bad_layout),
		T(test_bad_runs),
		T(test_bad_run_list),
		T(test_bad_runs_hole),
		T(test_zero_runs),
		T(test_truncated_and_corrupt),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
