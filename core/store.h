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
 * returns the workspaces user_id may see (own and shared) as an array.
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

/* ---- portal: accounts, tokens, sharing, audit (issue 5) ---------------- */

/*
 * Expiry and throttle settings are read from the environment (seconds),
 * so tests need not wait hours: CAPATLAS_SESSION_IDLE (12 h),
 * CAPATLAS_SESSION_MAX_AGE (7 d), CAPATLAS_LOGIN_MAX_FAILS (5),
 * CAPATLAS_LOGIN_LOCK_SECONDS (30, doubled per further failure, at most 1 h).
 */

/* User id by name; CA_ENOTFOUND when none. */
int ca_user_find(struct ca_portal *p, const char *name, uint64_t *id);
/* Array of user objects plus "quota" (bytes|null) and "used" (bytes in owned workspaces). */
int ca_user_list(struct ca_portal *p, json_t **out);
/*
 * Merges fields into a user: "admin", "disabled" (bool), "quota" (bytes or
 * null).  Disabling revokes every session of the user.
 */
int ca_user_update(struct ca_portal *p, uint64_t id, json_t *fields, char *err, size_t errlen);
/* Removes the user, their sessions and tokens, their workspaces, and shares given to them. */
int ca_user_delete(struct ca_portal *p, uint64_t id);
/* Sum of stored capture bytes over the workspaces id owns (the quota's measure). */
int ca_user_usage(struct ca_portal *p, uint64_t id, uint64_t *bytes);

/*
 * Account lockout, keyed by the login name as typed (unknown names too).
 * ca_login_check: CA_EBUSY with *retry_after seconds while locked.
 * ca_login_record: failed=1 counts a failure, failed=0 clears the count.
 */
int ca_login_check(struct ca_portal *p, const char *name, int64_t *retry_after);
int ca_login_record(struct ca_portal *p, const char *name, int failed);

/*
 * A user's live sessions: [{"id","created","last_seen","addr","current"}];
 * current marks the one whose token is given (may be NULL).
 * ca_session_revoke: CA_ENOTFOUND unless session_id is user_id's.
 * ca_session_revoke_user: all of the user's sessions but keep_token's (may be NULL).
 */
int ca_session_list(struct ca_portal *p, uint64_t user_id, const char *current, json_t **out);
int ca_session_revoke(struct ca_portal *p, uint64_t user_id, uint64_t session_id);
int ca_session_revoke_user(struct ca_portal *p, uint64_t user_id, const char *keep_token);

/*
 * API tokens: "cat_" + 64 hex, shown once; only the SHA-256 is stored.
 * Record: {"id","name","readonly","created","expires"|null,"last_used"|null}.
 * expires: unix seconds, 0 = never.  ca_token_lookup: CA_EAUTH for unknown
 * or expired tokens.  ca_token_revoke: CA_ENOTFOUND unless it is user_id's.
 */
#define CA_TOKEN_LEN 68
int ca_token_create(struct ca_portal *p, uint64_t user_id, const char *name, int readonly,
                    int64_t expires, char token_out[CA_TOKEN_LEN + 1], json_t **rec_out, char *err,
                    size_t errlen);
int ca_token_lookup(struct ca_portal *p, const char *token, uint64_t *user_id, int *readonly);
int ca_token_list(struct ca_portal *p, uint64_t user_id, json_t **out);
int ca_token_revoke(struct ca_portal *p, uint64_t user_id, uint64_t token_id);

/*
 * Workspace access.  A workspace record may carry "shares" {"<uid>":
 * "viewer"|"editor"} and "eol" (unix seconds|null).  ca_workspace_role:
 * "owner", "editor", "viewer" or NULL (no access, or past its end of
 * life); the string is static.  ca_workspace_list adds "role".
 * ca_workspace_update merges "name", "description", "eol", "owner".
 * ca_workspace_share sets (role "viewer"/"editor") or removes (NULL) a share.
 * ca_workspace_purge_eol deletes every workspace past its end of life.
 */
const char *ca_workspace_role(json_t *ws, uint64_t user_id);
int ca_workspace_update(struct ca_portal *p, uint64_t id, json_t *fields, char *err, size_t errlen);
int ca_workspace_share(struct ca_portal *p, uint64_t id, uint64_t user_id, const char *role);
int ca_workspace_purge_eol(struct ca_portal *p, int *n_purged);

/*
 * Audit log: {"id","time","user"|null,"user_name"|null,"addr","action",
 * "target","detail"|null}; detail is copied.  ca_audit_list pages newest
 * first: entries with id < before (0 = from the newest), *next_before 0
 * when there are no more.
 */
int ca_audit_add(struct ca_portal *p, uint64_t user_id, const char *user_name, const char *addr,
                 const char *action, const char *target, json_t *detail);
int ca_audit_list(struct ca_portal *p, uint64_t before, size_t limit, json_t **out,
                  uint64_t *next_before);

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
 * Keep up to n environments open after their last ca_ws_close (default 0),
 * for processes answering many requests; call it after fork, never in a
 * process that forks workers afterwards.
 */
void ca_ws_keep_idle(int n);
/*
 * An import cuts its capture's pre-computed tables into parts of at least
 * n flows (default CA_WS_PART_FLOWS; 0: the default), so that the memory
 * an import takes does not grow with the capture.  Tests set it small.
 */
#define CA_WS_PART_FLOWS 131072
void ca_ws_set_part_flows(size_t n);
/*
 * The leaves of the address B-tree a commit that moves staged addresses
 * into it may change, about (default CA_WS_DIRTY_LEAVES; 0: the default):
 * LMDB holds a commit's changed pages in memory.  Tests set it small.
 */
#define CA_WS_DIRTY_LEAVES 12288
void ca_ws_set_dirty_leaves(size_t n);

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
 * invisible: readers only see flows of captures whose state is "ready";
 * a few batches go in one commit, so a batch may stay buffered in the
 * handle until a later call, ca_ws_capture_finish or the handle's close),
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

/*
 * Query side.  Every flow also has a fixed-width "hot" record holding what
 * filters and aggregations read (written with the flow by ca_ws_flows_put,
 * in chunks of one batch), so a query scans memory-mapped arrays instead of
 * decoding full records.  Names are interned per workspace: the ids below
 * index a string table (0 = empty).  Capture id and flow seq come from the
 * chunk (flow id = capture << 32 | seq).
 */
struct ca_hot {
    uint8_t src[16]; /* client; IPv4 in the first 4 bytes */
    uint8_t dst[16]; /* server */
    int64_t first_ns;
    int64_t last_ns;
    uint64_t sent_bytes; /* client -> server, wire bytes */
    uint64_t recv_bytes;
    uint32_t sent_pkts;
    uint32_t recv_pkts;
    uint32_t src_asn;
    uint32_t dst_asn;
    uint32_t host_id;  /* CA_STR_HOST: SNI / Host / DNS query */
    uint32_t dns_id;   /* CA_STR_HOST: passive-DNS name */
    uint32_t proto_id; /* CA_STR_PROTO: l7_name ("TLS.Azure") */
    uint32_t cat_id;   /* CA_STR_CATEGORY */
    uint32_t risks_id; /* CA_STR_RISKS: comma-separated risk names */
    uint16_t src_port;
    uint16_t dst_port;
    uint16_t vlan;
    char src_cc[2];
    char dst_cc[2];
    uint8_t l4;
    uint8_t ip_version;
    uint8_t tcp_state;
    uint8_t nrisks;
    uint8_t pad[6];   /* room for fields to come; zero */
    uint32_t src_aid; /* workspace address ids (1..): dense keys for distinct */
    uint32_t dst_aid; /* counts and address group-bys; 0 = not assigned */
};

/*
 * A flow's duration, last_ns - first_ns, held at the int64 limits instead
 * of overflowing: a capture's timestamps are hostile (a clock that jumps by
 * decades).  The filter and the queries use it.
 */
static inline int64_t ca_hot_duration(const struct ca_hot *h)
{
    int64_t d;

    if (__builtin_sub_overflow(h->last_ns, h->first_ns, &d))
        return h->last_ns > h->first_ns ? INT64_MAX : INT64_MIN;
    return d;
}

enum ca_str_kind { CA_STR_HOST = 1, CA_STR_PROTO, CA_STR_CATEGORY, CA_STR_RISKS };

/*
 * A snapshot: one read transaction and the set of ready captures.  Pointers
 * it hands out (hot arrays, strings) stay valid until ca_ws_snap_close.
 * Keep it short-lived: never hold one across network output.
 */
struct ca_ws_snap;

struct ca_snap_capture {
    uint32_t id;
    uint64_t flows;
    int64_t first_ns, last_ns; /* span of its flows; 0 when unknown */
    char name[128];
};

int ca_ws_snap_open(struct ca_ws *w, struct ca_ws_snap **out);
void ca_ws_snap_close(struct ca_ws_snap *s); /* accepts NULL */
/* Ready captures in id order (owned by the snapshot). */
const struct ca_snap_capture *ca_ws_snap_captures(const struct ca_ws_snap *s, size_t *n);
/*
 * Calls fn for each hot chunk of ready captures, in flow id order, starting
 * with the first flow whose id > after_id; stops after max_chunks chunks
 * (0 = no limit) or when fn returns non-zero (that value is returned).
 * h may be unaligned-safe copy; n >= 1; flow i has id (cap << 32) | (seq0 + i).
 */
typedef int (*ca_hot_fn)(void *arg, uint32_t cap, uint32_t seq0, const struct ca_hot *h, size_t n);
int ca_ws_snap_scan(struct ca_ws_snap *s, uint64_t after_id, size_t max_chunks, ca_hot_fn fn,
                    void *arg);
/*
 * Whether h (handed to a ca_hot_fn) is the snapshot's own copy of a chunk
 * LMDB stored unaligned, overwritten by the next chunk; other chunks stay
 * valid until ca_ws_snap_close.
 */
int ca_ws_snap_hot_is_copy(const struct ca_ws_snap *s, const struct ca_hot *h);
/* One full flow of a ready capture; CA_ENOTFOUND otherwise. */
int ca_ws_snap_flow(struct ca_ws_snap *s, uint64_t flow_id, struct ca_flow *out);
/* Interned string by id ("" for 0 or unknown); valid while s is open. */
const char *ca_ws_snap_str(struct ca_ws_snap *s, uint32_t id);
/* Calls fn for every interned string of a kind (any order); stops on non-zero. */
int ca_ws_snap_str_each(struct ca_ws_snap *s, int kind,
                        int (*fn)(void *arg, uint32_t id, const char *str), void *arg);
/* Largest string id given so far (bitset sizes). */
uint32_t ca_ws_snap_str_max(struct ca_ws_snap *s);
/* Largest address id given so far (struct ca_hot src_aid/dst_aid). */
uint32_t ca_ws_snap_addr_max(struct ca_ws_snap *s);

/*
 * Pre-computed tables of a ready capture (ca_capagg, query.h).  A capture
 * of many flows has some of its tables in parts (ca_ws_set_part_flows),
 * each of a run of consecutive seqs: the tables that grow with its flows
 * (by address, the orders, the address lists) are per part (merge them;
 * part 0 holds the smallest seqs); the others cover the capture and are
 * in part 0 only.  ca_ws_snap_parts: how many parts (1 when the capture
 * was stored before parts existed).
 *
 * ca_ws_snap_capagg_part: table `kind` of one part, unaligned;
 * CA_ENOTFOUND when the capture has none (not ready, or stored before the
 * tables existed) or no such part.  ca_ws_snap_capagg: of part 0.  Valid
 * while s is open.
 */
uint32_t ca_ws_snap_parts(struct ca_ws_snap *s, uint32_t cap);
int ca_ws_snap_capagg_part(struct ca_ws_snap *s, uint32_t cap, uint32_t part, unsigned kind,
                           const void **data, size_t *len);
int ca_ws_snap_capagg(struct ca_ws_snap *s, uint32_t cap, unsigned kind, const void **data,
                      size_t *len);
/*
 * Seqs (uint32_t, native order, ascending, unaligned) of the flows of one
 * part of a ready capture with addr on either side; *n = 0 when none.
 */
int ca_ws_snap_addr_seqs(struct ca_ws_snap *s, uint32_t cap, uint32_t part, int ver,
                         const uint8_t addr[16], const void **seqs, size_t *n);
/* Hot record of one flow (cap, seq); fast when seqs come in ascending order. */
int ca_ws_snap_hot(struct ca_ws_snap *s, uint32_t cap, uint32_t seq, struct ca_hot *out);
/* The same record where it is stored (maybe unaligned: copy it out with
 * memcpy); valid until ca_ws_snap_close. */
int ca_ws_snap_hot_ref(struct ca_ws_snap *s, uint32_t cap, uint32_t seq, const void **out);

/* Fills a hot record from a flow (string ids zero: the store sets them). */
void ca_hot_from_flow(const struct ca_flow *f, struct ca_hot *h);
/* Path of a capture's original file, relative paths resolved against the workspace. */
int ca_ws_capture_file(struct ca_ws *w, uint32_t capture_id, char *buf, size_t len);

#endif
