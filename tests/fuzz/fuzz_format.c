/* libFuzzer target for snapshot/format_read.c: read arbitrary bytes as a
 * snapshot, the way a restore would (section data read or skipped, RAM
 * PART/END payloads as run lists, padding and pages). Must never crash,
 * hang or leak; every failure must be one of the documented errors with a
 * one-line message, and success must mean the input was consumed exactly.
 *
 * Each input is read twice: as it is, and with every checksum it holds
 * recomputed, so that mutations get past the CRCs to the checks behind
 * them (section ids, sequence, EOF fields, bounds, padding).
 * Build: see scripts/fuzz. Seeds: tests/fuzz/corpus/fuzz_format/, written by
 * `build/tests/unit/test_format --write-seeds DIR`. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/crc32c.h"
#include "snapshot/format.h"
#include "snapshot/stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t le_get(const uint8_t *p, unsigned int n)
{
	uint64_t v = 0;

	for (unsigned int i = n; i-- > 0;)
		v = v << 8 | p[i];
	return v;
}

static void le_put(uint8_t *p, uint64_t v, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Recompute the header CRC and every record's CRCs that lie in the input. */
static void fix_crcs(uint8_t *d, size_t n)
{
	size_t off = SNAP_FILE_HEADER_SIZE;

	if (n < SNAP_FILE_HEADER_SIZE)
		return;
	le_put(d + 60, crc32c(0, d, 60), 4);
	while (n - off >= SNAP_RECORD_HEADER_SIZE) {
		uint64_t len;

		le_put(d + off + 28, crc32c(0, d + off, 28), 4);
		len = le_get(d + off + 8, 8);
		if (len > n - off - SNAP_RECORD_HEADER_SIZE ||
		    n - off - SNAP_RECORD_HEADER_SIZE - len < 4)
			return;
		le_put(d + off + 32 + len, crc32c(0, d + off + 32, (size_t)len), 4);
		off += SNAP_RECORD_HEADER_SIZE + (size_t)len + 4;
	}
}

/* A RAM payload: runs, padding, then pages while they fit. */
static void read_ram(struct snap_reader *r, uint8_t *page)
{
	uint32_t n = snap_reader_get_le32(r);

	snap_reader_get_le32(r);
	if (n > 64) {
		snap_reader_skip_payload(r);
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		snap_reader_get_le64(r);
		snap_reader_get_le64(r);
	}
	snap_reader_get_pad(r);
	while (!snap_reader_error(r) && snap_reader_remaining(r) >= SNAP_PAGE_SIZE)
		snap_reader_get_pages(r, page, SNAP_PAGE_SIZE);
	snap_reader_skip_payload(r);
}

static void read_all(const uint8_t *data, size_t size)
{
	static uint8_t page[SNAP_PAGE_SIZE];
	struct snap_stream *s;
	struct snap_reader r;
	struct snap_record rec;
	char msg[256];
	unsigned int i = 0;
	int err;

	if (snap_stream_open_mem_read(data, size, &s))
		abort();
	err = snap_reader_begin(s, &r, msg, sizeof(msg));
	while (!err) {
		err = snap_reader_next(&r, &rec);
		if (err || rec.type == SNAP_REC_EOF)
			break;
		if (rec.type == SNAP_REC_START || rec.type == SNAP_REC_FULL) {
			if (rec.data_len > SNAP_FULL_MAX || !snap_reader_stream(&r))
				abort();
			/* read some through the stream, some through the reader */
			if (i++ % 2 && rec.data_len >= 4)
				snap_get_le32(snap_reader_stream(&r));
			snap_reader_skip_payload(&r);
		} else {
			if (rec.name[0] == '\0' || rec.payload_len > SNAP_PART_MAX)
				abort();
			read_ram(&r, page);
		}
		err = snap_reader_record_end(&r);
	}
	if (err) {
		if ((err != -EINVAL && err != -EPROTO && err != -ENODATA && err != -ENOMEM) ||
		    !msg[0] || strchr(msg, '\n') || snap_reader_error(&r) != err)
			abort();
	} else if (snap_stream_offset(s) != size || !snap_stream_at_eof(s)) {
		abort();
	}
	snap_reader_release(&r);
	snap_stream_close(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;

	read_all(data, size);
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	fix_crcs(copy, size);
	read_all(copy, size);
	free(copy);
	return 0;
}
