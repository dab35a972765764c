/* The ELF loader, the zero page with e820 and command line, page tables and
 * the boot GDT, checked against real guest memory (a memfd). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vmm/boot/boot.h"
#include "vmm/layout.h"
#include "vmm/log.h"
#include "vmm/memory.h"

#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIB (1ULL << 20)

struct elf_image {
	Elf64_Ehdr eh;
	Elf64_Phdr ph[3];
	uint8_t data[2][256];
};

/* An executable with two PT_LOAD segments: 256 bytes of text at 1 MiB and
 * 16 bytes of data plus 4 KiB of bss at 2 MiB. */
static void elf_image_init(struct elf_image *img)
{
	memset(img, 0, sizeof(*img));
	memcpy(img->eh.e_ident, ELFMAG, SELFMAG);
	img->eh.e_ident[EI_CLASS] = ELFCLASS64;
	img->eh.e_ident[EI_DATA] = ELFDATA2LSB;
	img->eh.e_ident[EI_VERSION] = EV_CURRENT;
	img->eh.e_type = ET_EXEC;
	img->eh.e_machine = EM_X86_64;
	img->eh.e_version = EV_CURRENT;
	img->eh.e_entry = 0x100010;
	img->eh.e_phoff = offsetof(struct elf_image, ph);
	img->eh.e_ehsize = sizeof(Elf64_Ehdr);
	img->eh.e_phentsize = sizeof(Elf64_Phdr);
	img->eh.e_phnum = 3;
	img->ph[0] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = offsetof(struct elf_image, data[0]),
				   .p_paddr = 0x100000, .p_vaddr = 0x100000,
				   .p_filesz = 256, .p_memsz = 256 };
	img->ph[1] = (Elf64_Phdr){ .p_type = PT_NOTE };
	img->ph[2] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = offsetof(struct elf_image, data[1]),
				   .p_paddr = 0x200000, .p_vaddr = 0x200000,
				   .p_filesz = 16, .p_memsz = 16 + 4096 };
	for (int i = 0; i < 256; i++) {
		img->data[0][i] = (uint8_t)i;
		img->data[1][i] = (uint8_t)(0xa0 + i);
	}
}

static char *write_file(const void *buf, size_t len)
{
	char *path = strdup("/tmp/vmm-test-boot-XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
	return path;
}

static int load_image(const void *buf, size_t len, uint64_t mem_size, const char *cmdline,
		      struct guest_mem *mem, struct boot_info *info)
{
	char *path = write_file(buf, len);
	int err;

	assert_int_equal(guest_mem_create(mem, mem_size), 0);
	err = boot_load_kernel(mem, path, cmdline, info);
	unlink(path);
	free(path);
	return err;
}

static void test_elf_loads_segments(void **state)
{
	struct elf_image img;
	struct guest_mem mem;
	struct boot_info info;
	const uint8_t *p;

	elf_image_init(&img);
	assert_int_equal(load_image(&img, sizeof(img), 8 * MIB, "console=ttyS0", &mem, &info), 0);
	assert_string_equal(info.format, "elf");
	assert_int_equal(info.entry, 0x100010);
	assert_int_equal(info.zero_page, LAYOUT_ZERO_PAGE);
	assert_true(info.start_all_vcpus);
	p = guest_mem_ptr(&mem, 0x100000, 256);
	assert_memory_equal(p, img.data[0], 256);
	p = guest_mem_ptr(&mem, 0x200000, 16 + 4096);
	assert_memory_equal(p, img.data[1], 16);
	for (int i = 16; i < 16 + 4096; i++)
		assert_int_equal(p[i], 0);   /* bss */
	guest_mem_destroy(&mem);
}

static void expect_load_error(struct elf_image *img, size_t len, uint64_t mem_size, int want)
{
	struct guest_mem mem;
	struct boot_info info;

	assert_int_equal(load_image(img, len, mem_size, "", &mem, &info), want);
	guest_mem_destroy(&mem);
}

static void test_elf_errors(void **state)
{
	struct elf_image img;

	elf_image_init(&img);
	img.eh.e_ident[EI_CLASS] = ELFCLASS32;
	expect_load_error(&img, sizeof(img), 8 * MIB, -ENOEXEC);

	elf_image_init(&img);
	img.eh.e_machine = EM_AARCH64;
	expect_load_error(&img, sizeof(img), 8 * MIB, -ENOEXEC);

	elf_image_init(&img);
	img.eh.e_type = ET_DYN;
	expect_load_error(&img, sizeof(img), 8 * MIB, -ENOEXEC);

	elf_image_init(&img);
	img.eh.e_phnum = 1000;
	expect_load_error(&img, sizeof(img), 8 * MIB, -ENOEXEC);

	/* Too little RAM for the segment at 2 MiB. */
	elf_image_init(&img);
	expect_load_error(&img, sizeof(img), 2 * MIB, -ENOMEM);

	/* A segment over vmm's page tables. */
	elf_image_init(&img);
	img.ph[0].p_paddr = 0x9000;
	expect_load_error(&img, sizeof(img), 8 * MIB, -ENOEXEC);

	/* Truncated: segment data past the end of the file. */
	elf_image_init(&img);
	expect_load_error(&img, offsetof(struct elf_image, data[1]) + 8, 8 * MIB, -ENOEXEC);

	/* Truncated inside the ELF header. */
	elf_image_init(&img);
	expect_load_error(&img, 20, 8 * MIB, -ENOEXEC);

	/* filesz > memsz */
	elf_image_init(&img);
	img.ph[2].p_filesz = img.ph[2].p_memsz + 1;
	expect_load_error(&img, sizeof(img), 8 * MIB, -ENOEXEC);

	/* No loadable segment. */
	elf_image_init(&img);
	img.ph[0].p_type = PT_NULL;
	img.ph[2].p_type = PT_NULL;
	expect_load_error(&img, sizeof(img), 8 * MIB, -ENOEXEC);

	/* Entry outside RAM. */
	elf_image_init(&img);
	img.eh.e_entry = 0x40000000;
	expect_load_error(&img, sizeof(img), 8 * MIB, -ENOEXEC);
}

static void test_not_elf(void **state)
{
	uint8_t junk[4096];
	struct guest_mem mem;
	struct boot_info info;

	memset(junk, 0x5a, sizeof(junk));
	assert_int_equal(load_image(junk, sizeof(junk), 8 * MIB, "", &mem, &info), -ENOEXEC);
	guest_mem_destroy(&mem);
	/* A bzImage header is recognised (and refused, for now). */
	memcpy(junk + 0x202, "HdrS", 4);
	assert_int_equal(load_image(junk, sizeof(junk), 8 * MIB, "", &mem, &info), -ENOEXEC);
	guest_mem_destroy(&mem);
	assert_int_equal(load_image(junk, 0, 8 * MIB, "", &mem, &info), -ENOEXEC);
	guest_mem_destroy(&mem);
}

static void test_missing_kernel(void **state)
{
	struct guest_mem mem;
	struct boot_info info;

	assert_int_equal(guest_mem_create(&mem, 8 * MIB), 0);
	assert_int_equal(boot_load_kernel(&mem, "/nonexistent/kernel", "", &info), -ENOENT);
	assert_int_equal(boot_load_kernel(&mem, "/tmp", "", &info), -EINVAL);
	guest_mem_destroy(&mem);
}

/* Read the zero page by the boot protocol's byte offsets, not by struct. */
static uint32_t rd32(const uint8_t *p, size_t off)
{
	uint32_t v;

	memcpy(&v, p + off, 4);
	return v;
}

static uint64_t rd64(const uint8_t *p, size_t off)
{
	uint64_t v;

	memcpy(&v, p + off, 8);
	return v;
}

static void test_zero_page(void **state)
{
	struct elf_image img;
	struct guest_mem mem;
	struct boot_info info;
	const uint8_t *zp;
	const char *cmdline = "hello.wait=1 mem.mib=64";

	elf_image_init(&img);
	assert_int_equal(load_image(&img, sizeof(img), 64 * MIB, cmdline, &mem, &info), 0);
	zp = guest_mem_ptr(&mem, LAYOUT_ZERO_PAGE, 4096);
	assert_int_equal(zp[0x1fe] | zp[0x1ff] << 8, 0xaa55);          /* boot_flag */
	assert_int_equal(rd32(zp, 0x202), 0x53726448);                  /* "HdrS" */
	assert_int_equal(rd32(zp, 0x228), LAYOUT_CMDLINE);              /* cmd_line_ptr */
	assert_int_equal(rd32(zp, 0x238), LAYOUT_CMDLINE_MAX - 1);      /* cmdline_size */
	assert_string_equal((const char *)guest_mem_ptr(&mem, rd32(zp, 0x228), 1), cmdline);
	assert_int_equal(zp[0x1e8], 3);                                 /* e820_entries */
	assert_int_equal(rd64(zp, 0x2d0 + 0 * 20), 0);
	assert_int_equal(rd64(zp, 0x2d0 + 0 * 20 + 8), LAYOUT_LOW_RAM_END);
	assert_int_equal(rd32(zp, 0x2d0 + 0 * 20 + 16), BOOT_E820_RAM);
	assert_int_equal(rd32(zp, 0x2d0 + 1 * 20 + 16), BOOT_E820_RESERVED);
	assert_int_equal(rd64(zp, 0x2d0 + 2 * 20), LAYOUT_HIGH_RAM);
	assert_int_equal(rd64(zp, 0x2d0 + 2 * 20 + 8), 64 * MIB - LAYOUT_HIGH_RAM);
	assert_int_equal(rd32(zp, 0x2d0 + 2 * 20 + 16), BOOT_E820_RAM);
	guest_mem_destroy(&mem);
}

static void test_cmdline_too_long(void **state)
{
	struct elf_image img;
	struct guest_mem mem;
	struct boot_info info;
	char *cmdline = malloc(LAYOUT_CMDLINE_MAX + 1);

	memset(cmdline, 'a', LAYOUT_CMDLINE_MAX);
	cmdline[LAYOUT_CMDLINE_MAX] = '\0';
	elf_image_init(&img);
	assert_int_equal(load_image(&img, sizeof(img), 8 * MIB, cmdline, &mem, &info), -E2BIG);
	guest_mem_destroy(&mem);
	cmdline[LAYOUT_CMDLINE_MAX - 1] = '\0';   /* 4095 bytes: the limit */
	assert_int_equal(load_image(&img, sizeof(img), 8 * MIB, cmdline, &mem, &info), 0);
	guest_mem_destroy(&mem);
	free(cmdline);
}

static void test_e820_above_4g(void **state)
{
	struct guest_mem mem = { .memfd = -1 };
	struct boot_e820 e[BOOT_E820_MAX];
	unsigned int n;

	guest_mem_layout(&mem, 5ULL << 30);
	n = boot_build_e820(&mem, e, BOOT_E820_MAX);
	assert_int_equal(n, 4);
	assert_int_equal(e[2].addr + e[2].size, LAYOUT_MMIO_START);
	assert_int_equal(e[3].addr, LAYOUT_4G);
	assert_int_equal(e[3].size, (5ULL << 30) - LAYOUT_MMIO_START);
	assert_int_equal(guest_mem_top(&mem), LAYOUT_4G + e[3].size);
	/* RAM totals what was asked for, hole excluded. */
	assert_int_equal(e[0].size + e[2].size + e[3].size + (LAYOUT_HIGH_RAM - LAYOUT_LOW_RAM_END),
			 5ULL << 30);
}

/* Walk the guest's page tables for a virtual address, checking U/S and P. */
static uint64_t walk(const struct guest_mem *mem, uint64_t va)
{
	const uint64_t *pml4 = guest_mem_ptr(mem, LAYOUT_PML4, 4096);
	uint64_t e = pml4[(va >> 39) & 511];
	const uint64_t *t;

	assert_int_equal(e & 0x7, 0x7);
	t = guest_mem_ptr(mem, e & ~0xfffULL, 4096);
	e = t[(va >> 30) & 511];
	assert_int_equal(e & 0x7, 0x7);
	t = guest_mem_ptr(mem, e & ~0xfffULL, 4096);
	e = t[(va >> 21) & 511];
	assert_int_equal(e & 0x87, 0x87);  /* present, writable, user, 2 MiB */
	return (e & ~0x1fffffULL & 0x000fffffffffffffULL) | (va & 0x1fffff);
}

static void test_page_tables(void **state)
{
	struct guest_mem mem;
	const uint64_t probes[] = { 0, 0x7000, 0x100000, 0x3fffffff, 0x40000000,
				    LAYOUT_VIRTIO_BASE, LAYOUT_IOAPIC, 0xffffffff };

	assert_int_equal(guest_mem_create(&mem, 8 * MIB), 0);
	assert_int_equal(boot_write_page_tables(&mem), 0);
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++)
		assert_int_equal(walk(&mem, probes[i]), probes[i]);
	assert_int_equal(boot_map_top(&mem), LAYOUT_4G);
	guest_mem_destroy(&mem);

	/* RAM above 4 GiB is mapped too. */
	assert_int_equal(guest_mem_create(&mem, 6ULL << 30), 0);
	assert_int_equal(boot_write_page_tables(&mem), 0);
	assert_int_equal(boot_map_top(&mem), 7ULL << 30);  /* 3 GiB low + 3 GiB from 4 GiB */
	assert_int_equal(walk(&mem, (6ULL << 30) + 0x1234), (6ULL << 30) + 0x1234);
	guest_mem_destroy(&mem);
}

static void test_gdt(void **state)
{
	struct guest_mem mem;
	const uint64_t *gdt;

	assert_int_equal(guest_mem_create(&mem, 4 * MIB), 0);
	assert_int_equal(boot_write_gdt(&mem), 0);
	gdt = guest_mem_ptr(&mem, LAYOUT_GDT, 32);
	/* Code at 0x10: present, DPL 0, code, L=1 (long mode), D=0. */
	assert_true(gdt[LAYOUT_BOOT_CS / 8] & (1ULL << 47));
	assert_true(gdt[LAYOUT_BOOT_CS / 8] & (1ULL << 53));
	assert_false(gdt[LAYOUT_BOOT_CS / 8] & (1ULL << 54));
	assert_true(gdt[LAYOUT_BOOT_CS / 8] & (1ULL << 43));
	/* Data at 0x18: present, writable data. */
	assert_true(gdt[LAYOUT_BOOT_DS / 8] & (1ULL << 47));
	assert_false(gdt[LAYOUT_BOOT_DS / 8] & (1ULL << 43));
	assert_true(gdt[LAYOUT_BOOT_DS / 8] & (1ULL << 41));
	guest_mem_destroy(&mem);
}

static void test_guest_mem_bounds(void **state)
{
	struct guest_mem mem;
	uint8_t buf[16] = { 0 };

	assert_int_equal(guest_mem_create(&mem, 4 * MIB), 0);
	assert_non_null(guest_mem_ptr(&mem, 4 * MIB - 16, 16));
	assert_null(guest_mem_ptr(&mem, 4 * MIB - 15, 16));
	assert_null(guest_mem_ptr(&mem, UINT64_MAX - 4, 16));
	assert_null(guest_mem_ptr(&mem, 16, UINT64_MAX));
	assert_int_equal(guest_mem_write(&mem, 4 * MIB, buf, 1), -EFAULT);
	assert_int_equal(guest_mem_read(&mem, 4 * MIB - 1, buf, 2), -EFAULT);
	assert_int_equal(guest_mem_write(&mem, 4 * MIB - 16, buf, 16), 0);
	guest_mem_destroy(&mem);
}

static void test_guest_mem_dirty(void **state)
{
	struct guest_mem mem;
	uint8_t buf[8192] = { 0 };

	assert_int_equal(guest_mem_create(&mem, 5ULL << 30), 0);
	assert_false(guest_mem_page_dirty(&mem, 0x5000));
	/* A write straddling a page boundary dirties both pages, no more. */
	assert_int_equal(guest_mem_write(&mem, 0x5ff8, buf, 16), 0);
	assert_false(guest_mem_page_dirty(&mem, 0x4fff));
	assert_true(guest_mem_page_dirty(&mem, 0x5000));
	assert_true(guest_mem_page_dirty(&mem, 0x6000));
	assert_false(guest_mem_page_dirty(&mem, 0x7000));
	/* Above 4 GiB (memfd offset 3 GiB): tracked by its own page. */
	guest_mem_mark_dirty(&mem, LAYOUT_4G + 0x3000, 4096);
	assert_true(guest_mem_page_dirty(&mem, LAYOUT_4G + 0x3000));
	assert_false(guest_mem_page_dirty(&mem, LAYOUT_MMIO_START - 4096));
	assert_false(guest_mem_page_dirty(&mem, LAYOUT_4G + 0x4000));
	/* Outside RAM: ignored, never a crash. */
	guest_mem_mark_dirty(&mem, LAYOUT_MMIO_START, 4096);
	assert_false(guest_mem_page_dirty(&mem, LAYOUT_MMIO_START));
	guest_mem_clear_dirty(&mem);
	assert_false(guest_mem_page_dirty(&mem, 0x5000));
	assert_false(guest_mem_page_dirty(&mem, LAYOUT_4G + 0x3000));
	guest_mem_destroy(&mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_elf_loads_segments),
		cmocka_unit_test(test_elf_errors),
		cmocka_unit_test(test_not_elf),
		cmocka_unit_test(test_missing_kernel),
		cmocka_unit_test(test_zero_page),
		cmocka_unit_test(test_cmdline_too_long),
		cmocka_unit_test(test_e820_above_4g),
		cmocka_unit_test(test_page_tables),
		cmocka_unit_test(test_gdt),
		cmocka_unit_test(test_guest_mem_bounds),
		cmocka_unit_test(test_guest_mem_dirty),
	};

	log_set_level(LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
