/* Guest kit virtio-net driver: queue 0 receives, queue 1 transmits; no
 * offloads, no mergeable buffers, so every buffer is the 12-byte VERSION_1
 * virtio_net_hdr followed by one whole frame (KIT_VNET_BUF bytes). Every
 * RX descriptor stays posted; a TX slot is reused once the device has
 * returned it. The virtqueue token is the buffer's slot index. */
#include "virtio.h"

#define VNET_CFG_MAC		0	/* u8[6], F_MAC */
#define VNET_QUEUE_MAX		256
#define VNET_RX			0
#define VNET_TX			1
#define VNET_SLOT		1536	/* KIT_VNET_BUF rounded up */

static int vnet_post_rx(struct kit_vnet *net, unsigned int slot)
{
	struct kit_vbuf b = { net->rx_bufs + (size_t)slot * VNET_SLOT, KIT_VNET_BUF };

	return kit_virtq_add(&net->rx, &b, 0, 1, slot);
}

int kit_vnet_init(struct kit_vnet *net, struct kit_virtio_dev *dev)
{
	int ret;

	*net = (struct kit_vnet){ .dev = dev };
	ret = kit_virtio_init(dev, 1ull << KIT_VIRTIO_NET_F_MAC);
	if (ret < 0)
		return ret;
	net->has_mac = kit_virtio_has(dev, KIT_VIRTIO_NET_F_MAC);
	if (net->has_mac) {
		for (unsigned int i = 0; i < 6; i++)
			net->mac[i] = kit_virtio_cfg8(dev, VNET_CFG_MAC + i);
	} else {
		/* Locally administered, unicast, from the window address. */
		net->mac[0] = 0x02;
		net->mac[3] = (uint8_t)(dev->base >> 24);
		net->mac[4] = (uint8_t)(dev->base >> 16);
		net->mac[5] = (uint8_t)(dev->base >> 12);
	}
	ret = kit_virtq_init(&net->rx, dev, VNET_RX, VNET_QUEUE_MAX);
	if (ret < 0)
		return ret;
	ret = kit_virtq_init(&net->tx, dev, VNET_TX, VNET_QUEUE_MAX);
	if (ret < 0)
		return ret;
	net->rx_bufs = kit_dma_alloc((size_t)net->rx.size * VNET_SLOT, 4096);
	net->tx_bufs = kit_dma_alloc((size_t)net->tx.size * VNET_SLOT, 4096);
	net->tx_free = kit_dma_alloc(2 * net->tx.size, 8);
	if (!net->rx_bufs || !net->tx_bufs || !net->tx_free)
		return -KIT_ENOMEM;
	for (unsigned int i = 0; i < net->tx.size; i++)
		net->tx_free[i] = (uint16_t)i;
	net->tx_nfree = net->tx.size;
	for (unsigned int i = 0; i < net->rx.size; i++) {
		ret = vnet_post_rx(net, i);
		if (ret < 0)
			return ret;
	}
	kit_virtio_driver_ok(dev);
	kit_virtq_kick(&net->rx);
	return 0;
}

/* Take back every TX slot the device has finished with. */
static int vnet_reclaim_tx(struct kit_vnet *net)
{
	uint64_t slot;
	uint32_t len;
	int ret;

	while ((ret = kit_virtq_get(&net->tx, &slot, &len)) > 0)
		net->tx_free[net->tx_nfree++] = (uint16_t)slot;
	return ret;
}

int kit_vnet_send(struct kit_vnet *net, const void *frame, uint32_t len)
{
	struct kit_vbuf b;
	unsigned int slot;
	uint8_t *p;
	int ret;

	if (len < 14 || len > KIT_VNET_FRAME_MAX)
		return -KIT_EINVAL;
	ret = vnet_reclaim_tx(net);
	if (ret < 0)
		return ret;
	if (!net->tx_nfree)
		return -KIT_ENOSPC;
	slot = net->tx_free[--net->tx_nfree];
	p = net->tx_bufs + (size_t)slot * VNET_SLOT;
	memset(p, 0, KIT_VNET_HDR);
	memcpy(p + KIT_VNET_HDR, frame, len);
	b = (struct kit_vbuf){ p, KIT_VNET_HDR + len };
	ret = kit_virtq_add(&net->tx, &b, 1, 0, slot);
	if (ret < 0) {
		net->tx_free[net->tx_nfree++] = (uint16_t)slot;
		return ret;
	}
	kit_virtq_kick(&net->tx);
	return 0;
}

int kit_vnet_recv(struct kit_vnet *net, void *buf, uint32_t size)
{
	uint64_t slot;
	uint32_t len;
	bool bad;
	int ret = kit_virtq_get(&net->rx, &slot, &len);

	if (ret <= 0)
		return ret;
	bad = len <= KIT_VNET_HDR || len > KIT_VNET_BUF;
	if (!bad) {
		len -= KIT_VNET_HDR;
		memcpy(buf, net->rx_bufs + slot * VNET_SLOT + KIT_VNET_HDR,
		       len < size ? len : size);
	}
	ret = vnet_post_rx(net, (unsigned int)slot);
	if (ret < 0)
		return ret;
	kit_virtq_kick(&net->rx);
	return bad ? -KIT_EIO : (int)len;	/* bad: the device wrote no frame */
}
