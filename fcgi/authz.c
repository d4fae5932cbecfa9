/*
 * The authorisation check (see authz.h): authentication by session cookie
 * or API token, the role a user has on the route's workspace, the action
 * table of roles, upload quotas, the audit trail of state changes, and
 * the housekeeping that deletes workspaces past their end of life.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "authz.h"
#include "ca_error.h"
#include "errmap.h"
#include "handlers.h"
#include "log.h"
#include "store.h"

#define SESSION_COOKIE "__Host-capatlas"

static const char *const action_names[] = {
    "unset", "public", "user", "read", "export", "import", "delete", "manage", "admin",
};

const char *authz_action_name(int action)
{
    if (action < 0 || (size_t)action >= sizeof(action_names) / sizeof(action_names[0]))
        return "unset";
    return action_names[action];
}

int authz_role_allows(const char *role, int action)
{
    if (role == NULL || *role == '\0')
        return 0;
    switch (action) {
    case ACT_READ:
    case ACT_EXPORT:
        return 1; /* every role */
    case ACT_IMPORT:
    case ACT_DELETE:
        return strcmp(role, "editor") == 0 || strcmp(role, "owner") == 0;
    case ACT_MANAGE:
        return strcmp(role, "owner") == 0;
    default:
        return 0;
    }
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

int authz_authenticate(struct request *r, json_t **out)
{
    const char *tok = http_kv_get(r->cookies, r->ncookies, SESSION_COOKIE);
    const char *bearer = NULL;
    uint64_t uid = 0;
    json_t *u = NULL;
    int rc, ro = 0;

    if (r->authorization != NULL && strncasecmp(r->authorization, "Bearer ", 7) == 0)
        bearer = r->authorization + 7;
    if (bearer != NULL) {
        /* A token wins over a cookie: scripts never hold one. */
        rc = ca_token_lookup(r->portal, bearer, &uid, &ro);
        if (rc == CA_EAUTH || rc == CA_ENOTFOUND)
            goto denied;
        if (rc < 0)
            return errmap_reply(out, rc, NULL, "token lookup failed");
        r->via_token = 1;
        r->token_readonly = ro;
    } else {
        if (tok == NULL || !is_hex64(tok))
            goto denied;
        rc = ca_session_lookup(r->portal, tok, &uid, r->csrf);
        if (rc == CA_EAUTH || rc == CA_ENOTFOUND)
            goto denied;
        if (rc < 0)
            return errmap_reply(out, rc, NULL, "session lookup failed");
        memcpy(r->session, tok, 65);
    }
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
    return 0;
denied:
    memset(r->csrf, 0, sizeof(r->csrf));
    memset(r->session, 0, sizeof(r->session));
    r->via_token = 0;
    return errmap_fail(out, 401, NULL,
                       bearer != NULL ? "unknown, revoked or expired API token"
                                      : "authentication required");
}

/* The workspace a route acts on: {ws} itself, or the workspace of {job}; 0 when none. */
static int route_workspace(const struct route *rt, struct request *r, uint64_t *ws_id)
{
    json_t *job = NULL;
    int rc;

    *ws_id = 0;
    if (strncmp(rt->pattern, "/api/workspaces/{ws}", 20) == 0) {
        *ws_id = r->ids[0];
        return 0;
    }
    if (strncmp(rt->pattern, "/api/jobs/{job}", 15) == 0) {
        rc = ca_job_get(r->portal, r->ids[0], &job);
        if (rc < 0)
            return rc;
        *ws_id = (uint64_t)json_integer_value(json_object_get(job, "workspace"));
        json_decref(job);
        return *ws_id != 0 ? 0 : CA_ENOTFOUND;
    }
    return 0;
}

int authz_route(const struct route *rt, struct request *r, json_t **out)
{
    int action = rt->action;
    uint64_t ws_id = 0;
    json_t *ws = NULL;
    const char *role;
    int rc;

    r->role[0] = '\0';
    if (action == ACT_UNSET) {
        /* Fail closed, loudly: the route table names an action for every route. */
        log_line("route %s %s has no authorisation action", rt->method, rt->pattern);
        return errmap_fail(out, 500, NULL, "this endpoint has no authorisation rule");
    }
    if (action == ACT_PUBLIC)
        return 0;
    if (r->token_readonly && strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0)
        return errmap_fail(out, 403, "Authorization", "this API token is read-only");
    if (action == ACT_ADMIN) {
        if (!json_is_true(json_object_get(r->user, "admin")))
            return errmap_fail(out, 403, NULL, "only an admin may do this");
        return 0;
    }
    if (action == ACT_USER)
        return 0;
    rc = route_workspace(rt, r, &ws_id);
    if (rc == CA_ENOTFOUND || (rc == 0 && ws_id == 0))
        return errmap_fail(out, 404, NULL, "no such %s",
                           strncmp(rt->pattern, "/api/jobs/", 10) == 0 ? "job" : "workspace");
    if (rc < 0)
        return errmap_reply(out, rc, NULL, "lookup failed");
    rc = ca_workspace_get(r->portal, ws_id, &ws);
    if (rc == CA_ENOTFOUND)
        ws = NULL;
    else if (rc < 0)
        return errmap_reply(out, rc, NULL, "workspace lookup failed");
    role = ws != NULL ? ca_workspace_role(ws, r->user_id) : NULL;
    /* Copied before the record goes: role may point into it. */
    snprintf(r->role, sizeof(r->role), "%s", role != NULL ? role : "");
    json_decref(ws);
    if (r->role[0] == '\0')
        return errmap_fail(out, 404, NULL, "no such %s",
                           strncmp(rt->pattern, "/api/jobs/", 10) == 0 ? "job" : "workspace");
    if (!authz_role_allows(r->role, action))
        return errmap_fail(out, 403, NULL, "a workspace %s may not %s here", r->role,
                           authz_action_name(action));
    return 0;
}

int authz_quota(struct request *r, int upload, json_t **out)
{
    json_t *ws = NULL, *owner = NULL, *quota;
    uint64_t owner_id, used = 0, size = 0;
    struct stat st;
    int rc, status = 0;

    if (strncmp(r->path, "/api/workspaces/", 16) != 0 || r->ids[0] == 0)
        return 0;
    if (ca_workspace_get(r->portal, r->ids[0], &ws) < 0)
        return 0; /* authz_route already answered for unknown ones */
    owner_id = (uint64_t)json_integer_value(json_object_get(ws, "owner"));
    json_decref(ws);
    rc = ca_user_get(r->portal, owner_id, &owner);
    if (rc < 0)
        return 0;
    quota = json_object_get(owner, "quota");
    if (!json_is_integer(quota))
        goto out;
    if (upload && r->body_file != NULL && stat(r->body_file, &st) == 0)
        size = (uint64_t)st.st_size;
    else if (upload && r->content_length > 0)
        size = (uint64_t)r->content_length;
    rc = ca_user_usage(r->portal, owner_id, &used);
    if (rc < 0) {
        status = errmap_reply(out, rc, NULL, "cannot compute the quota");
        goto out;
    }
    if (used + size > (uint64_t)json_integer_value(quota) ||
        (!upload && used >= (uint64_t)json_integer_value(quota)))
        status = errmap_fail(out, 413, "quota",
                             "quota exceeded: the workspace owner may store %lld bytes, uses "
                             "%llu, and this upload is %llu bytes",
                             (long long)json_integer_value(quota), (unsigned long long)used,
                             (unsigned long long)size);
out:
    json_decref(owner);
    return status;
}

void authz_audit(const struct route *rt, struct request *r, int status)
{
    char action[64];

    if (status >= 400 || r->user_id == 0 || strcmp(rt->pattern, "/api/login") == 0 ||
        strcmp(rt->pattern, "/api/logout") == 0)
        return;
    if (strcmp(rt->method, "GET") == 0 && rt->action != ACT_EXPORT)
        return;
    snprintf(action, sizeof(action), "%s", authz_action_name(rt->action));
    if (r->audit == NULL)
        r->audit = json_object();
    if (r->audit != NULL) {
        json_object_set_new(r->audit, "method", json_string(rt->method));
        json_object_set_new(r->audit, "status", json_integer(status));
        if (r->via_token)
            json_object_set_new(r->audit, "via", json_string("token"));
    }
    /* The path only: query strings may carry secrets (SAS signatures). */
    (void)ca_audit_add(r->portal, r->user_id, json_string_value(json_object_get(r->user, "name")),
                       r->remote_addr, action, r->path, r->audit);
}

void authz_housekeeping(struct ca_portal *p)
{
    static time_t last;
    const char *v = getenv("CAPATLAS_HOUSEKEEPING_SECONDS");
    long every = v != NULL && atol(v) > 0 ? atol(v) : 60;
    time_t now = time(NULL);
    int n = 0;

    if (last != 0 && now - last < every)
        return;
    last = now;
    if (ca_workspace_purge_eol(p, &n) == 0 && n > 0) {
        log_line("deleted %d workspace(s) past their end of life", n);
        (void)ca_audit_add(p, 0, NULL, "", "eol", "workspaces", NULL);
    }
    (void)ca_session_purge_expired(p, NULL);
}
