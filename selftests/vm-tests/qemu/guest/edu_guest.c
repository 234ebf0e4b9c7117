// SPDX-License-Identifier: GPL-2.0
/*
 * The nested VM's program: no operating system, a multiboot image that
 * QEMU boots with -kernel. It finds QEMU's edu (1234:11e8) on PCI bus 0,
 * enables memory decoding and bus mastering, and loops forever on
 *  - liveness: the device stores the complement of what is written;
 *  - factorial: of 1..12, polled until the computation ends;
 *  - a DMA round trip: a fresh pattern RAM -> buffer[0, 1 KiB) -> RAM;
 *  - the persistent pattern: buffer[2 KiB, 3 KiB), written once at start,
 *    read back by DMA every round (it survives only if the buffer does);
 * checking every result. Each round prints "edu-guest: iter N ok" on COM1;
 * the first wrong result prints "edu-guest: FAIL ..." and halts. A test
 * that migrates the VM reads the line numbers on both sides: the counter
 * lives in guest RAM, so the target goes on from where the source stopped.
 *
 * Every transfer stays strictly inside the 4 KiB buffer (QEMU 7.2's edu
 * kills the VM on a transfer that reaches its last byte), below 2^28.
 */
#include <stdint.h>

#define COM1		0x3f8
#define PCI_ADDR	0xcf8
#define PCI_DATA	0xcfc

#define EDU_VENDOR	0x1234
#define EDU_DEVICE	0x11e8
#define EDU_ID		0x00
#define EDU_LIVENESS	0x04
#define EDU_FACTORIAL	0x08
#define EDU_STATUS	0x20
#define EDU_DMA_SRC	0x80
#define EDU_DMA_DST	0x88
#define EDU_DMA_COUNT	0x90
#define EDU_DMA_CMD	0x98
#define EDU_CMD_RUN	0x1
#define EDU_CMD_TO_RAM	0x2
#define EDU_BUF		0x40000u

#define CHUNK		1024u
#define PERSIST_OFF	2048u
#define POLL_MAX	20000000u

static volatile uint8_t *edu;
static uint8_t ram_out[CHUNK] __attribute__((aligned(4096)));
static uint8_t ram_in[CHUNK] __attribute__((aligned(4096)));

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;

	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static void serial_init(void)
{
	outb(COM1 + 1, 0x00);	/* no interrupts */
	outb(COM1 + 3, 0x80);	/* DLAB */
	outb(COM1 + 0, 0x01);	/* 115200 baud */
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x03);	/* 8N1 */
	outb(COM1 + 2, 0x07);	/* FIFO on, cleared */
}

static void putc(char c)
{
	unsigned int i;

	for (i = 0; i < 100000 && !(inb(COM1 + 5) & 0x20); i++)
		;
	outb(COM1, (uint8_t)c);
}

static void puts(const char *s)
{
	while (*s) {
		if (*s == '\n')
			putc('\r');
		putc(*s++);
	}
}

static void putu(uint32_t v, unsigned int base)
{
	char buf[12];
	int i = 0;

	do {
		buf[i++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (base == 16)
		puts("0x");
	while (i)
		putc(buf[--i]);
}

static uint32_t pci_read(uint32_t dev, uint32_t reg)
{
	outl(PCI_ADDR, 0x80000000u | dev << 11 | (reg & 0xfc));
	return inl(PCI_DATA);
}

static void pci_write(uint32_t dev, uint32_t reg, uint32_t v)
{
	outl(PCI_ADDR, 0x80000000u | dev << 11 | (reg & 0xfc));
	outl(PCI_DATA, v);
}

static uint32_t rd(uint32_t off)
{
	return *(volatile uint32_t *)(edu + off);
}

static void wr(uint32_t off, uint32_t v)
{
	*(volatile uint32_t *)(edu + off) = v;
}

static uint32_t iter;

static void __attribute__((noreturn)) fail(const char *what, uint32_t got,
					   uint32_t want)
{
	puts("edu-guest: FAIL iter ");
	putu(iter, 10);
	puts(" ");
	puts(what);
	puts(": got ");
	putu(got, 16);
	puts(" want ");
	putu(want, 16);
	puts("\n");
	for (;;)
		__asm__ volatile("cli; hlt");
}

/* Poll register @off until @bit clears. */
static void wait_clear(uint32_t off, uint32_t bit, const char *what)
{
	uint32_t i, v = 0;

	for (i = 0; i < POLL_MAX; i++) {
		v = rd(off);
		if (!(v & bit))
			return;
	}
	fail(what, v, 0);
}

static void dma(uint32_t src, uint32_t dst, uint32_t count, uint32_t cmd)
{
	wr(EDU_DMA_SRC, src);
	wr(EDU_DMA_DST, dst);
	wr(EDU_DMA_COUNT, count);
	wr(EDU_DMA_CMD, cmd | EDU_CMD_RUN);
	wait_clear(EDU_DMA_CMD, EDU_CMD_RUN, "dma timeout");
}

static uint8_t pattern(uint32_t seed, uint32_t i)
{
	return (uint8_t)(seed * 131u + i * 13u + (i >> 8) * 7u);
}

static void check_buf(uint32_t seed, const char *what)
{
	uint32_t i;

	for (i = 0; i < CHUNK; i++)
		if (ram_in[i] != pattern(seed, i))
			fail(what, ram_in[i], pattern(seed, i));
}

static uint32_t fact(uint32_t n)
{
	uint32_t r = 1;

	while (n > 1)
		r *= n--;
	return r;
}

static int find_edu(void)
{
	uint32_t dev, id, bar, cmd;

	for (dev = 0; dev < 32; dev++) {
		id = pci_read(dev, 0);
		if ((id & 0xffff) != EDU_VENDOR || id >> 16 != EDU_DEVICE)
			continue;
		bar = pci_read(dev, 0x10);
		cmd = pci_read(dev, 0x04) & 0xffff;
		pci_write(dev, 0x04, cmd | 0x6);	/* memory + bus master */
		edu = (volatile uint8_t *)(uintptr_t)(bar & ~0xfu);
		puts("edu-guest: edu at 00:");
		putu(dev, 16);
		puts(".0 bar0 ");
		putu(bar & ~0xfu, 16);
		puts("\n");
		return 0;
	}
	return -1;
}

void guest_main(void);

void guest_main(void)
{
	uint32_t i, v, n;

	serial_init();
	puts("edu-guest: start\n");
	if (find_edu())
		fail("no edu on bus 0", 0, 0);
	v = rd(EDU_ID);
	if (v != 0x010000ed)
		fail("id", v, 0x010000ed);

	/* the persistent pattern, read back every round */
	for (i = 0; i < CHUNK; i++)
		ram_out[i] = pattern(0xabcd, i);
	dma((uint32_t)(uintptr_t)ram_out, EDU_BUF + PERSIST_OFF, CHUNK, 0);

	for (iter = 1;; iter++) {
		v = 0x5a000000u ^ iter * 2654435761u;
		wr(EDU_LIVENESS, v);
		if (rd(EDU_LIVENESS) != ~v)
			fail("liveness", rd(EDU_LIVENESS), ~v);

		n = iter % 12 + 1;
		wr(EDU_FACTORIAL, n);
		wait_clear(EDU_STATUS, 0x1, "factorial timeout");
		if (rd(EDU_FACTORIAL) != fact(n))
			fail("factorial", rd(EDU_FACTORIAL), fact(n));

		for (i = 0; i < CHUNK; i++)
			ram_out[i] = pattern(iter, i);
		dma((uint32_t)(uintptr_t)ram_out, EDU_BUF, CHUNK, 0);
		for (i = 0; i < CHUNK; i++)
			ram_in[i] = 0;
		dma(EDU_BUF, (uint32_t)(uintptr_t)ram_in, CHUNK,
		    EDU_CMD_TO_RAM);
		check_buf(iter, "dma round trip");

		for (i = 0; i < CHUNK; i++)
			ram_in[i] = 0;
		dma(EDU_BUF + PERSIST_OFF, (uint32_t)(uintptr_t)ram_in, CHUNK,
		    EDU_CMD_TO_RAM);
		check_buf(0xabcd, "device buffer");

		puts("edu-guest: iter ");
		putu(iter, 10);
		puts(" ok\n");
	}
}
