/* snap_stream memory backend: a growable buffer, for tests and for fault
 * injection. Unbuffered on purpose: every put is one "write" call and every
 * get one "read" call, so a test that fails the Nth write walks every put of
 * the code under test. Commit counts as one "sync" call. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/stream.h"
#include "snapshot/stream_backend.h"

#define MEM_MAX_LEN ((size_t)1 << 40)

struct mem_stream {
	uint8_t *data;
	size_t len;     /* bytes written, or bytes of input */
	size_t cap;
	size_t pos;     /* reading: next byte */
};

static int mem_write(struct snap_stream *s, const void *buf, size_t len)
{
	struct mem_stream *m = s->priv;
	int err = snap_stream_fault_check(s, SNAP_FAULT_WRITE);

	if (err)
		return err;
	if (len > MEM_MAX_LEN - m->len)
		return -EFBIG;
	if (m->len + len > m->cap) {
		size_t cap = m->cap ? m->cap : 4096;
		uint8_t *p;

		while (cap < m->len + len)
			cap *= 2;
		p = realloc(m->data, cap);
		if (!p)
			return -ENOMEM;
		m->data = p;
		m->cap = cap;
	}
	memcpy(m->data + m->len, buf, len);
	m->len += len;
	return 0;
}

static int mem_commit(struct snap_stream *s)
{
	return snap_stream_fault_check(s, SNAP_FAULT_SYNC);
}

static int mem_read(struct snap_stream *s, void *buf, size_t len)
{
	struct mem_stream *m = s->priv;
	int err = snap_stream_fault_check(s, SNAP_FAULT_READ);

	if (err)
		return err;
	if (len > m->len - m->pos)
		return -ENODATA;
	memcpy(buf, m->data + m->pos, len);
	m->pos += len;
	return 0;
}

static int mem_skip(struct snap_stream *s, uint64_t len)
{
	struct mem_stream *m = s->priv;
	int err = snap_stream_fault_check(s, SNAP_FAULT_READ);

	if (err)
		return err;
	if (len > m->len - m->pos)
		return -ENODATA;
	m->pos += (size_t)len;
	return 0;
}

static int mem_at_eof(struct snap_stream *s)
{
	struct mem_stream *m = s->priv;

	return m->pos == m->len;
}

static void mem_close(struct snap_stream *s)
{
	struct mem_stream *m = s->priv;

	free(m->data);
	free(m);
}

static const struct snap_stream_ops mem_ops = {
	.write = mem_write,
	.commit = mem_commit,
	.read = mem_read,
	.skip = mem_skip,
	.at_eof = mem_at_eof,
	.close = mem_close,
};

static int mem_open(enum snap_stream_mode mode, const void *data, size_t len,
		    struct snap_stream **out)
{
	struct mem_stream *m = calloc(1, sizeof(*m));
	int err;

	if (!m)
		return -ENOMEM;
	if (len) {
		m->data = malloc(len);
		if (!m->data) {
			free(m);
			return -ENOMEM;
		}
		memcpy(m->data, data, len);
		m->len = m->cap = len;
	}
	err = snap_stream_alloc(&mem_ops, mode, m, out);
	if (err) {
		free(m->data);
		free(m);
	}
	return err;
}

int snap_stream_open_mem_write(struct snap_stream **out)
{
	return mem_open(SNAP_STREAM_WRITE, NULL, 0, out);
}

int snap_stream_open_mem_read(const void *data, size_t len, struct snap_stream **out)
{
	return mem_open(SNAP_STREAM_READ, data, len, out);
}

const uint8_t *snap_stream_mem_data(const struct snap_stream *s, size_t *len)
{
	const struct mem_stream *m;

	if (s->ops != &mem_ops) {
		*len = 0;
		return NULL;
	}
	m = s->priv;
	*len = m->len;
	return m->data;
}
