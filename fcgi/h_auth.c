/*
 * Health, login, logout, who-am-I, and the account's own settings
 * (password, sessions).  Login answers the same message for an unknown
 * user and a wrong password (ca_user_verify also takes the same time for
 * both), so accounts cannot be probed; the account lockout counts failures
 * per name typed, existing or not, and answers 429 while locked.
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

/* The name typed at a failed login, for the audit log: only if it could be a user name. */
static const char *audit_name(const char *name)
{
    size_t n = strlen(name);

    if (n > 64 ||
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-") != n)
        return "(not a user name)";
    return name;
}

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
    int64_t retry = 0;
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
    rc = ca_login_check(r->portal, name, &retry);
    if (rc == CA_EBUSY) {
        /* Unknown names lock the same way, so this says nothing about the account. */
        log_line("login refused (account locked) from %s",
                 r->remote_addr != NULL ? r->remote_addr : "?");
        (void)ca_audit_add(r->portal, 0, audit_name(name), r->remote_addr, "login_locked", "",
                           NULL);
        st = errmap_fail(out, 429, NULL,
                         "too many failed logins for this account: try again in %lld seconds",
                         (long long)retry);
        goto out;
    }
    rc = ca_user_verify(r->portal, name, pw, &uid);
    if (rc == CA_EAUTH || rc == CA_ENOTFOUND || rc == CA_EINVAL) {
        log_line("login failed from %s", r->remote_addr != NULL ? r->remote_addr : "?");
        (void)ca_login_record(r->portal, name, 1);
        (void)ca_audit_add(r->portal, 0, audit_name(name), r->remote_addr, "login_failed", "",
                           NULL);
        st = errmap_fail(out, 401, NULL, "wrong username or password");
        goto out;
    }
    (void)ca_login_record(r->portal, name, 0);
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
    (void)ca_audit_add(r->portal, uid, name, r->remote_addr, "login", "", NULL);
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

    (void)ca_audit_add(r->portal, r->user_id, json_string_value(json_object_get(r->user, "name")),
                       r->remote_addr, "logout", "", NULL);
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

/* POST /api/me/password {"current","new"}: other sessions are revoked. */
int h_password_change(struct request *r, json_t **out)
{
    static const char *const allowed[] = {"current", "new", NULL};
    const char *name = json_string_value(json_object_get(r->user, "name"));
    json_t *body = NULL;
    const char *cur, *pw;
    char err[256] = "";
    uint64_t uid = 0;
    int64_t retry = 0;
    int st, rc;

    if (r->via_token)
        return errmap_fail(out, 403, "Authorization",
                           "an API token cannot change the password; sign in");
    st = h_body_object(r, allowed, &body, out);
    if (st != 0)
        return st;
    cur = json_string_value(json_object_get(body, "current"));
    pw = json_string_value(json_object_get(body, "new"));
    if (cur == NULL || strlen(cur) > LOGIN_FIELD_MAX) {
        st = errmap_fail(out, 400, "current", "current must be your current password");
        goto out;
    }
    if (pw == NULL || strlen(pw) > LOGIN_FIELD_MAX) {
        st = errmap_fail(out, 400, "new", "new must be a string");
        goto out;
    }
    /* The same lockout as login, so a stolen session cannot guess the password. */
    if (name != NULL && ca_login_check(r->portal, name, &retry) == CA_EBUSY) {
        st = errmap_fail(out, 429, "current",
                         "too many wrong passwords for this account: try again in %lld seconds",
                         (long long)retry);
        goto out;
    }
    if (name == NULL || ca_user_verify(r->portal, name, cur, &uid) != 0 || uid != r->user_id) {
        if (name != NULL)
            (void)ca_login_record(r->portal, name, 1);
        st = errmap_fail(out, 400, "current", "the current password is wrong");
        goto out;
    }
    rc = ca_user_set_password(r->portal, r->user_id, pw, err, sizeof(err));
    if (rc < 0) {
        st = errmap_reply(out, rc, rc == CA_EINVAL ? "new" : NULL, err);
        goto out;
    }
    (void)ca_session_revoke_user(r->portal, r->user_id, r->session);
    *out = json_pack("{s:b}", "ok", 1);
    st = 200;
out:
    json_decref(body);
    return st;
}

int h_session_list(struct request *r, json_t **out)
{
    json_t *list = NULL;
    int rc = ca_session_list(r->portal, r->user_id, r->session, &list);

    if (rc < 0)
        return errmap_reply(out, rc, NULL, "could not list sessions");
    *out = json_pack("{s:o}", "sessions", list);
    return 200;
}

int h_session_revoke(struct request *r, json_t **out)
{
    json_t *list = NULL, *s;
    size_t i;
    int current = 0, rc;

    /* Is it the session making this request?  Then also clear its cookie. */
    if (ca_session_list(r->portal, r->user_id, r->session, &list) == 0) {
        for (i = 0; i < json_array_size(list); i++) {
            s = json_array_get(list, i);
            if ((uint64_t)json_integer_value(json_object_get(s, "id")) == r->ids[0] &&
                json_is_true(json_object_get(s, "current")))
                current = 1;
        }
    }
    json_decref(list);
    rc = ca_session_revoke(r->portal, r->user_id, r->ids[0]);
    if (rc == CA_ENOTFOUND)
        return errmap_fail(out, 404, NULL, "no such session");
    if (rc < 0)
        return errmap_reply(out, rc, NULL, "could not revoke the session");
    if (current)
        r->set_cookie = strdup("__Host-capatlas=; " COOKIE_ATTRS "; Max-Age=0");
    *out = json_pack("{s:b}", "ok", 1);
    return 200;
}
