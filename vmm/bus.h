/* One dispatcher for port I/O and MMIO: a device claims [base, base+len) with
 * a static ops table. Ranges are registered before the vCPUs start and never
 * change afterwards, so lookups from vCPU threads take no lock; each device
 * serialises its own state. */
#ifndef VMM_BUS_H
#define VMM_BUS_H

#include <stdbool.h>
#include <stdint.h>

struct bus_dev_ops {
	void (*read)(void *opaque, uint64_t offset, void *data, unsigned int len);
	void (*write)(void *opaque, uint64_t offset, const void *data, unsigned int len);
};

struct bus_range {
	uint64_t base;
	uint64_t len;
	const struct bus_dev_ops *ops;
	void *opaque;
	const char *name;
};

#define BUS_MAX_RANGES 64

struct bus {
	const char *name;               /* "pio" or "mmio", for messages */
	unsigned int nranges;
	struct bus_range ranges[BUS_MAX_RANGES];  /* sorted by base */
	uint64_t unhandled;             /* accesses nobody claimed */
};

void bus_init(struct bus *bus, const char *name);
/* -EEXIST if the range overlaps another, -ENOSPC if the bus is full. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len,
		 const struct bus_dev_ops *ops, void *opaque, const char *name);
/* Dispatch one access; false if no device claims it (reads then return all ones). */
bool bus_access(struct bus *bus, uint64_t addr, void *data, unsigned int len, bool is_write);

#endif
