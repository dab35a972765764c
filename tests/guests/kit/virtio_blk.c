/* Guest kit virtio-blk driver: one request queue, many requests in flight.
 * A request is a chain: 16-byte header (readable), data (readable for
 * OUT/DISCARD/WRITE_ZEROES, writable for IN/GET_ID), one status byte
 * (writable). Header and status live in a per-request slot in DMA memory;
 * the slot index is the virtqueue token. */
#include "virtio.h"

/* struct virtio_blk_config offsets. */
#define VBLK_CFG_CAPACITY	0	/* le64 sectors */
#define VBLK_CFG_SIZE_MAX	8	/* le32, F_SIZE_MAX */
#define VBLK_CFG_SEG_MAX	12	/* le32, F_SEG_MAX */
#define VBLK_CFG_MAX_WZ_SECTORS	48	/* le32, F_WRITE_ZEROES */

#define VBLK_MAX_SEGS		128	/* data descriptors per request (ours) */
#define VBLK_QUEUE_DEFAULT	256

struct kit_vblk_slot {
	/* struct virtio_blk_req header */
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
	/* struct virtio_blk_discard_write_zeroes, for DISCARD/WRITE_ZEROES */
	uint64_t range_sector;
	uint32_t range_sectors;
	uint32_t range_flags;
	uint64_t token;
	uint8_t status;
	uint8_t pad[7];
};

int kit_vblk_init(struct kit_vblk *blk, struct kit_virtio_dev *dev,
		  unsigned int queue_max)
{
	uint64_t wanted = 1ull << KIT_VIRTIO_BLK_F_RO | 1ull << KIT_VIRTIO_BLK_F_FLUSH |
			  1ull << KIT_VIRTIO_BLK_F_DISCARD |
			  1ull << KIT_VIRTIO_BLK_F_WRITE_ZEROES |
			  1ull << KIT_VIRTIO_BLK_F_SIZE_MAX | 1ull << KIT_VIRTIO_BLK_F_SEG_MAX;
	int ret;

	*blk = (struct kit_vblk){ .dev = dev };
	ret = kit_virtio_init(dev, wanted);
	if (ret < 0)
		return ret;
	blk->capacity = kit_virtio_cfg64(dev, VBLK_CFG_CAPACITY);
	blk->ro = kit_virtio_has(dev, KIT_VIRTIO_BLK_F_RO);
	blk->flush = kit_virtio_has(dev, KIT_VIRTIO_BLK_F_FLUSH);
	blk->discard = kit_virtio_has(dev, KIT_VIRTIO_BLK_F_DISCARD);
	blk->write_zeroes = kit_virtio_has(dev, KIT_VIRTIO_BLK_F_WRITE_ZEROES);
	if (kit_virtio_has(dev, KIT_VIRTIO_BLK_F_SIZE_MAX))
		blk->size_max = kit_virtio_cfg32(dev, VBLK_CFG_SIZE_MAX);
	blk->seg_max = VBLK_MAX_SEGS;
	if (kit_virtio_has(dev, KIT_VIRTIO_BLK_F_SEG_MAX)) {
		uint32_t seg = kit_virtio_cfg32(dev, VBLK_CFG_SEG_MAX);

		if (seg && seg < blk->seg_max)
			blk->seg_max = seg;
	}
	if (blk->size_max && blk->size_max < KIT_VBLK_SECTOR)
		blk->size_max = KIT_VBLK_SECTOR;	/* nonsense: ignore */
	if (blk->write_zeroes)
		blk->max_write_zeroes = kit_virtio_cfg32(dev, VBLK_CFG_MAX_WZ_SECTORS);

	ret = kit_virtq_init(&blk->vq, dev, 0, queue_max ? queue_max : VBLK_QUEUE_DEFAULT);
	if (ret < 0)
		return ret;
	blk->nslots = blk->vq.size;
	blk->slots = kit_dma_alloc(sizeof(*blk->slots) * blk->nslots, 64);
	blk->free_slots = kit_dma_alloc(2 * blk->nslots, 8);
	if (!blk->slots || !blk->free_slots)
		return -KIT_ENOMEM;
	for (unsigned int i = 0; i < blk->nslots; i++)
		blk->free_slots[i] = (uint16_t)(blk->nslots - 1 - i);
	blk->nfree = blk->nslots;
	kit_virtio_driver_ok(dev);
	return 0;
}

/* Split [buf, buf + len) into descriptors of at most size_max bytes. */
static int vblk_add_data(const struct kit_vblk *blk, struct kit_vbuf *bufs,
			 unsigned int *n, void *buf, uint32_t len)
{
	uint32_t chunk = blk->size_max ? blk->size_max & ~(KIT_VBLK_SECTOR - 1) : len;
	unsigned int segs = 0;

	for (uint32_t off = 0; off < len; off += chunk) {
		if (++segs > blk->seg_max)
			return -KIT_EINVAL;
		bufs[(*n)++] = (struct kit_vbuf){ (uint8_t *)buf + off,
						  len - off < chunk ? len - off : chunk };
	}
	return 0;
}

int kit_vblk_submit(struct kit_vblk *blk, uint32_t type, uint64_t sector,
		    void *buf, uint32_t len, uint64_t token)
{
	struct kit_vbuf bufs[VBLK_MAX_SEGS + 2];
	unsigned int n = 1, n_out, slot_i;
	struct kit_vblk_slot *slot;
	int ret;

	if (!blk->nfree)
		return -KIT_ENOSPC;
	slot_i = blk->free_slots[blk->nfree - 1];
	slot = &blk->slots[slot_i];
	*slot = (struct kit_vblk_slot){ .type = type, .sector = sector, .token = token,
					.status = 0xff };
	bufs[0] = (struct kit_vbuf){ slot, 16 };
	switch (type) {
	case KIT_VBLK_T_IN:
	case KIT_VBLK_T_OUT:
		if (!len || len % KIT_VBLK_SECTOR || !buf)
			return -KIT_EINVAL;
		ret = vblk_add_data(blk, bufs, &n, buf, len);
		if (ret < 0)
			return ret;
		n_out = type == KIT_VBLK_T_OUT ? n : 1;
		break;
	case KIT_VBLK_T_GET_ID:
		if (!buf || len < KIT_VBLK_ID_BYTES)
			return -KIT_EINVAL;
		bufs[n++] = (struct kit_vbuf){ buf, KIT_VBLK_ID_BYTES };
		n_out = 1;
		break;
	case KIT_VBLK_T_DISCARD:
	case KIT_VBLK_T_WRITE_ZEROES:
		if (!len || len % KIT_VBLK_SECTOR)
			return -KIT_EINVAL;
		slot->range_sector = sector;
		slot->range_sectors = len / KIT_VBLK_SECTOR;
		slot->sector = 0;
		bufs[n++] = (struct kit_vbuf){ &slot->range_sector, 16 };
		n_out = n;
		break;
	case KIT_VBLK_T_FLUSH:
		slot->sector = 0;
		n_out = 1;
		break;
	default:
		return -KIT_EINVAL;
	}
	bufs[n++] = (struct kit_vbuf){ &slot->status, 1 };
	ret = kit_virtq_add(&blk->vq, bufs, n_out, n - n_out, slot_i);
	if (ret < 0)
		return ret;
	blk->nfree--;
	return 0;
}

void kit_vblk_kick(struct kit_vblk *blk)
{
	kit_virtq_kick(&blk->vq);
}

int kit_vblk_poll(struct kit_vblk *blk, uint64_t *token, uint8_t *status)
{
	uint64_t slot_i;
	uint32_t len;
	int ret = kit_virtq_get(&blk->vq, &slot_i, &len);

	if (ret <= 0)
		return ret;
	*token = blk->slots[slot_i].token;
	*status = __atomic_load_n(&blk->slots[slot_i].status, __ATOMIC_RELAXED);
	blk->free_slots[blk->nfree++] = (uint16_t)slot_i;
	return 1;
}

int kit_vblk_sync(struct kit_vblk *blk, uint32_t type, uint64_t sector,
		  void *buf, uint32_t len, uint64_t timeout_ns)
{
	uint64_t deadline = kit_now_ns() + timeout_ns, token;
	uint8_t status;
	int ret;

	if (kit_vblk_inflight(blk))
		return -KIT_EINVAL;
	ret = kit_vblk_submit(blk, type, sector, buf, len, 0);
	if (ret < 0)
		return ret;
	kit_vblk_kick(blk);
	while (!(ret = kit_vblk_poll(blk, &token, &status))) {
		if (kit_now_ns() > deadline)
			return -KIT_ETIMEDOUT;
		kit_cpu_relax();
	}
	return ret < 0 ? ret : status;
}
