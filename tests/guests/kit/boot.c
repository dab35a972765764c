/* Guest kit boot information: the Linux boot_params "zero page" vmm passes
 * in RSI (command line, e820 map); else (QEMU) what the 32-bit entry that
 * ran left in EBX: the PVH struct hvm_start_info (command line, memory map
 * from version 1) or the multiboot info (command line, mmap or mem_upper);
 * else defaults: empty command line, KIT_DEFAULT_RAM_MIB of RAM.
 * kit_boot_init runs once on the boot vCPU before any other vCPU leaves
 * kit_start, so the rest only reads. */
#include "kit_internal.h"

#define BP_EXT_CMD_LINE_PTR	0x0c8	/* u32, high half of cmd_line_ptr */
#define BP_E820_ENTRIES		0x1e8	/* u8 */
#define BP_CMD_LINE_PTR		0x228	/* u32 */
#define BP_E820_TABLE		0x2d0	/* 20-byte entries */
#define BP_E820_MAX		128
#define CMDLINE_MAX		4096	/* longest command line we read */

/* struct hvm_start_info (xen/arch-x86/hvm/start_info.h), 32-bit PVH entry. */
#define PVH_MAGIC		0x336ec578
#define PVH_VERSION		4	/* u32 */
#define PVH_CMDLINE_PADDR	24	/* u64 */
#define PVH_MEMMAP_PADDR	40	/* u64, version >= 1 */
#define PVH_MEMMAP_ENTRIES	48	/* u32, version >= 1 */
#define PVH_MEMMAP_ENTRY_SIZE	24	/* u64 addr, u64 size, u32 type, u32 pad */

/* Multiboot v1 information block (EAX = MB_BOOT_MAGIC at entry). */
#define MB_BOOT_MAGIC		0x2badb002
#define MB_FLAGS		0	/* u32 */
#define MB_MEM_LOWER		4	/* u32 KiB, flags bit 0 */
#define MB_MEM_UPPER		8	/* u32 KiB above 1 MiB, flags bit 0 */
#define MB_CMDLINE		16	/* u32 paddr, flags bit 2 */
#define MB_MMAP_LENGTH		44	/* u32 bytes, flags bit 6 */
#define MB_MMAP_ADDR		48	/* u32 paddr; entries: u32 size, u64 addr, u64 len, u32 type */
#define MB_FLAG_MEM		(1u << 0)
#define MB_FLAG_CMDLINE		(1u << 2)
#define MB_FLAG_MMAP		(1u << 6)

#define BOOT_MAP_MAX		64	/* memory map entries kept without boot_params */
#define BOOT_ADDR_LIMIT		0x100000000ull	/* what boot32.S identity-maps */

static const uint8_t *boot_params;
static const char *boot_cmdline = "";
static size_t boot_cmdline_len;
/* The memory map when there are no boot_params: PVH, multiboot or default. */
static struct kit_e820_entry boot_map[BOOT_MAP_MAX];
static unsigned int boot_map_count;

static void boot_set_cmdline(uint64_t ptr)
{
	if (!ptr || ptr >= BOOT_ADDR_LIMIT)
		return;
	boot_cmdline = (const char *)(uintptr_t)ptr;
	while (boot_cmdline_len < CMDLINE_MAX && boot_cmdline[boot_cmdline_len])
		boot_cmdline_len++;
}

static void boot_map_add(uint64_t addr, uint64_t size, uint32_t type)
{
	if (boot_map_count < BOOT_MAP_MAX)
		boot_map[boot_map_count++] = (struct kit_e820_entry){ addr, size, type };
}

static uint32_t boot_rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t boot_rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static void boot_init_pvh(const uint8_t *info)
{
	uint64_t memmap;
	uint32_t entries;

	if (boot_rd32(info) != PVH_MAGIC)
		return;
	boot_set_cmdline(boot_rd64(info + PVH_CMDLINE_PADDR));
	if (boot_rd32(info + PVH_VERSION) < 1)
		return;
	memmap = boot_rd64(info + PVH_MEMMAP_PADDR);
	entries = boot_rd32(info + PVH_MEMMAP_ENTRIES);
	if (!memmap || entries > BOOT_MAP_MAX ||
	    memmap + (uint64_t)entries * PVH_MEMMAP_ENTRY_SIZE > BOOT_ADDR_LIMIT)
		return;
	for (uint32_t i = 0; i < entries; i++) {
		const uint8_t *e = (const uint8_t *)(uintptr_t)memmap +
				   i * PVH_MEMMAP_ENTRY_SIZE;

		boot_map_add(boot_rd64(e), boot_rd64(e + 8), boot_rd32(e + 16));
	}
}

static void boot_init_multiboot(const uint8_t *info)
{
	uint32_t flags = boot_rd32(info + MB_FLAGS);

	if (flags & MB_FLAG_CMDLINE)
		boot_set_cmdline(boot_rd32(info + MB_CMDLINE));
	if (flags & MB_FLAG_MMAP) {
		uint64_t p = boot_rd32(info + MB_MMAP_ADDR);
		uint64_t end = p + boot_rd32(info + MB_MMAP_LENGTH);

		while (p + 24 <= end) {
			const uint8_t *e = (const uint8_t *)(uintptr_t)p;
			uint32_t size = boot_rd32(e);

			if (size < 20)
				break;
			boot_map_add(boot_rd64(e + 4), boot_rd64(e + 12), boot_rd32(e + 20));
			p += (uint64_t)size + 4;
		}
	}
	if (!boot_map_count && (flags & MB_FLAG_MEM)) {
		boot_map_add(0, (uint64_t)boot_rd32(info + MB_MEM_LOWER) << 10, KIT_E820_RAM);
		boot_map_add(0x100000, (uint64_t)boot_rd32(info + MB_MEM_UPPER) << 10,
			     KIT_E820_RAM);
	}
}

void kit_boot_init(const void *bp)
{
	uint32_t lo, hi;

	boot_params = bp;
	if (bp) {
		memcpy(&lo, boot_params + BP_CMD_LINE_PTR, 4);
		memcpy(&hi, boot_params + BP_EXT_CMD_LINE_PTR, 4);
		boot_set_cmdline((uint64_t)hi << 32 | lo);
		return;
	}
	/* QEMU: boot32.S saved which 32-bit entry ran and its EBX. */
	if (kit_boot32_info && kit_boot32_magic == PVH_MAGIC)
		boot_init_pvh((const uint8_t *)(uintptr_t)kit_boot32_info);
	else if (kit_boot32_info && kit_boot32_magic == MB_BOOT_MAGIC)
		boot_init_multiboot((const uint8_t *)(uintptr_t)kit_boot32_info);
	if (!boot_map_count) {
		boot_map_add(0, 0x9fc00, KIT_E820_RAM);
		boot_map_add(0x100000, ((uint64_t)KIT_DEFAULT_RAM_MIB << 20) - 0x100000,
			     KIT_E820_RAM);
	}
}

bool kit_have_boot_params(void)
{
	return boot_params != NULL;
}

const char *kit_cmdline(void)
{
	return boot_cmdline;
}

/* Find the last "name" or "name=value" token; the value goes to val and vlen. */
static bool boot_param_find(const char *name, const char **val, size_t *vlen)
{
	size_t nlen = strlen(name), i = 0;
	const char *s = boot_cmdline;
	bool found = false;

	while (i < boot_cmdline_len) {
		size_t start, end;

		while (i < boot_cmdline_len && s[i] == ' ')
			i++;
		start = i;
		while (i < boot_cmdline_len && s[i] != ' ')
			i++;
		end = i;
		if (end - start < nlen || strncmp(s + start, name, nlen))
			continue;
		if (end - start == nlen) {
			*val = s + end;
			*vlen = 0;
			found = true;
		} else if (s[start + nlen] == '=') {
			*val = s + start + nlen + 1;
			*vlen = end - start - nlen - 1;
			found = true;
		}
	}
	return found;
}

const char *kit_param_str(const char *name, const char *def, char *buf, size_t size)
{
	const char *val;
	size_t len;

	if (!boot_param_find(name, &val, &len))
		return def;
	if (!size)
		return buf;
	if (len >= size)
		len = size - 1;
	memcpy(buf, val, len);
	buf[len] = '\0';
	return buf;
}

uint64_t kit_param_u64(const char *name, uint64_t def)
{
	const char *val;
	size_t len, i = 0;
	unsigned int base = 10;
	uint64_t n = 0;

	if (!boot_param_find(name, &val, &len))
		return def;
	if (!len)
		return 1;
	if (len > 2 && val[0] == '0' && (val[1] == 'x' || val[1] == 'X')) {
		base = 16;
		i = 2;
	}
	for (; i < len; i++) {
		char c = val[i];
		unsigned int d;

		if (!kit_digit(c, base, &d))
			break;
		if (n > (UINT64_MAX - d) / base)
			kit_panic("kit: parameter %s=%.*s overflows", name,
				  (int)len, val);
		n = n * base + d;
	}
	if (i + 1 == len && i > 0) {
		switch (val[i]) {
		case 'k': case 'K': n <<= 10; i++; break;
		case 'm': case 'M': n <<= 20; i++; break;
		case 'g': case 'G': n <<= 30; i++; break;
		}
	}
	if (i != len || (base == 16 && len == 2))
		kit_panic("kit: parameter %s=%.*s is not a number", name,
			  (int)len, val);
	return n;
}

unsigned int kit_e820_count(void)
{
	if (!boot_params)
		return boot_map_count;
	return boot_params[BP_E820_ENTRIES] <= BP_E820_MAX ?
	       boot_params[BP_E820_ENTRIES] : BP_E820_MAX;
}

bool kit_e820_get(unsigned int i, struct kit_e820_entry *out)
{
	const uint8_t *e;

	if (i >= kit_e820_count())
		return false;
	if (!boot_params) {
		*out = boot_map[i];
		return true;
	}
	e = boot_params + BP_E820_TABLE + 20 * i;
	memcpy(&out->addr, e, 8);
	memcpy(&out->size, e + 8, 8);
	memcpy(&out->type, e + 16, 4);
	return true;
}

bool kit_ram_contains(uint64_t addr, uint64_t len)
{
	struct kit_e820_entry e;

	if (addr + len < addr)
		return false;
	for (unsigned int i = 0; kit_e820_get(i, &e); i++) {
		if (e.type == KIT_E820_RAM && addr >= e.addr &&
		    addr + len <= e.addr + e.size)
			return true;
	}
	return false;
}

uint64_t kit_ram_mib(void)
{
	struct kit_e820_entry e;
	uint64_t bytes = 1 << 20;

	for (unsigned int i = 0; kit_e820_get(i, &e); i++) {
		uint64_t start = e.addr, end = e.addr + e.size;

		if (e.type != KIT_E820_RAM || end <= (1 << 20))
			continue;
		if (start < (1 << 20))
			start = 1 << 20;
		bytes += end - start;
	}
	return (bytes + (1 << 19)) >> 20;
}
