/* snap_stream fd backend: any file descriptor (pipe, socket, terminal,
 * regular file, /dev/full), with one 256 KiB buffer and plain read/write
 * loops. EINTR is retried, EAGAIN on a non-blocking fd waits with poll(),
 * short reads are fine until read() returns 0 (EOF).
 *
 * SIGPIPE: a peer that goes away must give -EPIPE, not kill the process.
 * Sockets are written with send(MSG_NOSIGNAL). For pipes the signal is
 * blocked in the calling thread around write(), and a SIGPIPE raised by
 * our own write is consumed with sigtimedwait() before the mask is
 * restored, so callers need not ignore SIGPIPE process-wide (vmm does
 * anyway). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "snapshot/stream.h"
#include "snapshot/stream_backend.h"

#define FD_BUF_SIZE (256u << 10)

struct fd_stream {
	int fd;
	bool own_fd;
	bool is_sock;
	bool is_fifo;
	bool is_reg;
	bool eof;
	uint8_t *buf;
	size_t len;     /* writing: bytes buffered; reading: bytes in buf */
	size_t pos;     /* reading: next byte in buf */
};

static int fd_wait(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };

	if (poll(&p, 1, -1) < 0 && errno != EINTR)
		return -errno;
	return 0;
}

/* write() to a pipe without dying of SIGPIPE; see the file comment. */
static ssize_t fd_write_fifo(int fd, const void *buf, size_t len)
{
	sigset_t pipe_set, old, pending;
	bool was_pending;
	ssize_t r;
	int err;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigpending(&pending);
	was_pending = sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	r = write(fd, buf, len);
	err = errno;
	if (r < 0 && err == EPIPE && !was_pending) {
		const struct timespec zero = { 0, 0 };

		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = err;
	return r;
}

static int fd_write_all(struct snap_stream *s, const uint8_t *p, size_t len)
{
	struct fd_stream *f = s->priv;

	while (len) {
		int err = snap_stream_fault_check(s, SNAP_FAULT_WRITE);
		ssize_t r;

		if (err)
			return err;
		if (f->is_sock)
			r = send(f->fd, p, len, MSG_NOSIGNAL);
		else if (f->is_fifo)
			r = fd_write_fifo(f->fd, p, len);
		else
			r = write(f->fd, p, len);
		if (r < 0) {
			err = -errno;
			if (err == -EINTR)
				continue;
			if (err == -EAGAIN || err == -EWOULDBLOCK) {
				err = fd_wait(f->fd, POLLOUT);
				if (err)
					return err;
				continue;
			}
			return err;
		}
		if (r == 0)
			return -EIO;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

static int fd_flush(struct snap_stream *s)
{
	struct fd_stream *f = s->priv;
	int err;

	if (!f->len)
		return 0;
	err = fd_write_all(s, f->buf, f->len);
	f->len = 0;
	return err;
}

static int fd_write(struct snap_stream *s, const void *buf, size_t len)
{
	struct fd_stream *f = s->priv;
	int err;

	if (len <= FD_BUF_SIZE - f->len) {
		memcpy(f->buf + f->len, buf, len);
		f->len += len;
		return 0;
	}
	err = fd_flush(s);
	if (err)
		return err;
	if (len >= FD_BUF_SIZE / 2)
		return fd_write_all(s, buf, len);     /* large: no copy */
	memcpy(f->buf, buf, len);
	f->len = len;
	return 0;
}

static int fd_commit(struct snap_stream *s)
{
	struct fd_stream *f = s->priv;
	int err = fd_flush(s);

	if (err || !f->is_reg)
		return err;
	err = snap_stream_fault_check(s, SNAP_FAULT_SYNC);
	if (err)
		return err;
	return fsync(f->fd) ? -errno : 0;
}

/* One read() into p: bytes read, 0 at EOF, or -errno. */
static ssize_t fd_read_some(struct snap_stream *s, void *p, size_t len)
{
	struct fd_stream *f = s->priv;

	for (;;) {
		int err = snap_stream_fault_check(s, SNAP_FAULT_READ);
		ssize_t r;

		if (err)
			return err;
		r = read(f->fd, p, len);
		if (r >= 0)
			return r;
		err = -errno;
		if (err == -EINTR)
			continue;
		if (err != -EAGAIN && err != -EWOULDBLOCK)
			return err;
		err = fd_wait(f->fd, POLLIN);
		if (err)
			return err;
	}
}

static int fd_fill(struct snap_stream *s)
{
	struct fd_stream *f = s->priv;
	ssize_t r;

	f->pos = f->len = 0;
	if (f->eof)
		return 0;
	r = fd_read_some(s, f->buf, FD_BUF_SIZE);
	if (r < 0)
		return (int)r;
	if (r == 0)
		f->eof = true;
	f->len = (size_t)r;
	return 0;
}

static int fd_read(struct snap_stream *s, void *buf, size_t len)
{
	struct fd_stream *f = s->priv;
	uint8_t *p = buf;

	while (len) {
		size_t k = f->len - f->pos;
		int err;

		if (k) {
			if (k > len)
				k = len;
			memcpy(p, f->buf + f->pos, k);
			f->pos += k;
			p += k;
			len -= k;
			continue;
		}
		if (f->eof)
			return -ENODATA;
		if (len >= FD_BUF_SIZE / 2) {   /* large: straight into buf */
			ssize_t r = fd_read_some(s, p, len);

			if (r < 0)
				return (int)r;
			if (r == 0) {
				f->eof = true;
				return -ENODATA;
			}
			p += r;
			len -= (size_t)r;
			continue;
		}
		err = fd_fill(s);
		if (err)
			return err;
	}
	return 0;
}

static int fd_at_eof(struct snap_stream *s)
{
	struct fd_stream *f = s->priv;
	int err;

	if (f->pos < f->len)
		return 0;
	err = fd_fill(s);
	if (err)
		return err;
	return f->len == 0;
}

static void fd_close(struct snap_stream *s)
{
	struct fd_stream *f = s->priv;

	if (f->own_fd)
		close(f->fd);
	free(f->buf);
	free(f);
}

static const struct snap_stream_ops fd_ops = {
	.write = fd_write,
	.flush = fd_flush,
	.commit = fd_commit,
	.read = fd_read,
	.at_eof = fd_at_eof,
	.close = fd_close,
};

int snap_stream_open_fd(int fd, enum snap_stream_mode mode, bool own_fd,
			struct snap_stream **out)
{
	struct fd_stream *f;
	struct stat st;
	int err;

	if (fd < 0 || (mode != SNAP_STREAM_READ && mode != SNAP_STREAM_WRITE))
		return -EINVAL;
	if (fstat(fd, &st))
		return -errno;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->buf = malloc(FD_BUF_SIZE);
	if (!f->buf) {
		free(f);
		return -ENOMEM;
	}
	f->fd = fd;
	f->is_sock = S_ISSOCK(st.st_mode);
	f->is_fifo = S_ISFIFO(st.st_mode);
	f->is_reg = S_ISREG(st.st_mode);
	err = snap_stream_alloc(&fd_ops, mode, f, out);
	if (err) {
		free(f->buf);
		free(f);
		return err;
	}
	f->own_fd = own_fd;     /* only now: on failure the caller keeps fd */
	return 0;
}
