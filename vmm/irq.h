/* An interrupt line a device can drive, without knowing how the VM delivers it. */
#ifndef VMM_IRQ_H
#define VMM_IRQ_H

#include <stdbool.h>

struct irq_line {
	void (*set)(void *opaque, unsigned int gsi, bool level);
	void *opaque;
	unsigned int gsi;
};

static inline void irq_line_set(const struct irq_line *line, bool level)
{
	if (line->set)
		line->set(line->opaque, line->gsi, level);
}

#endif
