/*
 * router.c — authenticate, then hand the request to its resource's file.
 *
 *   /                                   account.c
 *   /dbs[/{db}]                         databases.c
 *   /dbs/{db}/colls[/{coll}]            containers.c
 *   /dbs/{db}/colls/{coll}/docs[/{id}]  documents.c (query.c, batch.c, patch.c)
 *   /dbs/{db}/colls/{coll}/pkranges     pkranges.c
 *   /dbs/{db}/colls/{coll}/operations/partitionkeydelete
 *                                       containers.c
 *   /dbs/{db}/colls/{coll}/docs/{id}/attachments[/{id}]
 *                                       attachments.c
 *   /dbs/{db}/colls/{coll}/conflicts[/{id}]
 *                                       containers.c (always empty)
 *   /media/{mediaId}                    attachments.c
 *   /offers[/{id}]                      offers.c
 */
#include <string.h>

#include "server/keymon.h"
#include "server/srv.h"

static const char *log_type(struct req *r)
{
    static const char *const known[] = {"dbs",    "colls",  "docs",        "pkranges",
                                        "users",  "sprocs", "udfs",        "triggers",
                                        "offers", "media",  "attachments", "conflicts"};
    if (r->nseg == 0)
        return "account";
    const char *t = r->nseg % 2 ? r->segs[r->nseg - 1] : r->segs[r->nseg - 2];
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (strcmp(t, known[i]) == 0)
            return known[i];
    return "other";
}

void router_dispatch(struct req *r)
{
    r->rtype = log_type(r);
    if (r->verb == SRV_OTHER) {
        srv_error(r, 405, 0, "The requested verb is not supported.");
        return;
    }
    if (auth_check(r) != 0)
        return;
    if (r->nseg == 0) {
        if (r->verb == SRV_GET || r->verb == SRV_HEAD)
            account_get(r);
        else
            srv_error(r, 405, 0, "The requested verb is not supported.");
        return;
    }
    if (strcmp(r->segs[0], "atrest") == 0) { /* admin resources */
        if (r->nseg == 2 && strcmp(r->segs[1], "datakeys") == 0)
            datakeys_handle(r); /* datakeys.c */
        else
            backups_handle(r); /* backups.c */
        return;
    }
    if (strcmp(r->segs[0], "dbs") != 0 && strcmp(r->segs[0], "media") != 0 &&
        strcmp(r->segs[0], "offers") != 0)
        goto notfound;
    /* Every data request needs the account's keys (keymon.h). */
    if (srv_refuse_if_keys_unusable(r))
        return;
    if (strcmp(r->segs[0], "offers") == 0) {
        offers_handle(r);
        return;
    }
    if (strcmp(r->segs[0], "media") == 0) {
        attachments_media_handle(r);
        return;
    }
    if (r->nseg <= 2) {
        databases_handle(r);
        return;
    }
    if (strcmp(r->segs[2], "users") == 0) {
        srv_error(r, 400, 0,
                  "atrest does not support users, permissions and resource tokens: use the "
                  "account's master or read-only keys.");
        return;
    }
    if (strcmp(r->segs[2], "colls") != 0)
        goto notfound;
    if (r->nseg <= 4) {
        containers_handle(r);
        return;
    }
    if (strcmp(r->segs[4], "docs") == 0 && r->nseg <= 6) {
        documents_handle(r);
        return;
    }
    if (strcmp(r->segs[4], "docs") == 0 && r->nseg >= 7 && strcmp(r->segs[6], "attachments") == 0) {
        attachments_handle(r);
        return;
    }
    if (strcmp(r->segs[4], "operations") == 0 && r->nseg == 6 &&
        strcmp(r->segs[5], "partitionkeydelete") == 0) {
        containers_pk_delete(r);
        return;
    }
    if (strcmp(r->segs[4], "conflicts") == 0 && r->nseg <= 6) {
        conflicts_handle(r); /* containers.c */
        return;
    }
    if (r->nseg <= 6 && (strcmp(r->segs[4], "sprocs") == 0 || strcmp(r->segs[4], "udfs") == 0 ||
                         strcmp(r->segs[4], "triggers") == 0)) {
        srv_error(r, 400, 0,
                  "atrest does not run server-side JavaScript: stored procedures, triggers and "
                  "user-defined functions are not supported.");
        return;
    }
    if (strcmp(r->segs[4], "pkranges") == 0 && r->nseg <= 6) {
        pkranges_handle(r);
        return;
    }
notfound:
    srv_error(r, 404, 0, "The requested resource does not exist.");
}
