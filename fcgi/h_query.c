/*
 * Query endpoints (docs/api.md, "Queries"): flows pages, summary,
 * aggregate, timeline, per-IP detail, host graph, value completion, and
 * capture deletion.  Each opens the workspace, compiles `filter` once
 * (a bad one is 400 with its column in "position") and hands the work to
 * the query engine (core/query.h).
 */
#include <stdlib.h>
#include <string.h>

#include "ca_error.h"
#include "config.h"
#include "errmap.h"
#include "handlers.h"
#include "query.h"
#include "store.h"

#define FLOWS_LIMIT_DEFAULT 100
#define FLOWS_LIMIT_MAX 1000

/* Opens the workspace and the query; 0, or a status with *out set. */
int h_query_open(struct request *r, struct ca_ws **w, struct ca_query **q, json_t **out)
{
    const char *filter = http_kv_get(r->query, r->nquery, "filter");
    char err[512] = "";
    int st, rc, pos = -1;

    *w = NULL;
    *q = NULL;
    st = h_workspace_check(r, r->ids[0], NULL, out);
    if (st != 0)
        return st;
    rc = ca_ws_open(r->conf->data, r->ids[0], w, err, sizeof(err));
    if (rc < 0)
        return errmap_reply(out, rc, NULL, err);
    rc = ca_query_open(*w, filter, q, err, sizeof(err), &pos);
    if (rc == CA_EINVAL) {
        ca_ws_close(*w);
        *w = NULL;
        *out = json_pack("{s:s, s:s, s:i}", "error", err, "field", "filter", "position", pos);
        return 400;
    }
    if (rc < 0) {
        ca_ws_close(*w);
        *w = NULL;
        return errmap_reply(out, rc, NULL, "could not open the workspace");
    }
    return 0;
}

static int finish(int rc, json_t *res, const char *err, const char *param, json_t **out)
{
    if (rc == CA_EINVAL)
        return errmap_fail(out, 400, param, "%s", err);
    if (rc < 0)
        return errmap_reply(out, rc, NULL, err[0] ? err : "query failed");
    *out = res;
    return 200;
}

static int get_i64(struct request *r, const char *name, int64_t *v, json_t **out, int *st)
{
    const char *s = http_kv_get(r->query, r->nquery, name);
    char *end;
    long long x;

    if (s == NULL || *s == '\0')
        return 0;
    x = strtoll(s, &end, 10);
    if (*end != '\0') {
        *st = errmap_fail(out, 400, name, "%s must be a whole number", name);
        return -1;
    }
    *v = x;
    return 0;
}

int h_query_flows(struct request *r, json_t **out)
{
    const char *sort = http_kv_get(r->query, r->nquery, "sort");
    const char *order = http_kv_get(r->query, r->nquery, "order");
    const char *cursor = http_kv_get(r->query, r->nquery, "cursor");
    const char *columns = http_kv_get(r->query, r->nquery, "columns");
    const char *filter = http_kv_get(r->query, r->nquery, "filter");
    const char *param = NULL;
    struct ca_ws *w = NULL;
    struct ca_query *q = NULL;
    json_t *res = NULL;
    int64_t limit = FLOWS_LIMIT_DEFAULT;
    char err[256] = "";
    int st = 0, rc;

    /* The skeleton's id paging (after=ID) keeps its own path. */
    if (http_kv_get(r->query, r->nquery, "after") != NULL && sort == NULL && cursor == NULL &&
        (filter == NULL || *filter == '\0'))
        return h_flow_list(r, out);
    if (get_i64(r, "limit", &limit, out, &st) < 0)
        return st;
    if (limit < 1 || limit > FLOWS_LIMIT_MAX)
        return errmap_fail(out, 400, "limit", "limit must be a whole number from 1 to %d",
                           FLOWS_LIMIT_MAX);
    if (order != NULL && strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0)
        return errmap_fail(out, 400, "order", "order must be asc or desc");
    st = h_query_open(r, &w, &q, out);
    if (st != 0)
        return st;
    rc = ca_query_flows(q, sort, order != NULL && strcmp(order, "desc") == 0, (size_t)limit, cursor,
                        columns, &res, err, sizeof(err), &param);
    ca_query_close(q);
    ca_ws_close(w);
    return finish(rc, res, err, param, out);
}

int h_query_summary(struct request *r, json_t **out)
{
    struct ca_ws *w = NULL;
    struct ca_query *q = NULL;
    json_t *res = NULL;
    int st, rc;

    st = h_query_open(r, &w, &q, out);
    if (st != 0)
        return st;
    rc = ca_query_summary(q, &res);
    ca_query_close(q);
    ca_ws_close(w);
    return finish(rc, res, "", NULL, out);
}

int h_query_aggregate(struct request *r, json_t **out)
{
    const char *by = http_kv_get(r->query, r->nquery, "by");
    const char *metrics = http_kv_get(r->query, r->nquery, "metrics");
    const char *order = http_kv_get(r->query, r->nquery, "order");
    const char *param = NULL;
    struct ca_ws *w = NULL;
    struct ca_query *q = NULL;
    json_t *res = NULL;
    int64_t top = 10;
    char err[512] = "";
    int st = 0, rc;

    if (get_i64(r, "top", &top, out, &st) < 0)
        return st;
    if (top < 0 || top > 100000)
        return errmap_fail(out, 400, "top", "top must be from 0 to 100000");
    st = h_query_open(r, &w, &q, out);
    if (st != 0)
        return st;
    rc = ca_query_aggregate(q, by, metrics, (long)top, order, &res, err, sizeof(err), &param);
    ca_query_close(q);
    ca_ws_close(w);
    return finish(rc, res, err, param, out);
}

int h_query_timeline(struct request *r, json_t **out)
{
    const char *param = NULL;
    struct ca_ws *w = NULL;
    struct ca_query *q = NULL;
    json_t *res = NULL;
    int64_t bins = 100, from = 0, to = 0;
    char err[256] = "";
    int st = 0, rc;

    if (get_i64(r, "bins", &bins, out, &st) < 0 || get_i64(r, "from_ns", &from, out, &st) < 0 ||
        get_i64(r, "to_ns", &to, out, &st) < 0)
        return st;
    if (bins < 1 || bins > 10000)
        return errmap_fail(out, 400, "bins", "bins must be from 1 to 10000");
    st = h_query_open(r, &w, &q, out);
    if (st != 0)
        return st;
    rc = ca_query_timeline(q, (int)bins, from, to, &res, err, sizeof(err), &param);
    ca_query_close(q);
    ca_ws_close(w);
    return finish(rc, res, err, param, out);
}

int h_query_ip(struct request *r, json_t **out)
{
    const char *seg = strrchr(r->path, '/');
    const char *param = NULL;
    struct ca_ws *w = NULL;
    struct ca_query *q = NULL;
    json_t *res = NULL;
    char ip[128], err[256] = "";
    int st, rc;

    if (seg == NULL || http_pct_decode(seg + 1, strlen(seg + 1), ip, sizeof(ip), 0) < 0)
        return errmap_fail(out, 400, "ip", "not an IP address");
    st = h_query_open(r, &w, &q, out);
    if (st != 0)
        return st;
    rc = ca_query_ip(q, ip, &res, err, sizeof(err), &param);
    ca_query_close(q);
    ca_ws_close(w);
    return finish(rc, res, err, param, out);
}

int h_query_graph(struct request *r, json_t **out)
{
    struct ca_ws *w = NULL;
    struct ca_query *q = NULL;
    json_t *res = NULL;
    int64_t max = 150;
    int st = 0, rc;

    if (get_i64(r, "max_nodes", &max, out, &st) < 0)
        return st;
    if (max < 1 || max > 5000)
        return errmap_fail(out, 400, "max_nodes", "max_nodes must be from 1 to 5000");
    st = h_query_open(r, &w, &q, out);
    if (st != 0)
        return st;
    rc = ca_query_graph(q, (size_t)max, &res);
    ca_query_close(q);
    ca_ws_close(w);
    return finish(rc, res, "", NULL, out);
}

int h_query_values(struct request *r, json_t **out)
{
    const char *field = http_kv_get(r->query, r->nquery, "field");
    const char *prefix = http_kv_get(r->query, r->nquery, "prefix");
    const char *param = NULL;
    struct ca_ws *w = NULL;
    struct ca_query *q = NULL;
    json_t *res = NULL;
    int64_t limit = 20;
    char err[256] = "";
    int st = 0, rc;

    if (get_i64(r, "limit", &limit, out, &st) < 0)
        return st;
    if (limit < 1 || limit > 1000)
        return errmap_fail(out, 400, "limit", "limit must be from 1 to 1000");
    st = h_query_open(r, &w, &q, out);
    if (st != 0)
        return st;
    rc = ca_query_values(q, field, prefix, (size_t)limit, &res, err, sizeof(err), &param);
    ca_query_close(q);
    ca_ws_close(w);
    return finish(rc, res, err, param, out);
}

int h_capture_delete(struct request *r, json_t **out)
{
    struct ca_ws *w = NULL;
    json_t *cap = NULL;
    const char *state;
    char err[256] = "";
    int st, rc;

    st = h_workspace_check(r, r->ids[0], NULL, out);
    if (st != 0)
        return st;
    if (r->ids[1] > UINT32_MAX)
        return errmap_fail(out, 404, NULL, "no such capture");
    rc = ca_ws_open(r->conf->data, r->ids[0], &w, err, sizeof(err));
    if (rc < 0)
        return errmap_reply(out, rc, NULL, err);
    rc = ca_ws_capture_get(w, (uint32_t)r->ids[1], &cap);
    if (rc == CA_ENOTFOUND) {
        st = errmap_fail(out, 404, NULL, "no such capture");
        goto out;
    }
    if (rc < 0) {
        st = errmap_reply(out, rc, NULL, "could not read the capture");
        goto out;
    }
    state = json_string_value(json_object_get(cap, "state"));
    if (state != NULL && (strcmp(state, "importing") == 0 || strcmp(state, "queued") == 0)) {
        st = errmap_fail(out, 409, NULL,
                         "the capture is being imported; cancel its job first, then delete it");
        goto out;
    }
    rc = ca_ws_capture_delete(w, (uint32_t)r->ids[1]);
    if (rc < 0) {
        st = errmap_reply(out, rc, NULL, "could not delete the capture");
        goto out;
    }
    *out = json_pack("{s:b}", "ok", 1);
    st = 200;
out:
    json_decref(cap);
    ca_ws_close(w);
    return st;
}
