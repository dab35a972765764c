/* virtio-blk (device id 2): a raw image file, requests on io_uring. */
#ifndef DEVICES_VIRTIO_BLK_H
#define DEVICES_VIRTIO_BLK_H

#include <stdbool.h>

struct virtio_env;
struct virtio_blk;

/* Opens path (read-only if ro); logs and returns -errno on failure. */
int virtio_blk_create(const struct virtio_env *env, const char *name, const char *path,
		      bool ro, struct virtio_blk **out);
void virtio_blk_destroy(struct virtio_blk *b);

#endif
