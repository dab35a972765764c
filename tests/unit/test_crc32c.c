/* Unit tests for snapshot/crc32c.c: known vectors (RFC 3720 B.4 and the
 * usual check value), the tables against the bitwise definition, hardware
 * against tables on random lengths and alignments, and chaining. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "snapshot/crc32c.h"

/* The definition, one bit at a time. */
static uint32_t crc_bitwise(uint32_t crc, const uint8_t *p, size_t len)
{
	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (int i = 0; i < 8; i++)
			crc = (crc >> 1) ^ ((crc & 1) ? 0x82F63B78u : 0);
	}
	return ~crc;
}

static uint64_t rng_next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Both implementations, checked against each other at every call. */
static uint32_t crc_both(uint32_t crc, const void *buf, size_t len)
{
	uint32_t sw = crc32c_sw(crc, buf, len);

	if (crc32c_hw_available())
		assert_int_equal(crc32c_hw(crc, buf, len), sw);
	assert_int_equal(crc32c(crc, buf, len), sw);
	return sw;
}

static void test_known_vectors(void **state)
{
	uint8_t buf[32];

	assert_int_equal(crc_both(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(crc_both(0, "", 0), 0);
	assert_int_equal(crc_both(0x12345678, "", 0), 0x12345678u);
	assert_int_equal(crc_both(0, "a", 1), 0xC1D04330u);
	/* RFC 3720 B.4 */
	memset(buf, 0, sizeof(buf));
	assert_int_equal(crc_both(0, buf, 32), 0x8A9136AAu);
	memset(buf, 0xff, sizeof(buf));
	assert_int_equal(crc_both(0, buf, 32), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	assert_int_equal(crc_both(0, buf, 32), 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	assert_int_equal(crc_both(0, buf, 32), 0x113FDB5Cu);
}

static void test_tables_match_definition(void **state)
{
	uint8_t buf[300];
	uint64_t x = 0x9e3779b97f4a7c15ull;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)rng_next(&x);
	/* every byte value through every table position */
	for (size_t len = 0; len <= sizeof(buf); len += 7)
		assert_int_equal(crc32c_sw(0, buf, len), crc_bitwise(0, buf, len));
	for (unsigned b = 0; b < 256; b++) {
		uint8_t w[8];

		for (int k = 0; k < 8; k++) {
			memset(w, 0x5a, sizeof(w));
			w[k] = (uint8_t)b;
			assert_int_equal(crc32c_sw(b, w, 8), crc_bitwise(b, w, 8));
		}
	}
}

static void test_hw_vs_sw_random(void **state)
{
	size_t size = 1 << 16;
	uint8_t *buf = malloc(size + 64);
	uint64_t x = 12345;

	assert_non_null(buf);
	for (size_t i = 0; i < size + 64; i++)
		buf[i] = (uint8_t)rng_next(&x);
	if (!crc32c_hw_available())
		print_message("no SSE4.2: table path only\n");
	for (int i = 0; i < 2000; i++) {
		size_t align = rng_next(&x) % 64;
		size_t len = i < 200 ? (size_t)i : rng_next(&x) % size;
		uint32_t seed = (uint32_t)rng_next(&x);
		uint32_t r = crc_both(seed, buf + align, len);

		if (len < 4096)
			assert_int_equal(r, crc_bitwise(seed, buf + align, len));
	}
	free(buf);
}

static void test_incremental(void **state)
{
	uint8_t buf[10000];
	uint64_t x = 777;
	uint32_t whole;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)rng_next(&x);
	whole = crc_both(0, buf, sizeof(buf));
	for (int i = 0; i < 500; i++) {
		size_t a = rng_next(&x) % sizeof(buf);
		size_t b = a + rng_next(&x) % (sizeof(buf) - a);
		uint32_t c = crc_both(0, buf, a);

		c = crc_both(c, buf + a, b - a);
		c = crc_both(c, buf + b, sizeof(buf) - b);
		assert_int_equal(c, whole);
	}
	/* byte by byte */
	{
		uint32_t c = 0;

		for (size_t i = 0; i < sizeof(buf); i++)
			c = crc32c(c, buf + i, 1);
		assert_int_equal(c, whole);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_vectors),
		cmocka_unit_test(test_tables_match_definition),
		cmocka_unit_test(test_hw_vs_sw_random),
		cmocka_unit_test(test_incremental),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
