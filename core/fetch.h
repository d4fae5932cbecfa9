/*
 * Downloads for imports, over libcurl (the only file that includes
 * curl.h).  One call streams one URL into a caller's write function, with
 * the server-side request forgery guard, retries, resume and verification
 * that a URL typed by a user needs:
 *
 *  - only https (http when conf->allow_http) for the URL and every
 *    redirect, which are followed here one hop at a time (at most 5);
 *  - every connection's resolved address is checked when the socket is
 *    opened: loopback, private (RFC 1918, CGNAT), link-local (incl.
 *    169.254.169.254), ULA, multicast, unspecified and reserved addresses
 *    are refused unless the hop's host is on conf->allow_hosts; a host on
 *    conf->deny_hosts (or a subdomain of one) is always refused;
 *  - retries with exponential back-off on connection failures, timeouts,
 *    408/429/5xx, honouring Retry-After; after a cut the download resumes
 *    with a Range request from the first byte not yet delivered, so the
 *    write function sees every byte exactly once and in order;
 *  - Content-MD5 (of a whole answer) or x-ms-blob-content-md5 checked
 *    when the answer that brings the first byte announces one (the MD5
 *    is computed only then: it costs about 1.5 s of CPU per GB);
 *  - a size limit, a connect timeout, an overall deadline, cancellation
 *    through the progress function.
 *
 * Messages put in err never contain the URL's query string.
 */
#ifndef CA_FETCH_H
#define CA_FETCH_H

#include <stddef.h>
#include <stdint.h>

struct ca_fetch_conf {
    const char *const *allow_hosts; /* host names exempt from the address check */
    size_t n_allow;
    const char *const *deny_hosts; /* host names (and their subdomains) never fetched */
    size_t n_deny;
    int allow_http;
    long connect_timeout_s; /* per connection; default 15 */
    long total_timeout_s;   /* whole call incl. retries; 0 = none */
    uint64_t max_size;      /* bytes; 0 = none */
    const char *ca_file;    /* extra CA bundle (PEM); NULL = system store */
    int max_retries;        /* attempts after the first; default 5 when < 0 */
};

/* Receives the body in order, each byte once.  0, or a negative ca_err to stop. */
typedef int (*ca_fetch_write_fn)(void *arg, const void *buf, size_t n);
/* Called often (also while waiting to retry).  Non-zero cancels. */
typedef int (*ca_fetch_progress_fn)(void *arg, uint64_t done, uint64_t total);

struct ca_fetch_req {
    const char *url;
    ca_fetch_write_fn write;
    void *write_arg;
    ca_fetch_progress_fn progress; /* may be NULL */
    void *progress_arg;
    int verify_md5; /* check Content-MD5 / x-ms-blob-content-md5 when announced */
};

struct ca_fetch_info {
    long status;         /* last HTTP status (0 when none) */
    uint64_t size;       /* total size when the server said; else 0 */
    uint64_t received;   /* bytes delivered to write */
    int attempts;        /* requests made (redirect hops not counted) */
    int resumes;         /* of which Range requests after a cut */
    int md5_verified;    /* 1 when an MD5 was given and matched */
    char error_code[64]; /* x-ms-error-code of a failed answer */
    char content_type[128];
    char host[256]; /* host of the last hop */
};

/* Once per process, before any thread uses this module. */
int ca_fetch_init(void);

/*
 * Streams req->url.  Returns 0; CA_EFORBIDDEN (refused by policy: message
 * says why; or HTTP 401/403, then info->status says so), CA_ENOTFOUND
 * (HTTP 404), CA_ETOOBIG, CA_ECANCELED, CA_EINVAL (bad URL), CA_EIO (DNS,
 * TLS, connection, other HTTP statuses after the retries, MD5 mismatch),
 * or the write function's error.  info (not NULL) is always filled.
 */
int ca_fetch_get(const struct ca_fetch_conf *conf, const struct ca_fetch_req *req,
                 struct ca_fetch_info *info, char *err, size_t errlen);

/*
 * A small GET into memory (at most max bytes; CA_ETOOBIG beyond).  *body
 * is a new NUL-terminated buffer owned by the caller (free()).
 */
int ca_fetch_mem(const struct ca_fetch_conf *conf, const char *url, size_t max, char **body,
                 size_t *len, struct ca_fetch_info *info, char *err, size_t errlen);

/* 1 when addr (struct sockaddr *) is in a denied range; why gets the range's name. */
int ca_fetch_addr_denied(const void *sockaddr, const char **why);

#endif
