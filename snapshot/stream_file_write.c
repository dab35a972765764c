/* snap_stream file writer: io_uring, FILE_NBUF buffers of FILE_BUF_SIZE in
 * flight while the caller fills the next, O_DIRECT where the file system
 * takes it (fcntl(F_SETFL) fails with EINVAL on those that don't: then
 * buffered I/O through the same ring).
 *
 * Pages: snap_put_pages() at a 4 KiB-aligned stream offset from aligned
 * memory (or any offset/memory in buffered mode), when at least
 * FILE_DIRECT_MIN bytes, submits the caller's memory itself in chunks of
 * FILE_CHUNK (no copy); the buffered bytes before it are submitted first,
 * and since the stream offset is aligned, so is their length.
 *
 * Invariant: buf_off (file offset of the current buffer) + fill == the
 * stream offset, and buf_off is 4 KiB-aligned in O_DIRECT mode.
 *
 * Tail: O_DIRECT can't write less than a block. snap_stream_flush() writes
 * the aligned part and keeps the last partial block buffered; commit writes
 * it padded with zeros to 4 KiB through O_DIRECT and ftruncate()s the file to
 * its logical length before fsync (one write path, no second fd).
 *
 * Ext4 serializes extending O_DIRECT writes (they complete synchronously),
 * so the file is preallocated ahead of the writes with fallocate() in
 * FILE_PREALLOC steps (what fio does) and trimmed by the same ftruncate().
 *
 * Commit: the data goes to an O_TMPFILE inode in the target's directory
 * (or, where O_TMPFILE is unsupported, a hidden `.<name>.tmp-<pid>[.n]`);
 * commit = all writes done, ftruncate, fsync(file), then linkat() of the
 * tmpfile to the name (-EEXIST if it appeared meanwhile and !overwrite;
 * with overwrite: link to a hidden name, rename over), or renameat2()
 * (RENAME_NOREPLACE unless overwrite) of the hidden name; then
 * fsync(directory). Any failure, or close without commit, removes the
 * temporary; a failed directory fsync also removes the published name, so
 * a failed commit never leaves a file that looks valid.
 *
 * If io_uring is unavailable (seccomp, old kernel) the same code runs with
 * synchronous pwrite(). Fault injection: every write submission (and the
 * commit's tail write) is one "write" call; fsync(file) and fsync(dir) are
 * "sync" calls. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "snapshot/stream.h"
#include "snapshot/stream_backend.h"

#define FILE_BUF_SIZE   (4u << 20)
#define FILE_NBUF       4
#define FILE_CHUNK      (4u << 20)
#define FILE_QD         8               /* writes in flight at most */
#define FILE_DIRECT_MIN (64u << 10)
#define FILE_PREALLOC   (256ull << 20)
#define ALIGN_MASK      ((uint64_t)SNAP_STREAM_ALIGN - 1)

struct file_req {
	bool busy;
	int buf;                /* stream buffer index, -1: caller's pages */
	const uint8_t *ptr;
	size_t len;
	uint64_t off;
};

struct file_writer {
	struct io_uring ring;
	bool ring_ok;
	bool fixed;             /* buffers registered with the ring */
	int fd;
	int dirfd;
	bool direct;
	bool tmpfile;           /* O_TMPFILE: no name until commit */
	bool overwrite;
	bool prealloc;
	bool tmp_exists;        /* tmpname exists in dirfd and must go on failure */
	char name[NAME_MAX + 1];
	char tmpname[NAME_MAX + 1];
	uint8_t *bufs[FILE_NBUF];
	bool buf_busy[FILE_NBUF];
	int cur;
	size_t fill;
	uint64_t buf_off;
	uint64_t alloc_end;
	struct file_req reqs[FILE_QD];
	unsigned inflight;
	int err;                /* first failed write */
};

static int fw_pwrite_all(int fd, const uint8_t *p, size_t len, uint64_t off)
{
	while (len) {
		ssize_t r = pwrite(fd, p, len, (off_t)off);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;
		p += r;
		off += (uint64_t)r;
		len -= (size_t)r;
	}
	return 0;
}

/* Retire one completion; a short write is finished synchronously (it is
 * rare, and pwrite then reports the real error, e.g. ENOSPC). The first
 * error is kept in w->err. */
static void fw_complete(struct file_writer *w, struct file_req *rq, int res)
{
	int err = 0;

	if (res < 0)
		err = res;
	else if ((size_t)res < rq->len)
		err = fw_pwrite_all(w->fd, rq->ptr + res, rq->len - (size_t)res,
				    rq->off + (uint64_t)res);
	if (err && !w->err)
		w->err = err;
	rq->busy = false;
	if (rq->buf >= 0)
		w->buf_busy[rq->buf] = false;
	w->inflight--;
}

/* Reap completions; with wait, at least one. Returns the first write error
 * so far, or a failure of the ring itself. */
static int fw_reap(struct file_writer *w, bool wait)
{
	struct io_uring_cqe *cqe;

	while (w->inflight) {
		int r = wait ? io_uring_wait_cqe(&w->ring, &cqe)
			     : io_uring_peek_cqe(&w->ring, &cqe);

		if (r == -EINTR)
			continue;
		if (r == -EAGAIN)
			break;
		if (r < 0)
			return r;
		fw_complete(w, &w->reqs[cqe->user_data], cqe->res);
		io_uring_cqe_seen(&w->ring, cqe);
		wait = false;
	}
	return w->err;
}

/* Wait until nothing is in flight; returns the first write error. */
static int fw_wait_all(struct file_writer *w)
{
	while (w->inflight) {
		struct io_uring_cqe *cqe;
		int r = io_uring_wait_cqe(&w->ring, &cqe);

		if (r == -EINTR)
			continue;
		if (r < 0)
			return r;   /* the ring is broken: nothing more will complete */
		fw_complete(w, &w->reqs[cqe->user_data], cqe->res);
		io_uring_cqe_seen(&w->ring, cqe);
	}
	return w->err;
}

/* Keep the file allocated ahead of the writes; failure only stops trying
 * (real ENOSPC then surfaces from the writes themselves). */
static void fw_prealloc(struct file_writer *w, uint64_t end)
{
	uint64_t to;

	if (!w->prealloc || end <= w->alloc_end)
		return;
	to = (end + FILE_PREALLOC) & ~(FILE_PREALLOC - 1);
	if (fallocate(w->fd, 0, (off_t)w->alloc_end, (off_t)(to - w->alloc_end)))
		w->prealloc = false;
	else
		w->alloc_end = to;
}

/* Start one write of p[0..len) at off; buf is the stream buffer it lives in
 * or -1. */
static int fw_submit(struct snap_stream *s, const uint8_t *p, size_t len, uint64_t off,
		     int buf)
{
	struct file_writer *w = s->priv;
	struct io_uring_sqe *sqe;
	struct file_req *rq = NULL;
	int err = snap_stream_fault_check(s, SNAP_FAULT_WRITE);

	if (err)
		return err;
	fw_prealloc(w, off + len);
	if (!w->ring_ok)
		return fw_pwrite_all(w->fd, p, len, off);
	while (w->inflight == FILE_QD) {
		err = fw_reap(w, true);
		if (err)
			return err;
	}
	for (unsigned i = 0; i < FILE_QD && !rq; i++)
		if (!w->reqs[i].busy)
			rq = &w->reqs[i];
	sqe = io_uring_get_sqe(&w->ring);
	if (!sqe)
		return -EBUSY;  /* can't happen: the ring has room for FILE_QD */
	if (w->fixed && buf >= 0)
		io_uring_prep_write_fixed(sqe, w->fd, p, (unsigned)len, off, buf);
	else
		io_uring_prep_write(sqe, w->fd, p, (unsigned)len, off);
	io_uring_sqe_set_data64(sqe, (uint64_t)(rq - w->reqs));
	*rq = (struct file_req){ .busy = true, .buf = buf, .ptr = p, .len = len, .off = off };
	if (buf >= 0)
		w->buf_busy[buf] = true;
	w->inflight++;
	err = io_uring_submit(&w->ring);
	if (err < 0) {
		/* not submitted: forget it (the stream is dead from here on, and
		 * nothing submits again) */
		rq->busy = false;
		if (buf >= 0)
			w->buf_busy[buf] = false;
		w->inflight--;
		return err;
	}
	return fw_reap(w, false);
}

/* Submit the first len bytes of the current buffer and continue in the next
 * free buffer with the remaining fill - len bytes. */
static int fw_push(struct snap_stream *s, size_t len)
{
	struct file_writer *w = s->priv;
	int old = w->cur;
	size_t rest = w->fill - len;
	int err = fw_submit(s, w->bufs[old], len, w->buf_off, old);

	if (err)
		return err;
	w->buf_off += len;
	w->cur = (old + 1) % FILE_NBUF;
	while (w->buf_busy[w->cur]) {
		err = fw_reap(w, true);
		if (err)
			return err;
	}
	if (rest)       /* the kernel only reads bufs[old]: reading it too is fine */
		memcpy(w->bufs[w->cur], w->bufs[old] + len, rest);
	w->fill = rest;
	return 0;
}

static int fw_write(struct snap_stream *s, const void *buf, size_t len)
{
	struct file_writer *w = s->priv;
	const uint8_t *p = buf;

	while (len) {
		size_t k = FILE_BUF_SIZE - w->fill;

		if (k > len)
			k = len;
		memcpy(w->bufs[w->cur] + w->fill, p, k);
		w->fill += k;
		p += k;
		len -= k;
		if (w->fill == FILE_BUF_SIZE) {
			int err = fw_push(s, FILE_BUF_SIZE);

			if (err)
				return err;
		}
	}
	return 0;
}

static int fw_write_pages(struct snap_stream *s, const void *buf, size_t len)
{
	struct file_writer *w = s->priv;
	const uint8_t *p = buf;
	int err;

	if (len < FILE_DIRECT_MIN ||
	    (w->direct && (((uintptr_t)p | s->offset) & ALIGN_MASK)))
		return fw_write(s, buf, len);
	if (w->fill) {
		err = fw_push(s, w->fill);
		if (err)
			return err;
	}
	while (len) {
		size_t k = len < FILE_CHUNK ? len : FILE_CHUNK;

		err = fw_submit(s, p, k, w->buf_off, -1);
		if (err)
			return err;
		w->buf_off += k;
		p += k;
		len -= k;
	}
	return 0;
}

static int fw_flush(struct snap_stream *s)
{
	struct file_writer *w = s->priv;
	size_t len = w->direct ? w->fill & ~(size_t)ALIGN_MASK : w->fill;
	int err = 0;

	if (len)
		err = fw_push(s, len);
	if (!err)
		err = fw_wait_all(w);
	return err;
}

static void fw_proc_path(char *buf, size_t size, int fd)
{
	snprintf(buf, size, "/proc/self/fd/%d", fd);
}

/* Pick an unused hidden name next to the target in w->tmpname and create
 * it: by opening it (fd_out) or by linking the O_TMPFILE inode there. */
static int fw_make_tmpname(struct file_writer *w, int *fd_out)
{
	char proc[64];

	fw_proc_path(proc, sizeof(proc), w->fd);
	for (unsigned n = 0; n < 100; n++) {
		int len = n ? snprintf(w->tmpname, sizeof(w->tmpname), ".%s.tmp-%d.%u",
				       w->name, (int)getpid(), n)
			    : snprintf(w->tmpname, sizeof(w->tmpname), ".%s.tmp-%d",
				       w->name, (int)getpid());
		int r;

		if (len < 0 || (size_t)len >= sizeof(w->tmpname))
			return -ENAMETOOLONG;
		if (fd_out)
			r = *fd_out = openat(w->dirfd, w->tmpname,
					     O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		else
			r = linkat(AT_FDCWD, proc, w->dirfd, w->tmpname, AT_SYMLINK_FOLLOW);
		if (r >= 0) {
			w->tmp_exists = true;
			return 0;
		}
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

/* Give the finished, fsynced file its name. */
static int fw_publish(struct file_writer *w)
{
	char proc[64];
	int err;

	if (w->tmpfile && !w->overwrite) {
		fw_proc_path(proc, sizeof(proc), w->fd);
		if (!linkat(AT_FDCWD, proc, w->dirfd, w->name, AT_SYMLINK_FOLLOW))
			return 0;
		if (errno != ENOENT)    /* ENOENT: no /proc; needs CAP_DAC_READ_SEARCH */
			return -errno;
		return linkat(w->fd, "", w->dirfd, w->name, AT_EMPTY_PATH) ? -errno : 0;
	}
	if (w->tmpfile) {
		err = fw_make_tmpname(w, NULL);
		if (err)
			return err;
	}
	if (w->overwrite) {
		if (renameat(w->dirfd, w->tmpname, w->dirfd, w->name))
			return -errno;
		w->tmp_exists = false;
		return 0;
	}
	if (!renameat2(w->dirfd, w->tmpname, w->dirfd, w->name, RENAME_NOREPLACE)) {
		w->tmp_exists = false;
		return 0;
	}
	if (errno != EINVAL)
		return -errno;
	/* no RENAME_NOREPLACE here: link (fails if the name exists), unlink */
	if (linkat(w->dirfd, w->tmpname, w->dirfd, w->name, 0))
		return -errno;
	unlinkat(w->dirfd, w->tmpname, 0);
	w->tmp_exists = false;
	return 0;
}

static int fw_commit(struct snap_stream *s)
{
	struct file_writer *w = s->priv;
	size_t len = w->fill;
	int err;

	if (len) {
		if (w->direct) {
			len = (len + ALIGN_MASK) & ~(size_t)ALIGN_MASK;
			memset(w->bufs[w->cur] + w->fill, 0, len - w->fill);
		}
		err = fw_submit(s, w->bufs[w->cur], len, w->buf_off, w->cur);
		if (err)
			return err;
	}
	err = fw_wait_all(w);
	if (err)
		return err;
	if ((w->direct || w->alloc_end) && ftruncate(w->fd, (off_t)s->offset))
		return -errno;
	err = snap_stream_fault_check(s, SNAP_FAULT_SYNC);
	if (!err && fsync(w->fd))
		err = -errno;
	if (!err)
		err = fw_publish(w);
	if (err)
		return err;
	err = snap_stream_fault_check(s, SNAP_FAULT_SYNC);
	if (!err && fsync(w->dirfd))
		err = -errno;
	if (err)        /* not known durable: report failure, leave no file */
		unlinkat(w->dirfd, w->name, 0);
	return err;
}

static void fw_free(struct file_writer *w)
{
	fw_wait_all(w);   /* no buffer or caller page may be in flight after this */
	if (w->ring_ok)
		io_uring_queue_exit(&w->ring);
	if (w->fd >= 0)
		close(w->fd);
	if (w->tmp_exists)
		unlinkat(w->dirfd, w->tmpname, 0);
	if (w->dirfd >= 0)
		close(w->dirfd);
	for (int i = 0; i < FILE_NBUF; i++)
		free(w->bufs[i]);
	free(w);
}

static void fw_close(struct snap_stream *s)
{
	fw_free(s->priv);
}

static bool fw_direct(const struct snap_stream *s)
{
	const struct file_writer *w = s->priv;

	return w->direct;
}

static const struct snap_stream_ops file_write_ops = {
	.direct = fw_direct,
	.write = fw_write,
	.write_pages = fw_write_pages,
	.flush = fw_flush,
	.commit = fw_commit,
	.close = fw_close,
};

/* Split path into an open directory fd and the final name. */
static int fw_open_dir(struct file_writer *w, const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	char *dir;

	if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
		return -EISDIR;
	if (strlen(base) >= sizeof(w->name))
		return -ENAMETOOLONG;
	strcpy(w->name, base);
	if (!slash)
		dir = strdup(".");
	else if (slash == path)
		dir = strdup("/");
	else
		dir = strndup(path, (size_t)(slash - path));
	if (!dir)
		return -ENOMEM;
	w->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	return w->dirfd < 0 ? -errno : 0;
}

/* The temporary: O_TMPFILE if the file system has it, else a hidden name;
 * then O_DIRECT if the file system takes it. */
static int fw_open_tmp(struct file_writer *w)
{
	int flags, err;

	w->fd = openat(w->dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (w->fd >= 0) {
		w->tmpfile = true;
	} else if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL) {
		err = fw_make_tmpname(w, &w->fd);
		if (err)
			return err;
	} else {
		return -errno;
	}
	flags = fcntl(w->fd, F_GETFL);
	if (flags < 0)
		return -errno;
	if (!fcntl(w->fd, F_SETFL, flags | O_DIRECT))
		w->direct = true;
	else if (errno != EINVAL)
		return -errno;
	return 0;
}

static int fw_setup_ring(struct file_writer *w)
{
	struct iovec iov[FILE_NBUF];

	for (int i = 0; i < FILE_NBUF; i++) {
		w->bufs[i] = snap_stream_alloc_aligned(FILE_BUF_SIZE);
		if (!w->bufs[i])
			return -ENOMEM;
		iov[i] = (struct iovec){ w->bufs[i], FILE_BUF_SIZE };
	}
	if (io_uring_queue_init(2 * FILE_QD, &w->ring, 0))
		return 0;               /* no io_uring: synchronous pwrite */
	w->ring_ok = true;
	w->fixed = !io_uring_register_buffers(&w->ring, iov, FILE_NBUF);
	return 0;
}

int snap_stream_create_file(const char *path, bool overwrite, struct snap_stream **out)
{
	struct file_writer *w = calloc(1, sizeof(*w));
	struct stat st;
	int err;

	if (!w)
		return -ENOMEM;
	w->fd = w->dirfd = -1;
	w->overwrite = overwrite;
	err = fw_open_dir(w, path);
	if (!err && !overwrite && !fstatat(w->dirfd, w->name, &st, AT_SYMLINK_NOFOLLOW))
		err = -EEXIST;
	if (!err)
		err = fw_open_tmp(w);
	if (!err)
		err = fw_setup_ring(w);
	if (!err)
		err = snap_stream_alloc(&file_write_ops, SNAP_STREAM_WRITE, w, out);
	if (err) {
		fw_free(w);
		return err;
	}
	w->prealloc = w->direct;
	return 0;
}
