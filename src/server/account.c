/*
 * account.c — GET /: the database account.
 *
 * The SDKs take writableLocations/readableLocations[].databaseAccountEndpoint
 * as the base URL of every later call, so it is this server's own URL,
 * built from the Host header (checked to be a plain host[:port]).
 */
#include <stdio.h>
#include <string.h>

#include "server/keymon.h"
#include "server/srv.h"

static int host_ok(const char *h)
{
    if (!h || !*h || strlen(h) > 255)
        return 0;
    for (const char *p = h; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr(".-:[]_", *p)))
            return 0;
    return 1;
}

void account_get(struct req *r)
{
    char url[300];
    const char *host = req_header(r, "host");
    if (host_ok(host))
        snprintf(url, sizeof url, "https://%s/", host);
    else
        snprintf(url, sizeof url, "https://%s:%d/", r->srv->listen_host, r->srv->listen_port);
    json_t *loc = json_pack("[{s:s,s:s}]", "name", "atrest", "databaseAccountEndpoint", url);
    json_t *a = json_pack(
        "{s:s,s:s,s:s,s:s,s:s,s:s,s:O,s:O,s:b,s:{s:b,s:i,s:i},s:{s:s},s:{s:i,s:i},"
        "s:{s:i,s:i},s:s,s:b,s:b}",
        "_self", "", "id", "atrest", "_rid", "atrest", "media", "//media/", "addresses",
        "//addresses/", "_dbs", "//dbs/", "writableLocations", loc, "readableLocations", loc,
        "enableMultipleWriteLocations", 0, "userReplicationPolicy", "asyncReplication", 0,
        "minReplicaSetSize", 1, "maxReplicasetSize", 4, "userConsistencyPolicy",
        "defaultConsistencyLevel", "Session", "systemReplicationPolicy", "minReplicaSetSize", 1,
        "maxReplicasetSize", 4, "readPolicy", "primaryReadCoefficient", 1,
        "secondaryReadCoefficient", 1, "queryEngineConfiguration",
        "{\"maxSqlQueryInputLength\":262144,\"maxJoinsPerSqlQuery\":5,"
        "\"maxLogicalAndPerSqlQuery\":500,\"maxLogicalOrPerSqlQuery\":500,"
        "\"maxUdfRefPerSqlQuery\":10,\"maxInExpressionItemsCount\":16000,"
        "\"queryMaxInMemorySortDocumentCount\":500,\"maxQueryRequestTimeoutFraction\":0.9,"
        "\"sqlAllowNonFiniteNumbers\":false,\"sqlAllowAggregateFunctions\":true,"
        "\"sqlAllowSubQuery\":true,\"sqlAllowScalarSubQuery\":true,\"allowNewKeywords\":true,"
        "\"sqlAllowLike\":true,\"sqlAllowGroupByClause\":true,\"maxSpatialQueryCells\":12,"
        "\"spatialMaxGeometryPointCount\":256,\"sqlDisableQueryILOptimization\":false,"
        "\"sqlDisableFilterPlanOptimization\":false}",
        "enablePerPartitionFailoverBehavior", 0, "enableNRegionSynchronousCommit", 0);
    json_decref(loc);
    if (!a) {
        srv_error(r, 500, 0, "Could not build the account.");
        return;
    }
    if (r->srv->keymon)
        keymon_account_props(r->srv->keymon, a);
    resp_json(r, 200, a);
    json_decref(a);
    resp_header(r, "x-ms-max-media-storage-usage-mb", "10240");
    resp_header(r, "x-ms-media-storage-usage-mb", "0");
    resp_header(r, "x-ms-databaseaccount-consumed-mb", "0");
}
