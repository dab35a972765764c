/* Guest RAM as the snapshot section "ram" (see ram.h and the "RAM" section
 * of docs/snapshot-format.md).
 *
 * Saving walks each RAM region of the memfd extent by extent
 * (SEEK_DATA/SEEK_HOLE), so never-touched RAM is neither read nor, as a
 * read fault on shmem would, allocated; inside an extent, zero pages are
 * left out and maximal runs of non-zero pages become data runs. Runs are
 * collected into records of at most RAM_RECORD_DATA_MAX bytes of page data,
 * each written with a declared length, its page data by reference from
 * guest RAM.
 *
 * Loading validates a record's whole run list against the VM's RAM before
 * writing a byte of guest RAM, then reads each run's pages straight into
 * place. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23   /* Linux 5.14; older kernels: EINVAL, harmless */
#endif
#include <unistd.h>

#include "snapshot/format.h"
#include "snapshot/ram.h"
#include "vmm/memory.h"

#define PG RAM_PAGE_SIZE
/* Runs a record holds at most on the writing side: every run has at least
 * one data page, so the data cap bounds them. */
#define RAM_BATCH_RUNS (RAM_RECORD_DATA_MAX / RAM_PAGE_SIZE)
/* The run list prefix: run_count, reserved. */
#define RAM_LIST_HEAD 8
#define RAM_RUN_SIZE  16
/* START data: ram_size, nregions, reserved, then the regions. */
#define RAM_LAYOUT_HEAD 16

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

/* 16-byte vectors (SSE2 on x86-64, NEON on arm64) through the GNU vector
 * extension; may_alias and aligned(1) make loads from any byte buffer legal. */
typedef uint64_t ram_vec __attribute__((vector_size(16), aligned(1), may_alias));

/* OR-reduce 128-byte chunks with early exit: a data page usually differs
 * from zero in its first chunk; a zero page costs one pass at memory speed
 * (measured on an AMD EPYC VM: ~25 GB/s from DRAM, ~80 GB/s from cache).
 * Written with vectors because GCC 12 at -O2 does not vectorise the scalar
 * form (which copied each chunk to the stack: 15 GB/s from cache). */
bool ram_page_is_zero(const void *p)
{
	const ram_vec *v = p;

	for (size_t i = 0; i < RAM_PAGE_SIZE / sizeof(ram_vec); i += 8) {
		ram_vec acc = v[i] | v[i + 1] | v[i + 2] | v[i + 3] | v[i + 4] | v[i + 5] |
			      v[i + 6] | v[i + 7];

		if (acc[0] | acc[1])
			return false;
	}
	return true;
}

/* ---- Saving ---------------------------------------------------------- */

struct ram_run {
	uint64_t gpa;
	uint64_t npages;
	const uint8_t *host;
};

/* The runs of the record being collected. */
struct ram_batch {
	struct snap_writer *w;
	uint32_t id;
	bool aligned;               /* the file has the page-aligned layout */
	bool brk;                   /* the next run may not extend the last (new region) */
	unsigned int n;
	uint64_t pages;
	struct ram_stats *st;
	struct ram_run runs[RAM_BATCH_RUNS];
	uint8_t list[RAM_LIST_HEAD + RAM_RUN_SIZE * RAM_BATCH_RUNS];
};

/* Emit the collected runs as one PART or END record and start afresh.
 * A record without page data needs no padding, so it is never aligned. */
static int ram_batch_emit(struct ram_batch *b, enum snap_rec_type type)
{
	uint64_t prefix = RAM_LIST_HEAD + (uint64_t)RAM_RUN_SIZE * b->n, data = b->pages * PG;
	bool aligned = b->aligned && data;
	uint64_t pad = aligned ? snap_writer_pad_len(b->w, prefix) : 0;
	uint8_t *q = b->list;
	int err;

	le_put(q, b->n, 4);
	le_put(q + 4, 0, 4);
	q += RAM_LIST_HEAD;
	for (unsigned int i = 0; i < b->n; i++, q += RAM_RUN_SIZE) {
		le_put(q, b->runs[i].gpa, 8);
		le_put(q + 8, b->runs[i].npages | (uint64_t)RAM_RUN_DATA << 56, 8);
	}
	snap_writer_part_begin(b->w, b->id, type, prefix + pad + data, aligned);
	snap_writer_put_bytes(b->w, b->list, (size_t)prefix);
	snap_writer_put_pad(b->w);
	for (unsigned int i = 0; i < b->n; i++)
		snap_writer_put_pages(b->w, b->runs[i].host, (size_t)(b->runs[i].npages * PG));
	err = snap_writer_record_end(b->w);
	if (err)
		return err;
	b->st->records++;
	b->st->runs += b->n;
	b->st->pages_data += b->pages;
	b->st->bytes_data += data;
	b->n = 0;
	b->pages = 0;
	return 0;
}

/* Add npages non-zero pages at gpa (host), splitting at the record cap. */
static int ram_batch_add(struct ram_batch *b, uint64_t gpa, const uint8_t *host,
			 uint64_t npages)
{
	while (npages) {
		struct ram_run *last = b->n ? &b->runs[b->n - 1] : NULL;
		uint64_t k = RAM_BATCH_RUNS - b->pages;
		int err;

		if (k > npages)
			k = npages;
		if (last && !b->brk && last->gpa + last->npages * PG == gpa)
			last->npages += k;
		else
			b->runs[b->n++] = (struct ram_run){ gpa, k, host };
		b->brk = false;
		b->pages += k;
		gpa += k * PG;
		host += k * PG;
		npages -= k;
		if (b->pages == RAM_BATCH_RUNS) {
			err = ram_batch_emit(b, SNAP_REC_PART);
			if (err)
				return err;
		}
	}
	return 0;
}

/* The next extent boundary of the memfd at or after off (SEEK_DATA or
 * SEEK_HOLE), page-rounded outward and clamped to [off, end]. Without a
 * memfd, or where the file system cannot tell, everything is data. The
 * memfd's file offset is not used by anyone else (RAM is mmap'ed). */
static uint64_t ram_seek(const struct guest_mem *mem, uint64_t off, uint64_t end, int whence)
{
	off_t r;
	uint64_t v;

	if (mem->memfd < 0)
		return whence == SEEK_DATA ? off : end;
	r = lseek(mem->memfd, (off_t)off, whence);
	if (r < 0)   /* ENXIO: no data at or after off */
		return whence == SEEK_DATA && errno != ENXIO ? off : end;
	v = (uint64_t)r;
	v = whence == SEEK_DATA ? v & ~(PG - 1) : (v + PG - 1) & ~(PG - 1);
	return v < off ? off : v > end ? end : v;
}

/* Runs of non-zero pages of one region. */
static int ram_save_region(struct ram_batch *b, const struct guest_mem *mem,
			   const struct guest_mem_region *reg)
{
	uint64_t off = reg->offset, end = reg->offset + reg->size;
	int err;

	b->brk = true;
	while (off < end) {
		uint64_t p = ram_seek(mem, off, end, SEEK_DATA);
		uint64_t e = ram_seek(mem, p, end, SEEK_HOLE);

		if (p >= end)
			break;
		if (e <= p)     /* cannot happen; make progress regardless */
			e = end;
		while (p < e) {
			uint64_t q;

			while (p < e && ram_page_is_zero(mem->host + p))
				p += PG;
			for (q = p; q < e && !ram_page_is_zero(mem->host + q); q += PG)
				;
			if (q > p) {
				err = ram_batch_add(b, reg->gpa + (p - reg->offset), mem->host + p,
						    (q - p) / PG);
				if (err)
					return err;
			}
			p = q;
		}
		off = e;
	}
	return 0;
}

/* The layout is page-granular and the regions tile the memfd in order. */
static bool ram_layout_valid(const struct guest_mem *mem)
{
	uint64_t off = 0;

	if (!mem->host || mem->nregions < 1 || mem->nregions > GUEST_MEM_MAX_REGIONS)
		return false;
	for (unsigned int i = 0; i < mem->nregions; i++) {
		const struct guest_mem_region *reg = &mem->regions[i];

		if ((reg->gpa | reg->size) & (PG - 1) || reg->offset != off)
			return false;
		off += reg->size;
	}
	return off == mem->size;
}

int ram_save(struct snap_writer *w, struct guest_mem *mem, struct ram_stats *stats)
{
	struct ram_stats st = { 0 };
	struct ram_batch *b = NULL;
	uint32_t id = 0;
	int err;

	if (!ram_layout_valid(mem)) {
		err = -EINVAL;
		goto out;
	}
	st.pages_total = mem->size / PG;
	snap_writer_section_begin(w, SNAP_REC_START, RAM_SECTION_NAME, 0, RAM_SECTION_VERSION, &id);
	snap_writer_put_le64(w, mem->size);
	snap_writer_put_le32(w, mem->nregions);
	snap_writer_put_le32(w, 0);
	for (unsigned int i = 0; i < mem->nregions; i++) {
		snap_writer_put_le64(w, mem->regions[i].gpa);
		snap_writer_put_le64(w, mem->regions[i].size);
	}
	err = snap_writer_record_end(w);
	if (err)
		goto out;
	st.records++;
	b = calloc(1, sizeof(*b));
	if (!b) {
		err = -ENOMEM;
		goto out;
	}
	b->w = w;
	b->id = id;
	b->aligned = w->flags & SNAP_FLAG_PAGE_ALIGNED;
	b->st = &st;
	for (unsigned int i = 0; i < mem->nregions; i++) {
		err = ram_save_region(b, mem, &mem->regions[i]);
		if (err)
			goto out;
	}
	err = ram_batch_emit(b, SNAP_REC_END);
out:
	free(b);
	st.pages_zero = st.pages_total - st.pages_data;
	if (stats)
		*stats = st;
	return err;
}

/* ---- Loading --------------------------------------------------------- */

/* Fail with err and "record 7 (section 'ram' instance 0) at offset 0x...: <what>". */
__attribute__((format(printf, 5, 6)))
static int ram_fail(const struct snap_record *rec, int code, char *err, size_t errlen,
		    const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!err || !errlen)
		return code;
	n = snprintf(err, errlen, "record %llu (section '%s' instance %u) at offset 0x%llx: ",
		     (unsigned long long)rec->seq, rec->name, rec->instance,
		     (unsigned long long)rec->offset);
	if (n < 0 || (size_t)n >= errlen)
		return code;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return code;
}

/* The reader's sticky error, its message copied to err (it already names
 * the record and offset). */
static int ram_reader_fail(struct snap_reader *r, char *err, size_t errlen)
{
	if (err && errlen && r->msg != err)
		snprintf(err, errlen, "%s", r->msg && r->msg[0] ? r->msg : strerror(-r->err));
	return r->err;
}

/* "256 MiB", "5 GiB", or bytes when not a whole number of MiB. */
static const char *ram_size_str(char *buf, size_t len, uint64_t v)
{
	if (v && !(v & ((1ULL << 30) - 1)))
		snprintf(buf, len, "%llu GiB", (unsigned long long)(v >> 30));
	else if (v && !(v & ((1ULL << 20) - 1)))
		snprintf(buf, len, "%llu MiB", (unsigned long long)(v >> 20));
	else
		snprintf(buf, len, "%llu bytes", (unsigned long long)v);
	return buf;
}

/* START: the snapshot's layout must equal this VM's exactly. */
static int ram_load_layout(struct snap_reader *r, const struct snap_record *rec,
			   struct guest_mem *mem, struct ram_stats *st, char *err, size_t errlen)
{
	struct guest_mem_region regs[RAM_REGIONS_MAX];
	uint64_t size, expect;
	uint32_t n, reserved;
	char a[32], b[32];

	if (rec->data_len < RAM_LAYOUT_HEAD)
		return ram_fail(rec, -EINVAL, err, errlen, "START data is %llu bytes, too short for a RAM layout",
				(unsigned long long)rec->data_len);
	size = snap_reader_get_le64(r);
	n = snap_reader_get_le32(r);
	reserved = snap_reader_get_le32(r);
	if (snap_reader_error(r))
		return ram_reader_fail(r, err, errlen);
	if (reserved)
		return ram_fail(rec, -EINVAL, err, errlen, "RAM layout reserved field 0x%x not zero", reserved);
	if (n < 1 || n > RAM_REGIONS_MAX)
		return ram_fail(rec, -EINVAL, err, errlen, "RAM layout has %u regions (1 to %u allowed)",
				n, RAM_REGIONS_MAX);
	expect = RAM_LAYOUT_HEAD + (uint64_t)RAM_RUN_SIZE * n;
	if (rec->data_len != expect)
		return ram_fail(rec, -EINVAL, err, errlen,
				"RAM layout of %u regions is %llu bytes, but START holds %llu", n,
				(unsigned long long)expect, (unsigned long long)rec->data_len);
	for (uint32_t i = 0; i < n; i++) {
		regs[i].gpa = snap_reader_get_le64(r);
		regs[i].size = snap_reader_get_le64(r);
	}
	if (snap_reader_error(r))
		return ram_reader_fail(r, err, errlen);
	if (size != mem->size)
		return ram_fail(rec, -EPROTO, err, errlen, "snapshot RAM is %s, this VM has %s",
				ram_size_str(a, sizeof(a), size), ram_size_str(b, sizeof(b), mem->size));
	if (n != mem->nregions)
		return ram_fail(rec, -EPROTO, err, errlen,
				"snapshot RAM has %u regions, this VM has %u", n, mem->nregions);
	for (uint32_t i = 0; i < n; i++)
		if (regs[i].gpa != mem->regions[i].gpa || regs[i].size != mem->regions[i].size)
			return ram_fail(rec, -EPROTO, err, errlen,
					"snapshot RAM region %u is 0x%llx+0x%llx, this VM's is 0x%llx+0x%llx",
					i, (unsigned long long)regs[i].gpa,
					(unsigned long long)regs[i].size,
					(unsigned long long)mem->regions[i].gpa,
					(unsigned long long)mem->regions[i].size);
	if (snap_reader_record_end(r))
		return ram_reader_fail(r, err, errlen);
	st->pages_total = size / PG;
	st->records++;
	return 0;
}

/* One run of a run list, decoded. */
static void ram_run_decode(const uint8_t *p, uint64_t *gpa, uint64_t *npages, unsigned int *kind)
{
	uint64_t v = le_get(p + 8, 8);

	*gpa = le_get(p, 8);
	*npages = v & RAM_RUN_NPAGES_MASK;
	*kind = (unsigned int)(v >> 56);
}

/* A run not inside one RAM region: say whether it starts outside RAM or
 * runs past the end of the region it starts in (into the MMIO hole, or
 * past the top of RAM). */
static int ram_fail_outside(const struct snap_record *rec, const struct guest_mem *mem,
			    uint32_t i, uint64_t gpa, uint64_t npages, char *err, size_t errlen)
{
	for (unsigned int k = 0; k < mem->nregions; k++) {
		const struct guest_mem_region *reg = &mem->regions[k];

		if (gpa >= reg->gpa && gpa - reg->gpa < reg->size)
			return ram_fail(rec, -EINVAL, err, errlen,
					"run %u: gpa 0x%llx + %llu pages runs past the end of RAM region %u at 0x%llx",
					i, (unsigned long long)gpa, (unsigned long long)npages, k,
					(unsigned long long)(reg->gpa + reg->size));
	}
	return ram_fail(rec, -EINVAL, err, errlen, "run %u: gpa 0x%llx + %llu pages is outside guest RAM",
			i, (unsigned long long)gpa, (unsigned long long)npages);
}

/* Check every run of the list against mem (nothing is written); *data
 * gets the page data bytes they announce, bounded by payload_len. */
static int ram_check_runs(const struct snap_record *rec, const struct guest_mem *mem,
			  const uint8_t *list, uint32_t n, uint64_t *data, char *err, size_t errlen)
{
	*data = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t gpa, npages;
		unsigned int kind;

		ram_run_decode(list + (size_t)RAM_RUN_SIZE * i, &gpa, &npages, &kind);
		if (kind != RAM_RUN_DATA && kind != RAM_RUN_ZERO)
			return ram_fail(rec, -EINVAL, err, errlen, "run %u at gpa 0x%llx: unknown kind %u",
					i, (unsigned long long)gpa, kind);
		if (npages == 0)
			return ram_fail(rec, -EINVAL, err, errlen, "run %u at gpa 0x%llx: no pages",
					i, (unsigned long long)gpa);
		if (gpa & (PG - 1))
			return ram_fail(rec, -EINVAL, err, errlen, "run %u: gpa 0x%llx not 4 KiB aligned",
					i, (unsigned long long)gpa);
		/* bounded by the RAM size first, so npages * 4096 cannot overflow */
		if (npages > mem->size / PG || !guest_mem_ptr(mem, gpa, npages * PG))
			return ram_fail_outside(rec, mem, i, gpa, npages, err, errlen);
		if (kind == RAM_RUN_DATA) {
			if (npages * PG > rec->payload_len - *data)
				return ram_fail(rec, -EINVAL, err, errlen,
						"run %u: %llu pages of data do not fit the %llu-byte payload",
						i, (unsigned long long)npages,
						(unsigned long long)rec->payload_len);
			*data += npages * PG;
		}
	}
	return 0;
}

/* Populating the memfd pages of a record's data runs on a second thread,
 * ahead of the reads that fill them: faulting an empty memfd in page by page
 * from inside the O_DIRECT reads costs about as much as the reads. */
struct ram_populate {
	pthread_t thread;
	struct guest_mem *mem;
	const uint8_t *list;
	uint32_t n;
	volatile bool stop;
};

static void *ram_populate_thread(void *arg)
{
	struct ram_populate *p = arg;

	for (uint32_t i = 0; i < p->n && !p->stop; i++) {
		uint64_t gpa, npages;
		unsigned int kind;

		ram_run_decode(p->list + (size_t)RAM_RUN_SIZE * i, &gpa, &npages, &kind);
		if (kind != RAM_RUN_DATA)
			continue;
		/* In 2 MiB steps, so a stop request is seen soon. */
		for (uint64_t off = 0; off < npages * PG && !p->stop; off += 2 << 20) {
			uint64_t chunk = npages * PG - off < (2 << 20) ? npages * PG - off : 2 << 20;

			madvise(guest_mem_ptr(p->mem, gpa + off, chunk), chunk, MADV_POPULATE_WRITE);
		}
	}
	return NULL;
}

/* Write the validated runs: page data read into place, zero runs zeroed
 * (a hole punched in the memfd frees the pages; memset otherwise). */
static int ram_apply_runs(struct snap_reader *r, struct guest_mem *mem, const uint8_t *list,
			  uint32_t n, struct ram_stats *st)
{
	struct ram_populate pop = { .mem = mem, .list = list, .n = n };
	bool threaded = pthread_create(&pop.thread, NULL, ram_populate_thread, &pop) == 0;
	int err = 0;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t gpa, npages, len;
		unsigned int kind;
		uint8_t *host;

		ram_run_decode(list + (size_t)RAM_RUN_SIZE * i, &gpa, &npages, &kind);
		len = npages * PG;
		host = guest_mem_ptr(mem, gpa, len);
		if (kind == RAM_RUN_DATA) {
			snap_reader_get_pages(r, host, (size_t)len);
			err = snap_reader_error(r);
			if (err)
				break;
			st->pages_data += npages;
			st->bytes_data += len;
		} else {
			if (mem->memfd < 0 ||
			    fallocate(mem->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				      (off_t)(host - mem->host), (off_t)len))
				memset(host, 0, (size_t)len);
			st->pages_zero += npages;
		}
		guest_mem_mark_dirty(mem, gpa, len);
		st->runs++;
	}
	if (threaded) {
		pop.stop = true;
		pthread_join(pop.thread, NULL);
	}
	return err;
}

/* PART/END: run list, checks, padding, page data, CRC. */
static int ram_load_runs(struct snap_reader *r, const struct snap_record *rec,
			 struct guest_mem *mem, struct ram_stats *st, char *err, size_t errlen)
{
	uint64_t plen = rec->payload_len, prefix, pad, data;
	uint8_t *list = NULL;
	uint32_t n, reserved;
	int ret;

	if (plen < RAM_LIST_HEAD)
		return ram_fail(rec, -EINVAL, err, errlen, "payload_len %llu too short for a run list",
				(unsigned long long)plen);
	n = snap_reader_get_le32(r);
	reserved = snap_reader_get_le32(r);
	if (snap_reader_error(r))
		return ram_reader_fail(r, err, errlen);
	if (reserved)
		return ram_fail(rec, -EINVAL, err, errlen, "run list reserved field 0x%x not zero", reserved);
	if (n > RAM_RUNS_MAX)
		return ram_fail(rec, -EINVAL, err, errlen, "run_count %u over the bound (%u)", n,
				RAM_RUNS_MAX);
	prefix = RAM_LIST_HEAD + (uint64_t)RAM_RUN_SIZE * n;
	if (prefix > plen)
		return ram_fail(rec, -EINVAL, err, errlen, "run_count %u needs %llu bytes, payload_len is %llu",
				n, (unsigned long long)prefix, (unsigned long long)plen);
	if (n) {
		list = malloc((size_t)RAM_RUN_SIZE * n);
		if (!list)
			return ram_fail(rec, -ENOMEM, err, errlen, "out of memory for %u runs", n);
		snap_reader_get_bytes(r, list, (size_t)RAM_RUN_SIZE * n);
		if (snap_reader_error(r)) {
			ret = ram_reader_fail(r, err, errlen);
			goto out;
		}
	}
	ret = ram_check_runs(rec, mem, list, n, &data, err, errlen);
	if (ret)
		goto out;
	pad = rec->flags & SNAP_REC_FLAG_PAGE_ALIGNED ? snap_format_pad_len(rec->offset, prefix) : 0;
	if (plen != prefix + pad + data) {
		ret = ram_fail(rec, -EINVAL, err, errlen,
			       "payload_len %llu, but %u runs with %llu bytes of data make %llu",
			       (unsigned long long)plen, n, (unsigned long long)data,
			       (unsigned long long)(prefix + pad + data));
		goto out;
	}
	snap_reader_get_pad(r);
	if (snap_reader_error(r) || ram_apply_runs(r, mem, list, n, st) ||
	    snap_reader_record_end(r)) {
		ret = ram_reader_fail(r, err, errlen);
		goto out;
	}
	st->records++;
out:
	free(list);
	return ret;
}

int ram_load_record(struct snap_reader *r, const struct snap_record *rec, struct guest_mem *mem,
		    struct ram_stats *stats, char *err, size_t errlen)
{
	struct ram_stats scratch = { 0 };

	if (err && errlen)
		err[0] = '\0';
	if (!stats)
		stats = &scratch;
	if (strcmp(rec->name, RAM_SECTION_NAME) || rec->instance != 0)
		return ram_fail(rec, -EPROTO, err, errlen, "not the RAM section ('%s' instance 0)",
				RAM_SECTION_NAME);
	if (rec->version != RAM_SECTION_VERSION)
		return ram_fail(rec, -EPROTO, err, errlen,
				"section 'ram' version %u, this vmm supports %u", rec->version,
				RAM_SECTION_VERSION);
	switch (rec->type) {
	case SNAP_REC_START:
		return ram_load_layout(r, rec, mem, stats, err, errlen);
	case SNAP_REC_PART:
	case SNAP_REC_END:
		return ram_load_runs(r, rec, mem, stats, err, errlen);
	default:
		return ram_fail(rec, -EPROTO, err, errlen, "a RAM section has no %s records",
				rec->type == SNAP_REC_FULL ? "FULL" : "EOF");
	}
}
