/*
 * databases.c — /dbs and /dbs/{db}: create, read, list, delete.
 */
#include <string.h>

#include "server/srv.h"

json_t *req_body_object(struct req *r)
{
    const char *why = NULL;
    json_t *b = doc_parse(r->body, r->body_len, &why);
    if (!json_is_object(b)) {
        json_decref(b);
        srv_error(r, 400, 0, "The request payload is invalid: %s.",
                  why && !r->body ? "missing" : "not a JSON object");
        return NULL;
    }
    return b;
}

void databases_handle(struct req *r)
{
    struct catalog *cat = r->srv->cat;
    if (r->nseg == 1) {
        if (req_is_query(r)) {
            json_t *list = catalog_db_list(cat);
            if (list)
                query_list_handle(r, "", "Databases", list);
            else
                srv_error(r, 500, 0, "Out of memory.");
            json_decref(list);
        } else if (r->verb == SRV_POST) {
            json_t *b = req_body_object(r);
            if (b)
                catalog_db_create(cat, r, b);
            json_decref(b);
        } else if (r->verb == SRV_GET || r->verb == SRV_HEAD) {
            json_t *list = catalog_db_list(cat);
            resp_list(r, "", "Databases", list);
            json_decref(list);
        } else {
            srv_error(r, 405, 0, "The requested verb is not supported.");
        }
        return;
    }
    if (r->verb == SRV_GET || r->verb == SRV_HEAD) {
        json_t *d = catalog_db_get(cat, r->segs[1]);
        if (!d) {
            srv_error(r, 404, 0, "Resource Not Found.");
            return;
        }
        resp_json(r, 200, d);
        resp_header(r, "etag", "%s", json_string_value(json_object_get(d, "_etag")));
        json_decref(d);
    } else if (r->verb == SRV_DELETE) {
        catalog_db_delete(cat, r, r->segs[1]);
    } else {
        srv_error(r, 405, 0, "The requested verb is not supported.");
    }
}
