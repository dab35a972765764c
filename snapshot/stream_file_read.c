/* snap_stream file reader: read-ahead through io_uring, FILE_NBUF aligned
 * buffers of FILE_BUF_SIZE in flight ahead of the reader, O_DIRECT where the
 * file system allows it (else buffered with POSIX_FADV_SEQUENTIAL).
 *
 * snap_get_pages() of at least FILE_DIRECT_MIN bytes at an aligned file
 * offset into aligned memory (any, in buffered mode) first copies what the
 * read-ahead already holds, then reads the rest straight into the caller's
 * memory, FILE_CHUNK per request and up to FILE_QD in flight, and restarts
 * the read-ahead behind it while those complete.
 *
 * The file size is taken at open: a read past it is -ENODATA before any I/O
 * (truncated input), and at_eof is offset == size. Without io_uring the
 * same code runs with synchronous pread(). Fault injection: each read
 * submission is one "read" call.
 *
 * Invariant: with nq buffers queued, the stream offset is
 * slot[head].off + pos; with none, ra_off + pos (pos < 4096 then, only
 * non-zero after an unaligned skip in O_DIRECT mode). */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/stream.h"
#include "snapshot/stream_backend.h"

#define FILE_BUF_SIZE   (4u << 20)
#define FILE_NBUF       4
#define FILE_CHUNK      (4u << 20)
#define FILE_QD         8
#define FILE_DIRECT_MIN (64u << 10)
#define ALIGN_MASK      ((uint64_t)SNAP_STREAM_ALIGN - 1)

struct file_slot {
	uint64_t off;
	size_t len;             /* bytes of the file it holds once ready */
	bool inflight;
};

struct file_chunk {
	uint8_t *ptr;
	size_t len;
	uint64_t off;
	bool inflight;
};

struct file_reader {
	struct io_uring ring;
	bool ring_ok;
	bool direct;
	int fd;
	uint64_t size;
	uint8_t *bufs[FILE_NBUF];
	struct file_slot slot[FILE_NBUF];
	int head;
	unsigned nq;
	size_t pos;
	uint64_t ra_off;
	struct file_chunk chunk[FILE_QD];
	unsigned chunks_inflight;
	int err;
};

static int fr_pread_all(struct file_reader *r, uint8_t *p, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pread(r->fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ENODATA;        /* the file shrank under us */
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/* Tags: 0..FILE_NBUF-1 read-ahead slots, FILE_NBUF + i direct chunks. */
static void fr_complete(struct file_reader *r, uint64_t tag, int res)
{
	uint8_t *p;
	size_t len;
	uint64_t off;
	int err = 0;

	if (tag < FILE_NBUF) {
		r->slot[tag].inflight = false;
		p = r->bufs[tag];
		len = r->slot[tag].len;
		off = r->slot[tag].off;
	} else {
		struct file_chunk *c = &r->chunk[tag - FILE_NBUF];

		c->inflight = false;
		r->chunks_inflight--;
		p = c->ptr;
		len = c->len;
		off = c->off;
	}
	if (res < 0)
		err = res;
	else if ((size_t)res < len)     /* short: only if the file shrank */
		err = r->direct ? -ENODATA
				: fr_pread_all(r, p + res, len - (size_t)res, off + (uint64_t)res);
	if (err && !r->err)
		r->err = err;
}

static int fr_reap(struct file_reader *r)
{
	struct io_uring_cqe *cqe;
	int ret;

	do
		ret = io_uring_wait_cqe(&r->ring, &cqe);
	while (ret == -EINTR);
	if (ret < 0)
		return ret;
	fr_complete(r, cqe->user_data, cqe->res);
	io_uring_cqe_seen(&r->ring, cqe);
	return 0;
}

/* Start a read; an error return means nothing was started. */
static int fr_start(struct snap_stream *s, uint64_t tag, uint8_t *p, size_t len,
		    uint64_t off)
{
	struct file_reader *r = s->priv;
	struct io_uring_sqe *sqe;
	int err = snap_stream_fault_check(s, SNAP_FAULT_READ);
	size_t req = len;

	if (err)
		return err;
	if (r->direct)  /* a tail at EOF: ask for whole blocks, get the rest */
		req = (len + ALIGN_MASK) & ~(size_t)ALIGN_MASK;
	if (!r->ring_ok) {      /* done at once; a failure lands in r->err */
		err = fr_pread_all(r, p, len, off);
		fr_complete(r, tag, err ? err : (int)len);
		return 0;
	}
	sqe = io_uring_get_sqe(&r->ring);
	if (!sqe)
		return -EBUSY;  /* can't happen: the ring has room for everything */
	io_uring_prep_read(sqe, r->fd, p, (unsigned)req, off);
	io_uring_sqe_set_data64(sqe, tag);
	err = io_uring_submit(&r->ring);
	return err < 0 ? err : 0;
}

/* Queue read-ahead into every free slot, up to the end of the file. */
static int fr_fill(struct snap_stream *s)
{
	struct file_reader *r = s->priv;

	while (r->nq < FILE_NBUF && r->ra_off < r->size) {
		int i = (r->head + (int)r->nq) % FILE_NBUF;
		uint64_t left = r->size - r->ra_off;
		size_t len = left < FILE_BUF_SIZE ? (size_t)left : FILE_BUF_SIZE;
		int err;

		r->slot[i] = (struct file_slot){ .off = r->ra_off, .len = len, .inflight = true };
		r->nq++;
		r->ra_off += len;
		err = fr_start(s, (uint64_t)i, r->bufs[i], len, r->slot[i].off);
		if (err) {
			r->slot[i].inflight = false;
			if (!r->err)
				r->err = err;
		}
	}
	return r->err;
}

/* Make the head slot ready (fill the queue first if it is empty). */
static int fr_wait_head(struct snap_stream *s)
{
	struct file_reader *r = s->priv;
	int err;

	if (!r->nq) {
		err = fr_fill(s);
		if (err)
			return err;
		if (!r->nq)
			return -ENODATA;
	}
	while (r->slot[r->head].inflight) {
		err = fr_reap(r);
		if (err)
			return err;
	}
	return r->err;
}

/* Consume up to len bytes of the head slot into p (NULL: skip them);
 * refill the read-ahead when the slot is used up if refill. */
static size_t fr_take(struct snap_stream *s, uint8_t *p, size_t len, bool refill)
{
	struct file_reader *r = s->priv;
	struct file_slot *sl = &r->slot[r->head];
	size_t k = sl->len - r->pos;

	if (k > len)
		k = len;
	if (p)
		memcpy(p, r->bufs[r->head] + r->pos, k);
	r->pos += k;
	if (r->pos == sl->len) {
		r->head = (r->head + 1) % FILE_NBUF;
		r->nq--;
		r->pos = 0;
		if (refill)
			fr_fill(s);     /* an error here sticks in r->err */
	}
	return k;
}

static int fr_read(struct snap_stream *s, void *buf, size_t len)
{
	struct file_reader *r = s->priv;
	uint8_t *p = buf;

	if (len > r->size - s->offset)
		return -ENODATA;
	while (len) {
		int err = fr_wait_head(s);
		size_t k;

		if (err)
			return err;
		k = fr_take(s, p, len, true);
		p += k;
		len -= k;
	}
	return r->err;
}

static int fr_skip(struct snap_stream *s, uint64_t len)
{
	struct file_reader *r = s->priv;
	uint64_t to = s->offset + len;

	if (len > r->size - s->offset)
		return -ENODATA;
	while (len && r->nq) {
		int err = fr_wait_head(s);

		if (err)
			return err;
		len -= fr_take(s, NULL, len < SIZE_MAX ? (size_t)len : SIZE_MAX, false);
	}
	if (len) {      /* beyond the read-ahead: move it */
		r->ra_off = r->direct ? to & ~ALIGN_MASK : to;
		r->pos = (size_t)(to - r->ra_off);
	}
	return fr_fill(s);
}

/* The part of read_pages past the read-ahead, straight into p. */
static int fr_read_direct(struct snap_stream *s, uint8_t *p, size_t len)
{
	struct file_reader *r = s->priv;
	uint64_t off = r->ra_off;
	int err = 0;

	while (len && !err) {
		size_t k = len < FILE_CHUNK ? len : FILE_CHUNK;
		unsigned i = 0;

		while (r->chunks_inflight == FILE_QD && !err)
			err = fr_reap(r);
		if (err || r->err)
			break;
		while (r->chunk[i].inflight)
			i++;
		r->chunk[i] = (struct file_chunk){ .ptr = p, .len = k, .off = off, .inflight = true };
		r->chunks_inflight++;
		err = fr_start(s, FILE_NBUF + i, p, k, off);
		if (err) {
			r->chunk[i].inflight = false;
			r->chunks_inflight--;
		}
		p += k;
		off += k;
		len -= k;
	}
	if (!err) {             /* read-ahead behind the pages while they land */
		r->ra_off = off;
		err = fr_fill(s);
	}
	while (r->chunks_inflight) {
		int e = fr_reap(r);

		if (e) {
			err = err ? err : e;
			break;
		}
	}
	return err ? err : r->err;
}

static int fr_read_pages(struct snap_stream *s, void *buf, size_t len)
{
	struct file_reader *r = s->priv;
	uint8_t *p = buf;

	if (len > r->size - s->offset)
		return -ENODATA;
	if (len < FILE_DIRECT_MIN ||
	    (r->direct && (((uintptr_t)p | s->offset) & ALIGN_MASK)))
		return fr_read(s, buf, len);
	while (len && r->nq) {  /* what the read-ahead holds: copy it, no refill */
		int err = fr_wait_head(s);
		size_t k;

		if (err)
			return err;
		k = fr_take(s, p, len, false);
		p += k;
		len -= k;
	}
	if (!len)
		return fr_fill(s);
	return fr_read_direct(s, p, len);
}

static int fr_at_eof(struct snap_stream *s)
{
	struct file_reader *r = s->priv;

	return s->offset >= r->size;
}

static bool fr_direct(const struct snap_stream *s)
{
	const struct file_reader *r = s->priv;

	return r->direct;
}

static void fr_free(struct file_reader *r)
{
	if (r->ring_ok) {       /* nothing may land in freed buffers */
		for (int i = 0; i < FILE_NBUF; i++)
			while (r->slot[i].inflight && !fr_reap(r))
				;
		io_uring_queue_exit(&r->ring);
	}
	if (r->fd >= 0)
		close(r->fd);
	for (int i = 0; i < FILE_NBUF; i++)
		free(r->bufs[i]);
	free(r);
}

static void fr_close(struct snap_stream *s)
{
	fr_free(s->priv);
}

static const struct snap_stream_ops file_read_ops = {
	.read = fr_read,
	.read_pages = fr_read_pages,
	.skip = fr_skip,
	.at_eof = fr_at_eof,
	.direct = fr_direct,
	.close = fr_close,
};

static int fr_setup(struct file_reader *r, const char *path)
{
	struct stat st;

	r->fd = open(path, O_RDONLY | O_CLOEXEC | O_DIRECT);
	if (r->fd >= 0) {
		r->direct = true;
	} else if (errno == EINVAL) {
		r->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (r->fd < 0)
			return -errno;
		posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	} else {
		return -errno;
	}
	if (fstat(r->fd, &st))
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;         /* pipes and devices: snap_stream_open_fd */
	r->size = (uint64_t)st.st_size;
	for (int i = 0; i < FILE_NBUF; i++) {
		r->bufs[i] = snap_stream_alloc_aligned(FILE_BUF_SIZE);
		if (!r->bufs[i])
			return -ENOMEM;
	}
	r->ring_ok = !io_uring_queue_init(2 * (FILE_NBUF + FILE_QD), &r->ring, 0);
	return 0;
}

int snap_stream_open_file(const char *path, struct snap_stream **out)
{
	struct file_reader *r = calloc(1, sizeof(*r));
	int err;

	if (!r)
		return -ENOMEM;
	r->fd = -1;
	err = fr_setup(r, path);
	if (!err)
		err = snap_stream_alloc(&file_read_ops, SNAP_STREAM_READ, r, out);
	if (err) {
		fr_free(r);
		return err;
	}
	return 0;
}
