/* Split virtqueues (virtio 1.x, section 2.7) over guest RAM: the device side.
 *
 * Everything a driver writes is untrusted: every descriptor address and
 * length is checked against guest RAM, chains are bounded (no loops, no
 * more than the queue size, indirect tables bounded and not nested), and a
 * readable descriptor after a writable one is refused. A broken queue makes
 * virtq_pop() return -EINVAL with a reason; the transport then sets
 * DEVICE_NEEDS_RESET. Nothing here ever touches host memory outside guest
 * RAM, and every write into guest RAM goes through the guest-memory API
 * (guest_mem_write / guest_mem_mark_dirty) so checkpoints see it.
 *
 * Not thread-safe: one thread (the device's) drives a queue at a time. */
#ifndef DEVICES_VIRTIO_QUEUE_H
#define DEVICES_VIRTIO_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

struct guest_mem;

#define VIRTQ_MAX_SIZE     1024   /* largest QueueNum vmm offers (QueueNumMax) */
#define VIRTQ_MAX_BUFS     1024   /* descriptors in one chain, indirect included */
/* Bound on each of the readable and writable byte totals of one chain: far
 * above any real request (virtio-blk segments, net frames), far below what
 * could overflow a u32 written count or a 32-bit iovec sum. */
#define VIRTQ_MAX_CHAIN_BYTES (256ULL << 20)

/* Descriptor flags and ring flags (virtio 1.x 2.7.5, 2.7.6, 2.7.8). */
#define VIRTQ_DESC_F_NEXT      1
#define VIRTQ_DESC_F_WRITE     2
#define VIRTQ_DESC_F_INDIRECT  4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY     1

struct virtq {
	struct guest_mem *mem;
	/* Set by the transport from the driver's registers. */
	uint16_t size;          /* QueueNum: a power of 2, 1..VIRTQ_MAX_SIZE */
	uint64_t desc_gpa;      /* 16-byte aligned */
	uint64_t avail_gpa;     /* 2-byte aligned */
	uint64_t used_gpa;      /* 4-byte aligned */
	bool event_idx;         /* VIRTIO_F_EVENT_IDX negotiated */
	bool ready;
	/* Device-side positions: the state a checkpoint saves. */
	uint16_t last_avail;    /* next avail ring entry to consume */
	uint16_t used_idx;      /* next used ring index to fill (published on push) */
	uint16_t signalled_used;  /* used_idx when the driver was last interrupted */
	bool signalled_valid;
};

/* One guest buffer of a chain: host points into guest RAM, len bytes. */
struct virtq_buf {
	uint64_t gpa;
	uint32_t len;
	bool write;             /* device-writable */
	void *host;
};

struct virtq_chain {
	uint16_t head;          /* id to give back to virtq_push() */
	unsigned int nbufs;
	unsigned int nread;     /* bufs[0..nread) readable, the rest writable */
	uint64_t read_len;      /* total bytes of the readable part */
	uint64_t write_len;     /* total bytes of the writable part */
	struct virtq_buf bufs[VIRTQ_MAX_BUFS];
};

/* Check the ring layout the driver gave (size, alignment, all three rings in
 * guest RAM) before the queue goes live. 0 or -EINVAL with *why. */
int virtq_check(const struct virtq *vq, const char **why);

/* Forget the positions (device reset or queue reset). */
void virtq_reset(struct virtq *vq);

/* Take the next available chain: 1 and *chain filled, 0 if none, or -EINVAL
 * with *why naming the driver's mistake (nothing is consumed then). */
int virtq_pop(struct virtq *vq, struct virtq_chain *chain, const char **why);

/* Give back the chain the last virtq_pop() returned, untouched, so the next
 * pop returns it again (e.g. net RX found no frame to put in it). */
void virtq_unpop(struct virtq *vq);

/* Return a chain: used ring entry {head, written}, then publish used->idx.
 * written = bytes the device wrote into the chain's writable buffers; the
 * caller has marked them dirty (or wrote them with guest_mem_write). */
int virtq_push(struct virtq *vq, uint16_t head, uint32_t written);

/* After one or more pushes: should the driver be interrupted? Honours
 * VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event with event_idx. Records
 * used_idx as the signalled position on every call (the event window is
 * "since the last call", as in QEMU and vhost). */
bool virtq_should_notify(struct virtq *vq);

/* Ask for (or suppress) driver notifications: sets VIRTQ_USED_F_NO_NOTIFY,
 * or with event_idx writes avail_event = last_avail. Returns true if more
 * chains became available meanwhile (the caller must look again). */
bool virtq_enable_notify(struct virtq *vq, bool enable);

/* True if the driver has made chains available that were not popped yet. */
bool virtq_has_work(const struct virtq *vq);

#endif
