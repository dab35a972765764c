/* snap_stream internals shared by stream.c and the backends (stream_mem.c,
 * stream_fd.c, stream_file_write.c, stream_file_read.c). Not a public API:
 * only snapshot/stream*.c include it. */
#ifndef SNAPSHOT_STREAM_BACKEND_H
#define SNAPSHOT_STREAM_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snapshot/stream.h"

/* What a backend provides. stream.c checks the sticky error before every
 * call, so backends never see a call after a failure (except close). Each
 * op returns 0 or -errno; stream.c makes the first error stick. */
struct snap_stream_ops {
	/* Writing: take len bytes (buffer or write them). */
	int (*write)(struct snap_stream *s, const void *buf, size_t len);
	/* Page data (len a multiple of 4096); NULL: same as write. */
	int (*write_pages)(struct snap_stream *s, const void *buf, size_t len);
	int (*flush)(struct snap_stream *s);
	/* Flush, make durable, publish. The stream is freed by the caller
	 * (through close) afterwards, whatever the result. */
	int (*commit)(struct snap_stream *s);

	/* Reading: exactly len bytes, or -ENODATA when input ends early. */
	int (*read)(struct snap_stream *s, void *buf, size_t len);
	/* NULL: same as read. */
	int (*read_pages)(struct snap_stream *s, void *buf, size_t len);
	/* NULL: read and discard. */
	int (*skip)(struct snap_stream *s, uint64_t len);
	/* 1 at a clean end of input, 0 if a byte is left, or -errno. */
	int (*at_eof)(struct snap_stream *s);

	/* True if the backend does O_DIRECT I/O (NULL: false). */
	bool (*direct)(const struct snap_stream *s);

	/* Release everything; an uncommitted output file disappears. */
	void (*close)(struct snap_stream *s);
};

/* One armed fault: the nth call of its kind fails with err. */
struct snap_stream_fault_slot {
	unsigned long nth;
	unsigned long calls;
	int err;
};

struct snap_stream {
	const struct snap_stream_ops *ops;
	enum snap_stream_mode mode;
	int err;                /* first error, sticky */
	uint64_t offset;        /* bytes written or consumed */
	struct snap_stream_fault_slot faults[3];
	void *priv;             /* the backend's state */
};

/* Allocate a stream around a backend (priv is owned by the backend's close). */
int snap_stream_alloc(const struct snap_stream_ops *ops, enum snap_stream_mode mode,
		      void *priv, struct snap_stream **out);
/* Backends call this once per real I/O call of the kind (write, read,
 * fsync) before making it: non-zero (a negative errno) means "fail this
 * call with it instead". Counts calls even when nothing is armed. */
int snap_stream_fault_check(struct snap_stream *s, enum snap_stream_fault kind);

/* Buffer helpers shared by backends. */
void *snap_stream_alloc_aligned(size_t len);

#endif
