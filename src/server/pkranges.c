/*
 * pkranges.c — GET /dbs/{db}/colls/{coll}/pkranges: one range "0" covering
 * the whole hash space ["", "FF").
 */
#include <stdio.h>
#include <time.h>

#include "server/srv.h"

void pkranges_handle(struct req *r)
{
    if (r->verb != SRV_GET && r->verb != SRV_HEAD) {
        srv_error(r, 405, 0, "The requested verb is not supported.");
        return;
    }
    struct coll *c = catalog_coll_get(r->srv->cat, r->segs[1], r->segs[3]);
    if (!c) {
        srv_error(r, 404, 1003, "Owner resource does not exist.");
        return;
    }
    if (r->nseg == 6 && r->segs[5][0] != '0') {
        catalog_coll_put(c);
        srv_error(r, 404, 0, "Resource Not Found.");
        return;
    }
    char self[128], rid[48];
    snprintf(rid, sizeof rid, "%sAgAAAAAAAA==", c->rid);
    snprintf(self, sizeof self, "dbs/%s/colls/%s/pkranges/%s/", c->db_rid, c->rid, rid);
    json_t *range =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:i,s:s,s:f,s:s,s:[],s:I,s:i}", "_rid", rid, "id", "0",
                  "_etag", "\"00000000-0000-0000-0000-000000000000\"", "minInclusive", "",
                  "maxExclusive", "FF", "ridPrefix", 0, "_self", self, "throughputFraction", 1.0,
                  "status", "online", "parents", "_ts", (json_int_t)time(NULL), "_lsn", 1);
    json_t *o =
        json_pack("{s:s,s:[o],s:i}", "_rid", c->rid, "PartitionKeyRanges", range, "_count", 1);
    catalog_coll_put(c);
    if (r->nseg == 6) {
        resp_json(r, 200, json_array_get(json_object_get(o, "PartitionKeyRanges"), 0));
    } else {
        resp_json(r, 200, o);
        resp_header(r, "x-ms-item-count", "1");
    }
    resp_header(r, "etag", "\"00000000-0000-0000-0000-000000000000\"");
    json_decref(o);
}
