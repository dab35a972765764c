/* Unit tests for snapshot/stream*.c: one realistic sequence of every put and
 * get through each backend (memory, file on disk and on tmpfs, fd over a
 * pipe and a socketpair), big page data from mmap'ed memory at aligned and
 * unaligned offsets, sticky errors, every write/read/sync call failed in
 * turn, real ENOSPC (/dev/full), a vanished directory, EPIPE, and commit
 * semantics (nothing visible before commit, nothing left after failure). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "snapshot/stream.h"

#define PAGES_LEN (2u << 20)

/* Per-test state: a temp directory and a page-aligned pattern. */
struct fixture {
	char dir[256];
	char path[300];
	uint8_t *pages;
};

static void pattern_fill(uint8_t *p, size_t len, uint64_t seed)
{
	uint64_t x = seed | 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

static int setup_in(void **state, const char *base)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/test_stream.XXXXXX", base);
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/snap", f->dir);
	if (posix_memalign((void **)&f->pages, 4096, PAGES_LEN))
		return -1;
	pattern_fill(f->pages, PAGES_LEN, 42);
	*state = f;
	return 0;
}

static int setup_disk(void **state)
{
	return setup_in(state, "/tmp");
}

static int setup_shm(void **state)
{
	return setup_in(state, "/dev/shm");
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd))
		return -1;
	free(f->pages);
	free(f);
	return 0;
}

static int dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static bool path_exists(const char *p)
{
	struct stat st;

	return !stat(p, &st);
}

static uint64_t file_size(const char *p)
{
	struct stat st;

	assert_int_equal(stat(p, &st), 0);
	return (uint64_t)st.st_size;
}

/* The realistic sequence: fields, padding, pages at aligned and unaligned
 * offsets, small and large. Returns its length. */
#define SEQ_LEN (1 + 2 + 4 + 8 + 7 + 4074 + 65536 + 13 + 131072 + 4083 + 1048576 + 4 + 3)

static void seq_write(struct snap_stream *s, const uint8_t *pages)
{
	snap_put_u8(s, 0xab);
	snap_put_le16(s, 0xbeef);
	snap_put_le32(s, 0xdeadbeef);
	snap_put_le64(s, 0x0123456789abcdefull);
	snap_put_bytes(s, pages + 100, 7);
	snap_put_pad(s, 4096);
	snap_put_pages(s, pages, 65536);                /* aligned */
	snap_put_bytes(s, pages + 200, 13);
	snap_put_pages(s, pages + 65536, 131072);       /* unaligned offset */
	snap_put_pad(s, 4096);
	snap_put_pages(s, pages + 1048576, 1048576);    /* aligned, large */
	snap_put_le32(s, 0xcafef00d);
	snap_put_bytes(s, pages + 300, 3);
}

/* Read the sequence back and check it; returns the sticky error. */
static int seq_read(struct snap_stream *s, const uint8_t *pages)
{
	uint8_t *buf = NULL;
	uint8_t small[16];
	int ok = 1;

	assert_int_equal(posix_memalign((void **)&buf, 4096, 1048576), 0);
	ok &= snap_get_u8(s) == 0xab;
	ok &= snap_get_le16(s) == 0xbeef;
	ok &= snap_get_le32(s) == 0xdeadbeef;
	ok &= snap_get_le64(s) == 0x0123456789abcdefull;
	snap_get_bytes(s, small, 7);
	ok &= !memcmp(small, pages + 100, 7);
	snap_skip(s, 4074);
	snap_get_pages(s, buf, 65536);
	ok &= !memcmp(buf, pages, 65536);
	snap_skip(s, 13);
	snap_get_pages(s, buf, 131072);
	ok &= !memcmp(buf, pages + 65536, 131072);
	snap_get_bytes(s, buf, 4083);
	for (int i = 0; i < 4083; i++)
		ok &= buf[i] == 0;
	snap_get_pages(s, buf, 1048576);
	ok &= !memcmp(buf, pages + 1048576, 1048576);
	ok &= snap_get_le32(s) == 0xcafef00d;
	snap_get_bytes(s, small, 3);
	ok &= !memcmp(small, pages + 300, 3);
	free(buf);
	if (snap_stream_error(s))
		return snap_stream_error(s);
	assert_true(ok);
	assert_int_equal(snap_stream_offset(s), SEQ_LEN);
	assert_true(snap_stream_at_eof(s));
	return 0;
}

static void test_mem_roundtrip(void **state)
{
	struct fixture *f = *state;
	struct snap_stream *w, *r;
	const uint8_t *data;
	size_t len;

	assert_int_equal(snap_stream_open_mem_write(&w), 0);
	seq_write(w, f->pages);
	assert_int_equal(snap_stream_flush(w), 0);
	assert_int_equal(snap_stream_offset(w), SEQ_LEN);
	data = snap_stream_mem_data(w, &len);
	assert_int_equal(len, SEQ_LEN);
	assert_int_equal(snap_stream_open_mem_read(data, len, &r), 0);
	assert_int_equal(snap_stream_commit(w), 0);
	assert_false(snap_stream_at_eof(r));
	assert_int_equal(seq_read(r, f->pages), 0);
	snap_stream_close(r);
}

/* Write the sequence to f->path, commit, read it back. */
static void file_roundtrip(struct fixture *f)
{
	struct snap_stream *w, *r;

	assert_int_equal(snap_stream_create_file(f->path, false, &w), 0);
	seq_write(w, f->pages);
	assert_int_equal(snap_stream_flush(w), 0);
	assert_false(path_exists(f->path));
	assert_true(dir_entries(f->dir) <= 1);     /* at most a hidden temporary */
	assert_int_equal(snap_stream_commit(w), 0);
	assert_true(path_exists(f->path));
	assert_int_equal(file_size(f->path), SEQ_LEN);
	assert_int_equal(dir_entries(f->dir), 1);
	assert_int_equal(snap_stream_open_file(f->path, &r), 0);
	assert_int_equal(seq_read(r, f->pages), 0);
	snap_stream_close(r);
}

static void test_file_roundtrip(void **state)
{
	file_roundtrip(*state);
}

struct pipe_writer {
	int fd;
	const uint8_t *pages;
	int result;
};

static void *writer_main(void *arg)
{
	struct pipe_writer *pw = arg;
	struct snap_stream *s;

	pw->result = snap_stream_open_fd(pw->fd, SNAP_STREAM_WRITE, true, &s);
	if (!pw->result) {
		seq_write(s, pw->pages);
		pw->result = snap_stream_commit(s);
	}
	return NULL;
}

static void fd_roundtrip(struct fixture *f, int fds[2])
{
	struct pipe_writer pw = { .fd = fds[1], .pages = f->pages };
	struct snap_stream *r;
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, writer_main, &pw), 0);
	assert_int_equal(snap_stream_open_fd(fds[0], SNAP_STREAM_READ, true, &r), 0);
	assert_int_equal(seq_read(r, f->pages), 0);
	pthread_join(t, NULL);
	assert_int_equal(pw.result, 0);
	snap_stream_close(r);
}

static void test_fd_pipe_roundtrip(void **state)
{
	int fds[2];

	assert_int_equal(pipe(fds), 0);
	fd_roundtrip(*state, fds);
}

static void test_fd_socket_roundtrip(void **state)
{
	int fds[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	fd_roundtrip(*state, fds);
}

/* 64 MiB from mmap'ed memory, after 7 bytes: unaligned (copied) or padded
 * to 4 KiB first (submitted directly); read back both ways. */
static void big_pages(struct fixture *f, bool pad)
{
	size_t len = 64u << 20;
	uint8_t *src = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *dst = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t head = pad ? 4096 : 7, expect = head + len + 5;
	struct snap_stream *s;
	uint8_t b[8];
	FILE *fp;

	assert_true(src != MAP_FAILED && dst != MAP_FAILED);
	pattern_fill(src, len, pad ? 7 : 8);
	assert_int_equal(snap_stream_create_file(f->path, true, &s), 0);
	snap_put_bytes(s, "1234567", 7);
	if (pad)
		snap_put_pad(s, 4096);
	snap_put_pages(s, src, len);
	snap_put_bytes(s, "abcde", 5);
	assert_int_equal(snap_stream_offset(s), expect);
	assert_int_equal(snap_stream_commit(s), 0);
	assert_int_equal(file_size(f->path), expect);

	/* through the stream */
	assert_int_equal(snap_stream_open_file(f->path, &s), 0);
	snap_get_bytes(s, b, 7);
	assert_memory_equal(b, "1234567", 7);
	snap_skip(s, head - 7);
	snap_get_pages(s, dst, len);
	snap_get_bytes(s, b, 5);
	assert_int_equal(snap_stream_error(s), 0);
	assert_memory_equal(b, "abcde", 5);
	assert_true(snap_stream_at_eof(s));
	snap_stream_close(s);
	assert_memory_equal(dst, src, len);

	/* and independently, with stdio */
	memset(dst, 0, len);
	fp = fopen(f->path, "rb");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, (long)head, SEEK_SET), 0);
	assert_int_equal(fread(dst, 1, len, fp), len);
	assert_int_equal(fread(b, 1, 8, fp), 5);
	fclose(fp);
	assert_memory_equal(dst, src, len);
	munmap(src, len);
	munmap(dst, len);
}

static void test_file_big_pages_unaligned(void **state)
{
	big_pages(*state, false);
}

static void test_file_big_pages_aligned(void **state)
{
	big_pages(*state, true);
}

static void test_sticky_error(void **state)
{
	struct fixture *f = *state;
	struct snap_stream *s;
	size_t len;

	assert_int_equal(snap_stream_open_mem_write(&s), 0);
	snap_stream_inject_fault(s, SNAP_FAULT_WRITE, 3, ENOSPC);
	snap_put_u8(s, 1);
	snap_put_u8(s, 2);
	snap_put_u8(s, 3);              /* fails */
	assert_int_equal(snap_stream_error(s), -ENOSPC);
	snap_put_u8(s, 4);
	snap_put_pages(s, f->pages, 4096);
	snap_stream_set_error(s, -EIO); /* does not replace the first */
	snap_stream_mem_data(s, &len);
	assert_int_equal(len, 2);
	assert_int_equal(snap_stream_offset(s), 2);
	assert_int_equal(snap_stream_flush(s), -ENOSPC);
	assert_int_equal(snap_stream_commit(s), -ENOSPC);

	/* the same through a file: nothing more written, nothing left */
	assert_int_equal(snap_stream_create_file(f->path, false, &s), 0);
	snap_put_pages(s, f->pages, 65536);
	snap_stream_set_error(s, EBADMSG);
	snap_put_pages(s, f->pages, 65536);
	assert_int_equal(snap_stream_offset(s), 65536);
	assert_int_equal(snap_stream_commit(s), -EBADMSG);
	assert_int_equal(dir_entries(f->dir), 0);

	/* misuse is an error too */
	assert_int_equal(snap_stream_open_mem_write(&s), 0);
	snap_put_pages(s, f->pages, 100);
	assert_int_equal(snap_stream_error(s), -EINVAL);
	snap_stream_close(s);
	assert_int_equal(snap_stream_open_mem_read("x", 1, &s), 0);
	snap_put_u8(s, 1);
	assert_int_equal(snap_stream_error(s), -EBADF);
	snap_stream_close(s);
}

/* Fail the nth call of a kind for n = 1, 2, ... until the run succeeds:
 * the error surfaces from commit, and the directory stays empty. */
static void fault_walk_write(struct fixture *f, bool file, enum snap_stream_fault kind)
{
	unsigned long n;

	for (n = 1; n < 1000; n++) {
		struct snap_stream *s;
		int err;

		if (file)
			assert_int_equal(snap_stream_create_file(f->path, false, &s), 0);
		else
			assert_int_equal(snap_stream_open_mem_write(&s), 0);
		snap_stream_inject_fault(s, kind, n, EIO);
		seq_write(s, f->pages);
		err = snap_stream_commit(s);
		if (!err)
			break;
		assert_int_equal(err, -EIO);
		assert_int_equal(dir_entries(f->dir), 0);
	}
	assert_true(n > 1 && n < 1000);
	if (file) {
		assert_int_equal(file_size(f->path), SEQ_LEN);
		unlink(f->path);
	}
}

static void test_fault_walk_mem(void **state)
{
	fault_walk_write(*state, false, SNAP_FAULT_WRITE);
	fault_walk_write(*state, false, SNAP_FAULT_SYNC);
}

static void test_fault_walk_file(void **state)
{
	fault_walk_write(*state, true, SNAP_FAULT_WRITE);
	fault_walk_write(*state, true, SNAP_FAULT_SYNC);
}

static void test_fault_walk_read(void **state)
{
	struct fixture *f = *state;
	unsigned long n;

	file_roundtrip(f);
	for (n = 1; n < 1000; n++) {
		struct snap_stream *s;
		int err;

		assert_int_equal(snap_stream_open_file(f->path, &s), 0);
		snap_stream_inject_fault(s, SNAP_FAULT_READ, n, EIO);
		err = seq_read(s, f->pages);
		snap_stream_close(s);
		if (!err)
			break;
		assert_int_equal(err, -EIO);
	}
	assert_true(n > 1 && n < 1000);
}

static void test_dev_full(void **state)
{
	struct fixture *f = *state;
	struct snap_stream *s;
	int fd = open("/dev/full", O_WRONLY);

	if (fd < 0)
		skip();
	assert_int_equal(snap_stream_open_fd(fd, SNAP_STREAM_WRITE, true, &s), 0);
	snap_put_bytes(s, "x", 1);
	assert_int_equal(snap_stream_error(s), 0);  /* buffered */
	snap_put_pages(s, f->pages, PAGES_LEN);
	assert_int_equal(snap_stream_error(s), -ENOSPC);
	assert_int_equal(snap_stream_commit(s), -ENOSPC);
}

static void test_epipe(void **state)
{
	struct fixture *f = *state;
	struct snap_stream *s;
	int fds[2];

	/* SIGPIPE keeps its default action: the stream must not die of it */
	assert_int_equal(pipe(fds), 0);
	close(fds[0]);
	assert_int_equal(snap_stream_open_fd(fds[1], SNAP_STREAM_WRITE, true, &s), 0);
	snap_put_pages(s, f->pages, PAGES_LEN);
	assert_int_equal(snap_stream_commit(s), -EPIPE);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	close(fds[0]);
	assert_int_equal(snap_stream_open_fd(fds[1], SNAP_STREAM_WRITE, true, &s), 0);
	snap_put_pages(s, f->pages, PAGES_LEN);
	assert_int_equal(snap_stream_commit(s), -EPIPE);
}

static void test_dir_removed(void **state)
{
	struct fixture *f = *state;
	struct snap_stream *s;
	char sub[320], path[340];

	snprintf(sub, sizeof(sub), "%s/sub", f->dir);
	snprintf(path, sizeof(path), "%s/snap", sub);
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(snap_stream_create_file(path, false, &s), 0);
	seq_write(s, f->pages);
	if (rmdir(sub)) {       /* a hidden temporary is in it: no O_TMPFILE */
		snap_stream_close(s);
		assert_int_equal(dir_entries(sub), 0);
		skip();
	}
	assert_int_equal(snap_stream_commit(s), -ENOENT);
	assert_false(path_exists(sub));
	assert_int_equal(snap_stream_create_file("/nonexistent/dir/snap", false, &s), -ENOENT);
}

static void test_commit_semantics(void **state)
{
	struct fixture *f = *state;
	struct snap_stream *s, *s2;
	FILE *fp;
	char b[4];

	/* close without commit: nothing */
	assert_int_equal(snap_stream_create_file(f->path, false, &s), 0);
	seq_write(s, f->pages);
	snap_stream_close(s);
	assert_int_equal(dir_entries(f->dir), 0);

	/* an empty stream commits to an empty file */
	assert_int_equal(snap_stream_create_file(f->path, false, &s), 0);
	assert_int_equal(snap_stream_commit(s), 0);
	assert_int_equal(file_size(f->path), 0);

	/* it exists now: -EEXIST without overwrite, replaced with it */
	assert_int_equal(snap_stream_create_file(f->path, false, &s), -EEXIST);
	assert_int_equal(snap_stream_create_file(f->path, true, &s), 0);
	snap_put_bytes(s, "new", 3);
	assert_int_equal(file_size(f->path), 0);
	assert_int_equal(snap_stream_commit(s), 0);
	assert_int_equal(file_size(f->path), 3);
	assert_int_equal(dir_entries(f->dir), 1);

	/* appears while we write, no overwrite: commit fails, file untouched */
	unlink(f->path);
	assert_int_equal(snap_stream_create_file(f->path, false, &s), 0);
	snap_put_bytes(s, "one", 3);
	assert_int_equal(snap_stream_create_file(f->path, false, &s2), 0);
	snap_put_bytes(s2, "two", 3);
	assert_int_equal(snap_stream_commit(s2), 0);
	assert_int_equal(snap_stream_commit(s), -EEXIST);
	fp = fopen(f->path, "rb");
	assert_non_null(fp);
	assert_int_equal(fread(b, 1, 4, fp), 3);
	fclose(fp);
	assert_memory_equal(b, "two", 3);
	assert_int_equal(dir_entries(f->dir), 1);
}

static void test_truncated(void **state)
{
	struct fixture *f = *state;
	struct snap_stream *s;
	uint8_t buf[8192];

	assert_int_equal(snap_stream_open_mem_read("abc", 3, &s), 0);
	assert_int_equal(snap_get_le16(s), 0x6261);
	assert_false(snap_stream_at_eof(s));
	assert_int_equal(snap_get_le32(s), 0);
	assert_int_equal(snap_stream_error(s), -ENODATA);
	assert_int_equal(snap_get_u8(s), 0);   /* 'c' is there: sticky anyway */
	assert_int_equal(snap_stream_error(s), -ENODATA);
	snap_stream_close(s);

	/* a file cut short, at several places */
	file_roundtrip(f);
	for (off_t cut = SEQ_LEN - 1; cut > 0; cut = cut * 2 / 3) {
		assert_int_equal(truncate(f->path, cut), 0);
		assert_int_equal(snap_stream_open_file(f->path, &s), 0);
		assert_int_equal(seq_read(s, f->pages), -ENODATA);
		snap_get_bytes(s, buf, 1);
		assert_int_equal(snap_stream_error(s), -ENODATA);
		snap_stream_close(s);
	}

	/* and a pipe */
	{
		int fds[2];

		assert_int_equal(pipe(fds), 0);
		assert_int_equal(write(fds[1], "abcdefgh", 8), 8);
		close(fds[1]);
		assert_int_equal(snap_stream_open_fd(fds[0], SNAP_STREAM_READ, true, &s), 0);
		snap_skip(s, 7);
		assert_false(snap_stream_at_eof(s));
		assert_int_equal(snap_get_u8(s), 'h');
		assert_true(snap_stream_at_eof(s));
		snap_get_pages(s, buf, 4096);
		assert_int_equal(snap_stream_error(s), -ENODATA);
		snap_stream_close(s);
	}
}

/* Skips longer than the read-ahead, to unaligned places, then pages. */
static void test_file_skip(void **state)
{
	struct fixture *f = *state;
	size_t len = 40u << 20;
	uint8_t *src = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *buf = f->pages;
	struct snap_stream *s;

	assert_true(src != MAP_FAILED);
	pattern_fill(src, len, 99);
	assert_int_equal(snap_stream_create_file(f->path, false, &s), 0);
	snap_put_pages(s, src, len);
	assert_int_equal(snap_stream_commit(s), 0);
	assert_int_equal(snap_stream_open_file(f->path, &s), 0);
	snap_skip(s, 3);
	assert_int_equal(snap_get_u8(s), src[3]);
	snap_skip(s, (20u << 20) + 5);                  /* far, unaligned */
	snap_get_bytes(s, buf, 10);
	assert_memory_equal(buf, src + (20u << 20) + 9, 10);
	snap_skip(s, 4096 - ((20u << 20) + 19) % 4096); /* aligned again */
	assert_int_equal(snap_stream_offset(s) % 4096, 0);
	snap_get_pages(s, buf, 1u << 20);
	assert_int_equal(snap_stream_error(s), 0);
	assert_memory_equal(buf, src + snap_stream_offset(s) - (1u << 20), 1u << 20);
	snap_skip(s, len - snap_stream_offset(s));
	assert_true(snap_stream_at_eof(s));
	snap_skip(s, 1);
	assert_int_equal(snap_stream_error(s), -ENODATA);
	snap_stream_close(s);
	munmap(src, len);
}

#define T(fn, setup) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_mem_roundtrip, setup_disk),
		T(test_file_roundtrip, setup_disk),
		T(test_file_roundtrip, setup_shm),
		T(test_fd_pipe_roundtrip, setup_disk),
		T(test_fd_socket_roundtrip, setup_disk),
		T(test_file_big_pages_unaligned, setup_disk),
		T(test_file_big_pages_aligned, setup_disk),
		T(test_file_big_pages_aligned, setup_shm),
		T(test_sticky_error, setup_disk),
		T(test_fault_walk_mem, setup_disk),
		T(test_fault_walk_file, setup_disk),
		T(test_fault_walk_file, setup_shm),
		T(test_fault_walk_read, setup_disk),
		T(test_dev_full, setup_disk),
		T(test_epipe, setup_disk),
		T(test_dir_removed, setup_disk),
		T(test_commit_semantics, setup_disk),
		T(test_commit_semantics, setup_shm),
		T(test_truncated, setup_disk),
		T(test_file_skip, setup_disk),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
