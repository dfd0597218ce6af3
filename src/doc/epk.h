/*
 * epk.h — effective partition keys: where a partition key value sits in
 * the hash space that Cosmos splits into partition key ranges, as the SDKs
 * compute it (hash version 2; docs/server.md, "Partition keys").
 *
 * A component's hash is MurmurHash3 x64 128 (seed 0, libmurmurhash) of the
 * value's binary form: its second 64-bit half then its first, each most
 * significant byte first, the top two bits of the first byte cleared, as
 * 32 uppercase hex digits. The binary form: undefined 00, null 01,
 * false 02, true 03, a number 05 and its IEEE double little-endian, a
 * string 08, its UTF-8 bytes and FF. The effective key of a hierarchical
 * (MultiHash) key is its components' hashes one after the other; of a
 * one-path key, the one hash. Ranges of effective keys ("" to "FF" is all)
 * compare as strings, so a prefix of a hierarchical key names the range
 * [hash(prefix), hash(prefix) + "FF").
 */
#ifndef ATREST_DOC_EPK_H
#define ATREST_DOC_EPK_H

#include <jansson.h>
#include <stddef.h>

#define EPK_HEX 32 /* hex digits per component */

/* The effective key of pk (a partition key value: a JSON array, {} for
 * undefined) into out (EPK_HEX digits per component, NUL terminated). 0,
 * or -1 when out is too small or pk holds another value (an array, or an
 * object with members). */
int epk_of(const json_t *pk, char *out, size_t outsz);

/* Whether epk lies in [lo, hi) (NULL or "": unbounded on that side). */
int epk_in(const char *epk, const char *lo, const char *hi);

#endif
