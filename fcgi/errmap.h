/*
 * The one table from enum ca_err to HTTP status, and the helpers handlers
 * use to build error answers {"error": "...", "field": ... | null}.
 */
#ifndef CA_ERRMAP_H
#define CA_ERRMAP_H

#include <jansson.h>

/* HTTP status for a ca_err (500 for unknown codes). */
int errmap_status(int err);

/*
 * *out = error body for err; returns its status.  msg is the detail from
 * core (may be NULL or empty: ca_strerror is used).  For 5xx statuses the
 * detail is logged and the client gets only the generic text.
 */
int errmap_reply(json_t **out, int err, const char *field, const char *msg);

/* *out = error body with a formatted message; returns status. */
int errmap_fail(json_t **out, int status, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
