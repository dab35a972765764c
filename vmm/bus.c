#include "vmm/bus.h"
#include "vmm/log.h"

#include <errno.h>
#include <string.h>

void bus_init(struct bus *bus, const char *name)
{
	memset(bus, 0, sizeof(*bus));
	bus->name = name;
}

int bus_register(struct bus *bus, uint64_t base, uint64_t len,
		 const struct bus_dev_ops *ops, void *opaque, const char *name)
{
	unsigned int i;

	if (len == 0 || base + len < base)
		return -EINVAL;
	if (bus->nranges == BUS_MAX_RANGES)
		return -ENOSPC;
	for (i = 0; i < bus->nranges; i++) {
		const struct bus_range *r = &bus->ranges[i];

		if (base < r->base + r->len && r->base < base + len) {
			log_err("%s bus: %s at 0x%llx overlaps %s", bus->name, name,
				(unsigned long long)base, r->name);
			return -EEXIST;
		}
	}
	for (i = bus->nranges; i > 0 && bus->ranges[i - 1].base > base; i--)
		bus->ranges[i] = bus->ranges[i - 1];
	bus->ranges[i] = (struct bus_range){ base, len, ops, opaque, name };
	bus->nranges++;
	return 0;
}

static const struct bus_range *bus_find(const struct bus *bus, uint64_t addr)
{
	unsigned int lo = 0, hi = bus->nranges;

	while (lo < hi) {
		unsigned int mid = (lo + hi) / 2;
		const struct bus_range *r = &bus->ranges[mid];

		if (addr < r->base)
			hi = mid;
		else if (addr - r->base >= r->len)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

bool bus_access(struct bus *bus, uint64_t addr, void *data, unsigned int len, bool is_write)
{
	const struct bus_range *r = bus_find(bus, addr);

	if (!r || len > r->len - (addr - r->base)) {
		if (!is_write)
			memset(data, 0xff, len);
		/* Guests probe for absent hardware all the time: count, don't log. */
		__atomic_add_fetch(&bus->unhandled, 1, __ATOMIC_RELAXED);
		return false;
	}
	if (is_write) {
		if (r->ops->write)
			r->ops->write(r->opaque, addr - r->base, data, len);
	} else if (r->ops->read) {
		r->ops->read(r->opaque, addr - r->base, data, len);
	} else {
		memset(data, 0xff, len);
	}
	return true;
}
