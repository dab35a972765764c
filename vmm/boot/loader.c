/* Picks the loader for a kernel file by its first bytes, then builds the rest
 * of the boot contract (page tables, GDT, zero page) around the image. */
#include "vmm/boot/boot.h"
#include "vmm/layout.h"
#include "vmm/log.h"
#include "vmm/memory.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct boot_loader *const boot_loaders[] = {
	&boot_loader_elf,
};

/* A Linux bzImage: "HdrS" at 0x202. Recognised so the error is precise. */
static bool boot_is_bzimage(const uint8_t *head, size_t len)
{
	return len >= 0x206 && memcmp(head + 0x202, "HdrS", 4) == 0;
}

int boot_load_kernel(struct guest_mem *mem, const char *path, const char *cmdline,
		     struct boot_info *info)
{
	const struct boot_loader *loader = NULL;
	uint8_t head[1024];
	struct stat st;
	ssize_t n;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		log_err("cannot open kernel '%s': %s", path, strerror(-err));
		return err;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		log_err("kernel '%s' is not a regular file", path);
		err = -EINVAL;
		goto out;
	}
	n = pread(fd, head, sizeof(head), 0);
	if (n < 0) {
		err = -errno;
		log_err("cannot read kernel '%s': %s", path, strerror(-err));
		goto out;
	}
	for (size_t i = 0; i < sizeof(boot_loaders) / sizeof(boot_loaders[0]); i++) {
		if (boot_loaders[i]->probe(head, (size_t)n)) {
			loader = boot_loaders[i];
			break;
		}
	}
	if (!loader) {
		if (boot_is_bzimage(head, (size_t)n))
			log_err("kernel '%s' is a Linux bzImage: not supported by this build yet (ELF64 guests only)",
				path);
		else
			log_err("kernel '%s' is neither an ELF64 executable nor a Linux bzImage",
				path);
		err = -ENOEXEC;
		goto out;
	}
	memset(info, 0, sizeof(*info));
	err = loader->load(mem, fd, path, info);
	if (err)
		goto out;
	info->zero_page = LAYOUT_ZERO_PAGE;
	err = boot_write_page_tables(mem);
	if (!err)
		err = boot_write_gdt(mem);
	if (!err)
		err = boot_write_zero_page(mem, cmdline);
out:
	close(fd);
	return err;
}
