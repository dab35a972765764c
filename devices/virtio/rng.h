/* virtio-rng (device id 4): entropy from the host's getrandom(). */
#ifndef DEVICES_VIRTIO_RNG_H
#define DEVICES_VIRTIO_RNG_H

struct snap_registry;
struct virtio_env;
struct virtio_mmio;
struct virtio_rng;

int virtio_rng_create(const struct virtio_env *env, const char *name, struct virtio_rng **out);
void virtio_rng_destroy(struct virtio_rng *r);
int virtio_rng_register_state(struct snap_registry *reg, struct virtio_rng *r);
struct virtio_mmio *virtio_rng_transport(struct virtio_rng *r);

#endif
