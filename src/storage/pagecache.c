/*
 * pagecache.c — decrypted main-file pages, shared by every connection
 * (see pagecache.h for the invariants).
 *
 * 16 shards by hash of (file, page). A shard is a fixed table of slots,
 * chained from a bucket array, with a CLOCK hand for eviction: a slot read
 * since the hand last passed gets another round. A shard's page buffers are
 * one anonymous mapping (MADV_DONTDUMP), slot i at i * PAGE_SIZE, which the
 * kernel backs only once a slot is first filled: memory follows use, with
 * no allocator overhead per page.
 */
#include "storage/pagecache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "crypto/secmem.h"
#include "storage/page.h"

#define SHARDS 16
#define NIL    (-1)

struct slot {
    uint64_t file;
    uint32_t pgno;
    int32_t next; /* bucket chain; set when the slot is linked (calloc's
                     zeroed slots are left untouched until used) */
    uint8_t used; /* holds a page */
    uint8_t ref;  /* read since the hand passed */
};

struct shard {
    pthread_mutex_t mu;
    struct slot *slots;
    uint8_t *pages; /* nslots * PAGE_SIZE, mapped */
    int32_t *buckets;
    size_t nslots, nbuckets, hand, used;
    uint64_t epoch;
};

static struct shard shards[SHARDS];
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t config_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_size_t budget_pages;
static atomic_uint_fast64_t st_hits, st_misses;

static void init_shards(void)
{
    for (int i = 0; i < SHARDS; i++)
        pthread_mutex_init(&shards[i].mu, NULL);
}

static uint64_t hash(uint64_t file, uint32_t pgno)
{
    uint64_t h = (file ^ ((uint64_t)pgno << 32 | pgno)) * 0x9E3779B97F4A7C15ULL;
    return h ^ (h >> 29);
}

static struct shard *shard_of(uint64_t h)
{
    return &shards[h % SHARDS];
}

static size_t bucket_of(const struct shard *s, uint64_t h)
{
    return (size_t)(h / SHARDS) & (s->nbuckets - 1);
}

/* Unlink slot i from its chain and wipe its page. Under s->mu. */
static void evict(struct shard *s, int32_t i)
{
    struct slot *sl = &s->slots[i];
    int32_t *p = &s->buckets[bucket_of(s, hash(sl->file, sl->pgno))];
    while (*p != i)
        p = &s->slots[*p].next;
    *p = sl->next;
    sl->next = NIL;
    sl->used = 0;
    sl->ref = 0;
    secmem_wipe(s->pages + (size_t)i * PAGE_SIZE, PAGE_SIZE);
    s->used--;
}

/* Empty a shard and give its memory back (the kernel zeroes it). */
static void clear_shard(struct shard *s)
{
    for (size_t i = 0; i < s->nslots; i++)
        if (s->slots[i].used)
            evict(s, (int32_t)i);
    if (s->pages)
        madvise(s->pages, s->nslots * PAGE_SIZE, MADV_DONTNEED);
    s->hand = 0;
}

/* Invariant 2: a newer epoch empties the shard first. Under s->mu. */
static void catch_up(struct shard *s, uint64_t epoch)
{
    if (epoch > s->epoch) {
        clear_shard(s);
        s->epoch = epoch;
    }
}

static int32_t find(struct shard *s, uint64_t h, uint64_t file, uint32_t pgno)
{
    if (!s->nslots)
        return NIL;
    int32_t i = s->buckets[bucket_of(s, h)];
    while (i != NIL && (s->slots[i].file != file || s->slots[i].pgno != pgno))
        i = s->slots[i].next;
    return i;
}

static void free_shard(struct shard *s)
{
    if (s->pages && s->slots && s->buckets)
        clear_shard(s); /* wipes what is held; the rest was never touched */
    if (s->pages)
        munmap(s->pages, s->nslots * PAGE_SIZE);
    s->pages = NULL;
    free(s->slots);
    free(s->buckets);
    s->slots = NULL;
    s->buckets = NULL;
    s->nslots = s->nbuckets = s->hand = s->used = 0;
}

int pagecache_configure(size_t bytes)
{
    pthread_once(&init_once, init_shards);
    pthread_mutex_lock(&config_mu);
    size_t per = bytes / PAGE_SIZE / SHARDS;
    int rc = 0;
    for (int k = 0; k < SHARDS; k++) {
        struct shard *s = &shards[k];
        pthread_mutex_lock(&s->mu);
        free_shard(s);
        if (per && !rc) {
            size_t nb = 1;
            while (nb < per)
                nb <<= 1;
            s->slots = calloc(per, sizeof *s->slots);
            s->buckets = malloc(nb * sizeof *s->buckets);
            void *m = mmap(NULL, per * PAGE_SIZE, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            s->pages = m == MAP_FAILED ? NULL : m;
            if (s->pages)
                madvise(s->pages, per * PAGE_SIZE, MADV_DONTDUMP);
            s->nslots = per; /* for free_shard's munmap */
            if (!s->slots || !s->buckets || !s->pages) {
                free_shard(s);
                rc = AT_ENOMEM;
            } else {
                for (size_t i = 0; i < nb; i++)
                    s->buckets[i] = NIL;
                s->nslots = per;
                s->nbuckets = nb;
            }
        }
        pthread_mutex_unlock(&s->mu);
    }
    if (rc) /* all or nothing */
        for (int k = 0; k < SHARDS; k++) {
            pthread_mutex_lock(&shards[k].mu);
            free_shard(&shards[k]);
            pthread_mutex_unlock(&shards[k].mu);
        }
    atomic_store(&budget_pages, rc ? 0 : per * SHARDS);
    pthread_mutex_unlock(&config_mu);
    return rc;
}

int pagecache_get(uint64_t file, uint32_t pgno, uint64_t epoch, uint8_t *dst)
{
    if (!atomic_load_explicit(&budget_pages, memory_order_relaxed))
        return 0;
    uint64_t h = hash(file, pgno);
    struct shard *s = shard_of(h);
    pthread_mutex_lock(&s->mu);
    catch_up(s, epoch);
    int32_t i = find(s, h, file, pgno);
    if (i != NIL) {
        memcpy(dst, s->pages + (size_t)i * PAGE_SIZE, PAGE_SIZE);
        s->slots[i].ref = 1;
    }
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_add_explicit(i != NIL ? &st_hits : &st_misses, 1, memory_order_relaxed);
    return i != NIL;
}

/* A slot to fill: a free one, else the first the CLOCK hand finds unread
 * since its last pass (two sweeps clear every mark). Under s->mu. */
static int32_t take_slot(struct shard *s)
{
    for (size_t n = 0; n < 2 * s->nslots + 1; n++) {
        int32_t i = (int32_t)s->hand;
        struct slot *sl = &s->slots[i];
        s->hand = (s->hand + 1) % s->nslots;
        if (sl->used && sl->ref) {
            sl->ref = 0;
            continue;
        }
        if (sl->used)
            evict(s, i);
        return i;
    }
    return NIL;
}

void pagecache_put(uint64_t file, uint32_t pgno, uint64_t epoch, const uint8_t *src)
{
    if (!atomic_load_explicit(&budget_pages, memory_order_relaxed))
        return;
    uint64_t h = hash(file, pgno);
    struct shard *s = shard_of(h);
    pthread_mutex_lock(&s->mu);
    catch_up(s, epoch);
    if (s->nslots && epoch == s->epoch) {
        int32_t i = find(s, h, file, pgno);
        if (i == NIL && (i = take_slot(s)) != NIL) {
            struct slot *sl = &s->slots[i];
            sl->file = file;
            sl->pgno = pgno;
            sl->used = 1;
            int32_t *b = &s->buckets[bucket_of(s, h)];
            sl->next = *b;
            *b = i;
            s->used++;
        }
        if (i != NIL) {
            memcpy(s->pages + (size_t)i * PAGE_SIZE, src, PAGE_SIZE);
            s->slots[i].ref = 0; /* earns its second round by being read */
        }
    }
    pthread_mutex_unlock(&s->mu);
}

void pagecache_drop(uint64_t file, uint32_t pgno)
{
    if (!atomic_load_explicit(&budget_pages, memory_order_relaxed))
        return;
    uint64_t h = hash(file, pgno);
    struct shard *s = shard_of(h);
    pthread_mutex_lock(&s->mu);
    int32_t i = find(s, h, file, pgno);
    if (i != NIL)
        evict(s, i);
    pthread_mutex_unlock(&s->mu);
}

static void drop_where(uint64_t file, uint32_t first_pgno)
{
    if (!atomic_load_explicit(&budget_pages, memory_order_relaxed))
        return;
    for (int k = 0; k < SHARDS; k++) {
        struct shard *s = &shards[k];
        pthread_mutex_lock(&s->mu);
        for (size_t i = 0; i < s->nslots; i++)
            if (s->slots[i].used && s->slots[i].file == file && s->slots[i].pgno >= first_pgno)
                evict(s, (int32_t)i);
        pthread_mutex_unlock(&s->mu);
    }
}

void pagecache_drop_from(uint64_t file, uint32_t first_pgno)
{
    drop_where(file, first_pgno);
}

void pagecache_drop_file(uint64_t file)
{
    drop_where(file, 0);
}

void pagecache_clear(void)
{
    if (!atomic_load(&budget_pages))
        return;
    for (int k = 0; k < SHARDS; k++) {
        pthread_mutex_lock(&shards[k].mu);
        clear_shard(&shards[k]);
        pthread_mutex_unlock(&shards[k].mu);
    }
}

void pagecache_stats_get(struct pagecache_stats *out)
{
    memset(out, 0, sizeof *out);
    out->budget_pages = atomic_load(&budget_pages);
    pthread_once(&init_once, init_shards);
    for (int k = 0; k < SHARDS; k++) {
        pthread_mutex_lock(&shards[k].mu);
        out->pages += shards[k].used;
        pthread_mutex_unlock(&shards[k].mu);
    }
    out->hits = atomic_load(&st_hits);
    out->misses = atomic_load(&st_misses);
}
