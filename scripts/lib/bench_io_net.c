/* Host half of the bench-io network tests (compiled by scripts/bench-io
 * into build-bench/bench-io-net):
 *
 *   bench-io-net blast IFNAME SIZE
 *       Send SIZE-byte Ethernet frames (ethertype 0x88b5, to the broadcast
 *       address) on IFNAME through an AF_PACKET socket with sendmmsg, as
 *       fast as the kernel takes them, until SIGTERM/SIGINT; then print
 *       "sent=<frames> bytes=<bytes>". On a tap, each frame lands in the
 *       tap's queue for the VMM to read (the tap drops frames when its
 *       queue is full: tx_dropped in its statistics).
 *
 * Guest-side results are what bench-io reports; this only feeds the guest. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ETHERTYPE_BENCH 0x88b5
#define BATCH 64

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	static unsigned char frames[BATCH][1514];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_ll addr = { .sll_family = AF_PACKET };
	unsigned long long sent = 0, bytes = 0, seq = 0;
	struct sigaction sa = { .sa_handler = on_signal };
	int fd, one = 1, size;

	if (argc != 4 || strcmp(argv[1], "blast")) {
		fprintf(stderr, "usage: %s blast IFNAME SIZE\n", argv[0]);
		return 2;
	}
	size = atoi(argv[3]);
	if (size < 60 || size > 1514) {
		fprintf(stderr, "bench-io-net: SIZE must be 60..1514\n");
		return 2;
	}
	fd = socket(AF_PACKET, SOCK_RAW, htons(ETHERTYPE_BENCH));
	if (fd < 0) {
		perror("bench-io-net: socket(AF_PACKET)");
		return 1;
	}
	addr.sll_protocol = htons(ETHERTYPE_BENCH);
	addr.sll_ifindex = (int)if_nametoindex(argv[2]);
	if (!addr.sll_ifindex) {
		fprintf(stderr, "bench-io-net: no interface %s\n", argv[2]);
		return 1;
	}
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		perror("bench-io-net: bind");
		return 1;
	}
	/* Straight to the device's xmit, no qdisc (best effort). */
	setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < BATCH; i++) {
		unsigned char *f = frames[i];

		memset(f, 0xff, 6);			/* broadcast */
		memcpy(f + 6, "\x02\x00\x00\x00\x00\x02", 6);
		f[12] = ETHERTYPE_BENCH >> 8;
		f[13] = ETHERTYPE_BENCH & 0xff;
		for (int b = 14; b < size; b++)
			f[b] = (unsigned char)b;
		iov[i].iov_base = f;
		iov[i].iov_len = (size_t)size;
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	while (!stop) {
		int n;

		for (int i = 0; i < BATCH; i++, seq++)
			memcpy(frames[i] + 14, &seq, sizeof(seq));
		n = sendmmsg(fd, msgs, BATCH, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS || errno == EAGAIN) {
				usleep(50);
				continue;
			}
			perror("bench-io-net: sendmmsg");
			return 1;
		}
		sent += (unsigned long long)n;
		bytes += (unsigned long long)n * (unsigned long long)size;
	}
	printf("sent=%llu bytes=%llu\n", sent, bytes);
	return 0;
}
