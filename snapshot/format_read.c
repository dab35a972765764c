/* The snapshot format's record layer, reading half: every check of
 * docs/snapshot-format.md that does not need to know what a section
 * contains, each failure a one-line message with the record, its section
 * and the byte offset. START/FULL payloads are read whole and CRC-checked
 * before anything is handed out; PART/END payloads are streamed. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/crc32c.h"
#include "snapshot/format.h"
#include "snapshot/stream.h"

static const uint8_t snap_magic[8] = { 0x89, 'V', 'M', 'M', 'S', 'N', 'A', 'P' };
static const uint8_t snap_magic2[4] = { 0x0d, 0x0a, 0x1a, 0x0a };

/* Identity of a START/FULL payload: u16 name_len, name, u32 instance,
 * u32 version. */
#define IDENTITY_FIXED 10

static uint64_t le_get(const uint8_t *p, unsigned int n)
{
	uint64_t v = 0;

	for (unsigned int i = n; i-- > 0;)
		v = v << 8 | p[i];
	return v;
}

static const char *type_name(unsigned int type)
{
	static const char *const names[] = { "?", "START", "PART", "END", "FULL", "EOF" };

	return type < sizeof(names) / sizeof(names[0]) ? names[type] : "?";
}

static uint64_t reader_offset(const struct snap_reader *r)
{
	return snap_stream_offset(r->s) - r->base;
}

/* Record the first error with its message: "record 7 (section 'cpu'
 * instance 1) at offset 0x1f40: <what>" inside a record, "<what>" for the
 * file header or at a record boundary. */
__attribute__((format(printf, 4, 5)))
static int reader_fail(struct snap_reader *r, int err, bool in_record, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (r->err)
		return r->err;
	r->err = err;
	snap_stream_set_error(r->s, err);
	if (!r->msg || !r->msglen)
		return err;
	if (in_record && r->rec.name[0])
		n = snprintf(r->msg, r->msglen, "record %llu (section '%s' instance %u) at offset 0x%llx: ",
			     (unsigned long long)r->rec.seq, r->rec.name, r->rec.instance,
			     (unsigned long long)r->rec.offset);
	else if (in_record)
		n = snprintf(r->msg, r->msglen, "record %llu at offset 0x%llx: ",
			     (unsigned long long)r->rec.seq, (unsigned long long)r->rec.offset);
	if (n < 0 || (size_t)n >= r->msglen)
		return err;
	va_start(ap, fmt);
	vsnprintf(r->msg + n, r->msglen - (size_t)n, fmt, ap);
	va_end(ap);
	return err;
}

/* A record-level failure (the current record gives the context). */
#define rec_fail(r, err, ...) reader_fail(r, err, true, __VA_ARGS__)

/* Turn a stream error into the reader's, truncation worded as such; the
 * record context is left out when the failed read began the record. */
static int reader_stream_fail(struct snap_reader *r, uint64_t off)
{
	int err = snap_stream_error(r->s);
	bool ctx = r->state != SNAP_R_BEGIN && (r->state != SNAP_R_IDLE || off != r->rec.offset);

	if (err == -ENODATA)
		return reader_fail(r, err, ctx, "truncated at offset 0x%llx (no EOF record)",
				   (unsigned long long)off);
	return reader_fail(r, err, ctx, "read error at offset 0x%llx: %s",
			   (unsigned long long)off, strerror(-err));
}

/* Read exactly len bytes from the file, or fail with the reader's error. */
static bool reader_read(struct snap_reader *r, void *buf, size_t len, bool pages)
{
	uint64_t off = reader_offset(r);

	if (pages)
		snap_get_pages(r->s, buf, len);
	else
		snap_get_bytes(r->s, buf, len);
	if (!snap_stream_error(r->s))
		return true;
	reader_stream_fail(r, off);
	return false;
}

static bool header_writer_valid(const uint8_t *p)
{
	size_t i = 0;

	while (i < SNAP_WRITER_MAX && p[i] >= 0x20 && p[i] <= 0x7e)
		i++;
	while (i < SNAP_WRITER_MAX && p[i] == 0)
		i++;
	return i == SNAP_WRITER_MAX;
}

int snap_reader_begin(struct snap_stream *s, struct snap_reader *r, char *err, size_t errlen)
{
	uint8_t h[SNAP_FILE_HEADER_SIZE];
	uint32_t version, flags, size;

	memset(r, 0, sizeof(*r));
	r->s = s;
	r->msg = err;
	r->msglen = errlen;
	r->base = snap_stream_offset(s);
	if (err && errlen)
		err[0] = '\0';
	if (snap_stream_error(s))
		return reader_stream_fail(r, 0);
	/* magic and magic2 first, so that a short non-snapshot file is
	 * called that rather than "truncated" */
	if (!reader_read(r, h, 12, false))
		return r->err;
	if (memcmp(h, snap_magic, sizeof(snap_magic)))
		return reader_fail(r, -EINVAL, false, "not a vmm snapshot (bad magic)");
	if (memcmp(h + 8, snap_magic2, sizeof(snap_magic2)))
		return reader_fail(r, -EINVAL, false,
				   "not a vmm snapshot (bad magic2: mangled by a text-mode transfer?)");
	if (!reader_read(r, h + 12, sizeof(h) - 12, false))
		return r->err;
	/* the version before the CRC: a newer version may lay out the rest
	 * of its header differently */
	version = (uint32_t)le_get(h + 12, 4);
	if (version > SNAP_FORMAT_VERSION)
		return reader_fail(r, -EPROTO, false,
				   "snapshot format version %u is newer than this vmm supports (%u)",
				   version, SNAP_FORMAT_VERSION);
	if (le_get(h + 60, 4) != crc32c(0, h, 60))
		return reader_fail(r, -EINVAL, false, "header checksum mismatch");
	if (version == 0)
		return reader_fail(r, -EINVAL, false, "snapshot format version 0 is invalid");
	size = (uint32_t)le_get(h + 20, 4);
	if (size != SNAP_FILE_HEADER_SIZE)
		return reader_fail(r, -EINVAL, false, "header size %u, expected %u", size,
				   SNAP_FILE_HEADER_SIZE);
	flags = (uint32_t)le_get(h + 16, 4);
	if (flags & ~SNAP_FLAGS_KNOWN)
		return reader_fail(r, -EPROTO, false,
				   "snapshot uses unknown flags 0x%x (this vmm knows 0x%x)",
				   flags & ~SNAP_FLAGS_KNOWN, SNAP_FLAGS_KNOWN);
	if (le_get(h + 48, 8) || le_get(h + 56, 4))
		return reader_fail(r, -EINVAL, false, "header reserved bytes not zero");
	if (!header_writer_valid(h + 32))
		return reader_fail(r, -EINVAL, false,
				   "header writer string is not NUL-padded printable ASCII");
	r->hdr.format_version = version;
	r->hdr.flags = flags;
	r->hdr.created_ns = le_get(h + 24, 8);
	memcpy(r->hdr.writer, h + 32, SNAP_WRITER_MAX);
	r->hdr.writer[SNAP_WRITER_MAX] = '\0';
	r->state = SNAP_R_IDLE;
	return 0;
}

/* Header fields of a record that need no payload: type, flags, reserved,
 * sequence, payload bound. */
static int reader_check_header(struct snap_reader *r, const uint8_t *h)
{
	struct snap_record *rec = &r->rec;
	unsigned int type = h[0];
	uint64_t seq;

	if (le_get(h + 28, 4) != crc32c(0, h, 28))
		return rec_fail(r, -EINVAL, "header checksum mismatch");
	if (type < SNAP_REC_START || type > SNAP_REC_EOF)
		return rec_fail(r, -EINVAL, "unknown record type %u", type);
	rec->type = (enum snap_rec_type)type;
	rec->flags = h[1];
	rec->section_id = (uint32_t)le_get(h + 4, 4);
	rec->payload_len = le_get(h + 8, 8);
	seq = le_get(h + 16, 8);
	if (le_get(h + 2, 2) || le_get(h + 24, 4))
		return rec_fail(r, -EINVAL, "reserved header bytes not zero");
	if (seq != r->seq)
		return rec_fail(r, -EINVAL, "record_seq %llu out of order (expected %llu)",
				(unsigned long long)seq, (unsigned long long)r->seq);
	if (rec->flags & ~SNAP_REC_FLAG_PAGE_ALIGNED)
		return rec_fail(r, -EINVAL, "unknown record flags 0x%x", rec->flags);
	if (rec->flags && type != SNAP_REC_PART && type != SNAP_REC_END)
		return rec_fail(r, -EINVAL, "page-aligned flag on a %s record", type_name(type));
	switch (type) {
	case SNAP_REC_START:
	case SNAP_REC_FULL:
		if (rec->payload_len > SNAP_FULL_MAX)
			return rec_fail(r, -EINVAL, "%s payload_len %llu over the bound (%llu)",
					type_name(type), (unsigned long long)rec->payload_len,
					(unsigned long long)SNAP_FULL_MAX);
		if (rec->payload_len < IDENTITY_FIXED + 1)
			return rec_fail(r, -EINVAL, "%s payload_len %llu too short for a section identity",
					type_name(type), (unsigned long long)rec->payload_len);
		break;
	case SNAP_REC_PART:
	case SNAP_REC_END:
		if (rec->payload_len > SNAP_PART_MAX)
			return rec_fail(r, -EINVAL, "%s payload_len %llu over the bound (%llu)",
					type_name(type), (unsigned long long)rec->payload_len,
					(unsigned long long)SNAP_PART_MAX);
		break;
	default:
		if (rec->payload_len != SNAP_EOF_PAYLOAD_LEN)
			return rec_fail(r, -EINVAL, "EOF payload_len %llu, expected %u",
					(unsigned long long)rec->payload_len, SNAP_EOF_PAYLOAD_LEN);
		if (rec->section_id)
			return rec_fail(r, -EINVAL, "EOF record with section id %u", rec->section_id);
	}
	return 0;
}

/* The section-id rules: START/FULL define the next id (1, 2, 3, ...);
 * PART/END continue an open START-ed section. */
static int reader_check_section(struct snap_reader *r)
{
	struct snap_record *rec = &r->rec;
	const struct snap_reader_section *sec;
	uint32_t id = rec->section_id;

	switch (rec->type) {
	case SNAP_REC_START:
	case SNAP_REC_FULL:
		if (id >= 1 && id <= r->nsections) {
			sec = &r->sec[id - 1];
			return rec_fail(r, -EPROTO, "section id %u reused (already section '%s' instance %u)",
					id, sec->name, sec->instance);
		}
		if (id != r->nsections + 1)
			return rec_fail(r, -EPROTO, "section id %u out of order (expected %u)", id,
					r->nsections + 1);
		if (r->nsections >= SNAP_MAX_SECTIONS_PER_FILE)
			return rec_fail(r, -EPROTO, "more than %u sections",
					SNAP_MAX_SECTIONS_PER_FILE);
		return 0;
	case SNAP_REC_PART:
	case SNAP_REC_END:
		if (id == 0 || id > r->nsections)
			return rec_fail(r, -EPROTO, "%s for unknown section id %u",
					type_name(rec->type), id);
		sec = &r->sec[id - 1];
		memcpy(rec->name, sec->name, sizeof(rec->name));
		rec->instance = sec->instance;
		rec->version = sec->version;
		if (sec->type != SNAP_REC_START)
			return rec_fail(r, -EPROTO, "%s for section id %u, a FULL section",
					type_name(rec->type), id);
		if (sec->ended)
			return rec_fail(r, -EPROTO, "%s for section id %u after its END",
					type_name(rec->type), id);
		if (rec->flags && !(r->hdr.flags & SNAP_FLAG_PAGE_ALIGNED))
			return rec_fail(r, -EPROTO,
					"page-aligned record in a file without the page-aligned layout");
		return 0;
	default:
		return 0;
	}
}

/* A START/FULL payload: read it whole (growing the buffer only as data
 * arrives, so a false length on a short input costs nothing), check its
 * CRC, parse the identity, and keep the section data as a memory stream. */
static int reader_read_buffered(struct snap_reader *r)
{
	struct snap_record *rec = &r->rec;
	size_t len = (size_t)rec->payload_len, got = 0, name_len;
	uint8_t *buf = NULL, crcb[4];
	struct snap_reader_section *sec;
	int err;

	while (got < len) {
		size_t chunk = len - got, cap = got < 65536 ? 65536 : got;
		uint8_t *p;

		if (chunk > cap)
			chunk = cap;
		p = realloc(buf, got + chunk);
		if (!p) {
			free(buf);
			return rec_fail(r, -ENOMEM, "out of memory for a %zu-byte payload", len);
		}
		buf = p;
		if (!reader_read(r, buf + got, chunk, false))
			goto out_free;
		got += chunk;
	}
	if (!reader_read(r, crcb, sizeof(crcb), false))
		goto out_free;
	if (le_get(crcb, 4) != crc32c(0, buf, len)) {
		rec_fail(r, -EINVAL, "payload checksum mismatch");
		goto out_free;
	}
	name_len = (size_t)le_get(buf, 2);
	if (name_len < 1 || name_len > SNAP_SECTION_NAME_MAX || IDENTITY_FIXED + name_len > len) {
		rec_fail(r, -EINVAL, "section name length %zu out of range", name_len);
		goto out_free;
	}
	if (!snap_format_name_valid((const char *)buf + 2, name_len)) {
		rec_fail(r, -EINVAL, "section name is not [a-z0-9_.-]");
		goto out_free;
	}
	memcpy(rec->name, buf + 2, name_len);
	rec->name[name_len] = '\0';
	rec->instance = (uint32_t)le_get(buf + 2 + name_len, 4);
	rec->version = (uint32_t)le_get(buf + 6 + name_len, 4);
	rec->data_len = len - IDENTITY_FIXED - name_len;
	if (r->nsections == r->cap) {
		uint32_t cap = r->cap ? r->cap * 2 : 16;
		struct snap_reader_section *p = realloc(r->sec, cap * sizeof(*p));

		if (!p) {
			rec_fail(r, -ENOMEM, "out of memory for the section table");
			goto out_free;
		}
		r->sec = p;
		r->cap = cap;
	}
	err = snap_stream_open_mem_read(buf + IDENTITY_FIXED + name_len, (size_t)rec->data_len,
					&r->data);
	if (err) {
		rec_fail(r, err, "out of memory for the section data");
		goto out_free;
	}
	free(buf);
	sec = &r->sec[r->nsections++];
	memcpy(sec->name, rec->name, sizeof(sec->name));
	sec->instance = rec->instance;
	sec->version = rec->version;
	sec->type = (uint8_t)rec->type;
	sec->ended = false;
	if (rec->type == SNAP_REC_START)
		r->nopen++;
	r->state = SNAP_R_BUFFERED;
	return 0;
out_free:
	free(buf);
	return r->err;
}

/* The EOF record: its payload, its fields, every section ENDed, and
 * nothing after it. */
static int reader_read_eof(struct snap_reader *r)
{
	struct snap_record *rec = &r->rec;
	uint8_t p[SNAP_EOF_PAYLOAD_LEN + 4];

	if (!reader_read(r, p, sizeof(p), false))
		return r->err;
	if (le_get(p + SNAP_EOF_PAYLOAD_LEN, 4) != crc32c(0, p, SNAP_EOF_PAYLOAD_LEN))
		return rec_fail(r, -EINVAL, "payload checksum mismatch");
	rec->eof_record_count = le_get(p, 8);
	rec->eof_total_bytes = le_get(p + 8, 8);
	rec->eof_sections = (uint32_t)le_get(p + 16, 4);
	if (rec->eof_record_count != rec->seq)
		return rec_fail(r, -EINVAL, "EOF record_count %llu, but %llu records precede it",
				(unsigned long long)rec->eof_record_count,
				(unsigned long long)rec->seq);
	if (rec->eof_total_bytes != rec->offset)
		return rec_fail(r, -EINVAL, "EOF total_bytes 0x%llx, but the record is at 0x%llx",
				(unsigned long long)rec->eof_total_bytes,
				(unsigned long long)rec->offset);
	if (rec->eof_sections != r->nsections)
		return rec_fail(r, -EINVAL, "EOF count_of_sections %u, but the file has %u",
				rec->eof_sections, r->nsections);
	for (uint32_t i = 0; r->nopen && i < r->nsections; i++) {
		const struct snap_reader_section *sec = &r->sec[i];

		if (sec->type == SNAP_REC_START && !sec->ended)
			return rec_fail(r, -EPROTO, "section '%s' instance %u (id %u) has no END record",
					sec->name, sec->instance, i + 1);
	}
	if (!snap_stream_at_eof(r->s)) {
		if (snap_stream_error(r->s))
			return reader_stream_fail(r, reader_offset(r));
		return rec_fail(r, -EINVAL, "data after the EOF record at offset 0x%llx",
				(unsigned long long)reader_offset(r));
	}
	r->state = SNAP_R_DONE;
	return 0;
}

int snap_reader_next(struct snap_reader *r, struct snap_record *rec)
{
	uint8_t h[SNAP_RECORD_HEADER_SIZE];

	if (r->err)
		return r->err;
	if (r->state == SNAP_R_DONE)
		return reader_fail(r, -EINVAL, false, "read past the EOF record");
	if (r->state != SNAP_R_IDLE)
		return rec_fail(r, -EINVAL, "next record requested before this one was finished");
	memset(&r->rec, 0, sizeof(r->rec));
	r->rec.seq = r->seq;
	r->rec.offset = reader_offset(r);
	if (!reader_read(r, h, sizeof(h), false) || reader_check_header(r, h) ||
	    reader_check_section(r))
		return r->err;
	r->seq++;
	switch (r->rec.type) {
	case SNAP_REC_START:
	case SNAP_REC_FULL:
		reader_read_buffered(r);
		break;
	case SNAP_REC_PART:
	case SNAP_REC_END:
		r->state = SNAP_R_STREAMED;
		r->remaining = r->rec.payload_len;
		r->crc = 0;
		break;
	default:
		reader_read_eof(r);
	}
	if (r->err)
		return r->err;
	*rec = r->rec;
	return 0;
}

/* After a read from the section data stream: a short read there is the
 * section's loader expecting more than the record holds. */
static bool reader_data_ok(struct snap_reader *r)
{
	int err = snap_stream_error(r->data);

	if (!err)
		return true;
	if (err == -ENODATA)
		rec_fail(r, -EPROTO, "section data ends early (%llu bytes, read past them)",
			 (unsigned long long)r->rec.data_len);
	else
		rec_fail(r, err, "reading section data: %s", strerror(-err));
	return false;
}

/* A streamed read of len payload bytes is allowed (and then counted). */
static bool reader_streamed_take(struct snap_reader *r, uint64_t len)
{
	if (len > r->remaining) {
		rec_fail(r, -EPROTO, "read of %llu bytes past the end of the payload (%llu left)",
			 (unsigned long long)len, (unsigned long long)r->remaining);
		return false;
	}
	r->remaining -= len;
	return true;
}

static void reader_get(struct snap_reader *r, void *buf, size_t len, bool pages)
{
	if (!len)
		return;
	if (pages && len % SNAP_PAGE_SIZE)
		rec_fail(r, -EINVAL, "page read of %zu bytes, not a multiple of 4096", len);
	if (r->err)
		goto zero;
	switch (r->state) {
	case SNAP_R_BUFFERED:
		if (pages)
			snap_get_pages(r->data, buf, len);
		else
			snap_get_bytes(r->data, buf, len);
		if (!reader_data_ok(r))
			goto zero;
		return;
	case SNAP_R_STREAMED:
		if (!reader_streamed_take(r, len) || !reader_read(r, buf, len, pages))
			goto zero;
		r->crc = crc32c(r->crc, buf, len);
		return;
	default:
		rec_fail(r, -EINVAL, "no record payload to read");
	}
zero:
	memset(buf, 0, len);
}

void snap_reader_get_bytes(struct snap_reader *r, void *buf, size_t len)
{
	reader_get(r, buf, len, false);
}

uint8_t snap_reader_get_u8(struct snap_reader *r)
{
	uint8_t v;

	reader_get(r, &v, 1, false);
	return v;
}

uint16_t snap_reader_get_le16(struct snap_reader *r)
{
	uint8_t b[2];

	reader_get(r, b, sizeof(b), false);
	return (uint16_t)le_get(b, 2);
}

uint32_t snap_reader_get_le32(struct snap_reader *r)
{
	uint8_t b[4];

	reader_get(r, b, sizeof(b), false);
	return (uint32_t)le_get(b, 4);
}

uint64_t snap_reader_get_le64(struct snap_reader *r)
{
	uint8_t b[8];

	reader_get(r, b, sizeof(b), false);
	return le_get(b, 8);
}

void snap_reader_get_pages(struct snap_reader *r, void *buf, size_t len)
{
	reader_get(r, buf, len, true);
}

uint64_t snap_reader_remaining(const struct snap_reader *r)
{
	switch (r->state) {
	case SNAP_R_BUFFERED:
		return r->rec.data_len - snap_stream_offset(r->data);
	case SNAP_R_STREAMED:
		return r->remaining;
	default:
		return 0;
	}
}

/* Read n streamed payload bytes in chunks, CRC them; if check_zero, each
 * must be zero (padding). */
static void reader_consume(struct snap_reader *r, uint64_t n, bool check_zero)
{
	uint8_t scratch[16384];

	while (n && !r->err) {
		size_t k = n < sizeof(scratch) ? (size_t)n : sizeof(scratch);
		uint64_t off = reader_offset(r);

		reader_get(r, scratch, k, false);
		for (size_t i = 0; check_zero && !r->err && i < k; i++)
			if (scratch[i])
				rec_fail(r, -EINVAL, "non-zero padding at offset 0x%llx",
					 (unsigned long long)(off + i));
		n -= k;
	}
}

void snap_reader_get_pad(struct snap_reader *r)
{
	uint64_t n;

	if (r->err || r->state != SNAP_R_STREAMED ||
	    !(r->rec.flags & SNAP_REC_FLAG_PAGE_ALIGNED))
		return;
	n = -reader_offset(r) & (SNAP_PAGE_SIZE - 1);
	if (n > r->remaining) {
		rec_fail(r, -EINVAL, "padding of %llu bytes runs past the end of the payload",
			 (unsigned long long)n);
		return;
	}
	reader_consume(r, n, true);
}

struct snap_stream *snap_reader_stream(struct snap_reader *r)
{
	return r->state == SNAP_R_BUFFERED ? r->data : NULL;
}

void snap_reader_skip_payload(struct snap_reader *r)
{
	if (r->err)
		return;
	if (r->state == SNAP_R_BUFFERED) {
		snap_skip(r->data, snap_reader_remaining(r));
		reader_data_ok(r);
	} else if (r->state == SNAP_R_STREAMED) {
		reader_consume(r, r->remaining, false);
	}
}

int snap_reader_record_end(struct snap_reader *r)
{
	uint8_t crcb[4];
	struct snap_reader_section *sec;

	if (r->err)
		return r->err;
	switch (r->state) {
	case SNAP_R_BUFFERED:
		if (!reader_data_ok(r))
			return r->err;
		if (snap_reader_remaining(r))
			return rec_fail(r, -EPROTO, "%llu bytes of section data left unread",
					(unsigned long long)snap_reader_remaining(r));
		snap_stream_close(r->data);
		r->data = NULL;
		break;
	case SNAP_R_STREAMED:
		if (r->remaining)
			return rec_fail(r, -EPROTO, "%llu payload bytes left unread",
					(unsigned long long)r->remaining);
		if (!reader_read(r, crcb, sizeof(crcb), false))
			return r->err;
		if (le_get(crcb, 4) != r->crc)
			return rec_fail(r, -EINVAL, "payload checksum mismatch");
		if (r->rec.type == SNAP_REC_END) {
			sec = &r->sec[r->rec.section_id - 1];
			sec->ended = true;
			r->nopen--;
		}
		break;
	case SNAP_R_DONE:
		return 0;
	default:
		return reader_fail(r, -EINVAL, false, "no record to finish");
	}
	r->state = SNAP_R_IDLE;
	return 0;
}

int snap_reader_error(const struct snap_reader *r)
{
	return r->err;
}

void snap_reader_release(struct snap_reader *r)
{
	snap_stream_close(r->data);
	r->data = NULL;
	free(r->sec);
	r->sec = NULL;
	r->nsections = r->cap = 0;
}
