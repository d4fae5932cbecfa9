/*
 * Sharing a workspace: who has access (anyone with access may see it), and
 * for the owner, sharing with a user by name as viewer (read, export) or
 * editor (also import and delete captures), and removing a share.
 */
#include <stdio.h>
#include <string.h>

#include "ca_error.h"
#include "errmap.h"
#include "handlers.h"
#include "store.h"

static json_t *user_ref(struct request *r, uint64_t id)
{
    json_t *u = NULL, *ref;

    if (ca_user_get(r->portal, id, &u) < 0)
        return NULL;
    ref = json_pack("{s:I, s:O}", "id", (json_int_t)id, "name", json_object_get(u, "name"));
    json_decref(u);
    return ref;
}

static int shares_answer(struct request *r, json_t **out)
{
    json_t *ws = NULL, *list, *owner, *role;
    const char *key;
    int rc = ca_workspace_get(r->portal, r->ids[0], &ws);

    if (rc < 0)
        return errmap_reply(out, rc, NULL, "workspace lookup failed");
    list = json_array();
    json_object_foreach(json_object_get(ws, "shares"), key, role)
    {
        uint64_t uid;
        json_t *ref;

        if (http_parse_u64(key, &uid) < 0 || (ref = user_ref(r, uid)) == NULL)
            continue; /* a deleted user */
        json_object_set_new(ref, "user", json_integer((json_int_t)uid));
        json_object_set(ref, "role", role);
        json_array_append_new(list, ref);
    }
    owner = user_ref(r, (uint64_t)json_integer_value(json_object_get(ws, "owner")));
    json_decref(ws);
    *out = json_pack("{s:o, s:o}", "owner", owner != NULL ? owner : json_null(), "shares", list);
    return 200;
}

int h_share_list(struct request *r, json_t **out)
{
    return shares_answer(r, out);
}

int h_share_set(struct request *r, json_t **out)
{
    static const char *const allowed[] = {"user", "role", NULL};
    json_t *body = NULL, *ws = NULL;
    const char *name, *role;
    uint64_t uid = 0;
    int st, rc;

    st = h_body_object(r, allowed, &body, out);
    if (st != 0)
        return st;
    name = json_string_value(json_object_get(body, "user"));
    role = json_string_value(json_object_get(body, "role"));
    if (role == NULL || (strcmp(role, "viewer") != 0 && strcmp(role, "editor") != 0)) {
        st = errmap_fail(out, 400, "role", "role must be \"viewer\" or \"editor\"");
        goto out;
    }
    if (name == NULL || ca_user_find(r->portal, name, &uid) != 0) {
        st = errmap_fail(out, 400, "user", "no such user");
        goto out;
    }
    rc = ca_workspace_get(r->portal, r->ids[0], &ws);
    if (rc == 0 && (uint64_t)json_integer_value(json_object_get(ws, "owner")) == uid) {
        st = errmap_fail(out, 400, "user", "the owner already has every right");
        goto out;
    }
    rc = ca_workspace_share(r->portal, r->ids[0], uid, role);
    if (rc < 0) {
        st = errmap_reply(out, rc, NULL, "could not share the workspace");
        goto out;
    }
    r->audit = json_pack("{s:s, s:s}", "user", name, "role", role);
    st = shares_answer(r, out);
out:
    json_decref(ws);
    json_decref(body);
    return st;
}

int h_share_delete(struct request *r, json_t **out)
{
    int rc = ca_workspace_share(r->portal, r->ids[0], r->ids[1], NULL);

    if (rc == CA_ENOTFOUND)
        return errmap_fail(out, 404, NULL, "no such share");
    if (rc < 0)
        return errmap_reply(out, rc, NULL, "could not remove the share");
    r->audit = json_pack("{s:I}", "user", (json_int_t)r->ids[1]);
    return shares_answer(r, out);
}
