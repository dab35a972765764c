/* The PC keyboard controller, reduced to what guests use: its self-test,
 * command byte, and the reset line (command 0xFE) that ends vmm. */
#ifndef DEVICES_I8042_H
#define DEVICES_I8042_H

struct bus;
struct i8042;
struct snap_registry;

int i8042_create(struct bus *pio, void (*reset)(void *opaque), void *opaque,
		 struct i8042 **out);
void i8042_destroy(struct i8042 *k);

/* Register the controller's state section ("i8042") for checkpoints. */
int i8042_register_state(struct snap_registry *reg, struct i8042 *k);

#endif
