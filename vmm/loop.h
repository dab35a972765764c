/* The main thread's event loop: epoll over fds with one callback each. */
#ifndef VMM_LOOP_H
#define VMM_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct loop;
typedef void loop_fn(void *opaque, int fd, uint32_t events);

int loop_create(struct loop **out);
void loop_destroy(struct loop *loop);
int loop_add(struct loop *loop, int fd, uint32_t events, loop_fn *fn, void *opaque);
/* Safe to call from a callback, also for the fd being dispatched. */
void loop_del(struct loop *loop, int fd);
/* Run until loop_quit(); returns 0 or -errno. */
int loop_run(struct loop *loop);
void loop_quit(struct loop *loop);

#endif
