/*
 * fixture.h — shared helpers for storage tests: scratch folders, an opened
 * data folder with the embedded key provider, raw file surgery.
 */
#ifndef ATREST_TEST_FIXTURE_H
#define ATREST_TEST_FIXTURE_H

#include <limits.h>
#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

#include "keys/provider.h"
#include "storage/store.h"

struct fixture {
    char root[PATH_MAX];     /* scratch folder, removed by fx_teardown */
    char data_dir[PATH_MAX]; /* <root>/data */
    char key_dir[PATH_MAX];  /* <root>/keys */
    struct key_provider *kp;
    struct store_env *env;
};

/* Make a scratch root under $ATREST_TEST_TMP (or /tmp) named after tag. */
void fx_mkroot(struct fixture *fx, const char *tag);

/* fx_mkroot + create the key folder and open a new data folder. */
void fx_setup(struct fixture *fx, const char *tag);

/* Close env and provider (if open); keep the files. */
void fx_close(struct fixture *fx);

/* Re-open provider and env on the existing folders; returns the error. */
int fx_reopen(struct fixture *fx);

/* Fork a child that reports to the parent over a pipe: returns 0 in the
 * child with *fd its write end, the child's pid in the parent with *fd the
 * read end (each side's other end closed). */
pid_t fx_fork_piped(int *fd);

/* fx_close and remove the scratch root. */
void fx_teardown(struct fixture *fx);

/* rm -rf path. */
void fx_rmrf(const char *path);

/* cp -a src dst (files and folders, modes kept). */
void fx_copy_tree(const char *src, const char *dst);

/* Read/write a whole file. fx_read_file returns malloc'd bytes (NUL added). */
uint8_t *fx_read_file(const char *path, size_t *len);
void fx_write_file(const char *path, const uint8_t *buf, size_t len);

/* Flip bit `bit` (0..7) of byte `off` of a file. */
void fx_flip_bit(const char *path, uint64_t off, int bit);

/* Count occurrences of needle in every regular file under dir (recursive);
 * prints the file names with hits. */
size_t fx_scan_dir(const char *dir, const void *needle, size_t n);

/* Size of a file, or -1. */
long long fx_file_size(const char *path);

/* Create table docs(id TEXT PRIMARY KEY, body TEXT) and insert n documents
 * of about doc_size bytes, batch rows per transaction; doc i has id
 * "doc-<i>" and a body produced by fx_doc_body. */
void fx_fill(struct store *st, int n, int doc_size, int batch, const char *canary);

/* The body of document i (deterministic); canary may be NULL. */
void fx_doc_body(char *out, size_t cap, int i, int doc_size, const char *canary);

/* Compare every row of docs with what fx_fill wrote. Returns 0 if all n
 * rows are present and equal, AT_EINTEGRITY (or another error) if reading
 * failed, or 1 if some row differs or is missing (wrong data). */
int fx_check_docs(struct store *st, int n, int doc_size, const char *canary);

/* Path of the single store file (<hex>.db) of the data folder, for raw
 * surgery; asserts exactly one exists. */
void fx_store_file(const char *data_dir, char *out, size_t cap);

/* A fixed-seed pseudo-random generator (xorshift64) for tests that must
 * give the same sequence on every run: the next 32 bits of *state, which
 * must start nonzero. */
uint32_t fx_xorshift(uint64_t *state);

/* Make an unwritten page (storage/page.h) the way SQLite leaves one: the
 * first free-list leaf of st's main file (whose WAL must be checkpointed
 * and empty) overwritten with zeros. Asserts the store has a free list;
 * returns the page number. */
uint32_t fx_unwrite_free_leaf(struct store *st);

#endif
