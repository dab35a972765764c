/* Guest kit boot information: the Linux boot_params "zero page" vmm passes
 * in RSI (command line, e820 map), or defaults when booted without one
 * (QEMU PVH/multiboot: empty command line, KIT_DEFAULT_RAM_MIB of RAM).
 * kit_boot_init runs once on the boot vCPU before any other vCPU leaves
 * kit_start, so the rest only reads. */
#include "kit_internal.h"

#define BP_EXT_CMD_LINE_PTR	0x0c8	/* u32, high half of cmd_line_ptr */
#define BP_E820_ENTRIES		0x1e8	/* u8 */
#define BP_CMD_LINE_PTR		0x228	/* u32 */
#define BP_E820_TABLE		0x2d0	/* 20-byte entries */
#define BP_E820_MAX		128
#define CMDLINE_MAX		4096	/* longest command line we read */

static const uint8_t *boot_params;
static const char *boot_cmdline = "";
static size_t boot_cmdline_len;
static struct kit_e820_entry boot_default_e820[2];

void kit_boot_init(const void *bp)
{
	uint32_t lo, hi;
	uint64_t ptr;

	boot_params = bp;
	if (!bp) {
		boot_default_e820[0] = (struct kit_e820_entry){
			0, 0x9fc00, KIT_E820_RAM };
		boot_default_e820[1] = (struct kit_e820_entry){
			0x100000, ((uint64_t)KIT_DEFAULT_RAM_MIB << 20) - 0x100000,
			KIT_E820_RAM };
		return;
	}
	memcpy(&lo, boot_params + BP_CMD_LINE_PTR, 4);
	memcpy(&hi, boot_params + BP_EXT_CMD_LINE_PTR, 4);
	ptr = (uint64_t)hi << 32 | lo;
	if (ptr) {
		boot_cmdline = (const char *)(uintptr_t)ptr;
		while (boot_cmdline_len < CMDLINE_MAX &&
		       boot_cmdline[boot_cmdline_len])
			boot_cmdline_len++;
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

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (base == 16 && c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
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
		return 2;
	return boot_params[BP_E820_ENTRIES] <= BP_E820_MAX ?
	       boot_params[BP_E820_ENTRIES] : BP_E820_MAX;
}

bool kit_e820_get(unsigned int i, struct kit_e820_entry *out)
{
	const uint8_t *e;

	if (i >= kit_e820_count())
		return false;
	if (!boot_params) {
		*out = boot_default_e820[i];
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
