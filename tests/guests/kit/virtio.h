/* Guest kit virtio: polling drivers for virtio-mmio version 2 ("modern")
 * devices, run from ring 3 (an MMIO access exits to the VMM like any other).
 *
 * Devices come from the command line: every
 *   virtio_mmio.device=<size>@<base>[:<irq>[:<id>]]
 * token (Linux syntax; vmm and QEMU microvm with acpi=off write them). The
 * kit never takes interrupts: every driver polls its used rings (and asks
 * the device not to interrupt). Rings and buffers live in guest RAM, which
 * is identity-mapped, so a pointer is its guest-physical address.
 *
 * Layers: transport and virtqueue (virtio.c), then one small driver per
 * device type: blk (virtio_blk.c), net (virtio_net.c), rng (virtio_rng.c).
 * Single-threaded: one vCPU drives a given device. */
#ifndef KIT_VIRTIO_H
#define KIT_VIRTIO_H

#include "kit.h"

#define KIT_VIRTIO_MAX_DEVS	32

#define KIT_VIRTIO_ID_NET	1
#define KIT_VIRTIO_ID_BLK	2
#define KIT_VIRTIO_ID_RNG	4

/* Feature bits (virtio 1.x). */
#define KIT_VIRTIO_F_VERSION_1	32
#define KIT_VIRTIO_BLK_F_SIZE_MAX	1
#define KIT_VIRTIO_BLK_F_SEG_MAX	2
#define KIT_VIRTIO_BLK_F_RO		5
#define KIT_VIRTIO_BLK_F_FLUSH		9
#define KIT_VIRTIO_BLK_F_DISCARD	13
#define KIT_VIRTIO_BLK_F_WRITE_ZEROES	14
#define KIT_VIRTIO_NET_F_MAC		5

/* Device status bits. */
#define KIT_VIRTIO_S_ACKNOWLEDGE	0x01
#define KIT_VIRTIO_S_DRIVER		0x02
#define KIT_VIRTIO_S_DRIVER_OK		0x04
#define KIT_VIRTIO_S_FEATURES_OK	0x08
#define KIT_VIRTIO_S_NEEDS_RESET	0x40
#define KIT_VIRTIO_S_FAILED		0x80

struct kit_virtio_dev {
	uint64_t base;			/* MMIO window */
	uint64_t size;
	uint32_t irq;			/* from the command line; unused */
	uint32_t device_id;		/* KIT_VIRTIO_ID_* */
	uint32_t vendor_id;
	uint64_t device_features;	/* offered; valid after kit_virtio_init */
	uint64_t features;		/* negotiated */
};

/* --- DMA memory: a bump allocator over the RAM right after _end ---------
 * Zeroed, never freed, vCPU safe. A guest that uses virtio must not use
 * [page_align(_end), kit_dma_end()) itself. NULL when RAM runs out. */
void *kit_dma_alloc(size_t size, size_t align);
uint64_t kit_dma_end(void);

/* --- Discovery ------------------------------------------------------------
 * Parse every virtio_mmio.device= token (size: decimal or 0x hex with an
 * optional K/M/G suffix; base: 0x hex or decimal; optional ":irq" and
 * ":id"), check MagicValue and Version 2 and read DeviceID. Transports
 * without a device (DeviceID 0) are skipped silently; a malformed token, a
 * bad magic or a legacy (version 1) transport prints one "virtio: ..." line
 * and is skipped, counted in *skipped (may be NULL). Returns the number of
 * devices stored in devs. */
unsigned int kit_virtio_discover(struct kit_virtio_dev *devs, unsigned int max,
				 unsigned int *skipped);
const char *kit_virtio_type_name(uint32_t device_id);	/* "blk", "net", ... */

/* --- Transport -------------------------------------------------------------
 * kit_virtio_init: reset, ACKNOWLEDGE, DRIVER, read the offered features,
 * accept VIRTIO_F_VERSION_1 plus (offered & wanted), FEATURES_OK and check
 * it stuck. Then set up the queues (kit_virtq_init) and call
 * kit_virtio_driver_ok. Errors: -KIT_ENOTSUP (no VERSION_1 or FEATURES_OK
 * refused), -KIT_EIO (reset never completed); the device is left FAILED. */
int kit_virtio_init(struct kit_virtio_dev *dev, uint64_t wanted);
void kit_virtio_driver_ok(struct kit_virtio_dev *dev);
void kit_virtio_reset(struct kit_virtio_dev *dev);
uint32_t kit_virtio_status(const struct kit_virtio_dev *dev);
bool kit_virtio_needs_reset(const struct kit_virtio_dev *dev);
static inline bool kit_virtio_has(const struct kit_virtio_dev *dev, unsigned int bit)
{
	return (dev->features >> bit) & 1;
}
/* Device-specific configuration (offset from 0x100), with the access width
 * the spec requires; cfg64 rereads until ConfigGeneration is stable. */
uint8_t kit_virtio_cfg8(const struct kit_virtio_dev *dev, uint32_t off);
uint16_t kit_virtio_cfg16(const struct kit_virtio_dev *dev, uint32_t off);
uint32_t kit_virtio_cfg32(const struct kit_virtio_dev *dev, uint32_t off);
uint64_t kit_virtio_cfg64(const struct kit_virtio_dev *dev, uint32_t off);

/* --- Split virtqueue --------------------------------------------------- */
struct kit_vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
struct kit_vring_used_elem {
	uint32_t id;
	uint32_t len;
};

struct kit_virtq {
	struct kit_virtio_dev *dev;
	uint16_t index;
	uint16_t size;			/* power of two */
	struct kit_vring_desc *desc;
	uint16_t *avail;		/* flags, idx, ring[size] */
	uint16_t *used;			/* flags, idx, then used elems */
	uint64_t *token;		/* per head descriptor */
	uint16_t *chain;		/* descriptors in the chain, per head; 0 = free */
	uint16_t free_head;
	uint16_t num_free;
	uint16_t avail_idx;		/* next avail slot (published on kick) */
	uint16_t last_used;
	uint16_t pending;		/* added since the last kick */
};

struct kit_vbuf {
	const void *addr;
	uint32_t len;
};

/* Set up queue `index` with min(QueueNumMax, max_size) entries (a power of
 * two) before kit_virtio_driver_ok. -KIT_ENODEV if the queue does not
 * exist, -KIT_ENOMEM without DMA memory. */
int kit_virtq_init(struct kit_virtq *vq, struct kit_virtio_dev *dev,
		   unsigned int index, unsigned int max_size);
/* Queue one chain: n_out device-readable buffers, then n_in device-writable
 * ones. Not visible to the device before kit_virtq_kick. -KIT_ENOSPC if
 * fewer than n_out + n_in descriptors are free. */
int kit_virtq_add(struct kit_virtq *vq, const struct kit_vbuf *bufs,
		  unsigned int n_out, unsigned int n_in, uint64_t token);
/* Publish the added chains and notify (unless the device said not to). */
void kit_virtq_kick(struct kit_virtq *vq);
/* One completed chain: 1 with its token and the length the device wrote,
 * 0 if none, -KIT_EIO if the device returned an id that is not in flight. */
int kit_virtq_get(struct kit_virtq *vq, uint64_t *token, uint32_t *len);
static inline unsigned int kit_virtq_free(const struct kit_virtq *vq)
{
	return vq->num_free;
}

/* --- virtio-blk (virtio_blk.c) ------------------------------------------- */
#define KIT_VBLK_T_IN		0
#define KIT_VBLK_T_OUT		1
#define KIT_VBLK_T_FLUSH	4
#define KIT_VBLK_T_GET_ID	8
#define KIT_VBLK_T_DISCARD	11
#define KIT_VBLK_T_WRITE_ZEROES	13
#define KIT_VBLK_S_OK		0
#define KIT_VBLK_S_IOERR	1
#define KIT_VBLK_S_UNSUPP	2
#define KIT_VBLK_ID_BYTES	20
#define KIT_VBLK_SECTOR		512

struct kit_vblk_slot;

struct kit_vblk {
	struct kit_virtio_dev *dev;
	struct kit_virtq vq;
	uint64_t capacity;		/* 512-byte sectors */
	bool ro, flush, discard, write_zeroes;
	uint32_t size_max;		/* bytes per data descriptor, 0 = any */
	uint32_t seg_max;		/* data descriptors per request */
	uint32_t max_write_zeroes;	/* sectors per request, 0 = unknown */
	struct kit_vblk_slot *slots;	/* one per request in flight */
	uint16_t *free_slots;
	unsigned int nslots, nfree;
};

/* Negotiate (RO, FLUSH, DISCARD, WRITE_ZEROES, SIZE_MAX, SEG_MAX), read
 * the config, set up the request queue (at most queue_max entries; 0 =
 * 256), DRIVER_OK. */
int kit_vblk_init(struct kit_vblk *blk, struct kit_virtio_dev *dev,
		  unsigned int queue_max);
/* Queue a request; nothing reaches the device before kit_vblk_kick, so a
 * batch costs one notify. IN/OUT/GET_ID transfer buf[0..len) (len a
 * multiple of 512 for IN/OUT; buf physically contiguous, i.e. any kit
 * memory); DISCARD/WRITE_ZEROES cover len bytes from sector (buf unused);
 * FLUSH ignores sector, buf and len. -KIT_ENOSPC when the queue is full
 * (poll for completions first), -KIT_EINVAL for a malformed request. */
int kit_vblk_submit(struct kit_vblk *blk, uint32_t type, uint64_t sector,
		    void *buf, uint32_t len, uint64_t token);
void kit_vblk_kick(struct kit_vblk *blk);
/* One completed request: 1 with its token and status byte, 0 if none,
 * <0 on a device protocol error. */
int kit_vblk_poll(struct kit_vblk *blk, uint64_t *token, uint8_t *status);
/* Submit, kick, wait: returns the status byte (>= 0), -KIT_ETIMEDOUT, or
 * another error. Only with no other request in flight. */
int kit_vblk_sync(struct kit_vblk *blk, uint32_t type, uint64_t sector,
		  void *buf, uint32_t len, uint64_t timeout_ns);
static inline unsigned int kit_vblk_inflight(const struct kit_vblk *blk)
{
	return blk->nslots - blk->nfree;
}

/* --- virtio-net (virtio_net.c) ------------------------------------------- */
#define KIT_VNET_HDR		12	/* struct virtio_net_hdr, VERSION_1 */
#define KIT_VNET_FRAME_MAX	1514	/* Ethernet frame without FCS */
#define KIT_VNET_BUF		(KIT_VNET_HDR + KIT_VNET_FRAME_MAX)

struct kit_vnet {
	struct kit_virtio_dev *dev;
	struct kit_virtq rx, tx;	/* queues 0 and 1 */
	uint8_t mac[6];
	bool has_mac;			/* VIRTIO_NET_F_MAC (else a made-up one) */
	uint8_t *rx_bufs, *tx_bufs;	/* one KIT_VNET_BUF slot per entry */
	uint16_t *tx_free;
	unsigned int tx_nfree;
};

/* Negotiate MAC, set up both queues, post every RX buffer, DRIVER_OK. */
int kit_vnet_init(struct kit_vnet *net, struct kit_virtio_dev *dev);
/* Copy one frame (14..1514 bytes) behind a zero header and send it.
 * -KIT_ENOSPC if every TX slot is still in flight. */
int kit_vnet_send(struct kit_vnet *net, const void *frame, uint32_t len);
/* Take one received frame into buf (truncated to size) and repost its
 * buffer: the frame length, 0 if none, -KIT_EIO if the device returned a
 * length without a frame (or a descriptor it did not have). */
int kit_vnet_recv(struct kit_vnet *net, void *buf, uint32_t size);

/* --- virtio-rng (virtio_rng.c) ------------------------------------------- */
struct kit_vrng {
	struct kit_virtio_dev *dev;
	struct kit_virtq vq;
	uint8_t *buf;			/* KIT_VRNG_CHUNK bytes */
};
#define KIT_VRNG_CHUNK		4096

int kit_vrng_init(struct kit_vrng *rng, struct kit_virtio_dev *dev);
/* Fill buf with len device bytes: the count read, or <0 on an error. Less
 * than len means the device did not answer within timeout_ns; its buffer
 * is then still posted and rng must not be used again. */
long kit_vrng_read(struct kit_vrng *rng, void *buf, size_t len, uint64_t timeout_ns);

#endif
