/* Unit tests for snapshot/format*.c, the record layer of the snapshot
 * format: round trips (header, FULL payloads of many sizes, START/PART/END
 * interleaved, RAM-like page-aligned PARTs through a real file, EOF), the
 * writer refusing to write invalid files, and a table of damaged files made
 * from one valid file: truncated at every byte, every byte flipped, and
 * each rule of the spec broken with the checksums made right again. Fault
 * injection walks every write and read call.
 *
 * `test_format --write-seeds DIR` writes the fuzz seed files instead. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "snapshot/crc32c.h"
#include "snapshot/format.h"
#include "snapshot/stream.h"

#define PG 4096
#define MAX_PAGES 8
#define MAX_RUNS 8
#define MSG_LEN 256

static const uint64_t created = 1700000000123456789ull;

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

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

static uint8_t *pages_alloc(size_t npages, uint64_t seed)
{
	uint8_t *p = NULL;

	assert_int_equal(posix_memalign((void **)&p, PG, npages * PG), 0);
	pattern_fill(p, npages * PG, seed);
	return p;
}

/* A RAM run as the spec lays it out. */
struct run {
	uint64_t gpa;
	uint64_t npages;
	bool zero;
};

/* Put a RAM PART/END payload through the declared-length path: run list,
 * padding, page data (data runs take pages from `pages` in order). */
static int put_ram(struct snap_writer *w, uint32_t id, enum snap_rec_type type,
		   const struct run *runs, unsigned int n, const uint8_t *pages, bool aligned)
{
	uint64_t prefix = 8 + 16ull * n, data = 0, len;

	for (unsigned int i = 0; i < n; i++)
		if (!runs[i].zero)
			data += runs[i].npages * PG;
	len = prefix + (aligned ? snap_writer_pad_len(w, prefix) : 0) + data;
	snap_writer_part_begin(w, id, type, len, aligned);
	snap_writer_put_le32(w, n);
	snap_writer_put_le32(w, 0);
	for (unsigned int i = 0; i < n; i++) {
		snap_writer_put_le64(w, runs[i].gpa);
		snap_writer_put_le64(w, runs[i].npages | (uint64_t)runs[i].zero << 56);
	}
	snap_writer_put_pad(w);
	snap_writer_put_pages(w, pages, (size_t)data);
	return snap_writer_record_end(w);
}

/* A FULL record whose data is `len` bytes of pattern `seed`. */
static int put_full(struct snap_writer *w, const char *name, uint32_t inst, uint32_t ver,
		    size_t len, uint64_t seed, uint32_t *id)
{
	uint8_t *p = malloc(len + 1);
	uint32_t tmp;

	assert_non_null(p);
	pattern_fill(p, len, seed);
	snap_writer_section_begin(w, SNAP_REC_FULL, name, inst, ver, id ? id : &tmp);
	snap_writer_put_bytes(w, p, len);
	free(p);
	return snap_writer_record_end(w);
}

/* The sample file every damage test starts from: configuration, RAM
 * (START, a page-aligned PART, a buffered PART, a page-aligned END)
 * interleaved with two vCPUs, an empty serial section, EOF. Returns the
 * writer's final error. */
static int sample_write(struct snap_stream *s, uint32_t flags)
{
	static const struct run part[] = { { 0, 1, false }, { 0x1000, 2, true }, { 0x3000, 1, false } };
	static const struct run end[] = { { 0x5000, 1, false } };
	bool aligned = flags & SNAP_FLAG_PAGE_ALIGNED;
	uint8_t *pages = pages_alloc(3, 7);
	struct snap_writer w;
	uint32_t ram = 0, config = 0;

	snap_writer_begin(s, flags, created, "vmm 0.1.0", &w);
	snap_writer_section_begin(&w, SNAP_REC_FULL, "configuration", 0, 1, &config);
	snap_writer_put_le64(&w, 6 * PG);
	snap_writer_put_le32(&w, 2);
	snap_writer_put_bytes(&w, "hello", 5);
	snap_writer_record_end(&w);
	snap_writer_section_begin(&w, SNAP_REC_START, "ram", 0, 1, &ram);
	snap_writer_put_le64(&w, 6 * PG);
	snap_writer_record_end(&w);
	put_full(&w, "cpu", 0, 3, 40, 1, NULL);
	put_ram(&w, ram, SNAP_REC_PART, part, 3, pages, aligned);
	put_full(&w, "cpu", 1, 3, 40, 2, NULL);
	snap_writer_record_begin(&w, ram, SNAP_REC_PART);
	snap_writer_put_le32(&w, 0);
	snap_writer_put_le32(&w, 0);
	snap_writer_record_end(&w);
	put_ram(&w, ram, SNAP_REC_END, end, 1, pages + 2 * PG, aligned);
	put_full(&w, "serial", 0, 1, 0, 3, NULL);
	snap_writer_eof(&w);
	snap_writer_release(&w);
	free(pages);
	return snap_writer_error(&w);
}

/* The sample as bytes (malloc'ed). */
static uint8_t *sample_bytes(uint32_t flags, size_t *len)
{
	struct snap_stream *s;
	const uint8_t *d;
	uint8_t *copy;

	assert_int_equal(snap_stream_open_mem_write(&s), 0);
	assert_int_equal(sample_write(s, flags), 0);
	d = snap_stream_mem_data(s, len);
	copy = malloc(*len);
	assert_non_null(copy);
	memcpy(copy, d, *len);
	assert_int_equal(snap_stream_commit(s), 0);
	return copy;
}

/* What a parse found. */
struct parsed {
	unsigned int records, fulls, parts;
	uint32_t data_crc;          /* of all section data, in order */
	uint32_t page_crc;          /* of all page data, in order */
	uint64_t page_offsets[MAX_PAGES];
	unsigned int npages;
	struct snap_file_header hdr;
	struct snap_record eof;
};

/* A RAM PART/END payload the way a restore reads it; a run list that does
 * not fit the test's bounds is skipped (the CRC then refuses it). */
static void parse_ram(struct snap_reader *r, struct parsed *out, uint8_t *buf)
{
	uint32_t n = snap_reader_get_le32(r);
	uint64_t npages = 0;

	snap_reader_get_le32(r);
	if (n > MAX_RUNS) {
		snap_reader_skip_payload(r);
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint64_t v;

		snap_reader_get_le64(r);
		v = snap_reader_get_le64(r);
		if (!(v >> 56))
			npages += v & ((1ull << 56) - 1);
	}
	if (npages > MAX_PAGES - out->npages) {
		snap_reader_skip_payload(r);
		return;
	}
	snap_reader_get_pad(r);
	for (uint64_t i = 0; i < npages && !snap_reader_error(r); i++) {
		out->page_offsets[out->npages++] = snap_stream_offset(r->s);
		snap_reader_get_pages(r, buf, PG);
		out->page_crc = crc32c(out->page_crc, buf, PG);
	}
}

/* Read a whole snapshot from s as a restore would; 0 or the error. */
static int parse_stream(struct snap_stream *s, char *msg, struct parsed *out)
{
	struct snap_reader r;
	struct snap_record rec;
	uint8_t *buf = pages_alloc(1, 0);
	int err;

	memset(out, 0, sizeof(*out));
	err = snap_reader_begin(s, &r, msg, MSG_LEN);
	out->hdr = r.hdr;
	while (!err) {
		err = snap_reader_next(&r, &rec);
		if (err)
			break;
		out->records++;
		if (rec.type == SNAP_REC_EOF) {
			out->eof = rec;
			break;
		}
		if (rec.type == SNAP_REC_START || rec.type == SNAP_REC_FULL) {
			uint8_t *d = malloc(rec.data_len + 1);

			assert_non_null(d);
			snap_reader_get_bytes(&r, d, (size_t)rec.data_len);
			out->data_crc = crc32c(out->data_crc, d, (size_t)rec.data_len);
			free(d);
			out->fulls++;
		} else if (!strcmp(rec.name, "ram")) {
			parse_ram(&r, out, buf);
			out->parts++;
		} else {
			snap_reader_skip_payload(&r);
		}
		err = snap_reader_record_end(&r);
	}
	snap_reader_release(&r);
	free(buf);
	return err;
}

static int parse_bytes(const uint8_t *d, size_t len, char *msg, struct parsed *out)
{
	struct snap_stream *s;
	int err;

	assert_int_equal(snap_stream_open_mem_read(d, len, &s), 0);
	err = parse_stream(s, msg, out);
	snap_stream_close(s);
	return err;
}

/* Offset of record idx (0-based) in a valid file. */
static size_t record_at(const uint8_t *d, size_t len, unsigned int idx)
{
	size_t off = SNAP_FILE_HEADER_SIZE;

	while (idx--) {
		assert_true(off + 32 <= len);
		off += 32 + (size_t)le_get(d + off + 8, 8) + 4;
	}
	return off;
}

static void fix_file_header(uint8_t *d)
{
	le_put(d + 60, crc32c(0, d, 60), 4);
}

static void fix_record_header(uint8_t *d, size_t off)
{
	le_put(d + off + 28, crc32c(0, d + off, 28), 4);
}

static void fix_payload(uint8_t *d, size_t off)
{
	size_t len = (size_t)le_get(d + off + 8, 8);

	le_put(d + off + 32 + len, crc32c(0, d + off + 32, len), 4);
}

/* ---- round trips ----------------------------------------------------- */

static void test_pad_len(void **state)
{
	assert_int_equal(snap_format_pad_len(0, 0), PG - 32);
	assert_int_equal(snap_format_pad_len(64, 8), PG - 104);
	assert_int_equal(snap_format_pad_len(PG - 40, 8), 0);
	assert_int_equal(snap_format_pad_len(PG - 32, 0), 0);
	assert_int_equal(snap_format_pad_len(PG - 31, 0), PG - 1);
	assert_int_equal(snap_format_pad_len(10ull << 30, PG), PG - 32);
	assert_true(snap_format_name_valid("virtio-blk", 10));
	assert_true(snap_format_name_valid("a.b_c-9", 7));
	assert_false(snap_format_name_valid("Cpu", 3));
	assert_false(snap_format_name_valid("a b", 3));
	assert_false(snap_format_name_valid("", 0));
	assert_true(snap_format_name_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 64));
	assert_false(snap_format_name_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 65));
}

static void test_header_roundtrip(void **state)
{
	static const uint8_t magic[] = { 0x89, 'V', 'M', 'M', 'S', 'N', 'A', 'P', 0x0d, 0x0a, 0x1a, 0x0a };
	char msg[MSG_LEN];
	struct parsed p;
	size_t len;
	uint8_t *d = sample_bytes(SNAP_FLAG_PAGE_ALIGNED | SNAP_FLAG_INCREMENTAL, &len);

	assert_memory_equal(d, magic, sizeof(magic));
	assert_int_equal(le_get(d + 12, 4), 1);
	assert_int_equal(le_get(d + 20, 4), 64);
	assert_int_equal(le_get(d + 24, 8), created);
	assert_string_equal((const char *)d + 32, "vmm 0.1.0");
	assert_int_equal(parse_bytes(d, len, msg, &p), 0);
	assert_int_equal(p.hdr.format_version, 1);
	assert_int_equal(p.hdr.flags, SNAP_FLAG_PAGE_ALIGNED | SNAP_FLAG_INCREMENTAL);
	assert_int_equal(p.hdr.created_ns, created);
	assert_string_equal(p.hdr.writer, "vmm 0.1.0");
	free(d);
}

static void test_writer_string_full_width(void **state)
{
	struct snap_stream *s, *rs;
	struct snap_writer w;
	struct snap_reader r;
	const uint8_t *d;
	char msg[MSG_LEN];
	size_t len;

	assert_int_equal(snap_stream_open_mem_write(&s), 0);
	assert_int_equal(snap_writer_begin(s, 0, 0, "0123456789abcdef", &w), 0);
	d = snap_stream_mem_data(s, &len);
	assert_int_equal(snap_stream_open_mem_read(d, len, &rs), 0);
	assert_int_equal(snap_reader_begin(rs, &r, msg, sizeof(msg)), 0);
	assert_string_equal(r.hdr.writer, "0123456789abcdef");
	snap_reader_release(&r);
	snap_stream_close(rs);
	snap_stream_close(s);

	assert_int_equal(snap_stream_open_mem_write(&s), 0);
	assert_int_equal(snap_writer_begin(s, 0, 0, "0123456789abcdefg", &w), -EINVAL);
	snap_stream_close(s);
	assert_int_equal(snap_stream_open_mem_write(&s), 0);
	assert_int_equal(snap_writer_begin(s, 0, 0, "tab\there", &w), -EINVAL);
	snap_stream_close(s);
	assert_int_equal(snap_stream_open_mem_write(&s), 0);
	assert_int_equal(snap_writer_begin(s, 4, 0, "vmm", &w), -EINVAL);
	assert_int_equal(snap_stream_commit(s), -EINVAL);
}

/* FULL records of many sizes, read back with the reader's getters and
 * through snap_reader_stream(). */
static void test_full_roundtrip(void **state)
{
	static const size_t sizes[] = { 0, 1, 7, 4096, 65535, 65536, 65537, 300000 };
	enum { N = sizeof(sizes) / sizeof(sizes[0]) };
	struct snap_stream *s, *rs;
	struct snap_writer w;
	struct snap_reader r;
	struct snap_record rec;
	const uint8_t *d;
	char msg[MSG_LEN], name[16];
	uint32_t id;
	size_t len;

	assert_int_equal(snap_stream_open_mem_write(&s), 0);
	assert_int_equal(snap_writer_begin(s, 0, created, "vmm 0.1.0", &w), 0);
	for (unsigned int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "dev%u", i);
		assert_int_equal(put_full(&w, name, i * 3, 100 + i, sizes[i], i, &id), 0);
		assert_int_equal(id, i + 1);
	}
	/* one with fields, the way a device's save() writes them */
	assert_int_equal(snap_writer_section_begin(&w, SNAP_REC_FULL, "fields", 0, 2, &id), 0);
	snap_put_u8(snap_writer_stream(&w), 0xab);
	snap_put_le16(snap_writer_stream(&w), 0xbeef);
	snap_writer_put_le32(&w, 0xdeadbeef);
	snap_writer_put_le64(&w, 0x0123456789abcdefull);
	assert_int_equal(snap_writer_record_end(&w), 0);
	assert_int_equal(snap_writer_eof(&w), 0);
	d = snap_stream_mem_data(s, &len);
	assert_int_equal(snap_stream_open_mem_read(d, len, &rs), 0);

	assert_int_equal(snap_reader_begin(rs, &r, msg, sizeof(msg)), 0);
	for (unsigned int i = 0; i < N; i++) {
		uint8_t *want = malloc(sizes[i] + 1), *got = malloc(sizes[i] + 1);

		pattern_fill(want, sizes[i], i);
		assert_int_equal(snap_reader_next(&r, &rec), 0);
		snprintf(name, sizeof(name), "dev%u", i);
		assert_int_equal(rec.type, SNAP_REC_FULL);
		assert_string_equal(rec.name, name);
		assert_int_equal(rec.instance, i * 3);
		assert_int_equal(rec.version, 100 + i);
		assert_int_equal(rec.section_id, i + 1);
		assert_int_equal(rec.seq, i);
		assert_int_equal(rec.data_len, sizes[i]);
		assert_int_equal(rec.payload_len, sizes[i] + 10 + strlen(name));
		assert_int_equal(snap_reader_remaining(&r), sizes[i]);
		if (i % 2) {
			snap_reader_get_bytes(&r, got, sizes[i]);
		} else {
			snap_get_bytes(snap_reader_stream(&r), got, sizes[i]);
		}
		assert_memory_equal(got, want, sizes[i]);
		assert_int_equal(snap_reader_remaining(&r), 0);
		assert_int_equal(snap_reader_record_end(&r), 0);
		free(want);
		free(got);
	}
	assert_int_equal(snap_reader_next(&r, &rec), 0);
	assert_string_equal(rec.name, "fields");
	assert_int_equal(snap_reader_get_u8(&r), 0xab);
	assert_int_equal(snap_reader_get_le16(&r), 0xbeef);
	assert_int_equal(snap_get_le32(snap_reader_stream(&r)), 0xdeadbeef);
	assert_int_equal(snap_reader_get_le64(&r), 0x0123456789abcdefull);
	assert_int_equal(snap_reader_record_end(&r), 0);
	assert_int_equal(snap_reader_next(&r, &rec), 0);
	assert_int_equal(rec.type, SNAP_REC_EOF);
	assert_int_equal(rec.eof_record_count, N + 1);
	assert_int_equal(rec.eof_sections, N + 1);
	assert_int_equal(rec.eof_total_bytes, len - 32 - 20 - 4);
	assert_int_equal(rec.offset, rec.eof_total_bytes);
	assert_int_equal(snap_reader_record_end(&r), 0);
	assert_int_equal(snap_reader_next(&r, &rec), -EINVAL);
	assert_string_equal(msg, "read past the EOF record");
	snap_reader_release(&r);
	snap_stream_close(rs);
	assert_int_equal(snap_stream_commit(s), 0);
}

/* Two iterative sections interleaved with each other and a FULL one; the
 * reader names the section on PART/END records. */
static void test_interleaved(void **state)
{
	static const struct {
		enum snap_rec_type type;
		char sec;               /* 'a', 'b', 'c' */
	} seq[] = {
		{ SNAP_REC_START, 'a' }, { SNAP_REC_START, 'b' }, { SNAP_REC_PART, 'a' },
		{ SNAP_REC_PART, 'b' }, { SNAP_REC_FULL, 'c' }, { SNAP_REC_PART, 'a' },
		{ SNAP_REC_END, 'b' }, { SNAP_REC_PART, 'a' }, { SNAP_REC_END, 'a' },
	};
	enum { N = sizeof(seq) / sizeof(seq[0]) };
	struct snap_stream *s, *rs;
	struct snap_writer w;
	struct snap_reader r;
	struct snap_record rec;
	uint32_t ids[3] = { 0 };
	const uint8_t *d;
	char msg[MSG_LEN], name[8];
	size_t len;

	assert_int_equal(snap_stream_open_mem_write(&s), 0);
	assert_int_equal(snap_writer_begin(s, 0, created, "vmm 0.1.0", &w), 0);
	for (unsigned int i = 0; i < N; i++) {
		int k = seq[i].sec - 'a';

		snprintf(name, sizeof(name), "sec-%c", seq[i].sec);
		if (seq[i].type == SNAP_REC_START || seq[i].type == SNAP_REC_FULL)
			assert_int_equal(snap_writer_section_begin(&w, seq[i].type, name, 5, 9,
								   &ids[k]), 0);
		else if (i % 2)
			assert_int_equal(snap_writer_record_begin(&w, ids[k], seq[i].type), 0);
		else
			assert_int_equal(snap_writer_part_begin(&w, ids[k], seq[i].type, 8, false), 0);
		snap_writer_put_le64(&w, i);
		assert_int_equal(snap_writer_record_end(&w), 0);
	}
	assert_int_equal(snap_writer_eof(&w), 0);
	d = snap_stream_mem_data(s, &len);
	assert_int_equal(snap_stream_open_mem_read(d, len, &rs), 0);
	assert_int_equal(snap_reader_begin(rs, &r, msg, sizeof(msg)), 0);
	for (unsigned int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "sec-%c", seq[i].sec);
		assert_int_equal(snap_reader_next(&r, &rec), 0);
		assert_int_equal(rec.type, seq[i].type);
		assert_int_equal(rec.section_id, ids[seq[i].sec - 'a']);
		assert_string_equal(rec.name, name);
		assert_int_equal(rec.instance, 5);
		assert_int_equal(rec.version, 9);
		if (rec.type == SNAP_REC_START || rec.type == SNAP_REC_FULL)
			assert_non_null(snap_reader_stream(&r));
		else
			assert_null(snap_reader_stream(&r));
		assert_int_equal(snap_reader_get_le64(&r), i);
		assert_int_equal(snap_reader_record_end(&r), 0);
	}
	assert_int_equal(snap_reader_next(&r, &rec), 0);
	assert_int_equal(rec.type, SNAP_REC_EOF);
	assert_int_equal(rec.eof_sections, 3);
	assert_int_equal(rec.eof_record_count, N);
	snap_reader_release(&r);
	snap_stream_close(rs);
	assert_int_equal(snap_stream_commit(s), 0);
}

/* The sample through a memory stream in both layouts: the same content,
 * page data 4 KiB-aligned in the page-aligned one. */
static void test_sample_roundtrip(void **state)
{
	struct parsed a, b;
	char msg[MSG_LEN];
	size_t la, lb;
	uint8_t *da = sample_bytes(SNAP_FLAG_PAGE_ALIGNED, &la);
	uint8_t *db = sample_bytes(0, &lb);
	uint8_t *pages = pages_alloc(3, 7);

	assert_int_equal(parse_bytes(da, la, msg, &a), 0);
	assert_int_equal(parse_bytes(db, lb, msg, &b), 0);
	assert_int_equal(a.records, 9);
	assert_int_equal(a.fulls, 5);
	assert_int_equal(a.parts, 3);
	assert_int_equal(a.npages, 3);
	assert_int_equal(a.data_crc, b.data_crc);
	assert_int_equal(a.page_crc, crc32c(0, pages, 3 * PG));
	assert_int_equal(b.page_crc, a.page_crc);
	for (unsigned int i = 0; i < a.npages; i++)
		assert_int_equal(a.page_offsets[i] % PG, 0);
	assert_true(b.page_offsets[0] % PG != 0);
	assert_true(lb < la);
	assert_int_equal(a.eof.eof_record_count, 8);
	assert_int_equal(a.eof.eof_sections, 5);
	assert_int_equal(a.eof.eof_total_bytes, la - 56);
	free(pages);
	free(da);
	free(db);
}

/* RAM-like records through a real file: page data lands at 4 KiB file
 * offsets (checked with pread) and reads back equal. */
static void test_file_page_aligned(void **state)
{
	static const struct run runs[] = {
		{ 0x0, 3, false }, { 0x3000, 16, true }, { 0x13000, 1, false }, { 0x20000, 4, false },
	};
	char dir[] = "/tmp/test_format.XXXXXX", path[64], msg[MSG_LEN];
	uint8_t *pages = pages_alloc(8, 11), *buf = pages_alloc(8, 0), *chk = pages_alloc(1, 0);
	struct snap_stream *s;
	struct snap_writer w;
	struct snap_reader r;
	struct snap_record rec;
	uint32_t id;
	int fd;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/snap", dir);
	assert_int_equal(snap_stream_create_file(path, false, &s), 0);
	assert_int_equal(snap_writer_begin(s, SNAP_FLAG_PAGE_ALIGNED, created, "vmm 0.1.0", &w), 0);
	assert_int_equal(put_full(&w, "configuration", 0, 1, 333, 5, NULL), 0);
	assert_int_equal(snap_writer_section_begin(&w, SNAP_REC_START, "ram", 0, 1, &id), 0);
	assert_int_equal(snap_writer_record_end(&w), 0);
	assert_int_equal(put_ram(&w, id, SNAP_REC_PART, runs, 4, pages, true), 0);
	assert_int_equal(put_full(&w, "cpu", 0, 1, 1000, 6, NULL), 0);
	assert_int_equal(put_ram(&w, id, SNAP_REC_END, runs, 0, pages, true), 0);
	assert_int_equal(snap_writer_eof(&w), 0);
	assert_int_equal(snap_stream_commit(s), 0);

	assert_int_equal(snap_stream_open_file(path, &s), 0);
	assert_int_equal(snap_reader_begin(s, &r, msg, sizeof(msg)), 0);
	assert_int_equal(r.hdr.flags, SNAP_FLAG_PAGE_ALIGNED);
	assert_int_equal(snap_reader_next(&r, &rec), 0);
	snap_reader_skip_payload(&r);
	assert_int_equal(snap_reader_record_end(&r), 0);
	assert_int_equal(snap_reader_next(&r, &rec), 0);
	assert_int_equal(rec.type, SNAP_REC_START);
	assert_int_equal(rec.data_len, 0);
	assert_int_equal(snap_reader_record_end(&r), 0);
	assert_int_equal(snap_reader_next(&r, &rec), 0);
	assert_int_equal(rec.type, SNAP_REC_PART);
	assert_int_equal(rec.flags, SNAP_REC_FLAG_PAGE_ALIGNED);
	assert_string_equal(rec.name, "ram");
	assert_int_equal(snap_reader_get_le32(&r), 4);
	assert_int_equal(snap_reader_get_le32(&r), 0);
	for (unsigned int i = 0; i < 4; i++) {
		assert_int_equal(snap_reader_get_le64(&r), runs[i].gpa);
		assert_int_equal(snap_reader_get_le64(&r),
				 runs[i].npages | (uint64_t)runs[i].zero << 56);
	}
	snap_reader_get_pad(&r);
	assert_int_equal(snap_stream_offset(s) % PG, 0);
	assert_int_equal(snap_reader_remaining(&r), 8 * PG);
	uint64_t data_off = snap_stream_offset(s);

	snap_reader_get_pages(&r, buf, 8 * PG);
	assert_memory_equal(buf, pages, 8 * PG);
	assert_int_equal(snap_reader_record_end(&r), 0);
	assert_int_equal(snap_reader_next(&r, &rec), 0);
	assert_string_equal(rec.name, "cpu");
	snap_reader_skip_payload(&r);
	assert_int_equal(snap_reader_record_end(&r), 0);
	assert_int_equal(snap_reader_next(&r, &rec), 0);
	assert_int_equal(rec.type, SNAP_REC_END);
	assert_int_equal(rec.payload_len, 8 + snap_format_pad_len(rec.offset, 8));
	assert_int_equal(snap_reader_get_le32(&r), 0);
	assert_int_equal(snap_reader_get_le32(&r), 0);
	snap_reader_get_pad(&r);
	assert_int_equal(snap_stream_offset(s) % PG, 0);
	assert_int_equal(snap_reader_record_end(&r), 0);
	assert_int_equal(snap_reader_next(&r, &rec), 0);
	assert_int_equal(rec.type, SNAP_REC_EOF);
	snap_reader_release(&r);
	snap_stream_close(s);

	/* the page data really is at that file offset */
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	for (unsigned int i = 0; i < 8; i++) {
		assert_int_equal(pread(fd, chk, PG, (off_t)(data_off + i * PG)), PG);
		assert_memory_equal(chk, pages + i * PG, PG);
	}
	close(fd);
	unlink(path);
	rmdir(dir);
	free(pages);
	free(buf);
	free(chk);
}

/* The writer refuses to write an invalid file, and the refusal sticks in
 * the stream so that it cannot be committed. */
static void test_writer_refuses(void **state)
{
	struct snap_stream *s;
	struct snap_writer w;
	uint32_t id, id2;
	uint8_t page[PG] = { 0 };

#define FRESH()                                                                   \
	do {                                                                      \
		assert_int_equal(snap_stream_open_mem_write(&s), 0);              \
		assert_int_equal(snap_writer_begin(s, 0, 0, "vmm 0.1.0", &w), 0); \
	} while (0)

	FRESH();        /* EOF with a section still open */
	assert_int_equal(snap_writer_section_begin(&w, SNAP_REC_START, "ram", 0, 1, &id), 0);
	assert_int_equal(snap_writer_record_end(&w), 0);
	assert_int_equal(snap_writer_eof(&w), -EPROTO);
	assert_int_equal(snap_stream_commit(s), -EPROTO);

	FRESH();        /* PART of a FULL section, of an unknown one */
	assert_int_equal(snap_writer_section_begin(&w, SNAP_REC_FULL, "cpu", 0, 1, &id), 0);
	assert_int_equal(snap_writer_record_end(&w), 0);
	assert_int_equal(snap_writer_record_begin(&w, id, SNAP_REC_PART), -EINVAL);
	assert_int_equal(snap_writer_record_end(&w), -EINVAL);
	snap_stream_close(s);
	FRESH();
	assert_int_equal(snap_writer_part_begin(&w, 7, SNAP_REC_PART, 0, false), -EINVAL);
	snap_stream_close(s);

	FRESH();        /* PART after END */
	assert_int_equal(snap_writer_section_begin(&w, SNAP_REC_START, "ram", 0, 1, &id), 0);
	assert_int_equal(snap_writer_record_end(&w), 0);
	assert_int_equal(snap_writer_record_begin(&w, id, SNAP_REC_END), 0);
	assert_int_equal(snap_writer_record_end(&w), 0);
	assert_int_equal(snap_writer_part_begin(&w, id, SNAP_REC_PART, 0, false), -EINVAL);
	snap_stream_close(s);

	FRESH();        /* more than declared, less than declared */
	assert_int_equal(snap_writer_section_begin(&w, SNAP_REC_START, "ram", 0, 1, &id), 0);
	assert_int_equal(snap_writer_record_end(&w), 0);
	assert_int_equal(snap_writer_part_begin(&w, id, SNAP_REC_PART, PG, false), 0);
	snap_writer_put_u8(&w, 1);
	snap_writer_put_pages(&w, page, PG);
	assert_int_equal(snap_writer_record_end(&w), -EINVAL);
	snap_stream_close(s);
	FRESH();
	assert_int_equal(snap_writer_section_begin(&w, SNAP_REC_START, "ram", 0, 1, &id), 0);
	assert_int_equal(snap_writer_record_end(&w), 0);
	assert_int_equal(snap_writer_part_begin(&w, id, SNAP_REC_PART, 9, false), 0);
	snap_writer_put_le64(&w, 1);
	assert_int_equal(snap_writer_record_end(&w), -EINVAL);
	snap_stream_close(s);

	FRESH();        /* page-aligned record in a file without the layout */
	assert_int_equal(snap_writer_section_begin(&w, SNAP_REC_START, "ram", 0, 1, &id), 0);
	assert_int_equal(snap_writer_record_end(&w), 0);
	assert_int_equal(snap_writer_part_begin(&w, id, SNAP_REC_PART, 8, true), -EINVAL);
	snap_stream_close(s);

	FRESH();        /* bad names, wrong types, over the bounds */
	assert_int_equal(snap_writer_section_begin(&w, SNAP_REC_FULL, "CPU", 0, 1, &id), -EINVAL);
	snap_stream_close(s);
	FRESH();
	assert_int_equal(snap_writer_section_begin(&w, SNAP_REC_FULL, "", 0, 1, &id), -EINVAL);
	snap_stream_close(s);
	FRESH();
	assert_int_equal(snap_writer_section_begin(&w, SNAP_REC_PART, "cpu", 0, 1, &id), -EINVAL);
	snap_stream_close(s);
	FRESH();
	assert_int_equal(snap_writer_section_begin(&w, SNAP_REC_START, "ram", 0, 1, &id), 0);
	assert_int_equal(snap_writer_record_end(&w), 0);
	assert_int_equal(snap_writer_part_begin(&w, id, SNAP_REC_PART, SNAP_PART_MAX + 1, false),
			 -EINVAL);
	snap_stream_close(s);
	FRESH();        /* a second record begun before the first ended */
	assert_int_equal(snap_writer_section_begin(&w, SNAP_REC_FULL, "a", 0, 1, &id), 0);
	assert_int_equal(snap_writer_section_begin(&w, SNAP_REC_FULL, "b", 0, 1, &id2), -EINVAL);
	snap_writer_release(&w);
	snap_stream_close(s);
	FRESH();        /* a record given up halfway: nothing can be committed */
	assert_int_equal(snap_writer_section_begin(&w, SNAP_REC_FULL, "a", 0, 1, &id), 0);
	snap_writer_release(&w);
	assert_int_equal(snap_writer_eof(&w), -ECANCELED);
	assert_int_equal(snap_stream_commit(s), -ECANCELED);
	FRESH();        /* a FULL payload over 64 MiB */
	assert_int_equal(snap_writer_section_begin(&w, SNAP_REC_FULL, "big", 0, 1, &id), 0);
	{
		uint8_t *big = calloc(1, 1 << 20);

		assert_non_null(big);
		for (int i = 0; i < 64; i++)
			snap_writer_put_bytes(&w, big, 1 << 20);
		free(big);
	}
	assert_int_equal(snap_writer_record_end(&w), -EFBIG);
	snap_writer_release(&w);
	snap_stream_close(s);
#undef FRESH
}

/* ---- damaged files --------------------------------------------------- */

/* Truncated at every byte offset: each fails with -ENODATA, saying so. */
static void test_truncate_everywhere(void **state)
{
	char msg[MSG_LEN];
	struct parsed p;
	size_t len;
	uint8_t *d = sample_bytes(SNAP_FLAG_PAGE_ALIGNED, &len);

	for (size_t cut = 0; cut < len; cut++) {
		int err = parse_bytes(d, cut, msg, &p);

		if (err != -ENODATA || !strstr(msg, "truncated at offset") ||
		    !strstr(msg, "(no EOF record)"))
			fail_msg("cut at %zu: err %d, '%s'", cut, err, msg);
	}
	print_message("    %zu truncations refused\n", len);
	assert_int_equal(parse_bytes(d, len, msg, &p), 0);
	free(d);
}

/* Every byte flipped (all bits, then the lowest bit): each fails as
 * damage, never as truncation and never succeeds. */
static void test_flip_everywhere(void **state)
{
	static const uint8_t masks[] = { 0xff, 0x01, 0x80 };
	char msg[MSG_LEN];
	struct parsed p;
	size_t len, n = 0;
	uint8_t *d = sample_bytes(SNAP_FLAG_PAGE_ALIGNED, &len);

	for (unsigned int m = 0; m < sizeof(masks); m++) {
		for (size_t i = 0; i < len; i++) {
			int err;

			d[i] ^= masks[m];
			err = parse_bytes(d, len, msg, &p);
			d[i] ^= masks[m];
			if ((err != -EINVAL && err != -EPROTO) || !msg[0])
				fail_msg("byte %zu ^ 0x%02x: err %d, '%s'", i, masks[m], err, msg);
			n++;
		}
	}
	print_message("    %zu byte flips refused\n", n);
	free(d);
}

/* One damaged file: how to make it, what must come out. */
struct damage {
	const char *what;
	/* mutate the sample (page-aligned) in place; may change *len */
	void (*make)(uint8_t *d, size_t *len);
	int err;
	const char *msg;        /* exact, or a substring if it starts with '~' */
};

static void dmg_magic(uint8_t *d, size_t *len)
{
	d[1] = 'v';
}

static void dmg_magic2(uint8_t *d, size_t *len)
{
	d[8] = 0x0a;    /* \r\n → \n\n, a text-mode transfer */
}

static void dmg_version(uint8_t *d, size_t *len)
{
	d[12] = 2;
	fix_file_header(d);
}

static void dmg_version_damaged(uint8_t *d, size_t *len)
{
	d[12] = 2;      /* no CRC fix: still reported as newer (version first) */
}

static void dmg_version0(uint8_t *d, size_t *len)
{
	d[12] = 0;
	fix_file_header(d);
}

static void dmg_flag(uint8_t *d, size_t *len)
{
	d[16] |= 4;
	fix_file_header(d);
}

static void dmg_flag_high(uint8_t *d, size_t *len)
{
	d[19] |= 0x80;
	fix_file_header(d);
}

static void dmg_header_size(uint8_t *d, size_t *len)
{
	d[20] = 128;
	fix_file_header(d);
}

static void dmg_header_reserved(uint8_t *d, size_t *len)
{
	d[59] = 1;
	fix_file_header(d);
}

static void dmg_header_crc(uint8_t *d, size_t *len)
{
	d[26] ^= 1;     /* created_ns */
}

static void dmg_writer_junk(uint8_t *d, size_t *len)
{
	d[45] = 'x';    /* after the NUL of "vmm 0.1.0" */
	fix_file_header(d);
}

static void dmg_writer_ctrl(uint8_t *d, size_t *len)
{
	d[33] = 0x1b;
	fix_file_header(d);
}

static void dmg_type(uint8_t *d, size_t *len)
{
	size_t off = record_at(d, *len, 2);

	d[off] = 9;
	fix_record_header(d, off);
}

static void dmg_type0(uint8_t *d, size_t *len)
{
	size_t off = record_at(d, *len, 0);

	d[off] = 0;
	fix_record_header(d, off);
}

static void dmg_rec_reserved16(uint8_t *d, size_t *len)
{
	size_t off = record_at(d, *len, 1);

	d[off + 3] = 0x40;
	fix_record_header(d, off);
}

static void dmg_rec_reserved32(uint8_t *d, size_t *len)
{
	size_t off = record_at(d, *len, 1);

	d[off + 24] = 1;
	fix_record_header(d, off);
}

static void dmg_rec_flags(uint8_t *d, size_t *len)
{
	size_t off = record_at(d, *len, 3);

	d[off + 1] = 2;
	fix_record_header(d, off);
}

static void dmg_rec_flag_full(uint8_t *d, size_t *len)
{
	size_t off = record_at(d, *len, 2);

	d[off + 1] = 1;
	fix_record_header(d, off);
}

static void dmg_seq(uint8_t *d, size_t *len)
{
	size_t off = record_at(d, *len, 4);

	d[off + 16] = 5;
	fix_record_header(d, off);
}

static void dmg_rec_crc(uint8_t *d, size_t *len)
{
	size_t off = record_at(d, *len, 4);

	d[off + 9] ^= 0x10;     /* payload_len, CRC not fixed */
}

static void dmg_len_full(uint8_t *d, size_t *len)
{
	size_t off = record_at(d, *len, 2);

	le_put(d + off + 8, (64ull << 20) + 1, 8);
	fix_record_header(d, off);
}

static void dmg_len_huge(uint8_t *d, size_t *len)
{
	size_t off = record_at(d, *len, 3);

	le_put(d + off + 8, 1ull << 40, 8);
	fix_record_header(d, off);
}

static void dmg_len_short(uint8_t *d, size_t *len)
{
	size_t off = record_at(d, *len, 2);

	le_put(d + off + 8, 10, 8);
	fix_record_header(d, off);
}

static void dmg_eof_len(uint8_t *d, size_t *len)
{
	size_t off = record_at(d, *len, 8);

	le_put(d + off + 8, 24, 8);
	fix_record_header(d, off);
}

static void dmg_eof_id(uint8_t *d, size_t *len)
{
	size_t off = record_at(d, *len, 8);

	d[off + 4] = 1;
	fix_record_header(d, off);
}

static void dmg_payload_crc(uint8_t *d, size_t *len)
{
	size_t off = record_at(d, *len, 2);

	d[off + 32 + 12] ^= 1;  /* cpu 0's data */
}

static void dmg_part_crc(uint8_t *d, size_t *len)
{
	size_t off = record_at(d, *len, 3);

	d[*len - 1000] ^= 1;    /* near the end: ram END's page data */
	(void)off;
}

static void dmg_padding(uint8_t *d, size_t *len)
{
	size_t off = record_at(d, *len, 3);

	d[off + 32 + 8 + 48 + 100] = 0x5a;
	fix_payload(d, off);
}

static void dmg_name_char(uint8_t *d, size_t *len)
{
	size_t off = record_at(d, *len, 2);

	d[off + 32 + 2] = 'C';
	fix_payload(d, off);
}

static void dmg_name_len0(uint8_t *d, size_t *len)
{
	size_t off = record_at(d, *len, 2);

	d[off + 32] = 0;
	fix_payload(d, off);
}

static void dmg_name_len_long(uint8_t *d, size_t *len)
{
	size_t off = record_at(d, *len, 2);

	d[off + 32] = 65;
	fix_payload(d, off);
}

static void dmg_name_len_past(uint8_t *d, size_t *len)
{
	size_t off = record_at(d, *len, 7);      /* serial: data_len 0 */

	d[off + 32] = 7;
	fix_payload(d, off);
}

static void dmg_part_unknown(uint8_t *d, size_t *len)
{
	size_t off = record_at(d, *len, 5);      /* buffered ram PART */

	d[off + 4] = 9;
	fix_record_header(d, off);
}

static void dmg_part_of_full(uint8_t *d, size_t *len)
{
	size_t off = record_at(d, *len, 5);

	d[off + 4] = 3;         /* cpu 0, a FULL section */
	fix_record_header(d, off);
}

static void dmg_part_after_end(uint8_t *d, size_t *len)
{
	size_t off = record_at(d, *len, 7);      /* serial, after the ram END */

	d[off] = SNAP_REC_PART;
	d[off + 4] = 2;
	fix_record_header(d, off);
}

static void dmg_reused_id(uint8_t *d, size_t *len)
{
	size_t off = record_at(d, *len, 4);      /* cpu 1, id 4 */

	d[off + 4] = 3;
	fix_record_header(d, off);
}

static void dmg_id_skipped(uint8_t *d, size_t *len)
{
	size_t off = record_at(d, *len, 4);

	d[off + 4] = 5;
	fix_record_header(d, off);
}

static void dmg_eof_count(uint8_t *d, size_t *len)
{
	size_t off = record_at(d, *len, 8);

	d[off + 32] = 7;
	fix_payload(d, off);
}

static void dmg_eof_total(uint8_t *d, size_t *len)
{
	size_t off = record_at(d, *len, 8);

	d[off + 40] ^= 4;
	fix_payload(d, off);
}

static void dmg_eof_sections(uint8_t *d, size_t *len)
{
	size_t off = record_at(d, *len, 8);

	d[off + 48] = 4;
	fix_payload(d, off);
}

static void dmg_trailing(uint8_t *d, size_t *len)
{
	d[(*len)++] = 0;        /* the buffer has room */
}

/* Drop the ram END (record 6): the following records move up, so their
 * seq, and the EOF's fields, are rewritten to match. */
static void dmg_no_end(uint8_t *d, size_t *len)
{
	size_t off = record_at(d, *len, 6), next = record_at(d, *len, 7), eof;

	memmove(d + off, d + next, *len - next);
	*len -= next - off;
	for (unsigned int i = 6; i <= 7; i++) {
		size_t o = record_at(d, *len, i);

		le_put(d + o + 16, i, 8);
		fix_record_header(d, o);
	}
	eof = record_at(d, *len, 7);
	le_put(d + eof + 32, 7, 8);
	le_put(d + eof + 40, eof, 8);
	fix_payload(d, eof);
}

/* Swap two records (cpu 1 and the buffered ram PART): seq out of order. */
static void dmg_swap(uint8_t *d, size_t *len)
{
	size_t a = record_at(d, *len, 4), b = record_at(d, *len, 5), c = record_at(d, *len, 6);
	uint8_t *tmp = malloc(c - a);

	assert_non_null(tmp);
	memcpy(tmp, d + b, c - b);
	memcpy(tmp + (c - b), d + a, b - a);
	memcpy(d + a, tmp, c - a);
	free(tmp);
}

static const struct damage damages[] = {
	{ "bad magic", dmg_magic, -EINVAL, "not a vmm snapshot (bad magic)" },
	{ "bad magic2", dmg_magic2, -EINVAL, "~bad magic2~" },
	{ "future version", dmg_version, -EPROTO,
	  "snapshot format version 2 is newer than this vmm supports (1)" },
	{ "future version, CRC not fixed", dmg_version_damaged, -EPROTO,
	  "snapshot format version 2 is newer than this vmm supports (1)" },
	{ "version 0", dmg_version0, -EINVAL, "snapshot format version 0 is invalid" },
	{ "unknown flag", dmg_flag, -EPROTO, "snapshot uses unknown flags 0x4 (this vmm knows 0x3)" },
	{ "unknown high flag", dmg_flag_high, -EPROTO, "~unknown flags 0x80000000~" },
	{ "header size", dmg_header_size, -EINVAL, "header size 128, expected 64" },
	{ "header reserved", dmg_header_reserved, -EINVAL, "header reserved bytes not zero" },
	{ "header crc", dmg_header_crc, -EINVAL, "header checksum mismatch" },
	{ "writer not NUL-padded", dmg_writer_junk, -EINVAL, "~writer string~" },
	{ "writer control char", dmg_writer_ctrl, -EINVAL, "~writer string~" },
	{ "record type unknown", dmg_type, -EINVAL, "record 2 at offset 0x~: unknown record type 9" },
	{ "record type 0", dmg_type0, -EINVAL, "~unknown record type 0" },
	{ "record reserved16", dmg_rec_reserved16, -EINVAL, "~: reserved header bytes not zero" },
	{ "record reserved32", dmg_rec_reserved32, -EINVAL, "~: reserved header bytes not zero" },
	{ "record flags unknown", dmg_rec_flags, -EINVAL, "~unknown record flags 0x2" },
	{ "page-aligned FULL", dmg_rec_flag_full, -EINVAL, "~page-aligned flag on a FULL record" },
	{ "seq out of order", dmg_seq, -EINVAL, "~record_seq 5 out of order (expected 4)" },
	{ "records swapped", dmg_swap, -EINVAL, "~record_seq 5 out of order (expected 4)" },
	{ "record header crc", dmg_rec_crc, -EINVAL, "record 4 at offset 0x~: header checksum mismatch" },
	{ "FULL payload_len over 64 MiB", dmg_len_full, -EINVAL, "~FULL payload_len 67108865 over the bound~" },
	{ "PART payload_len huge", dmg_len_huge, -EINVAL, "~PART payload_len 1099511627776 over the bound~" },
	{ "FULL payload_len short", dmg_len_short, -EINVAL, "~too short for a section identity" },
	{ "EOF payload_len", dmg_eof_len, -EINVAL, "~EOF payload_len 24, expected 20" },
	{ "EOF section id", dmg_eof_id, -EINVAL, "~EOF record with section id 1" },
	{ "payload crc", dmg_payload_crc, -EINVAL, "record 2 at offset 0x~: payload checksum mismatch" },
	{ "PART payload crc", dmg_part_crc, -EINVAL,
	  "record 6 (section 'ram' instance 0) at offset 0x~: payload checksum mismatch" },
	{ "non-zero padding", dmg_padding, -EINVAL,
	  "record 3 (section 'ram' instance 0) at offset 0x~: non-zero padding at offset 0x~" },
	{ "name charset", dmg_name_char, -EINVAL, "~section name is not [a-z0-9_.-]" },
	{ "name length 0", dmg_name_len0, -EINVAL, "~section name length 0 out of range" },
	{ "name length 65", dmg_name_len_long, -EINVAL, "~section name length 65 out of range" },
	{ "name past payload", dmg_name_len_past, -EINVAL, "~section name length 7 out of range" },
	{ "PART for unknown section", dmg_part_unknown, -EPROTO, "~PART for unknown section id 9" },
	{ "PART for a FULL section", dmg_part_of_full, -EPROTO,
	  "record 5 (section 'cpu' instance 0) at offset 0x~: PART for section id 3, a FULL section" },
	{ "PART after END", dmg_part_after_end, -EPROTO,
	  "record 7 (section 'ram' instance 0) at offset 0x~: PART for section id 2 after its END" },
	{ "reused section id", dmg_reused_id, -EPROTO,
	  "~section id 3 reused (already section 'cpu' instance 0)" },
	{ "section id skipped", dmg_id_skipped, -EPROTO, "~section id 5 out of order (expected 4)" },
	{ "EOF record_count", dmg_eof_count, -EINVAL, "~EOF record_count 7, but 8 records precede it" },
	{ "EOF total_bytes", dmg_eof_total, -EINVAL, "~EOF total_bytes~" },
	{ "EOF count_of_sections", dmg_eof_sections, -EINVAL,
	  "~EOF count_of_sections 4, but the file has 5" },
	{ "END missing before EOF", dmg_no_end, -EPROTO,
	  "~section 'ram' instance 0 (id 2) has no END record" },
	{ "data after EOF", dmg_trailing, -EINVAL, "~data after the EOF record at offset 0x~" },
};

/* A message matches a pattern where '~' stands for any run of characters
 * (a glob with '~' for '*'). */
static bool msg_match(const char *msg, const char *pat)
{
	const char *tilde = strchr(pat, '~');
	size_t n;

	if (!tilde)
		return !strcmp(msg, pat);
	n = (size_t)(tilde - pat);
	if (strncmp(msg, pat, n))
		return false;
	msg += n;
	pat = tilde + 1;
	if (!*pat)
		return true;
	for (; *msg; msg++)
		if (msg_match(msg, pat))
			return true;
	return false;
}

static void test_damage_table(void **state)
{
	char msg[MSG_LEN];
	struct parsed p;
	size_t len0;
	uint8_t *orig = sample_bytes(SNAP_FLAG_PAGE_ALIGNED, &len0);
	uint8_t *d = malloc(len0 + 16);

	assert_non_null(d);
	for (size_t i = 0; i < sizeof(damages) / sizeof(damages[0]); i++) {
		size_t len = len0;
		int err;

		memcpy(d, orig, len0);
		damages[i].make(d, &len);
		err = parse_bytes(d, len, msg, &p);
		if (err != damages[i].err || !msg_match(msg, damages[i].msg))
			fail_msg("%s: err %d, '%s'; expected %d, '%s'", damages[i].what, err, msg,
				 damages[i].err, damages[i].msg);
	}
	print_message("    %zu damaged files refused\n", sizeof(damages) / sizeof(damages[0]));
	free(d);
	free(orig);
}

/* Misreading a payload: asking for more than it holds, or leaving some. */
static void test_reader_misuse(void **state)
{
	struct snap_stream *s;
	struct snap_reader r;
	struct snap_record rec;
	char msg[MSG_LEN];
	uint8_t page[PG];
	size_t len;
	uint8_t *d = sample_bytes(SNAP_FLAG_PAGE_ALIGNED, &len);

	/* section data ends early (configuration holds 17 bytes) */
	assert_int_equal(snap_stream_open_mem_read(d, len, &s), 0);
	assert_int_equal(snap_reader_begin(s, &r, msg, sizeof(msg)), 0);
	assert_int_equal(snap_reader_next(&r, &rec), 0);
	assert_int_equal(rec.data_len, 17);
	snap_reader_get_le64(&r);
	snap_reader_get_le64(&r);
	assert_int_equal(snap_reader_get_le64(&r), 0);
	assert_int_equal(snap_reader_record_end(&r), -EPROTO);
	assert_true(msg_match(msg, "record 0 (section 'configuration' instance 0) at offset 0x40: "
			      "section data ends early~"));
	assert_int_equal(snap_reader_next(&r, &rec), -EPROTO);   /* sticky */
	snap_reader_release(&r);
	snap_stream_close(s);

	/* section data left over */
	assert_int_equal(snap_stream_open_mem_read(d, len, &s), 0);
	assert_int_equal(snap_reader_begin(s, &r, msg, sizeof(msg)), 0);
	assert_int_equal(snap_reader_next(&r, &rec), 0);
	snap_reader_get_le64(&r);
	assert_int_equal(snap_reader_record_end(&r), -EPROTO);
	assert_string_equal(msg, "record 0 (section 'configuration' instance 0) at offset 0x40: "
			    "9 bytes of section data left unread");
	snap_reader_release(&r);
	snap_stream_close(s);

	/* next before the record is finished; PART read past its end; PART
	 * bytes left unread */
	assert_int_equal(snap_stream_open_mem_read(d, len, &s), 0);
	assert_int_equal(snap_reader_begin(s, &r, msg, sizeof(msg)), 0);
	assert_int_equal(snap_reader_next(&r, &rec), 0);
	assert_int_equal(snap_reader_next(&r, &rec), -EINVAL);
	assert_true(msg_match(msg, "~next record requested before this one was finished"));
	snap_reader_release(&r);
	snap_stream_close(s);

	for (int mode = 0; mode < 3; mode++) {
		assert_int_equal(snap_stream_open_mem_read(d, len, &s), 0);
		assert_int_equal(snap_reader_begin(s, &r, msg, sizeof(msg)), 0);
		for (int i = 0; i < 4; i++) {
			assert_int_equal(snap_reader_next(&r, &rec), 0);
			if (i < 3) {
				snap_reader_skip_payload(&r);
				assert_int_equal(snap_reader_record_end(&r), 0);
			}
		}
		assert_int_equal(rec.type, SNAP_REC_PART);
		if (mode == 0) {
			snap_reader_skip_payload(&r);
			snap_reader_get_u8(&r);
			assert_true(msg_match(msg, "~: read of 1 bytes past the end of the payload (0 left)"));
		} else if (mode == 1) {
			snap_reader_get_le32(&r);
			assert_int_equal(snap_reader_record_end(&r), -EPROTO);
			assert_true(msg_match(msg, "~payload bytes left unread"));
		} else {
			snap_reader_get_le64(&r);
			snap_reader_get_pages(&r, page, 100);
			assert_true(msg_match(msg, "~page read of 100 bytes, not a multiple of 4096"));
		}
		assert_true(snap_reader_error(&r) != 0);
		snap_reader_release(&r);
		snap_stream_close(s);
	}
	free(d);
}

/* Non-snapshots and nearly empty input. */
static void test_not_a_snapshot(void **state)
{
	static const char text[] = "#!/bin/sh\necho this is not a snapshot at all, but long enough\n";
	char msg[MSG_LEN];
	struct parsed p;
	size_t len;
	uint8_t *d = sample_bytes(0, &len);

	assert_int_equal(parse_bytes((const uint8_t *)text, sizeof(text), msg, &p), -EINVAL);
	assert_string_equal(msg, "not a vmm snapshot (bad magic)");
	assert_int_equal(parse_bytes((const uint8_t *)"#!", 2, msg, &p), -ENODATA);
	assert_string_equal(msg, "truncated at offset 0x0 (no EOF record)");
	assert_int_equal(parse_bytes(d, 0, msg, &p), -ENODATA);
	assert_int_equal(parse_bytes(d, 64, msg, &p), -ENODATA);
	assert_string_equal(msg, "truncated at offset 0x40 (no EOF record)");
	assert_int_equal(parse_bytes(d, 70, msg, &p), -ENODATA);
	assert_string_equal(msg, "truncated at offset 0x40 (no EOF record)");
	assert_int_equal(parse_bytes(d, 100, msg, &p), -ENODATA);
	assert_string_equal(msg, "record 0 at offset 0x40: truncated at offset 0x60 (no EOF record)");
	/* header alone, then EOF at once: a valid empty snapshot */
	{
		struct snap_stream *s;
		struct snap_writer w;
		const uint8_t *e;

		assert_int_equal(snap_stream_open_mem_write(&s), 0);
		assert_int_equal(snap_writer_begin(s, 0, 0, "", &w), 0);
		assert_int_equal(snap_writer_eof(&w), 0);
		e = snap_stream_mem_data(s, &len);
		assert_int_equal(len, 64 + 56);
		assert_int_equal(parse_bytes(e, len, msg, &p), 0);
		assert_int_equal(p.records, 1);
		assert_string_equal(p.hdr.writer, "");
		snap_stream_close(s);
	}
	free(d);
}

/* A page-aligned record in a file without the layout. */
static void test_aligned_without_layout(void **state)
{
	char msg[MSG_LEN];
	struct parsed p;
	size_t len;
	uint8_t *d = sample_bytes(SNAP_FLAG_PAGE_ALIGNED, &len);

	d[16] = 0;
	fix_file_header(d);
	assert_int_equal(parse_bytes(d, len, msg, &p), -EPROTO);
	assert_true(msg_match(msg, "record 3 (section 'ram' instance 0) at offset 0x~: "
			      "page-aligned record in a file without the page-aligned layout"));
	free(d);
}

/* ---- I/O errors -------------------------------------------------------- */

/* Fail each write call in turn: the writer reports it, nothing crashes,
 * and the stream cannot be committed. */
static void test_write_faults(void **state)
{
	unsigned long n;

	for (n = 1;; n++) {
		struct snap_stream *s;
		int err;

		assert_int_equal(snap_stream_open_mem_write(&s), 0);
		snap_stream_inject_fault(s, SNAP_FAULT_WRITE, n, EIO);
		err = sample_write(s, SNAP_FLAG_PAGE_ALIGNED);
		if (!err) {
			snap_stream_close(s);
			break;
		}
		assert_int_equal(err, -EIO);
		assert_int_equal(snap_stream_commit(s), -EIO);
	}
	print_message("    %lu write faults\n", n - 1);
	assert_true(n > 20);
}

/* Fail each read call in turn: the reader reports "read error at offset". */
static void test_read_faults(void **state)
{
	char msg[MSG_LEN];
	struct parsed p;
	size_t len;
	uint8_t *d = sample_bytes(SNAP_FLAG_PAGE_ALIGNED, &len);
	unsigned long n;

	for (n = 1;; n++) {
		struct snap_stream *s;
		int err;

		assert_int_equal(snap_stream_open_mem_read(d, len, &s), 0);
		snap_stream_inject_fault(s, SNAP_FAULT_READ, n, EIO);
		err = parse_stream(s, msg, &p);
		snap_stream_close(s);
		if (!err)
			break;
		if (err != -EIO || !strstr(msg, "read error at offset 0x") ||
		    !strstr(msg, strerror(EIO)))
			fail_msg("read fault %lu: %d '%s'", n, err, msg);
	}
	print_message("    %lu read faults\n", n - 1);
	assert_true(n > 20);
	free(d);
}

/* ---- fuzz seeds ------------------------------------------------------ */

static int write_seed(const char *dir, const char *name, const uint8_t *d, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(d, 1, len, f) != len) {
		perror(path);
		if (f)
			fclose(f);
		return 1;
	}
	return fclose(f) ? 1 : 0;
}

/* Valid files for tests/fuzz/corpus/fuzz_format/. */
static int write_seeds(const char *dir)
{
	size_t len;
	uint8_t *d;
	int bad = 0;
	struct snap_stream *s;
	struct snap_writer w;
	uint32_t id;

	d = sample_bytes(SNAP_FLAG_PAGE_ALIGNED, &len);
	bad |= write_seed(dir, "sample-aligned", d, len);
	free(d);
	d = sample_bytes(0, &len);
	bad |= write_seed(dir, "sample-stream", d, len);
	free(d);

	if (snap_stream_open_mem_write(&s))
		return 1;
	snap_writer_begin(s, 0, 0, "vmm 0.1.0", &w);
	snap_writer_eof(&w);
	d = (uint8_t *)snap_stream_mem_data(s, &len);
	bad |= write_seed(dir, "empty", d, len);
	snap_stream_close(s);

	if (snap_stream_open_mem_write(&s))
		return 1;
	snap_writer_begin(s, 0, 0, "vmm 0.1.0", &w);
	snap_writer_section_begin(&w, SNAP_REC_START, "a", 0, 1, &id);
	snap_writer_record_end(&w);
	snap_writer_section_begin(&w, SNAP_REC_START, "b", 1, 2, &id);
	snap_writer_record_end(&w);
	snap_writer_record_begin(&w, 1, SNAP_REC_PART);
	snap_writer_put_le32(&w, 7);
	snap_writer_record_end(&w);
	snap_writer_section_begin(&w, SNAP_REC_FULL, "c", 0, 1, &id);
	snap_writer_put_le64(&w, 5);
	snap_writer_record_end(&w);
	snap_writer_record_begin(&w, 2, SNAP_REC_END);
	snap_writer_record_end(&w);
	snap_writer_record_begin(&w, 1, SNAP_REC_END);
	snap_writer_record_end(&w);
	snap_writer_eof(&w);
	bad |= snap_writer_error(&w) != 0;
	d = (uint8_t *)snap_stream_mem_data(s, &len);
	bad |= write_seed(dir, "interleaved", d, len);
	snap_stream_close(s);
	return bad;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pad_len),
		cmocka_unit_test(test_header_roundtrip),
		cmocka_unit_test(test_writer_string_full_width),
		cmocka_unit_test(test_full_roundtrip),
		cmocka_unit_test(test_interleaved),
		cmocka_unit_test(test_sample_roundtrip),
		cmocka_unit_test(test_file_page_aligned),
		cmocka_unit_test(test_writer_refuses),
		cmocka_unit_test(test_truncate_everywhere),
		cmocka_unit_test(test_flip_everywhere),
		cmocka_unit_test(test_damage_table),
		cmocka_unit_test(test_reader_misuse),
		cmocka_unit_test(test_not_a_snapshot),
		cmocka_unit_test(test_aligned_without_layout),
		cmocka_unit_test(test_write_faults),
		cmocka_unit_test(test_read_faults),
	};

	if (argc == 3 && !strcmp(argv[1], "--write-seeds"))
		return write_seeds(argv[2]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
