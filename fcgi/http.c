/*
 * struct request and the pure parsing behind it (see http.h).  Input here
 * is attacker-controlled text: every loop is bounded by the string length
 * and by HTTP_KV_MAX, and nothing is decoded in place.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"

void request_free(struct request *r)
{
    if (r != NULL && r->stream_free != NULL && r->stream_arg != NULL) {
        r->stream_free(r->stream_arg);
        r->stream_arg = NULL;
    }
    if (r == NULL)
        return;
    if (r->body_file != NULL && !r->body_consumed)
        unlink(r->body_file);
    free(r->body_file);
    free(r->path);
    http_kv_free(r->query, r->nquery);
    http_kv_free(r->cookies, r->ncookies);
    free(r->body);
    json_decref(r->user);
    json_decref(r->audit);
    free(r->set_cookie);
    memset(r, 0, sizeof(*r));
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long http_pct_decode(const char *in, size_t len, char *out, size_t outlen, int plus_space)
{
    size_t o = 0;

    if (outlen == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];

        if (o + 1 >= outlen)
            return -1;
        if (c == '%') {
            int hi, lo;

            if (i + 2 >= len)
                return -1;
            hi = hexval(in[i + 1]);
            lo = hexval(in[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi << 4 | lo);
            if (c == '\0')
                return -1;
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        } else if (c == '\0') {
            return -1;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return (long)o;
}

static char *decode_dup(const char *s, size_t len, int plus_space)
{
    char *d = malloc(len + 1);

    if (d == NULL)
        return NULL;
    if (http_pct_decode(s, len, d, len + 1, plus_space) < 0) {
        free(d);
        return NULL;
    }
    return d;
}

void http_kv_free(struct http_kv *kv, size_t n)
{
    if (kv == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].val);
    }
    free(kv);
}

const char *http_kv_get(const struct http_kv *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i].key, key) == 0)
            return kv[i].val;
    return NULL;
}

/*
 * Shared splitter: pieces separated by sep, each "key=value"; leading
 * spaces of a piece are skipped when trim is set (cookies).
 */
static int kv_parse(const char *s, char sep, int trim, int decode, struct http_kv **out, size_t *n)
{
    struct http_kv *kv;
    size_t count = 0;

    *out = NULL;
    *n = 0;
    if (s == NULL || *s == '\0')
        return 0;
    kv = calloc(HTTP_KV_MAX, sizeof(*kv));
    if (kv == NULL)
        return -1;
    while (*s != '\0') {
        const char *end, *eq;
        size_t plen;

        if (trim)
            while (*s == ' ' || *s == '\t')
                s++;
        end = strchr(s, sep);
        plen = end != NULL ? (size_t)(end - s) : strlen(s);
        if (trim)
            while (plen > 0 && (s[plen - 1] == ' ' || s[plen - 1] == '\t'))
                plen--;
        if (plen > 0) {
            size_t klen;

            if (count == HTTP_KV_MAX)
                goto fail;
            eq = memchr(s, '=', plen);
            klen = eq != NULL ? (size_t)(eq - s) : plen;
            if (decode) {
                kv[count].key = decode_dup(s, klen, 1);
                kv[count].val =
                    eq != NULL ? decode_dup(eq + 1, plen - klen - 1, 1) : decode_dup("", 0, 1);
            } else {
                kv[count].key = strndup(s, klen);
                kv[count].val = eq != NULL ? strndup(eq + 1, plen - klen - 1) : strdup("");
            }
            count++;
            if (kv[count - 1].key == NULL || kv[count - 1].val == NULL)
                goto fail;
        }
        if (end == NULL)
            break;
        s = end + 1;
    }
    if (count == 0) {
        free(kv);
        return 0;
    }
    *out = kv;
    *n = count;
    return 0;
fail:
    http_kv_free(kv, count);
    return -1;
}

int http_query_parse(const char *qs, struct http_kv **out, size_t *n)
{
    return kv_parse(qs, '&', 0, 1, out, n);
}

int http_cookie_parse(const char *hdr, struct http_kv **out, size_t *n)
{
    return kv_parse(hdr, ';', 1, 0, out, n);
}

int http_parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;

    if (s == NULL || *s == '\0' || strlen(s) > 20)
        return -1;
    for (; *s != '\0'; s++) {
        unsigned d;

        if (*s < '0' || *s > '9')
            return -1;
        d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int http_path_match(const char *pattern, const char *path, uint64_t ids[HTTP_PATH_IDS])
{
    size_t nid = 0;
    const char *p = pattern, *s = path;

    while (*p != '\0') {
        if (p[0] == '{' && p[1] == '*' && p[2] == '}') {
            size_t n = strcspn(s, "/");

            if (n == 0)
                return 0;
            s += n;
            p += 3;
            continue;
        }
        if (*p == '{') {
            const char *pe = strchr(p, '}');
            char digits[21];
            size_t dl = 0;
            uint64_t v;

            if (pe == NULL || nid == HTTP_PATH_IDS)
                return 0;
            while (s[dl] >= '0' && s[dl] <= '9') {
                if (dl == 20)
                    return 0;
                digits[dl] = s[dl];
                dl++;
            }
            digits[dl] = '\0';
            if (http_parse_u64(digits, &v) < 0 || v == 0)
                return 0;
            ids[nid++] = v;
            s += dl;
            p = pe + 1;
            continue;
        }
        if (*p != *s)
            return 0;
        p++;
        s++;
    }
    return *s == '\0';
}

int http_valid_name(const char *s)
{
    size_t len = strlen(s);
    const unsigned char *u = (const unsigned char *)s;

    if (len == 0 || len > HTTP_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len;) {
        unsigned char c = u[i];
        size_t extra;

        if (c < 0x20 || c == 0x7f || c == '/')
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            extra = 1;
        else if (c >= 0xe0 && c <= 0xef)
            extra = 2;
        else if (c >= 0xf0 && c <= 0xf4)
            extra = 3;
        else
            return 0;
        if (i + extra >= len)
            return 0;
        for (size_t k = 1; k <= extra; k++)
            if ((u[i + k] & 0xc0) != 0x80)
                return 0;
        /* C1 controls (U+0080..U+009F) are control characters too. */
        if (c == 0xc2 && u[i + 1] < 0xa0)
            return 0;
        i += extra + 1;
    }
    /* Leave full UTF-8 validation (overlongs, surrogates) to jansson. */
    {
        json_t *j = json_stringn(s, len);

        if (j == NULL)
            return 0;
        json_decref(j);
    }
    return 1;
}

int http_token_eq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = 0;

    if (la != lb || la == 0)
        return 0;
    for (size_t i = 0; i < la; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

const char *http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Entity";
    case 503:
        return "Service Unavailable";
    default:
        return status >= 500 ? "Internal Server Error" : "Error";
    }
}

json_t *http_error_json(const char *field, const char *msg)
{
    json_t *e = json_object();
    json_t *m = json_string(msg);

    if (m == NULL) /* a message carrying invalid UTF-8 from somewhere */
        m = json_string("error");
    if (e == NULL || m == NULL) {
        json_decref(e);
        json_decref(m);
        return NULL;
    }
    json_object_set_new(e, "error", m);
    json_object_set_new(e, "field", field != NULL ? json_string(field) : json_null());
    return e;
}
