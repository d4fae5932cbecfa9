/*
 * Azure Blob Storage URLs and answers (see azure.h).  The XML of List
 * Blobs is read with a few bounded string searches rather than a parser
 * library: the document's shape is fixed, every field we want is a leaf
 * with text, and every length is capped before copying.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "azure.h"
#include "ca_error.h"

static int copy(char *dst, size_t len, const char *src, size_t n)
{
    if (n >= len)
        return -1;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* %-decodes src[0..n) into dst; -1 on a bad escape, a NUL, or no room. */
static int pct_decode(char *dst, size_t len, const char *src, size_t n)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)src[i];

        if (c == '%') {
            int h, l;

            if (i + 2 >= n)
                return -1;
            h = hexval(src[i + 1]);
            l = hexval(src[i + 2]);
            if (h < 0 || l < 0 || (h == 0 && l == 0))
                return -1;
            c = h * 16 + l;
            i += 2;
        }
        if (o + 1 >= len)
            return -1;
        dst[o++] = (char)c;
    }
    dst[o] = '\0';
    return 0;
}

static int pct_encode_path(char *dst, size_t len, const char *src)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (; *src != '\0'; src++) {
        unsigned char c = (unsigned char)*src;

        if (isalnum(c) || strchr("-._~/", c) != NULL) {
            if (o + 1 >= len)
                return -1;
            dst[o++] = (char)c;
        } else {
            if (o + 3 >= len)
                return -1;
            dst[o++] = '%';
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 15];
        }
    }
    dst[o] = '\0';
    return 0;
}

static int pct_encode_query(char *dst, size_t len, const char *src)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (; *src != '\0'; src++) {
        unsigned char c = (unsigned char)*src;

        if (isalnum(c) || strchr("-._~", c) != NULL) {
            if (o + 1 >= len)
                return -1;
            dst[o++] = (char)c;
        } else {
            if (o + 3 >= len)
                return -1;
            dst[o++] = '%';
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 15];
        }
    }
    dst[o] = '\0';
    return 0;
}

/* Value of key in a query string, %-decoded, into buf; 1 if present. */
static int query_get(const char *qs, const char *key, char *buf, size_t len)
{
    size_t klen = strlen(key);

    buf[0] = '\0';
    while (qs != NULL && *qs != '\0') {
        const char *amp = strchr(qs, '&');
        size_t n = amp != NULL ? (size_t)(amp - qs) : strlen(qs);

        if (n > klen && strncmp(qs, key, klen) == 0 && qs[klen] == '=') {
            if (pct_decode(buf, len, qs + klen + 1, n - klen - 1) < 0)
                buf[0] = '\0';
            return 1;
        }
        qs = amp != NULL ? amp + 1 : NULL;
    }
    return 0;
}

static int host_is_pathstyle(const char *host, size_t n)
{
    size_t i;
    int digits_dots = 1;

    if (n > 0 && host[0] == '[')
        return 1; /* IPv6 literal */
    if ((n >= 9 && strncasecmp(host, "localhost", 9) == 0 && (n == 9 || host[9] == ':')))
        return 1;
    for (i = 0; i < n && host[i] != ':'; i++)
        if (!isdigit((unsigned char)host[i]) && host[i] != '.')
            digits_dots = 0;
    return digits_dots;
}

int ca_azure_parse(const char *url, struct ca_azure_url *u, char *err, size_t errlen)
{
    const char *p, *host, *hend, *path, *pend, *q;
    static const char suffix[] = ".blob.core.windows.net";
    size_t hlen, slen = sizeof(suffix) - 1;
    char decoded[2048 + 256 + 256 + 8];
    char *seg, *rest;
    int pathstyle;

    memset(u, 0, sizeof(*u));
    if (url == NULL || strlen(url) >= CA_AZURE_URL_MAX)
        return ca_seterr(err, errlen, CA_EINVAL, "the URL is empty or too long");
    for (p = url; *p != '\0'; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return ca_seterr(err, errlen, CA_EINVAL,
                             "the URL contains spaces or control characters");
    if (strncasecmp(url, "https://", 8) == 0)
        host = url + 8;
    else if (strncasecmp(url, "http://", 7) == 0)
        host = url + 7;
    else
        return ca_seterr(err, errlen, CA_EINVAL, "only https:// URLs can be imported");
    hend = host + strcspn(host, "/?#");
    if (memchr(host, '@', (size_t)(hend - host)) != NULL)
        return ca_seterr(err, errlen, CA_EINVAL, "URLs with a user name or password are refused");
    hlen = (size_t)(hend - host);
    if (hlen == 0)
        return ca_seterr(err, errlen, CA_EINVAL, "the URL has no host");
    path = hend;
    pend = path + strcspn(path, "?#");
    q = *pend == '?' ? pend + 1 : NULL;
    if (q != NULL) {
        size_t qn = strcspn(q, "#");

        if (copy(u->sas, sizeof(u->sas), q, qn) < 0)
            return ca_seterr(err, errlen, CA_EINVAL, "the URL's query string is too long");
    }
    {
        /* host without port, for the suffix test */
        const char *colon = memchr(host, ':', hlen);
        size_t bare = colon != NULL && host[0] != '[' ? (size_t)(colon - host) : hlen;

        pathstyle = host_is_pathstyle(host, hlen);
        if (!pathstyle && !(bare > slen && strncasecmp(host + bare - slen, suffix, slen) == 0))
            return 0; /* some other server: a plain download */
        if (!pathstyle && copy(u->account, sizeof(u->account), host, bare - slen) < 0)
            return 0;
    }
    if (pathstyle && q == NULL)
        return 0; /* a loopback URL without a SAS is no blob URL */
    if ((size_t)(pend - path) >= sizeof(decoded) ||
        pct_decode(decoded, sizeof(decoded), path, (size_t)(pend - path)) < 0)
        return ca_seterr(err, errlen, CA_EINVAL, "the URL's path has a bad %%-escape");
    rest = decoded;
    while (*rest == '/')
        rest++;
    if (pathstyle) {
        seg = rest;
        rest = strchr(seg, '/');
        if (rest != NULL)
            *rest++ = '\0';
        if (*seg == '\0' || copy(u->account, sizeof(u->account), seg, strlen(seg)) < 0)
            return 0;
        if (snprintf(u->base, sizeof(u->base), "%.*s/%s", (int)(hend - url), url, u->account) >=
            (int)sizeof(u->base))
            return ca_seterr(err, errlen, CA_EINVAL, "the URL is too long");
        if (rest == NULL)
            return 0; /* account only */
    } else if (copy(u->base, sizeof(u->base), url, (size_t)(hend - url)) < 0) {
        return ca_seterr(err, errlen, CA_EINVAL, "the URL is too long");
    }
    seg = rest;
    rest = strchr(seg, '/');
    if (rest != NULL)
        *rest++ = '\0';
    if (*seg == '\0') {
        u->base[0] = '\0';
        return 0; /* no container: not something we import */
    }
    if (copy(u->container, sizeof(u->container), seg, strlen(seg)) < 0 ||
        copy(u->path, sizeof(u->path), rest != NULL ? rest : "", rest != NULL ? strlen(rest) : 0) <
            0)
        return ca_seterr(err, errlen, CA_EINVAL, "the blob path is too long");
    query_get(u->sas, "se", u->se, sizeof(u->se));
    {
        char sr[16];
        size_t pl = strlen(u->path);

        query_get(u->sas, "sr", sr, sizeof(sr));
        if (pl == 0 || u->path[pl - 1] == '/')
            u->kind = CA_AZURE_CONTAINER;
        else
            u->kind = CA_AZURE_BLOB;
    }
    return 0;
}

void ca_url_redact(const char *url, char *buf, size_t len)
{
    const char *host, *end;
    size_t n, pre;

    if (len == 0)
        return;
    buf[0] = '\0';
    if (url == NULL)
        return;
    host = strstr(url, "://");
    host = host != NULL ? host + 3 : url;
    pre = (size_t)(host - url);
    {
        /* drop user info */
        const char *hend = host + strcspn(host, "/?#");
        const char *at = memchr(host, '@', (size_t)(hend - host));

        if (at != NULL)
            host = at + 1;
    }
    end = host + strcspn(host, "?#");
    n = pre + (size_t)(end - host);
    if (n + 4 > len)
        n = len > 4 ? len - 4 : 0;
    if (pre > n)
        pre = n;
    memcpy(buf, url, pre);
    memcpy(buf + pre, host, n - pre);
    buf[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
            buf[i] = '_';
    if (*end == '?')
        memcpy(buf + n, "?\xe2\x80\xa6", 4 < len - n ? 5 : 1); /* "?…" */
}

int ca_azure_list_url(const struct ca_azure_url *u, const char *marker, int maxresults, char *buf,
                      size_t len)
{
    char cont[768], pfx[6400], mk[4096];
    int n;

    if (pct_encode_path(cont, sizeof(cont), u->container) < 0 ||
        pct_encode_query(pfx, sizeof(pfx), u->path) < 0 ||
        pct_encode_query(mk, sizeof(mk), marker != NULL ? marker : "") < 0)
        return CA_EINVAL;
    n = snprintf(buf, len, "%s/%s?restype=container&comp=list&maxresults=%d%s%s%s%s%s%s", u->base,
                 cont, maxresults > 0 ? maxresults : 5000, pfx[0] ? "&prefix=" : "", pfx,
                 mk[0] ? "&marker=" : "", mk, u->sas[0] ? "&" : "", u->sas);
    return n < 0 || (size_t)n >= len ? CA_EINVAL : 0;
}

int ca_azure_blob_url(const struct ca_azure_url *u, const char *name, char *buf, size_t len)
{
    char cont[768], path[6400];
    int n;

    if (pct_encode_path(cont, sizeof(cont), u->container) < 0 ||
        pct_encode_path(path, sizeof(path), name) < 0)
        return CA_EINVAL;
    n = snprintf(buf, len, "%s/%s/%s%s%s", u->base, cont, path, u->sas[0] ? "?" : "", u->sas);
    return n < 0 || (size_t)n >= len ? CA_EINVAL : 0;
}

/* ---- List Blobs XML ---------------------------------------------------- */

/* Finds <tag>…</tag> in [p, end); sets the text span.  NULL when absent. */
static const char *xml_elem(const char *p, const char *end, const char *tag, const char **tbeg,
                            const char **tend)
{
    char open[64], close[64];
    size_t ol, cl;
    const char *s, *e;

    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);
    ol = strlen(open);
    cl = strlen(close);
    s = memmem(p, (size_t)(end - p), open, ol);
    if (s == NULL) {
        /* an empty element: <tag/> */
        snprintf(open, sizeof(open), "<%s/>", tag);
        s = memmem(p, (size_t)(end - p), open, strlen(open));
        if (s == NULL)
            return NULL;
        *tbeg = *tend = s;
        return s + strlen(open);
    }
    e = memmem(s + ol, (size_t)(end - (s + ol)), close, cl);
    if (e == NULL)
        return NULL;
    *tbeg = s + ol;
    *tend = e;
    return e + cl;
}

/* XML text with the five entities and numeric references decoded. */
static int xml_text(const char *s, const char *e, char *buf, size_t len)
{
    size_t o = 0;

    while (s < e) {
        unsigned long cp = (unsigned char)*s;
        size_t adv = 1;

        if (*s == '&') {
            static const struct {
                const char *name;
                char c;
            } ents[] = {
                {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
            size_t k;

            for (k = 0; k < sizeof(ents) / sizeof(ents[0]); k++) {
                size_t l = strlen(ents[k].name);

                if ((size_t)(e - s) >= l && memcmp(s, ents[k].name, l) == 0) {
                    cp = (unsigned char)ents[k].c;
                    adv = l;
                    break;
                }
            }
            if (k == sizeof(ents) / sizeof(ents[0])) {
                const char *semi = memchr(s, ';', (size_t)(e - s) < 12 ? (size_t)(e - s) : 12);
                char num[16];

                if (semi == NULL || s[1] != '#' || (size_t)(semi - s) - 2 >= sizeof(num))
                    return -1;
                memcpy(num, s + 2, (size_t)(semi - s) - 2);
                num[(size_t)(semi - s) - 2] = '\0';
                cp = num[0] == 'x' ? strtoul(num + 1, NULL, 16) : strtoul(num, NULL, 10);
                if (cp == 0 || cp > 0x10ffff)
                    return -1;
                adv = (size_t)(semi - s) + 1;
                /* UTF-8 encode */
                if (cp >= 0x80) {
                    unsigned char u8[4];
                    size_t k2 = 0;

                    if (cp < 0x800) {
                        u8[k2++] = (unsigned char)(0xc0 | (cp >> 6));
                    } else if (cp < 0x10000) {
                        u8[k2++] = (unsigned char)(0xe0 | (cp >> 12));
                        u8[k2++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
                    } else {
                        u8[k2++] = (unsigned char)(0xf0 | (cp >> 18));
                        u8[k2++] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
                        u8[k2++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
                    }
                    u8[k2++] = (unsigned char)(0x80 | (cp & 0x3f));
                    if (o + k2 >= len)
                        return -1;
                    memcpy(buf + o, u8, k2);
                    o += k2;
                    s += adv;
                    continue;
                }
            }
        }
        if (o + 1 >= len)
            return -1;
        buf[o++] = (char)cp;
        s += adv;
    }
    buf[o] = '\0';
    return 0;
}

int ca_azure_parse_list(const char *xml, size_t len, json_t *blobs, size_t max_blobs, char *marker,
                        size_t markerlen, char *err, size_t errlen)
{
    const char *end = xml + len, *p, *tb, *te, *blobs_end;
    char name[1025], tmp[128];

    if (markerlen > 0)
        marker[0] = '\0';
    if (memmem(xml, len, "<EnumerationResults", 19) == NULL)
        return ca_seterr(err, errlen, CA_EFORMAT,
                         "storage answered the container listing with something else than a "
                         "blob list");
    p = xml_elem(xml, end, "Blobs", &tb, &te);
    if (p == NULL)
        return ca_seterr(err, errlen, CA_EFORMAT, "the blob list has no <Blobs> element");
    blobs_end = te;
    p = tb;
    for (;;) {
        const char *bb, *be, *after, *pb, *pe;
        json_t *o;
        long long size = -1;
        char vm[256], iso[64], md5[64] = "", lm[64] = "";

        after = xml_elem(p, blobs_end, "Blob", &bb, &be);
        if (after == NULL)
            break;
        p = after;
        if (xml_elem(bb, be, "Name", &tb, &te) == NULL || xml_text(tb, te, name, sizeof(name)) < 0)
            continue; /* nameless or over-long name: not importable anyway */
        if (xml_elem(bb, be, "Properties", &pb, &pe) != NULL) {
            if (xml_elem(pb, pe, "Content-Length", &tb, &te) != NULL &&
                xml_text(tb, te, tmp, sizeof(tmp)) == 0)
                size = strtoll(tmp, NULL, 10);
            if (xml_elem(pb, pe, "Last-Modified", &tb, &te) != NULL)
                xml_text(tb, te, lm, sizeof(lm));
            if (xml_elem(pb, pe, "Content-MD5", &tb, &te) != NULL)
                xml_text(tb, te, md5, sizeof(md5));
        }
        if (json_array_size(blobs) >= max_blobs)
            return ca_seterr(err, errlen, CA_ETOOBIG,
                             "the container holds more than %zu blobs; use a folder prefix",
                             max_blobs);
        o = json_pack("{s:s, s:I, s:s, s:s?}", "name", name, "size", (json_int_t)size,
                      "last_modified", lm, "md5", md5[0] ? md5 : NULL);
        if (o == NULL)
            return CA_ENOMEM;
        if (ca_azure_nw_parse(name, vm, sizeof(vm), iso, sizeof(iso))) {
            json_object_set_new(o, "vm", json_string(vm));
            json_object_set_new(o, "capture_time", json_string(iso));
        } else {
            json_object_set_new(o, "vm", json_null());
            json_object_set_new(o, "capture_time", json_null());
        }
        json_array_append_new(blobs, o);
    }
    if (xml_elem(blobs_end, end, "NextMarker", &tb, &te) != NULL && markerlen > 0 &&
        xml_text(tb, te, marker, markerlen) < 0)
        return ca_seterr(err, errlen, CA_EFORMAT, "the blob list's NextMarker is too long");
    return 0;
}

/* ---- Network Watcher ---------------------------------------------------- */

int ca_azure_nw_parse(const char *path, char *vm, size_t vmlen, char *iso, size_t isolen)
{
    const char *p = path, *v = NULL, *slash;
    int y, mo, d, h, mi, s, ms = 0, n = 0;
    char tail[32];

    if (vmlen > 0)
        vm[0] = '\0';
    if (isolen > 0)
        iso[0] = '\0';
    for (p = path; (p = strcasestr(p, "virtualmachines/")) != NULL; p++)
        v = p + 16;
    if (v == NULL)
        return 0;
    slash = strchr(v, '/');
    if (slash == NULL || slash == v || (size_t)(slash - v) >= vmlen)
        return 0;
    if (sscanf(slash, "/%4d/%2d/%2d/%31s", &y, &mo, &d, tail) != 4)
        return 0;
    if (strncasecmp(tail, "packetcapture_", 14) != 0)
        return 0;
    if (sscanf(tail + 14, "%2d_%2d_%2d_%3d%n", &h, &mi, &s, &ms, &n) < 3) {
        if (sscanf(tail + 14, "%2d_%2d_%2d%n", &h, &mi, &s, &n) != 3)
            return 0;
    }
    if (strcasecmp(tail + 14 + n, ".cap") != 0 || y < 1970 || mo < 1 || mo > 12 || d < 1 ||
        d > 31 || h > 23 || mi > 59 || s > 60 || ms < 0 || ms > 999)
        return 0;
    memcpy(vm, v, (size_t)(slash - v));
    vm[slash - v] = '\0';
    snprintf(iso, isolen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, mo, d, h, mi, s, ms);
    return 1;
}

void ca_azure_http_error(const struct ca_azure_url *u, long status, const char *code, char *buf,
                         size_t len)
{
    const char *what = u->kind == CA_AZURE_CONTAINER ? "container" : "blob";

    if (status == 403 || (status == 401))
        snprintf(buf, len,
                 "the SAS link was refused by storage: expired or wrong permissions (se=%s)%s%s",
                 u->se[0] ? u->se : "not set", code && code[0] ? ": " : "", code ? code : "");
    else if (status == 404 && code != NULL && strcmp(code, "ContainerNotFound") == 0)
        snprintf(buf, len, "no such container");
    else if (status == 404)
        snprintf(buf, len, "no such %s", what);
    else
        snprintf(buf, len, "storage answered HTTP %ld%s%s", status, code && code[0] ? ": " : "",
                 code ? code : "");
}
