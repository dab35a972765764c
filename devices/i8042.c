#include "devices/i8042.h"
#include "vmm/bus.h"
#include "snapshot/registry.h"
#include "snapshot/stream.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT  0x64

#define STATUS_OBF  0x01   /* output buffer full: data waits at port 0x60 */
#define STATUS_SYS  0x04   /* system flag: self-test passed */
#define STATUS_CMD  0x08   /* last write was a command */

#define CMD_READ_CTR    0x20
#define CMD_WRITE_CTR   0x60
#define CMD_SELF_TEST   0xaa
#define CMD_IF_TEST     0xab
#define CMD_WRITE_OUT   0xd1
#define CMD_RESET       0xfe

struct i8042 {
	pthread_mutex_t lock;
	void (*reset)(void *opaque);
	void *opaque;
	uint8_t status;
	uint8_t ctr;        /* controller configuration byte */
	uint8_t out;        /* byte waiting at the data port */
	uint8_t pending;    /* command awaiting its data byte, or 0 */
};

static void i8042_output(struct i8042 *k, uint8_t v)
{
	k->out = v;
	k->status |= STATUS_OBF;
}

/* Returns true if the guest asked for a reset. */
static bool i8042_command(struct i8042 *k, uint8_t cmd)
{
	k->status |= STATUS_CMD;
	switch (cmd) {
	case CMD_READ_CTR:
		i8042_output(k, k->ctr);
		break;
	case CMD_WRITE_CTR:
	case CMD_WRITE_OUT:
		k->pending = cmd;
		break;
	case CMD_SELF_TEST:
		k->status |= STATUS_SYS;
		i8042_output(k, 0x55);
		break;
	case CMD_IF_TEST:
		i8042_output(k, 0x00);
		break;
	case CMD_RESET:
		return true;
	default:
		break;  /* enable/disable ports and the rest: accepted, no effect */
	}
	return false;
}

/* Returns true if the guest asked for a reset. */
static bool i8042_data(struct i8042 *k, uint8_t v)
{
	uint8_t cmd = k->pending;

	k->status &= (uint8_t)~STATUS_CMD;
	k->pending = 0;
	if (cmd == CMD_WRITE_CTR)
		k->ctr = v;
	else if (cmd == CMD_WRITE_OUT)
		return !(v & 1);  /* output port bit 0 low = system reset */
	return false;
}

static void i8042_access(struct i8042 *k, bool is_cmd_port, bool is_write, uint8_t *v)
{
	bool reset = false;

	pthread_mutex_lock(&k->lock);
	if (is_write) {
		reset = is_cmd_port ? i8042_command(k, *v) : i8042_data(k, *v);
	} else if (is_cmd_port) {
		*v = k->status;
	} else {
		*v = k->out;
		k->status &= (uint8_t)~STATUS_OBF;
	}
	pthread_mutex_unlock(&k->lock);
	if (reset)
		k->reset(k->opaque);
}

static void i8042_data_read(void *opaque, uint64_t offset, void *data, unsigned int len)
{
	memset(data, 0, len);
	i8042_access(opaque, false, false, data);
}

static void i8042_data_write(void *opaque, uint64_t offset, const void *data, unsigned int len)
{
	uint8_t v = *(const uint8_t *)data;

	i8042_access(opaque, false, true, &v);
}

static void i8042_cmd_read(void *opaque, uint64_t offset, void *data, unsigned int len)
{
	memset(data, 0, len);
	i8042_access(opaque, true, false, data);
}

static void i8042_cmd_write(void *opaque, uint64_t offset, const void *data, unsigned int len)
{
	uint8_t v = *(const uint8_t *)data;

	i8042_access(opaque, true, true, &v);
}

static const struct bus_dev_ops i8042_data_ops = {
	.read = i8042_data_read,
	.write = i8042_data_write,
};

static const struct bus_dev_ops i8042_cmd_ops = {
	.read = i8042_cmd_read,
	.write = i8042_cmd_write,
};

int i8042_create(struct bus *pio, void (*reset)(void *opaque), void *opaque,
		 struct i8042 **out)
{
	struct i8042 *k = calloc(1, sizeof(*k));
	int err;

	if (!k)
		return -ENOMEM;
	pthread_mutex_init(&k->lock, NULL);
	k->reset = reset;
	k->opaque = opaque;
	k->status = STATUS_SYS;
	k->ctr = 0x47;  /* keyboard interrupt, system flag, translation */
	/* The data and command ports are 4 apart: two ranges, one device. */
	err = bus_register(pio, I8042_DATA_PORT, 1, &i8042_data_ops, k, "i8042 data");
	if (!err)
		err = bus_register(pio, I8042_CMD_PORT, 1, &i8042_cmd_ops, k, "i8042 command");
	if (err) {
		i8042_destroy(k);
		return err;
	}
	*out = k;
	return 0;
}

void i8042_destroy(struct i8042 *k)
{
	if (!k)
		return;
	pthread_mutex_destroy(&k->lock);
	free(k);
}

/* State section "i8042", version 1: status, command byte, output byte,
 * pending command. */
static int i8042_save(void *opaque, struct snap_stream *st)
{
	struct i8042 *k = opaque;
	uint8_t v[4];

	pthread_mutex_lock(&k->lock);
	v[0] = k->status;
	v[1] = k->ctr;
	v[2] = k->out;
	v[3] = k->pending;
	pthread_mutex_unlock(&k->lock);
	snap_put_bytes(st, v, sizeof(v));
	return 0;
}

static int i8042_load(void *opaque, struct snap_stream *st, uint32_t version)
{
	struct i8042 *k = opaque;
	uint8_t v[4];

	snap_get_bytes(st, v, sizeof(v));
	if (snap_stream_error(st))
		return snap_stream_error(st);
	if (v[3] != 0 && v[3] != CMD_WRITE_CTR && v[3] != CMD_WRITE_OUT)
		return -EPROTO;
	pthread_mutex_lock(&k->lock);
	k->status = v[0];
	k->ctr = v[1];
	k->out = v[2];
	k->pending = v[3];
	pthread_mutex_unlock(&k->lock);
	return 0;
}

static const struct snap_section_ops i8042_state_ops = {
	.name = "i8042", .version = 1, .min_version = 1,
	.save = i8042_save, .load = i8042_load,
};

int i8042_register_state(struct snap_registry *reg, struct i8042 *k)
{
	return snap_registry_add(reg, &i8042_state_ops, 0, k);
}
