/*
 * API handlers, one file per concern (h_auth.c, h_workspaces.c,
 * h_captures.c, h_flows.c, h_jobs.c), and small helpers they share.  Each
 * handler gets a request that passed the router's checks (r->user_id set
 * when the route needs auth) and returns an HTTP status with *out set.
 */
#ifndef CA_HANDLERS_H
#define CA_HANDLERS_H

#include <jansson.h>

#include "http.h"

int h_health(struct request *r, json_t **out);
int h_login(struct request *r, json_t **out);
int h_logout(struct request *r, json_t **out);
int h_me(struct request *r, json_t **out);

int h_workspace_list(struct request *r, json_t **out);
int h_workspace_create(struct request *r, json_t **out);
int h_workspace_get(struct request *r, json_t **out);
int h_workspace_update(struct request *r, json_t **out);
int h_workspace_delete(struct request *r, json_t **out);
int h_workspace_transfer(struct request *r, json_t **out);

/* Account (h_auth.c), users (h_users.c), tokens, shares, audit (issue 5). */
int h_password_change(struct request *r, json_t **out);
int h_session_list(struct request *r, json_t **out);
int h_session_revoke(struct request *r, json_t **out);
int h_user_list(struct request *r, json_t **out);
int h_user_create(struct request *r, json_t **out);
int h_user_get(struct request *r, json_t **out);
int h_user_update(struct request *r, json_t **out);
int h_user_delete(struct request *r, json_t **out);
int h_token_list(struct request *r, json_t **out);
int h_token_create(struct request *r, json_t **out);
int h_token_revoke(struct request *r, json_t **out);
int h_share_list(struct request *r, json_t **out);
int h_share_set(struct request *r, json_t **out);
int h_share_delete(struct request *r, json_t **out);
int h_audit_list(struct request *r, json_t **out);

int h_capture_list(struct request *r, json_t **out);
int h_capture_upload(struct request *r, json_t **out);
/* PUT .../captures?name=: a streamed body (curl -T -), imported while it flows. */
int h_capture_stream(struct request *r, json_t **out);

/* h_imports.c: URL and Azure imports, container listings, cancelling jobs. */
int h_import_url(struct request *r, json_t **out);
int h_import_list(struct request *r, json_t **out);
int h_job_cancel(struct request *r, json_t **out);

int h_job_get(struct request *r, json_t **out);

int h_flow_list(struct request *r, json_t **out);
int h_flow_get(struct request *r, json_t **out);

/* h_query.c, h_export.c: the query engine's endpoints (issue 4). */
int h_query_flows(struct request *r, json_t **out);
int h_query_summary(struct request *r, json_t **out);
int h_query_aggregate(struct request *r, json_t **out);
int h_query_timeline(struct request *r, json_t **out);
int h_query_ip(struct request *r, json_t **out);
int h_query_graph(struct request *r, json_t **out);
int h_query_values(struct request *r, json_t **out);
int h_capture_delete(struct request *r, json_t **out);
int h_export(struct request *r, json_t **out);
int h_flow_pcap(struct request *r, json_t **out);
struct ca_ws;
struct ca_query;
/* Workspace r->ids[0] and its query with the request's `filter`; 0 or a status with *out set
 * (a bad filter: 400 with "position"). */
int h_query_open(struct request *r, struct ca_ws **w, struct ca_query **q, json_t **out);

/*
 * Parses r->body as a JSON object whose keys are all in allowed (NULL
 * terminated).  Returns 0 with *root set, or an HTTP status with *out set
 * to an error naming the field.
 */
int h_body_object(struct request *r, const char *const *allowed, json_t **root, json_t **out);

/*
 * Loads workspace r->ids[0] into *ws (if not NULL) when r->user_id may see
 * it.  Returns 0, or a status with *out set: 404 for unknown and for not
 * yours alike.
 */
int h_workspace_check(struct request *r, uint64_t ws_id, json_t **ws, json_t **out);

/* Public forms of store records (internal fields such as paths removed). */
json_t *h_job_public(json_t *job);
json_t *h_capture_public(json_t *cap);
/* {"id","name","admin"} of a store user object. */
json_t *h_user_public(uint64_t id, json_t *user);

/* Current time, unix seconds. */
long long h_now(void);

#endif
