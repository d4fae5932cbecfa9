/*
 * The route table and the checks every request passes before its handler:
 * known path (404), allowed method (405), size (done while reading, 413),
 * session (401), CSRF token (403), content type (415).
 */
#include <string.h>

#include "ca_error.h"
#include "errmap.h"
#include "handlers.h"
#include "router.h"
#include "store.h"

#define SESSION_COOKIE "__Host-capatlas"

static const struct route router_table[] = {
    {"GET", "/api/health", 0, h_health},
    {"POST", "/api/login", ROUTE_JSON, h_login},
    {"POST", "/api/logout", ROUTE_AUTH | ROUTE_CSRF, h_logout},
    {"GET", "/api/me", ROUTE_AUTH, h_me},
    {"GET", "/api/workspaces", ROUTE_AUTH, h_workspace_list},
    {"POST", "/api/workspaces", ROUTE_AUTH | ROUTE_CSRF | ROUTE_JSON, h_workspace_create},
    {"GET", "/api/workspaces/{ws}", ROUTE_AUTH, h_workspace_get},
    {"GET", "/api/workspaces/{ws}/captures", ROUTE_AUTH, h_capture_list},
    {"POST", "/api/workspaces/{ws}/captures", ROUTE_AUTH | ROUTE_CSRF | ROUTE_UPLOAD,
     h_capture_upload},
    {"GET", "/api/jobs/{job}", ROUTE_AUTH, h_job_get},
    {"GET", "/api/workspaces/{ws}/flows", ROUTE_AUTH, h_flow_list},
    {"GET", "/api/workspaces/{ws}/flows/{flow}", ROUTE_AUTH, h_flow_get},
};

const struct route *router_find(const char *method, const char *path, uint64_t ids[HTTP_PATH_IDS],
                                int *status, json_t **out)
{
    int path_known = 0;

    for (size_t i = 0; i < sizeof(router_table) / sizeof(router_table[0]); i++) {
        const struct route *rt = &router_table[i];
        uint64_t tmp[HTTP_PATH_IDS] = {0};

        if (!http_path_match(rt->pattern, path, tmp))
            continue;
        path_known = 1;
        if (strcmp(rt->method, method) == 0) {
            memcpy(ids, tmp, sizeof(tmp));
            return rt;
        }
    }
    if (path_known)
        *status = errmap_fail(out, 405, NULL, "method %s not allowed here", method);
    else
        *status = errmap_fail(out, 404, NULL, "no such API endpoint");
    return NULL;
}

static int is_hex64(const char *s)
{
    if (strlen(s) != 64)
        return 0;
    for (; *s != '\0'; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return 0;
    return 1;
}

/* Sets r->user_id, r->user, r->session, r->csrf from the session cookie. */
static int router_auth(struct request *r, json_t **out)
{
    const char *tok = http_kv_get(r->cookies, r->ncookies, SESSION_COOKIE);
    uint64_t uid = 0;
    json_t *u = NULL;
    int rc;

    if (tok == NULL || !is_hex64(tok))
        goto denied;
    rc = ca_session_lookup(r->portal, tok, &uid, r->csrf);
    if (rc == CA_EAUTH || rc == CA_ENOTFOUND)
        goto denied;
    if (rc < 0)
        return errmap_reply(out, rc, NULL, "session lookup failed");
    rc = ca_user_get(r->portal, uid, &u);
    if (rc == CA_ENOTFOUND)
        goto denied;
    if (rc < 0)
        return errmap_reply(out, rc, NULL, "user lookup failed");
    if (json_is_true(json_object_get(u, "disabled"))) {
        json_decref(u);
        goto denied;
    }
    r->user = h_user_public(uid, u);
    json_decref(u);
    if (r->user == NULL)
        return errmap_reply(out, CA_ENOMEM, NULL, NULL);
    r->user_id = uid;
    memcpy(r->session, tok, 65);
    return 0;
denied:
    memset(r->csrf, 0, sizeof(r->csrf));
    return errmap_fail(out, 401, NULL, "authentication required");
}

int router_dispatch(const struct route *rt, struct request *r, json_t **out)
{
    int status;

    if (rt->flags & ROUTE_AUTH) {
        status = router_auth(r, out);
        if (status != 0)
            return status;
    }
    if (rt->flags & ROUTE_CSRF) {
        if (r->csrf_header == NULL || !http_token_eq(r->csrf_header, r->csrf))
            return errmap_fail(out, 403, "X-CSRF-Token", "missing or wrong CSRF token");
    }
    if (rt->flags & ROUTE_JSON) {
        const char *ct = r->content_type;
        size_t n = strlen("application/json");

        if (ct == NULL || strncasecmp(ct, "application/json", n) != 0 ||
            (ct[n] != '\0' && ct[n] != ';' && ct[n] != ' '))
            return errmap_fail(out, 415, "Content-Type",
                               "the body must be JSON (Content-Type: application/json)");
    }
    *out = NULL;
    status = rt->fn(r, out);
    if (*out == NULL) /* a handler that forgot its body, or ENOMEM building it */
        status = errmap_reply(out, CA_EINTERNAL, NULL, "handler returned no body");
    return status;
}
