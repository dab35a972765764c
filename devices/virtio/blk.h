/* virtio-blk (device id 2): a raw image file, requests on io_uring. */
#ifndef DEVICES_VIRTIO_BLK_H
#define DEVICES_VIRTIO_BLK_H

#include <stdbool.h>

#include <stdint.h>

struct snap_registry;
struct virtio_env;
struct virtio_blk;
struct virtio_mmio;

/* Opens path (read-only if ro); logs and returns -errno on failure. */
int virtio_blk_create(const struct virtio_env *env, const char *name, const char *path,
		      bool ro, struct virtio_blk **out);
void virtio_blk_destroy(struct virtio_blk *b);
int virtio_blk_register_state(struct snap_registry *reg, struct virtio_blk *b, uint32_t instance);
struct virtio_mmio *virtio_blk_transport(struct virtio_blk *b);

#endif
