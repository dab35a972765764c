/* Guest kit: the public API of the tiny freestanding runtime that test and
 * benchmark guests are built on. One header on purpose: a guest includes
 * kit.h and links the kit sources (see ../meson.build).
 *
 * Model: every vCPU enters at once; the kit drops each to ring 3 with IOPL=3
 * (ring 0 is emulated on PVM hosts, ring 3 runs natively) and calls the
 * guest's kit_main() on every vCPU. Ring 3 may use in/out and pause, but not
 * int n; sti, cli and hlt fault on PVM and the kit emulates them (irq.c).
 * kit_main returning ends the VM (boot vCPU) or parks the vCPU. */
#ifndef KIT_H
#define KIT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layout.h"

#define KIT_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define KIT_NORETURN __attribute__((noreturn))

/* Provided by the guest; called on every vCPU, in ring 3, once the boot vCPU
 * has parsed boot_params (NULL when booted by QEMU through PVH/multiboot). */
void kit_main(unsigned int cpu, const void *boot_params);

/* Error codes: kit functions that can fail return 0 (or a count) or one of
 * these negated, with the Linux errno values. */
#define KIT_EIO			5
#define KIT_ENOMEM		12
#define KIT_ENODEV		19
#define KIT_EINVAL		22
#define KIT_ENOSPC		28
#define KIT_ENOTSUP		95
#define KIT_ETIMEDOUT		110

/* Image bounds from guest.ld. */
extern char kit_image_start[], _end[];

/* --- console.c: COM1, whole lines under one lock (vCPU safe) ------------- */
void kit_putc(char c);
void kit_puts(const char *s);
void kit_printf(const char *fmt, ...) KIT_PRINTF(1, 2);
void kit_vprintf(const char *fmt, va_list ap);
/* A byte the host sent to COM1, or -1 if none is waiting. */
int kit_getc_nowait(void);

/* --- format.c: printf-style formatting -----------------------------------
 * %d %i %u %x %X %c %s %p %%, length l/ll/z, flags '-' '0', width (or '*'),
 * precision for %s. */
int kit_snprintf(char *buf, size_t size, const char *fmt, ...) KIT_PRINTF(3, 4);
int kit_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);

/* --- string.c: the usual names, as the compiler may emit calls to them --- */
void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

/* --- boot.c: boot_params: command line, e820 ----------------------------- */
struct kit_e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;			/* KIT_E820_RAM = usable RAM */
};
#define KIT_E820_RAM		1
#define KIT_DEFAULT_RAM_MIB	64	/* RAM assumed without boot_params */

bool kit_have_boot_params(void);
const char *kit_cmdline(void);		/* "" if none */
/* Value of "name=value" on the command line (last one wins); a bare "name"
 * counts as 1 / "". Numbers: decimal or 0x hex, optional K/M/G suffix; a
 * malformed number panics naming the parameter. */
uint64_t kit_param_u64(const char *name, uint64_t def);
/* Copies the value (NUL-terminated, truncated to size) into buf and returns
 * buf, or returns def if the parameter is absent. */
const char *kit_param_str(const char *name, const char *def, char *buf, size_t size);
unsigned int kit_e820_count(void);
bool kit_e820_get(unsigned int i, struct kit_e820_entry *out);
/* True if [addr, addr + len) lies inside one RAM entry. */
bool kit_ram_contains(uint64_t addr, uint64_t len);
/* RAM size as the VMM was asked for it: RAM above 1 MiB plus the first MiB,
 * rounded to the nearest MiB (so "--mem 128M" reads back as 128). */
uint64_t kit_ram_mib(void);

/* --- cpu.c: vCPUs, time, synchronisation, exit --------------------------- */
unsigned int kit_cpu_count(void);	/* CPUID 0xB.1 EBX[15:0] (read in ring 0); 1 without boot_params */
uint64_t kit_tsc_khz(void);		/* CPUID 0x40000010 EAX, else 2 GHz (noted once) */
uint64_t kit_rdtsc(void);
uint64_t kit_now_ns(void);		/* since the boot vCPU entered ring 3 */
void kit_delay_ns(uint64_t ns);
/* All kit_cpu_count() vCPUs meet here; reusable. */
void kit_barrier_wait(void);
void kit_spin_lock(uint32_t *lock);
void kit_spin_unlock(uint32_t *lock);
/* i8042 reset (vmm: exit 0), then QEMU isa-debug-exit (port 0xf4), then a
 * triple fault as the last resort. */
void kit_exit(void) KIT_NORETURN;
/* Print "PANIC: <message>" and triple-fault (vmm exits non-zero). */
void kit_panic(const char *fmt, ...) KIT_PRINTF(1, 2) KIT_NORETURN;
/* Triple-fault now, without a message. */
void kit_die(void) KIT_NORETURN;
/* Spin forever in ring 3 (hlt is not allowed there). */
void kit_park(void) KIT_NORETURN;

static inline void kit_cpu_relax(void)
{
	__asm__ volatile("pause" ::: "memory");
}

static inline void kit_outb(uint16_t port, uint8_t val)
{
	__asm__ volatile("outb %0, %1" : : "a"(val), "Nd"(port));
}

static inline uint8_t kit_inb(uint16_t port)
{
	uint8_t val;

	__asm__ volatile("inb %1, %0" : "=a"(val) : "Nd"(port));
	return val;
}

/* --- irq.c: interrupts (LAPIC, IOAPIC, counters, IF) ----------------------
 * Vectors 32..254 reach kit_r0_irq (entry.S), a ~16-instruction ring-0
 * handler that counts them per vCPU and sends the LAPIC EOI (unless deferred
 * for that vector), then irets. Vector 0xff is the LAPIC spurious vector
 * (counted, no EOI). Nothing is enabled at boot. The APIC MMIO accessors run
 * in ring 3; IOAPIC accesses take a lock (IOREGSEL/IOWIN pairs). */
uint32_t kit_lapic_read(uint32_t reg);
void kit_lapic_write(uint32_t reg, uint32_t val);
uint32_t kit_lapic_id(void);
/* This vCPU: mask LVT LINT0/LINT1/error (KVM sets the boot vCPU's LINT0 to
 * ExtINT), TPR 0, software-enable with spurious vector 0xff. */
void kit_lapic_enable(void);
void kit_lapic_eoi(void);
bool kit_lapic_in_service(unsigned int vector);	/* ISR bit */
bool kit_lapic_pending(unsigned int vector);		/* IRR bit */
uint32_t kit_ioapic_read(uint32_t reg);
void kit_ioapic_write(uint32_t reg, uint32_t val);
unsigned int kit_ioapic_pins(void);
/* Redirection entry of `pin`: vector (32..254), fixed delivery, physical
 * destination apic_id, active high, edge or level, unmasked. */
int kit_ioapic_route(unsigned int pin, unsigned int vector, unsigned int apic_id, bool level);
void kit_ioapic_mask(unsigned int pin);
uint64_t kit_ioapic_entry(unsigned int pin);	/* the raw 64-bit entry */
/* Interrupts of `vector` taken by vCPU `cpu` so far (any vCPU may read). */
uint32_t kit_irq_count(unsigned int cpu, unsigned int vector);
/* defer = true: kit_r0_irq sends no EOI for this vector; the guest calls
 * kit_lapic_eoi() itself, after acknowledging the device (what level-
 * triggered sources need on hardware KVM, or they fire again at the EOI).
 * On PVM level trigger storms anyway: see README.md, "Interrupts". */
void kit_irq_defer_eoi(unsigned int vector, bool defer);
/* LAPIC timer of this vCPU: `count` bus cycles (divide by 1; KVM's bus is
 * 1 GHz, so cycles = ns), one-shot or periodic; count 0 masks it. */
void kit_lapic_timer(unsigned int vector, uint32_t count, bool periodic);
/* RFLAGS.IF and waiting, in ring 3. sti, cli and hlt raise #GP in ring 3 on
 * PVM even with IOPL=3 (hlt does everywhere); the kit's #GP handler emulates
 * these three for ring 3: sti/cli set/clear the saved IF; hlt waits in
 * ring 0 with "sti; hlt; cli" whatever IF is (the interrupt is taken in
 * ring 0), then returns with IF as it was: "cli; check; hlt" loses no
 * wake-up. kit_irq_popf (popfq) does NOT work on PVM: ring-3 pushfq/popfq
 * run natively on the host's flags (kit_rflags() reads 0x206 there). */
void kit_irq_enable(void);		/* sti */
void kit_irq_disable(void);		/* cli */
void kit_irq_wait(void);		/* hlt: returns after an interrupt */
void kit_irq_popf(bool on);
uint64_t kit_rflags(void);

/* Careful: on PVM hosts a ring-3 cpuid runs natively and describes the
 * host CPU, not the vCPU. The kit reads what it needs in ring 0 at entry;
 * use this only for features where the host answer is the right one. */
static inline void kit_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t *a,
			     uint32_t *b, uint32_t *c, uint32_t *d)
{
	__asm__ volatile("cpuid"
			 : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d)
			 : "a"(leaf), "c"(subleaf));
}

#endif
