/*
 * storage_bench_sqlcipher.c — storage-bench-sqlcipher: the SQLCipher column
 * of the storage benchmark (see storage_bench.c and docs/bench-storage.md).
 *
 * Only ever run as a child of storage-bench (--child ...). A separate
 * program because Debian's libsqlcipher exports the same sqlite3_* symbols
 * as libsqlite3. Opens <dir>/bench.db with a raw 256-bit key (no passphrase
 * KDF), 4096-byte pages like atrest, WAL, synchronous=FULL, temp_store=MEMORY
 * and no mmap, as atrest's store does; the workload and its SQL come from
 * bench_common.h.
 */
#include <sqlcipher/sqlite3.h>

#include "bench_common.h"

/* A fixed benchmark key for throwaway data: not a secret. */
#define BENCH_SQLCIPHER_KEY                                                                        \
    "PRAGMA key = \"x'000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'\""

struct sqlcipher_backend {
    struct bench_backend base;
    sqlite3 *db;
};

static int sc_close(struct bench_backend *be)
{
    struct sqlcipher_backend *sc = (struct sqlcipher_backend *)be;
    int rc = 0;

    if (sc->db != NULL && sqlite3_close(sc->db) != SQLITE_OK)
        rc = sql_fail(sc->db, "close");
    sc->db = NULL;
    return rc;
}

static int sc_open(struct bench_backend *be, const char *dir, int create, sqlite3 **db)
{
    struct sqlcipher_backend *sc = (struct sqlcipher_backend *)be;
    char path[PATH_MAX];
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);

    if (bench_path(path, dir, "bench.db") != 0)
        return 1;
    if (sqlite3_open_v2(path, &sc->db, flags, NULL) != SQLITE_OK) {
        sql_fail(sc->db, path);
        sc_close(be);
        return 1;
    }
    /* The key and page size come before anything reads the file. */
    if (exec_sql(sc->db, BENCH_SQLCIPHER_KEY) != 0 ||
        exec_sql(sc->db, "PRAGMA cipher_page_size = 4096") != 0 ||
        exec_sql(sc->db, "PRAGMA journal_mode = WAL") != 0 ||
        exec_sql(sc->db, "PRAGMA synchronous = FULL") != 0 ||
        exec_sql(sc->db, "PRAGMA temp_store = MEMORY") != 0 ||
        exec_sql(sc->db, "PRAGMA mmap_size = 0") != 0) {
        sc_close(be);
        return 1;
    }
    *db = sc->db;
    return 0;
}

static int sc_begin(struct bench_backend *be)
{
    return exec_sql(((struct sqlcipher_backend *)be)->db, "BEGIN IMMEDIATE");
}

static int sc_commit(struct bench_backend *be)
{
    return exec_sql(((struct sqlcipher_backend *)be)->db, "COMMIT");
}

int main(int argc, char **argv)
{
    struct sqlcipher_backend sc = {
        .base = {.name = "sqlcipher",
                 .open = sc_open,
                 .begin = sc_begin,
                 .commit = sc_commit,
                 .close = sc_close,
                 .counters = NULL},
    };

    if (argc < 2 || strcmp(argv[1], "--child") != 0) {
        fprintf(stderr, "%s: run storage-bench instead; this is one of its children\n", argv[0]);
        return 2;
    }
    return bench_child_main(argc, argv, &sc.base);
}
