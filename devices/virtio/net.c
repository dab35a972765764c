/* virtio-net on tap (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, a 12-byte
 * virtio_net_hdr in front of every frame, so buffers pass between the
 * guest and the tap with readv/writev and no copy).
 *
 * Back-pressure: when the guest has posted no receive buffers, vmm stops
 * reading the tap (frames wait in the tap's queue, as with any NIC whose
 * ring is full) and asks the driver for a notification; its next RX notify
 * resumes reading. Nothing read from the tap is ever dropped by vmm. */
#include "devices/virtio/net.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/worker.h"
#include "vmm/log.h"
#include "vmm/memory.h"
#include "snapshot/registry.h"
#include "snapshot/stream.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <unistd.h>

#define NET_QUEUE_MAX 256
#define NET_RXQ 0
#define NET_TXQ 1
#define NET_HDR_LEN 12

#define NET_F_MAC    5
#define NET_F_STATUS 16
#define NET_S_LINK_UP 1

struct virtio_net {
	struct virtio_mmio t;
	struct virtio_worker w;
	int tap_fd;
	char ifname[IFNAMSIZ];
	bool tap_watched;         /* the tap is in the worker's epoll set */
	uint8_t config[8];        /* mac[6], status */
	bool tx_error_logged;
	struct iovec iov[VIRTQ_MAX_BUFS];
	struct virtq_chain chain;
};

int virtio_net_parse_mac(const char *s, uint8_t mac[6])
{
	unsigned int b[6];
	char end;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &end) != 6 || strlen(s) != 17)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	return (mac[0] & 1) ? -EINVAL : 0;   /* multicast addresses are not a NIC's */
}

static unsigned int net_iov(struct virtio_net *n, bool writable)
{
	const struct virtq_chain *c = &n->chain;
	unsigned int k = 0;

	for (unsigned int i = writable ? c->nread : 0; i < (writable ? c->nbufs : c->nread); i++) {
		n->iov[k].iov_base = c->bufs[i].host;
		n->iov[k++].iov_len = c->bufs[i].len;
	}
	return k;
}

static void net_tap_readable(void *opaque, int fd, uint32_t events);

static void net_watch_tap(struct virtio_net *n, bool on)
{
	if (on == n->tap_watched)
		return;
	if (on)
		virtio_worker_watch(&n->w, n->tap_fd, EPOLLIN, net_tap_readable, n);
	else
		loop_del(n->w.loop, n->tap_fd);
	n->tap_watched = on;
}

/* Move frames from the tap into the guest's receive buffers. Lock held. */
static void net_rx(struct virtio_net *n)
{
	struct virtq *vq = &n->t.queues[NET_RXQ];
	const char *why;
	unsigned int moved = 0;

	for (;;) {
		ssize_t len;
		int r;

		/* Not live (reset, broken) or no buffers: stop reading the tap until
		 * the driver's next RX notify. */
		if (!virtio_mmio_live(&n->t) || !vq->ready ||
		    (!virtq_has_work(vq) && !virtq_enable_notify(vq, true))) {
			net_watch_tap(n, false);
			break;
		}
		r = virtq_pop(vq, &n->chain, &why);
		if (r < 0) {
			virtio_mmio_fail(&n->t, why);
			break;
		}
		if (r == 0)
			continue;
		if (n->chain.write_len < NET_HDR_LEN) {
			virtio_mmio_fail(&n->t, "receive buffer smaller than the virtio-net header");
			break;
		}
		len = readv(n->tap_fd, n->iov, (int)net_iov(n, true));
		if (len < 0) {
			/* No frame after all: give the buffer back untouched. */
			virtq_unpop(vq);
			break;
		}
		for (unsigned int i = n->chain.nread, left = (unsigned int)len;
		     i < n->chain.nbufs && left; i++) {
			unsigned int part = left < n->chain.bufs[i].len ? left : n->chain.bufs[i].len;

			guest_mem_mark_dirty(n->t.mem, n->chain.bufs[i].gpa, part);
			left -= part;
		}
		virtq_push(vq, n->chain.head, (uint32_t)len);
		moved++;
	}
	if (moved)
		virtio_mmio_used(&n->t, NET_RXQ);
}

static void net_tx(struct virtio_net *n)
{
	struct virtq *vq = &n->t.queues[NET_TXQ];
	const char *why;
	int r;

	do {
		while ((r = virtq_pop(vq, &n->chain, &why)) > 0) {
			/* A frame that the tap refuses (malformed header, tap down) is
			 * dropped, as a NIC drops what it cannot send. */
			if (n->chain.read_len > NET_HDR_LEN &&
			    writev(n->tap_fd, n->iov, (int)net_iov(n, false)) < 0 &&
			    !n->tx_error_logged) {
				log_warn("%s: sending to tap %s: %s", n->t.name, n->ifname,
					 strerror(errno));
				n->tx_error_logged = true;
			}
			virtq_push(vq, n->chain.head, 0);
		}
		if (r < 0) {
			virtio_mmio_fail(&n->t, why);
			break;
		}
	} while (virtq_enable_notify(vq, true));
	virtio_mmio_used(&n->t, NET_TXQ);
}

static void net_tap_readable(void *opaque, int fd, uint32_t events)
{
	struct virtio_net *n = opaque;

	pthread_mutex_lock(&n->t.lock);
	net_rx(n);
	pthread_mutex_unlock(&n->t.lock);
}

static void net_queue_notify(void *dev, unsigned int q)
{
	struct virtio_net *n = dev;

	if (q == NET_TXQ) {
		net_tx(n);
	} else {
		/* New receive buffers: read the tap again. */
		net_watch_tap(n, true);
		net_rx(n);
	}
}

static void net_reset(void *dev)
{
	/* Nothing is in flight (reads and writes are synchronous on the device
	 * thread). That thread stops reading the tap once it finds the device
	 * not live; the epoll set is the device thread's alone to change. */
}

static void net_config_read(void *dev, unsigned int off, void *data, unsigned int len)
{
	struct virtio_net *n = dev;

	memcpy(data, n->config + off, len);
}

static const struct virtio_dev_ops net_ops = {
	.device_id = 1,
	.num_queues = 2,
	.queue_max = NET_QUEUE_MAX,
	.features = (1ULL << NET_F_MAC) | (1ULL << NET_F_STATUS) |
		    (1ULL << VIRTIO_F_INDIRECT_DESC) | (1ULL << VIRTIO_F_EVENT_IDX),
	.config_size = 8,
	.config_read = net_config_read,
	.reset = net_reset,
	.queue_notify = net_queue_notify,
};

static int net_open_tap(struct virtio_net *n, const char *ifname)
{
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
	int hdr = NET_HDR_LEN, err;

	if (strlen(ifname) >= IFNAMSIZ) {
		log_err("--net tap=%s: interface names have at most %d characters", ifname,
			IFNAMSIZ - 1);
		return -EINVAL;
	}
	strcpy(ifr.ifr_name, ifname);
	n->tap_fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (n->tap_fd < 0) {
		err = -errno;
		log_err("--net tap=%s: cannot open /dev/net/tun: %s", ifname, strerror(-err));
		return err;
	}
	if (ioctl(n->tap_fd, TUNSETIFF, &ifr) < 0) {
		err = -errno;
		log_err("--net tap=%s: %s%s", ifname, strerror(-err),
			err == -EBUSY ? " (in use by another process?)" :
			err == -EPERM ? " (creating or using a tap needs CAP_NET_ADMIN)" : "");
		return err;
	}
	if (ioctl(n->tap_fd, TUNSETVNETHDRSZ, &hdr) < 0 || ioctl(n->tap_fd, TUNSETOFFLOAD, 0) < 0) {
		err = -errno;
		log_err("--net tap=%s: configuring the virtio-net header: %s", ifname,
			strerror(-err));
		return err;
	}
	snprintf(n->ifname, sizeof(n->ifname), "%s", ifr.ifr_name);
	return 0;
}

int virtio_net_create(const struct virtio_env *env, const char *name, const char *ifname,
		      const uint8_t *mac, struct virtio_net **out)
{
	struct virtio_net *n = calloc(1, sizeof(*n));
	uint16_t status = NET_S_LINK_UP;
	int err;

	if (!n)
		return -ENOMEM;
	n->tap_fd = n->w.stop_fd = -1;
	err = net_open_tap(n, ifname);
	if (err)
		goto fail;
	if (mac) {
		memcpy(n->config, mac, 6);
	} else {
		/* Locally administered, unicast: 52:54:00:xx:xx:xx. */
		n->config[0] = 0x52;
		n->config[1] = 0x54;
		if (getrandom(n->config + 3, 3, 0) != 3)
			n->config[5] = (uint8_t)getpid();
	}
	memcpy(n->config + 6, &status, 2);
	err = virtio_mmio_init(&n->t, &net_ops, n, name, env->mmio, env->mem, env->base,
			       &env->irq, env->vm_fd);
	if (!err)
		err = virtio_worker_init(&n->w, &n->t, name);
	if (!err)
		err = virtio_worker_start(&n->w);
	if (err)
		goto fail;
	*out = n;
	return 0;
fail:
	virtio_net_destroy(n);
	return err;
}

void virtio_net_destroy(struct virtio_net *n)
{
	if (!n)
		return;
	virtio_worker_destroy(&n->w);
	virtio_mmio_destroy(&n->t);
	if (n->tap_fd >= 0)
		close(n->tap_fd);
	free(n);
}

/* State section "virtio-net", version 1: the MAC the guest knows, then the
 * transport. Frames in the host's tap queue are not guest state. */
static int net_save(void *opaque, struct snap_stream *s)
{
	struct virtio_net *n = opaque;

	snap_put_bytes(s, n->config, 6);
	return virtio_mmio_save(&n->t, s);
}

static int net_load(void *opaque, struct snap_stream *s, uint32_t version)
{
	struct virtio_net *n = opaque;
	uint8_t mac[6];
	char err[256];
	int r;

	snap_get_bytes(s, mac, sizeof(mac));
	if (snap_stream_error(s))
		return snap_stream_error(s);
	if (mac[0] & 1) {
		log_err("restore: %s: the snapshot's MAC is a multicast address", n->t.name);
		return -EPROTO;
	}
	r = virtio_mmio_load(&n->t, s, err, sizeof(err));
	if (r == -EPROTO)
		log_err("restore: %s", err);
	if (!r) {
		pthread_mutex_lock(&n->t.lock);
		memcpy(n->config, mac, sizeof(mac));
		pthread_mutex_unlock(&n->t.lock);
	}
	return r;
}

static const struct snap_section_ops net_state_ops = {
	.name = "virtio-net", .version = 1, .min_version = 1, .save = net_save, .load = net_load,
};

int virtio_net_register_state(struct snap_registry *reg, struct virtio_net *n, uint32_t instance)
{
	return snap_registry_add(reg, &net_state_ops, instance, n);
}

struct virtio_mmio *virtio_net_transport(struct virtio_net *n)
{
	return &n->t;
}
