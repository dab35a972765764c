/* The guest console on the host side: where COM1 output goes, and the
 * terminal (raw mode, always restored) that feeds COM1 input. */
#ifndef VMM_CONSOLE_H
#define VMM_CONSOLE_H

#include "vmm/vm.h"

#include <stdbool.h>
#include <stdint.h>
#include <termios.h>

struct loop;
struct serial;

struct console {
	int in_fd;            /* stdin, or -1 */
	int out_fd;           /* stdout, a file, or -1 */
	bool out_owned;       /* out_fd is ours to close */
	bool raw;             /* the terminal is in raw mode */
	bool escape;          /* the previous input byte was Ctrl-A */
	int retry_fd;         /* timerfd: retry input when the guest's FIFO was full */
	bool in_polled;       /* in_fd is a file epoll cannot watch: read on the timer */
	struct serial *serial;
	struct loop *loop;
	struct vm *vm;
};

/* Opens the output side; logs and returns -errno on failure. */
int console_open(struct console *c, enum vm_console mode, const char *path);
/* Puts an interactive terminal in raw mode and starts feeding input to s. */
int console_attach(struct console *c, struct vm *vm, struct serial *s, struct loop *loop);
/* Restores the terminal and releases everything. Safe to call twice. */
void console_close(struct console *c);

#endif
