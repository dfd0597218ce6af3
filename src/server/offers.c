/*
 * offers.c — /offers and /offers/{id}: the throughput offers of databases
 * (shared throughput) and containers.
 *
 * atrest does not meter or limit request units; an offer records what the
 * application provisioned, so that the SDKs' throughput calls
 * (createIfNotExists with throughput or maxThroughput, readOffer,
 * offers.readAll/query, offer.replace; ReadOffers/QueryOffers/ReplaceOffer
 * in Python) behave as on Cosmos. A container gets an offer of its own
 * when it is created with a throughput, or with none in a database without
 * shared throughput (400 RU/s, as the service and the emulator do); a
 * database gets one only when created with a throughput. Offers live in
 * the account metadata (catalog.c: table offers, written in the same
 * transaction as their database or container) and go with it.
 *
 * Offer id: "d" or "c" and the database or container number in 11 hex
 * digits, 12 characters, so the SDKs can sign it as a resource id.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/srv.h"

#define RUS_MAX 1000000

void offer_id(char out[16], int is_coll, uint32_t num)
{
    snprintf(out, 16, "%c%011x", is_coll ? 'c' : 'd', (unsigned)num);
}

/* A JSON number that is an integer, or -1. */
static long long whole(const json_t *v)
{
    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d >= 0 && d <= 1e15 && d == (double)(long long)d)
            return (long long)d;
    }
    return -1;
}

static json_t *manual(long long rus, char *msg, size_t n)
{
    if (rus < OFFER_DEFAULT_RUS || rus > RUS_MAX || rus % 100 != 0) {
        snprintf(msg, n,
                 "The offer throughput provided is not valid: it must be a whole number of "
                 "RU/s from %d to %d in steps of 100.",
                 OFFER_DEFAULT_RUS, RUS_MAX);
        return NULL;
    }
    return json_pack("{s:I,s:b}", "offerThroughput", (json_int_t)rus,
                     "offerIsRUPerMinuteThroughputEnabled", 0);
}

static json_t *autoscale(long long max, char *msg, size_t n)
{
    if (max < 1000 || max > RUS_MAX || max % 1000 != 0) {
        snprintf(msg, n,
                 "The autoscale maximum throughput provided is not valid: it must be a whole "
                 "number of RU/s from 1000 to %d in steps of 1000.",
                 RUS_MAX);
        return NULL;
    }
    return json_pack("{s:I,s:{s:I}}", "offerThroughput", (json_int_t)(max / 10),
                     "offerAutopilotSettings", "maxThroughput", (json_int_t)max);
}

json_t *offer_default_content(void)
{
    char msg[200];
    return manual(OFFER_DEFAULT_RUS, msg, sizeof msg);
}

int offer_content_from_headers(struct req *r, json_t **content)
{
    *content = NULL;
    const char *fixed = req_header(r, "x-ms-offer-throughput");
    const char *aut = req_header(r, "x-ms-cosmos-offer-autopilot-settings");
    if (fixed && !*fixed)
        fixed = NULL;
    if (aut && !*aut)
        aut = NULL;
    if (!fixed && !aut)
        return 0;
    if (fixed && aut)
        return srv_error(r, 400, 0,
                         "Specify either x-ms-offer-throughput or "
                         "x-ms-cosmos-offer-autopilot-settings, not both.");
    char msg[200];
    if (fixed) {
        char *end;
        long long v = strtoll(fixed, &end, 10);
        *content = *end ? NULL : manual(v, msg, sizeof msg);
        if (*end)
            snprintf(msg, sizeof msg, "The offer throughput provided is not a number.");
    } else {
        json_t *o = doc_parse(aut, strlen(aut), NULL);
        long long max = whole(json_object_get(o, "maxThroughput"));
        json_decref(o);
        *content = autoscale(max, msg, sizeof msg);
    }
    return *content ? 0 : srv_error(r, 400, 0, "%s", msg);
}

json_t *offer_make(const char *id, const char *res_self, const char *res_rid, const json_t *content,
                   long long ts)
{
    char self[32], etag[48];
    snprintf(self, sizeof self, "offers/%s/", id);
    srv_new_etag(etag);
    return json_pack("{s:s,s:s,s:s,s:s,s:O,s:s,s:s,s:s,s:s,s:I}", "resource", res_self, "offerType",
                     "Invalid", "offerResourceId", res_rid, "offerVersion", "V2", "content",
                     (json_t *)content, "id", id, "_rid", id, "_self", self, "_etag", etag, "_ts",
                     (json_int_t)ts);
}

json_t *offer_replace_content(const json_t *body, const json_t *cur, char *msg, size_t n)
{
    const json_t *c = json_object_get(body, "content");
    const json_t *rid = json_object_get(body, "offerResourceId");
    if (rid && !json_equal((json_t *)rid, json_object_get(cur, "offerResourceId"))) {
        snprintf(msg, n, "The offerResourceId of an offer cannot be changed.");
        return NULL;
    }
    if (!json_is_object(c)) {
        snprintf(msg, n, "The offer must have a 'content' object.");
        return NULL;
    }
    const json_t *a = json_object_get(c, "offerAutopilotSettings");
    if (json_is_object(a))
        return autoscale(whole(json_object_get(a, "maxThroughput")), msg, n);
    return manual(whole(json_object_get(c, "offerThroughput")), msg, n);
}

static json_t *find(json_t *list, const char *id)
{
    size_t i;
    json_t *o;
    json_array_foreach(list, i, o)
    {
        const char *oid = json_string_value(json_object_get(o, "id"));
        if (oid && strcmp(oid, id) == 0)
            return o;
    }
    return NULL;
}

void offers_handle(struct req *r)
{
    struct catalog *cat = r->srv->cat;
    if (r->nseg == 1) {
        json_t *list = catalog_offer_list(cat);
        if (!list)
            srv_error(r, 500, 0, "Out of memory.");
        else if (req_is_query(r))
            query_list_handle(r, "", "Offers", list);
        else if (r->verb == SRV_GET || r->verb == SRV_HEAD)
            resp_list(r, "", "Offers", list);
        else
            srv_error(r, 405, 0, "The requested verb is not supported.");
        json_decref(list);
        return;
    }
    if (r->nseg != 2) {
        srv_error(r, 404, 0, "The requested resource does not exist.");
        return;
    }
    if (r->verb == SRV_PUT) {
        json_t *b = req_body_object(r);
        if (b)
            catalog_offer_replace(cat, r, r->segs[1], b);
        json_decref(b);
        return;
    }
    if (r->verb != SRV_GET && r->verb != SRV_HEAD) {
        srv_error(r, 405, 0, "The requested verb is not supported.");
        return;
    }
    json_t *list = catalog_offer_list(cat);
    json_t *o = list ? find(list, r->segs[1]) : NULL;
    if (!o) {
        srv_error(r, 404, 0, "Resource Not Found.");
    } else {
        resp_json(r, 200, o);
        resp_header(r, "etag", "%s", json_string_value(json_object_get(o, "_etag")));
    }
    json_decref(list);
}
