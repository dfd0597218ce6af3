/*
 * epk.c — effective partition keys (epk.h).
 */
#include "doc/epk.h"

#include <murmurhash.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One component's binary form (epk.h) into buf (malloc'd); its length, or
 * 0 for a value that has none. */
static size_t binary_form(const json_t *v, uint8_t **buf)
{
    size_t n;
    uint8_t *b;
    if (json_is_string(v)) {
        n = json_string_length(v) + 2;
        if (!(b = malloc(n)))
            return 0;
        b[0] = 0x08;
        memcpy(b + 1, json_string_value(v), n - 2);
        b[n - 1] = 0xff;
    } else if (json_is_number(v)) {
        double d = json_number_value(v);
        uint64_t bits;
        memcpy(&bits, &d, sizeof bits);
        n = 9;
        if (!(b = malloc(n)))
            return 0;
        b[0] = 0x05;
        for (int i = 0; i < 8; i++)
            b[1 + i] = (uint8_t)(bits >> (8 * i));
    } else {
        uint8_t tag;
        if (json_is_object(v) && json_object_size(v) == 0)
            tag = 0x00; /* undefined */
        else if (json_is_null(v))
            tag = 0x01;
        else if (json_is_false(v))
            tag = 0x02;
        else if (json_is_true(v))
            tag = 0x03;
        else
            return 0;
        n = 1;
        if (!(b = malloc(n)))
            return 0;
        b[0] = tag;
    }
    *buf = b;
    return n;
}

int epk_of(const json_t *pk, char *out, size_t outsz)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t k = json_array_size(pk);
    if (!json_is_array(pk) || outsz < k * EPK_HEX + 1)
        return -1;
    for (size_t i = 0; i < k; i++) {
        uint8_t *b = NULL;
        size_t n = binary_form(json_array_get(pk, i), &b);
        if (n == 0 || n > UINT32_MAX) {
            free(b);
            return -1;
        }
        uint64_t h[2];
        lmmh_x64_128(b, (unsigned)n, 0, h);
        free(b);
        /* the SDKs' byte order: h[1] then h[0], each most significant
         * byte first (checked against @azure/cosmos: tests/unit) */
        uint8_t r[16];
        for (int j = 0; j < 8; j++) {
            r[j] = (uint8_t)(h[1] >> (56 - 8 * j));
            r[8 + j] = (uint8_t)(h[0] >> (56 - 8 * j));
        }
        r[0] &= 0x3f;
        char *o = out + i * EPK_HEX;
        for (int j = 0; j < 16; j++) {
            o[2 * j] = hex[r[j] >> 4];
            o[2 * j + 1] = hex[r[j] & 15];
        }
    }
    out[k * EPK_HEX] = '\0';
    return 0;
}

int epk_in(const char *epk, const char *lo, const char *hi)
{
    if (lo && *lo && strcmp(epk, lo) < 0)
        return 0;
    return !(hi && *hi && strcmp(epk, hi) >= 0);
}
