/* The PIO bus and the legacy devices on it (UART, i8042), driven through
 * the bus exactly as the vCPU threads drive them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "devices/i8042.h"
#include "devices/serial.h"
#include "vmm/bus.h"
#include "vmm/irq.h"
#include "vmm/log.h"
#include "snapshot/registry.h"
#include "snapshot/stream.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define COM1 0x3f8

struct irq_probe {
	int raises, lowers;
	bool level;
};

static void probe_set(void *opaque, unsigned int gsi, bool level)
{
	struct irq_probe *p = opaque;

	assert_int_equal(gsi, 4);
	p->level = level;
	if (level)
		p->raises++;
	else
		p->lowers++;
}

static uint8_t in8(struct bus *bus, uint16_t port)
{
	uint8_t v = 0;

	assert_true(bus_access(bus, port, &v, 1, false));
	return v;
}

static void out8(struct bus *bus, uint16_t port, uint8_t v)
{
	assert_true(bus_access(bus, port, &v, 1, true));
}

static void test_bus_ranges(void **state)
{
	static const struct bus_dev_ops none = { 0 };
	struct bus bus;
	uint32_t v = 0;

	bus_init(&bus, "pio");
	assert_int_equal(bus_register(&bus, 0x100, 8, &none, NULL, "a"), 0);
	assert_int_equal(bus_register(&bus, 0x10, 8, &none, NULL, "b"), 0);
	assert_int_equal(bus_register(&bus, 0x104, 8, &none, NULL, "c"), -EEXIST);
	assert_int_equal(bus_register(&bus, 0xfc, 8, &none, NULL, "d"), -EEXIST);
	assert_int_equal(bus_register(&bus, 0x108, 0, &none, NULL, "e"), -EINVAL);
	assert_int_equal(bus_register(&bus, UINT64_MAX - 2, 8, &none, NULL, "f"), -EINVAL);
	assert_int_equal(bus.ranges[0].base, 0x10);   /* kept sorted */
	/* Unclaimed reads return all ones and are counted. */
	assert_false(bus_access(&bus, 0x80, &v, 4, false));
	assert_int_equal(v, 0xffffffff);
	/* An access straddling the end of a range is not the device's. */
	assert_false(bus_access(&bus, 0x106, &v, 4, false));
	assert_int_equal(bus.unhandled, 2);
	assert_true(bus_access(&bus, 0x107, &v, 1, false));
}

static void test_serial_tx_rx(void **state)
{
	struct irq_probe probe = { 0 };
	struct irq_line irq = { probe_set, &probe, 4 };
	struct serial *s;
	struct bus bus;
	char out[16] = { 0 };
	int pipefd[2];

	assert_int_equal(pipe2(pipefd, O_NONBLOCK), 0);
	bus_init(&bus, "pio");
	assert_int_equal(serial_create(&bus, COM1, &irq, pipefd[1], &s), 0);
	/* Transmit: THR empty always, bytes reach the console fd at once. */
	assert_int_equal(in8(&bus, COM1 + 5) & 0x60, 0x60);
	out8(&bus, COM1, 'o');
	out8(&bus, COM1, 'k');
	assert_int_equal(read(pipefd[0], out, sizeof(out)), 2);
	assert_string_equal(out, "ok");
	/* Receive: LSR.DR follows the FIFO. */
	assert_int_equal(in8(&bus, COM1 + 5) & 1, 0);
	assert_int_equal(serial_receive(s, (const uint8_t *)"ab", 2), 2);
	assert_int_equal(in8(&bus, COM1 + 5) & 1, 1);
	assert_int_equal(in8(&bus, COM1), 'a');
	assert_int_equal(in8(&bus, COM1), 'b');
	assert_int_equal(in8(&bus, COM1 + 5) & 1, 0);
	/* The divisor latch hides RBR/IER while DLAB is set. */
	out8(&bus, COM1 + 3, 0x83);
	out8(&bus, COM1, 0x01);
	out8(&bus, COM1 + 1, 0x00);
	assert_int_equal(in8(&bus, COM1), 0x01);
	out8(&bus, COM1 + 3, 0x03);
	assert_int_equal(in8(&bus, COM1 + 3), 0x03);
	/* Scratch register. */
	out8(&bus, COM1 + 7, 0x5a);
	assert_int_equal(in8(&bus, COM1 + 7), 0x5a);
	serial_destroy(s);
	close(pipefd[0]);
	close(pipefd[1]);
}

static void test_serial_interrupts(void **state)
{
	struct irq_probe probe = { 0 };
	struct irq_line irq = { probe_set, &probe, 4 };
	struct serial *s;
	struct bus bus;

	bus_init(&bus, "pio");
	assert_int_equal(serial_create(&bus, COM1, &irq, -1, &s), 0);
	assert_int_equal(in8(&bus, COM1 + 2) & 0x0f, 0x01);  /* no interrupt */
	out8(&bus, COM1 + 1, 0x01);                          /* RX interrupts */
	serial_receive(s, (const uint8_t *)"x", 1);
	assert_int_equal(in8(&bus, COM1 + 2) & 0x0f, 0x04);
	assert_false(probe.level);                           /* OUT2 gates the line */
	out8(&bus, COM1 + 4, 0x08);
	assert_true(probe.level);
	assert_int_equal(in8(&bus, COM1), 'x');
	assert_false(probe.level);                           /* drained: line drops */
	/* Enabling THRE interrupts with THR empty raises one; reading IIR acks it. */
	out8(&bus, COM1 + 1, 0x03);
	assert_true(probe.level);
	assert_int_equal(in8(&bus, COM1 + 2) & 0x0f, 0x02);
	assert_false(probe.level);
	assert_int_equal(in8(&bus, COM1 + 2) & 0x0f, 0x01);
	/* A transmitted byte raises THRE again. */
	out8(&bus, COM1, 'z');
	assert_true(probe.level);
	assert_int_equal(probe.raises, 3);
	serial_destroy(s);
}

static void test_serial_loopback_and_fifo(void **state)
{
	struct irq_line irq = { 0 };
	struct serial *s;
	struct bus bus;
	uint8_t big[5000];

	bus_init(&bus, "pio");
	assert_int_equal(serial_create(&bus, COM1, &irq, -1, &s), 0);
	out8(&bus, COM1 + 4, 0x10 | 0x02 | 0x01);            /* loop, RTS, DTR */
	assert_int_equal(in8(&bus, COM1 + 6) & 0xf0, 0x30);  /* CTS, DSR */
	out8(&bus, COM1, 'L');
	assert_int_equal(in8(&bus, COM1), 'L');
	out8(&bus, COM1 + 4, 0);
	/* The FIFO is bounded; what does not fit is refused, not lost silently. */
	memset(big, 'q', sizeof(big));
	assert_int_equal(serial_receive(s, big, sizeof(big)), 4096);
	assert_int_equal(serial_rx_space(s), 0);
	out8(&bus, COM1 + 2, 0x03);                          /* FIFO enable + clear RX */
	assert_int_equal(serial_rx_space(s), 4096);
	serial_destroy(s);
}

static void on_reset(void *opaque)
{
	(*(int *)opaque)++;
}

static void test_i8042(void **state)
{
	struct i8042 *k;
	struct bus bus;
	int resets = 0;

	bus_init(&bus, "pio");
	assert_int_equal(i8042_create(&bus, on_reset, &resets, &k), 0);
	assert_int_equal(in8(&bus, 0x64) & 0x01, 0);    /* nothing to read */
	out8(&bus, 0x64, 0xaa);                         /* self-test */
	assert_int_equal(in8(&bus, 0x64) & 0x01, 1);
	assert_int_equal(in8(&bus, 0x60), 0x55);
	assert_int_equal(in8(&bus, 0x64) & 0x01, 0);
	out8(&bus, 0x64, 0x60);                         /* write command byte */
	out8(&bus, 0x60, 0x21);
	out8(&bus, 0x64, 0x20);                         /* read it back */
	assert_int_equal(in8(&bus, 0x60), 0x21);
	assert_int_equal(resets, 0);
	out8(&bus, 0x64, 0xd1);                         /* output port: bit 0 set, no reset */
	out8(&bus, 0x60, 0x01);
	assert_int_equal(resets, 0);
	out8(&bus, 0x64, 0xd1);                         /* bit 0 clear: reset */
	out8(&bus, 0x60, 0x00);
	assert_int_equal(resets, 1);
	out8(&bus, 0x64, 0xfe);                         /* pulse reset line */
	assert_int_equal(resets, 2);
	i8042_destroy(k);
}

/* Save a device's section into memory, then load it into a fresh one. */
static void roundtrip(struct snap_registry *from, struct snap_registry *to)
{
	struct snap_stream *out, *in;
	const uint8_t *data;
	size_t len;

	assert_int_equal(snap_stream_open_mem_write(&out), 0);
	assert_int_equal(from->sections[0].ops->save(from->sections[0].opaque, out), 0);
	data = snap_stream_mem_data(out, &len);
	assert_int_equal(snap_stream_open_mem_read(data, len, &in), 0);
	assert_int_equal(to->sections[0].ops->load(to->sections[0].opaque, in, 1), 0);
	assert_true(snap_stream_at_eof(in));
	snap_stream_close(in);
	/* Truncated anywhere: refused, never half-applied garbage. */
	for (size_t cut = 0; cut < len; cut++) {
		assert_int_equal(snap_stream_open_mem_read(data, cut, &in), 0);
		assert_true(to->sections[0].ops->load(to->sections[0].opaque, in, 1) < 0);
		snap_stream_close(in);
	}
	snap_stream_close(out);
}

static void test_serial_state(void **state)
{
	struct irq_line irq = { 0 };
	struct snap_registry r1, r2;
	struct serial *a, *b;
	struct bus bus1, bus2;

	bus_init(&bus1, "pio");
	bus_init(&bus2, "pio");
	assert_int_equal(serial_create(&bus1, COM1, &irq, -1, &a), 0);
	assert_int_equal(serial_create(&bus2, COM1, &irq, -1, &b), 0);
	out8(&bus1, COM1 + 3, 0x83);
	out8(&bus1, COM1, 0x01);            /* divisor 115200 */
	out8(&bus1, COM1 + 3, 0x1b);        /* 8E1 */
	out8(&bus1, COM1 + 1, 0x01);
	out8(&bus1, COM1 + 4, 0x0b);
	out8(&bus1, COM1 + 7, 0x42);
	serial_receive(a, (const uint8_t *)"queued", 6);
	assert_int_equal(in8(&bus1, COM1), 'q');   /* head moves off 0 */
	snap_registry_init(&r1);
	snap_registry_init(&r2);
	assert_int_equal(serial_register_state(&r1, a, 0), 0);
	assert_int_equal(serial_register_state(&r2, b, 0), 0);
	roundtrip(&r1, &r2);
	assert_int_equal(in8(&bus2, COM1 + 3), 0x1b);
	assert_int_equal(in8(&bus2, COM1 + 1), 0x01);
	assert_int_equal(in8(&bus2, COM1 + 4), 0x0b);
	assert_int_equal(in8(&bus2, COM1 + 7), 0x42);
	assert_int_equal(in8(&bus2, COM1 + 2) & 0x0f, 0x04);  /* RX interrupt pending */
	for (const char *p = "ueued"; *p; p++)
		assert_int_equal(in8(&bus2, COM1), *p);
	assert_int_equal(in8(&bus2, COM1 + 5) & 1, 0);
	out8(&bus2, COM1 + 3, 0x9b);
	assert_int_equal(in8(&bus2, COM1), 0x01);           /* divisor latch */
	serial_destroy(a);
	serial_destroy(b);
}

static void test_i8042_state(void **state)
{
	struct snap_registry r1, r2;
	struct i8042 *a, *b;
	struct bus bus1, bus2;
	int resets = 0;

	bus_init(&bus1, "pio");
	bus_init(&bus2, "pio");
	assert_int_equal(i8042_create(&bus1, on_reset, &resets, &a), 0);
	assert_int_equal(i8042_create(&bus2, on_reset, &resets, &b), 0);
	out8(&bus1, 0x64, 0x60);
	out8(&bus1, 0x60, 0x25);
	out8(&bus1, 0x64, 0xd1);                 /* a command waiting for its data */
	snap_registry_init(&r1);
	snap_registry_init(&r2);
	assert_int_equal(i8042_register_state(&r1, a), 0);
	assert_int_equal(i8042_register_state(&r2, b), 0);
	roundtrip(&r1, &r2);
	out8(&bus2, 0x60, 0x00);                 /* completes the restored 0xd1: reset */
	assert_int_equal(resets, 1);
	out8(&bus2, 0x64, 0x20);
	assert_int_equal(in8(&bus2, 0x60), 0x25);
	i8042_destroy(a);
	i8042_destroy(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bus_ranges),
		cmocka_unit_test(test_serial_tx_rx),
		cmocka_unit_test(test_serial_interrupts),
		cmocka_unit_test(test_serial_loopback_and_fifo),
		cmocka_unit_test(test_i8042),
		cmocka_unit_test(test_serial_state),
		cmocka_unit_test(test_i8042_state),
	};

	log_set_level(LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
