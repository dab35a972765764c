/* Guest kit virtio-rng driver: one queue; post one writable buffer at a
 * time and copy out what the device wrote (possibly less than asked). */
#include "virtio.h"

#define VRNG_QUEUE_MAX		8

int kit_vrng_init(struct kit_vrng *rng, struct kit_virtio_dev *dev)
{
	int ret;

	*rng = (struct kit_vrng){ .dev = dev };
	ret = kit_virtio_init(dev, 0);
	if (ret < 0)
		return ret;
	ret = kit_virtq_init(&rng->vq, dev, 0, VRNG_QUEUE_MAX);
	if (ret < 0)
		return ret;
	rng->buf = kit_dma_alloc(KIT_VRNG_CHUNK, 4096);
	if (!rng->buf)
		return -KIT_ENOMEM;
	kit_virtio_driver_ok(dev);
	return 0;
}

long kit_vrng_read(struct kit_vrng *rng, void *buf, size_t len, uint64_t timeout_ns)
{
	uint64_t deadline = kit_now_ns() + timeout_ns, token;
	size_t done = 0;

	while (done < len) {
		size_t want = len - done < KIT_VRNG_CHUNK ? len - done : KIT_VRNG_CHUNK;
		struct kit_vbuf b = { rng->buf, (uint32_t)want };
		uint32_t got;
		int ret;

		ret = kit_virtq_add(&rng->vq, &b, 0, 1, 0);
		if (ret < 0)
			return ret;
		kit_virtq_kick(&rng->vq);
		while (!(ret = kit_virtq_get(&rng->vq, &token, &got))) {
			if (kit_now_ns() > deadline)
				return (long)done;	/* the buffer stays posted */
			kit_cpu_relax();
		}
		if (ret < 0)
			return ret;
		if (got > want)
			return -KIT_EIO;
		memcpy((uint8_t *)buf + done, rng->buf, got);
		done += got;
	}
	return (long)done;
}
