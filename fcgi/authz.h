/*
 * Authorisation: the one check that maps (user, workspace, action) to
 * allow or deny.  Each route in router.c names the action it needs
 * (enum route_action in router.h); the router runs authz before any
 * handler, so handlers call nothing extra.
 *
 * Roles on a workspace and the actions they allow:
 *   viewer  read, export
 *   editor  read, export, import, delete (captures, jobs)
 *   owner   everything, including manage (settings, sharing, transfer, delete)
 * The portal admin flag allows the admin actions (users, quotas, audit) and
 * gives no access to other users' workspaces.  A workspace the user has no
 * role on answers 404 exactly like an unknown id; a role that is too weak
 * answers 403.  Read-only API tokens may only use GET routes.
 */
#ifndef CA_AUTHZ_H
#define CA_AUTHZ_H

#include <jansson.h>

#include "http.h"
#include "router.h"

/* Name of an action ("read", "export", ...; "unset" for 0). */
const char *authz_action_name(int action);

/* 1 if role ("owner", "editor", "viewer") allows action on a workspace. */
int authz_role_allows(const char *role, int action);

/*
 * Authenticates r from its session cookie or its "Authorization: Bearer"
 * API token: sets r->user_id, r->user, r->session or r->via_token and
 * r->token_readonly.  0, or 401 with *out set.
 */
int authz_authenticate(struct request *r, json_t **out);

/*
 * The decision for an authenticated request on route rt: admin actions
 * need the admin flag (403), workspace actions a role allowing the action
 * on the route's workspace ({ws}, or the workspace of {job}): 404 without
 * a role, 403 with a weaker one.  Sets r->role.  0, or a status with *out.
 */
int authz_route(const struct route *rt, struct request *r, json_t **out);

/*
 * Import routes: refuses (413, field "quota") an upload that would take the
 * workspace owner past their quota (upload: the body's size counts), or
 * any other import (URL, stream) once the owner is at or over it.  0, or a
 * status with *out.
 */
int authz_quota(struct request *r, int upload, json_t **out);

/* Records a successful state-changing request (or an export) in the audit log. */
void authz_audit(const struct route *rt, struct request *r, int status);

/* At most every CAPATLAS_HOUSEKEEPING_SECONDS (60): EOL purge, expired sessions. */
void authz_housekeeping(struct ca_portal *p);

#endif
