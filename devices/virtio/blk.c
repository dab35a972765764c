/* virtio-blk on io_uring. Each request becomes one SQE (readv, writev,
 * fsync) whose iovecs point straight into guest RAM: no copies. Many
 * requests are in flight at once; completions arrive on the device thread
 * through an eventfd registered with the ring. Data the device reads into
 * guest RAM is marked dirty for checkpoints; the status byte and used ring
 * go through guest_mem_write. */
#include "devices/virtio/blk.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/worker.h"
#include "vmm/log.h"
#include "vmm/memory.h"
#include "snapshot/registry.h"
#include "snapshot/stream.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define BLK_QUEUE_MAX  256
#define BLK_SEG_MAX    126          /* data segments per request (config seg_max) */
#define BLK_MAX_IOV    (BLK_SEG_MAX + 2)
#define BLK_SECTOR     512ULL
#define BLK_ID_BYTES   20
#define BLK_WRITEBACK_MIN (128 * 1024)  /* writes from here up start writeback at once */

#define BLK_T_IN           0
#define BLK_T_OUT          1
#define BLK_T_FLUSH        4
#define BLK_T_GET_ID       8
#define BLK_T_DISCARD      11
#define BLK_T_WRITE_ZEROES 13

#define BLK_S_OK     0
#define BLK_S_IOERR  1
#define BLK_S_UNSUPP 2

#define BLK_F_SEG_MAX      2
#define BLK_F_RO           5
#define BLK_F_BLK_SIZE     6
#define BLK_F_FLUSH        9
#define BLK_F_DISCARD      13
#define BLK_F_WRITE_ZEROES 14

struct blk_req {
	struct blk_req *next_free;
	uint16_t head;
	uint32_t type;
	uint64_t status_gpa;
	uint32_t data_len;
	unsigned int niov;
	struct iovec iov[BLK_MAX_IOV];
	uint64_t gpa[BLK_MAX_IOV];
};

struct virtio_blk {
	struct virtio_mmio t;
	struct virtio_worker w;
	int fd;
	bool ro;
	uint64_t capacity;           /* sectors */
	char id[BLK_ID_BYTES];
	struct io_uring ring;
	bool ring_ok;
	int ring_efd;
	unsigned int inflight;
	bool io_error_logged;
	struct blk_req *free_reqs;
	struct blk_req reqs[BLK_QUEUE_MAX];
	struct virtq_chain chain;
	uint8_t config[60];
};

/* Copy len bytes at offset off of a chain's readable part into out. */
static bool blk_gather(const struct virtq_chain *c, uint64_t off, void *out, uint64_t len)
{
	uint8_t *o = out;

	for (unsigned int i = 0; i < c->nread && len; i++) {
		uint64_t blen = c->bufs[i].len;

		if (off >= blen) {
			off -= blen;
			continue;
		}
		uint64_t n = blen - off < len ? blen - off : len;

		memcpy(o, (uint8_t *)c->bufs[i].host + off, n);
		o += n;
		len -= n;
		off = 0;
	}
	return len == 0;
}

/* Add iovecs covering [off, off+len) of the readable or writable part. */
static int blk_slice(const struct virtq_chain *c, bool writable, uint64_t off, uint64_t len,
		     struct blk_req *r)
{
	unsigned int first = writable ? c->nread : 0, end = writable ? c->nbufs : c->nread;

	for (unsigned int i = first; i < end && len; i++) {
		uint64_t blen = c->bufs[i].len;

		if (off >= blen) {
			off -= blen;
			continue;
		}
		if (r->niov == BLK_MAX_IOV)
			return -E2BIG;
		uint64_t n = blen - off < len ? blen - off : len;

		r->iov[r->niov].iov_base = (uint8_t *)c->bufs[i].host + off;
		r->iov[r->niov].iov_len = n;
		r->gpa[r->niov++] = c->bufs[i].gpa + off;
		len -= n;
		off = 0;
	}
	return len ? -EINVAL : 0;
}

/* The guest-physical address of byte off of the writable part. */
static uint64_t blk_writable_gpa(const struct virtq_chain *c, uint64_t off)
{
	for (unsigned int i = c->nread; i < c->nbufs; i++) {
		if (off < c->bufs[i].len)
			return c->bufs[i].gpa + off;
		off -= c->bufs[i].len;
	}
	return 0;
}

static void blk_complete(struct virtio_blk *b, struct blk_req *r, uint8_t status,
			 uint32_t data_written)
{
	guest_mem_write(b->t.mem, r->status_gpa, &status, 1);
	virtq_push(&b->t.queues[0], r->head, data_written + 1);
	r->next_free = b->free_reqs;
	b->free_reqs = r;
}

static uint8_t blk_discard(struct virtio_blk *b, const struct virtq_chain *c, uint32_t type)
{
	struct { uint64_t sector; uint32_t num; uint32_t flags; } seg;
	int mode = type == BLK_T_DISCARD ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE :
					   FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;

	if (b->ro)
		return BLK_S_IOERR;
	/* One segment, as the config space says (max_*_seg = 1). */
	if (c->read_len != 16 + sizeof(seg) || !blk_gather(c, 16, &seg, sizeof(seg)))
		return BLK_S_UNSUPP;
	if (seg.sector > b->capacity || seg.num > b->capacity - seg.sector)
		return BLK_S_IOERR;
	if (fallocate(b->fd, mode, (off_t)(seg.sector * BLK_SECTOR),
		      (off_t)(seg.num * BLK_SECTOR)) == 0)
		return BLK_S_OK;
	/* Not every file system zeroes ranges; a punched hole reads as zeros too. */
	if (errno == EOPNOTSUPP && type == BLK_T_WRITE_ZEROES &&
	    fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(seg.sector * BLK_SECTOR), (off_t)(seg.num * BLK_SECTOR)) == 0)
		return BLK_S_OK;
	return BLK_S_IOERR;
}

/* Turn one chain into an SQE, or complete it at once. */
static void blk_start(struct virtio_blk *b, const struct virtq_chain *c)
{
	struct { uint32_t type; uint32_t reserved; uint64_t sector; } hdr;
	struct blk_req *r = b->free_reqs;
	struct io_uring_sqe *sqe;
	uint64_t len;

	if (c->read_len < sizeof(hdr) || c->write_len < 1 || !r) {
		virtio_mmio_fail(&b->t, r ? "block request without header or status byte" :
					    "more block requests in flight than the queue holds");
		return;
	}
	b->free_reqs = r->next_free;
	blk_gather(c, 0, &hdr, sizeof(hdr));
	r->head = c->head;
	r->type = hdr.type;
	r->niov = 0;
	r->data_len = 0;
	r->status_gpa = blk_writable_gpa(c, c->write_len - 1);

	switch (hdr.type) {
	case BLK_T_IN:
	case BLK_T_OUT:
		len = hdr.type == BLK_T_IN ? c->write_len - 1 : c->read_len - sizeof(hdr);
		if (hdr.type == BLK_T_OUT && b->ro) {
			blk_complete(b, r, BLK_S_IOERR, 0);
			return;
		}
		if (len % BLK_SECTOR || hdr.sector > b->capacity ||
		    len / BLK_SECTOR > b->capacity - hdr.sector ||
		    blk_slice(c, hdr.type == BLK_T_IN, hdr.type == BLK_T_IN ? 0 : sizeof(hdr), len,
			      r)) {
			blk_complete(b, r, BLK_S_IOERR, 0);
			return;
		}
		r->data_len = (uint32_t)len;
		sqe = io_uring_get_sqe(&b->ring);
		if (hdr.type == BLK_T_IN) {
			io_uring_prep_readv(sqe, b->fd, r->iov, r->niov, hdr.sector * BLK_SECTOR);
		} else {
			struct io_uring_sqe *wb;

			io_uring_prep_writev(sqe, b->fd, r->iov, r->niov, hdr.sector * BLK_SECTOR);
			/* Large writes (streaming): start writeback of what was just
			 * written (linked, so it runs after the write), so the guest's
			 * next FLUSH finds most of it on its way to the disk already.
			 * Small ones are left to the page cache to merge. */
			wb = len >= BLK_WRITEBACK_MIN ? io_uring_get_sqe(&b->ring) : NULL;
			if (wb) {
				sqe->flags |= IOSQE_IO_LINK;
				io_uring_prep_sync_file_range(wb, b->fd, (unsigned int)len,
							      hdr.sector * BLK_SECTOR,
							      SYNC_FILE_RANGE_WRITE);
				io_uring_sqe_set_data(wb, NULL);
			}
		}
		break;
	case BLK_T_FLUSH:
		sqe = io_uring_get_sqe(&b->ring);
		io_uring_prep_fsync(sqe, b->fd, 0);  /* on stable storage before completion */
		break;
	case BLK_T_GET_ID:
		len = c->write_len - 1 < BLK_ID_BYTES ? c->write_len - 1 : BLK_ID_BYTES;
		if (blk_slice(c, true, 0, len, r)) {
			blk_complete(b, r, BLK_S_IOERR, 0);
			return;
		}
		for (unsigned int i = 0, off = 0; i < r->niov; off += (unsigned int)r->iov[i++].iov_len)
			guest_mem_write(b->t.mem, r->gpa[i], b->id + off, r->iov[i].iov_len);
		blk_complete(b, r, BLK_S_OK, (uint32_t)len);
		return;
	case BLK_T_DISCARD:
	case BLK_T_WRITE_ZEROES:
		blk_complete(b, r, blk_discard(b, c, hdr.type), 0);
		return;
	default:
		blk_complete(b, r, BLK_S_UNSUPP, 0);
		return;
	}
	/* The ring has two entries per queue entry, so an SQE is always free. */
	io_uring_sqe_set_data(sqe, r);
	b->inflight++;
}

static void blk_finish(struct virtio_blk *b, struct io_uring_cqe *cqe, bool push);

/* Complete whatever the kernel has finished. Lock held. */
static void blk_reap(struct virtio_blk *b)
{
	struct io_uring_cqe *cqe;

	while (io_uring_peek_cqe(&b->ring, &cqe) == 0) {
		blk_finish(b, cqe, true);
		io_uring_cqe_seen(&b->ring, cqe);
	}
}

static void blk_queue_notify(void *dev, unsigned int q)
{
	struct virtio_blk *b = dev;
	struct virtq *vq = &b->t.queues[0];
	const char *why;
	int n;

	do {
		while ((n = virtq_pop(vq, &b->chain, &why)) > 0 && virtio_mmio_live(&b->t))
			blk_start(b, &b->chain);
		if (n < 0) {
			virtio_mmio_fail(&b->t, why);
			break;
		}
	} while (virtq_enable_notify(vq, true));
	if (io_uring_sq_ready(&b->ring))
		io_uring_submit(&b->ring);
	/* Reads served from the page cache complete inside the submit: hand
	 * them back now rather than after another trip through the eventfd. */
	blk_reap(b);
	virtio_mmio_used(&b->t, 0);
}

static void blk_finish(struct virtio_blk *b, struct io_uring_cqe *cqe, bool push)
{
	struct blk_req *r = io_uring_cqe_get_data(cqe);

	if (!r)
		return;   /* an early-writeback hint (see blk_start): nothing to report */
	bool ok = r->type == BLK_T_FLUSH ? cqe->res == 0 : cqe->res == (int)r->data_len;

	b->inflight--;
	if (!ok && !b->io_error_logged) {
		log_warn("%s: %s at data length %u: %s", b->t.name,
			 r->type == BLK_T_IN ? "read" : r->type == BLK_T_OUT ? "write" : "flush",
			 r->data_len, cqe->res < 0 ? strerror(-cqe->res) : "short transfer");
		b->io_error_logged = true;
	}
	if (ok && r->type == BLK_T_IN)
		for (unsigned int i = 0; i < r->niov; i++)
			guest_mem_mark_dirty(b->t.mem, r->gpa[i], r->iov[i].iov_len);
	if (push) {
		blk_complete(b, r, ok ? BLK_S_OK : BLK_S_IOERR, r->type == BLK_T_IN && ok ? r->data_len : 0);
	} else {
		r->next_free = b->free_reqs;
		b->free_reqs = r;
	}
}

static void blk_completions(void *opaque, int fd, uint32_t events)
{
	struct virtio_blk *b = opaque;
	uint64_t n;

	if (read(fd, &n, sizeof(n)) < 0)
		return;
	pthread_mutex_lock(&b->t.lock);
	blk_reap(b);
	virtio_mmio_used(&b->t, 0);
	pthread_mutex_unlock(&b->t.lock);
}

/* Device reset: wait for every request the kernel still owns, then forget
 * them. Called with the transport lock held. */
static void blk_reset(void *dev)
{
	struct virtio_blk *b = dev;
	struct io_uring_cqe *cqe;

	while (b->inflight && io_uring_wait_cqe(&b->ring, &cqe) == 0) {
		blk_finish(b, cqe, false);
		io_uring_cqe_seen(&b->ring, cqe);
	}
}

/* Checkpoint: complete every request the kernel still has. */
static void blk_quiesce(void *dev)
{
	struct virtio_blk *b = dev;
	struct io_uring_cqe *cqe;

	while (b->inflight && io_uring_wait_cqe(&b->ring, &cqe) == 0) {
		blk_finish(b, cqe, true);
		io_uring_cqe_seen(&b->ring, cqe);
	}
	virtio_mmio_used(&b->t, 0);
}

static void blk_config_read(void *dev, unsigned int off, void *data, unsigned int len)
{
	struct virtio_blk *b = dev;

	memcpy(data, b->config + off, len);
}

static void blk_build_config(struct virtio_blk *b)
{
	uint32_t seg_max = BLK_SEG_MAX, blk_size = BLK_SECTOR, one = 1;
	uint32_t max_sectors = 0x3fffff;

	memcpy(b->config + 0, &b->capacity, 8);
	memcpy(b->config + 12, &seg_max, 4);
	memcpy(b->config + 20, &blk_size, 4);
	memcpy(b->config + 36, &max_sectors, 4);    /* max_discard_sectors */
	memcpy(b->config + 40, &one, 4);            /* max_discard_seg */
	memcpy(b->config + 44, &one, 4);            /* discard_sector_alignment */
	memcpy(b->config + 48, &max_sectors, 4);    /* max_write_zeroes_sectors */
	memcpy(b->config + 52, &one, 4);            /* max_write_zeroes_seg */
}

/* Writable and read-only disks differ only in the features they offer. */
#define BLK_FEATURES_COMMON ((1ULL << BLK_F_SEG_MAX) | (1ULL << BLK_F_BLK_SIZE) | \
			     (1ULL << BLK_F_FLUSH) | (1ULL << VIRTIO_F_INDIRECT_DESC) | \
			     (1ULL << VIRTIO_F_EVENT_IDX))
#define BLK_OPS(extra_features) {					\
	.device_id = 2,							\
	.num_queues = 1,						\
	.queue_max = BLK_QUEUE_MAX,					\
	.features = BLK_FEATURES_COMMON | (extra_features),		\
	.config_size = 60,						\
	.config_read = blk_config_read,					\
	.reset = blk_reset,						\
	.queue_notify = blk_queue_notify,				\
	.quiesce = blk_quiesce,						\
}

static const struct virtio_dev_ops blk_ops_rw =
	BLK_OPS((1ULL << BLK_F_DISCARD) | (1ULL << BLK_F_WRITE_ZEROES));
static const struct virtio_dev_ops blk_ops_ro = BLK_OPS(1ULL << BLK_F_RO);

static int blk_open(struct virtio_blk *b, const char *path, bool ro)
{
	struct stat st;
	const char *base = strrchr(path, '/');
	int err;

	b->fd = open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (b->fd < 0) {
		err = -errno;
		log_err("--disk %s: %s", path, strerror(-err));
		return err;
	}
	if (fstat(b->fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
		log_err("--disk %s: not a regular file or block device", path);
		return -EINVAL;
	}
	if (S_ISBLK(st.st_mode)) {
		off_t end = lseek(b->fd, 0, SEEK_END);

		st.st_size = end < 0 ? 0 : end;
	}
	if (st.st_size % BLK_SECTOR)
		log_warn("--disk %s: size is not a multiple of 512; the last %lld bytes are unreachable",
			 path, (long long)(st.st_size % BLK_SECTOR));
	b->capacity = (uint64_t)st.st_size / BLK_SECTOR;
	b->ro = ro;
	/* The serial (GET_ID): the file's name, cut to 20 bytes, NUL-padded. */
	base = base ? base + 1 : path;
	memcpy(b->id, base, strnlen(base, sizeof(b->id)));
	return 0;
}

int virtio_blk_create(const struct virtio_env *env, const char *name, const char *path,
		      bool ro, struct virtio_blk **out)
{
	struct virtio_blk *b = calloc(1, sizeof(*b));
	int err;

	if (!b)
		return -ENOMEM;
	b->fd = b->ring_efd = b->w.stop_fd = -1;
	for (unsigned int i = 0; i < BLK_QUEUE_MAX; i++) {
		b->reqs[i].next_free = b->free_reqs;
		b->free_reqs = &b->reqs[i];
	}
	err = blk_open(b, path, ro);
	if (err)
		goto fail;
	blk_build_config(b);
	/* Two SQEs per write (the write and its writeback hint). */
	err = io_uring_queue_init(2 * BLK_QUEUE_MAX, &b->ring, 0);
	if (err) {
		log_err("%s: io_uring_queue_init: %s", name, strerror(-err));
		goto fail;
	}
	b->ring_ok = true;
	b->ring_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->ring_efd < 0 || io_uring_register_eventfd(&b->ring, b->ring_efd) < 0) {
		err = -errno;
		goto fail;
	}
	err = virtio_mmio_init(&b->t, ro ? &blk_ops_ro : &blk_ops_rw, b, name, env->mmio,
			       env->mem, env->base, &env->irq, env->vm_fd);
	if (!err)
		err = virtio_worker_init(&b->w, &b->t, name);
	if (!err)
		err = virtio_worker_watch(&b->w, b->ring_efd, EPOLLIN, blk_completions, b);
	if (!err)
		err = virtio_worker_start(&b->w);
	if (err)
		goto fail;
	*out = b;
	return 0;
fail:
	virtio_blk_destroy(b);
	return err;
}

void virtio_blk_destroy(struct virtio_blk *b)
{
	if (!b)
		return;
	virtio_worker_destroy(&b->w);
	if (b->ring_ok) {
		pthread_mutex_lock(&b->t.lock);
		blk_reset(b);
		pthread_mutex_unlock(&b->t.lock);
		io_uring_queue_exit(&b->ring);
	}
	virtio_mmio_destroy(&b->t);
	if (b->ring_efd >= 0)
		close(b->ring_efd);
	if (b->fd >= 0)
		close(b->fd);
	free(b);
}

/* State section "virtio-blk", version 1: capacity (sectors), read-only
 * flag, then the transport. The disk's contents are the disk's: a restore
 * must be given the same image (or a copy), which the capacity checks in
 * part. */
static int blk_save(void *opaque, struct snap_stream *s)
{
	struct virtio_blk *b = opaque;

	snap_put_le64(s, b->capacity);
	snap_put_u8(s, b->ro);
	return virtio_mmio_save(&b->t, s);
}

static int blk_load(void *opaque, struct snap_stream *s, uint32_t version)
{
	struct virtio_blk *b = opaque;
	uint64_t capacity = snap_get_le64(s);
	uint8_t ro = snap_get_u8(s);
	char err[256];
	int r;

	if (snap_stream_error(s))
		return snap_stream_error(s);
	if (capacity != b->capacity || ro != b->ro) {
		log_err("restore: %s: the snapshot's disk had %llu sectors%s; this one has %llu%s",
			b->t.name, (unsigned long long)capacity, ro ? " (read-only)" : "",
			(unsigned long long)b->capacity, b->ro ? " (read-only)" : "");
		return -EPROTO;
	}
	r = virtio_mmio_load(&b->t, s, err, sizeof(err));
	if (r == -EPROTO)
		log_err("restore: %s", err);
	return r;
}

static const struct snap_section_ops blk_state_ops = {
	.name = "virtio-blk", .version = 1, .min_version = 1, .save = blk_save, .load = blk_load,
};

int virtio_blk_register_state(struct snap_registry *reg, struct virtio_blk *b, uint32_t instance)
{
	return snap_registry_add(reg, &blk_state_ops, instance, b);
}

struct virtio_mmio *virtio_blk_transport(struct virtio_blk *b)
{
	return &b->t;
}
