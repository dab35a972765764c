/* The snapshot format's record layer, writing half (the reader is in
 * format_read.c): file header, records buffered or of declared length,
 * payload CRCs, section ids and the EOF record. See format.h and
 * docs/snapshot-format.md. */
#include <errno.h>
#include <string.h>

#include "snapshot/crc32c.h"
#include "snapshot/format.h"
#include "snapshot/stream.h"

static const uint8_t snap_magic[12] = {
	0x89, 'V', 'M', 'M', 'S', 'N', 'A', 'P', 0x0d, 0x0a, 0x1a, 0x0a,
};

static void le_put(uint8_t *p, uint64_t v, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

bool snap_format_name_valid(const char *name, size_t len)
{
	if (!name || len == 0 || len > SNAP_SECTION_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		      c == '-'))
			return false;
	}
	return true;
}

uint64_t snap_format_pad_len(uint64_t header_offset, uint64_t prefix_len)
{
	return -(header_offset + SNAP_RECORD_HEADER_SIZE + prefix_len) & (SNAP_PAGE_SIZE - 1);
}

/* Make err the writer's sticky error and the stream's, so that a commit of
 * a half-written file fails too. */
static int writer_fail(struct snap_writer *w, int err)
{
	if (!w->err)
		w->err = err;
	snap_stream_set_error(w->s, w->err);
	return w->err;
}

/* Pick up a stream error; the writer's sticky error. */
static int writer_check(struct snap_writer *w)
{
	if (!w->err && snap_stream_error(w->s))
		w->err = snap_stream_error(w->s);
	return w->err;
}

static uint64_t writer_offset(const struct snap_writer *w)
{
	return snap_stream_offset(w->s) - w->base;
}

static void writer_put_record_header(struct snap_writer *w, enum snap_rec_type type,
				     uint8_t flags, uint32_t id, uint64_t payload_len)
{
	uint8_t h[SNAP_RECORD_HEADER_SIZE] = { 0 };

	h[0] = (uint8_t)type;
	h[1] = flags;
	le_put(h + 4, id, 4);
	le_put(h + 8, payload_len, 8);
	le_put(h + 16, w->seq, 8);
	le_put(h + 28, crc32c(0, h, 28), 4);
	snap_put_bytes(w->s, h, sizeof(h));
}

static bool writer_writer_valid(const char *writer)
{
	size_t len = strnlen(writer, SNAP_WRITER_MAX + 1);

	if (len > SNAP_WRITER_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (writer[i] < 0x20 || writer[i] > 0x7e)
			return false;
	return true;
}

int snap_writer_begin(struct snap_stream *s, uint32_t flags, uint64_t created_ns,
		      const char *writer, struct snap_writer *w)
{
	uint8_t h[SNAP_FILE_HEADER_SIZE] = { 0 };

	memset(w, 0, sizeof(*w));
	w->s = s;
	w->base = snap_stream_offset(s);
	w->flags = flags;
	if ((flags & ~SNAP_FLAGS_KNOWN) || !writer || !writer_writer_valid(writer))
		return writer_fail(w, -EINVAL);
	memcpy(h, snap_magic, sizeof(snap_magic));
	le_put(h + 12, SNAP_FORMAT_VERSION, 4);
	le_put(h + 16, flags, 4);
	le_put(h + 20, SNAP_FILE_HEADER_SIZE, 4);
	le_put(h + 24, created_ns, 8);
	memcpy(h + 32, writer, strlen(writer));
	le_put(h + 60, crc32c(0, h, 60), 4);
	snap_put_bytes(s, h, sizeof(h));
	return writer_check(w);
}

static int writer_find_open(const struct snap_writer *w, uint32_t id)
{
	for (unsigned int i = 0; i < w->nopen; i++)
		if (w->open[i] == id)
			return (int)i;
	return -1;
}

/* Start a buffered record: the payload collects in a memory stream. */
static int writer_buffer(struct snap_writer *w, enum snap_rec_type type, uint32_t id)
{
	int err = snap_stream_open_mem_write(&w->buf);

	if (err)
		return writer_fail(w, err);
	w->state = SNAP_W_BUFFERED;
	w->type = type;
	w->section_id = id;
	w->rec_flags = 0;
	return 0;
}

int snap_writer_section_begin(struct snap_writer *w, enum snap_rec_type type,
			      const char *name, uint32_t instance, uint32_t version,
			      uint32_t *id)
{
	size_t len = name ? strnlen(name, SNAP_SECTION_NAME_MAX + 1) : 0;
	int err;

	if (writer_check(w))
		return w->err;
	if (w->state != SNAP_W_IDLE || (type != SNAP_REC_START && type != SNAP_REC_FULL) ||
	    !snap_format_name_valid(name, len))
		return writer_fail(w, -EINVAL);
	if (w->sections >= SNAP_MAX_SECTIONS_PER_FILE ||
	    (type == SNAP_REC_START && w->nopen >= SNAP_WRITER_MAX_OPEN))
		return writer_fail(w, -ENOSPC);
	err = writer_buffer(w, type, w->sections + 1);
	if (err)
		return err;
	w->sections++;
	if (type == SNAP_REC_START)
		w->open[w->nopen++] = w->sections;
	snap_put_le16(w->buf, (uint16_t)len);
	snap_put_bytes(w->buf, name, len);
	snap_put_le32(w->buf, instance);
	snap_put_le32(w->buf, version);
	*id = w->sections;
	return 0;
}

int snap_writer_record_begin(struct snap_writer *w, uint32_t section_id,
			     enum snap_rec_type type)
{
	if (writer_check(w))
		return w->err;
	if (w->state != SNAP_W_IDLE || (type != SNAP_REC_PART && type != SNAP_REC_END) ||
	    writer_find_open(w, section_id) < 0)
		return writer_fail(w, -EINVAL);
	return writer_buffer(w, type, section_id);
}

int snap_writer_part_begin(struct snap_writer *w, uint32_t section_id,
			   enum snap_rec_type type, uint64_t payload_len, bool page_aligned)
{
	if (writer_check(w))
		return w->err;
	if (w->state != SNAP_W_IDLE || (type != SNAP_REC_PART && type != SNAP_REC_END) ||
	    writer_find_open(w, section_id) < 0 || payload_len > SNAP_PART_MAX ||
	    (page_aligned && !(w->flags & SNAP_FLAG_PAGE_ALIGNED)))
		return writer_fail(w, -EINVAL);
	w->state = SNAP_W_DECLARED;
	w->type = type;
	w->section_id = section_id;
	w->rec_flags = page_aligned ? SNAP_REC_FLAG_PAGE_ALIGNED : 0;
	w->rec_offset = writer_offset(w);
	w->declared = payload_len;
	w->written = 0;
	w->crc = 0;
	writer_put_record_header(w, type, w->rec_flags, section_id, payload_len);
	return writer_check(w);
}

uint64_t snap_writer_pad_len(const struct snap_writer *w, uint64_t prefix_len)
{
	return snap_format_pad_len(writer_offset(w), prefix_len);
}

/* Payload bytes of a declared record: counted against the declared length,
 * CRC'd, written through. */
static bool writer_declared_take(struct snap_writer *w, const void *buf, size_t len)
{
	if (len > w->declared - w->written) {
		writer_fail(w, -EINVAL);
		return false;
	}
	w->crc = crc32c(w->crc, buf, len);
	w->written += len;
	return true;
}

void snap_writer_put_bytes(struct snap_writer *w, const void *buf, size_t len)
{
	if (writer_check(w) || !len)
		return;
	switch (w->state) {
	case SNAP_W_BUFFERED:
		snap_put_bytes(w->buf, buf, len);
		break;
	case SNAP_W_DECLARED:
		if (writer_declared_take(w, buf, len))
			snap_put_bytes(w->s, buf, len);
		break;
	default:
		writer_fail(w, -EINVAL);
	}
}

void snap_writer_put_u8(struct snap_writer *w, uint8_t v)
{
	snap_writer_put_bytes(w, &v, 1);
}

void snap_writer_put_le16(struct snap_writer *w, uint16_t v)
{
	uint8_t b[2];

	le_put(b, v, 2);
	snap_writer_put_bytes(w, b, sizeof(b));
}

void snap_writer_put_le32(struct snap_writer *w, uint32_t v)
{
	uint8_t b[4];

	le_put(b, v, 4);
	snap_writer_put_bytes(w, b, sizeof(b));
}

void snap_writer_put_le64(struct snap_writer *w, uint64_t v)
{
	uint8_t b[8];

	le_put(b, v, 8);
	snap_writer_put_bytes(w, b, sizeof(b));
}

void snap_writer_put_pages(struct snap_writer *w, const void *buf, size_t len)
{
	if (writer_check(w) || !len)
		return;
	if (len % SNAP_PAGE_SIZE) {
		writer_fail(w, -EINVAL);
		return;
	}
	switch (w->state) {
	case SNAP_W_BUFFERED:
		snap_put_pages(w->buf, buf, len);
		break;
	case SNAP_W_DECLARED:
		if (writer_declared_take(w, buf, len))
			snap_put_pages(w->s, buf, len);
		break;
	default:
		writer_fail(w, -EINVAL);
	}
}

void snap_writer_put_pad(struct snap_writer *w)
{
	static const uint8_t zeros[256];
	uint64_t n;

	if (writer_check(w))
		return;
	if (w->state == SNAP_W_BUFFERED)
		return;
	if (w->state != SNAP_W_DECLARED) {
		writer_fail(w, -EINVAL);
		return;
	}
	if (!(w->rec_flags & SNAP_REC_FLAG_PAGE_ALIGNED))
		return;
	n = -writer_offset(w) & (SNAP_PAGE_SIZE - 1);
	while (n && !w->err) {
		size_t k = n < sizeof(zeros) ? (size_t)n : sizeof(zeros);

		snap_writer_put_bytes(w, zeros, k);
		n -= k;
	}
}

struct snap_stream *snap_writer_stream(struct snap_writer *w)
{
	return w->state == SNAP_W_BUFFERED ? w->buf : NULL;
}

static void writer_close_section(struct snap_writer *w, uint32_t id)
{
	int i = writer_find_open(w, id);

	if (i >= 0)
		w->open[i] = w->open[--w->nopen];
}

/* A buffered record is complete: header, payload, CRC. */
static int writer_emit_buffered(struct snap_writer *w)
{
	const uint8_t *data;
	size_t len;
	int err = snap_stream_error(w->buf);

	if (err)
		return writer_fail(w, err);
	data = snap_stream_mem_data(w->buf, &len);
	if (len > SNAP_FULL_MAX)
		return writer_fail(w, -EFBIG);
	writer_put_record_header(w, w->type, 0, w->section_id, len);
	snap_put_bytes(w->s, data, len);
	snap_put_le32(w->s, crc32c(0, data, len));
	return writer_check(w);
}

int snap_writer_record_end(struct snap_writer *w)
{
	if (writer_check(w))
		return w->err;
	switch (w->state) {
	case SNAP_W_BUFFERED:
		writer_emit_buffered(w);
		snap_stream_close(w->buf);
		w->buf = NULL;
		break;
	case SNAP_W_DECLARED:
		if (w->written != w->declared)
			return writer_fail(w, -EINVAL);
		snap_put_le32(w->s, w->crc);
		break;
	default:
		return writer_fail(w, -EINVAL);
	}
	if (writer_check(w))
		return w->err;
	if (w->type == SNAP_REC_END)
		writer_close_section(w, w->section_id);
	w->seq++;
	w->state = SNAP_W_IDLE;
	return 0;
}

int snap_writer_eof(struct snap_writer *w)
{
	uint8_t p[SNAP_EOF_PAYLOAD_LEN];
	uint64_t offset;

	if (writer_check(w))
		return w->err;
	if (w->state != SNAP_W_IDLE || w->nopen)
		return writer_fail(w, -EPROTO);
	offset = writer_offset(w);
	le_put(p, w->seq, 8);
	le_put(p + 8, offset, 8);
	le_put(p + 16, w->sections, 4);
	writer_put_record_header(w, SNAP_REC_EOF, 0, 0, sizeof(p));
	snap_put_bytes(w->s, p, sizeof(p));
	snap_put_le32(w->s, crc32c(0, p, sizeof(p)));
	if (writer_check(w))
		return w->err;
	w->seq++;
	w->state = SNAP_W_DONE;
	return 0;
}

int snap_writer_error(const struct snap_writer *w)
{
	return w->err ? w->err : snap_stream_error(w->s);
}

void snap_writer_release(struct snap_writer *w)
{
	snap_stream_close(w->buf);
	w->buf = NULL;
	/* A record given up halfway leaves a file that must not be committed. */
	if (w->state == SNAP_W_BUFFERED || w->state == SNAP_W_DECLARED) {
		writer_fail(w, -ECANCELED);
		w->state = SNAP_W_IDLE;
	}
}
