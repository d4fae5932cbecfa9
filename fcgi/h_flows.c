/*
 * Flows of a workspace: a page in id order, and one flow.  Only flows of
 * captures whose import completed are visible.
 */
#include <stdlib.h>
#include <string.h>

#include "ca_error.h"
#include "config.h"
#include "errmap.h"
#include "handlers.h"
#include "store.h"

#define FLOWS_LIMIT_DEFAULT 100
#define FLOWS_LIMIT_MAX 1000

int h_flow_list(struct request *r, json_t **out)
{
    const char *ls = http_kv_get(r->query, r->nquery, "limit");
    const char *as = http_kv_get(r->query, r->nquery, "after");
    uint64_t limit = FLOWS_LIMIT_DEFAULT, after = 0, next = 0, total = 0;
    struct ca_ws *w = NULL;
    json_t *flows = NULL;
    char err[256] = "";
    int st, rc;

    st = h_workspace_check(r, r->ids[0], NULL, out);
    if (st != 0)
        return st;
    if (ls != NULL && (http_parse_u64(ls, &limit) < 0 || limit < 1 || limit > FLOWS_LIMIT_MAX))
        return errmap_fail(out, 400, "limit", "limit must be a whole number from 1 to %d",
                           FLOWS_LIMIT_MAX);
    if (as != NULL && http_parse_u64(as, &after) < 0)
        return errmap_fail(out, 400, "after", "after must be a flow id");
    rc = ca_ws_open(r->conf->data, r->ids[0], &w, err, sizeof(err));
    if (rc < 0)
        return errmap_reply(out, rc, NULL, err);
    rc = ca_ws_flows_page(w, after, (size_t)limit, &flows, &next, &total);
    ca_ws_close(w);
    if (rc < 0)
        return errmap_reply(out, rc, NULL, "could not read flows");
    *out = json_pack("{s:o, s:o, s:I}", "flows", flows, "next",
                     next != 0 ? json_integer((json_int_t)next) : json_null(), "total",
                     (json_int_t)total);
    return 200;
}

int h_flow_get(struct request *r, json_t **out)
{
    struct ca_ws *w = NULL;
    struct ca_flow *f = NULL;
    json_t *cap = NULL, *fj;
    char err[256] = "";
    int st, rc;

    st = h_workspace_check(r, r->ids[0], NULL, out);
    if (st != 0)
        return st;
    f = calloc(1, sizeof(*f)); /* a few KiB: keep it off the stack */
    if (f == NULL)
        return errmap_reply(out, CA_ENOMEM, NULL, NULL);
    rc = ca_ws_open(r->conf->data, r->ids[0], &w, err, sizeof(err));
    if (rc < 0) {
        st = errmap_reply(out, rc, NULL, err);
        goto out;
    }
    rc = ca_ws_flow_get(w, r->ids[1], f);
    if (rc == 0)
        rc = ca_ws_capture_get(w, f->capture_id, &cap);
    if (rc == 0 && !json_is_string(json_object_get(cap, "state")))
        rc = CA_ENOTFOUND;
    if (rc == 0 && strcmp(json_string_value(json_object_get(cap, "state")), "ready") != 0)
        rc = CA_ENOTFOUND;
    if (rc == CA_ENOTFOUND) {
        st = errmap_fail(out, 404, NULL, "no such flow");
        goto out;
    }
    if (rc < 0) {
        st = errmap_reply(out, rc, NULL, "could not read the flow");
        goto out;
    }
    fj = ca_flow_to_json(f);
    if (fj == NULL) {
        st = errmap_reply(out, CA_ENOMEM, NULL, NULL);
        goto out;
    }
    *out = json_pack("{s:o}", "flow", fj);
    st = 200;
out:
    json_decref(cap);
    ca_ws_close(w);
    free(f);
    return st;
}
