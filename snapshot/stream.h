/* snap_stream: the byte stream snapshots are written to and read from.
 *
 * Buffered, with interchangeable backends behind an ops table:
 *   - file writer: io_uring, several large aligned buffers in flight,
 *     O_DIRECT where the file system allows it (buffered otherwise); writes a
 *     temporary file (O_TMPFILE, or a hidden name) in the target directory
 *     and only snap_stream_commit() makes it appear under its name, after
 *     fsync: a failed or abandoned checkpoint never leaves a file that looks
 *     valid.
 *   - file reader: large aligned reads.
 *   - fd: any file descriptor (pipe, socket, stdin/stdout): plain read/write
 *     loops; a reader that went away is -EPIPE, never a SIGPIPE death
 *     (send(MSG_NOSIGNAL) on sockets, SIGPIPE blocked and consumed around
 *     write() on pipes: callers need not ignore SIGPIPE).
 *   - memory: a growable buffer, for tests, with fault injection (fail the
 *     Nth write, read or sync with a chosen errno).
 *
 * Errors are negative errno values; the first one sticks: after an error
 * every call is a no-op and snap_stream_error() returns it, so callers write
 * many fields and check once. Nothing here logs. */
#ifndef SNAPSHOT_STREAM_H
#define SNAPSHOT_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct snap_stream;

enum snap_stream_mode { SNAP_STREAM_READ, SNAP_STREAM_WRITE };

/* Alignment of snap_stream_write_pages()/read_pages() data in a file that
 * permits it (and the unit of O_DIRECT). */
#define SNAP_STREAM_ALIGN 4096

/* Writes to a temporary file next to path; path appears only on commit.
 * Fails with -EEXIST if path exists and !overwrite. */
int snap_stream_create_file(const char *path, bool overwrite, struct snap_stream **out);
int snap_stream_open_file(const char *path, struct snap_stream **out);
/* The stream does not own fd unless own_fd (then closing the stream closes it). */
int snap_stream_open_fd(int fd, enum snap_stream_mode mode, bool own_fd,
			struct snap_stream **out);
/* A memory stream to write, or to read len bytes of data (copied). */
int snap_stream_open_mem_write(struct snap_stream **out);
int snap_stream_open_mem_read(const void *data, size_t len, struct snap_stream **out);
/* Memory streams only: the bytes written so far. */
const uint8_t *snap_stream_mem_data(const struct snap_stream *s, size_t *len);
/* Fault injection (memory streams; also file and fd streams, for the
 * fault-injection tests of checkpoint and restore): the nth (1-based) call of
 * the kind, counted from this call, fails with err (negative or positive
 * errno; 0 means -EIO). nth 0 disarms. A "call" is one I/O of the backend:
 * memory: each put (write), get/skip (read), commit (sync); fd: each
 * write()/send()/read() syscall, fsync on commit of a regular file; file:
 * each io_uring write/read submission, fsync of the file and of the
 * directory. Walk N = 1, 2, ... until the run succeeds to hit them all. */
enum snap_stream_fault { SNAP_FAULT_WRITE, SNAP_FAULT_READ, SNAP_FAULT_SYNC };
void snap_stream_inject_fault(struct snap_stream *s, enum snap_stream_fault kind,
			      unsigned long nth, int err);
/* How many calls of the kind the backend has made so far. */
unsigned long snap_stream_io_count(const struct snap_stream *s, enum snap_stream_fault kind);
/* True if the stream does O_DIRECT I/O (file streams where the file system
 * allows it). */
bool snap_stream_direct(const struct snap_stream *s);

/* Writing. */
void snap_put_bytes(struct snap_stream *s, const void *buf, size_t len);
void snap_put_u8(struct snap_stream *s, uint8_t v);
void snap_put_le16(struct snap_stream *s, uint16_t v);
void snap_put_le32(struct snap_stream *s, uint32_t v);
void snap_put_le64(struct snap_stream *s, uint64_t v);
/* Zero bytes until the stream offset is a multiple of align (a power of 2). */
void snap_put_pad(struct snap_stream *s, size_t align);
/* Large page data (guest RAM), len a multiple of 4096: file backends write it
 * without copying when the offset is aligned (else it is buffered like any
 * bytes). The memory behind buf must stay unchanged until the next flush or
 * commit returns. */
void snap_put_pages(struct snap_stream *s, const void *buf, size_t len);
/* Push buffered data to the backend (and wait for in-flight writes, after
 * which the memory given to snap_put_pages() may change). An O_DIRECT file
 * keeps a last partial 4 KiB block buffered until commit. */
int snap_stream_flush(struct snap_stream *s);

/* Reading: short input is -ENODATA ("truncated"), sticky like any error. */
void snap_get_bytes(struct snap_stream *s, void *buf, size_t len);
uint8_t snap_get_u8(struct snap_stream *s);
uint16_t snap_get_le16(struct snap_stream *s);
uint32_t snap_get_le32(struct snap_stream *s);
uint64_t snap_get_le64(struct snap_stream *s);
/* Skip len bytes (read and discard on pipes). */
void snap_skip(struct snap_stream *s, uint64_t len);
/* Read pages into buf (len a multiple of 4096), with large direct reads
 * into buf when the file offset and buf are aligned. */
void snap_get_pages(struct snap_stream *s, void *buf, size_t len);
/* True at a clean end of input (no byte left), without consuming anything. */
bool snap_stream_at_eof(struct snap_stream *s);

/* Bytes written or consumed so far. */
uint64_t snap_stream_offset(const struct snap_stream *s);
int snap_stream_error(const struct snap_stream *s);
/* Record an error from outside (e.g. a checksum mismatch) so it sticks. */
void snap_stream_set_error(struct snap_stream *s, int err);

/* Writing streams: flush, fsync (files), and for files give the temporary
 * its name (link or rename, then fsync the directory). Returns the sticky
 * error or 0 (-EEXIST if !overwrite and the path appeared meanwhile). On
 * failure no file is left at path (an overwritten older file is gone only if
 * the rename itself happened) and no temporary remains. The stream is freed
 * either way. */
int snap_stream_commit(struct snap_stream *s);
/* Close without committing: a file being written disappears. Frees s. */
void snap_stream_close(struct snap_stream *s);

#endif
