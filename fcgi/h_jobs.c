/*
 * Job status, for the progress bar.  A job is visible to whoever may see
 * its workspace; others get 404 as for an unknown id.
 */
#include "ca_error.h"
#include "errmap.h"
#include "handlers.h"
#include "store.h"

int h_job_get(struct request *r, json_t **out)
{
    json_t *job = NULL, *pub;
    json_t *ws;
    int rc, st;

    rc = ca_job_get(r->portal, r->ids[0], &job);
    if (rc == CA_ENOTFOUND)
        return errmap_fail(out, 404, NULL, "no such job");
    if (rc < 0)
        return errmap_reply(out, rc, NULL, "job lookup failed");
    ws = json_object_get(job, "workspace");
    if (!json_is_integer(ws)) {
        json_decref(job);
        return errmap_fail(out, 404, NULL, "no such job");
    }
    st = h_workspace_check(r, (uint64_t)json_integer_value(ws), NULL, out);
    if (st != 0) {
        json_decref(*out);
        json_decref(job);
        return errmap_fail(out, 404, NULL, "no such job");
    }
    pub = h_job_public(job);
    json_decref(job);
    *out = json_pack("{s:o}", "job", pub);
    return 200;
}
