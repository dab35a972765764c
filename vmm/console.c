/* Raw mode: the guest sees every byte, Ctrl-C included. Ctrl-A x ends vmm,
 * Ctrl-A Ctrl-A sends one Ctrl-A. The terminal's saved state is the one
 * process-wide variable here: a fatal signal handler must be able to
 * restore it, and there is only one terminal per process anyway. */
#include "vmm/console.h"
#include "devices/serial.h"
#include "vmm/log.h"
#include "vmm/loop.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define CONSOLE_ESCAPE 0x01   /* Ctrl-A */
#define CONSOLE_CHUNK 256
#define CONSOLE_RETRY_NS (20 * 1000 * 1000)

static struct termios console_saved_termios;
static volatile sig_atomic_t console_saved_valid;

static void console_restore_terminal(void)
{
	if (console_saved_valid)
		tcsetattr(STDIN_FILENO, TCSANOW, &console_saved_termios);
}

static void console_fatal_signal(int sig)
{
	console_restore_terminal();
	signal(sig, SIG_DFL);
	raise(sig);
}

int console_open(struct console *c, enum vm_console mode, const char *path)
{
	memset(c, 0, sizeof(*c));
	c->in_fd = -1;
	c->out_fd = -1;
	c->retry_fd = -1;
	switch (mode) {
	case VM_CONSOLE_STDIO:
		c->out_fd = STDOUT_FILENO;
		c->in_fd = STDIN_FILENO;
		break;
	case VM_CONSOLE_FILE:
		c->out_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (c->out_fd < 0) {
			int err = -errno;

			log_err("--console file=%s: %s", path, strerror(-err));
			return err;
		}
		c->out_owned = true;
		break;
	case VM_CONSOLE_NONE:
		break;
	}
	return 0;
}

static void console_enter_raw(struct console *c)
{
	struct termios raw;
	struct sigaction sa = { .sa_handler = console_fatal_signal };
	static const int fatal[] = { SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL };

	if (!isatty(c->in_fd) || tcgetattr(c->in_fd, &console_saved_termios) < 0)
		return;
	console_saved_valid = 1;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		sigaction(fatal[i], &sa, NULL);
	raw = console_saved_termios;
	cfmakeraw(&raw);
	/* Keep output post-processing (\n -> \r\n) so guests that print bare \n,
	 * and vmm's own messages, stay readable. */
	raw.c_oflag |= OPOST | ONLCR;
	if (tcsetattr(c->in_fd, TCSANOW, &raw) == 0)
		c->raw = true;
}

/* Pass input to the guest, interpreting the escape sequence on a terminal. */
static void console_feed(struct console *c, const uint8_t *buf, size_t len)
{
	uint8_t out[256];
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		uint8_t b = buf[i];

		if (c->raw && c->escape) {
			c->escape = false;
			if (b == 'x' || b == 'X') {
				vm_request_exit(c->vm, VM_EXIT_OK, "quit from the console (Ctrl-A x)");
				return;
			}
			if (b != CONSOLE_ESCAPE)
				out[n++] = CONSOLE_ESCAPE;
		} else if (c->raw && b == CONSOLE_ESCAPE) {
			c->escape = true;
			continue;
		}
		out[n++] = b;
		if (n >= sizeof(out) - 1) {
			serial_receive(c->serial, out, n);
			n = 0;
		}
	}
	if (n)
		serial_receive(c->serial, out, n);
}

static void console_input(void *opaque, int fd, uint32_t events);

static void console_arm_timer(struct console *c, long ns)
{
	struct itimerspec its = { .it_value = { .tv_nsec = ns } };

	timerfd_settime(c->retry_fd, 0, &its, NULL);
}

/* The guest's receive FIFO was full: stop reading input for a moment. */
static void console_pause_input(struct console *c)
{
	if (!c->in_polled)
		loop_del(c->loop, c->in_fd);
	console_arm_timer(c, CONSOLE_RETRY_NS);
}

static void console_retry(void *opaque, int fd, uint32_t events)
{
	struct console *c = opaque;
	uint64_t ticks;

	if (read(fd, &ticks, sizeof(ticks)) < 0 || c->in_fd < 0)
		return;  /* spurious wakeup, or input already ended */
	if (c->in_polled)
		console_input(c, c->in_fd, EPOLLIN);
	else if (serial_rx_space(c->serial) < CONSOLE_CHUNK)
		console_pause_input(c);
	else if (loop_add(c->loop, c->in_fd, EPOLLIN, console_input, c) < 0)
		log_warn("console: cannot resume reading input");
}

static void console_input(void *opaque, int fd, uint32_t events)
{
	struct console *c = opaque;
	uint8_t buf[CONSOLE_CHUNK];
	ssize_t n;

	/* Escapes consume bytes, so reading at most the free space never overflows. */
	if (serial_rx_space(c->serial) < sizeof(buf)) {
		console_pause_input(c);
		return;
	}
	n = read(fd, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		/* End of input (or an error): the guest simply gets no more. */
		if (!c->in_polled)
			loop_del(c->loop, fd);
		c->in_fd = -1;
		return;
	}
	console_feed(c, buf, (size_t)n);
	if (c->in_polled)
		console_arm_timer(c, 1);  /* a file: go on at once */
}

int console_attach(struct console *c, struct vm *vm, struct serial *s, struct loop *loop)
{
	int err;

	c->vm = vm;
	c->serial = s;
	c->loop = loop;
	if (c->in_fd < 0)
		return 0;
	console_enter_raw(c);
	c->retry_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (c->retry_fd < 0)
		return -errno;
	err = loop_add(loop, c->retry_fd, EPOLLIN, console_retry, c);
	if (err)
		return err;
	err = loop_add(loop, c->in_fd, EPOLLIN, console_input, c);
	if (err == -EPERM) {
		/* A regular file (or /dev/null) cannot be watched by epoll: it is
		 * always readable, so read it from the timer instead. */
		c->in_polled = true;
		console_arm_timer(c, 1);
	} else if (err) {
		/* A closed stdin: no error, just no input. */
		log_debug("console: not reading input: %s", strerror(-err));
		c->in_fd = -1;
	}
	return 0;
}

void console_close(struct console *c)
{
	if (c->raw) {
		console_restore_terminal();
		c->raw = false;
	}
	if (c->retry_fd >= 0)
		close(c->retry_fd);
	c->retry_fd = -1;
	if (c->out_owned && c->out_fd >= 0)
		close(c->out_fd);
	c->out_fd = -1;
}
