/* Guest kit console: COM1 8250, polled. Each kit_printf holds one lock for
 * the whole call so lines from different vCPUs never interleave. Every
 * register access is a VM exit, so output costs ~2 exits per byte. */
#include "kit_internal.h"

#define UART_THR	(KIT_COM1 + 0)
#define UART_LSR	(KIT_COM1 + 5)
#define UART_LSR_THRE	0x20
#define UART_LSR_DR	0x01
#define UART_RBR	(KIT_COM1 + 0)

uint32_t kit_console_lock;

/* Wait for THRE, but not forever: a missing UART must not hang a guest. */
static void console_put_uart(char c)
{
	for (unsigned int i = 0; i < 100000; i++) {
		if (kit_inb(UART_LSR) & UART_LSR_THRE)
			break;
		kit_cpu_relax();
	}
	kit_outb(UART_THR, (uint8_t)c);
}

static void console_put_sink(struct kit_sink *sink, char c)
{
	(void)sink;
	console_put_uart(c);
}

void kit_console_vprintf_locked(const char *fmt, va_list ap)
{
	struct kit_sink sink = { .put = console_put_sink };

	kit_vformat(&sink, fmt, ap);
}

void kit_console_puts_locked(const char *s)
{
	while (*s)
		console_put_uart(*s++);
}

void kit_vprintf(const char *fmt, va_list ap)
{
	kit_spin_lock(&kit_console_lock);
	kit_console_vprintf_locked(fmt, ap);
	kit_spin_unlock(&kit_console_lock);
}

void kit_printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kit_vprintf(fmt, ap);
	va_end(ap);
}

void kit_putc(char c)
{
	kit_spin_lock(&kit_console_lock);
	console_put_uart(c);
	kit_spin_unlock(&kit_console_lock);
}

void kit_puts(const char *s)
{
	kit_spin_lock(&kit_console_lock);
	kit_console_puts_locked(s);
	kit_spin_unlock(&kit_console_lock);
}

int kit_getc_nowait(void)
{
	if (!(kit_inb(UART_LSR) & UART_LSR_DR))
		return -1;
	return kit_inb(UART_RBR);
}
