/* testhex.h — hex strings to bytes, for test vectors. */
#ifndef ATREST_TESTS_TESTHEX_H
#define ATREST_TESTS_TESTHEX_H

#include <stddef.h>
#include <stdint.h>

/* Decode hex (even length, no separators) into out (capacity cap).
 * Returns the byte count; aborts the test program on bad input. */
size_t testhex_decode(const char *hex, uint8_t *out, size_t cap);

/* Encode n bytes as lower-case hex into out (2 * n + 1 bytes). */
void testhex_encode(const uint8_t *in, size_t n, char *out);

#endif
