/*
 * The API's route table and its front-line checks.  api_worker.c finds the
 * route first (its flags decide how the body is read), then dispatches:
 * auth, CSRF and content type are checked once here, before any handler.
 * Handlers return an HTTP status and set *out to a new JSON value; they
 * never write to the stream.
 */
#ifndef CA_ROUTER_H
#define CA_ROUTER_H

#include <jansson.h>

#include "http.h"

enum {
    ROUTE_AUTH = 1,    /* needs a session */
    ROUTE_CSRF = 2,    /* needs X-CSRF-Token equal to the session's */
    ROUTE_UPLOAD = 4,  /* body is a file (REQUEST_BODY_FILE), never read into memory */
    ROUTE_JSON = 8,    /* body must be application/json */
    ROUTE_STREAM = 16, /* body is read by the handler as it arrives (r->body_read) */
};

/*
 * The authorisation action a route needs (see authz.h).  Workspace actions
 * apply to the route's {ws}, or to the workspace of its {job}.
 */
enum route_action {
    ACT_UNSET = 0, /* a route nobody classified: the matrix test fails on it */
    ACT_PUBLIC,    /* no authentication (health, login) */
    ACT_USER,      /* any signed-in user, on their own things (me, tokens, workspace list) */
    ACT_READ,      /* viewer+ on the workspace */
    ACT_EXPORT,    /* viewer+ on the workspace, audited */
    ACT_IMPORT,    /* editor+ (uploads, URL imports, job cancel) */
    ACT_DELETE,    /* editor+ (capture delete) */
    ACT_MANAGE,    /* owner only (settings, shares, transfer, workspace delete) */
    ACT_ADMIN,     /* portal admins (users, quotas, audit log) */
};

typedef int (*route_fn)(struct request *r, json_t **out);

struct route {
    const char *method;
    const char *pattern;
    unsigned flags;
    route_fn fn;
    int action; /* enum route_action */
};

/*
 * Route for method and path, with the pattern's ids stored in ids[].
 * NULL when none: *status is then 404 (unknown path) or 405 (known path,
 * other method) and *out an error body.
 */
const struct route *router_find(const char *method, const char *path, uint64_t ids[HTTP_PATH_IDS],
                                int *status, json_t **out);

/* Front-line checks, then the handler.  Returns the status; *out is set. */
int router_dispatch(const struct route *rt, struct request *r, json_t **out);

/* The route table as JSON: [{"method","pattern","flags":[...],"action"}] (capatlasd routes). */
json_t *router_table_json(void);

#endif
