/*
 * Workspaces: list (own and shared), create, get, and for the owner
 * settings (name, description, end of life), delete and transfer.  The
 * router's authz check has decided who may do what (authz.h); a workspace
 * the user has no role on answers 404 exactly like an unknown id.
 */
#include <string.h>

#include "ca_error.h"
#include "errmap.h"
#include "handlers.h"
#include "store.h"

#define WS_NAME_MAX 100
#define WS_DESC_MAX 2000

static void ws_for_user(json_t *ws, uint64_t user_id);

int h_workspace_list(struct request *r, json_t **out)
{
    json_t *list = NULL;
    int rc = ca_workspace_list(r->portal, r->user_id, &list);

    if (rc < 0)
        return errmap_reply(out, rc, NULL, "could not list workspaces");
    for (size_t i = 0; i < json_array_size(list); i++)
        ws_for_user(json_array_get(list, i), r->user_id);
    *out = json_pack("{s:o}", "workspaces", list);
    return 200;
}

static int has_ctl(const char *s, int allow_newline)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if ((c < 0x20 && !(allow_newline && (c == '\n' || c == '\r' || c == '\t'))) || c == 0x7f)
            return 1;
    }
    return 0;
}

int h_workspace_create(struct request *r, json_t **out)
{
    static const char *const allowed[] = {"name", "description", NULL};
    json_t *body = NULL, *ws = NULL, *jname, *jdesc;
    const char *name, *desc = "";
    char err[256] = "";
    uint64_t id;
    int st, rc;

    st = h_body_object(r, allowed, &body, out);
    if (st != 0)
        return st;
    jname = json_object_get(body, "name");
    jdesc = json_object_get(body, "description");
    if (!json_is_string(jname)) {
        st = errmap_fail(out, 400, "name", "name must be a string");
        goto out;
    }
    name = json_string_value(jname);
    if (*name == '\0' || strlen(name) > WS_NAME_MAX || has_ctl(name, 0)) {
        st = errmap_fail(out, 400, "name",
                         "name must be 1 to %d characters without control characters", WS_NAME_MAX);
        goto out;
    }
    if (jdesc != NULL && !json_is_null(jdesc)) {
        if (!json_is_string(jdesc)) {
            st = errmap_fail(out, 400, "description", "description must be a string");
            goto out;
        }
        desc = json_string_value(jdesc);
        if (strlen(desc) > WS_DESC_MAX || has_ctl(desc, 1)) {
            st = errmap_fail(out, 400, "description", "description must be at most %d characters",
                             WS_DESC_MAX);
            goto out;
        }
    }
    rc = ca_workspace_create(r->portal, r->user_id, name, desc, &id, err, sizeof(err));
    if (rc < 0) {
        st = errmap_reply(
            out, rc, rc == CA_EINVAL ? (strstr(err, "desc") ? "description" : "name") : NULL, err);
        goto out;
    }
    rc = ca_workspace_get(r->portal, id, &ws);
    if (rc < 0) {
        st = errmap_reply(out, rc, NULL, "workspace created but not readable");
        goto out;
    }
    *out = json_pack("{s:o}", "workspace", ws);
    st = 201;
out:
    json_decref(body);
    return st;
}

/* Adds the caller's "role"; only the owner sees who else has access. */
static void ws_for_user(json_t *ws, uint64_t user_id)
{
    const char *role = ca_workspace_role(ws, user_id);

    json_object_set_new(ws, "role", role != NULL ? json_string(role) : json_null());
    if (role == NULL || strcmp(role, "owner") != 0)
        json_object_del(ws, "shares");
    if (json_object_get(ws, "eol") == NULL)
        json_object_set_new(ws, "eol", json_null());
}

int h_workspace_get(struct request *r, json_t **out)
{
    json_t *ws = NULL;
    int st = h_workspace_check(r, r->ids[0], &ws, out);

    if (st != 0)
        return st;
    ws_for_user(ws, r->user_id);
    *out = json_pack("{s:o}", "workspace", ws);
    return 200;
}

/* PATCH /api/workspaces/{ws} {"name"?, "description"?, "eol"? (unix seconds|null)} (owner). */
int h_workspace_update(struct request *r, json_t **out)
{
    static const char *const allowed[] = {"name", "description", "eol", NULL};
    json_t *body = NULL, *ws = NULL, *v;
    char err[256] = "";
    int st, rc;

    st = h_body_object(r, allowed, &body, out);
    if (st != 0)
        return st;
    if ((v = json_object_get(body, "name")) != NULL &&
        (!json_is_string(v) || *json_string_value(v) == '\0' ||
         strlen(json_string_value(v)) > WS_NAME_MAX || has_ctl(json_string_value(v), 0))) {
        st = errmap_fail(out, 400, "name",
                         "name must be 1 to %d characters without control characters", WS_NAME_MAX);
        goto out;
    }
    if ((v = json_object_get(body, "description")) != NULL &&
        (!json_is_string(v) || strlen(json_string_value(v)) > WS_DESC_MAX ||
         has_ctl(json_string_value(v), 1))) {
        st = errmap_fail(out, 400, "description", "description must be at most %d characters",
                         WS_DESC_MAX);
        goto out;
    }
    if ((v = json_object_get(body, "eol")) != NULL && !json_is_null(v) &&
        (!json_is_integer(v) || json_integer_value(v) <= h_now())) {
        st = errmap_fail(out, 400, "eol",
                         "eol must be a future time in unix seconds, or null for none");
        goto out;
    }
    rc = ca_workspace_update(r->portal, r->ids[0], body, err, sizeof(err));
    if (rc < 0) {
        st = errmap_reply(out, rc, NULL, err);
        goto out;
    }
    r->audit = json_deep_copy(body);
    rc = ca_workspace_get(r->portal, r->ids[0], &ws);
    if (rc < 0) {
        st = errmap_reply(out, rc, NULL, "workspace lookup failed");
        goto out;
    }
    ws_for_user(ws, r->user_id);
    *out = json_pack("{s:o}", "workspace", ws);
    st = 200;
out:
    json_decref(body);
    return st;
}

/* DELETE /api/workspaces/{ws} (owner): the record, its store and its capture files. */
int h_workspace_delete(struct request *r, json_t **out)
{
    int rc = ca_workspace_delete(r->portal, r->ids[0]);

    if (rc < 0)
        return errmap_reply(out, rc, NULL, "could not delete the workspace");
    *out = json_pack("{s:b}", "ok", 1);
    return 200;
}

/*
 * POST /api/workspaces/{ws}/transfer {"user": name} (owner): the named user
 * becomes the owner; the former owner keeps editor access.
 */
int h_workspace_transfer(struct request *r, json_t **out)
{
    static const char *const allowed[] = {"user", NULL};
    json_t *body = NULL, *fields = NULL, *ws = NULL;
    const char *name;
    char err[256] = "";
    uint64_t uid = 0;
    int st, rc;

    st = h_body_object(r, allowed, &body, out);
    if (st != 0)
        return st;
    name = json_string_value(json_object_get(body, "user"));
    if (name == NULL || ca_user_find(r->portal, name, &uid) != 0) {
        st = errmap_fail(out, 400, "user", "no such user");
        goto out;
    }
    if (uid == r->user_id) {
        st = errmap_fail(out, 400, "user", "you already own this workspace");
        goto out;
    }
    fields = json_pack("{s:I}", "owner", (json_int_t)uid);
    rc = ca_workspace_update(r->portal, r->ids[0], fields, err, sizeof(err));
    if (rc == 0)
        rc = ca_workspace_share(r->portal, r->ids[0], r->user_id, "editor");
    if (rc < 0) {
        st = errmap_reply(out, rc, NULL, err[0] ? err : "could not transfer the workspace");
        goto out;
    }
    r->audit = json_pack("{s:s}", "to", name);
    rc = ca_workspace_get(r->portal, r->ids[0], &ws);
    if (rc < 0) {
        st = errmap_reply(out, rc, NULL, "workspace lookup failed");
        goto out;
    }
    ws_for_user(ws, r->user_id);
    *out = json_pack("{s:o}", "workspace", ws);
    st = 200;
out:
    json_decref(fields);
    json_decref(body);
    return st;
}
