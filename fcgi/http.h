/*
 * One API request as the router and handlers see it, and the pure text
 * parsing behind it: %-decoding, query strings, Cookie headers, path
 * patterns with numeric segments, strict numbers, display names.
 *
 * No FastCGI here: api_worker.c fills struct request from the FastCGI
 * parameters, so this file is testable on its own (tests/unit/test_http.c).
 * Everything a request owns is freed by request_free at the end of the
 * loop turn; the const char * fields point into the FastCGI environment,
 * which lives exactly as long.
 */
#ifndef CA_HTTP_H
#define CA_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define HTTP_BODY_MAX (1024 * 1024) /* JSON bodies; uploads go through files */
#define HTTP_KV_MAX 64              /* query parameters or cookies per request */
#define HTTP_PATH_IDS 3             /* {ws}, {job}, {flow}: at most three per pattern */
#define HTTP_NAME_MAX 200           /* capture display names */

struct ca_portal;
struct config;

struct http_kv {
    char *key;
    char *val;
};

struct request {
    /* from the FastCGI parameters (not owned) */
    const char *method;
    const char *csrf_header;   /* HTTP_X_CSRF_TOKEN */
    const char *authorization; /* HTTP_AUTHORIZATION */
    const char *remote_addr;
    const char *content_type;
    long long content_length; /* -1 when absent */
    /* owned */
    char *path; /* REQUEST_URI up to '?', or DOCUMENT_URI */
    struct http_kv *query;
    size_t nquery;
    struct http_kv *cookies;
    size_t ncookies;
    char *body; /* NUL-terminated; NULL when not read */
    size_t body_len;
    char *body_file;   /* REQUEST_BODY_FILE or a spooled upload */
    int body_consumed; /* set when a handler moved body_file away */
    /* ROUTE_STREAM: reads the next bytes of the body as they arrive; the
     * count, 0 at the end, -1 on an error.  NULL for other routes. */
    long (*body_read)(struct request *r, char *buf, size_t len);
    void *body_stream; /* the FastCGI input stream behind body_read */
    /* filled by the router */
    uint64_t ids[HTTP_PATH_IDS];
    uint64_t user_id; /* 0 when not authenticated */
    json_t *user;     /* {"id","name","admin"} of the session's user */
    char session[65]; /* the cookie's token, for logout */
    char csrf[65];
    int via_token;      /* authenticated by an API token (no cookie, no CSRF) */
    int token_readonly; /* ... a read-only one */
    char role[8];       /* "owner"/"editor"/"viewer" on the route's workspace, or "" */
    json_t *audit;      /* optional detail a handler adds to the audit entry (owned) */
    /* response extras set by handlers */
    char *set_cookie;
    /*
     * Streamed answer (exports): a handler that sets stream_fn returns 200
     * with any JSON in *out (ignored); the worker then writes the headers
     * (stream_type, Content-Disposition from stream_name) and calls
     * stream_fn with a writer for the body.  stream_free(stream_arg) runs
     * at request_free.  write returns 0, or -1 when the client is gone.
     */
    int (*stream_fn)(void *arg, int (*write)(void *wctx, const void *buf, size_t len), void *wctx);
    void *stream_arg;
    void (*stream_free)(void *arg);
    const char *stream_type; /* static string */
    char stream_name[128];   /* download file name, [A-Za-z0-9._-] only */
    /* per-process context */
    struct ca_portal *portal;
    const struct config *conf;
};

/* Frees what r owns and unlinks an unconsumed body_file.  Accepts NULL. */
void request_free(struct request *r);

/*
 * %-decodes in[0..len) into out (outlen >= len + 1 always suffices);
 * plus_space turns '+' into ' ' (query strings).  Returns the decoded
 * length, or -1 for a bad escape or a decoded NUL byte.
 */
long http_pct_decode(const char *in, size_t len, char *out, size_t outlen, int plus_space);

/*
 * Parses a query string ("a=1&b=%20x") into a new array of decoded pairs.
 * A key without '=' gets "" as value; empty pieces are skipped.  Returns 0,
 * or -1 on a bad escape or more than HTTP_KV_MAX pairs (*out then NULL).
 */
int http_query_parse(const char *qs, struct http_kv **out, size_t *n);

/* Parses a Cookie header ("a=1; b=2"); values are not decoded.  0 or -1. */
int http_cookie_parse(const char *hdr, struct http_kv **out, size_t *n);

/* Value of the first pair named key, or NULL. */
const char *http_kv_get(const struct http_kv *kv, size_t n, const char *key);
void http_kv_free(struct http_kv *kv, size_t n);

/*
 * Matches path against pattern ("/api/workspaces/{ws}/flows/{flow}"): each
 * {name} segment must be a decimal id (1..UINT64_MAX) and is stored in
 * ids[] in order; a {*} segment matches any non-empty segment (the handler
 * reads it from the path).  Returns 1 on a match, 0 otherwise.
 */
int http_path_match(const char *pattern, const char *path, uint64_t ids[HTTP_PATH_IDS]);

/* Strict unsigned decimal: digits only, no sign or space, fits 64 bits. 0 or -1. */
int http_parse_u64(const char *s, uint64_t *out);

/* 1 if s is a display name: 1..HTTP_NAME_MAX bytes, valid UTF-8, no '/' and no control chars. */
int http_valid_name(const char *s);

/* Constant-time string equality (for CSRF tokens). */
int http_token_eq(const char *a, const char *b);

/* Reason phrase for an HTTP status. */
const char *http_reason(int status);

/* New {"error": msg, "field": field or null}. */
json_t *http_error_json(const char *field, const char *msg);

#endif
