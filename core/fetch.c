/*
 * Downloads over libcurl (see fetch.h).  Redirects are followed by hand,
 * one request per hop, so that each hop's scheme and host are checked
 * here before libcurl connects; the address check itself runs in the
 * open-socket callback, on the address libcurl is about to connect to,
 * so a name that resolves (or re-resolves) to an internal address is
 * caught whatever DNS said earlier.  The MD5 runs over the bytes handed
 * to the caller, across resumes, when the answer that brought the first
 * byte announced one (an MD5 that only a later, resumed answer announces
 * cannot be checked: the If-Match on the ETag keeps those bytes those of
 * the same blob).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "ca_error.h"
#include "cred.h"
#include "fetch.h"

#define MAX_HOPS 5
#define BACKOFF_FIRST_MS 500
#define BACKOFF_MAX_MS 30000
#define RETRY_AFTER_MAX_S 120

int ca_fetch_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : CA_EINTERNAL;
}

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- address policy ------------------------------------------------------ */

static int v4_denied(uint32_t a, const char **why)
{
    static const struct {
        uint32_t net, mask;
        const char *name;
    } nets[] = {
        {0x00000000, 0xff000000, "unspecified"},  {0x7f000000, 0xff000000, "loopback"},
        {0x0a000000, 0xff000000, "private"},      {0xac100000, 0xfff00000, "private"},
        {0xc0a80000, 0xffff0000, "private"},      {0x64400000, 0xffc00000, "shared (CGNAT)"},
        {0xa9fe0000, 0xffff0000, "link-local"},   {0xc0000000, 0xffffff00, "IETF protocol"},
        {0xc6120000, 0xfffe0000, "benchmarking"}, {0xe0000000, 0xf0000000, "multicast"},
        {0xf0000000, 0xf0000000, "reserved"},
    };

    for (size_t i = 0; i < sizeof(nets) / sizeof(nets[0]); i++)
        if ((a & nets[i].mask) == nets[i].net) {
            *why = nets[i].name;
            return 1;
        }
    return 0;
}

int ca_fetch_addr_denied(const void *sockaddr, const char **why)
{
    const struct sockaddr *sa = sockaddr;
    const char *dummy;

    if (why == NULL)
        why = &dummy;
    *why = "";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = sockaddr;

        return v4_denied(ntohl(s4->sin_addr.s_addr), why);
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = sockaddr;
        const uint8_t *b = s6->sin6_addr.s6_addr;
        static const uint8_t zero[16];
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};

        if (memcmp(b, zero, 15) == 0 && (b[15] == 0 || b[15] == 1)) {
            *why = b[15] == 0 ? "unspecified" : "loopback";
            return 1;
        }
        if (memcmp(b, mapped, 12) == 0 || memcmp(b, nat64, 12) == 0 || memcmp(b, zero, 12) == 0)
            return v4_denied(
                (uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 | b[15], why);
        if ((b[0] & 0xfe) == 0xfc) {
            *why = "unique local (ULA)";
            return 1;
        }
        if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) {
            *why = "link-local";
            return 1;
        }
        if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) {
            *why = "site-local";
            return 1;
        }
        if (b[0] == 0xff) {
            *why = "multicast";
            return 1;
        }
        return 0;
    }
    *why = "not an internet address";
    return 1;
}

static int host_in(const char *host, const char *const *list, size_t n, int subdomains)
{
    size_t hl = strlen(host);

    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(list[i]);

        if (l == 0)
            continue;
        if (strcasecmp(host, list[i]) == 0)
            return 1;
        if (subdomains && hl > l && host[hl - l - 1] == '.' &&
            strcasecmp(host + hl - l, list[i]) == 0)
            return 1;
    }
    return 0;
}

/* ---- one download -------------------------------------------------------- */

struct fetch {
    const struct ca_fetch_conf *conf;
    const struct ca_fetch_req *req;
    struct ca_fetch_info *info;
    CURL *h;
    struct ca_md5 *md5; /* made at the first byte when the server announced an MD5 */
    int want_md5;
    double deadline; /* 0 = none */
    /* per request */
    int host_allowed;
    int blocked;
    char blockmsg[256];
    long status;
    uint64_t skip;    /* bytes to drop (server ignored our Range) */
    uint64_t expect;  /* bytes this answer should carry, 0 = unknown */
    uint64_t got_now; /* body bytes of this answer seen */
    int retry_after;  /* seconds, -1 = none */
    int abort_rc;     /* why a callback stopped the transfer */
    char abort_msg[256];
    /* whole call */
    uint64_t delivered;
    char md5_expect[64]; /* base64, "" = none */
    char etag[128];
};

static curl_socket_t fetch_opensocket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct fetch *f = clientp;
    const char *why;

    if (!f->host_allowed && ca_fetch_addr_denied(&a->addr, &why)) {
        char ip[INET6_ADDRSTRLEN] = "?";

        if (a->family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)&a->addr)->sin_addr, ip, sizeof(ip));
        else if (a->family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&a->addr)->sin6_addr, ip, sizeof(ip));
        f->blocked = 1;
        snprintf(f->blockmsg, sizeof(f->blockmsg),
                 "refused to connect to %s (%s address) for host %s: internal addresses may not "
                 "be fetched",
                 ip, why, f->info->host);
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static void trim(char *s)
{
    size_t n = strlen(s);

    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
}

static size_t fetch_header(char *buf, size_t size, size_t nitems, void *arg)
{
    struct fetch *f = arg;
    size_t n = size * nitems;
    char line[512], *colon, *val;

    if (n >= sizeof(line))
        return n;
    memcpy(line, buf, n);
    line[n] = '\0';
    trim(line);
    if (strncmp(line, "HTTP/", 5) == 0) {
        /* a new answer (also after 100 Continue) */
        f->retry_after = -1;
        f->expect = 0;
        return n;
    }
    colon = strchr(line, ':');
    if (colon == NULL)
        return n;
    *colon = '\0';
    val = colon + 1;
    while (*val == ' ' || *val == '\t')
        val++;
    if (strcasecmp(line, "Retry-After") == 0) {
        char *end;
        long v = strtol(val, &end, 10);

        if (end != val && *end == '\0' && v >= 0)
            f->retry_after = v > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : (int)v;
    } else if (strcasecmp(line, "x-ms-error-code") == 0) {
        snprintf(f->info->error_code, sizeof(f->info->error_code), "%s", val);
    } else if (strcasecmp(line, "Content-Type") == 0) {
        snprintf(f->info->content_type, sizeof(f->info->content_type), "%s", val);
    } else if (strcasecmp(line, "x-ms-blob-content-md5") == 0) {
        snprintf(f->md5_expect, sizeof(f->md5_expect), "%s", val);
    } else if (strcasecmp(line, "Content-MD5") == 0) {
        long st = 0;

        curl_easy_getinfo(f->h, CURLINFO_RESPONSE_CODE, &st);
        if (st == 200 && f->md5_expect[0] == '\0') /* of the whole answer only */
            snprintf(f->md5_expect, sizeof(f->md5_expect), "%s", val);
    } else if (strcasecmp(line, "ETag") == 0) {
        if (f->etag[0] == '\0')
            snprintf(f->etag, sizeof(f->etag), "%s", val);
    } else if (strcasecmp(line, "Content-Length") == 0) {
        f->expect = strtoull(val, NULL, 10);
    } else if (strcasecmp(line, "Content-Range") == 0) {
        const char *slash = strchr(val, '/');

        if (slash != NULL && slash[1] != '*')
            f->info->size = strtoull(slash + 1, NULL, 10);
    }
    return n;
}

static size_t fetch_write(char *buf, size_t size, size_t nmemb, void *arg)
{
    struct fetch *f = arg;
    size_t n = size * nmemb, off = 0;
    long st = 0;
    int rc;

    curl_easy_getinfo(f->h, CURLINFO_RESPONSE_CODE, &st);
    f->status = st;
    if (st < 200 || st >= 300)
        return n; /* an error page: read and dropped */
    if (f->got_now == 0 && st == 200) {
        if (f->expect > 0)
            f->info->size = f->expect;
        f->skip = f->delivered; /* Range ignored: the answer starts at 0 again */
    }
    f->got_now += n;
    if (f->skip > 0) {
        size_t k = f->skip < n ? (size_t)f->skip : n;

        f->skip -= k;
        off = k;
    }
    if (off == n)
        return n;
    if (f->conf->max_size > 0 &&
        (f->delivered + (n - off) > f->conf->max_size || f->info->size > f->conf->max_size)) {
        f->abort_rc = CA_ETOOBIG;
        snprintf(f->abort_msg, sizeof(f->abort_msg),
                 "the download is larger than the limit of %llu bytes",
                 (unsigned long long)f->conf->max_size);
        return 0;
    }
    if (f->want_md5 && f->md5 == NULL && f->delivered == 0 && f->md5_expect[0] != '\0') {
        /* Only an announced MD5 is worth its cost (about 1.5 s of CPU per GB). */
        f->md5 = ca_cred_md5_new();
        if (f->md5 == NULL) {
            f->abort_rc = CA_ENOMEM;
            snprintf(f->abort_msg, sizeof(f->abort_msg), "out of memory");
            return 0;
        }
    }
    if (f->md5 != NULL)
        ca_cred_md5_update(f->md5, buf + off, n - off);
    rc = f->req->write(f->req->write_arg, buf + off, n - off);
    if (rc < 0) {
        f->abort_rc = rc;
        snprintf(f->abort_msg, sizeof(f->abort_msg), "%s", ca_strerror(rc));
        return 0;
    }
    f->delivered += n - off;
    f->info->received = f->delivered;
    return n;
}

static int fetch_xferinfo(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                          curl_off_t ulnow)
{
    struct fetch *f = arg;

    if (f->deadline > 0 && now_ms() > f->deadline) {
        f->abort_rc = CA_EIO;
        snprintf(f->abort_msg, sizeof(f->abort_msg),
                 "the download took longer than the limit of %ld s", f->conf->total_timeout_s);
        return 1;
    }
    if (f->req->progress != NULL &&
        f->req->progress(f->req->progress_arg, f->delivered, f->info->size) != 0) {
        f->abort_rc = CA_ECANCELED;
        snprintf(f->abort_msg, sizeof(f->abort_msg), "cancelled");
        return 1;
    }
    return 0;
}

/* Waits ms, polling for cancellation and the deadline.  0, or an error. */
static int fetch_wait(struct fetch *f, long ms, char *err, size_t errlen)
{
    double end = now_ms() + (double)ms;

    while (now_ms() < end) {
        struct timespec ts = {0, 100 * 1000000L};

        if (f->deadline > 0 && now_ms() + 100 > f->deadline)
            return ca_seterr(err, errlen, CA_EIO,
                             "the download took longer than the limit of %ld s",
                             f->conf->total_timeout_s);
        if (f->req->progress != NULL &&
            f->req->progress(f->req->progress_arg, f->delivered, f->info->size) != 0)
            return ca_seterr(err, errlen, CA_ECANCELED, "cancelled");
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* Checks the hop's scheme and host; sets f->host_allowed and info->host. */
static int fetch_check_url(struct fetch *f, const char *url, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int rc = 0;

    if (u == NULL)
        return CA_ENOMEM;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        rc = ca_seterr(err, errlen, CA_EINVAL, "not a valid URL");
        goto out;
    }
    snprintf(f->info->host, sizeof(f->info->host), "%s", host);
    if (strcasecmp(scheme, "https") != 0 &&
        !(f->conf->allow_http && strcasecmp(scheme, "http") == 0)) {
        rc = ca_seterr(err, errlen, CA_EFORBIDDEN, "refused a %s:// URL: only https%s is allowed",
                       scheme, f->conf->allow_http ? " and http" : "");
        goto out;
    }
    {
        /* brackets of an IPv6 literal are not part of the list entries */
        char bare[256];
        size_t hl = strlen(host);

        if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']')
            snprintf(bare, sizeof(bare), "%.*s", (int)(hl - 2), host + 1);
        else
            snprintf(bare, sizeof(bare), "%s", host);
        if (host_in(bare, f->conf->deny_hosts, f->conf->n_deny, 1)) {
            rc = ca_seterr(err, errlen, CA_EFORBIDDEN, "the host %s is on the server's deny list",
                           bare);
            goto out;
        }
        f->host_allowed = host_in(bare, f->conf->allow_hosts, f->conf->n_allow, 0);
    }
out:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

static int retryable_curl(CURLcode c)
{
    switch (c) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY:
        return 1;
    default:
        return 0;
    }
}

static int is_tls_error(CURLcode c)
{
    switch (c) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_USE_SSL_FAILED:
        return 1;
    default:
        return 0;
    }
}

int ca_fetch_get(const struct ca_fetch_conf *conf, const struct ca_fetch_req *req,
                 struct ca_fetch_info *info, char *err, size_t errlen)
{
    struct fetch f;
    char cerr[CURL_ERROR_SIZE], range[64], *url = NULL;
    int rc = 0, max_retries = conf->max_retries < 0 ? 5 : conf->max_retries, tries = 0;
    long cto = conf->connect_timeout_s > 0 ? conf->connect_timeout_s : 15;

    memset(info, 0, sizeof(*info));
    memset(&f, 0, sizeof(f));
    f.conf = conf;
    f.req = req;
    f.info = info;
    if (conf->total_timeout_s > 0)
        f.deadline = now_ms() + (double)conf->total_timeout_s * 1e3;
    f.h = curl_easy_init();
    f.want_md5 = req->verify_md5;
    if (f.h == NULL) {
        rc = CA_ENOMEM;
        goto out;
    }
    for (;;) {
        CURLcode cc;
        struct curl_slist *hdrs = NULL;
        int hops = 0;
        long wait_ms;

        free(url);
        url = strdup(req->url);
        if (url == NULL) {
            rc = CA_ENOMEM;
            goto out;
        }
        /* One attempt: follow redirects hop by hop. */
        for (;;) {
            char *loc = NULL;

            rc = fetch_check_url(&f, url, err, errlen);
            if (rc < 0)
                goto out;
            curl_easy_reset(f.h);
            curl_easy_setopt(f.h, CURLOPT_URL, url);
            curl_easy_setopt(f.h, CURLOPT_NOSIGNAL, 1L);
            curl_easy_setopt(f.h, CURLOPT_PROTOCOLS_STR, conf->allow_http ? "https,http" : "https");
            curl_easy_setopt(f.h, CURLOPT_REDIR_PROTOCOLS_STR,
                             conf->allow_http ? "https,http" : "https");
            curl_easy_setopt(f.h, CURLOPT_FOLLOWLOCATION, 0L);
            curl_easy_setopt(f.h, CURLOPT_PROXY, ""); /* no proxy from the environment */
            curl_easy_setopt(f.h, CURLOPT_OPENSOCKETFUNCTION, fetch_opensocket);
            curl_easy_setopt(f.h, CURLOPT_OPENSOCKETDATA, &f);
            curl_easy_setopt(f.h, CURLOPT_HEADERFUNCTION, fetch_header);
            curl_easy_setopt(f.h, CURLOPT_HEADERDATA, &f);
            curl_easy_setopt(f.h, CURLOPT_WRITEFUNCTION, fetch_write);
            curl_easy_setopt(f.h, CURLOPT_WRITEDATA, &f);
            curl_easy_setopt(f.h, CURLOPT_XFERINFOFUNCTION, fetch_xferinfo);
            curl_easy_setopt(f.h, CURLOPT_XFERINFODATA, &f);
            curl_easy_setopt(f.h, CURLOPT_NOPROGRESS, 0L);
            curl_easy_setopt(f.h, CURLOPT_ERRORBUFFER, cerr);
            curl_easy_setopt(f.h, CURLOPT_CONNECTTIMEOUT, cto);
            curl_easy_setopt(f.h, CURLOPT_LOW_SPEED_LIMIT, 1L);
            curl_easy_setopt(f.h, CURLOPT_LOW_SPEED_TIME, 60L);
            curl_easy_setopt(f.h, CURLOPT_BUFFERSIZE, 256L * 1024);
            curl_easy_setopt(f.h, CURLOPT_USERAGENT, "capatlas/0.1");
            curl_easy_setopt(f.h, CURLOPT_SSL_VERIFYPEER, 1L);
            curl_easy_setopt(f.h, CURLOPT_SSL_VERIFYHOST, 2L);
            if (conf->ca_file != NULL && conf->ca_file[0] != '\0')
                curl_easy_setopt(f.h, CURLOPT_CAINFO, conf->ca_file);
            hdrs = curl_slist_append(NULL, "x-ms-version: 2021-08-06");
            if (f.delivered > 0) {
                snprintf(range, sizeof(range), "Range: bytes=%llu-",
                         (unsigned long long)f.delivered);
                hdrs = curl_slist_append(hdrs, range);
                if (f.etag[0] != '\0') {
                    char im[160];

                    snprintf(im, sizeof(im), "If-Match: %s", f.etag);
                    hdrs = curl_slist_append(hdrs, im);
                }
                info->resumes++;
            }
            curl_easy_setopt(f.h, CURLOPT_HTTPHEADER, hdrs);
            cerr[0] = '\0';
            f.blocked = 0;
            f.status = 0;
            f.got_now = 0;
            f.skip = 0;
            f.expect = 0;
            f.retry_after = -1;
            f.abort_rc = 0;
            info->error_code[0] = '\0';
            info->attempts++;
            cc = curl_easy_perform(f.h);
            curl_slist_free_all(hdrs);
            hdrs = NULL;
            curl_easy_getinfo(f.h, CURLINFO_RESPONSE_CODE, &f.status);
            info->status = f.status;
            if (cc != CURLE_OK || f.status < 300 || f.status >= 400)
                break;
            if (curl_easy_getinfo(f.h, CURLINFO_REDIRECT_URL, &loc) != CURLE_OK || loc == NULL)
                break;
            if (++hops > MAX_HOPS) {
                rc = ca_seterr(err, errlen, CA_EIO, "more than %d redirects", MAX_HOPS);
                goto out;
            }
            free(url);
            url = strdup(loc);
            if (url == NULL) {
                rc = CA_ENOMEM;
                goto out;
            }
            info->attempts--; /* a hop is not an attempt */
            if (f.delivered > 0)
                info->resumes--;
        }
        /* Classify the attempt. */
        if (f.abort_rc != 0) {
            rc = ca_seterr(err, errlen, f.abort_rc, "%s", f.abort_msg);
            goto out;
        }
        if (f.blocked) {
            rc = ca_seterr(err, errlen, CA_EFORBIDDEN, "%s", f.blockmsg);
            goto out;
        }
        if (cc == CURLE_COULDNT_RESOLVE_HOST) {
            rc = ca_seterr(err, errlen, CA_EIO, "cannot resolve the host name %s (DNS failure)",
                           info->host);
            goto out;
        }
        if (is_tls_error(cc)) {
            rc = ca_seterr(err, errlen, CA_EIO, "TLS failure talking to %s: %s", info->host,
                           cerr[0] ? cerr : curl_easy_strerror(cc));
            goto out;
        }
        if (cc == CURLE_OK && f.status >= 200 && f.status < 300) {
            if (info->size > 0 && f.delivered < info->size) {
                cc = CURLE_PARTIAL_FILE; /* a clean close before the end */
            } else {
                break; /* complete */
            }
        }
        if (cc == CURLE_OK && f.status == 416 && info->size > 0 && f.delivered >= info->size)
            break;
        if (cc == CURLE_OK && f.status != 408 && f.status != 429 && f.status < 500) {
            if (f.status == 401 || f.status == 403)
                rc = ca_seterr(err, errlen, CA_EFORBIDDEN, "HTTP %ld", f.status);
            else if (f.status == 404)
                rc = ca_seterr(err, errlen, CA_ENOTFOUND, "HTTP 404");
            else if (f.status == 412)
                rc = ca_seterr(err, errlen, CA_EIO,
                               "the file changed on the server during the download");
            else
                rc = ca_seterr(err, errlen, CA_EIO, "the server answered HTTP %ld", f.status);
            goto out;
        }
        if (cc != CURLE_OK && !retryable_curl(cc)) {
            rc = ca_seterr(err, errlen, CA_EIO, "download failed: %s",
                           cerr[0] ? cerr : curl_easy_strerror(cc));
            goto out;
        }
        if (tries >= max_retries) {
            if (cc != CURLE_OK)
                rc = ca_seterr(err, errlen, CA_EIO, "download failed after %d attempts: %s",
                               tries + 1, cerr[0] ? cerr : curl_easy_strerror(cc));
            else
                rc = ca_seterr(err, errlen, CA_EIO,
                               "the server answered HTTP %ld, %d times; giving up", f.status,
                               tries + 1);
            goto out;
        }
        wait_ms = BACKOFF_FIRST_MS << (tries < 6 ? tries : 6);
        if (wait_ms > BACKOFF_MAX_MS)
            wait_ms = BACKOFF_MAX_MS;
        if (cc == CURLE_OK && f.retry_after >= 0)
            wait_ms = (long)f.retry_after * 1000;
        tries++;
        rc = fetch_wait(&f, wait_ms, err, errlen);
        if (rc < 0)
            goto out;
    }
    if (f.md5 != NULL && f.md5_expect[0] != '\0') {
        char got[64];

        if (ca_cred_md5_final_b64(f.md5, got, sizeof(got)) == 0 && strcmp(got, f.md5_expect) != 0) {
            rc = ca_seterr(err, errlen, CA_EIO,
                           "the download is damaged: its MD5 is %s, the server said %s", got,
                           f.md5_expect);
            goto out;
        }
        info->md5_verified = 1;
    }
    rc = 0;
out:
    free(url);
    ca_cred_md5_free(f.md5);
    curl_easy_cleanup(f.h);
    return rc;
}

struct membuf {
    char *buf;
    size_t len, cap, max;
};

static int mem_write(void *arg, const void *data, size_t n)
{
    struct membuf *m = arg;

    if (m->len + n > m->max)
        return CA_ETOOBIG;
    if (m->len + n + 1 > m->cap) {
        size_t cap = (m->len + n + 1) * 2;
        char *nb = realloc(m->buf, cap);

        if (nb == NULL)
            return CA_ENOMEM;
        m->buf = nb;
        m->cap = cap;
    }
    memcpy(m->buf + m->len, data, n);
    m->len += n;
    m->buf[m->len] = '\0';
    return 0;
}

int ca_fetch_mem(const struct ca_fetch_conf *conf, const char *url, size_t max, char **body,
                 size_t *len, struct ca_fetch_info *info, char *err, size_t errlen)
{
    struct ca_fetch_req req;
    struct membuf m = {NULL, 0, 0, max};
    int rc;

    memset(&req, 0, sizeof(req));
    req.url = url;
    req.write = mem_write;
    req.write_arg = &m;
    rc = ca_fetch_get(conf, &req, info, err, errlen);
    if (rc == 0 && m.buf == NULL)
        m.buf = calloc(1, 1);
    if (rc < 0 || m.buf == NULL) {
        free(m.buf);
        return rc < 0 ? rc : CA_ENOMEM;
    }
    *body = m.buf;
    *len = m.len;
    return 0;
}
