/*
 * User administration for portal admins (the router allows these routes
 * to admins only): list, create, show, change (admin flag, disabled,
 * quota, password reset) and delete.  An admin cannot disable, demote or
 * delete their own account, so a portal never loses its last admin by a
 * slip.  Disabling or resetting a password revokes the user's sessions.
 */
#include <string.h>

#include "ca_error.h"
#include "errmap.h"
#include "handlers.h"
#include "store.h"

#define PW_FIELD_MAX 1024

/* {"id","name","admin","disabled","created","quota","used"} of user id. */
static int user_public_full(struct request *r, uint64_t id, json_t **user, json_t **out)
{
    json_t *u = NULL;
    uint64_t used = 0;
    int rc = ca_user_get(r->portal, id, &u);

    *user = NULL;
    if (rc == CA_ENOTFOUND)
        return errmap_fail(out, 404, NULL, "no such user");
    if (rc < 0)
        return errmap_reply(out, rc, NULL, "user lookup failed");
    (void)ca_user_usage(r->portal, id, &used);
    json_object_set_new(u, "used", json_integer((json_int_t)used));
    if (json_object_get(u, "quota") == NULL)
        json_object_set_new(u, "quota", json_null());
    if (json_object_get(u, "disabled") == NULL)
        json_object_set_new(u, "disabled", json_false());
    *user = u;
    return 0;
}

int h_user_list(struct request *r, json_t **out)
{
    json_t *list = NULL;
    int rc = ca_user_list(r->portal, &list);

    if (rc < 0)
        return errmap_reply(out, rc, NULL, "could not list users");
    *out = json_pack("{s:o}", "users", list);
    return 200;
}

static int check_quota(json_t *q, json_t **out)
{
    if (q != NULL && !json_is_null(q) && !(json_is_integer(q) && json_integer_value(q) >= 0))
        return errmap_fail(out, 400, "quota",
                           "quota must be a number of bytes (0 or more) or null");
    return 0;
}

int h_user_create(struct request *r, json_t **out)
{
    static const char *const allowed[] = {"name", "password", "admin", "quota", NULL};
    json_t *body = NULL, *user = NULL, *jadmin, *jquota;
    const char *name, *pw;
    char err[256] = "";
    uint64_t id = 0;
    int st, rc;

    st = h_body_object(r, allowed, &body, out);
    if (st != 0)
        return st;
    name = json_string_value(json_object_get(body, "name"));
    pw = json_string_value(json_object_get(body, "password"));
    jadmin = json_object_get(body, "admin");
    jquota = json_object_get(body, "quota");
    if (name == NULL) {
        st = errmap_fail(out, 400, "name", "name must be a string");
        goto out;
    }
    if (pw == NULL || strlen(pw) > PW_FIELD_MAX) {
        st = errmap_fail(out, 400, "password", "password must be a string");
        goto out;
    }
    if (jadmin != NULL && !json_is_boolean(jadmin)) {
        st = errmap_fail(out, 400, "admin", "admin must be true or false");
        goto out;
    }
    if ((st = check_quota(jquota, out)) != 0)
        goto out;
    rc = ca_user_create(r->portal, name, pw, json_is_true(jadmin), &id, err, sizeof(err));
    if (rc < 0) {
        st = errmap_reply(out, rc,
                          rc == CA_EINVAL   ? (strstr(err, "password") ? "password" : "name")
                          : rc == CA_EEXIST ? "name"
                                            : NULL,
                          err);
        goto out;
    }
    if (jquota != NULL && !json_is_null(jquota)) {
        json_t *f = json_pack("{s:O}", "quota", jquota);

        (void)ca_user_update(r->portal, id, f, NULL, 0);
        json_decref(f);
    }
    st = user_public_full(r, id, &user, out);
    if (st != 0)
        goto out;
    r->audit = json_pack("{s:s}", "name", name);
    *out = json_pack("{s:o}", "user", user);
    st = 201;
out:
    json_decref(body);
    return st;
}

int h_user_get(struct request *r, json_t **out)
{
    json_t *user = NULL;
    int st = user_public_full(r, r->ids[0], &user, out);

    if (st != 0)
        return st;
    *out = json_pack("{s:o}", "user", user);
    return 200;
}

int h_user_update(struct request *r, json_t **out)
{
    static const char *const allowed[] = {"admin", "disabled", "quota", "password", NULL};
    json_t *body = NULL, *fields = NULL, *user = NULL, *v;
    const char *pw = NULL;
    char err[256] = "";
    int st, rc;

    st = h_body_object(r, allowed, &body, out);
    if (st != 0)
        return st;
    st = user_public_full(r, r->ids[0], &user, out);
    if (st != 0)
        goto out;
    json_decref(user);
    user = NULL;
    if ((v = json_object_get(body, "password")) != NULL) {
        pw = json_string_value(v);
        if (pw == NULL || strlen(pw) > PW_FIELD_MAX) {
            st = errmap_fail(out, 400, "password", "password must be a string");
            goto out;
        }
    }
    if ((st = check_quota(json_object_get(body, "quota"), out)) != 0)
        goto out;
    if (r->ids[0] == r->user_id && (json_is_false(json_object_get(body, "admin")) ||
                                    json_is_true(json_object_get(body, "disabled")))) {
        st = errmap_fail(out, 400,
                         json_is_true(json_object_get(body, "disabled")) ? "disabled" : "admin",
                         "you cannot disable or demote your own account");
        goto out;
    }
    fields = json_deep_copy(body);
    json_object_del(fields, "password");
    if (pw != NULL) {
        rc = ca_user_set_password(r->portal, r->ids[0], pw, err, sizeof(err));
        if (rc < 0) {
            st = errmap_reply(out, rc, rc == CA_EINVAL ? "password" : NULL, err);
            goto out;
        }
        (void)ca_session_revoke_user(r->portal, r->ids[0], NULL);
    }
    if (json_object_size(fields) > 0) {
        rc = ca_user_update(r->portal, r->ids[0], fields, err, sizeof(err));
        if (rc < 0) {
            st = errmap_reply(out, rc, NULL, err);
            goto out;
        }
    }
    r->audit = json_deep_copy(fields);
    if (pw != NULL && r->audit != NULL)
        json_object_set_new(r->audit, "password", json_string("(reset)"));
    st = user_public_full(r, r->ids[0], &user, out);
    if (st != 0)
        goto out;
    *out = json_pack("{s:o}", "user", user);
    st = 200;
out:
    json_decref(fields);
    json_decref(body);
    return st;
}

int h_user_delete(struct request *r, json_t **out)
{
    json_t *user = NULL;
    int st, rc;

    if (r->ids[0] == r->user_id)
        return errmap_fail(out, 400, NULL, "you cannot delete your own account");
    st = user_public_full(r, r->ids[0], &user, out);
    if (st != 0)
        return st;
    r->audit = json_pack("{s:O}", "name", json_object_get(user, "name"));
    json_decref(user);
    rc = ca_user_delete(r->portal, r->ids[0]);
    if (rc < 0)
        return errmap_reply(out, rc, NULL, "could not delete the user");
    *out = json_pack("{s:b}", "ok", 1);
    return 200;
}
