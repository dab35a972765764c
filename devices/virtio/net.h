/* virtio-net (device id 1) on a host tap device. */
#ifndef DEVICES_VIRTIO_NET_H
#define DEVICES_VIRTIO_NET_H

#include <stdint.h>

struct virtio_env;
struct virtio_net;

/* Attach to tap ifname (created if absent); mac NULL = a random local one.
 * Logs and returns -errno on failure. */
int virtio_net_create(const struct virtio_env *env, const char *name, const char *ifname,
		      const uint8_t *mac, struct virtio_net **out);
void virtio_net_destroy(struct virtio_net *n);
/* "aa:bb:cc:dd:ee:ff" -> 0, or -EINVAL. */
int virtio_net_parse_mac(const char *s, uint8_t mac[6]);

#endif
