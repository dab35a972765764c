/* ELF64 guests (the boot contract): PT_LOAD segments are copied to their
 * physical addresses, straight from the file into guest RAM. */
#include "vmm/boot/boot.h"
#include "vmm/layout.h"
#include "vmm/log.h"
#include "vmm/memory.h"

#include <elf.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ELF_MAX_PHDRS 64

static bool elf_probe(const uint8_t *head, size_t len)
{
	return len >= SELFMAG && memcmp(head, ELFMAG, SELFMAG) == 0;
}

static int elf_read_full(int fd, void *buf, size_t len, off_t off)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENODATA;
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

static int elf_check_header(const Elf64_Ehdr *eh, const char *path)
{
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh->e_machine != EM_X86_64) {
		log_err("kernel '%s': not a 64-bit x86-64 ELF (32-bit and other machines are not supported)",
			path);
		return -ENOEXEC;
	}
	if (eh->e_type != ET_EXEC) {
		log_err("kernel '%s': ELF type %u is not an executable (ET_EXEC)", path,
			eh->e_type);
		return -ENOEXEC;
	}
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 ||
	    eh->e_phnum > ELF_MAX_PHDRS) {
		log_err("kernel '%s': bad program header table (%u entries of %u bytes)", path,
			eh->e_phnum, eh->e_phentsize);
		return -ENOEXEC;
	}
	return 0;
}

static int elf_load_segment(struct guest_mem *mem, int fd, const char *path,
			    const Elf64_Phdr *ph, uint64_t file_size)
{
	uint64_t mib = mem->size >> 20;
	void *dst;
	int err;

	if (ph->p_filesz > ph->p_memsz || ph->p_offset > file_size ||
	    ph->p_filesz > file_size - ph->p_offset) {
		log_err("kernel '%s': segment at 0x%llx: its data lies beyond the end of the file (truncated?)",
			path, (unsigned long long)ph->p_paddr);
		return -ENOEXEC;
	}
	if (ph->p_paddr < LAYOUT_PT_END) {
		log_err("kernel '%s': segment at 0x%llx overlaps vmm's boot structures below 0x%llx",
			path, (unsigned long long)ph->p_paddr, LAYOUT_PT_END);
		return -ENOEXEC;
	}
	dst = guest_mem_ptr(mem, ph->p_paddr, ph->p_memsz);
	if (!dst) {
		log_err("kernel '%s': segment 0x%llx-0x%llx does not fit in %llu MiB of guest RAM (raise --mem)",
			path, (unsigned long long)ph->p_paddr,
			(unsigned long long)(ph->p_paddr + ph->p_memsz),
			(unsigned long long)mib);
		return -ENOMEM;
	}
	/* RAM is a fresh memfd, so the bss part (p_memsz - p_filesz) is zero already. */
	err = elf_read_full(fd, dst, ph->p_filesz, (off_t)ph->p_offset);
	if (err) {
		log_err("kernel '%s': reading segment at 0x%llx: %s", path,
			(unsigned long long)ph->p_paddr, strerror(-err));
		return err;
	}
	return 0;
}

static int elf_load(struct guest_mem *mem, int fd, const char *path, struct boot_info *info)
{
	Elf64_Phdr ph[ELF_MAX_PHDRS];
	Elf64_Ehdr eh;
	struct stat st;
	bool loaded = false;
	int err;

	if (fstat(fd, &st) < 0)
		return -errno;
	err = elf_read_full(fd, &eh, sizeof(eh), 0);
	if (err == -ENODATA) {
		log_err("kernel '%s': truncated ELF header", path);
		return -ENOEXEC;
	}
	if (err)
		return err;
	err = elf_check_header(&eh, path);
	if (err)
		return err;
	err = elf_read_full(fd, ph, eh.e_phnum * sizeof(Elf64_Phdr), (off_t)eh.e_phoff);
	if (err) {
		log_err("kernel '%s': cannot read the program headers (truncated?)", path);
		return -ENOEXEC;
	}
	for (unsigned int i = 0; i < eh.e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD || ph[i].p_memsz == 0)
			continue;
		err = elf_load_segment(mem, fd, path, &ph[i], (uint64_t)st.st_size);
		if (err)
			return err;
		loaded = true;
	}
	if (!loaded) {
		log_err("kernel '%s': ELF has no loadable segment", path);
		return -ENOEXEC;
	}
	if (!guest_mem_is_ram(mem, eh.e_entry, 1)) {
		log_err("kernel '%s': entry point 0x%llx is not in guest RAM", path,
			(unsigned long long)eh.e_entry);
		return -ENOEXEC;
	}
	info->format = "elf";
	info->entry = eh.e_entry;
	info->start_all_vcpus = true;
	return 0;
}

const struct boot_loader boot_loader_elf = {
	.name = "elf",
	.probe = elf_probe,
	.load = elf_load,
};
