/* iotest: exercise every virtio-mmio device on the command line with the
 * kit's polling drivers and print machine-checkable lines (formats in
 * README.md; the kvm test suite parses them):
 *   blk: capacity/ro/serial, a read check of a host-written pattern, a
 *        write + FLUSH + read-back check of our own pattern, WRITE_ZEROES,
 *        or, read-only, one write that must fail with IOERR;
 *   net: frames to the broadcast address that a host-side echo returns;
 *   rng: 4096 bytes with enough distinct values.
 * Ends with "IOTEST result=PASS" or "IOTEST result=FAIL <reason>" and
 * kit_exit(). Runs on the boot vCPU; others park. */
#include "virtio.h"

#define IO_MIB			(1ull << 20)
#define IO_BUF_MAX		(256 * 1024)	/* largest request */
#define IO_DEPTH		8		/* requests in flight */
#define IO_ZERO_LEN		(64 * 1024)
#define IO_MISMATCH_LINES	3
#define IO_NET_MAX		4096		/* io.net.count limit */
#define IO_NET_ETHERTYPE	0x88b5
#define IO_NET_MAGIC		0x564d4d4e	/* "VMMN" */
#define IO_RNG_BYTES		4096
#define IO_RNG_DISTINCT_MIN	200

struct io_run {
	bool failed;
	char reason[160];
	uint64_t timeout_ns;		/* blk/rng: longest wait for a completion */
	uint8_t *bufs[IO_DEPTH];	/* IO_BUF_MAX each, shared by all blk devices */
};

/* Request sizes for streaming, cycled: 4 KiB .. 256 KiB. */
static const uint32_t io_sizes[] = {
	4096, 65536, 8192, 262144, 12288, 131072, 16384, 32768,
	196608, 4096, 102400, 262144, 20480, 49152,
};

/* Ethernet frame sizes (without FCS) for io.net, cycled: 60 .. 1514. */
static const uint32_t io_frame_sizes[] = {
	60, 1514, 61, 1500, 64, 1024, 128, 1513, 200, 777, 333, 1400, 90, 600, 1200, 999,
};

static void io_fail(struct io_run *run, const char *fmt, ...) KIT_PRINTF(2, 3);
static void io_fail(struct io_run *run, const char *fmt, ...)
{
	va_list ap;

	if (run->failed)
		return;		/* keep the first reason */
	run->failed = true;
	va_start(ap, fmt);
	kit_vsnprintf(run->reason, sizeof(run->reason), fmt, ap);
	va_end(ap);
}

static bool io_check_reset(struct io_run *run, const struct kit_virtio_dev *dev,
			   unsigned int d)
{
	if (!kit_virtio_needs_reset(dev))
		return false;
	kit_printf("DEVICE_NEEDS_RESET dev=%s%u\n", kit_virtio_type_name(dev->device_id), d);
	io_fail(run, "DEVICE_NEEDS_RESET %s%u", kit_virtio_type_name(dev->device_id), d);
	return true;
}

/* ------------------------------------------------------------------ blk --- */

/* Pattern the host writes into the image before the run. */
static uint64_t io_host_word(uint64_t off)
{
	return (off / 8) * 0x9E3779B97F4A7C15ull ^ 0x00000000D15C0DE5ull;
}

/* Pattern the guest writes. */
static uint64_t io_guest_word(uint64_t off)
{
	return (off / 8) * 0xC2B2AE3D27D4EB4Full ^ 0x000000006E657721ull;
}

struct io_stream {
	struct kit_vblk *blk;
	unsigned int d;
	uint32_t type;			/* KIT_VBLK_T_IN or _OUT */
	const char *what;		/* for messages: "read_check", ... */
	uint64_t (*pattern)(uint64_t off);	/* OUT: fill; IN: verify (NULL: no) */
	uint64_t mismatches;		/* u64 words; a failed request counts all its words */
	unsigned int lines;
};

struct io_inflight {
	uint64_t off;
	uint32_t len;
};

static void io_stream_done(struct io_stream *st, const struct io_inflight *req,
			   const uint8_t *buf, uint8_t status)
{
	if (status != KIT_VBLK_S_OK) {
		if (st->lines++ < IO_MISMATCH_LINES)
			kit_printf("BLK dev=%u io_error op=%s off=0x%llx len=%u status=%u\n",
				   st->d, st->what, (unsigned long long)req->off, req->len,
				   status);
		st->mismatches += req->len / 8;
		return;
	}
	if (st->type != KIT_VBLK_T_IN || !st->pattern)
		return;
	for (uint32_t i = 0; i < req->len; i += 8) {
		uint64_t got, want = st->pattern(req->off + i);

		memcpy(&got, buf + i, 8);
		if (got == want)
			continue;
		if (st->lines++ < IO_MISMATCH_LINES)
			kit_printf("BLK dev=%u mismatch op=%s off=0x%llx got=0x%016llx want=0x%016llx\n",
				   st->d, st->what, (unsigned long long)(req->off + i),
				   (unsigned long long)got, (unsigned long long)want);
		st->mismatches++;
	}
}

/* Stream [off, off + len) through IO_DEPTH buffers with requests of the
 * io_sizes cycle, several in flight. 0, or <0 if the device stopped
 * answering or broke the protocol. */
static int io_stream_run(struct io_run *run, struct io_stream *st, uint64_t off, uint64_t len)
{
	struct io_inflight reqs[IO_DEPTH];
	uint16_t free_bufs[IO_DEPTH];
	unsigned int nfree = IO_DEPTH, k = 0;
	uint64_t pos = off, end = off + len, last_progress = kit_now_ns();
	int ret;

	for (unsigned int i = 0; i < IO_DEPTH; i++)
		free_bufs[i] = (uint16_t)i;
	while (pos < end || nfree < IO_DEPTH) {
		uint64_t token;
		uint8_t status;
		bool queued = false;

		while (pos < end && nfree) {
			uint32_t n = io_sizes[k % (sizeof(io_sizes) / sizeof(io_sizes[0]))];
			unsigned int b = free_bufs[nfree - 1];

			if (n > end - pos)
				n = (uint32_t)(end - pos);
			if (st->type == KIT_VBLK_T_OUT) {
				for (uint32_t i = 0; i < n; i += 8) {
					uint64_t w = st->pattern(pos + i);

					memcpy(run->bufs[b] + i, &w, 8);
				}
			}
			ret = kit_vblk_submit(st->blk, st->type, pos / KIT_VBLK_SECTOR,
					      run->bufs[b], n, b);
			if (ret == -KIT_ENOSPC)
				break;
			if (ret < 0)
				return ret;
			reqs[b] = (struct io_inflight){ pos, n };
			nfree--;
			pos += n;
			k++;
			queued = true;
		}
		if (queued)
			kit_vblk_kick(st->blk);
		while ((ret = kit_vblk_poll(st->blk, &token, &status)) > 0) {
			if (token >= IO_DEPTH)
				return -KIT_EIO;
			io_stream_done(st, &reqs[token], run->bufs[token], status);
			free_bufs[nfree++] = (uint16_t)token;
			last_progress = kit_now_ns();
		}
		if (ret < 0)
			return ret;
		if (kit_now_ns() - last_progress > run->timeout_ns)
			return -KIT_ETIMEDOUT;
		kit_cpu_relax();
	}
	return 0;
}

/* GET_ID into a printable token (spaces and control bytes become '_'). */
static void io_blk_serial(struct io_run *run, struct kit_vblk *blk, char *out)
{
	int st = kit_vblk_sync(blk, KIT_VBLK_T_GET_ID, 0, run->bufs[0],
			       KIT_VBLK_ID_BYTES, run->timeout_ns);

	out[0] = '\0';
	if (st != KIT_VBLK_S_OK)
		return;
	for (unsigned int i = 0; i < KIT_VBLK_ID_BYTES && run->bufs[0][i]; i++) {
		char c = (char)run->bufs[0][i];

		out[i] = c > ' ' && c < 0x7f ? c : '_';
		out[i + 1] = '\0';
	}
}

static void io_blk_read_check(struct io_run *run, struct kit_vblk *blk, unsigned int d)
{
	uint64_t len = kit_param_u64("io.blk.check_mib", 4) * IO_MIB;
	struct io_stream st = { blk, d, KIT_VBLK_T_IN, "read_check", io_host_word, 0, 0 };
	int ret;

	if (len > blk->capacity * KIT_VBLK_SECTOR)
		len = blk->capacity * KIT_VBLK_SECTOR;
	ret = io_stream_run(run, &st, 0, len);
	if (ret < 0) {
		kit_printf("BLK dev=%u read_check error=%d\n", d, ret);
		io_fail(run, "blk%u read_check error %d", d, ret);
		return;
	}
	kit_printf("BLK dev=%u read_check bytes=%llu mismatches=%llu\n", d,
		   (unsigned long long)len, (unsigned long long)st.mismatches);
	if (st.mismatches)
		io_fail(run, "blk%u read_check mismatches=%llu", d,
			(unsigned long long)st.mismatches);
}

static void io_blk_write_check(struct io_run *run, struct kit_vblk *blk, unsigned int d)
{
	uint64_t off = kit_param_u64("io.blk.write_off", 8 * IO_MIB);
	uint64_t len = kit_param_u64("io.blk.write_mib", 2) * IO_MIB;
	struct io_stream wr = { blk, d, KIT_VBLK_T_OUT, "write", io_guest_word, 0, 0 };
	struct io_stream rd = { blk, d, KIT_VBLK_T_IN, "write_check", io_guest_word, 0, 0 };
	char flush[8] = "none";
	int ret;

	if (off % KIT_VBLK_SECTOR) {
		io_fail(run, "io.blk.write_off=%llu is not a multiple of 512",
			(unsigned long long)off);
		return;
	}
	if (off + len > blk->capacity * KIT_VBLK_SECTOR || off + len < off) {
		kit_printf("BLK dev=%u write_check skipped capacity=%llu too small\n", d,
			   (unsigned long long)blk->capacity);
		return;
	}
	ret = io_stream_run(run, &wr, off, len);
	if (ret == 0 && blk->flush) {
		ret = kit_vblk_sync(blk, KIT_VBLK_T_FLUSH, 0, NULL, 0, run->timeout_ns);
		if (ret >= 0) {
			kit_snprintf(flush, sizeof(flush), "%d", ret);
			if (ret != KIT_VBLK_S_OK)
				io_fail(run, "blk%u flush status=%d", d, ret);
			ret = 0;
		}
	}
	if (ret == 0)
		ret = io_stream_run(run, &rd, off, len);
	if (ret < 0) {
		kit_printf("BLK dev=%u write_check error=%d\n", d, ret);
		io_fail(run, "blk%u write_check error %d", d, ret);
		return;
	}
	kit_printf("BLK dev=%u write_check bytes=%llu mismatches=%llu flush=%s\n", d,
		   (unsigned long long)len, (unsigned long long)(wr.mismatches + rd.mismatches),
		   flush);
	if (wr.mismatches + rd.mismatches)
		io_fail(run, "blk%u write_check mismatches=%llu", d,
			(unsigned long long)(wr.mismatches + rd.mismatches));
}

/* Write our pattern over the range, WRITE_ZEROES it (in pieces of at most
 * max_write_zeroes sectors), read back zeros. */
static void io_blk_write_zeroes(struct io_run *run, struct kit_vblk *blk, unsigned int d)
{
	uint64_t off = kit_param_u64("io.blk.zero_off", 12 * IO_MIB);
	struct io_stream wr = { blk, d, KIT_VBLK_T_OUT, "write_zeroes", io_guest_word, 0, 0 };
	uint32_t piece = IO_ZERO_LEN;
	int ret, status = -1;
	bool ok = false;

	if (!blk->write_zeroes)
		return;
	if (off % KIT_VBLK_SECTOR || off + IO_ZERO_LEN > blk->capacity * KIT_VBLK_SECTOR) {
		kit_printf("BLK dev=%u write_zeroes skipped capacity=%llu too small\n", d,
			   (unsigned long long)blk->capacity);
		return;
	}
	if (blk->max_write_zeroes && blk->max_write_zeroes < IO_ZERO_LEN / KIT_VBLK_SECTOR)
		piece = blk->max_write_zeroes * KIT_VBLK_SECTOR;
	ret = io_stream_run(run, &wr, off, IO_ZERO_LEN);
	for (uint32_t done = 0; ret == 0 && done < IO_ZERO_LEN; done += piece) {
		uint32_t n = IO_ZERO_LEN - done < piece ? IO_ZERO_LEN - done : piece;

		status = kit_vblk_sync(blk, KIT_VBLK_T_WRITE_ZEROES,
				       (off + done) / KIT_VBLK_SECTOR, NULL, n, run->timeout_ns);
		if (status < 0)
			ret = status;
		if (status != KIT_VBLK_S_OK)
			break;
	}
	if (ret == 0 && status == KIT_VBLK_S_OK) {
		ret = kit_vblk_sync(blk, KIT_VBLK_T_IN, off / KIT_VBLK_SECTOR, run->bufs[0],
				    IO_ZERO_LEN, run->timeout_ns);
		ok = ret == KIT_VBLK_S_OK && wr.mismatches == 0;
		for (uint32_t i = 0; ok && i < IO_ZERO_LEN; i++)
			ok = run->bufs[0][i] == 0;
		ret = ret < 0 ? ret : 0;
	}
	if (ret < 0) {
		kit_printf("BLK dev=%u write_zeroes error=%d\n", d, ret);
		io_fail(run, "blk%u write_zeroes error %d", d, ret);
		return;
	}
	kit_printf("BLK dev=%u write_zeroes status=%d ok=%d\n", d, status, ok);
	if (!ok)
		io_fail(run, "blk%u write_zeroes status=%d ok=0", d, status);
}

/* Read-only: rewrite sector 0..7 with what it holds (so a device that
 * wrongly accepts the write changes nothing) and expect IOERR. */
static void io_blk_ro_write(struct io_run *run, struct kit_vblk *blk, unsigned int d)
{
	int st = -1;

	if (blk->capacity < 8) {
		kit_printf("BLK dev=%u ro_write skipped capacity=%llu too small\n", d,
			   (unsigned long long)blk->capacity);
		return;
	}
	st = kit_vblk_sync(blk, KIT_VBLK_T_IN, 0, run->bufs[0], 4096, run->timeout_ns);
	if (st == KIT_VBLK_S_OK)
		st = kit_vblk_sync(blk, KIT_VBLK_T_OUT, 0, run->bufs[0], 4096, run->timeout_ns);
	else if (st >= 0)
		st = -KIT_EIO;		/* the read before it failed */
	kit_printf("BLK dev=%u ro_write status=%d\n", d, st);
	if (st != KIT_VBLK_S_IOERR)
		io_fail(run, "blk%u ro_write status=%d (want 1)", d, st);
}

static void io_blk(struct io_run *run, struct kit_virtio_dev *dev, unsigned int d)
{
	struct kit_vblk blk;
	char serial[KIT_VBLK_ID_BYTES + 1];
	int ret = kit_vblk_init(&blk, dev, 0);

	if (ret < 0) {
		kit_printf("BLK dev=%u init_error=%d status=0x%x\n", d, ret,
			   kit_virtio_status(dev));
		io_fail(run, "blk%u init error %d", d, ret);
		return;
	}
	if (io_check_reset(run, dev, d))
		return;
	io_blk_serial(run, &blk, serial);
	kit_printf("BLK dev=%u capacity=%llu ro=%d serial=%s\n", d,
		   (unsigned long long)blk.capacity, blk.ro, serial);
	io_blk_read_check(run, &blk, d);
	if (blk.ro) {
		io_blk_ro_write(run, &blk, d);
	} else {
		io_blk_write_check(run, &blk, d);
		io_blk_write_zeroes(run, &blk, d);
	}
	io_check_reset(run, dev, d);
	kit_virtio_reset(dev);
}

/* ------------------------------------------------------------------ net --- */

static void io_put_le32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);	/* x86: little-endian */
}

static uint32_t io_get_le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint32_t io_frame_size(uint32_t seq)
{
	return io_frame_sizes[seq % (sizeof(io_frame_sizes) / sizeof(io_frame_sizes[0]))];
}

/* Frame seq: broadcast, our MAC, ethertype (big-endian), then the payload
 * (u32s little-endian, as tests/kvm/net_echo.py reads them): magic, seq,
 * length = payload bytes before the sum (frame length - 18), then bytes
 * b[i] = (seq * 31 + i) & 0xff, and the u32 sum of every payload byte
 * before it. */
static uint32_t io_frame_build(uint8_t *f, const uint8_t mac[6], uint32_t seq)
{
	uint32_t len = io_frame_size(seq), sum = 0;

	memset(f, 0xff, 6);
	memcpy(f + 6, mac, 6);
	f[12] = IO_NET_ETHERTYPE >> 8;
	f[13] = IO_NET_ETHERTYPE & 0xff;
	io_put_le32(f + 14, IO_NET_MAGIC);
	io_put_le32(f + 18, seq);
	io_put_le32(f + 22, len - 18);
	for (uint32_t i = 0; 26 + i < len - 4; i++)
		f[26 + i] = (uint8_t)((seq * 31 + i) & 0xff);
	for (uint32_t i = 14; i < len - 4; i++)
		sum += f[i];
	io_put_le32(f + len - 4, sum);
	return len;
}

/* 1: a good echo of a frame not seen before; 0: not ours (other
 * ethertype); -1: bad. */
static int io_frame_check(const uint8_t *f, uint32_t len, const uint8_t mac[6],
			  uint32_t count, uint8_t *seen)
{
	uint32_t seq, sum = 0;

	if (len < 14 || (f[12] << 8 | f[13]) != IO_NET_ETHERTYPE)
		return 0;
	if (len < 60 || memcmp(f, mac, 6) || io_get_le32(f + 14) != IO_NET_MAGIC)
		return -1;
	seq = io_get_le32(f + 18);
	if (seq >= count || seen[seq] || io_get_le32(f + 22) != len - 18 ||
	    len != io_frame_size(seq))
		return -1;
	for (uint32_t i = 0; 26 + i < len - 4; i++)
		if (f[26 + i] != (uint8_t)((seq * 31 + i) & 0xff))
			return -1;
	for (uint32_t i = 14; i < len - 4; i++)
		sum += f[i];
	if (io_get_le32(f + len - 4) != sum)
		return -1;
	seen[seq] = 1;
	return 1;
}

static void io_net(struct io_run *run, struct kit_virtio_dev *dev, unsigned int d)
{
	static uint8_t seen[IO_NET_MAX];
	uint8_t frame[KIT_VNET_FRAME_MAX], rx[KIT_VNET_FRAME_MAX];
	uint64_t count = kit_param_u64("io.net.count", 64);
	uint64_t timeout_ns = kit_param_u64("io.net.timeout_ms", 5000) * 1000000;
	uint64_t window = kit_param_u64("io.net.window", 32);
	uint32_t sent = 0, received = 0, bad = 0;
	struct kit_vnet net;
	uint64_t deadline;
	int ret;

	if (count > IO_NET_MAX)
		count = IO_NET_MAX;
	ret = kit_vnet_init(&net, dev);
	if (ret < 0) {
		kit_printf("NET dev=%u init_error=%d status=0x%x\n", d, ret,
			   kit_virtio_status(dev));
		io_fail(run, "net%u init error %d", d, ret);
		return;
	}
	if (io_check_reset(run, dev, d))
		return;
	kit_printf("NET dev=%u mac=%02x:%02x:%02x:%02x:%02x:%02x\n", d, net.mac[0],
		   net.mac[1], net.mac[2], net.mac[3], net.mac[4], net.mac[5]);
	memset(seen, 0, sizeof(seen));
	deadline = kit_now_ns() + timeout_ns;
	while (received < count && kit_now_ns() < deadline) {
		/* At most `window` frames without their echo: a slow echo on the
		 * host (a small socket buffer) must not turn a burst into loss. */
		if (sent < count && sent - received < window) {
			ret = kit_vnet_send(&net, frame, io_frame_build(frame, net.mac, sent));
			if (ret == 0)
				sent++;
			else if (ret != -KIT_ENOSPC)
				break;
		}
		while ((ret = kit_vnet_recv(&net, rx, sizeof(rx))) != 0) {
			int c = ret < 0 ? -1 : io_frame_check(rx, (uint32_t)ret, net.mac,
							      (uint32_t)count, seen);

			received += c > 0;
			bad += c < 0;
		}
		kit_cpu_relax();
	}
	if (ret < 0 && ret != -KIT_ENOSPC && ret != -KIT_EIO)
		kit_printf("NET dev=%u error=%d\n", d, ret);
	kit_printf("NET dev=%u sent=%u received=%u bad=%u\n", d, sent, received, bad);
	if (sent != count || received != count || bad)
		io_fail(run, "net%u sent=%u received=%u bad=%u of %llu", d, sent, received,
			bad, (unsigned long long)count);
	io_check_reset(run, dev, d);
	kit_virtio_reset(dev);
}

/* ------------------------------------------------------------------ rng --- */

static void io_rng(struct io_run *run, struct kit_virtio_dev *dev, unsigned int d)
{
	static uint8_t buf[IO_RNG_BYTES];
	bool hit[256] = { false };
	struct kit_vrng rng;
	unsigned int distinct = 0;
	long n;
	int ret = kit_vrng_init(&rng, dev);

	if (ret < 0) {
		kit_printf("RNG dev=%u init_error=%d status=0x%x\n", d, ret,
			   kit_virtio_status(dev));
		io_fail(run, "rng%u init error %d", d, ret);
		return;
	}
	if (io_check_reset(run, dev, d))
		return;
	n = kit_vrng_read(&rng, buf, sizeof(buf), run->timeout_ns);
	for (long i = 0; i < n; i++) {
		distinct += !hit[buf[i]];
		hit[buf[i]] = true;
	}
	kit_printf("RNG dev=%u bytes=%ld distinct=%u\n", d, n, distinct);
	if (n != IO_RNG_BYTES || distinct < IO_RNG_DISTINCT_MIN)
		io_fail(run, "rng%u bytes=%ld distinct=%u", d, n, distinct);
	io_check_reset(run, dev, d);
	kit_virtio_reset(dev);
}

/* ----------------------------------------------------------------- main --- */

static void io_run_devices(struct io_run *run, struct kit_virtio_dev *devs, unsigned int n,
			   bool do_net);

static void io_run_all(struct io_run *run)
{
	static struct kit_virtio_dev devs[KIT_VIRTIO_MAX_DEVS];
	unsigned int skipped, n = kit_virtio_discover(devs, KIT_VIRTIO_MAX_DEVS, &skipped);
	unsigned int nblk = 0, nnet = 0, nrng = 0;
	bool do_net = kit_param_u64("io.net", 1) != 0;

	for (unsigned int i = 0; i < n; i++) {
		nblk += devs[i].device_id == KIT_VIRTIO_ID_BLK;
		nnet += devs[i].device_id == KIT_VIRTIO_ID_NET;
		nrng += devs[i].device_id == KIT_VIRTIO_ID_RNG;
	}
	kit_printf("IOTEST devices blk=%u net=%u rng=%u\n", nblk, nnet, nrng);
	if (skipped)
		io_fail(run, "%u virtio_mmio.device entries unusable (see virtio: lines)",
			skipped);
	for (unsigned int i = 0; i < n; i++) {
		if (devs[i].device_id != KIT_VIRTIO_ID_BLK &&
		    devs[i].device_id != KIT_VIRTIO_ID_NET &&
		    devs[i].device_id != KIT_VIRTIO_ID_RNG)
			kit_printf("IOTEST ignoring device id=%u at 0x%llx\n",
				   devs[i].device_id, (unsigned long long)devs[i].base);
	}
	if (nblk) {
		for (unsigned int i = 0; i < IO_DEPTH; i++) {
			run->bufs[i] = kit_dma_alloc(IO_BUF_MAX, 4096);
			if (!run->bufs[i]) {
				io_fail(run, "no RAM for I/O buffers");
				return;
			}
		}
	}
	/* io.rounds=N repeats the device checks (each round re-initialises
	 * the devices), so a checkpoint can land in the middle of I/O. */
	for (uint64_t round = 1, rounds = kit_param_u64("io.rounds", 1); round <= rounds &&
	     !run->failed; round++) {
		if (rounds > 1)
			kit_printf("IOTEST round %llu of %llu\n", (unsigned long long)round,
				   (unsigned long long)rounds);
		io_run_devices(run, devs, n, do_net);
		kit_delay_ns(kit_param_u64("io.round_ms", 0) * 1000000);
	}
}

static void io_run_devices(struct io_run *run, struct kit_virtio_dev *devs, unsigned int n,
			   bool do_net)
{
	unsigned int d = 0;

	for (unsigned int i = 0; i < n; i++)
		if (devs[i].device_id == KIT_VIRTIO_ID_BLK)
			io_blk(run, &devs[i], d++);
	d = 0;
	for (unsigned int i = 0; i < n; i++) {
		if (devs[i].device_id != KIT_VIRTIO_ID_NET)
			continue;
		if (do_net)
			io_net(run, &devs[i], d);
		else
			kit_printf("NET dev=%u skipped io.net=0\n", d);
		d++;
	}
	d = 0;
	for (unsigned int i = 0; i < n; i++)
		if (devs[i].device_id == KIT_VIRTIO_ID_RNG)
			io_rng(run, &devs[i], d++);
}

void kit_main(unsigned int cpu, const void *boot_params)
{
	static struct io_run run;
	uint64_t t0;

	(void)boot_params;
	if (cpu != 0)
		kit_park();
	t0 = kit_now_ns();
	run.timeout_ns = kit_param_u64("io.timeout_ms", 10000) * 1000000;
	io_run_all(&run);
	kit_printf("IOTEST elapsed_ms=%llu\n", (unsigned long long)((kit_now_ns() - t0) / 1000000));
	if (run.failed)
		kit_printf("IOTEST result=FAIL %s\n", run.reason);
	else
		kit_puts("IOTEST result=PASS\n");
	kit_exit();
}
