/*
 * The store: LMDB environments for the portal (users, sessions,
 * workspaces, jobs) and one per workspace (captures and flows).
 * Only core/store_portal.c and core/store_ws.c include <lmdb.h>; the key
 * schema is documented at the top of each.
 *
 * Layout on disk, under the data folder D:
 *   D/portal/                 portal LMDB environment
 *   D/workspaces/<id>/db/     workspace LMDB environment
 *   D/workspaces/<id>/captures/<capture id>.cap   original capture files
 *
 * Records exchanged as jansson objects are owned by the caller (one new
 * reference each).  Ids are positive 64-bit integers, never reused.
 * Every function returns 0 or a negative ca_err; err/errlen may be NULL.
 * Handles are per process: open after fork.
 */
#ifndef CA_STORE_H
#define CA_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "flow.h"

struct ca_portal;
struct ca_ws;

/* ---- portal ---------------------------------------------------------- */

int ca_portal_open(const char *datadir, struct ca_portal **out, char *err, size_t errlen);
void ca_portal_close(struct ca_portal *p); /* accepts NULL */
const char *ca_portal_datadir(const struct ca_portal *p);

/*
 * Users.  User object: {"id", "name", "admin": bool, "disabled": bool,
 * "created": unix seconds}.  The password hash is never returned.
 * ca_user_create: CA_EEXIST if the name is taken, CA_EINVAL if the name is
 * not [A-Za-z0-9._@-]{1,64} or the password is shorter than
 * CA_PASSWORD_MIN (message names which).
 */
int ca_user_create(struct ca_portal *p, const char *name, const char *password, int admin,
                   uint64_t *id_out, char *err, size_t errlen);
/* 0 and *id_out, or CA_EAUTH for unknown user, disabled user or bad password
 * (same time either way). */
int ca_user_verify(struct ca_portal *p, const char *name, const char *password, uint64_t *id_out);
int ca_user_get(struct ca_portal *p, uint64_t id, json_t **out);
int ca_user_count(struct ca_portal *p, uint64_t *n);
int ca_user_set_password(struct ca_portal *p, uint64_t id, const char *password, char *err,
                         size_t errlen);

/*
 * Sessions.  The token (64 hex) goes to the client; only its SHA-256 is
 * stored.  ca_session_lookup returns CA_EAUTH for unknown or expired
 * sessions (idle 12 h, absolute 7 d) and refreshes last-seen.
 */
int ca_session_create(struct ca_portal *p, uint64_t user_id, const char *client_addr,
                      char token_out[65], char csrf_out[65]);
int ca_session_lookup(struct ca_portal *p, const char *token, uint64_t *user_id, char csrf_out[65]);
int ca_session_delete(struct ca_portal *p, const char *token);
/* Removes every expired session (housekeeping, e.g. from the supervisor). */
int ca_session_purge_expired(struct ca_portal *p, int *n_purged);

/*
 * Workspaces.  Object: {"id", "name", "description", "owner", "created",
 * "bytes": stored capture bytes, "captures": n}.  ca_workspace_list
 * returns the workspaces user_id may see (own ones for now) as an array.
 * ca_workspace_create also creates D/workspaces/<id>/ and its environment.
 */
int ca_workspace_create(struct ca_portal *p, uint64_t owner, const char *name,
                        const char *description, uint64_t *id_out, char *err, size_t errlen);
int ca_workspace_get(struct ca_portal *p, uint64_t id, json_t **out);
int ca_workspace_list(struct ca_portal *p, uint64_t user_id, json_t **out);
int ca_workspace_delete(struct ca_portal *p, uint64_t id);

/*
 * Jobs: background work taken by import workers.  Object: {"id",
 * "workspace", "capture", "kind": "import", "source": display string,
 * "path": file to import, "state": "queued"|"running"|"done"|"failed",
 * "error": string|null, "bytes_total", "bytes_done", "packets_done",
 * "created", "started", "finished", "worker_pid"}.
 * ca_job_claim atomically moves the oldest queued job to running for pid;
 * CA_ENOTFOUND when none is queued.  ca_job_update merges the given
 * fields into the job.  ca_job_requeue_orphans sets running jobs whose
 * worker pid is not alive (kill(pid,0)) back to queued.
 */
int ca_job_create(struct ca_portal *p, json_t *job, uint64_t *id_out);
int ca_job_get(struct ca_portal *p, uint64_t id, json_t **out);
int ca_job_claim(struct ca_portal *p, pid_t pid, json_t **out);
int ca_job_update(struct ca_portal *p, uint64_t id, json_t *fields);
int ca_job_requeue_orphans(struct ca_portal *p, int *n_requeued);

/* ---- workspace -------------------------------------------------------- */

/* D/workspaces/<id> into buf. */
int ca_ws_dir(const char *datadir, uint64_t ws_id, char *buf, size_t len);

/*
 * CA_ENOTFOUND when the workspace has no environment.  Within a process,
 * opening the same workspace again returns the same handle with a
 * reference added (LMDB forbids two handles on one environment in one
 * process); each ca_ws_open needs its ca_ws_close.  Not thread-safe.
 */
int ca_ws_open(const char *datadir, uint64_t ws_id, struct ca_ws **out, char *err, size_t errlen);
void ca_ws_close(struct ca_ws *w); /* accepts NULL */

/*
 * Captures.  Object: {"id", "name", "source", "size", "state":
 * "queued"|"importing"|"ready"|"failed", "error", "report": {...}|null,
 * "created", "path": file under D/workspaces/<id>/captures/}.
 * Ids are 32-bit, per workspace, starting at 1.
 */
int ca_ws_capture_add(struct ca_ws *w, json_t *meta, uint32_t *id_out);
int ca_ws_capture_get(struct ca_ws *w, uint32_t id, json_t **out);
int ca_ws_capture_update(struct ca_ws *w, uint32_t id, json_t *fields);
int ca_ws_capture_list(struct ca_ws *w, json_t **out);
/* Number of captures and the sum of their "size" (either pointer may be NULL). */
int ca_ws_stats(struct ca_ws *w, uint64_t *captures, uint64_t *bytes);

/*
 * Import protocol: ca_ws_capture_purge_flows first (removes leftovers of a
 * crashed attempt), then ca_ws_flows_put for each batch (committed but
 * invisible: readers only see flows of captures whose state is "ready"),
 * then ca_ws_capture_finish which sets state "ready" and the report in one
 * commit.  Flow ids are assigned here (capture_id << 32 | seq, seq from 1).
 */
int ca_ws_capture_purge_flows(struct ca_ws *w, uint32_t capture_id);
int ca_ws_flows_put(struct ca_ws *w, uint32_t capture_id, const struct ca_flow *flows, size_t n);
int ca_ws_capture_finish(struct ca_ws *w, uint32_t capture_id, json_t *report);
/* Removes the capture record, its flows, and its file. */
int ca_ws_capture_delete(struct ca_ws *w, uint32_t capture_id);

/*
 * One page of visible flows in id order, starting after after_id (0 = from
 * the start).  *out is an array of flow objects (ca_flow_to_json);
 * *next_after is the id to pass for the next page, 0 when there is none.
 * *total (if not NULL) is the number of visible flows.
 */
int ca_ws_flows_page(struct ca_ws *w, uint64_t after_id, size_t limit, json_t **out,
                     uint64_t *next_after, uint64_t *total);
int ca_ws_flow_get(struct ca_ws *w, uint64_t flow_id, struct ca_flow *out);

#endif
