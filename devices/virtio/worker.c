#include "devices/virtio/worker.h"
#include "devices/virtio/mmio.h"
#include "vmm/log.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

static void virtio_worker_notified(void *opaque, int fd, uint32_t events)
{
	struct virtio_worker *w = opaque;
	struct virtio_mmio *t = w->transport;
	uint64_t n;

	if (read(fd, &n, sizeof(n)) < 0)
		return;  /* nonblocking: already consumed */
	pthread_mutex_lock(&t->lock);
	for (unsigned int q = 0; q < t->ops->num_queues; q++) {
		if (t->notify_fd[q] == fd && virtio_mmio_live(t) && t->queues[q].ready)
			t->ops->queue_notify(t->dev, q);
	}
	pthread_mutex_unlock(&t->lock);
}

static void virtio_worker_stop_requested(void *opaque, int fd, uint32_t events)
{
	struct virtio_worker *w = opaque;

	loop_quit(w->loop);
}

int virtio_worker_init(struct virtio_worker *w, struct virtio_mmio *t, const char *name)
{
	int err;

	memset(w, 0, sizeof(*w));
	w->transport = t;
	w->stop_fd = -1;
	snprintf(w->name, sizeof(w->name), "%s", name);
	err = loop_create(&w->loop);
	if (err)
		return err;
	w->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->stop_fd < 0)
		return -errno;
	err = loop_add(w->loop, w->stop_fd, EPOLLIN, virtio_worker_stop_requested, w);
	for (unsigned int q = 0; !err && q < t->ops->num_queues; q++)
		err = loop_add(w->loop, t->notify_fd[q], EPOLLIN, virtio_worker_notified, w);
	return err;
}

int virtio_worker_watch(struct virtio_worker *w, int fd, uint32_t events, loop_fn *fn,
			void *opaque)
{
	return loop_add(w->loop, fd, events, fn, opaque);
}

static void *virtio_worker_thread(void *arg)
{
	struct virtio_worker *w = arg;
	sigset_t all;
	int err;

	/* Signals are for the main thread and the vCPUs. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_setname_np(pthread_self(), w->name);
	err = loop_run(w->loop);
	if (err)
		log_err("%s: event loop failed: %s", w->name, strerror(-err));
	return NULL;
}

int virtio_worker_start(struct virtio_worker *w)
{
	int err = pthread_create(&w->thread, NULL, virtio_worker_thread, w);

	if (err)
		return -err;
	w->started = true;
	return 0;
}

void virtio_worker_destroy(struct virtio_worker *w)
{
	uint64_t one = 1;

	if (w->started) {
		if (write(w->stop_fd, &one, sizeof(one)) < 0)
			log_warn("%s: cannot stop the device thread: %s", w->name, strerror(errno));
		pthread_join(w->thread, NULL);
		w->started = false;
	}
	loop_destroy(w->loop);
	w->loop = NULL;
	if (w->stop_fd >= 0)
		close(w->stop_fd);
	w->stop_fd = -1;
}
