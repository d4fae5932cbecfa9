/*
 * Workspaces: list, create, get.  A workspace the user does not own
 * answers 404 exactly like an unknown id.
 */
#include <string.h>

#include "ca_error.h"
#include "errmap.h"
#include "handlers.h"
#include "store.h"

#define WS_NAME_MAX 100
#define WS_DESC_MAX 2000

int h_workspace_list(struct request *r, json_t **out)
{
    json_t *list = NULL;
    int rc = ca_workspace_list(r->portal, r->user_id, &list);

    if (rc < 0)
        return errmap_reply(out, rc, NULL, "could not list workspaces");
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

int h_workspace_get(struct request *r, json_t **out)
{
    json_t *ws = NULL;
    int st = h_workspace_check(r, r->ids[0], &ws, out);

    if (st != 0)
        return st;
    *out = json_pack("{s:o}", "workspace", ws);
    return 200;
}
