/*
 * shm.h — the WAL index of a store in this process's memory.
 *
 * SQLite keeps a WAL database's index (frame numbers of pages, the read
 * marks) in memory shared by all connections to the file, and takes locks
 * on slots of it for every read and write transaction. Its unix VFS maps
 * a "-shm" file and locks with fcntl: two system calls per read
 * transaction. A data folder is only ever open in one process (store.c
 * holds its LOCK file), so atrest keeps that memory on the heap and the
 * locks in a mutex-guarded table: no -shm file, no system call.
 *
 * One struct shm_link per connection (inside its main-file handle), zeroed
 * before use; shm_map attaches it to the store's shared node by path.
 * These follow the contracts of sqlite3_io_methods xShmMap, xShmLock,
 * xShmBarrier and xShmUnmap (https://sqlite.org/c3ref/io_methods.html).
 */
#ifndef ATREST_STORAGE_SHM_H
#define ATREST_STORAGE_SHM_H

struct shm_node;

struct shm_link {
    struct shm_node *node;
    unsigned shared; /* slots this connection holds shared (bit i: slot i) */
};

/* Region `region` (of `size` bytes) of path's WAL index in *pp; NULL when
 * it does not exist yet and extend is 0. New regions are zeroed. */
int shm_map(struct shm_link *l, const char *path, int region, int size, int extend,
            void volatile **pp);

/* SQLITE_SHM_LOCK or _UNLOCK, SQLITE_SHM_SHARED or _EXCLUSIVE, of slots
 * [offset, offset+n); SQLITE_BUSY when another connection holds a
 * conflicting lock. Never waits. */
int shm_lock(struct shm_link *l, int offset, int n, int flags);

void shm_barrier(void);

/* Detach l (releasing any lock it still holds); the node's memory goes
 * with its last connection. Harmless on a detached link. */
int shm_unmap(struct shm_link *l);

#ifdef ATREST_BENCH_PLAINTEXT
/* Benchmark twin: "atrest-plain", SQLite's unix VFS with this WAL index,
 * so the plain build differs from atrest's only by the encryption. */
#define SHM_PLAIN_VFS "atrest-plain"
int shm_plain_vfs_register(void);
#endif

#endif
