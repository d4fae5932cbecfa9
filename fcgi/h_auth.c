/*
 * Health, login, logout, and who-am-I.  Login answers the same message for
 * an unknown user and a wrong password (ca_user_verify also takes the same
 * time for both), so accounts cannot be probed.
 */
#include <stdio.h>
#include <string.h>

#include "ca_error.h"
#include "errmap.h"
#include "handlers.h"
#include "log.h"
#include "store.h"

#define COOKIE_ATTRS "Path=/; Secure; HttpOnly; SameSite=Strict"
#define LOGIN_FIELD_MAX 1024

int h_health(struct request *r, json_t **out)
{
    *out = json_pack("{s:s, s:s}", "status", "ok", "version", "0.1.0");
    return 200;
}

int h_login(struct request *r, json_t **out)
{
    static const char *const allowed[] = {"username", "password", NULL};
    json_t *body = NULL, *u = NULL, *user = NULL;
    const char *name, *pw;
    char token[65], csrf[65];
    uint64_t uid;
    int st, rc;

    st = h_body_object(r, allowed, &body, out);
    if (st != 0)
        return st;
    name = json_string_value(json_object_get(body, "username"));
    pw = json_string_value(json_object_get(body, "password"));
    if (name == NULL || *name == '\0' || strlen(name) > LOGIN_FIELD_MAX) {
        st = errmap_fail(out, 400, "username", "username must be a non-empty string");
        goto out;
    }
    if (pw == NULL || *pw == '\0' || strlen(pw) > LOGIN_FIELD_MAX) {
        st = errmap_fail(out, 400, "password", "password must be a non-empty string");
        goto out;
    }
    rc = ca_user_verify(r->portal, name, pw, &uid);
    if (rc == CA_EAUTH || rc == CA_ENOTFOUND || rc == CA_EINVAL) {
        log_line("login failed from %s", r->remote_addr != NULL ? r->remote_addr : "?");
        st = errmap_fail(out, 401, NULL, "wrong username or password");
        goto out;
    }
    if (rc < 0) {
        st = errmap_reply(out, rc, NULL, "login failed");
        goto out;
    }
    rc = ca_user_get(r->portal, uid, &u);
    if (rc < 0) {
        st = errmap_reply(out, rc, NULL, "user lookup failed");
        goto out;
    }
    rc = ca_session_create(r->portal, uid, r->remote_addr != NULL ? r->remote_addr : "", token,
                           csrf);
    if (rc < 0) {
        st = errmap_reply(out, rc, NULL, "session creation failed");
        goto out;
    }
    user = h_user_public(uid, u);
    *out = json_pack("{s:o, s:s}", "user", user, "csrf", csrf);
    user = NULL;
    if (*out == NULL) {
        ca_session_delete(r->portal, token);
        st = errmap_reply(out, CA_ENOMEM, NULL, NULL);
        goto out;
    }
    if (asprintf(&r->set_cookie, "__Host-capatlas=%s; " COOKIE_ATTRS, token) < 0) {
        r->set_cookie = NULL;
        json_decref(*out);
        ca_session_delete(r->portal, token);
        st = errmap_reply(out, CA_ENOMEM, NULL, NULL);
        goto out;
    }
    log_line("login user %llu from %s", (unsigned long long)uid,
             r->remote_addr != NULL ? r->remote_addr : "?");
    st = 200;
out:
    memset(token, 0, sizeof(token));
    json_decref(user);
    json_decref(u);
    json_decref(body);
    return st;
}

int h_logout(struct request *r, json_t **out)
{
    int rc = ca_session_delete(r->portal, r->session);

    if (rc < 0 && rc != CA_ENOTFOUND && rc != CA_EAUTH)
        return errmap_reply(out, rc, NULL, "logout failed");
    r->set_cookie = strdup("__Host-capatlas=; " COOKIE_ATTRS "; Max-Age=0");
    *out = json_pack("{s:b}", "ok", 1);
    return 200;
}

int h_me(struct request *r, json_t **out)
{
    *out = json_pack("{s:O, s:s}", "user", r->user, "csrf", r->csrf);
    return 200;
}
