/*
 * An API worker: the FastCGI accept loop.  Each turn builds a struct
 * request from the FastCGI parameters, finds the route, reads the body as
 * the route wants it (JSON in memory up to 1 MiB; uploads as a file),
 * dispatches, and writes exactly one response.  Everything per request is
 * freed before the next accept.  The only file that includes fcgiapp.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "bigmem.h"
#include "ca_error.h"
#include "config.h"
#include "errmap.h"
#include "http.h"
#include "log.h"
#include "router.h"
#include "store.h"
#include "workers.h"

static volatile sig_atomic_t api_term;
static volatile sig_atomic_t api_in_accept;

/* Idle in accept(): nothing to finish, leave now.  Busy: finish the request first. */
static void api_on_term(int sig)
{
    api_term = 1;
    if (api_in_accept)
        _exit(0);
}

int api_worker_listen(const struct config *c, char *err, size_t errlen)
{
    int fd;

    if (FCGX_Init() != 0) {
        snprintf(err, errlen, "FCGX_Init failed");
        return -1;
    }
    fd = FCGX_OpenSocket(c->socket, 128);
    if (fd < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", c->socket, strerror(errno));
        return -1;
    }
    if (c->socket_group[0] != '\0') {
        struct group *g = getgrnam(c->socket_group);

        if (g == NULL || chown(c->socket, (uid_t)-1, g->gr_gid) != 0) {
            snprintf(err, errlen,
                     "--socket-group (CAPATLAS_SOCKET_GROUP): cannot give %s to group %s",
                     c->socket, c->socket_group);
            close(fd);
            return -1;
        }
    }
    if (chmod(c->socket, 0660) != 0) {
        snprintf(err, errlen, "chmod %s: %s", c->socket, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static const char *param(FCGX_Request *q, const char *name)
{
    const char *v = FCGX_GetParam(name, q->envp);

    return v != NULL && *v != '\0' ? v : NULL;
}

/* Reads the JSON body into r->body.  0, or an HTTP status with *out set. */
static int read_body(FCGX_Request *q, struct request *r, json_t **out)
{
    size_t cap, len = 0;
    char *buf;

    if (r->content_length > HTTP_BODY_MAX)
        return errmap_fail(out, 413, NULL, "request body larger than %d bytes", HTTP_BODY_MAX);
    /* nginx always sends CONTENT_LENGTH with a body (it de-chunks them). */
    if (r->content_length <= 0)
        return 0;
    cap = (size_t)r->content_length;
    buf = malloc(cap + 1);
    if (buf == NULL)
        return errmap_reply(out, CA_ENOMEM, NULL, NULL);
    while (len < cap) {
        int n = FCGX_GetStr(buf + len, (int)(cap - len > 65536 ? 65536 : cap - len), q->in);

        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    r->body = buf;
    r->body_len = len;
    return 0;
}

/*
 * An upload that reached us on stdin (no nginx in front, e.g. cgi-fcgi):
 * spool it to DATA/tmp so the handler sees the same thing as with nginx.
 */
static int spool_body(FCGX_Request *q, struct request *r, json_t **out)
{
    char path[PATH_MAX + 32], buf[65536];
    int fd, n;

    if (snprintf(path, sizeof(path), "%s/tmp/upload-XXXXXX", r->conf->data) >= (int)sizeof(path))
        return errmap_reply(out, CA_EINTERNAL, NULL, "temp path too long");
    fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        return errmap_reply(out, CA_EIO, NULL, "cannot create a temp file for the upload");
    r->body_file = strdup(path);
    if (r->body_file == NULL) {
        close(fd);
        unlink(path);
        return errmap_reply(out, CA_ENOMEM, NULL, NULL);
    }
    while ((n = FCGX_GetStr(buf, (int)sizeof(buf), q->in)) > 0) {
        for (int off = 0; off < n;) {
            ssize_t w = write(fd, buf + off, (size_t)(n - off));

            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                close(fd);
                return errmap_reply(out, CA_EIO, NULL, "cannot write the upload");
            }
            off += (int)w;
        }
    }
    if (close(fd) != 0)
        return errmap_reply(out, CA_EIO, NULL, "cannot write the upload");
    return 0;
}

/* ROUTE_STREAM: the body as nginx passes it on (fastcgi_request_buffering off). */
static long stream_read(struct request *r, char *buf, size_t len)
{
    FCGX_Stream *in = r->body_stream;
    int n = FCGX_GetStr(buf, (int)(len > 1 << 20 ? 1 << 20 : len), in);

    if (n > 0)
        return n;
    return FCGX_GetError(in) != 0 ? -1 : 0;
}

static void write_response(FCGX_Request *q, int status, json_t *body, const char *cookie)
{
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;

    if (text == NULL) {
        status = 500;
        text = strdup("{\"error\":\"internal error\",\"field\":null}");
    }
    FCGX_FPrintF(q->out,
                 "Status: %d %s\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n",
                 status, http_reason(status));
    if (cookie != NULL)
        FCGX_FPrintF(q->out, "Set-Cookie: %s\r\n", cookie);
    FCGX_PutStr("\r\n", 2, q->out);
    if (text != NULL)
        FCGX_PutStr(text, (int)strlen(text), q->out);
    free(text);
}

static int stream_write(void *wctx, const void *buf, size_t len)
{
    FCGX_Stream *out = wctx;

    while (len > 0) {
        int n = len > (1 << 20) ? (1 << 20) : (int)len;

        if (FCGX_PutStr(buf, n, out) != n)
            return -1;
        buf = (const char *)buf + n;
        len -= (size_t)n;
    }
    return 0;
}

/* A streamed answer (exports): headers, then the handler's writer. */
static void write_stream(FCGX_Request *q, struct request *r)
{
    FCGX_FPrintF(q->out, "Status: 200 OK\r\nContent-Type: %s\r\nCache-Control: no-store\r\n",
                 r->stream_type != NULL ? r->stream_type : "application/octet-stream");
    if (r->stream_name[0] != '\0')
        FCGX_FPrintF(q->out, "Content-Disposition: attachment; filename=\"%s\"\r\n",
                     r->stream_name);
    FCGX_PutStr("X-Accel-Buffering: no\r\n\r\n", 25, q->out);
    if (r->stream_fn(r->stream_arg, stream_write, q->out) < 0)
        log_line("stream of %.200s cut short", r->path != NULL ? r->path : "?");
}

static double mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void serve_one(FCGX_Request *q, struct ca_portal *portal, const struct config *c)
{
    struct request r;
    const struct route *rt;
    const char *uri, *qs, *v;
    json_t *out = NULL;
    double t0 = mono_ms();
    int status = 0;

    memset(&r, 0, sizeof(r));
    r.portal = portal;
    r.conf = c;
    r.content_length = -1;
    r.method = param(q, "REQUEST_METHOD");
    if (r.method == NULL)
        r.method = "GET";
    uri = param(q, "REQUEST_URI");
    qs = param(q, "QUERY_STRING");
    if (uri != NULL) {
        const char *qm = strchr(uri, '?');

        r.path = qm != NULL ? strndup(uri, (size_t)(qm - uri)) : strdup(uri);
        if (qs == NULL && qm != NULL)
            qs = qm + 1;
    } else {
        r.path = strdup((v = param(q, "DOCUMENT_URI")) != NULL ? v : "/");
    }
    r.csrf_header = param(q, "HTTP_X_CSRF_TOKEN");
    r.authorization = param(q, "HTTP_AUTHORIZATION");
    r.remote_addr = param(q, "REMOTE_ADDR");
    r.content_type = param(q, "CONTENT_TYPE");
    if ((v = param(q, "CONTENT_LENGTH")) != NULL) {
        uint64_t cl;

        r.content_length = http_parse_u64(v, &cl) == 0 && cl <= (uint64_t)INT64_MAX
                               ? (long long)cl
                               : (long long)INT64_MAX;
    }
    if ((v = param(q, "REQUEST_BODY_FILE")) != NULL)
        r.body_file = strdup(v);
    if (r.path == NULL) {
        status = errmap_reply(&out, CA_ENOMEM, NULL, NULL);
        goto respond;
    }
    if (http_query_parse(qs, &r.query, &r.nquery) < 0) {
        status = errmap_fail(&out, 400, NULL, "malformed query string");
        goto respond;
    }
    if (http_cookie_parse(param(q, "HTTP_COOKIE"), &r.cookies, &r.ncookies) < 0) {
        r.cookies = NULL;
        r.ncookies = 0;
    }
    rt = router_find(r.method, r.path, r.ids, &status, &out);
    if (rt == NULL)
        goto respond;
    if (rt->flags & ROUTE_STREAM) {
        r.body_stream = q->in;
        r.body_read = stream_read;
    } else if (rt->flags & ROUTE_UPLOAD) {
        if (r.body_file == NULL && r.content_length > 0)
            status = spool_body(q, &r, &out);
    } else {
        status = read_body(q, &r, &out);
    }
    if (status != 0)
        goto respond;
    status = router_dispatch(rt, &r, &out);
respond:
    if (status == 200 && r.stream_fn != NULL)
        write_stream(q, &r);
    else
        write_response(q, status, out, r.set_cookie);
    log_line("%s %.200s %d %.1fms", r.method, r.path != NULL ? r.path : "?", status,
             mono_ms() - t0);
    json_decref(out);
    request_free(&r); /* unlinks an upload file nobody took */
}

int api_worker_run(const struct config *c, int listen_fd, int index)
{
    struct ca_portal *portal = NULL;
    struct sigaction sa;
    FCGX_Request q;
    char err[256] = "";
    int rc;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = api_on_term;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);

    ca_ws_keep_idle(8); /* queries touch mmapped pages again: keep them mapped */
    ca_big_heap_keep(); /* query hash tables of a few MB come and go per request */
    rc = ca_portal_open(c->data, &portal, err, sizeof(err));
    if (rc < 0) {
        log_line("api worker %d: cannot open the portal store: %s", index,
                 err[0] ? err : ca_strerror(rc));
        return 1;
    }
    if (FCGX_InitRequest(&q, listen_fd, 0) != 0) {
        log_line("api worker %d: FCGX_InitRequest failed", index);
        ca_portal_close(portal);
        return 1;
    }
    log_line("api worker %d ready", index);
    for (;;) {
        /* Set before the check: a SIGTERM from here on exits in the handler. */
        api_in_accept = 1;
        if (api_term)
            break;
        rc = FCGX_Accept_r(&q);
        api_in_accept = 0;
        if (rc < 0) {
            if (api_term)
                break;
            log_line("api worker %d: accept failed (%d)", index, rc);
            usleep(100 * 1000);
            continue;
        }
        serve_one(&q, portal, c);
        FCGX_Finish_r(&q);
    }
    api_in_accept = 0;
    FCGX_Free(&q, 0);
    ca_portal_close(portal);
    log_line("api worker %d stopped", index);
    return 0;
}
