/* 8250/16550A UART. Transmit is instant (each byte written to out_fd at
 * once, so LSR always reports THR empty); receive is a FIFO filled by the
 * event loop from the console. The IRQ line follows IIR, gated by MCR.OUT2
 * as on a PC. Registers are serialised by the device mutex. */
#include "devices/serial.h"
#include "vmm/bus.h"
#include "vmm/irq.h"
#include "snapshot/registry.h"
#include "snapshot/stream.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SERIAL_RX_FIFO 4096

#define UART_RBR 0  /* read; THR on write; DLL with DLAB */
#define UART_IER 1  /* DLM with DLAB */
#define UART_IIR 2  /* read; FCR on write */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define IER_RDI   0x01
#define IER_THRI  0x02
#define IIR_NONE  0x01
#define IIR_THRI  0x02
#define IIR_RDI   0x04
#define IIR_FIFO  0xc0
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define LCR_DLAB  0x80
#define MCR_DTR   0x01
#define MCR_RTS   0x02
#define MCR_OUT1  0x04
#define MCR_OUT2  0x08
#define MCR_LOOP  0x10
#define LSR_DR    0x01
#define LSR_THRE  0x20
#define LSR_TEMT  0x40
#define MSR_CTS   0x10
#define MSR_DSR   0x20
#define MSR_RI    0x40
#define MSR_DCD   0x80

struct serial {
	pthread_mutex_t lock;
	struct irq_line irq;
	int out_fd;
	bool irq_level;
	uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
	bool thri_pending;   /* "THR empty" interrupt raised, not yet acknowledged */
	uint8_t rx[SERIAL_RX_FIFO];
	size_t rx_head, rx_len;
};

static uint8_t serial_iir(const struct serial *s)
{
	uint8_t fifo = (s->fcr & FCR_ENABLE) ? IIR_FIFO : 0;

	if ((s->ier & IER_RDI) && s->rx_len)
		return IIR_RDI | fifo;
	if ((s->ier & IER_THRI) && s->thri_pending)
		return IIR_THRI | fifo;
	return IIR_NONE | fifo;
}

static void serial_update_irq(struct serial *s)
{
	bool level = !(serial_iir(s) & IIR_NONE) && (s->mcr & MCR_OUT2);

	if (level != s->irq_level) {
		s->irq_level = level;
		irq_line_set(&s->irq, level);
	}
}

static size_t serial_rx_push(struct serial *s, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	while (n < len && s->rx_len < SERIAL_RX_FIFO) {
		s->rx[(s->rx_head + s->rx_len) % SERIAL_RX_FIFO] = buf[n++];
		s->rx_len++;
	}
	return n;
}

static void serial_transmit(struct serial *s, uint8_t c)
{
	if (s->mcr & MCR_LOOP) {
		serial_rx_push(s, &c, 1);
	} else if (s->out_fd >= 0) {
		ssize_t n;

		do
			n = write(s->out_fd, &c, 1);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			s->out_fd = -1;  /* console gone (EPIPE...): drop output from now on */
	}
	s->thri_pending = true;
}

static uint8_t serial_read_reg(struct serial *s, uint64_t reg)
{
	uint8_t v = 0;

	switch (reg) {
	case UART_RBR:
		if (s->lcr & LCR_DLAB)
			return s->dll;
		if (s->rx_len) {
			v = s->rx[s->rx_head];
			s->rx_head = (s->rx_head + 1) % SERIAL_RX_FIFO;
			s->rx_len--;
		}
		return v;
	case UART_IER:
		return (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
	case UART_IIR:
		v = serial_iir(s);
		if ((v & 0x0f) == IIR_THRI)
			s->thri_pending = false;  /* reading IIR acknowledges THRE */
		return v;
	case UART_LCR:
		return s->lcr;
	case UART_MCR:
		return s->mcr;
	case UART_LSR:
		return LSR_THRE | LSR_TEMT | (s->rx_len ? LSR_DR : 0);
	case UART_MSR:
		if (s->mcr & MCR_LOOP)
			return ((s->mcr & MCR_RTS) ? MSR_CTS : 0) |
			       ((s->mcr & MCR_DTR) ? MSR_DSR : 0) |
			       ((s->mcr & MCR_OUT1) ? MSR_RI : 0) |
			       ((s->mcr & MCR_OUT2) ? MSR_DCD : 0);
		return MSR_DCD | MSR_DSR | MSR_CTS;
	default:
		return s->scr;
	}
}

static void serial_write_reg(struct serial *s, uint64_t reg, uint8_t v)
{
	switch (reg) {
	case UART_RBR:
		if (s->lcr & LCR_DLAB)
			s->dll = v;
		else
			serial_transmit(s, v);
		break;
	case UART_IER:
		if (s->lcr & LCR_DLAB) {
			s->dlm = v;
		} else {
			/* Enabling THRE interrupts with THR empty raises one at once. */
			if ((v & IER_THRI) && !(s->ier & IER_THRI))
				s->thri_pending = true;
			s->ier = v & 0x0f;
		}
		break;
	case UART_IIR:
		s->fcr = v & 0xc9;
		if (v & FCR_CLEAR_RX)
			s->rx_head = s->rx_len = 0;
		break;
	case UART_LCR:
		s->lcr = v;
		break;
	case UART_MCR:
		s->mcr = v & 0x1f;
		break;
	case UART_SCR:
		s->scr = v;
		break;
	default:
		break;  /* LSR and MSR are read-only */
	}
}

static void serial_bus_read(void *opaque, uint64_t offset, void *data, unsigned int len)
{
	struct serial *s = opaque;

	memset(data, 0xff, len);
	pthread_mutex_lock(&s->lock);
	*(uint8_t *)data = serial_read_reg(s, offset);
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

static void serial_bus_write(void *opaque, uint64_t offset, const void *data, unsigned int len)
{
	struct serial *s = opaque;

	pthread_mutex_lock(&s->lock);
	serial_write_reg(s, offset, *(const uint8_t *)data);
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

static const struct bus_dev_ops serial_ops = {
	.read = serial_bus_read,
	.write = serial_bus_write,
};

int serial_create(struct bus *pio, uint16_t base, const struct irq_line *irq, int out_fd,
		  struct serial **out)
{
	struct serial *s = calloc(1, sizeof(*s));
	int err;

	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	s->irq = *irq;
	s->out_fd = out_fd;
	s->lcr = 0x03;   /* 8N1 */
	s->dll = 0x0c;   /* 9600 baud */
	err = bus_register(pio, base, 8, &serial_ops, s, "serial");
	if (err) {
		serial_destroy(s);
		return err;
	}
	*out = s;
	return 0;
}

void serial_destroy(struct serial *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s);
}

size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = serial_rx_push(s, buf, len);
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

size_t serial_rx_space(struct serial *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = SERIAL_RX_FIFO - s->rx_len;
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* State section "serial", version 1: the registers, whether a THRE
 * interrupt is pending, the IRQ line level, then the receive FIFO's bytes in
 * order (u32 count, bytes). The line level is not re-driven on load: the
 * interrupt controller's own state, restored with it, already holds it. */
static int serial_save(void *opaque, struct snap_stream *st)
{
	struct serial *s = opaque;
	uint8_t regs[9];

	pthread_mutex_lock(&s->lock);
	regs[0] = s->ier;
	regs[1] = s->lcr;
	regs[2] = s->mcr;
	regs[3] = s->scr;
	regs[4] = s->fcr;
	regs[5] = s->dll;
	regs[6] = s->dlm;
	regs[7] = s->thri_pending;
	regs[8] = s->irq_level;
	snap_put_bytes(st, regs, sizeof(regs));
	snap_put_le32(st, (uint32_t)s->rx_len);
	for (size_t i = 0; i < s->rx_len; i++)
		snap_put_u8(st, s->rx[(s->rx_head + i) % SERIAL_RX_FIFO]);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int serial_load(void *opaque, struct snap_stream *st, uint32_t version)
{
	struct serial *s = opaque;
	uint8_t regs[9], rx[SERIAL_RX_FIFO];
	uint32_t n;

	snap_get_bytes(st, regs, sizeof(regs));
	n = snap_get_le32(st);
	if (snap_stream_error(st))
		return snap_stream_error(st);
	if (n > SERIAL_RX_FIFO || regs[7] > 1 || regs[8] > 1)
		return -EPROTO;
	snap_get_bytes(st, rx, n);
	if (snap_stream_error(st))
		return snap_stream_error(st);
	pthread_mutex_lock(&s->lock);
	s->ier = regs[0] & 0x0f;
	s->lcr = regs[1];
	s->mcr = regs[2] & 0x1f;
	s->scr = regs[3];
	s->fcr = regs[4];
	s->dll = regs[5];
	s->dlm = regs[6];
	s->thri_pending = regs[7];
	s->irq_level = regs[8];
	memcpy(s->rx, rx, n);
	s->rx_head = 0;
	s->rx_len = n;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static const struct snap_section_ops serial_state_ops = {
	.name = "serial", .version = 1, .min_version = 1,
	.save = serial_save, .load = serial_load,
};

int serial_register_state(struct snap_registry *reg, struct serial *s, uint32_t instance)
{
	return snap_registry_add(reg, &serial_state_ops, instance, s);
}
