/* iobench: the guest half of scripts/bench-io. Drives the first virtio-blk
 * and/or the first virtio-net device on the command line as fast as the
 * device takes requests, with the kit's polling drivers in ring 3, and
 * prints one machine-readable line per result (formats in README.md):
 *
 *   BENCH blk mode=seqread bs=1048576 qd=16 span=<bytes> ops=<n> bytes=<n> ns=<n> MBps=<x> IOPS=<y> errors=<e> flush=<s>
 *   BENCH net mode=tx size=1514 frames=<n> bytes=<n> ns=<n> Mbps=<x> pps=<y> errors=<e>
 *
 * Time is the TSC (bench.tsc_khz=, else the kit's CPUID value). Runs on the
 * boot vCPU; others park. Ends with "IOBENCH done" and kit_exit(). */
#include "virtio.h"

#define MIB			(1ull << 20)
#define BENCH_QD_MAX		128
#define BENCH_NET_ETHERTYPE	0x88b5
#define BENCH_NET_MAGIC		0x49424e43	/* "IBNC" */
#define BENCH_STALL_NS		(30ull * 1000000000)	/* no completion: give up */

static uint64_t tsc_khz, tsc0;

/* ns since bench_time_init, from the TSC at tsc_khz. */
static uint64_t bench_now(void)
{
	uint64_t t = kit_rdtsc() - tsc0;

	return t / tsc_khz * 1000000 + t % tsc_khz * 1000000 / tsc_khz;
}

static void bench_time_init(void)
{
	tsc_khz = kit_param_u64("bench.tsc_khz", 0);
	if (!tsc_khz)
		tsc_khz = kit_tsc_khz();
	tsc0 = kit_rdtsc();
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t bench_rand(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

/* value * 10^scale / div, printed with one decimal. */
static void fmt_rate(char *buf, size_t size, uint64_t num, uint64_t div)
{
	uint64_t tenths = div ? num * 10 / div : 0;

	kit_snprintf(buf, size, "%llu.%llu", (unsigned long long)(tenths / 10),
		     (unsigned long long)(tenths % 10));
}

/* ------------------------------------------------------------------ blk --- */

enum { BLK_SEQREAD, BLK_SEQWRITE, BLK_RANDREAD, BLK_RANDWRITE };
static const char *const blk_modes[] = { "seqread", "seqwrite", "randread", "randwrite" };

static void bench_blk(struct kit_virtio_dev *dev, int mode)
{
	static struct kit_vblk blk;
	static uint8_t *bufs[BENCH_QD_MAX];
	static uint16_t free_buf[BENCH_QD_MAX];
	bool write = mode == BLK_SEQWRITE || mode == BLK_RANDWRITE;
	bool rand = mode == BLK_RANDREAD || mode == BLK_RANDWRITE;
	uint64_t bs = kit_param_u64("bench.bs", rand ? 4096 : MIB);
	uint64_t qd = kit_param_u64("bench.qd", rand ? 32 : 16);
	uint64_t span = kit_param_u64("bench.mib", 1024) * MIB;
	uint64_t secs = kit_param_u64("bench.secs", rand ? 3 : 0);
	uint64_t ops = 0, errors = 0, issued = 0, next = 0, blocks, nfree, t0, t_end;
	uint64_t last_done, deadline, token, total;
	int flush = -1, ret;
	uint8_t status;
	char mbps[32], iops[32];

	ret = kit_vblk_init(&blk, dev, 256);
	if (ret < 0)
		kit_panic("iobench: blk init error %d status 0x%x", ret, kit_virtio_status(dev));
	if (!bs || bs % KIT_VBLK_SECTOR || bs > 4 * MIB)
		kit_panic("iobench: bench.bs=%llu: a multiple of 512 up to 4 MiB",
			  (unsigned long long)bs);
	if (!qd || qd > BENCH_QD_MAX)
		kit_panic("iobench: bench.qd=%llu: 1..%d", (unsigned long long)qd, BENCH_QD_MAX);
	if (span > blk.capacity * KIT_VBLK_SECTOR)
		span = blk.capacity * KIT_VBLK_SECTOR;
	blocks = span / bs;
	if (!blocks)
		kit_panic("iobench: disk of %llu sectors is smaller than bench.bs",
			  (unsigned long long)blk.capacity);
	if (write && blk.ro)
		kit_panic("iobench: %s on a read-only disk", blk_modes[mode]);
	for (uint64_t i = 0; i < qd; i++) {
		bufs[i] = kit_dma_alloc(bs, 4096);
		if (!bufs[i])
			kit_panic("iobench: no RAM for %llu buffers of %llu bytes (--mem)",
				  (unsigned long long)qd, (unsigned long long)bs);
		if (write)
			for (uint64_t w = 0; w < bs / 8; w++)
				((uint64_t *)bufs[i])[w] = (i * bs / 8 + w) * 0xC2B2AE3D27D4EB4Full;
		free_buf[i] = (uint16_t)i;
	}
	nfree = qd;
	/* One pass (secs=0): every block once. Timed: until the deadline. */
	total = secs ? UINT64_MAX : blocks;

	t0 = bench_now();
	deadline = secs ? t0 + secs * 1000000000ull : UINT64_MAX;
	last_done = t0;
	for (;;) {
		bool more = issued < total && bench_now() < deadline;
		unsigned int got = 0;

		while (more && nfree) {
			uint64_t b = rand ? bench_rand() % blocks : next;
			uint16_t i = free_buf[--nfree];

			next = next + 1 == blocks ? 0 : next + 1;
			ret = kit_vblk_submit(&blk, write ? KIT_VBLK_T_OUT : KIT_VBLK_T_IN,
					      b * (bs / KIT_VBLK_SECTOR), bufs[i], (uint32_t)bs, i);
			if (ret < 0)
				kit_panic("iobench: submit error %d", ret);
			issued++;
			more = issued < total;
		}
		kit_vblk_kick(&blk);
		while ((ret = kit_vblk_poll(&blk, &token, &status)) > 0) {
			free_buf[nfree++] = (uint16_t)token;
			if (status == KIT_VBLK_S_OK)
				ops++;
			else
				errors++;
			got++;
		}
		if (ret < 0)
			kit_panic("iobench: poll error %d", ret);
		if (nfree == qd && !(issued < total && bench_now() < deadline))
			break;
		if (got) {
			last_done = bench_now();
		} else {
			if (bench_now() - last_done > BENCH_STALL_NS)
				kit_panic("iobench: no completion for 30 s (%llu in flight)",
					  (unsigned long long)(qd - nfree));
			kit_cpu_relax();
		}
	}
	if (write && blk.flush) {
		/* Part of the timing, like fio's end_fsync. (Not kit_vblk_sync: it
		 * keeps time with the kit's CPUID TSC rate, which QEMU lacks.) */
		ret = kit_vblk_submit(&blk, KIT_VBLK_T_FLUSH, 0, NULL, 0, 0);
		if (ret < 0)
			kit_panic("iobench: flush submit error %d", ret);
		kit_vblk_kick(&blk);
		last_done = bench_now();
		while (!(ret = kit_vblk_poll(&blk, &token, &status))) {
			if (bench_now() - last_done > BENCH_STALL_NS)
				kit_panic("iobench: no FLUSH completion for 30 s");
			kit_cpu_relax();
		}
		if (ret < 0)
			kit_panic("iobench: poll error %d", ret);
		flush = status;
	}
	t_end = bench_now();

	fmt_rate(mbps, sizeof(mbps), ops * bs * 1000, t_end - t0);
	fmt_rate(iops, sizeof(iops), ops * 1000000000ull, t_end - t0);
	kit_printf("BENCH blk mode=%s bs=%llu qd=%llu span=%llu ops=%llu bytes=%llu ns=%llu "
		   "MBps=%s IOPS=%s errors=%llu flush=%d\n", blk_modes[mode],
		   (unsigned long long)bs, (unsigned long long)qd, (unsigned long long)span,
		   (unsigned long long)ops, (unsigned long long)(ops * bs),
		   (unsigned long long)(t_end - t0), mbps, iops, (unsigned long long)errors, flush);
	kit_virtio_reset(dev);
}

/* ------------------------------------------------------------------ net --- */

#define VNET_SLOT	1536	/* as kit/virtio_net.c lays out its buffers */

static void bench_net_report(const char *mode, uint64_t size, uint64_t frames,
			     uint64_t bytes, uint64_t ns, uint64_t errors)
{
	char mbit[32], pps[32];

	fmt_rate(mbit, sizeof(mbit), bytes * 8 * 1000, ns);
	fmt_rate(pps, sizeof(pps), frames * 1000000000ull, ns);
	kit_printf("BENCH net mode=%s size=%llu frames=%llu bytes=%llu ns=%llu Mbps=%s pps=%s "
		   "errors=%llu\n", mode, (unsigned long long)size, (unsigned long long)frames,
		   (unsigned long long)bytes, (unsigned long long)ns, mbit, pps,
		   (unsigned long long)errors);
}

/* Send size-byte frames for secs seconds: every free TX slot gets a frame,
 * one notify per batch (like Linux's xmit_more). A frame counts once the
 * device has returned its buffer. The frames go to 02:00:00:00:00:01
 * (nobody), ethertype 0x88b5: payload magic, sequence number. */
static void bench_net_tx(struct kit_vnet *net, uint64_t size, uint64_t secs)
{
	uint64_t frames = 0, seq = 0, errors = 0, t0, deadline, last_done, slot;
	uint32_t len;
	int ret;

	/* Every slot holds a frame already; only the sequence number changes. */
	for (unsigned int i = 0; i < net->tx.size; i++) {
		uint8_t *f = net->tx_bufs + (size_t)i * VNET_SLOT + KIT_VNET_HDR;
		uint32_t magic = BENCH_NET_MAGIC;

		memset(f, 0, 6);
		f[0] = 0x02;
		f[5] = 0x01;
		memcpy(f + 6, net->mac, 6);
		f[12] = BENCH_NET_ETHERTYPE >> 8;
		f[13] = BENCH_NET_ETHERTYPE & 0xff;
		memcpy(f + 14, &magic, 4);
		for (uint64_t b = 22; b < size; b++)
			f[b] = (uint8_t)b;
	}
	t0 = bench_now();
	deadline = t0 + secs * 1000000000ull;
	last_done = t0;
	for (;;) {
		bool sending = bench_now() < deadline;
		unsigned int got = 0;

		while ((ret = kit_virtq_get(&net->tx, &slot, &len)) > 0) {
			net->tx_free[net->tx_nfree++] = (uint16_t)slot;
			frames++;
			got++;
		}
		if (ret < 0)
			errors++;
		if (!sending && net->tx_nfree == net->tx.size)
			break;
		while (sending && net->tx_nfree) {
			uint16_t s = net->tx_free[--net->tx_nfree];
			uint8_t *p = net->tx_bufs + (size_t)s * VNET_SLOT;
			struct kit_vbuf b = { p, (uint32_t)(KIT_VNET_HDR + size) };
			uint32_t sq = (uint32_t)seq++;

			memcpy(p + KIT_VNET_HDR + 18, &sq, 4);
			if (kit_virtq_add(&net->tx, &b, 1, 0, s) < 0)
				kit_panic("iobench: tx queue full with a free slot");
		}
		kit_virtq_kick(&net->tx);
		if (got) {
			last_done = bench_now();
		} else {
			if (bench_now() - last_done > BENCH_STALL_NS)
				kit_panic("iobench: no TX completion for 30 s");
			kit_cpu_relax();
		}
	}
	bench_net_report("tx", size, frames, frames * size, bench_now() - t0, errors);
}

/* Count frames of our ethertype for secs seconds from the first one (the
 * host sends them; wait up to 30 s for it). Buffers are reposted in
 * batches, one notify each. */
static void bench_net_rx(struct kit_vnet *net, uint64_t secs)
{
	uint64_t frames = 0, bytes = 0, other = 0, errors = 0, t0 = 0, deadline = 0, slot;
	uint64_t wait_end = bench_now() + BENCH_STALL_NS, size = 0;
	uint32_t len;
	int ret;

	for (;;) {
		uint64_t now = bench_now();

		if (t0 ? now >= deadline : now >= wait_end)
			break;
		while ((ret = kit_virtq_get(&net->rx, &slot, &len)) > 0) {
			const uint8_t *f = net->rx_bufs + slot * VNET_SLOT + KIT_VNET_HDR;
			struct kit_vbuf b = { net->rx_bufs + slot * VNET_SLOT, KIT_VNET_BUF };

			if (len <= KIT_VNET_HDR) {
				errors++;
			} else if ((f[12] << 8 | f[13]) != BENCH_NET_ETHERTYPE) {
				other++;
			} else {
				if (!t0) {
					t0 = bench_now();
					deadline = t0 + secs * 1000000000ull;
				} else {
					frames++;	/* the first frame starts the clock */
					bytes += len - KIT_VNET_HDR;
				}
				size = len - KIT_VNET_HDR;
			}
			if (kit_virtq_add(&net->rx, &b, 0, 1, slot) < 0)
				kit_panic("iobench: rx repost failed");
		}
		if (ret < 0)
			errors++;
		kit_virtq_kick(&net->rx);
		kit_cpu_relax();
	}
	if (!t0)
		kit_panic("iobench: no frame of ethertype 0x%x within 30 s", BENCH_NET_ETHERTYPE);
	bench_net_report("rx", size, frames, bytes, bench_now() - t0, errors);
	if (other)
		kit_printf("IOBENCH net rx other_frames=%llu\n", (unsigned long long)other);
}

static void bench_net(struct kit_virtio_dev *dev, const char *mode)
{
	static struct kit_vnet net;
	uint64_t size = kit_param_u64("bench.net.size", 1514);
	uint64_t secs = kit_param_u64("bench.net.secs", 3);
	int ret;

	if (size < 60 || size > KIT_VNET_FRAME_MAX)
		kit_panic("iobench: bench.net.size=%llu: 60..1514", (unsigned long long)size);
	if (!secs)
		secs = 1;
	ret = kit_vnet_init(&net, dev);
	if (ret < 0)
		kit_panic("iobench: net init error %d status 0x%x", ret, kit_virtio_status(dev));
	kit_printf("IOBENCH net mac=%02x:%02x:%02x:%02x:%02x:%02x txq=%u rxq=%u\n", net.mac[0],
		   net.mac[1], net.mac[2], net.mac[3], net.mac[4], net.mac[5], net.tx.size,
		   net.rx.size);
	if (!strcmp(mode, "tx"))
		bench_net_tx(&net, size, secs);
	else
		bench_net_rx(&net, secs);
	kit_virtio_reset(dev);
}

/* ----------------------------------------------------------------- main --- */

void kit_main(unsigned int cpu, const void *boot_params)
{
	static struct kit_virtio_dev devs[KIT_VIRTIO_MAX_DEVS];
	struct kit_virtio_dev *blk = NULL, *net = NULL;
	char blk_buf[16], net_buf[16];
	const char *blk_mode, *net_mode;
	unsigned int n, skipped;
	int mode = -1;

	(void)boot_params;
	if (cpu != 0)
		kit_park();
	bench_time_init();
	blk_mode = kit_param_str("bench.blk", "none", blk_buf, sizeof(blk_buf));
	net_mode = kit_param_str("bench.net", "none", net_buf, sizeof(net_buf));
	for (int m = 0; m < 4; m++)
		if (!strcmp(blk_mode, blk_modes[m]))
			mode = m;
	if (mode < 0 && strcmp(blk_mode, "none"))
		kit_panic("iobench: bench.blk=%s: seqread|seqwrite|randread|randwrite|none",
			  blk_mode);
	if (strcmp(net_mode, "tx") && strcmp(net_mode, "rx") && strcmp(net_mode, "none"))
		kit_panic("iobench: bench.net=%s: tx|rx|none", net_mode);

	n = kit_virtio_discover(devs, KIT_VIRTIO_MAX_DEVS, &skipped);
	for (unsigned int i = 0; i < n; i++) {
		if (devs[i].device_id == KIT_VIRTIO_ID_BLK && !blk)
			blk = &devs[i];
		if (devs[i].device_id == KIT_VIRTIO_ID_NET && !net)
			net = &devs[i];
	}
	kit_printf("IOBENCH start tsc_khz=%llu blk=%d net=%d skipped=%u\n",
		   (unsigned long long)tsc_khz, blk != NULL, net != NULL, skipped);
	if (mode >= 0) {
		if (!blk)
			kit_panic("iobench: bench.blk=%s but no virtio-blk device", blk_mode);
		bench_blk(blk, mode);
	}
	if (strcmp(net_mode, "none")) {
		if (!net)
			kit_panic("iobench: bench.net=%s but no virtio-net device", net_mode);
		bench_net(net, net_mode);
	}
	kit_puts("IOBENCH done\n");
	kit_exit();
}
