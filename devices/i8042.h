/* The PC keyboard controller, reduced to what guests use: its self-test,
 * command byte, and the reset line (command 0xFE) that ends vmm. */
#ifndef DEVICES_I8042_H
#define DEVICES_I8042_H

struct bus;
struct i8042;

int i8042_create(struct bus *pio, void (*reset)(void *opaque), void *opaque,
		 struct i8042 **out);
void i8042_destroy(struct i8042 *k);

#endif
