/* virtio-net (device id 1) on a host tap device. */
#ifndef DEVICES_VIRTIO_NET_H
#define DEVICES_VIRTIO_NET_H

#include <stdint.h>

struct snap_registry;
struct virtio_env;
struct virtio_mmio;
struct virtio_net;

/* Attach to tap ifname (created if absent); mac NULL = a random local one.
 * Logs and returns -errno on failure. */
int virtio_net_create(const struct virtio_env *env, const char *name, const char *ifname,
		      const uint8_t *mac, struct virtio_net **out);
void virtio_net_destroy(struct virtio_net *n);
int virtio_net_register_state(struct snap_registry *reg, struct virtio_net *n, uint32_t instance);
struct virtio_mmio *virtio_net_transport(struct virtio_net *n);
/* "aa:bb:cc:dd:ee:ff" -> 0, or -EINVAL. */
int virtio_net_parse_mac(const char *s, uint8_t mac[6]);

#endif
