/* The virtio-mmio transport (virtio 1.x, version 2 register layout) and the
 * interface a virtio device implements behind it.
 *
 * Threads: guest register accesses arrive on vCPU threads; queue
 * notifications arrive through KVM ioeventfds on the device's own thread
 * (devices/virtio/worker.c), which also does all the device's I/O. One mutex
 * per transport serialises the two; the device thread holds it while it
 * processes queues, so a reset from the guest waits for the device to be
 * quiescent (in-flight I/O drained by ops->reset). */
#ifndef DEVICES_VIRTIO_MMIO_H
#define DEVICES_VIRTIO_MMIO_H

#include "devices/virtio/queue.h"
#include "vmm/irq.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bus;
struct guest_mem;
struct snap_stream;
struct virtio_mmio;

#define VIRTIO_MMIO_SIZE        0x1000
#define VIRTIO_MMIO_MAX_QUEUES  4

/* Device status bits (virtio 1.x 2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE        1
#define VIRTIO_STATUS_DRIVER             2
#define VIRTIO_STATUS_DRIVER_OK          4
#define VIRTIO_STATUS_FEATURES_OK        8
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED             0x80

/* Transport-level feature bits. */
#define VIRTIO_F_INDIRECT_DESC  28
#define VIRTIO_F_EVENT_IDX      29
#define VIRTIO_F_VERSION_1      32

#define VIRTIO_INT_USED_BUFFER   1
#define VIRTIO_INT_CONFIG_CHANGE 2

struct virtio_dev_ops {
	uint32_t device_id;          /* 1 net, 2 blk, 4 rng */
	unsigned int num_queues;
	uint16_t queue_max;          /* QueueNumMax, a power of 2 */
	uint64_t features;           /* offered; VERSION_1 is added by the transport */
	/* Config space reads and writes at offset off (bounds already checked
	 * against config_size). Called with the transport lock held. */
	unsigned int config_size;
	void (*config_read)(void *dev, unsigned int off, void *data, unsigned int len);
	void (*config_write)(void *dev, unsigned int off, const void *data, unsigned int len);
	/* DRIVER_OK: the queues are live (vCPU thread, lock held; every ready
	 * queue is then kicked on the device thread). 0, or -errno to fail. */
	int (*activate)(void *dev);
	/* Stop and forget: drain in-flight I/O, drop device-side state. */
	void (*reset)(void *dev);
	/* Queue q has new buffers (device thread, lock held). */
	void (*queue_notify)(void *dev, unsigned int q);
	/* Checkpoint: finish what is in flight now (lock held); nothing may
	 * touch guest RAM or the queues afterwards until resume. */
	void (*quiesce)(void *dev);
};

/* Where a virtio device is attached: its MMIO window, IRQ, and the VM. */
struct virtio_env {
	struct bus *mmio;
	struct guest_mem *mem;
	int vm_fd;
	uint64_t base;
	struct irq_line irq;
};

struct virtio_mmio {
	pthread_mutex_t lock;
	const struct virtio_dev_ops *ops;
	void *dev;
	char name[32];               /* "virtio-blk0", for messages */
	struct guest_mem *mem;
	uint64_t base;
	struct irq_line irq;
	bool irq_level;
	int vm_fd;
	int notify_fd[VIRTIO_MMIO_MAX_QUEUES];   /* ioeventfds, one per queue */

	uint32_t status;
	uint32_t device_features_sel;
	uint32_t driver_features_sel;
	uint64_t driver_features;
	uint32_t queue_sel;
	uint32_t interrupt_status;
	uint32_t config_generation;
	bool broken_logged;
	bool paused;                 /* quiesced for a checkpoint */
	struct virtq queues[VIRTIO_MMIO_MAX_QUEUES];
};

/* Register the device's MMIO window on the bus and its queue-notify
 * ioeventfds with KVM (vm_fd < 0: no ioeventfds, notifications come as MMIO
 * exits and are forwarded to the same eventfds). */
int virtio_mmio_init(struct virtio_mmio *t, const struct virtio_dev_ops *ops, void *dev,
		     const char *name, struct bus *mmio, struct guest_mem *mem, uint64_t base,
		     const struct irq_line *irq, int vm_fd);
void virtio_mmio_destroy(struct virtio_mmio *t);

/* Device side, lock held. */
bool virtio_mmio_has_feature(const struct virtio_mmio *t, unsigned int bit);
/* Interrupt the driver for queue q if the queue's suppression rules allow. */
void virtio_mmio_used(struct virtio_mmio *t, unsigned int q);
/* The driver broke the protocol: log once, set DEVICE_NEEDS_RESET, tell it. */
void virtio_mmio_fail(struct virtio_mmio *t, const char *why);
/* Is the device live (DRIVER_OK, not broken, not paused)? */
bool virtio_mmio_live(const struct virtio_mmio *t);

/* Checkpoint support. Pause: in-flight I/O completes and the device stops
 * touching guest RAM (the vCPUs must be paused first). Resume: every ready
 * queue is looked at again, as notifications were ignored meanwhile. */
void virtio_mmio_pause(struct virtio_mmio *t);
void virtio_mmio_resume(struct virtio_mmio *t);
/* The transport's state (registers, queue positions) into a section, and
 * back into a device created with the same configuration. Load checks
 * everything (features offered, queue sizes, ring addresses in RAM) before
 * it changes anything; -EPROTO with err set if the snapshot does not fit. */
int virtio_mmio_save(struct virtio_mmio *t, struct snap_stream *s);
int virtio_mmio_load(struct virtio_mmio *t, struct snap_stream *s, char *err, size_t errlen);

#endif
