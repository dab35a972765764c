/* Handlers deleted during a dispatch round are only marked dead and freed
 * after the round, since epoll may already have returned events for them. */
#include "vmm/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#define LOOP_BATCH 32

struct loop_handler {
	int fd;
	bool dead;
	loop_fn *fn;
	void *opaque;
	struct loop_handler *next;
};

struct loop {
	int epfd;
	bool quit;
	struct loop_handler *handlers;
};

int loop_create(struct loop **out)
{
	struct loop *loop = calloc(1, sizeof(*loop));

	if (!loop)
		return -ENOMEM;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		int err = -errno;

		free(loop);
		return err;
	}
	*out = loop;
	return 0;
}

void loop_destroy(struct loop *loop)
{
	struct loop_handler *h, *next;

	if (!loop)
		return;
	for (h = loop->handlers; h; h = next) {
		next = h->next;
		free(h);
	}
	close(loop->epfd);
	free(loop);
}

int loop_add(struct loop *loop, int fd, uint32_t events, loop_fn *fn, void *opaque)
{
	struct loop_handler *h = calloc(1, sizeof(*h));
	struct epoll_event ev = { .events = events };

	if (!h)
		return -ENOMEM;
	h->fd = fd;
	h->fn = fn;
	h->opaque = opaque;
	ev.data.ptr = h;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int err = -errno;

		free(h);
		return err;
	}
	h->next = loop->handlers;
	loop->handlers = h;
	return 0;
}

void loop_del(struct loop *loop, int fd)
{
	for (struct loop_handler *h = loop->handlers; h; h = h->next) {
		if (h->fd == fd && !h->dead) {
			epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
			h->dead = true;
			return;
		}
	}
}

static void loop_reap(struct loop *loop)
{
	struct loop_handler **pp = &loop->handlers;

	while (*pp) {
		struct loop_handler *h = *pp;

		if (h->dead) {
			*pp = h->next;
			free(h);
		} else {
			pp = &h->next;
		}
	}
}

int loop_run(struct loop *loop)
{
	struct epoll_event ev[LOOP_BATCH];

	loop->quit = false;
	while (!loop->quit) {
		int n = epoll_wait(loop->epfd, ev, LOOP_BATCH, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		for (int i = 0; i < n; i++) {
			struct loop_handler *h = ev[i].data.ptr;

			if (!h->dead)
				h->fn(h->opaque, h->fd, ev[i].events);
		}
		loop_reap(loop);
	}
	return 0;
}

void loop_quit(struct loop *loop)
{
	loop->quit = true;
}
