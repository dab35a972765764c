/* A 16550A-compatible UART (the PC's COM1) as the guest console. */
#ifndef DEVICES_SERIAL_H
#define DEVICES_SERIAL_H

#include <stddef.h>
#include <stdint.h>

struct bus;
struct irq_line;
struct serial;
struct snap_registry;

/* out_fd receives what the guest transmits (-1: discard). */
int serial_create(struct bus *pio, uint16_t base, const struct irq_line *irq, int out_fd,
		  struct serial **out);
void serial_destroy(struct serial *s);
/* Queue bytes for the guest to read; returns how many fit in the FIFO. */
size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len);
/* Free space in the receive FIFO. */
size_t serial_rx_space(struct serial *s);

/* Register the UART's state section ("serial") for checkpoints. */
int serial_register_state(struct snap_registry *reg, struct serial *s, uint32_t instance);

#endif
