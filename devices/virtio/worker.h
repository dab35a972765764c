/* A virtio device's own thread: an event loop that receives the queue
 * notifications (ioeventfds) and the device's host-side events (io_uring
 * completions, a tap fd), so no device work runs on a vCPU thread. */
#ifndef DEVICES_VIRTIO_WORKER_H
#define DEVICES_VIRTIO_WORKER_H

#include "vmm/loop.h"

#include <pthread.h>
#include <stdbool.h>

struct virtio_mmio;

struct virtio_worker {
	struct loop *loop;
	struct virtio_mmio *transport;
	pthread_t thread;
	bool started;
	int stop_fd;
	char name[16];
};

/* Create the loop and watch every queue's notify eventfd of transport t. */
int virtio_worker_init(struct virtio_worker *w, struct virtio_mmio *t, const char *name);
/* Add a host-side fd (before virtio_worker_start, or from the worker thread). */
int virtio_worker_watch(struct virtio_worker *w, int fd, uint32_t events, loop_fn *fn,
			void *opaque);
int virtio_worker_start(struct virtio_worker *w);
/* Stop the thread (joins it) and free the loop. Safe to call twice. */
void virtio_worker_destroy(struct virtio_worker *w);

#endif
