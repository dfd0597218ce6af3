/*
 * keyfile.h — small file helpers shared by the keys layer (embedded.c,
 * keyring.c). Private to src/keys/; not an interface for other layers.
 *
 * Every helper works relative to an open directory descriptor (openat and
 * friends), so a folder renamed or replaced by a symlink after it was
 * checked cannot redirect a write. Paths passed alongside are used only in
 * error details.
 */
#ifndef ATREST_KEYS_KEYFILE_H
#define ATREST_KEYS_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* Refuse (AT_EPERM_OPEN, detail naming path and mode) an open file or folder
 * that is not owned by geteuid() or has any group/other permission bit.
 * what names the object in the detail ("key folder", "key file").
 * want_dir selects the expected type. */
int keyfile_check_private(int fd, const char *path, const char *what, int want_dir) AT_WUR;

/* Read all of fd into buf (capacity cap). EFBIG when the file is larger than
 * cap, errno on a read error. */
int keyfile_read_all(int fd, uint8_t *buf, size_t cap, size_t *len) AT_WUR;

/* Write data as dirfd/name, atomically and durably: write name.tmp (created
 * O_EXCL, mode 0600, after removing a stale one), fsync it, then
 * rename it over name (replace set) or link it to name (replace clear: fails
 * with EEXIST rather than overwrite), unlink the tmp, fsync the folder.
 * On failure name is untouched and no name.tmp is left behind. dir_path is
 * for details only. Errors: errno, with a detail. */
int keyfile_write_atomic(int dirfd, const char *dir_path, const char *name, const uint8_t *data,
                         size_t len, int replace) AT_WUR;

/* Big-endian encoders/decoders for on-disk integers. */
static inline void keyfile_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void keyfile_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void keyfile_put_u64(uint8_t *p, uint64_t v)
{
    keyfile_put_u32(p, (uint32_t)(v >> 32));
    keyfile_put_u32(p + 4, (uint32_t)v);
}
static inline uint16_t keyfile_get_u16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}
static inline uint32_t keyfile_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t keyfile_get_u64(const uint8_t *p)
{
    return (uint64_t)keyfile_get_u32(p) << 32 | keyfile_get_u32(p + 4);
}

#endif
