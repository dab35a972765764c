/* Micro-benchmark of the file stream (run by hand, not built by default):
 *   gcc -O2 -D_GNU_SOURCE -I. tests/unit/bench_stream.c snapshot/stream*.c \
 *       snapshot/crc32c.c -luring -lpthread -o /tmp/bench_stream
 *   /tmp/bench_stream /work/benchtmp/snap [GiB] [run MiB]
 * Writes GiB of page data from RAM in runs (a 32-byte record header, pad to
 * 4 KiB, the run's pages), commits (fsync + rename), then reads it back
 * with snap_get_pages (eager restore), and times crc32c over the buffer.
 * Compare with fio on the same file system:
 *   fio --name=w --rw=write --bs=4M --size=2G --ioengine=io_uring --direct=1 --iodepth=8 --filename=F
 *   fio --name=r --rw=read  --bs=4M --size=2G --ioengine=io_uring --direct=1 --iodepth=8 --filename=F */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "snapshot/crc32c.h"
#include "snapshot/stream.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "/work/benchtmp/snap";
	size_t len = (size_t)(argc > 2 ? atof(argv[2]) : 2) * (1u << 30);
	size_t run = (size_t)(argc > 3 ? atoi(argv[3]) : 64) << 20;
	uint8_t *ram = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct snap_stream *s;
	double t0, t1, t2;
	uint32_t crc;
	int err;

	if (ram == MAP_FAILED)
		return 1;
	for (size_t i = 0; i < len; i += 8)
		*(uint64_t *)(ram + i) = i * 0x9e3779b97f4a7c15ull;

	unlink(path);
	t0 = now();
	err = snap_stream_create_file(path, true, &s);
	if (err)
		return fprintf(stderr, "create: %s\n", strerror(-err)), 1;
	for (size_t off = 0; off < len; off += run) {
		size_t n = len - off < run ? len - off : run;

		snap_put_le64(s, 0x52414d5041525431ull);
		snap_put_le64(s, off);
		snap_put_le64(s, n);
		snap_put_le64(s, 0);
		snap_put_pad(s, 4096);
		snap_put_pages(s, ram + off, n);
	}
	snap_put_le32(s, 0xe0f);
	t1 = now();
	err = snap_stream_commit(s);
	t2 = now();
	if (err)
		return fprintf(stderr, "commit: %s\n", strerror(-err)), 1;
	printf("write+commit: %.2f GiB in %.3f s (commit %.3f s): %.2f GB/s\n",
	       len / 1073741824.0, t2 - t0, t2 - t1, len / (t2 - t0) / 1e9);

	memset(ram, 0, len);
	t0 = now();
	err = snap_stream_open_file(path, &s);
	if (err)
		return fprintf(stderr, "open: %s\n", strerror(-err)), 1;
	printf("reader O_DIRECT: %d\n", snap_stream_direct(s));
	for (size_t off = 0; off < len; off += run) {
		size_t n = len - off < run ? len - off : run;

		snap_skip(s, 4096);
		snap_get_pages(s, ram + off, n);
	}
	snap_get_le32(s);
	err = snap_stream_error(s);
	snap_stream_close(s);
	t1 = now();
	if (err)
		return fprintf(stderr, "read: %s\n", strerror(-err)), 1;
	for (size_t i = 0; i < len; i += 8)
		if (*(uint64_t *)(ram + i) != i * 0x9e3779b97f4a7c15ull)
			return fprintf(stderr, "mismatch at %zu\n", i), 1;
	printf("read: %.3f s: %.2f GB/s\n", t1 - t0, len / (t1 - t0) / 1e9);

	t0 = now();
	crc = crc32c(0, ram, len);
	t1 = now();
	printf("crc32c (%s): %.2f GB/s (%08x)\n", crc32c_hw_available() ? "sse4.2" : "tables",
	       len / (t1 - t0) / 1e9, crc);
	t0 = now();
	crc = crc32c_sw(0, ram, len / 4);
	t1 = now();
	printf("crc32c tables: %.2f GB/s\n", len / 4 / (t1 - t0) / 1e9);
	unlink(path);
	return 0;
}
