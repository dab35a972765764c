/* virtio-mmio version 2: registers, feature negotiation, status and reset,
 * queue set-up, interrupt status, and the queue-notify ioeventfds. */
#include "devices/virtio/mmio.h"
#include "vmm/bus.h"
#include "vmm/log.h"
#include "snapshot/stream.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define REG_MAGIC               0x000
#define REG_VERSION             0x004
#define REG_DEVICE_ID           0x008
#define REG_VENDOR_ID           0x00c
#define REG_DEVICE_FEATURES     0x010
#define REG_DEVICE_FEATURES_SEL 0x014
#define REG_DRIVER_FEATURES     0x020
#define REG_DRIVER_FEATURES_SEL 0x024
#define REG_QUEUE_SEL           0x030
#define REG_QUEUE_NUM_MAX       0x034
#define REG_QUEUE_NUM           0x038
#define REG_QUEUE_READY         0x044
#define REG_QUEUE_NOTIFY        0x050
#define REG_INTERRUPT_STATUS    0x060
#define REG_INTERRUPT_ACK       0x064
#define REG_STATUS              0x070
#define REG_QUEUE_DESC_LOW      0x080
#define REG_QUEUE_DESC_HIGH     0x084
#define REG_QUEUE_DRIVER_LOW    0x090
#define REG_QUEUE_DRIVER_HIGH   0x094
#define REG_QUEUE_DEVICE_LOW    0x0a0
#define REG_QUEUE_DEVICE_HIGH   0x0a4
#define REG_CONFIG_GENERATION   0x0fc
#define REG_CONFIG              0x100

#define VIRTIO_MMIO_MAGIC   0x74726976   /* "virt" */
#define VIRTIO_MMIO_VENDOR  0x00564d4d   /* "VMM" */

static uint64_t virtio_mmio_offered(const struct virtio_mmio *t)
{
	return t->ops->features | (1ULL << VIRTIO_F_VERSION_1);
}

bool virtio_mmio_has_feature(const struct virtio_mmio *t, unsigned int bit)
{
	return (t->driver_features >> bit) & 1;
}

bool virtio_mmio_live(const struct virtio_mmio *t)
{
	return (t->status & VIRTIO_STATUS_DRIVER_OK) &&
	       !(t->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET) && !t->paused;
}

static struct virtq *virtio_mmio_cur_queue(struct virtio_mmio *t)
{
	return t->queue_sel < t->ops->num_queues ? &t->queues[t->queue_sel] : NULL;
}

/* The line is high while any interrupt is pending. An edge-triggered pin
 * needs a fresh edge for a new interrupt, so raising an already-high line
 * pulses it. */
static void virtio_mmio_update_irq(struct virtio_mmio *t, bool new_interrupt)
{
	bool level = t->interrupt_status != 0;

	if (level && t->irq_level && new_interrupt)
		irq_line_set(&t->irq, false);
	if (level != t->irq_level || (level && new_interrupt))
		irq_line_set(&t->irq, level);
	t->irq_level = level;
}

static void virtio_mmio_interrupt(struct virtio_mmio *t, uint32_t why)
{
	t->interrupt_status |= why;
	virtio_mmio_update_irq(t, true);
}

void virtio_mmio_used(struct virtio_mmio *t, unsigned int q)
{
	if (q < t->ops->num_queues && virtq_should_notify(&t->queues[q]))
		virtio_mmio_interrupt(t, VIRTIO_INT_USED_BUFFER);
}

void virtio_mmio_fail(struct virtio_mmio *t, const char *why)
{
	if (!t->broken_logged) {
		log_warn("%s: the guest driver broke the virtio protocol: %s; device needs reset",
			 t->name, why);
		t->broken_logged = true;
	}
	t->status |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	if (t->status & VIRTIO_STATUS_DRIVER_OK)
		virtio_mmio_interrupt(t, VIRTIO_INT_CONFIG_CHANGE);
}

static void virtio_mmio_reset(struct virtio_mmio *t)
{
	if (t->ops->reset)
		t->ops->reset(t->dev);
	for (unsigned int q = 0; q < t->ops->num_queues; q++) {
		struct virtq *vq = &t->queues[q];

		virtq_reset(vq);
		vq->size = 0;
		vq->desc_gpa = vq->avail_gpa = vq->used_gpa = 0;
	}
	t->status = 0;
	t->device_features_sel = t->driver_features_sel = t->queue_sel = 0;
	t->driver_features = 0;
	t->interrupt_status = 0;
	t->broken_logged = false;
	virtio_mmio_update_irq(t, false);
}

static void virtio_mmio_features_ok(struct virtio_mmio *t)
{
	uint64_t offered = virtio_mmio_offered(t);
	bool event_idx;

	if ((t->driver_features & ~offered) ||
	    !(t->driver_features & (1ULL << VIRTIO_F_VERSION_1))) {
		/* FEATURES_OK stays clear: the driver sees the refusal (3.1.1). */
		log_debug("%s: driver features 0x%llx refused (offered 0x%llx)", t->name,
			  (unsigned long long)t->driver_features, (unsigned long long)offered);
		return;
	}
	t->status |= VIRTIO_STATUS_FEATURES_OK;
	event_idx = virtio_mmio_has_feature(t, VIRTIO_F_EVENT_IDX);
	for (unsigned int q = 0; q < t->ops->num_queues; q++)
		t->queues[q].event_idx = event_idx;
}

static void virtio_mmio_kick(struct virtio_mmio *t, unsigned int q)
{
	uint64_t one = 1;

	if (t->notify_fd[q] >= 0 && write(t->notify_fd[q], &one, sizeof(one)) < 0)
		log_debug("%s: queue %u notify: %s", t->name, q, strerror(errno));
}

static void virtio_mmio_driver_ok(struct virtio_mmio *t)
{
	const char *why = NULL;

	if (!(t->status & VIRTIO_STATUS_FEATURES_OK)) {
		virtio_mmio_fail(t, "DRIVER_OK before FEATURES_OK");
		return;
	}
	for (unsigned int q = 0; q < t->ops->num_queues; q++) {
		if (t->queues[q].ready && virtq_check(&t->queues[q], &why)) {
			virtio_mmio_fail(t, why);
			return;
		}
	}
	t->status |= VIRTIO_STATUS_DRIVER_OK;
	if (t->ops->activate && t->ops->activate(t->dev) < 0) {
		t->status &= ~(uint32_t)VIRTIO_STATUS_DRIVER_OK;
		t->status |= VIRTIO_STATUS_FAILED;
	}
	/* Kick every ready queue, so the device thread looks at buffers made
	 * available before DRIVER_OK (and sets up its host side): all queue
	 * processing stays on that thread. */
	for (unsigned int q = 0; q < t->ops->num_queues && virtio_mmio_live(t); q++)
		if (t->queues[q].ready)
			virtio_mmio_kick(t, q);
}

static void virtio_mmio_write_status(struct virtio_mmio *t, uint32_t v)
{
	uint32_t added = v & ~t->status;

	if (v == 0) {
		virtio_mmio_reset(t);
		return;
	}
	/* Bits the device owns are not the driver's to set or clear. */
	t->status = (t->status & (VIRTIO_STATUS_DEVICE_NEEDS_RESET | VIRTIO_STATUS_FEATURES_OK |
				  VIRTIO_STATUS_DRIVER_OK)) |
		    (v & (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FAILED));
	if ((added & VIRTIO_STATUS_FEATURES_OK) && !(t->status & VIRTIO_STATUS_DRIVER_OK))
		virtio_mmio_features_ok(t);
	if ((added & VIRTIO_STATUS_DRIVER_OK) && !(t->status & VIRTIO_STATUS_DRIVER_OK))
		virtio_mmio_driver_ok(t);
}

static void virtio_mmio_set_addr(uint64_t *addr, bool high, uint32_t v)
{
	if (high)
		*addr = (*addr & 0xffffffffULL) | ((uint64_t)v << 32);
	else
		*addr = (*addr & ~0xffffffffULL) | v;
}

/* Queue registers; the queue's layout is frozen once it is ready. */
static void virtio_mmio_write_queue(struct virtio_mmio *t, uint64_t reg, uint32_t v)
{
	struct virtq *vq = virtio_mmio_cur_queue(t);
	const char *why;

	if (!vq)
		return;
	if (reg == REG_QUEUE_READY) {
		if (!v) {
			vq->ready = false;
			return;
		}
		if (virtq_check(vq, &why)) {
			virtio_mmio_fail(t, why);
			return;
		}
		vq->ready = true;
		return;
	}
	if (vq->ready)
		return;
	switch (reg) {
	case REG_QUEUE_NUM:
		vq->size = v <= t->ops->queue_max ? (uint16_t)v : 0;
		break;
	case REG_QUEUE_DESC_LOW:
	case REG_QUEUE_DESC_HIGH:
		virtio_mmio_set_addr(&vq->desc_gpa, reg == REG_QUEUE_DESC_HIGH, v);
		break;
	case REG_QUEUE_DRIVER_LOW:
	case REG_QUEUE_DRIVER_HIGH:
		virtio_mmio_set_addr(&vq->avail_gpa, reg == REG_QUEUE_DRIVER_HIGH, v);
		break;
	case REG_QUEUE_DEVICE_LOW:
	case REG_QUEUE_DEVICE_HIGH:
		virtio_mmio_set_addr(&vq->used_gpa, reg == REG_QUEUE_DEVICE_HIGH, v);
		break;
	}
}

static uint32_t virtio_mmio_read_reg(struct virtio_mmio *t, uint64_t reg)
{
	struct virtq *vq = virtio_mmio_cur_queue(t);

	switch (reg) {
	case REG_MAGIC:
		return VIRTIO_MMIO_MAGIC;
	case REG_VERSION:
		return 2;
	case REG_DEVICE_ID:
		return t->ops->device_id;
	case REG_VENDOR_ID:
		return VIRTIO_MMIO_VENDOR;
	case REG_DEVICE_FEATURES:
		return t->device_features_sel > 1 ? 0 :
		       (uint32_t)(virtio_mmio_offered(t) >> (32 * t->device_features_sel));
	case REG_QUEUE_NUM_MAX:
		return vq ? t->ops->queue_max : 0;
	case REG_QUEUE_READY:
		return vq ? vq->ready : 0;
	case REG_INTERRUPT_STATUS:
		return t->interrupt_status;
	case REG_STATUS:
		return t->status;
	case REG_CONFIG_GENERATION:
		return t->config_generation;
	default:
		return 0;
	}
}

static void virtio_mmio_write_reg(struct virtio_mmio *t, uint64_t reg, uint32_t v)
{
	switch (reg) {
	case REG_DEVICE_FEATURES_SEL:
		t->device_features_sel = v;
		break;
	case REG_DRIVER_FEATURES_SEL:
		t->driver_features_sel = v;
		break;
	case REG_DRIVER_FEATURES:
		/* Features are frozen from FEATURES_OK on. */
		if (t->driver_features_sel <= 1 && !(t->status & VIRTIO_STATUS_FEATURES_OK))
			virtio_mmio_set_addr(&t->driver_features, t->driver_features_sel == 1, v);
		break;
	case REG_QUEUE_SEL:
		t->queue_sel = v;
		break;
	case REG_QUEUE_NOTIFY:
		/* Only when no ioeventfd matched (or none is registered): hand it
		 * to the device thread the same way. */
		if (v < t->ops->num_queues)
			virtio_mmio_kick(t, v);
		break;
	case REG_INTERRUPT_ACK:
		t->interrupt_status &= ~v;
		virtio_mmio_update_irq(t, false);
		break;
	case REG_STATUS:
		virtio_mmio_write_status(t, v);
		break;
	default:
		virtio_mmio_write_queue(t, reg, v);
		break;
	}
}

static void virtio_mmio_read(void *opaque, uint64_t offset, void *data, unsigned int len)
{
	struct virtio_mmio *t = opaque;
	uint32_t v;

	memset(data, 0, len);
	pthread_mutex_lock(&t->lock);
	if (offset >= REG_CONFIG) {
		unsigned int off = (unsigned int)(offset - REG_CONFIG);

		if (off < t->ops->config_size && len <= t->ops->config_size - off)
			t->ops->config_read(t->dev, off, data, len);
	} else if (len == 4 && !(offset & 3)) {
		v = virtio_mmio_read_reg(t, offset);
		memcpy(data, &v, 4);
	}
	pthread_mutex_unlock(&t->lock);
}

static void virtio_mmio_write(void *opaque, uint64_t offset, const void *data, unsigned int len)
{
	struct virtio_mmio *t = opaque;
	uint32_t v;

	pthread_mutex_lock(&t->lock);
	if (offset >= REG_CONFIG) {
		unsigned int off = (unsigned int)(offset - REG_CONFIG);

		if (t->ops->config_write && off < t->ops->config_size &&
		    len <= t->ops->config_size - off)
			t->ops->config_write(t->dev, off, data, len);
	} else if (len == 4 && !(offset & 3)) {
		memcpy(&v, data, 4);
		virtio_mmio_write_reg(t, offset, v);
	}
	/* Other widths on registers are ignored, as the spec allows (4.2.2.2). */
	pthread_mutex_unlock(&t->lock);
}

static const struct bus_dev_ops virtio_mmio_ops = {
	.read = virtio_mmio_read,
	.write = virtio_mmio_write,
};

static int virtio_mmio_add_ioeventfd(struct virtio_mmio *t, unsigned int q)
{
	struct kvm_ioeventfd io = {
		.datamatch = q,
		.addr = t->base + REG_QUEUE_NOTIFY,
		.len = 4,
		.fd = t->notify_fd[q],
		.flags = KVM_IOEVENTFD_FLAG_DATAMATCH,
	};

	if (t->vm_fd < 0)
		return 0;
	return ioctl(t->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

int virtio_mmio_init(struct virtio_mmio *t, const struct virtio_dev_ops *ops, void *dev,
		     const char *name, struct bus *mmio, struct guest_mem *mem, uint64_t base,
		     const struct irq_line *irq, int vm_fd)
{
	int err;

	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	t->ops = ops;
	t->dev = dev;
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->mem = mem;
	t->base = base;
	t->irq = *irq;
	t->vm_fd = vm_fd;
	for (unsigned int q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++) {
		t->notify_fd[q] = -1;
		t->queues[q].mem = mem;
	}
	for (unsigned int q = 0; q < ops->num_queues; q++) {
		t->notify_fd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (t->notify_fd[q] < 0)
			return -errno;
		err = virtio_mmio_add_ioeventfd(t, q);
		if (err) {
			log_err("%s: KVM_IOEVENTFD for queue %u: %s", name, q, strerror(-err));
			return err;
		}
	}
	return bus_register(mmio, base, VIRTIO_MMIO_SIZE, &virtio_mmio_ops, t, t->name);
}

void virtio_mmio_destroy(struct virtio_mmio *t)
{
	if (!t->ops)
		return;  /* never initialised */
	for (unsigned int q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++) {
		if (t->notify_fd[q] < 0)
			continue;
		if (t->vm_fd >= 0) {
			struct kvm_ioeventfd io = {
				.datamatch = q, .addr = t->base + REG_QUEUE_NOTIFY, .len = 4,
				.fd = t->notify_fd[q],
				.flags = KVM_IOEVENTFD_FLAG_DATAMATCH | KVM_IOEVENTFD_FLAG_DEASSIGN,
			};

			ioctl(t->vm_fd, KVM_IOEVENTFD, &io);
		}
		close(t->notify_fd[q]);
		t->notify_fd[q] = -1;
	}
	pthread_mutex_destroy(&t->lock);
	t->ops = NULL;
}

void virtio_mmio_pause(struct virtio_mmio *t)
{
	pthread_mutex_lock(&t->lock);
	t->paused = true;
	if (t->ops->quiesce)
		t->ops->quiesce(t->dev);
	pthread_mutex_unlock(&t->lock);
}

void virtio_mmio_resume(struct virtio_mmio *t)
{
	pthread_mutex_lock(&t->lock);
	t->paused = false;
	for (unsigned int q = 0; q < t->ops->num_queues && virtio_mmio_live(t); q++)
		if (t->queues[q].ready)
			virtio_mmio_kick(t, q);
	pthread_mutex_unlock(&t->lock);
}

#define VIRTIO_STATUS_KNOWN (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | \
			     VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_FEATURES_OK | \
			     VIRTIO_STATUS_DEVICE_NEEDS_RESET | VIRTIO_STATUS_FAILED)

int virtio_mmio_save(struct virtio_mmio *t, struct snap_stream *s)
{
	pthread_mutex_lock(&t->lock);
	snap_put_le32(s, t->status);
	snap_put_le32(s, t->device_features_sel);
	snap_put_le32(s, t->driver_features_sel);
	snap_put_le64(s, t->driver_features);
	snap_put_le32(s, t->queue_sel);
	snap_put_le32(s, t->interrupt_status);
	snap_put_le32(s, t->config_generation);
	snap_put_u8(s, t->irq_level);
	snap_put_le32(s, t->ops->num_queues);
	for (unsigned int q = 0; q < t->ops->num_queues; q++) {
		const struct virtq *vq = &t->queues[q];

		snap_put_le16(s, vq->size);
		snap_put_u8(s, vq->ready);
		snap_put_u8(s, vq->event_idx);
		snap_put_le64(s, vq->desc_gpa);
		snap_put_le64(s, vq->avail_gpa);
		snap_put_le64(s, vq->used_gpa);
		snap_put_le16(s, vq->last_avail);
		snap_put_le16(s, vq->used_idx);
		snap_put_le16(s, vq->signalled_used);
		snap_put_u8(s, vq->signalled_valid);
	}
	pthread_mutex_unlock(&t->lock);
	return snap_stream_error(s);
}

int virtio_mmio_load(struct virtio_mmio *t, struct snap_stream *s, char *err, size_t errlen)
{
	struct virtio_mmio in = { .ops = t->ops };
	struct virtq q[VIRTIO_MMIO_MAX_QUEUES];
	const char *why = NULL;
	uint8_t flags[4];
	uint32_t nq;

	in.status = snap_get_le32(s);
	in.device_features_sel = snap_get_le32(s);
	in.driver_features_sel = snap_get_le32(s);
	in.driver_features = snap_get_le64(s);
	in.queue_sel = snap_get_le32(s);
	in.interrupt_status = snap_get_le32(s);
	in.config_generation = snap_get_le32(s);
	flags[0] = snap_get_u8(s);
	nq = snap_get_le32(s);
	if (snap_stream_error(s))
		return snap_stream_error(s);
	if (nq != t->ops->num_queues) {
		snprintf(err, errlen, "%s: snapshot has %u queues, this device %u", t->name, nq,
			 t->ops->num_queues);
		return -EPROTO;
	}
	for (unsigned int i = 0; i < nq; i++) {
		q[i] = (struct virtq){ .mem = t->mem };
		q[i].size = snap_get_le16(s);
		flags[1] = snap_get_u8(s);
		flags[2] = snap_get_u8(s);
		q[i].desc_gpa = snap_get_le64(s);
		q[i].avail_gpa = snap_get_le64(s);
		q[i].used_gpa = snap_get_le64(s);
		q[i].last_avail = snap_get_le16(s);
		q[i].used_idx = snap_get_le16(s);
		q[i].signalled_used = snap_get_le16(s);
		flags[3] = snap_get_u8(s);
		if (snap_stream_error(s))
			return snap_stream_error(s);
		if (flags[1] > 1 || flags[2] > 1 || flags[3] > 1 || q[i].size > t->ops->queue_max) {
			snprintf(err, errlen, "%s: queue %u: invalid state", t->name, i);
			return -EPROTO;
		}
		q[i].ready = flags[1];
		q[i].event_idx = flags[2];
		q[i].signalled_valid = flags[3];
		if (q[i].ready && virtq_check(&q[i], &why)) {
			snprintf(err, errlen, "%s: queue %u: %s", t->name, i, why);
			return -EPROTO;
		}
	}
	if (flags[0] > 1 || (in.status & ~(uint32_t)VIRTIO_STATUS_KNOWN) ||
	    (in.driver_features & ~virtio_mmio_offered(t))) {
		snprintf(err, errlen,
			 "%s: the snapshot's device state does not fit this device (features 0x%llx, offered 0x%llx; a read-only disk where it was writable?)",
			 t->name, (unsigned long long)in.driver_features,
			 (unsigned long long)virtio_mmio_offered(t));
		return -EPROTO;
	}
	pthread_mutex_lock(&t->lock);
	t->status = in.status;
	t->device_features_sel = in.device_features_sel;
	t->driver_features_sel = in.driver_features_sel;
	t->driver_features = in.driver_features;
	t->queue_sel = in.queue_sel;
	t->interrupt_status = in.interrupt_status;
	t->config_generation = in.config_generation;
	t->irq_level = flags[0];
	memcpy(t->queues, q, nq * sizeof(q[0]));
	pthread_mutex_unlock(&t->lock);
	return 0;
}
