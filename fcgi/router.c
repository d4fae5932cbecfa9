/*
 * The route table and the checks every request passes before its handler:
 * known path (404), allowed method (405), size (done while reading, 413),
 * session (401), CSRF token (403), content type (415).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "authz.h"
#include "ca_error.h"
#include "commands.h"
#include "errmap.h"
#include "handlers.h"
#include "router.h"
#include "store.h"

/*
 * Every route names the action it needs (router.h, authz.h); the router
 * checks it before the handler runs.  tests/e2e/authz_matrix.test.mjs
 * reads this table (capatlasd routes) and fails for a route without an
 * entry there: add one when you add a route.
 */
static const struct route router_table[] = {
    {"GET", "/api/health", 0, h_health, ACT_PUBLIC},
    {"POST", "/api/login", ROUTE_JSON, h_login, ACT_PUBLIC},
    {"POST", "/api/logout", ROUTE_AUTH | ROUTE_CSRF, h_logout, ACT_USER},
    {"GET", "/api/me", ROUTE_AUTH, h_me, ACT_USER},
    {"GET", "/api/workspaces", ROUTE_AUTH, h_workspace_list, ACT_USER},
    {"POST", "/api/workspaces", ROUTE_AUTH | ROUTE_CSRF | ROUTE_JSON, h_workspace_create, ACT_USER},
    {"GET", "/api/workspaces/{ws}", ROUTE_AUTH, h_workspace_get, ACT_READ},
    {"GET", "/api/workspaces/{ws}/captures", ROUTE_AUTH, h_capture_list, ACT_READ},
    {"POST", "/api/workspaces/{ws}/captures", ROUTE_AUTH | ROUTE_CSRF | ROUTE_UPLOAD,
     h_capture_upload, ACT_IMPORT},
    {"PUT", "/api/workspaces/{ws}/captures", ROUTE_AUTH | ROUTE_CSRF | ROUTE_STREAM,
     h_capture_stream, ACT_IMPORT},
    {"POST", "/api/workspaces/{ws}/imports", ROUTE_AUTH | ROUTE_CSRF | ROUTE_JSON, h_import_url,
     ACT_IMPORT},
    {"POST", "/api/workspaces/{ws}/imports/list", ROUTE_AUTH | ROUTE_CSRF | ROUTE_JSON,
     h_import_list, ACT_IMPORT},
    {"GET", "/api/jobs/{job}", ROUTE_AUTH, h_job_get, ACT_READ},
    {"POST", "/api/jobs/{job}/cancel", ROUTE_AUTH | ROUTE_CSRF, h_job_cancel, ACT_IMPORT},
    {"GET", "/api/workspaces/{ws}/flows", ROUTE_AUTH, h_query_flows, ACT_READ},
    {"GET", "/api/workspaces/{ws}/flows/{flow}", ROUTE_AUTH, h_flow_get, ACT_READ},
    {"GET", "/api/workspaces/{ws}/flows/{flow}/pcap", ROUTE_AUTH, h_flow_pcap, ACT_EXPORT},
    {"GET", "/api/workspaces/{ws}/summary", ROUTE_AUTH, h_query_summary, ACT_READ},
    {"GET", "/api/workspaces/{ws}/aggregate", ROUTE_AUTH, h_query_aggregate, ACT_READ},
    {"GET", "/api/workspaces/{ws}/timeline", ROUTE_AUTH, h_query_timeline, ACT_READ},
    {"GET", "/api/workspaces/{ws}/ips/{*}", ROUTE_AUTH, h_query_ip, ACT_READ},
    {"GET", "/api/workspaces/{ws}/graph", ROUTE_AUTH, h_query_graph, ACT_READ},
    {"GET", "/api/workspaces/{ws}/values", ROUTE_AUTH, h_query_values, ACT_READ},
    {"GET", "/api/workspaces/{ws}/export", ROUTE_AUTH, h_export, ACT_EXPORT},
    {"DELETE", "/api/workspaces/{ws}/captures/{cap}", ROUTE_AUTH | ROUTE_CSRF, h_capture_delete,
     ACT_DELETE},
    /* accounts, tokens, users, sharing, audit (issue 5) */
    {"POST", "/api/me/password", ROUTE_AUTH | ROUTE_CSRF | ROUTE_JSON, h_password_change, ACT_USER},
    {"GET", "/api/me/sessions", ROUTE_AUTH, h_session_list, ACT_USER},
    {"DELETE", "/api/me/sessions/{session}", ROUTE_AUTH | ROUTE_CSRF, h_session_revoke, ACT_USER},
    {"GET", "/api/tokens", ROUTE_AUTH, h_token_list, ACT_USER},
    {"POST", "/api/tokens", ROUTE_AUTH | ROUTE_CSRF | ROUTE_JSON, h_token_create, ACT_USER},
    {"DELETE", "/api/tokens/{token}", ROUTE_AUTH | ROUTE_CSRF, h_token_revoke, ACT_USER},
    {"GET", "/api/users", ROUTE_AUTH, h_user_list, ACT_ADMIN},
    {"POST", "/api/users", ROUTE_AUTH | ROUTE_CSRF | ROUTE_JSON, h_user_create, ACT_ADMIN},
    {"GET", "/api/users/{user}", ROUTE_AUTH, h_user_get, ACT_ADMIN},
    {"PATCH", "/api/users/{user}", ROUTE_AUTH | ROUTE_CSRF | ROUTE_JSON, h_user_update, ACT_ADMIN},
    {"DELETE", "/api/users/{user}", ROUTE_AUTH | ROUTE_CSRF, h_user_delete, ACT_ADMIN},
    {"GET", "/api/audit", ROUTE_AUTH, h_audit_list, ACT_ADMIN},
    {"PATCH", "/api/workspaces/{ws}", ROUTE_AUTH | ROUTE_CSRF | ROUTE_JSON, h_workspace_update,
     ACT_MANAGE},
    {"DELETE", "/api/workspaces/{ws}", ROUTE_AUTH | ROUTE_CSRF, h_workspace_delete, ACT_MANAGE},
    {"POST", "/api/workspaces/{ws}/transfer", ROUTE_AUTH | ROUTE_CSRF | ROUTE_JSON,
     h_workspace_transfer, ACT_MANAGE},
    {"GET", "/api/workspaces/{ws}/shares", ROUTE_AUTH, h_share_list, ACT_READ},
    {"POST", "/api/workspaces/{ws}/shares", ROUTE_AUTH | ROUTE_CSRF | ROUTE_JSON, h_share_set,
     ACT_MANAGE},
    {"DELETE", "/api/workspaces/{ws}/shares/{user}", ROUTE_AUTH | ROUTE_CSRF, h_share_delete,
     ACT_MANAGE},
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

int router_dispatch(const struct route *rt, struct request *r, json_t **out)
{
    int status;

    authz_housekeeping(r->portal);
    if ((rt->flags & ROUTE_AUTH) || (rt->action != ACT_PUBLIC && rt->action != ACT_UNSET)) {
        status = authz_authenticate(r, out);
        if (status != 0)
            return status;
    }
    /* A token is no ambient credential, so it needs no CSRF defence. */
    if ((rt->flags & ROUTE_CSRF) && !r->via_token) {
        if (r->csrf_header == NULL || !http_token_eq(r->csrf_header, r->csrf))
            return errmap_fail(out, 403, "X-CSRF-Token", "missing or wrong CSRF token");
    }
    status = authz_route(rt, r, out);
    if (status != 0)
        return status;
    if (rt->action == ACT_IMPORT) {
        status = authz_quota(r, (rt->flags & ROUTE_UPLOAD) != 0, out);
        if (status != 0)
            return status;
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
    authz_audit(rt, r, status);
    return status;
}

json_t *router_table_json(void)
{
    static const struct {
        unsigned bit;
        const char *name;
    } flag_names[] = {{ROUTE_AUTH, "auth"},
                      {ROUTE_CSRF, "csrf"},
                      {ROUTE_UPLOAD, "upload"},
                      {ROUTE_JSON, "json"},
                      {ROUTE_STREAM, "stream"}};
    json_t *arr = json_array();

    for (size_t i = 0; arr != NULL && i < sizeof(router_table) / sizeof(router_table[0]); i++) {
        const struct route *rt = &router_table[i];
        json_t *flags = json_array();

        for (size_t k = 0; k < sizeof(flag_names) / sizeof(flag_names[0]); k++)
            if (rt->flags & flag_names[k].bit)
                json_array_append_new(flags, json_string(flag_names[k].name));
        json_array_append_new(arr, json_pack("{s:s, s:s, s:o, s:s}", "method", rt->method,
                                             "pattern", rt->pattern, "flags", flags, "action",
                                             authz_action_name(rt->action)));
    }
    return arr;
}

int cmd_routes(int argc, char **argv)
{
    json_t *t = router_table_json();

    (void)argc;
    (void)argv;
    if (t == NULL || json_dumpf(t, stdout, JSON_INDENT(1)) != 0) {
        json_decref(t);
        return 1;
    }
    putchar('\n');
    json_decref(t);
    return 0;
}
