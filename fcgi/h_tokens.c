/*
 * API tokens for scripts (Authorization: Bearer cat_...): the owner lists,
 * creates and revokes their own.  The secret is in the creation answer
 * only; the store keeps its SHA-256.  Tokens are made from a signed-in
 * session, not from another token.
 */
#include <string.h>

#include "ca_error.h"
#include "errmap.h"
#include "handlers.h"
#include "store.h"

int h_token_list(struct request *r, json_t **out)
{
    json_t *list = NULL;
    int rc = ca_token_list(r->portal, r->user_id, &list);

    if (rc < 0)
        return errmap_reply(out, rc, NULL, "could not list tokens");
    *out = json_pack("{s:o}", "tokens", list);
    return 200;
}

int h_token_create(struct request *r, json_t **out)
{
    static const char *const allowed[] = {"name", "readonly", "expires", NULL};
    json_t *body = NULL, *rec = NULL, *jro, *jexp;
    char secret[CA_TOKEN_LEN + 1], err[256] = "";
    const char *name;
    int64_t expires = 0;
    int st, rc;

    if (r->via_token)
        return errmap_fail(out, 403, "Authorization", "an API token cannot create tokens; sign in");
    st = h_body_object(r, allowed, &body, out);
    if (st != 0)
        return st;
    name = json_string_value(json_object_get(body, "name"));
    jro = json_object_get(body, "readonly");
    jexp = json_object_get(body, "expires");
    if (name == NULL) {
        st = errmap_fail(out, 400, "name", "name must be a string");
        goto out;
    }
    if (jro != NULL && !json_is_boolean(jro)) {
        st = errmap_fail(out, 400, "readonly", "readonly must be true or false");
        goto out;
    }
    if (jexp != NULL && !json_is_null(jexp)) {
        if (!json_is_integer(jexp) || json_integer_value(jexp) <= h_now()) {
            st = errmap_fail(out, 400, "expires",
                             "expires must be a future time in unix seconds, or null");
            goto out;
        }
        expires = json_integer_value(jexp);
    }
    rc = ca_token_create(r->portal, r->user_id, name, json_is_true(jro), expires, secret, &rec, err,
                         sizeof(err));
    if (rc < 0) {
        st = errmap_reply(out, rc, rc == CA_EINVAL ? "name" : NULL, err);
        goto out;
    }
    r->audit = json_pack("{s:s, s:O?, s:b}", "name", name, "id", json_object_get(rec, "id"),
                         "readonly", json_is_true(jro));
    *out = json_pack("{s:o, s:s}", "token", rec, "secret", secret);
    memset(secret, 0, sizeof(secret));
    st = 201;
out:
    json_decref(body);
    return st;
}

int h_token_revoke(struct request *r, json_t **out)
{
    int rc = ca_token_revoke(r->portal, r->user_id, r->ids[0]);

    if (rc == CA_ENOTFOUND)
        return errmap_fail(out, 404, NULL, "no such token");
    if (rc < 0)
        return errmap_reply(out, rc, NULL, "could not revoke the token");
    *out = json_pack("{s:b}", "ok", 1);
    return 200;
}
