/* Guest kit interrupts: local APIC and IOAPIC set-up from ring 3, the
 * per-vCPU interrupt counters that kit_r0_irq (entry.S) keeps, and turning
 * RFLAGS.IF on and off in ring 3.
 *
 * The LAPIC and IOAPIC are MMIO (xAPIC at 0xfee00000, IOAPIC at 0xfec00000),
 * identity-mapped with U/S=1 by the boot contract, so ring 3 programs them
 * directly; each access exits to KVM's in-kernel irqchip. */
#include "kit_internal.h"

#define LAPIC_ID		0x020
#define LAPIC_TPR		0x080
#define LAPIC_EOI		0x0b0
#define LAPIC_SVR		0x0f0
#define LAPIC_ISR		0x100
#define LAPIC_IRR		0x200
#define LAPIC_LVT_TIMER		0x320
#define LAPIC_LVT_LINT0		0x350
#define LAPIC_LVT_LINT1		0x360
#define LAPIC_LVT_ERROR		0x370
#define LAPIC_TIMER_INIT	0x380
#define LAPIC_TIMER_DIV		0x3e0
#define LAPIC_TIMER_PERIODIC	(1u << 17)
#define LAPIC_SVR_ENABLE	(1u << 8)
#define LAPIC_LVT_MASKED	(1u << 16)

#define IOAPIC_SEL		0x00
#define IOAPIC_WIN		0x10
#define IOAPIC_VER		0x01
#define IOAPIC_REDTBL(pin)	(0x10 + 2 * (pin))
#define IOAPIC_LEVEL		(1u << 15)
#define IOAPIC_MASKED		(1u << 16)

#define RFLAGS_IF		(1ull << 9)

extern volatile uint32_t kit_irq_counts[KIT_MAX_CPUS][KIT_IDT_ENTRIES];
extern volatile uint8_t kit_irq_eoi_defer[KIT_IDT_ENTRIES];

static uint32_t ioapic_lock;

uint32_t kit_lapic_read(uint32_t reg)
{
	return *(volatile uint32_t *)(uintptr_t)(KIT_LAPIC_BASE + reg);
}

void kit_lapic_write(uint32_t reg, uint32_t val)
{
	*(volatile uint32_t *)(uintptr_t)(KIT_LAPIC_BASE + reg) = val;
}

uint32_t kit_lapic_id(void)
{
	return kit_lapic_read(LAPIC_ID) >> 24;
}

void kit_lapic_enable(void)
{
	kit_lapic_write(LAPIC_LVT_LINT0, LAPIC_LVT_MASKED);	/* KVM: ExtINT on the BSP */
	kit_lapic_write(LAPIC_LVT_LINT1, LAPIC_LVT_MASKED);
	kit_lapic_write(LAPIC_LVT_ERROR, LAPIC_LVT_MASKED);
	kit_lapic_write(LAPIC_TPR, 0);
	kit_lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | KIT_IRQ_SPURIOUS);
}

void kit_lapic_eoi(void)
{
	kit_lapic_write(LAPIC_EOI, 0);
}

bool kit_lapic_in_service(unsigned int vector)
{
	return kit_lapic_read(LAPIC_ISR + (vector / 32) * 0x10) >> (vector % 32) & 1;
}

bool kit_lapic_pending(unsigned int vector)
{
	return kit_lapic_read(LAPIC_IRR + (vector / 32) * 0x10) >> (vector % 32) & 1;
}

static uint32_t ioapic_read_locked(uint32_t reg)
{
	*(volatile uint32_t *)(uintptr_t)(KIT_IOAPIC_BASE + IOAPIC_SEL) = reg;
	return *(volatile uint32_t *)(uintptr_t)(KIT_IOAPIC_BASE + IOAPIC_WIN);
}

static void ioapic_write_locked(uint32_t reg, uint32_t val)
{
	*(volatile uint32_t *)(uintptr_t)(KIT_IOAPIC_BASE + IOAPIC_SEL) = reg;
	*(volatile uint32_t *)(uintptr_t)(KIT_IOAPIC_BASE + IOAPIC_WIN) = val;
}

uint32_t kit_ioapic_read(uint32_t reg)
{
	uint32_t v;

	kit_spin_lock(&ioapic_lock);
	v = ioapic_read_locked(reg);
	kit_spin_unlock(&ioapic_lock);
	return v;
}

void kit_ioapic_write(uint32_t reg, uint32_t val)
{
	kit_spin_lock(&ioapic_lock);
	ioapic_write_locked(reg, val);
	kit_spin_unlock(&ioapic_lock);
}

unsigned int kit_ioapic_pins(void)
{
	return (kit_ioapic_read(IOAPIC_VER) >> 16 & 0xff) + 1;
}

int kit_ioapic_route(unsigned int pin, unsigned int vector, unsigned int apic_id, bool level)
{
	if (pin >= kit_ioapic_pins() || vector < KIT_IRQ_FIRST || vector >= KIT_IRQ_SPURIOUS ||
	    apic_id > 0xff)
		return -KIT_EINVAL;
	/* Masked while the destination changes; then vector, fixed delivery,
	 * physical destination, active high, the trigger mode, unmasked. */
	kit_spin_lock(&ioapic_lock);
	ioapic_write_locked(IOAPIC_REDTBL(pin), IOAPIC_MASKED);
	ioapic_write_locked(IOAPIC_REDTBL(pin) + 1, apic_id << 24);
	ioapic_write_locked(IOAPIC_REDTBL(pin), vector | (level ? IOAPIC_LEVEL : 0));
	kit_spin_unlock(&ioapic_lock);
	return 0;
}

void kit_ioapic_mask(unsigned int pin)
{
	kit_spin_lock(&ioapic_lock);
	ioapic_write_locked(IOAPIC_REDTBL(pin), IOAPIC_MASKED);
	kit_spin_unlock(&ioapic_lock);
}

uint64_t kit_ioapic_entry(unsigned int pin)
{
	uint64_t lo, hi;

	kit_spin_lock(&ioapic_lock);
	lo = ioapic_read_locked(IOAPIC_REDTBL(pin));
	hi = ioapic_read_locked(IOAPIC_REDTBL(pin) + 1);
	kit_spin_unlock(&ioapic_lock);
	return hi << 32 | lo;
}

uint32_t kit_irq_count(unsigned int cpu, unsigned int vector)
{
	if (cpu >= KIT_MAX_CPUS || vector >= KIT_IDT_ENTRIES)
		return 0;
	return __atomic_load_n(&kit_irq_counts[cpu][vector], __ATOMIC_ACQUIRE);
}

void kit_irq_defer_eoi(unsigned int vector, bool defer)
{
	if (vector >= KIT_IRQ_FIRST && vector < KIT_IRQ_SPURIOUS)
		kit_irq_eoi_defer[vector] = defer;
}

void kit_lapic_timer(unsigned int vector, uint32_t count, bool periodic)
{
	kit_lapic_write(LAPIC_TIMER_DIV, 0xb);		/* divide by 1 */
	kit_lapic_write(LAPIC_LVT_TIMER, count ? vector | (periodic ? LAPIC_TIMER_PERIODIC : 0)
					       : LAPIC_LVT_MASKED);
	kit_lapic_write(LAPIC_TIMER_INIT, count);
}

/* ---- RFLAGS.IF and hlt in ring 3 -------------------------------------------
 * sti, cli and hlt raise #GP in ring 3 on PVM (IOPL=3 notwithstanding; hlt
 * does so everywhere): kit_r0_gp (entry.S) emulates them. A ring-3 popfq
 * cannot change IF on PVM: pushfq/popfq run natively on the host's flags. */
void kit_irq_enable(void)
{
	__asm__ volatile("sti" ::: "memory");
}

void kit_irq_disable(void)
{
	__asm__ volatile("cli" ::: "memory");
}

void kit_irq_wait(void)
{
	__asm__ volatile("hlt" ::: "memory");
}

uint64_t kit_rflags(void)
{
	uint64_t f;

	__asm__ volatile("pushfq; popq %0" : "=r"(f) : : "memory");
	return f;
}

void kit_irq_popf(bool on)
{
	uint64_t f = kit_rflags();

	f = on ? f | RFLAGS_IF : f & ~RFLAGS_IF;
	__asm__ volatile("pushq %0; popfq" : : "r"(f) : "memory", "cc");
}
