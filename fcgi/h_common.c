/*
 * Helpers shared by the handlers: strict JSON body parsing, the workspace
 * access check, and the public forms of store records.
 */
#include <string.h>
#include <time.h>

#include "ca_error.h"
#include "errmap.h"
#include "handlers.h"
#include "store.h"

long long h_now(void)
{
    return (long long)time(NULL);
}

int h_body_object(struct request *r, const char *const *allowed, json_t **root, json_t **out)
{
    json_error_t jerr;
    json_t *j;
    const char *key;
    json_t *val;

    *root = NULL;
    if (r->body == NULL || r->body_len == 0)
        return errmap_fail(out, 400, NULL, "the request body must be a JSON object");
    j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL)
        return errmap_fail(out, 400, NULL, "the request body is not valid JSON: %s (line %d)",
                           jerr.text, jerr.line);
    if (!json_is_object(j)) {
        json_decref(j);
        return errmap_fail(out, 400, NULL, "the request body must be a JSON object");
    }
    json_object_foreach(j, key, val)
    {
        size_t i;

        for (i = 0; allowed[i] != NULL; i++)
            if (strcmp(allowed[i], key) == 0)
                break;
        if (allowed[i] == NULL) {
            int st = errmap_fail(out, 400, key, "unknown field \"%.64s\"", key);

            json_decref(j);
            return st;
        }
    }
    *root = j;
    return 0;
}

int h_workspace_check(struct request *r, uint64_t ws_id, json_t **ws, json_t **out)
{
    json_t *w = NULL;
    int rc;

    if (ws != NULL)
        *ws = NULL;
    rc = ca_workspace_get(r->portal, ws_id, &w);
    if (rc == CA_ENOTFOUND)
        return errmap_fail(out, 404, NULL, "no such workspace");
    if (rc < 0)
        return errmap_reply(out, rc, NULL, "workspace lookup failed");
    /* The router's authz check decided the action; here only visibility. */
    if (ca_workspace_role(w, r->user_id) == NULL) {
        json_decref(w);
        return errmap_fail(out, 404, NULL, "no such workspace");
    }
    if (ws != NULL)
        *ws = w;
    else
        json_decref(w);
    return 0;
}

static json_t *pick(json_t *src, const char *const *keys)
{
    json_t *o = json_object();

    if (o == NULL)
        return NULL;
    for (size_t i = 0; keys[i] != NULL; i++) {
        json_t *v = json_object_get(src, keys[i]);

        json_object_set(o, keys[i], v != NULL ? v : json_null());
    }
    return o;
}

json_t *h_job_public(json_t *job)
{
    static const char *const keys[] = {
        "id",       "workspace",   "capture",    "kind",         "source",  "state",
        "error",    "bytes_total", "bytes_done", "packets_done", "created", "started",
        "finished", "percent",     "rate",       "eta",          "result",  NULL};

    return pick(job, keys);
}

json_t *h_capture_public(json_t *cap)
{
    static const char *const keys[] = {"id",     "name",    "source", "size",   "state", "error",
                                       "report", "created", "job",    "labels", NULL};

    return pick(cap, keys);
}

json_t *h_user_public(uint64_t id, json_t *user)
{
    json_t *name = json_object_get(user, "name");

    return json_pack("{s:I, s:O, s:b}", "id", (json_int_t)id, "name",
                     name != NULL ? name : json_null(), "admin",
                     json_is_true(json_object_get(user, "admin")));
}
