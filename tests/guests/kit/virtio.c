/* Guest kit virtio-mmio transport: DMA memory, device discovery from the
 * command line, the version-2 init sequence, and split virtqueues driven
 * by polling. Everything runs in ring 3; register accesses are plain
 * 32-bit MMIO (each one a VM exit). */
#include "kit_internal.h"
#include "virtio.h"

/* virtio-mmio registers (virtio 1.x, 4.2.2). */
#define VMMIO_MAGIC		0x000
#define VMMIO_VERSION		0x004
#define VMMIO_DEVICE_ID		0x008
#define VMMIO_VENDOR_ID		0x00c
#define VMMIO_DEV_FEATURES	0x010
#define VMMIO_DEV_FEATURES_SEL	0x014
#define VMMIO_DRV_FEATURES	0x020
#define VMMIO_DRV_FEATURES_SEL	0x024
#define VMMIO_QUEUE_SEL		0x030
#define VMMIO_QUEUE_NUM_MAX	0x034
#define VMMIO_QUEUE_NUM		0x038
#define VMMIO_QUEUE_READY	0x044
#define VMMIO_QUEUE_NOTIFY	0x050
#define VMMIO_STATUS		0x070
#define VMMIO_QUEUE_DESC	0x080	/* low, high at +4 */
#define VMMIO_QUEUE_DRIVER	0x090
#define VMMIO_QUEUE_DEVICE	0x0a0
#define VMMIO_CONFIG_GEN	0x0fc
#define VMMIO_CONFIG		0x100

#define VMMIO_MAGIC_VALUE	0x74726976	/* "virt" */
#define VMMIO_MIN_SIZE		0x200

#define VRING_DESC_F_NEXT	1
#define VRING_DESC_F_WRITE	2
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY	1

#define VIRTIO_RESET_TRIES	1000000
#define VIRTIO_PARAM		"virtio_mmio.device="

/* ---------------------------------------------------------------- DMA --- */

static uint32_t dma_lock;
static uint64_t dma_next;		/* 0 until the first allocation */

void *kit_dma_alloc(size_t size, size_t align)
{
	uint64_t addr;
	void *p = NULL;

	if (!align)
		align = 16;
	kit_spin_lock(&dma_lock);
	if (!dma_next)
		dma_next = ((uint64_t)(uintptr_t)_end + 4095) & ~4095ull;
	addr = (dma_next + align - 1) & ~((uint64_t)align - 1);
	if (size && kit_ram_contains(addr, size)) {
		dma_next = addr + size;
		p = (void *)(uintptr_t)addr;
	}
	kit_spin_unlock(&dma_lock);
	if (p)
		memset(p, 0, size);
	return p;
}

uint64_t kit_dma_end(void)
{
	return __atomic_load_n(&dma_next, __ATOMIC_RELAXED);
}

/* ----------------------------------------------------------- registers --- */

static inline uint32_t vmmio_rd(const struct kit_virtio_dev *dev, uint32_t off)
{
	return *(volatile uint32_t *)(uintptr_t)(dev->base + off);
}

static inline void vmmio_wr(const struct kit_virtio_dev *dev, uint32_t off, uint32_t val)
{
	*(volatile uint32_t *)(uintptr_t)(dev->base + off) = val;
}

static void vmmio_wr64(const struct kit_virtio_dev *dev, uint32_t off, uint64_t val)
{
	vmmio_wr(dev, off, (uint32_t)val);
	vmmio_wr(dev, off + 4, (uint32_t)(val >> 32));
}

uint32_t kit_virtio_status(const struct kit_virtio_dev *dev)
{
	return vmmio_rd(dev, VMMIO_STATUS);
}

bool kit_virtio_needs_reset(const struct kit_virtio_dev *dev)
{
	return (kit_virtio_status(dev) & KIT_VIRTIO_S_NEEDS_RESET) != 0;
}

uint8_t kit_virtio_cfg8(const struct kit_virtio_dev *dev, uint32_t off)
{
	return *(volatile uint8_t *)(uintptr_t)(dev->base + VMMIO_CONFIG + off);
}

uint16_t kit_virtio_cfg16(const struct kit_virtio_dev *dev, uint32_t off)
{
	return *(volatile uint16_t *)(uintptr_t)(dev->base + VMMIO_CONFIG + off);
}

uint32_t kit_virtio_cfg32(const struct kit_virtio_dev *dev, uint32_t off)
{
	return vmmio_rd(dev, VMMIO_CONFIG + off);
}

/* Two 32-bit reads (the spec's width for 64-bit fields), retried while the
 * device changes its config underneath. */
uint64_t kit_virtio_cfg64(const struct kit_virtio_dev *dev, uint32_t off)
{
	uint32_t gen, lo, hi;

	do {
		gen = vmmio_rd(dev, VMMIO_CONFIG_GEN);
		lo = vmmio_rd(dev, VMMIO_CONFIG + off);
		hi = vmmio_rd(dev, VMMIO_CONFIG + off + 4);
	} while (gen != vmmio_rd(dev, VMMIO_CONFIG_GEN));
	return (uint64_t)hi << 32 | lo;
}

const char *kit_virtio_type_name(uint32_t device_id)
{
	switch (device_id) {
	case KIT_VIRTIO_ID_NET: return "net";
	case KIT_VIRTIO_ID_BLK: return "blk";
	case KIT_VIRTIO_ID_RNG: return "rng";
	default: return "unknown";
	}
}

/* ----------------------------------------------------------- discovery --- */

/* Number at s[*i..end): 0x hex or decimal, an optional K/M/G suffix when
 * `suffix`. False if there are no digits or it overflows. */
static bool virtio_parse_num(const char *s, size_t *i, size_t end, bool suffix,
			     uint64_t *out)
{
	unsigned int base = 10, digits = 0;
	uint64_t n = 0;

	if (*i + 2 < end && s[*i] == '0' && (s[*i + 1] == 'x' || s[*i + 1] == 'X')) {
		base = 16;
		*i += 2;
	}
	for (; *i < end; (*i)++, digits++) {
		char c = s[*i];
		unsigned int d;

		if (!kit_digit(c, base, &d))
			break;
		if (n > (UINT64_MAX - d) / base)
			return false;
		n = n * base + d;
	}
	if (!digits)
		return false;
	if (suffix && *i < end) {
		unsigned int shift = 0;

		switch (s[*i]) {
		case 'k': case 'K': shift = 10; break;
		case 'm': case 'M': shift = 20; break;
		case 'g': case 'G': shift = 30; break;
		}
		if (shift) {
			if (n >> (64 - shift))
				return false;
			n <<= shift;
			(*i)++;
		}
	}
	*out = n;
	return true;
}

/* "<size>@<base>[:<irq>[:<id>]]" in s[0..len). */
static bool virtio_parse_token(const char *s, size_t len, struct kit_virtio_dev *dev)
{
	uint64_t size, base, irq = 0, id;
	size_t i = 0;

	if (!virtio_parse_num(s, &i, len, true, &size) || i >= len || s[i++] != '@' ||
	    !virtio_parse_num(s, &i, len, false, &base))
		return false;
	if (i < len && s[i] == ':') {
		i++;
		if (!virtio_parse_num(s, &i, len, false, &irq) || irq > UINT32_MAX)
			return false;
		if (i < len && s[i] == ':') {
			i++;
			if (!virtio_parse_num(s, &i, len, false, &id))
				return false;
		}
	}
	if (i != len)
		return false;
	*dev = (struct kit_virtio_dev){ .base = base, .size = size, .irq = (uint32_t)irq };
	return true;
}

/* Check the transport registers of a parsed token; true if it is a usable
 * version-2 transport with a device behind it (DeviceID 0: no device, not
 * an error; anything else unusable counts in *bad). */
static bool virtio_probe(struct kit_virtio_dev *dev, const char *tok, size_t len,
			 unsigned int *bad)
{
	uint32_t magic, version;

	(*bad)++;	/* until proven usable */

	if (dev->size < VMMIO_MIN_SIZE || dev->base & 3 ||
	    dev->base + dev->size > 0x100000000ull || dev->base + dev->size < dev->base ||
	    kit_ram_contains(dev->base, 1)) {
		kit_printf("virtio: %.*s: window not usable, skipped\n", (int)len, tok);
		return false;
	}
	magic = vmmio_rd(dev, VMMIO_MAGIC);
	if (magic != VMMIO_MAGIC_VALUE) {
		kit_printf("virtio: %.*s: bad magic 0x%x, skipped\n", (int)len, tok, magic);
		return false;
	}
	version = vmmio_rd(dev, VMMIO_VERSION);
	if (version != 2) {
		kit_printf("virtio: %.*s: version %u (only 2 is supported), skipped\n",
			   (int)len, tok, version);
		return false;
	}
	(*bad)--;
	dev->device_id = vmmio_rd(dev, VMMIO_DEVICE_ID);
	dev->vendor_id = vmmio_rd(dev, VMMIO_VENDOR_ID);
	return dev->device_id != 0;
}

unsigned int kit_virtio_discover(struct kit_virtio_dev *devs, unsigned int max,
				 unsigned int *skipped)
{
	const char *s = kit_cmdline();
	size_t plen = strlen(VIRTIO_PARAM), i = 0, n = strlen(s);
	unsigned int count = 0, bad = 0;

	while (i < n) {
		size_t start, end;
		struct kit_virtio_dev dev;

		while (i < n && s[i] == ' ')
			i++;
		start = i;
		while (i < n && s[i] != ' ')
			i++;
		end = i;
		if (end - start <= plen || strncmp(s + start, VIRTIO_PARAM, plen))
			continue;
		start += plen;
		if (!virtio_parse_token(s + start, end - start, &dev)) {
			kit_printf("virtio: cannot parse " VIRTIO_PARAM "%.*s, skipped\n",
				   (int)(end - start), s + start);
			bad++;
			continue;
		}
		if (!virtio_probe(&dev, s + start, end - start, &bad))
			continue;
		if (count == max) {
			kit_printf("virtio: more than %u devices, ignoring the rest\n", max);
			bad++;
			break;
		}
		devs[count++] = dev;
	}
	if (skipped)
		*skipped = bad;
	return count;
}

/* ----------------------------------------------------------- transport --- */

void kit_virtio_reset(struct kit_virtio_dev *dev)
{
	vmmio_wr(dev, VMMIO_STATUS, 0);
}

int kit_virtio_init(struct kit_virtio_dev *dev, uint64_t wanted)
{
	unsigned int tries = 0;
	uint64_t offered;

	kit_virtio_reset(dev);
	while (vmmio_rd(dev, VMMIO_STATUS) != 0) {
		if (++tries == VIRTIO_RESET_TRIES)
			return -KIT_EIO;
		kit_cpu_relax();
	}
	vmmio_wr(dev, VMMIO_STATUS, KIT_VIRTIO_S_ACKNOWLEDGE);
	vmmio_wr(dev, VMMIO_STATUS, KIT_VIRTIO_S_ACKNOWLEDGE | KIT_VIRTIO_S_DRIVER);
	vmmio_wr(dev, VMMIO_DEV_FEATURES_SEL, 0);
	offered = vmmio_rd(dev, VMMIO_DEV_FEATURES);
	vmmio_wr(dev, VMMIO_DEV_FEATURES_SEL, 1);
	offered |= (uint64_t)vmmio_rd(dev, VMMIO_DEV_FEATURES) << 32;
	dev->device_features = offered;
	dev->features = offered & (wanted | 1ull << KIT_VIRTIO_F_VERSION_1);
	if (!(dev->features & 1ull << KIT_VIRTIO_F_VERSION_1))
		goto failed;
	vmmio_wr(dev, VMMIO_DRV_FEATURES_SEL, 0);
	vmmio_wr(dev, VMMIO_DRV_FEATURES, (uint32_t)dev->features);
	vmmio_wr(dev, VMMIO_DRV_FEATURES_SEL, 1);
	vmmio_wr(dev, VMMIO_DRV_FEATURES, (uint32_t)(dev->features >> 32));
	vmmio_wr(dev, VMMIO_STATUS, KIT_VIRTIO_S_ACKNOWLEDGE | KIT_VIRTIO_S_DRIVER |
		 KIT_VIRTIO_S_FEATURES_OK);
	if (!(vmmio_rd(dev, VMMIO_STATUS) & KIT_VIRTIO_S_FEATURES_OK))
		goto failed;
	return 0;
failed:
	vmmio_wr(dev, VMMIO_STATUS, vmmio_rd(dev, VMMIO_STATUS) | KIT_VIRTIO_S_FAILED);
	return -KIT_ENOTSUP;
}

void kit_virtio_driver_ok(struct kit_virtio_dev *dev)
{
	vmmio_wr(dev, VMMIO_STATUS, KIT_VIRTIO_S_ACKNOWLEDGE | KIT_VIRTIO_S_DRIVER |
		 KIT_VIRTIO_S_FEATURES_OK | KIT_VIRTIO_S_DRIVER_OK);
}

/* ------------------------------------------------------------ virtqueue --- */

int kit_virtq_init(struct kit_virtq *vq, struct kit_virtio_dev *dev,
		   unsigned int index, unsigned int max_size)
{
	unsigned int num_max, size = 1;

	vmmio_wr(dev, VMMIO_QUEUE_SEL, index);
	if (vmmio_rd(dev, VMMIO_QUEUE_READY))
		return -KIT_EIO;	/* reset did not clear it */
	num_max = vmmio_rd(dev, VMMIO_QUEUE_NUM_MAX);
	if (!num_max)
		return -KIT_ENODEV;
	if (num_max > 32768)
		num_max = 32768;
	while (size * 2 <= num_max && size * 2 <= max_size)
		size *= 2;

	*vq = (struct kit_virtq){ .dev = dev, .index = (uint16_t)index,
				  .size = (uint16_t)size, .num_free = (uint16_t)size };
	vq->desc = kit_dma_alloc(16 * size, 4096);
	vq->avail = kit_dma_alloc(6 + 2 * size, 4096);
	vq->used = kit_dma_alloc(6 + 8 * size, 4096);
	vq->token = kit_dma_alloc(8 * size, 8);
	vq->chain = kit_dma_alloc(2 * size, 8);
	if (!vq->desc || !vq->avail || !vq->used || !vq->token || !vq->chain)
		return -KIT_ENOMEM;
	for (unsigned int i = 0; i < size; i++)
		vq->desc[i].next = (uint16_t)(i + 1);
	vq->avail[0] = VRING_AVAIL_F_NO_INTERRUPT;	/* we poll */

	vmmio_wr(dev, VMMIO_QUEUE_NUM, size);
	vmmio_wr64(dev, VMMIO_QUEUE_DESC, (uintptr_t)vq->desc);
	vmmio_wr64(dev, VMMIO_QUEUE_DRIVER, (uintptr_t)vq->avail);
	vmmio_wr64(dev, VMMIO_QUEUE_DEVICE, (uintptr_t)vq->used);
	vmmio_wr(dev, VMMIO_QUEUE_READY, 1);
	return 0;
}

int kit_virtq_add(struct kit_virtq *vq, const struct kit_vbuf *bufs,
		  unsigned int n_out, unsigned int n_in, uint64_t token)
{
	unsigned int n = n_out + n_in;
	uint16_t head = vq->free_head, d = head;

	if (!n)
		return -KIT_EINVAL;
	if (n > vq->num_free)
		return -KIT_ENOSPC;
	for (unsigned int i = 0; i < n; i++) {
		struct kit_vring_desc *desc = &vq->desc[d];

		desc->addr = (uintptr_t)bufs[i].addr;
		desc->len = bufs[i].len;
		desc->flags = (i >= n_out ? VRING_DESC_F_WRITE : 0) |
			      (i + 1 < n ? VRING_DESC_F_NEXT : 0);
		d = desc->next;		/* the free list is linked through next */
	}
	vq->free_head = d;
	vq->num_free -= n;
	vq->token[head] = token;
	vq->chain[head] = (uint16_t)n;
	vq->avail[2 + (vq->avail_idx & (vq->size - 1))] = head;
	vq->avail_idx++;
	vq->pending++;
	return 0;
}

void kit_virtq_kick(struct kit_virtq *vq)
{
	if (!vq->pending)
		return;
	vq->pending = 0;
	/* Descriptors and ring entries before the index (release), and the
	 * index before we read the device's NO_NOTIFY flag (full fence). */
	__atomic_store_n(&vq->avail[1], vq->avail_idx, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&vq->used[0], __ATOMIC_RELAXED) & VRING_USED_F_NO_NOTIFY)
		return;
	vmmio_wr(vq->dev, VMMIO_QUEUE_NOTIFY, vq->index);
}

int kit_virtq_get(struct kit_virtq *vq, uint64_t *token, uint32_t *len)
{
	const struct kit_vring_used_elem *ring =
		(const struct kit_vring_used_elem *)(vq->used + 2);
	struct kit_vring_used_elem e;
	uint16_t d, n;

	if (__atomic_load_n(&vq->used[1], __ATOMIC_ACQUIRE) == vq->last_used)
		return 0;
	e = ring[vq->last_used & (vq->size - 1)];
	vq->last_used++;
	if (e.id >= vq->size || !vq->chain[e.id])
		return -KIT_EIO;	/* not a head we gave it: skip the entry */
	n = vq->chain[e.id];
	vq->chain[e.id] = 0;
	/* Return the chain to the free list: its descriptors are still linked
	 * through next, so splice the whole chain in front. */
	d = (uint16_t)e.id;
	for (uint16_t i = 1; i < n; i++)
		d = vq->desc[d].next;
	vq->desc[d].next = vq->free_head;
	vq->free_head = (uint16_t)e.id;
	vq->num_free += n;
	*token = vq->token[e.id];
	*len = e.len;
	return 1;
}
