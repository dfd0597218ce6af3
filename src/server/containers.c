/*
 * containers.c — /dbs/{db}/colls and /dbs/{db}/colls/{coll}: create, read,
 * list, replace (indexing policy, default TTL), delete.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/srv.h"

void containers_handle(struct req *r)
{
    struct catalog *cat = r->srv->cat;
    const char *db = r->segs[1];
    if (r->nseg == 3) {
        if (req_is_query(r)) {
            char rid[16] = "";
            json_t *list = catalog_coll_list(cat, db, rid, sizeof rid);
            if (list)
                query_list_handle(r, rid, "DocumentCollections", list);
            else
                srv_error(r, 404, 1003, "Owner resource does not exist.");
            json_decref(list);
        } else if (r->verb == SRV_POST) {
            json_t *b = req_body_object(r);
            if (b)
                catalog_coll_create(cat, r, db, b);
            json_decref(b);
        } else if (r->verb == SRV_GET || r->verb == SRV_HEAD) {
            char rid[16] = "";
            json_t *list = catalog_coll_list(cat, db, rid, sizeof rid);
            if (!list) {
                srv_error(r, 404, 1003, "Owner resource does not exist.");
                return;
            }
            resp_list(r, rid, "DocumentCollections", list);
            json_decref(list);
        } else {
            srv_error(r, 405, 0, "The requested verb is not supported.");
        }
        return;
    }
    const char *id = r->segs[3];
    if (r->verb == SRV_GET || r->verb == SRV_HEAD) {
        struct coll *c = catalog_coll_get(cat, db, id);
        if (!c) {
            srv_error(r, 404, 0, "Resource Not Found.");
            return;
        }
        json_t *def = catalog_coll_def(c); /* def may be swapped by a replace */
        int progress = ix_progress(c);
        catalog_coll_put(c);
        resp_json(r, 200, def);
        resp_header(r, "etag", "%s", json_string_value(json_object_get(def, "_etag")));
        resp_header(r, "x-ms-resource-quota",
                    "documentSize=10240;documentsSize=10485760;collectionSize=10485760;");
        resp_header(r, "x-ms-resource-usage", "documentSize=0;documentsSize=0;collectionSize=0;");
        resp_header(r, "x-ms-documentdb-collection-index-transformation-progress", "%d", progress);
        json_decref(def);
    } else if (r->verb == SRV_PUT) {
        json_t *b = req_body_object(r);
        if (b)
            catalog_coll_replace(cat, r, db, id, b);
        json_decref(b);
    } else if (r->verb == SRV_DELETE) {
        catalog_coll_delete(cat, r, db, id);
    } else {
        srv_error(r, 405, 0, "The requested verb is not supported.");
    }
}

/* POST .../operations/partitionkeydelete (the JS SDK's
 * deleteAllItemsForPartitionKey): every document of the partition key in
 * x-ms-documentdb-partitionkey is deleted, in batches that other writes
 * interleave with, before the answer (Cosmos runs it in the background:
 * here a 200 means they are gone). */
void containers_pk_delete(struct req *r)
{
    if (r->verb != SRV_POST) {
        srv_error(r, 405, 0, "The requested verb is not supported.");
        return;
    }
    struct coll *c = catalog_coll_get(r->srv->cat, r->segs[1], r->segs[3]);
    if (!c) {
        srv_error(r, 404, 0, "Resource Not Found.");
        return;
    }
    json_t *val = NULL;
    char *canon = NULL;
    if (req_pk(r, c, &val, &canon, 1) == 0) {
        long n = docs_delete_where(
            c, "SELECT pk, id FROM docs WHERE pk = ?1 AND seq <= ?3 LIMIT ?2", canon, 0);
        if (n < 0)
            srv_error(r, 500, 0,
                      "Deleting the documents of the partition key failed part way; retry the "
                      "request.");
        else
            resp_body(r, 200, NULL, 0);
    }
    json_decref(val);
    free(canon);
    catalog_coll_put(c);
}

/* .../conflicts: atrest has one write region, so there are never any
 * conflicts; the feed is empty and every conflict is 404. */
void conflicts_handle(struct req *r)
{
    struct coll *c = catalog_coll_get(r->srv->cat, r->segs[1], r->segs[3]);
    if (!c) {
        srv_error(r, 404, 0, "Resource Not Found.");
        return;
    }
    char rid[24];
    snprintf(rid, sizeof rid, "%s", c->rid);
    catalog_coll_put(c);
    if (r->nseg == 6)
        srv_error(r, 404, 0, "Resource Not Found.");
    else if (r->verb == SRV_GET || r->verb == SRV_HEAD || req_is_query(r)) {
        json_t *none = json_array();
        resp_list(r, rid, "Conflicts", none);
        json_decref(none);
    } else
        srv_error(r, 405, 0, "The requested verb is not supported.");
}
