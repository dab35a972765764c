/* snap_stream: the generic half. Sticky errors, little-endian encoding,
 * offsets and fault bookkeeping; the I/O itself is in the backends
 * (stream_mem.c, stream_fd.c, stream_file_write.c, stream_file_read.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/stream.h"
#include "snapshot/stream_backend.h"

int snap_stream_alloc(const struct snap_stream_ops *ops, enum snap_stream_mode mode,
		      void *priv, struct snap_stream **out)
{
	struct snap_stream *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->ops = ops;
	s->mode = mode;
	s->priv = priv;
	*out = s;
	return 0;
}

void *snap_stream_alloc_aligned(size_t len)
{
	void *p = NULL;

	if (posix_memalign(&p, SNAP_STREAM_ALIGN, len))
		return NULL;
	return p;
}

int snap_stream_fault_check(struct snap_stream *s, enum snap_stream_fault kind)
{
	struct snap_stream_fault_slot *f = &s->faults[kind];

	f->calls++;
	if (f->nth && f->calls == f->nth)
		return f->err;
	return 0;
}

void snap_stream_inject_fault(struct snap_stream *s, enum snap_stream_fault kind,
			      unsigned long nth, int err)
{
	struct snap_stream_fault_slot *f;

	if ((unsigned)kind > SNAP_FAULT_SYNC)
		return;
	f = &s->faults[kind];
	f->nth = nth ? f->calls + nth : 0;
	f->err = err > 0 ? -err : err;
	if (nth && !f->err)
		f->err = -EIO;
}

unsigned long snap_stream_io_count(const struct snap_stream *s, enum snap_stream_fault kind)
{
	if ((unsigned)kind > SNAP_FAULT_SYNC)
		return 0;
	return s->faults[kind].calls;
}

bool snap_stream_direct(const struct snap_stream *s)
{
	return s->ops->direct && s->ops->direct(s);
}

uint64_t snap_stream_offset(const struct snap_stream *s)
{
	return s->offset;
}

int snap_stream_error(const struct snap_stream *s)
{
	return s->err;
}

void snap_stream_set_error(struct snap_stream *s, int err)
{
	if (err > 0)
		err = -err;
	if (!s->err && err)
		s->err = err;
}

/* Run a backend op's result through the sticky error; true if all is well. */
static bool stream_check(struct snap_stream *s, int r)
{
	if (r < 0)
		snap_stream_set_error(s, r);
	return !s->err;
}

static bool stream_can_write(struct snap_stream *s)
{
	if (s->err)
		return false;
	if (s->mode != SNAP_STREAM_WRITE) {
		s->err = -EBADF;
		return false;
	}
	return true;
}

static bool stream_can_read(struct snap_stream *s)
{
	if (s->err)
		return false;
	if (s->mode != SNAP_STREAM_READ) {
		s->err = -EBADF;
		return false;
	}
	return true;
}

void snap_put_bytes(struct snap_stream *s, const void *buf, size_t len)
{
	if (!len || !stream_can_write(s))
		return;
	if (stream_check(s, s->ops->write(s, buf, len)))
		s->offset += len;
}

void snap_put_u8(struct snap_stream *s, uint8_t v)
{
	snap_put_bytes(s, &v, 1);
}

void snap_put_le16(struct snap_stream *s, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) };

	snap_put_bytes(s, b, sizeof(b));
}

void snap_put_le32(struct snap_stream *s, uint32_t v)
{
	uint8_t b[4];

	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	snap_put_bytes(s, b, sizeof(b));
}

void snap_put_le64(struct snap_stream *s, uint64_t v)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	snap_put_bytes(s, b, sizeof(b));
}

void snap_put_pad(struct snap_stream *s, size_t align)
{
	static const uint8_t zeros[256];
	size_t n;

	if (!align || (align & (align - 1))) {
		snap_stream_set_error(s, -EINVAL);
		return;
	}
	n = (size_t)(-s->offset & (align - 1));
	while (n && !s->err) {
		size_t k = n < sizeof(zeros) ? n : sizeof(zeros);

		snap_put_bytes(s, zeros, k);
		n -= k;
	}
}

void snap_put_pages(struct snap_stream *s, const void *buf, size_t len)
{
	if (!stream_can_write(s))
		return;
	if (len % SNAP_STREAM_ALIGN) {
		s->err = -EINVAL;
		return;
	}
	if (!len)
		return;
	if (!s->ops->write_pages) {
		snap_put_bytes(s, buf, len);
		return;
	}
	if (stream_check(s, s->ops->write_pages(s, buf, len)))
		s->offset += len;
}

int snap_stream_flush(struct snap_stream *s)
{
	if (!stream_can_write(s))
		return s->err;
	stream_check(s, s->ops->flush ? s->ops->flush(s) : 0);
	return s->err;
}

void snap_get_bytes(struct snap_stream *s, void *buf, size_t len)
{
	if (!len)
		return;
	if (stream_can_read(s) && stream_check(s, s->ops->read(s, buf, len))) {
		s->offset += len;
		return;
	}
	memset(buf, 0, len);    /* callers that check later see zeros, never junk */
}

uint8_t snap_get_u8(struct snap_stream *s)
{
	uint8_t v;

	snap_get_bytes(s, &v, 1);
	return v;
}

uint16_t snap_get_le16(struct snap_stream *s)
{
	uint8_t b[2];

	snap_get_bytes(s, b, sizeof(b));
	return (uint16_t)(b[0] | b[1] << 8);
}

uint32_t snap_get_le32(struct snap_stream *s)
{
	uint8_t b[4];
	uint32_t v = 0;

	snap_get_bytes(s, b, sizeof(b));
	for (int i = 3; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

uint64_t snap_get_le64(struct snap_stream *s)
{
	uint8_t b[8];
	uint64_t v = 0;

	snap_get_bytes(s, b, sizeof(b));
	for (int i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

void snap_skip(struct snap_stream *s, uint64_t len)
{
	uint8_t scratch[4096];

	if (!len || !stream_can_read(s))
		return;
	if (s->ops->skip) {
		if (stream_check(s, s->ops->skip(s, len)))
			s->offset += len;
		return;
	}
	while (len && !s->err) {
		size_t k = len < sizeof(scratch) ? (size_t)len : sizeof(scratch);

		snap_get_bytes(s, scratch, k);
		len -= k;
	}
}

void snap_get_pages(struct snap_stream *s, void *buf, size_t len)
{
	if (!len)
		return;
	if (len % SNAP_STREAM_ALIGN)
		snap_stream_set_error(s, -EINVAL);
	if (!s->ops->read_pages || !stream_can_read(s)) {
		snap_get_bytes(s, buf, len);
		return;
	}
	if (stream_check(s, s->ops->read_pages(s, buf, len)))
		s->offset += len;
	else
		memset(buf, 0, len);
}

bool snap_stream_at_eof(struct snap_stream *s)
{
	int r;

	if (!stream_can_read(s))
		return false;
	r = s->ops->at_eof(s);
	return stream_check(s, r) && r == 1;
}

int snap_stream_commit(struct snap_stream *s)
{
	int err;

	if (stream_can_write(s) && s->ops->commit)
		stream_check(s, s->ops->commit(s));
	err = s->err;
	snap_stream_close(s);
	return err;
}

void snap_stream_close(struct snap_stream *s)
{
	if (!s)
		return;
	if (s->ops->close)
		s->ops->close(s);
	free(s);
}
