/*
 * datakeys.c — atrestd's data-key rotation: a thread that rotates every
 * store's DEKs on request and on a schedule, re-encrypts the pages still
 * under older versions (storage/rekey.h), throttled, and the admin
 * resource /atrest/datakeys (docs/kms.md, "Rotating data keys").
 *
 *   POST /atrest/datakeys  rotate now: every store (meta and each container)
 *                          gets a new DEK version in every layer, then the
 *                          re-encryption starts; answers 202 with the state
 *   GET  /atrest/datakeys  {"state", "rotatedAt", "rateMBps", "error",
 *                          "stores": [{"store", "pending", "pages",
 *                          "pagesVisited", "pagesRewritten", "layers":
 *                          [{"oldest", "current"}]}]}
 *
 * Signed like every request (resource type "atrest", link
 * "atrest/datakeys"); a read-only key may GET but not POST (auth.c).
 *
 * The same two operations answer on the data folder's control socket
 * (common/ctlsock.h: an abstract Unix socket named after the folder; only
 * the server's own user is served), one command line per connection —
 * "rotate-data-keys" or "status" — and one JSON line back. `atrest keys
 * rotate-data-keys --data-dir D` uses it, so an operator on the machine
 * needs no endpoint or master key.
 *
 * Invariants:
 *   1. One thread does all of it: rotations and re-encryptions never run
 *      twice at once, and a rotation requested during a re-encryption is
 *      made when the running pass is over (the next pass covers it).
 *   2. The work is found from the keyring, not from memory: a store with a
 *      DEK version older than its current one is pending (a rotation by
 *      request, by schedule, by encryption count, or one a crash
 *      interrupted), so a restart resumes it. The thread looks every
 *      CHECK_S seconds and at start.
 *   3. A container being dropped is let go between two batches: a drop
 *      waits at most one batch.
 *   4. Throttle: after each batch the thread sleeps so that the bytes it
 *      read stay under --reencrypt-mbps (0: no limit).
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/ctlsock.h"
#include "server/keymon.h"
#include "server/server.h"
#include "server/srv.h"
#include "storage/rekey.h"

#define CHECK_S 5    /* cheap: the keyring's versions of each store */
#define BATCH   1024 /* pages per batch: 4 MiB */

struct dk_store {
    char name[32];
    int pending;
    uint32_t oldest[2], current[2];
    struct store_rekey_progress prog;
};

struct datakeys {
    struct server *srv;
    struct catalog *cat;
    struct keyring *kr;
    int rotate_days, rate_mbps;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stopping;
    uint64_t requested, done_gen; /* rotation requests, and how many were made */
    /* state for GET, under mu */
    const char *state;
    char error[512];
    struct dk_store *stores;
    size_t nstores;
    /* the control socket */
    int sock;
    pthread_t ctl_thread;
    int ctl_on;
};

static void set_state(struct datakeys *d, const char *state, const char *error)
{
    pthread_mutex_lock(&d->mu);
    d->state = state;
    snprintf(d->error, sizeof d->error, "%s", error ? error : "");
    pthread_mutex_unlock(&d->mu);
}

static int stopping(struct datakeys *d)
{
    pthread_mutex_lock(&d->mu);
    int s = d->stopping;
    pthread_mutex_unlock(&d->mu);
    return s;
}

/* Sleep up to s seconds, or less when stopping or a rotation is asked for. */
static void nap(struct datakeys *d, double s, int wake_on_request)
{
    struct timespec ts = deadline_after(CLOCK_REALTIME, s);
    pthread_mutex_lock(&d->mu);
    while (!d->stopping && !(wake_on_request && d->requested > d->done_gen))
        if (pthread_cond_timedwait(&d->cv, &d->mu, &ts) != 0)
            break;
    pthread_mutex_unlock(&d->mu);
}

/* The stores to work on: meta first, then each container (held). */
struct work {
    struct store *meta;
    struct coll **colls;
    size_t n;
};

/* Store i of w (0: meta), or NULL once its container was let go. */
static struct store *work_store(struct work *w, size_t i, const char **name)
{
    if (i > 0 && !w->colls[i - 1])
        return NULL;
    *name = i == 0 ? "meta" : w->colls[i - 1]->store_name;
    return i == 0 ? w->meta : w->colls[i - 1]->st;
}

/* Let go of every container a drop waits for (invariant 3), but store
 * keep (a store index of w, 0: none) while it is still in use. */
static void work_release_dying(struct work *w, size_t keep)
{
    for (size_t i = 0; i < w->n; i++)
        if (w->colls[i] && i + 1 != keep && catalog_coll_dying(w->colls[i])) {
            catalog_coll_put(w->colls[i]);
            w->colls[i] = NULL;
        }
}

static void work_put(struct work *w)
{
    for (size_t i = 0; i < w->n; i++)
        catalog_coll_put(w->colls[i]);
    free(w->colls);
    w->colls = NULL;
    w->n = 0;
}

/* e's DEK versions per layer, from the keyring (under d->mu). */
static void entry_versions(struct datakeys *d, struct store *st, struct dk_store *e)
{
    e->pending = 0;
    for (int l = 0; l < keyring_layers(d->kr); l++)
        if (keyring_file_versions(d->kr, store_file_id(st), l, &e->oldest[l], &e->current[l]) ==
                0 &&
            e->oldest[l] < e->current[l])
            e->pending = 1;
}

/* The table's entry named name, looked for at hint first (same order as
 * the work list), or NULL (under d->mu). */
static struct dk_store *entry_named(struct datakeys *d, const char *name, size_t hint)
{
    if (hint < d->nstores && strcmp(d->stores[hint].name, name) == 0)
        return &d->stores[hint];
    for (size_t j = 0; j < d->nstores; j++)
        if (strcmp(d->stores[j].name, name) == 0)
            return &d->stores[j];
    return NULL;
}

/* Refresh the per-store table for GET: with rk, only store i's entry (its
 * versions and rk's progress; once per re-encrypted batch); without, the
 * whole table (versions from the keyring, progress carried over). */
static void publish(struct datakeys *d, struct work *w, size_t i, const struct store_rekey *rk)
{
    const char *name;
    struct store *st;
    if (rk && (st = work_store(w, i, &name)) != NULL) {
        pthread_mutex_lock(&d->mu);
        struct dk_store *e = entry_named(d, name, i);
        if (e) {
            entry_versions(d, st, e);
            store_rekey_progress(rk, &e->prog);
        }
        pthread_mutex_unlock(&d->mu);
        if (e)
            return;
    }
    size_t total = w->n + 1;
    struct dk_store *v = calloc(total, sizeof *v);
    if (!v)
        return;
    pthread_mutex_lock(&d->mu);
    size_t m = 0;
    for (size_t k = 0; k < total; k++) {
        if (!(st = work_store(w, k, &name)))
            continue;
        struct dk_store *e = &v[m++];
        snprintf(e->name, sizeof e->name, "%s", name);
        entry_versions(d, st, e);
        const struct dk_store *had = entry_named(d, name, m - 1);
        if (had)
            e->prog = had->prog;
        if (k == i && rk)
            store_rekey_progress(rk, &e->prog);
    }
    free(d->stores);
    d->stores = v;
    d->nstores = m;
    pthread_mutex_unlock(&d->mu);
}

static int hold_all(struct datakeys *d, struct work *w)
{
    w->meta = catalog_meta_store(d->cat);
    return catalog_hold_colls(d->cat, &w->colls, &w->n);
}

/* Rotate every store's DEKs (one new version per layer). */
static int rotate_all(struct datakeys *d, struct work *w)
{
    work_release_dying(w, 0);
    for (size_t i = 0; i <= w->n; i++) {
        const char *name;
        struct store *st = work_store(w, i, &name);
        if (!st)
            continue;
        int rc = store_rotate_keys(st);
        if (rc)
            return rc;
    }
    return catalog_set_dek_rotated_at(d->cat, (int64_t)time(NULL));
}

/* Before a store's older DEKs are destroyed (storage/rekey.h): the
 * continuous log must hold every commit sealed under them (the shipper
 * re-seals frames with the store's keys as it ships), and a container's
 * media keys, wrapped under keys derived from its DEKs, move to the
 * current versions. 1: not yet. */
struct retire_ctx {
    struct datakeys *d;
    struct coll *c; /* NULL: the meta store */
};

static int before_retire(void *arg, const uint32_t cur[2])
{
    struct retire_ctx *x = arg;
    if (backups_ship_drain(x->d->srv, 2000) != 0)
        return 1;
    return x->c ? attachments_rewrap_keys(x->c, cur) : 0;
}

/* Re-encrypt store i of w to the end (or until stopping / dropped). */
static int reencrypt(struct datakeys *d, struct work *w, size_t i)
{
    const char *name = "?";
    struct store *st = work_store(w, i, &name);
    char sname[32];
    snprintf(sname, sizeof sname, "%s", name); /* the container may go before the log line */
    struct store_rekey *rk;
    int rc = store_rekey_new(st, &rk), done = 0;
    struct retire_ctx rx = {d, i > 0 ? w->colls[i - 1] : NULL};
    if (!rc)
        store_rekey_set_before_retire(rk, before_retire, &rx);
    if (!rc && d->rate_mbps == 0)
        store_rekey_set_threads(rk, 2); /* unthrottled: as fast as the machine goes */
    double t0 = mono_seconds();
    for (;;) {
        work_release_dying(w, i);
        if (rc || done || stopping(d) || (i > 0 && catalog_coll_dying(w->colls[i - 1])))
            break;
        rc = store_rekey_step(rk, BATCH, &done);
        struct store_rekey_progress p;
        store_rekey_progress(rk, &p);
        publish(d, w, i, rk);
        if (!rc && !done && p.waiting_wal) {
            nap(d, 0.2, 0); /* older WAL frames: wait for checkpoints */
        } else if (!rc && !done && d->rate_mbps > 0) {
            /* in short naps, so that a drop or a stop need not wait */
            double want = (double)p.bytes / (d->rate_mbps * 1048576.0), ahead;
            while ((ahead = want - (mono_seconds() - t0)) > 0 && !stopping(d)) {
                work_release_dying(w, i);
                if (i > 0 && catalog_coll_dying(w->colls[i - 1]))
                    break;
                nap(d, ahead < 0.25 ? ahead : 0.25, 0);
            }
        }
    }
    if (rc)
        fprintf(stderr, "atrestd: re-encrypting store %s: %s\n", sname, at_error_detail());
    else if (done)
        fprintf(stderr,
                "atrestd: store %s re-encrypted under its new data keys; old keys destroyed\n",
                sname);
    store_rekey_free(rk); /* its connection goes before the store may */
    work_release_dying(w, 0);
    return rc;
}

static void run_round(struct datakeys *d, int rotate)
{
    struct work w = {0};
    int rc = hold_all(d, &w);
    if (!rc && rotate) {
        set_state(d, "rotating", NULL);
        rc = rotate_all(d, &w);
        if (rc)
            fprintf(stderr, "atrestd: data-key rotation failed: %s\n", at_error_detail());
        else
            fprintf(stderr, "atrestd: data keys rotated; new writes use them now\n");
    }
    publish(d, &w, SIZE_MAX, NULL);
    for (size_t i = 0; !rc && i <= w.n && !stopping(d); i++) {
        const char *name;
        work_release_dying(&w, 0);
        struct store *st = work_store(&w, i, &name);
        if (!st || !store_rekey_pending(st))
            continue;
        set_state(d, "reencrypting", NULL);
        rc = reencrypt(d, &w, i);
    }
    publish(d, &w, SIZE_MAX, NULL);
    set_state(d, rc ? "error" : "idle", rc ? at_error_detail() : NULL);
    work_put(&w);
}

static void *datakeys_main(void *p)
{
    struct datakeys *d = p;
    for (;;) {
        pthread_mutex_lock(&d->mu);
        uint64_t want = d->requested;
        int stop = d->stopping;
        pthread_mutex_unlock(&d->mu);
        if (stop)
            break;
        int64_t last = catalog_dek_rotated_at(d->cat);
        time_t now = time(NULL);
        if (last == 0 && d->rotate_days > 0) {
            /* The schedule counts from the first start that knows it. */
            if (catalog_set_dek_rotated_at(d->cat, (int64_t)now) == 0)
                last = now;
        }
        int due = d->rotate_days > 0 && last > 0 && now - last >= (int64_t)d->rotate_days * 86400;
        int rotate = want > d->done_gen || due;
        run_round(d, rotate);
        pthread_mutex_lock(&d->mu);
        if (rotate)
            d->done_gen = want;
        pthread_cond_broadcast(&d->cv);
        pthread_mutex_unlock(&d->mu);
        nap(d, CHECK_S, 1);
    }
    return NULL;
}

static json_t *status_json(struct datakeys *d);

static void request_rotation(struct datakeys *d)
{
    pthread_mutex_lock(&d->mu);
    d->requested++;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

/* One connection: a command line in, a JSON line out. */
static void ctl_serve(struct datakeys *d, int fd)
{
    char line[128];
    size_t n = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (n < sizeof line - 1 && poll(&p, 1, 2000) == 1) {
        ssize_t r = read(fd, line + n, sizeof line - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        if (memchr(line, '\n', n))
            break;
    }
    line[n] = 0;
    line[strcspn(line, "\r\n")] = 0;
    json_t *o;
    if (strcmp(line, "rotate-data-keys") == 0) {
        request_rotation(d);
        o = status_json(d);
    } else if (strcmp(line, "status") == 0) {
        o = status_json(d);
    } else {
        o = json_pack("{s:s}", "error", "unknown command (rotate-data-keys, status)");
    }
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (text) {
        size_t len = strlen(text), off = 0;
        while (off < len) {
            ssize_t w = send(fd, text + off, len - off, MSG_NOSIGNAL);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        if (off == len && send(fd, "\n", 1, MSG_NOSIGNAL) != 1)
            off = 0;
        free(text);
    }
}

static void *ctl_main(void *p)
{
    struct datakeys *d = p;
    while (!stopping(d)) {
        struct pollfd pf = {.fd = d->sock, .events = POLLIN};
        if (poll(&pf, 1, 250) != 1)
            continue;
        int fd = accept4(d->sock, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        /* an abstract socket has no permissions: serve our own user only */
        struct ucred cr;
        socklen_t cl = sizeof cr;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0 && cr.uid == geteuid())
            ctl_serve(d, fd);
        close(fd);
    }
    return NULL;
}

/* Listen on the folder's control socket (common/ctlsock.h); without it
 * (an error) the HTTP resource still works. */
static void ctl_start(struct datakeys *d, const char *data_dir)
{
    struct sockaddr_un a;
    socklen_t alen;
    d->sock = -1;
    int e = ctlsock_addr(data_dir, &a, &alen);
    int fd = e ? -1 : socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, alen) != 0 || listen(fd, 8) != 0) {
        fprintf(stderr, "atrestd: no control socket (%s); /atrest/datakeys still answers\n",
                strerror(e ? e : errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    d->sock = fd;
    d->ctl_on = pthread_create(&d->ctl_thread, NULL, ctl_main, d) == 0;
    if (!d->ctl_on) {
        close(fd);
        d->sock = -1;
    }
}

int datakeys_start(struct server *srv, struct store_env *env, const struct datakeys_settings *s)
{
    struct datakeys *d = calloc(1, sizeof *d);
    if (!d)
        return AT_ENOMEM;
    d->srv = srv;
    d->cat = srv->cat;
    d->kr = store_env_keyring(env);
    d->rotate_days = s->rotate_days;
    d->rate_mbps = s->rate_mbps;
    d->state = "idle";
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 512 * 1024);
    int rc = pthread_create(&d->thread, &attr, datakeys_main, d);
    pthread_attr_destroy(&attr);
    if (rc) {
        pthread_mutex_destroy(&d->mu);
        pthread_cond_destroy(&d->cv);
        free(d);
        return at_error_set(rc, "cannot start the data-key thread: %s", strerror(rc));
    }
    srv->datakeys = d;
    ctl_start(d, store_env_data_dir(env));
    return 0;
}

void datakeys_stop(struct server *srv)
{
    struct datakeys *d = srv->datakeys;
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    d->stopping = 1;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->thread, NULL);
    if (d->ctl_on) {
        pthread_join(d->ctl_thread, NULL);
        close(d->sock);
    }
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
    free(d->stores);
    free(d);
    srv->datakeys = NULL;
}

/* ---- /atrest/datakeys ---- */

static json_t *status_json(struct datakeys *d)
{
    pthread_mutex_lock(&d->mu);
    json_t *stores = json_array();
    int layers = keyring_layers(d->kr);
    for (size_t i = 0; i < d->nstores; i++) {
        const struct dk_store *s = &d->stores[i];
        json_t *ls = json_array();
        for (int l = 0; l < layers; l++)
            json_array_append_new(ls, json_pack("{s:I,s:I}", "oldest", (json_int_t)s->oldest[l],
                                                "current", (json_int_t)s->current[l]));
        json_array_append_new(stores, json_pack("{s:s,s:b,s:I,s:I,s:I,s:I,s:o}", "store", s->name,
                                                "pending", s->pending, "pages",
                                                (json_int_t)s->prog.pages, "pagesVisited",
                                                (json_int_t)s->prog.visited, "pagesRewritten",
                                                (json_int_t)s->prog.rewritten, "versionsDestroyed",
                                                (json_int_t)s->prog.destroyed, "layers", ls));
    }
    json_t *o = json_pack("{s:s,s:I,s:i,s:i,s:I,s:I,s:o}", "state", d->state, "rotatedAt",
                          (json_int_t)catalog_dek_rotated_at(d->cat), "rateMBps", d->rate_mbps,
                          "rotationDays", d->rotate_days, "requested", (json_int_t)d->requested,
                          "requestsDone", (json_int_t)d->done_gen, "stores", stores);
    if (d->error[0])
        json_object_set_new(o, "error", json_string(d->error));
    pthread_mutex_unlock(&d->mu);
    return o;
}

void datakeys_handle(struct req *r)
{
    struct datakeys *d = r->srv->datakeys;
    if (!d) {
        srv_error(r, 503, 0, "Data-key rotation is not running.");
        return;
    }
    if (r->verb == SRV_POST) {
        /* Refused while the customer-managed key is unusable, like data. */
        if (srv_refuse_if_keys_unusable(r))
            return;
        request_rotation(d);
        json_t *o = status_json(d);
        resp_json(r, 202, o);
        json_decref(o);
    } else if (r->verb == SRV_GET) {
        json_t *o = status_json(d);
        resp_json(r, 200, o);
        json_decref(o);
    } else {
        srv_error(r, 405, 0, "The requested verb is not supported.");
    }
}
