#include "devices/virtio/rng.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/worker.h"
#include "vmm/log.h"
#include "vmm/memory.h"
#include "snapshot/registry.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

/* Bytes handed out per request at most: a driver asking for more gets less,
 * which the spec allows, and a hostile one cannot make us stall. */
#define RNG_MAX_PER_REQUEST (64 * 1024)

struct virtio_rng {
	struct virtio_mmio t;
	struct virtio_worker w;
	struct virtq_chain chain;
};

static uint32_t rng_fill(struct virtio_rng *r)
{
	struct virtq_chain *c = &r->chain;
	uint32_t written = 0;

	/* Readable buffers have no meaning for this device: skipped. */
	for (unsigned int i = c->nread; i < c->nbufs && written < RNG_MAX_PER_REQUEST; i++) {
		uint32_t want = c->bufs[i].len, done = 0;

		if (want > RNG_MAX_PER_REQUEST - written)
			want = RNG_MAX_PER_REQUEST - written;
		while (done < want) {
			ssize_t n = getrandom((uint8_t *)c->bufs[i].host + done, want - done, 0);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			done += (uint32_t)n;
		}
		guest_mem_mark_dirty(r->t.mem, c->bufs[i].gpa, done);
		written += done;
		if (done < want)
			break;
	}
	return written;
}

static void rng_queue_notify(void *dev, unsigned int q)
{
	struct virtio_rng *r = dev;
	struct virtq *vq = &r->t.queues[0];
	const char *why;
	int n;

	while ((n = virtq_pop(vq, &r->chain, &why)) > 0)
		virtq_push(vq, r->chain.head, rng_fill(r));
	if (n < 0)
		virtio_mmio_fail(&r->t, why);
	virtio_mmio_used(&r->t, 0);
}

static void rng_config_read(void *dev, unsigned int off, void *data, unsigned int len)
{
	/* No configuration space. */
}

static const struct virtio_dev_ops rng_ops = {
	.device_id = 4,
	.num_queues = 1,
	.queue_max = 256,
	.features = (1ULL << VIRTIO_F_INDIRECT_DESC) | (1ULL << VIRTIO_F_EVENT_IDX),
	.config_size = 0,
	.config_read = rng_config_read,
	.queue_notify = rng_queue_notify,
};

int virtio_rng_create(const struct virtio_env *env, const char *name, struct virtio_rng **out)
{
	struct virtio_rng *r = calloc(1, sizeof(*r));
	int err;

	if (!r)
		return -ENOMEM;
	r->w.stop_fd = -1;
	err = virtio_mmio_init(&r->t, &rng_ops, r, name, env->mmio, env->mem, env->base,
			       &env->irq, env->vm_fd);
	if (!err)
		err = virtio_worker_init(&r->w, &r->t, name);
	if (!err)
		err = virtio_worker_start(&r->w);
	if (err) {
		virtio_rng_destroy(r);
		return err;
	}
	*out = r;
	return 0;
}

void virtio_rng_destroy(struct virtio_rng *r)
{
	if (!r)
		return;
	virtio_worker_destroy(&r->w);
	virtio_mmio_destroy(&r->t);
	free(r);
}

/* State section "virtio-rng", version 1: the transport alone. */
static int rng_save(void *opaque, struct snap_stream *s)
{
	struct virtio_rng *r = opaque;

	return virtio_mmio_save(&r->t, s);
}

static int rng_load(void *opaque, struct snap_stream *s, uint32_t version)
{
	struct virtio_rng *r = opaque;
	char err[256];
	int e = virtio_mmio_load(&r->t, s, err, sizeof(err));

	if (e == -EPROTO)
		log_err("restore: %s", err);
	return e;
}

static const struct snap_section_ops rng_state_ops = {
	.name = "virtio-rng", .version = 1, .min_version = 1, .save = rng_save, .load = rng_load,
};

int virtio_rng_register_state(struct snap_registry *reg, struct virtio_rng *r)
{
	return snap_registry_add(reg, &rng_state_ops, 0, r);
}

struct virtio_mmio *virtio_rng_transport(struct virtio_rng *r)
{
	return &r->t;
}
