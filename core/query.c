/*
 * The query engine (see query.h).  Everything is one pass (two for
 * histograms of an unknown span) over the hot records of the snapshot,
 * with the compiled filter deciding per record, split over two threads
 * when the partial answers merge (scan_par); group-bys go through one
 * open-addressing hash table keyed by up to two group values, except
 * address group-bys and distinct-address counts, which index dense arrays
 * and bitmaps by the records' address ids; flows pages
 * keep a bounded heap of the best limit+1 sort keys after the cursor, so a
 * page costs one scan and `limit` record decodes whatever the sort column.
 *
 * Sort keys are 32 bytes compared with memcmp: 17 bytes of order-preserving
 * value (numbers big-endian with the sign flipped, addresses as version +
 * 16 bytes, names as their rank in sorted order), then the flow id, so the
 * order is total and a cursor (the last key, in hex) resumes exactly after
 * the last row shown.  New captures becoming ready never reorder rows
 * already shown; their flows show up in their place on later pages.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca_error.h"
#include "filter.h"
#include "query.h"

#define NS_PER_S 1000000000LL

struct ca_query {
    struct ca_ws *w;
    struct ca_ws_snap *s;
    struct ca_filter *f;
    int tables; /* every ready capture has pre-computed tables: 1, no: 0, unknown: -1 */
    int aids;   /* ... and address ids in every hot record */
    /* extra condition of per-IP detail */
    int has_ip;
    uint8_t ip[16];
    int ip_ver;
};

/* ---- the filter's view of the snapshot ----------------------------------- */

static int env_strings(void *arg, int kind, int (*fn)(void *a, uint32_t id, const char *s), void *a)
{
    return ca_ws_snap_str_each(arg, kind, fn, a);
}

static uint32_t env_str_max(void *arg)
{
    return ca_ws_snap_str_max(arg);
}

static int env_capture(void *arg, const char *name, uint32_t *id)
{
    size_t n;
    const struct ca_snap_capture *c = ca_ws_snap_captures(arg, &n);

    for (size_t i = 0; i < n; i++) {
        if (strcmp(c[i].name, name) == 0) {
            *id = c[i].id;
            return 0;
        }
    }
    return CA_ENOTFOUND;
}

int ca_query_open(struct ca_ws *w, const char *filter, struct ca_query **out, char *err,
                  size_t errlen, int *errpos)
{
    struct ca_query *q;
    struct ca_filter_env env;
    int rc;

    *out = NULL;
    if (errpos != NULL)
        *errpos = -1;
    q = calloc(1, sizeof(*q));
    if (q == NULL)
        return CA_ENOMEM;
    q->w = w;
    q->tables = -1;
    q->aids = 0;
    rc = ca_ws_snap_open(w, &q->s);
    if (rc != 0)
        goto bad;
    env.arg = q->s;
    env.strings = env_strings;
    env.str_max = env_str_max;
    env.capture_by_name = env_capture;
    rc = ca_filter_compile(filter, &env, &q->f, err, errlen, errpos);
    if (rc != 0)
        goto bad;
    *out = q;
    return 0;
bad:
    ca_query_close(q);
    return rc;
}

void ca_query_close(struct ca_query *q)
{
    if (q == NULL)
        return;
    ca_ws_snap_close(q->s);
    ca_filter_free(q->f);
    free(q);
}

struct ca_ws_snap *ca_query_snap(struct ca_query *q)
{
    return q->s;
}

void ca_query_release(struct ca_query *q)
{
    ca_ws_snap_close(q->s);
    q->s = NULL;
}

int ca_query_refresh(struct ca_query *q)
{
    ca_query_release(q);
    q->tables = -1;
    return ca_ws_snap_open(q->w, &q->s);
}

/* ---- scanning ------------------------------------------------------------ */

typedef int (*row_fn)(void *arg, uint32_t cap, uint32_t seq, const struct ca_hot *h);

struct scan {
    struct ca_query *q;
    row_fn fn;
    void *arg;
    const struct ca_snap_capture *caps;
    size_t ncaps;
    uint64_t last;
};

static int pfx_eq(const struct ca_query *q, const struct ca_hot *h)
{
    return h->ip_version == q->ip_ver &&
           (memcmp(h->src, q->ip, 16) == 0 || memcmp(h->dst, q->ip, 16) == 0);
}

static int scan_chunk(void *arg, uint32_t cap, uint32_t seq0, const struct ca_hot *h, size_t n)
{
    struct scan *sc = arg;
    struct ca_filter_row row = {NULL, cap, 0};
    int all = ca_filter_is_all(sc->q->f);
    int rc;

    if (ca_filter_uses_cap_start(sc->q->f)) {
        for (size_t i = 0; i < sc->ncaps; i++)
            if (sc->caps[i].id == cap)
                row.cap_start = sc->caps[i].first_ns;
    }
    for (size_t i = 0; i < n; i++) {
        if (sc->q->has_ip && !pfx_eq(sc->q, &h[i]))
            continue;
        row.h = &h[i];
        if (!all && !ca_filter_match(sc->q->f, &row))
            continue;
        rc = sc->fn(sc->arg, cap, seq0 + (uint32_t)i, &h[i]);
        if (rc != 0)
            return rc;
    }
    sc->last = (uint64_t)cap << 32 | (seq0 + (uint32_t)n - 1);
    return 0;
}

static int have_tables(struct ca_query *q);

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

#define REQ_ADDRS_MAX 16

/*
 * A filter that requires one of a few exact addresses (`ip == A`, or the
 * per-IP detail) reads the capture's address lists and only those flows'
 * hot records, in id order like a full scan.  1 when done this way.
 */
static int scan_indexed(struct ca_query *q, struct scan *sc, int *rcp)
{
    uint8_t addr[REQ_ADDRS_MAX][16];
    int ver[REQ_ADDRS_MAX], na;
    uint32_t *seqs = NULL;
    size_t cap_seqs = 0;
    int rc = 0;

    if (q->has_ip) {
        memcpy(addr[0], q->ip, 16);
        ver[0] = q->ip_ver;
        na = 1;
    } else {
        na = ca_filter_required_addrs(q->f, addr, ver, REQ_ADDRS_MAX);
    }
    if (na <= 0 || !have_tables(q))
        return 0;
    for (size_t c = 0; c < sc->ncaps && rc == 0; c++) {
        uint32_t cap = sc->caps[c].id;
        size_t n = 0;

        for (int a = 0; a < na && rc == 0; a++) {
            const void *v;
            size_t k;

            rc = ca_ws_snap_addr_seqs(q->s, cap, ver[a], addr[a], &v, &k);
            if (rc != 0 || k == 0)
                continue;
            if (n + k > cap_seqs) {
                uint32_t *g = realloc(seqs, (n + k) * sizeof(*g));

                if (g == NULL) {
                    rc = CA_ENOMEM;
                    break;
                }
                seqs = g;
                cap_seqs = n + k;
            }
            memcpy(seqs + n, v, k * sizeof(*seqs));
            n += k;
        }
        if (rc != 0)
            break;
        if (na > 1 && n > 1) {
            size_t m = 1;

            qsort(seqs, n, sizeof(*seqs), cmp_u32);
            for (size_t i = 1; i < n; i++)
                if (seqs[i] != seqs[m - 1])
                    seqs[m++] = seqs[i];
            n = m;
        }
        for (size_t i = 0; i < n && rc == 0; i++) {
            struct ca_hot h;

            rc = ca_ws_snap_hot(q->s, cap, seqs[i], &h);
            if (rc == 0)
                rc = scan_chunk(sc, cap, seqs[i], &h, 1);
        }
    }
    free(seqs);
    *rcp = rc;
    return 1;
}

/* Whether the filter reads an address index (scan_indexed). */
static int address_filter(struct ca_query *q)
{
    uint8_t addr[REQ_ADDRS_MAX][16];
    int ver[REQ_ADDRS_MAX];

    return ca_filter_required_addrs(q->f, addr, ver, REQ_ADDRS_MAX) > 0;
}

static int scan(struct ca_query *q, uint64_t after, size_t max_chunks, row_fn fn, void *arg,
                uint64_t *last)
{
    struct scan sc = {q, fn, arg, NULL, 0, 0};
    int rc;

    if (q->s == NULL)
        return CA_EINTERNAL;
    sc.caps = ca_ws_snap_captures(q->s, &sc.ncaps);
    if (after == 0 && max_chunks == 0 && last == NULL && scan_indexed(q, &sc, &rc))
        return rc;
    rc = ca_ws_snap_scan(q->s, after, max_chunks, scan_chunk, &sc);
    if (last != NULL)
        *last = sc.last;
    return rc;
}

struct each_arg {
    struct ca_query *q;
    ca_query_row_fn fn;
    void *arg;
    size_t chunks;
};

static int each_row(void *arg, uint32_t cap, uint32_t seq, const struct ca_hot *h)
{
    struct each_arg *e = arg;

    return e->fn(e->arg, e->q->s, (uint64_t)cap << 32 | seq, h);
}

int ca_query_each(struct ca_query *q, uint64_t after, size_t max_chunks, ca_query_row_fn fn,
                  void *arg, uint64_t *last)
{
    struct each_arg e = {q, fn, arg, 0};
    uint64_t l = 0;
    int rc = scan(q, after, max_chunks, each_row, &e, &l);

    /* Fewer chunks than asked for means the end was reached. */
    if (last != NULL)
        *last = l == after ? 0 : l;
    return rc;
}

/* ---- hash table ---------------------------------------------------------- */

struct htab {
    size_t ksz, vsz, voff, slot, cap, n; /* values at voff in a slot, 8-aligned */
    uint8_t *mem;                        /* slots: u64 hash (0 = empty), key, value */
};

static uint64_t hash_bytes(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;

    for (size_t i = 0; i < n; i += 8) {
        uint64_t w = 0;

        memcpy(&w, b + i, n - i >= 8 ? 8 : n - i);
        h ^= w;
        h *= 0xff51afd7ed558ccdULL;
        h ^= h >> 33;
    }
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 29;
    return h != 0 ? h : 1;
}

static int ht_init(struct htab *t, size_t ksz, size_t vsz, size_t cap)
{
    memset(t, 0, sizeof(*t));
    t->ksz = ksz;
    t->vsz = vsz;
    t->voff = 8 + ((ksz + 7) & ~(size_t)7);
    t->slot = (t->voff + vsz + 7) & ~(size_t)7;
    t->cap = cap;
    t->mem = calloc(cap, t->slot);
    return t->mem != NULL ? 0 : CA_ENOMEM;
}

static void ht_free(struct htab *t)
{
    free(t->mem);
    t->mem = NULL;
}

static int ht_grow(struct htab *t)
{
    struct htab g;

    if (ht_init(&g, t->ksz, t->vsz, t->cap * 2) != 0)
        return CA_ENOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        uint8_t *s = t->mem + i * t->slot;
        uint64_t h;
        size_t j;

        memcpy(&h, s, 8);
        if (h == 0)
            continue;
        for (j = h & (g.cap - 1);; j = (j + 1) & (g.cap - 1)) {
            uint64_t gh;

            memcpy(&gh, g.mem + j * g.slot, 8);
            if (gh == 0)
                break;
        }
        memcpy(g.mem + j * g.slot, s, t->slot);
    }
    g.n = t->n;
    free(t->mem);
    *t = g;
    return 0;
}

/* Value of key (zeroed when new; *created set).  NULL on ENOMEM. */
static void *ht_get(struct htab *t, const void *key, int *created)
{
    uint64_t h = hash_bytes(key, t->ksz);

    if (t->n * 2 >= t->cap && ht_grow(t) != 0)
        return NULL;
    for (size_t j = h & (t->cap - 1);; j = (j + 1) & (t->cap - 1)) {
        uint8_t *s = t->mem + j * t->slot;
        uint64_t sh;

        memcpy(&sh, s, 8);
        if (sh == 0) {
            memcpy(s, &h, 8);
            memcpy(s + 8, key, t->ksz);
            t->n++;
            if (created != NULL)
                *created = 1;
            return s + t->voff;
        }
        if (sh == h && memcmp(s + 8, key, t->ksz) == 0) {
            if (created != NULL)
                *created = 0;
            return s + t->voff;
        }
    }
}

#define HT_EACH(t, i, s)                                                                           \
    for (size_t i = 0; i < (t)->cap; i++)                                                          \
        if ((s = (t)->mem + i * (t)->slot), *(const uint64_t *)(const void *)s != 0)

/* ---- group fields -------------------------------------------------------- */

enum gfield {
    GF_SRC,
    GF_DST,
    GF_IP,
    GF_PORT,
    GF_SPORT,
    GF_DPORT,
    GF_PORT_BUCKET,
    GF_PROTO,
    GF_PROTO_MASTER,
    GF_L4,
    GF_CATEGORY,
    GF_COUNTRY,
    GF_SCC,
    GF_DCC,
    GF_ASN,
    GF_SASN,
    GF_DASN,
    GF_HOST,
    GF_CAPTURE,
    GF_VLAN,
    GF_HOUR,
    GF_DAY,
    GF_WEEKDAY,
    GF_DUR_BUCKET,
    GF_TCPSTATE,
    GF_COUNT
};

static const char *const gfield_names[GF_COUNT] = {
    "src",         "dst",         "ip",           "port",    "src.port", "dst.port",
    "port.bucket", "proto",       "proto.master", "l4",      "category", "country",
    "src.country", "dst.country", "asn",          "src.asn", "dst.asn",  "host",
    "capture",     "vlan",        "hour",         "day",     "weekday",  "duration.bucket",
    "tcp.state"};

static int gfield_find(const char *s, size_t n)
{
    for (int i = 0; i < GF_COUNT; i++)
        if (strlen(gfield_names[i]) == n && strncasecmp(gfield_names[i], s, n) == 0)
            return i;
    return -1;
}

/* One group value: 16 bytes of data and a tag (address version). */
struct gv {
    uint8_t b[16];
    uint32_t tag;
};

static const int64_t dur_bounds[] = {NS_PER_S, 10 * NS_PER_S, 60 * NS_PER_S, 600 * NS_PER_S,
                                     3600 * NS_PER_S};
static const char *const dur_labels[] = {"<1s", "1-10s", "10s-1m", "1-10m", "10m-1h", ">1h"};
static const char *const port_bucket_labels[] = {"0-1023", "1024-49151", "49152-65535", "none"};
static const char *const weekday_labels[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

static int64_t fdiv(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static void gv_u64(struct gv *v, uint64_t x)
{
    memset(v, 0, sizeof(*v));
    memcpy(v->b, &x, 8);
}

static uint64_t gv_get_u64(const struct gv *v)
{
    uint64_t x;

    memcpy(&x, v->b, 8);
    return x;
}

static void gv_addr(struct gv *v, const uint8_t *a, int ver)
{
    memcpy(v->b, a, 16);
    v->tag = (uint32_t)ver;
}

static void gv_cc(struct gv *v, const char *cc)
{
    memset(v, 0, sizeof(*v));
    memcpy(v->b, cc, 2);
}

/* Values of field f for one flow (1 or 2, distinct). */
static int gvals(int f, uint32_t cap, const struct ca_hot *h, const uint32_t *master,
                 uint32_t nmaster, struct gv out[2])
{
    int64_t d;
    int n = 1;

    memset(out, 0, 2 * sizeof(*out));
    switch (f) {
    case GF_SRC:
        gv_addr(&out[0], h->src, h->ip_version);
        break;
    case GF_DST:
        gv_addr(&out[0], h->dst, h->ip_version);
        break;
    case GF_IP:
        gv_addr(&out[0], h->src, h->ip_version);
        gv_addr(&out[1], h->dst, h->ip_version);
        n = memcmp(h->src, h->dst, 16) != 0 ? 2 : 1;
        break;
    case GF_PORT:
        gv_u64(&out[0], h->src_port);
        gv_u64(&out[1], h->dst_port);
        n = h->src_port != h->dst_port ? 2 : 1;
        break;
    case GF_SPORT:
        gv_u64(&out[0], h->src_port);
        break;
    case GF_DPORT:
        gv_u64(&out[0], h->dst_port);
        break;
    case GF_PORT_BUCKET:
        gv_u64(&out[0], h->l4 != 6 && h->l4 != 17 && h->l4 != 132 ? 3
                        : h->dst_port < 1024                      ? 0
                        : h->dst_port < 49152                     ? 1
                                                                  : 2);
        break;
    case GF_PROTO:
        gv_u64(&out[0], h->proto_id);
        break;
    case GF_PROTO_MASTER:
        gv_u64(&out[0], h->proto_id < nmaster ? master[h->proto_id] : h->proto_id);
        break;
    case GF_L4:
        gv_u64(&out[0], h->l4);
        break;
    case GF_CATEGORY:
        gv_u64(&out[0], h->cat_id);
        break;
    case GF_COUNTRY:
        gv_cc(&out[0], h->src_cc);
        gv_cc(&out[1], h->dst_cc);
        n = memcmp(h->src_cc, h->dst_cc, 2) != 0 ? 2 : 1;
        break;
    case GF_SCC:
        gv_cc(&out[0], h->src_cc);
        break;
    case GF_DCC:
        gv_cc(&out[0], h->dst_cc);
        break;
    case GF_ASN:
        gv_u64(&out[0], h->src_asn);
        gv_u64(&out[1], h->dst_asn);
        n = h->src_asn != h->dst_asn ? 2 : 1;
        break;
    case GF_SASN:
        gv_u64(&out[0], h->src_asn);
        break;
    case GF_DASN:
        gv_u64(&out[0], h->dst_asn);
        break;
    case GF_HOST:
        gv_u64(&out[0], h->host_id != 0 ? h->host_id : h->dns_id);
        break;
    case GF_CAPTURE:
        gv_u64(&out[0], cap);
        break;
    case GF_VLAN:
        gv_u64(&out[0], h->vlan);
        break;
    case GF_HOUR:
        gv_u64(&out[0], (uint64_t)(fdiv(h->first_ns, 3600 * NS_PER_S) % 24 + 24) % 24);
        break;
    case GF_DAY:
        gv_u64(&out[0], (uint64_t)fdiv(h->first_ns, 86400 * NS_PER_S));
        break;
    case GF_WEEKDAY:
        gv_u64(&out[0], (uint64_t)(((fdiv(h->first_ns, 86400 * NS_PER_S) + 3) % 7 + 7) % 7));
        break;
    case GF_DUR_BUCKET:
        d = h->last_ns - h->first_ns;
        {
            uint64_t b = 0;

            while (b < 5 && d >= dur_bounds[b])
                b++;
            gv_u64(&out[0], b);
        }
        break;
    case GF_TCPSTATE:
        gv_u64(&out[0], h->tcp_state);
        break;
    }
    return n;
}

static json_t *addr_json(int ver, const uint8_t *a)
{
    char buf[64];

    return json_string(ca_addr_str((uint8_t)ver, a, buf, sizeof(buf)));
}

static json_t *gv_json(struct ca_query *q, int f, const struct gv *v)
{
    uint64_t x = gv_get_u64(v);
    char buf[32];

    switch (f) {
    case GF_SRC:
    case GF_DST:
    case GF_IP:
        return addr_json((int)v->tag, v->b);
    case GF_PORT_BUCKET:
        return json_string(port_bucket_labels[x < 4 ? x : 3]);
    case GF_PROTO:
    case GF_PROTO_MASTER:
    case GF_CATEGORY:
    case GF_HOST: {
        const char *s = ca_ws_snap_str(q->s, (uint32_t)x);

        if (f == GF_PROTO_MASTER) {
            size_t n = strcspn(s, ".");

            return json_stringn(n > 0 ? s : "Unknown", n > 0 ? n : 7);
        }
        return json_string(s[0] != '\0' ? s : (f == GF_HOST ? "" : "Unknown"));
    }
    case GF_L4: {
        const char *s = ca_l4_name((int)x);

        if (s != NULL)
            return json_string(s);
        snprintf(buf, sizeof(buf), "%llu", (unsigned long long)x);
        return json_string(buf);
    }
    case GF_COUNTRY:
    case GF_SCC:
    case GF_DCC:
        return json_stringn((const char *)v->b, strnlen((const char *)v->b, 2));
    case GF_DAY: {
        time_t t = (time_t)((int64_t)x * 86400);
        struct tm tm;

        gmtime_r(&t, &tm);
        strftime(buf, sizeof(buf), "%Y-%m-%d", &tm);
        return json_string(buf);
    }
    case GF_WEEKDAY:
        return json_string(weekday_labels[x % 7]);
    case GF_DUR_BUCKET:
        return json_string(dur_labels[x < 6 ? x : 5]);
    case GF_TCPSTATE: {
        const char *s = ca_tcp_state_name((int)x);

        return json_string(s != NULL ? s : "none");
    }
    }
    return json_integer((json_int_t)x);
}

/* ---- metrics ------------------------------------------------------------- */

enum metric { M_FLOWS, M_BYTES, M_SENT, M_RECV, M_PACKETS, M_DUR, M_DUR_AVG, M_SRC, M_DST, M_N };

static const char *const metric_names[M_N] = {
    "flows", "bytes", "sent", "recv", "packets", "duration", "duration.avg", "src_ips", "dst_ips"};

struct acc {
    uint64_t flows, bytes, sent, recv, packets;
    int64_t dur_ns;
    uint64_t src_ips, dst_ips;
};

static void acc_add(struct acc *a, const struct ca_hot *h)
{
    a->flows++;
    a->sent += h->sent_bytes;
    a->recv += h->recv_bytes;
    a->bytes += h->sent_bytes + h->recv_bytes;
    a->packets += (uint64_t)h->sent_pkts + h->recv_pkts;
    a->dur_ns += h->last_ns - h->first_ns;
}

static double acc_metric(const struct acc *a, int m)
{
    switch (m) {
    case M_FLOWS:
        return (double)a->flows;
    case M_BYTES:
        return (double)a->bytes;
    case M_SENT:
        return (double)a->sent;
    case M_RECV:
        return (double)a->recv;
    case M_PACKETS:
        return (double)a->packets;
    case M_DUR:
        return (double)a->dur_ns / 1e9;
    case M_DUR_AVG:
        return a->flows ? (double)a->dur_ns / 1e9 / (double)a->flows : 0;
    case M_SRC:
        return (double)a->src_ips;
    case M_DST:
        return (double)a->dst_ips;
    }
    return 0;
}

static json_t *acc_json(const struct acc *a, const int *ms, int nm)
{
    json_t *o = json_object();

    for (int i = 0; o != NULL && i < nm; i++) {
        json_t *v = ms[i] == M_DUR || ms[i] == M_DUR_AVG
                        ? json_real(acc_metric(a, ms[i]))
                        : json_integer((json_int_t)acc_metric(a, ms[i]));

        json_object_set_new(o, metric_names[ms[i]], v);
    }
    return o;
}

/* ---- pre-computed per-capture tables ------------------------------------ */

#include "bigmem.h" /* the builder's arrays */

/*
 * When a capture is finished the store hands its hot records to a
 * ca_capagg, which keeps, per group field, the capture's rows (group value
 * -> flows, bytes, sent, recv, packets, duration), per-minute timeline
 * rows, its flows in bytes order and, per address, its flows' seqs.
 * Unfiltered answers then merge a few small tables per capture instead of
 * scanning every flow, and exact-address filters read only the flows of
 * that address (scan_indexed).  Distinct-address metrics, two-field
 * group-bys and fine timelines still scan.
 */
enum {
    TAB_MINUTE = 100,
    TAB_BYTES_ORDER = 101, /* u32 seqs by bytes descending, then seq */
    TAB_INFO = 102,
    TAB_SRC_AIDS = 103,   /* u32 address ids seen as source, ascending */
    TAB_DST_AIDS = 104,   /* ... as destination */
    TAB_FIRST_ORDER = 105 /* u32 seqs by first packet time descending, then seq */
};

/* TAB_INFO: u32 flags. */
#define INFO_AIDS 1u /* every hot record has src_aid and dst_aid */

struct addrkey {
    uint8_t addr[16];
    uint32_t ver;
};

struct tabrec {
    struct gv k;
    uint32_t pad;
    uint64_t flows, bytes, sent, recv, packets;
    int64_t dur_ns;
};

struct ordrec {
    uint64_t bytes;
    uint64_t first; /* first_ns with the sign bit flipped: unsigned order */
    uint32_t seq;
    uint32_t pad;
};

/*
 * Builder memory is per distinct value, not per flow (except the two
 * order arrays and the address pairs, 32 bytes a flow): address and port
 * tables, the biggest, use dense arrays instead of hash slots; the other
 * fields have a few hundred values at most and keep hash tables.  The
 * store feeds the builder batch by batch during the import, with the
 * address indexes of its own address map (ca_capagg_add_ix): then the
 * builder's address hash stays empty.  Arrays that grow with the capture
 * are in huge-page maps (bigmem.h).
 */
struct sideacc {
    uint64_t flows, sent, recv, packets;
    int64_t dur_ns;
};

enum { PT_PORT, PT_SPORT, PT_DPORT, PT_COUNT };

struct ca_capagg {
    struct htab t[GF_COUNT]; /* struct gv -> struct acc, fields without a dense form */
    struct htab minute;      /* u64 minute -> struct acc */
    struct htab ipself;      /* address index (gv_u64) -> struct acc: flows with src == dst */
    struct sideacc *ports[PT_COUNT]; /* 65536 each: GF_PORT, GF_SPORT, GF_DPORT */
    uint64_t *aslot;                 /* address hash: u32 hash << 32 | (index + 1); 0 empty */
    size_t acap;
    struct addrkey *akeys;    /* address index -> address */
    struct sideacc *aside[2]; /* address index -> sums as source, as destination */
    size_t nakeys, capakeys;
    uint32_t *pidx, *pseq; /* (address index, seq) pairs */
    size_t npairs, cappairs;
    struct ordrec *order;
    size_t norder, caporder;
    int no_aids;
    int mode;             /* 0 nothing added yet, 1 addresses hashed here, 2 indexes given */
    uint64_t *aidbits[2]; /* source, destination address ids seen */
    size_t aidwords[2];
};

static int tab_field(int f)
{
    return f != GF_PROTO_MASTER && f != GF_CAPTURE;
}

/* Fields whose table the builder keeps in dense arrays (see ca_capagg). */
static int dense_field(int f)
{
    return f == GF_SRC || f == GF_DST || f == GF_IP || f == GF_PORT || f == GF_SPORT ||
           f == GF_DPORT;
}

void ca_capagg_free(struct ca_capagg *a)
{
    if (a == NULL)
        return;
    for (int f = 0; f < GF_COUNT; f++)
        ht_free(&a->t[f]);
    ht_free(&a->minute);
    ht_free(&a->ipself);
    for (int p = 0; p < PT_COUNT; p++)
        free(a->ports[p]);
    ca_big_free(a->aslot);
    ca_big_free(a->akeys);
    ca_big_free(a->aside[0]);
    ca_big_free(a->aside[1]);
    ca_big_free(a->pidx);
    ca_big_free(a->pseq);
    ca_big_free(a->order);
    ca_big_free(a->aidbits[0]);
    ca_big_free(a->aidbits[1]);
    free(a);
}

static int capagg_aid(struct ca_capagg *a, int side, uint32_t id)
{
    size_t w = id / 64;

    if (w >= a->aidwords[side]) {
        size_t nw = a->aidwords[side] ? a->aidwords[side] : 64;
        uint64_t *g;

        while (nw <= w)
            nw *= 2;
        g = ca_big_realloc(a->aidbits[side], nw * sizeof(*g)); /* zeroed beyond */
        if (g == NULL)
            return CA_ENOMEM;
        a->aidbits[side] = g;
        a->aidwords[side] = nw;
    }
    a->aidbits[side][w] |= 1ULL << (id % 64);
    return 0;
}

int ca_capagg_new(struct ca_capagg **out)
{
    struct ca_capagg *a = calloc(1, sizeof(*a));
    int rc = a != NULL ? 0 : CA_ENOMEM;

    for (int f = 0; rc == 0 && f < GF_COUNT; f++)
        if (tab_field(f) && !dense_field(f) &&
            ht_init(&a->t[f], sizeof(struct gv), sizeof(struct acc), 64) != 0)
            rc = CA_ENOMEM;
    if (rc == 0 && (ht_init(&a->minute, 8, sizeof(struct acc), 256) != 0 ||
                    ht_init(&a->ipself, sizeof(struct gv), sizeof(struct acc), 16) != 0))
        rc = CA_ENOMEM;
    /* calloc'd: only the pages of ports in use become resident */
    for (int p = 0; rc == 0 && p < PT_COUNT; p++)
        if ((a->ports[p] = calloc(65536, sizeof(struct sideacc))) == NULL)
            rc = CA_ENOMEM;
    if (rc != 0) {
        ca_capagg_free(a);
        a = NULL;
    }
    *out = a;
    return rc;
}

static int grow(void **p, size_t *cap, size_t need, size_t sz)
{
    size_t nc = *cap ? *cap : 1024;
    void *g;

    if (need <= *cap)
        return 0;
    while (nc < need)
        nc *= 2;
    g = realloc(*p, nc * sz);
    if (g == NULL)
        return CA_ENOMEM;
    *p = g;
    *cap = nc;
    return 0;
}

/* grow() for the builder's arrays: huge-page maps, zeroed beyond the old size. */
static int big_grow(void **p, size_t *cap, size_t need, size_t sz)
{
    size_t nc = *cap ? *cap : 16384;
    void *g;

    if (need <= *cap)
        return 0;
    while (nc < need)
        nc *= 2;
    g = ca_big_realloc(*p, nc * sz);
    if (g == NULL)
        return CA_ENOMEM;
    *p = g;
    *cap = nc;
    return 0;
}

static void side_add(struct sideacc *s, const struct ca_hot *h)
{
    s->flows++;
    s->sent += h->sent_bytes;
    s->recv += h->recv_bytes;
    s->packets += (uint64_t)h->sent_pkts + h->recv_pkts;
    s->dur_ns += h->last_ns - h->first_ns;
}

/* Doubles the address hash, made on first use (indexes stay). */
static int addr_rehash(struct ca_capagg *a)
{
    size_t nc = a->acap ? a->acap * 2 : 4096;
    uint64_t *g = ca_big_alloc(nc * sizeof(*g));

    if (g == NULL)
        return CA_ENOMEM;
    for (size_t i = 0; i < a->acap; i++) {
        uint64_t s = a->aslot[i];
        size_t j;

        if (s == 0)
            continue;
        for (j = (size_t)(s >> 32) & (nc - 1); g[j] != 0; j = (j + 1) & (nc - 1))
            ;
        g[j] = s;
    }
    ca_big_free(a->aslot);
    a->aslot = g;
    a->acap = nc;
    return 0;
}

/* A new address: index a->nakeys, with zero sums. */
static int capagg_newaddr(struct ca_capagg *a, int ver, const uint8_t *addr)
{
    size_t n = a->nakeys;

    if (n >= UINT32_MAX - 1)
        return CA_ENOMEM;
    if (n + 1 > a->capakeys) {
        size_t c0 = a->capakeys, c1 = a->capakeys;

        if (big_grow((void **)&a->akeys, &c1, n + 1, sizeof(*a->akeys)) != 0)
            return CA_ENOMEM;
        for (int s = 0; s < 2; s++) {
            size_t c = c0;

            if (big_grow((void **)&a->aside[s], &c, n + 1, sizeof(*a->aside[s])) != 0)
                return CA_ENOMEM;
        }
        a->capakeys = c1;
    }
    memcpy(a->akeys[n].addr, addr, 16);
    a->akeys[n].ver = (uint32_t)ver;
    a->nakeys = n + 1;
    return 0;
}

/* The capture-local index of an address (added when new). */
static int capagg_addr(struct ca_capagg *a, int ver, const uint8_t *addr, uint32_t *idx)
{
    struct addrkey k;
    uint32_t h;
    size_t j, n;

    if (a->acap == 0 && addr_rehash(a) != 0)
        return CA_ENOMEM;
    memcpy(k.addr, addr, 16);
    k.ver = (uint32_t)ver;
    h = (uint32_t)hash_bytes(&k, sizeof(k));
    for (j = h & (a->acap - 1); a->aslot[j] != 0; j = (j + 1) & (a->acap - 1)) {
        uint64_t s = a->aslot[j];

        if ((uint32_t)(s >> 32) == h) {
            uint32_t i = (uint32_t)s - 1;

            if (memcmp(&a->akeys[i], &k, sizeof(k)) == 0) {
                *idx = i;
                return 0;
            }
        }
    }
    n = a->nakeys;
    if (capagg_newaddr(a, ver, addr) != 0)
        return CA_ENOMEM;
    a->aslot[j] = (uint64_t)h << 32 | (uint64_t)(n + 1);
    *idx = (uint32_t)n;
    if (a->nakeys * 2 >= a->acap && addr_rehash(a) != 0)
        return CA_ENOMEM;
    return 0;
}

/* An address index given by the caller: known, or the next one (new). */
static int capagg_ix(struct ca_capagg *a, uint32_t i, int ver, const uint8_t *addr, uint32_t *idx)
{
    if (i > a->nakeys)
        return CA_EINVAL;
    if (i == a->nakeys && capagg_newaddr(a, ver, addr) != 0)
        return CA_ENOMEM;
    *idx = i;
    return 0;
}

static int capagg_pair(struct ca_capagg *a, uint32_t idx, uint32_t seq)
{
    if (a->npairs + 1 > a->cappairs) {
        size_t c = a->cappairs;

        if (big_grow((void **)&a->pidx, &c, a->npairs + 1, sizeof(*a->pidx)) != 0)
            return CA_ENOMEM;
        {
            size_t c2 = a->cappairs;

            if (big_grow((void **)&a->pseq, &c2, a->npairs + 1, sizeof(*a->pseq)) != 0)
                return CA_ENOMEM;
        }
        a->cappairs = c;
    }
    a->pidx[a->npairs] = idx;
    a->pseq[a->npairs++] = seq;
    return 0;
}

int ca_capagg_add(struct ca_capagg *a, uint32_t seq0, const struct ca_hot *h, size_t n)
{
    return ca_capagg_add_ix(a, seq0, h, NULL, n);
}

int ca_capagg_add_ix(struct ca_capagg *a, uint32_t seq0, const struct ca_hot *h, const uint32_t *ix,
                     size_t n)
{
    int mode = ix != NULL ? 2 : 1;

    if (n == 0)
        return 0;
    if (a->mode != 0 && a->mode != mode)
        return CA_EINVAL;
    a->mode = mode;
    if (big_grow((void **)&a->order, &a->caporder, a->norder + n, sizeof(*a->order)) != 0)
        return CA_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const struct ca_hot *r = &h[i];
        uint64_t m = (uint64_t)fdiv(r->first_ns, 60 * NS_PER_S);
        uint32_t seq = seq0 + (uint32_t)i, si, di;
        struct gv v[2];
        struct acc *x;

        for (int f = 0; f < GF_COUNT; f++) {
            int nv;

            if (!tab_field(f) || dense_field(f))
                continue;
            nv = gvals(f, 0, r, NULL, 0, v);
            for (int j = 0; j < nv; j++) {
                if ((x = ht_get(&a->t[f], &v[j], NULL)) == NULL)
                    return CA_ENOMEM;
                acc_add(x, r);
            }
        }
        if ((x = ht_get(&a->minute, &m, NULL)) == NULL)
            return CA_ENOMEM;
        acc_add(x, r);
        int rc = ix != NULL ? capagg_ix(a, ix[2 * i], r->ip_version, r->src, &si)
                            : capagg_addr(a, r->ip_version, r->src, &si);

        if (rc != 0 || (rc = capagg_pair(a, si, seq)) != 0)
            return rc;
        if (memcmp(r->src, r->dst, 16) != 0) {
            rc = ix != NULL ? capagg_ix(a, ix[2 * i + 1], r->ip_version, r->dst, &di)
                            : capagg_addr(a, r->ip_version, r->dst, &di);
            if (rc != 0 || (rc = capagg_pair(a, di, seq)) != 0)
                return rc;
            if (di == si)
                return CA_EINVAL; /* two addresses, one index */
        } else {
            if (ix != NULL && ix[2 * i + 1] != si)
                return CA_EINVAL;
            di = si;
            gv_u64(&v[0], si); /* flows from an address to itself, by address index */
            if ((x = ht_get(&a->ipself, &v[0], NULL)) == NULL)
                return CA_ENOMEM;
            acc_add(x, r);
        }
        side_add(&a->aside[0][si], r);
        side_add(&a->aside[1][di], r);
        side_add(&a->ports[PT_SPORT][r->src_port], r);
        side_add(&a->ports[PT_DPORT][r->dst_port], r);
        side_add(&a->ports[PT_PORT][r->src_port], r);
        if (r->dst_port != r->src_port)
            side_add(&a->ports[PT_PORT][r->dst_port], r);
        if (r->src_aid == 0 || r->dst_aid == 0)
            a->no_aids = 1;
        else if (capagg_aid(a, 0, r->src_aid) != 0 || capagg_aid(a, 1, r->dst_aid) != 0)
            return CA_ENOMEM;
        a->order[a->norder].bytes = r->sent_bytes + r->recv_bytes;
        a->order[a->norder].first = (uint64_t)r->first_ns ^ (1ULL << 63);
        a->order[a->norder].seq = seq;
        a->order[a->norder++].pad = 0;
    }
    return 0;
}

static int ord_cmp(const void *x, const void *y)
{
    const struct ordrec *a = x, *b = y;

    if (a->bytes != b->bytes)
        return a->bytes > b->bytes ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int ord_first_cmp(const void *x, const void *y)
{
    const struct ordrec *a = x, *b = y;

    if (a->first != b->first)
        return a->first > b->first ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static void tabrec_set(struct tabrec *t, const struct gv *k, uint64_t flows, uint64_t sent,
                       uint64_t recv, uint64_t packets, int64_t dur_ns)
{
    memset(t, 0, sizeof(*t));
    t->k = *k;
    t->flows = flows;
    t->bytes = sent + recv;
    t->sent = sent;
    t->recv = recv;
    t->packets = packets;
    t->dur_ns = dur_ns;
}

static int emit_tab(struct htab *t, size_t ksz, unsigned kind,
                    int (*put)(void *, unsigned, const void *, size_t), void *arg)
{
    struct tabrec *recs = malloc((t->n + 1) * sizeof(*recs));
    const uint8_t *sl;
    size_t k = 0;
    int rc;

    if (recs == NULL)
        return CA_ENOMEM;
    HT_EACH(t, i, sl)
    {
        const struct acc *x = (const struct acc *)(const void *)(sl + t->voff);
        struct gv key;

        memset(&key, 0, sizeof(key));
        memcpy(&key, sl + 8, ksz < sizeof(key) ? ksz : sizeof(key));
        tabrec_set(&recs[k++], &key, x->flows, x->sent, x->recv, x->packets, x->dur_ns);
    }
    rc = put(arg, kind, recs, k * sizeof(*recs));
    free(recs);
    return rc;
}

/* Writes record i of a reserved table (the space LMDB gives may be unaligned). */
static void rec_put(void *space, size_t i, const struct gv *k, const struct sideacc *x)
{
    struct tabrec r;

    tabrec_set(&r, k, x->flows, x->sent, x->recv, x->packets, x->dur_ns);
    memcpy((char *)space + i * sizeof(r), &r, sizeof(r));
}

/*
 * A dense table: ports (65536 entries) or addresses (a->nakeys), written
 * straight into the space the store reserves for it (the address tables
 * are the biggest values of the finishing commit: no second copy).
 */
static int emit_dense(struct ca_capagg *a, int f, int (*reserve)(void *, unsigned, size_t, void **),
                      void *arg)
{
    const struct sideacc *p = NULL, *side = NULL;
    size_t n, k = 0;
    void *space;
    int rc;

    if (f == GF_PORT || f == GF_SPORT || f == GF_DPORT) {
        p = a->ports[f == GF_PORT ? PT_PORT : f == GF_SPORT ? PT_SPORT : PT_DPORT];
        n = 65536;
    } else {
        side = f == GF_SRC ? a->aside[0] : f == GF_DST ? a->aside[1] : NULL;
        p = side;
        n = a->nakeys;
    }
    /* GF_IP: every address has a flow (a flow from an address to itself
     * is in both sides' sums and once in ipself) */
    if (p != NULL)
        for (size_t i = 0; i < n; i++)
            k += p[i].flows != 0;
    else
        k = n;
    rc = reserve(arg, (unsigned)f, k * sizeof(struct tabrec), &space);
    if (rc != 0 || k == 0)
        return rc;
    k = 0;
    for (size_t i = 0; i < n; i++) {
        struct gv key;
        struct sideacc x;

        if (p != NULL && p[i].flows == 0)
            continue;
        memset(&key, 0, sizeof(key));
        if (side == NULL && p != NULL) {
            gv_u64(&key, i);
            x = p[i];
        } else {
            gv_addr(&key, a->akeys[i].addr, (int)a->akeys[i].ver);
            if (side != NULL) {
                x = side[i];
            } else {
                const struct sideacc *s = &a->aside[0][i], *d = &a->aside[1][i];

                x.flows = s->flows + d->flows;
                x.sent = s->sent + d->sent;
                x.recv = s->recv + d->recv;
                x.packets = s->packets + d->packets;
                x.dur_ns = s->dur_ns + d->dur_ns;
            }
        }
        rec_put(space, k++, &key, &x);
    }
    if (f == GF_IP) {
        const uint8_t *sl;

        /* a flow from an address to itself counts once */
        HT_EACH(&a->ipself, j, sl)
        {
            const struct gv *key = (const struct gv *)(const void *)(sl + 8);
            const struct acc *y = (const struct acc *)(const void *)(sl + a->ipself.voff);
            struct tabrec r;
            uint64_t i = gv_get_u64(key);

            if (i >= n)
                return CA_EINTERNAL; /* every such address is known */
            memcpy(&r, (char *)space + i * sizeof(r), sizeof(r));
            r.flows -= y->flows;
            r.sent -= y->sent;
            r.recv -= y->recv;
            r.bytes = r.sent + r.recv;
            r.packets -= y->packets;
            r.dur_ns -= y->dur_ns;
            if (r.flows == 0)
                return CA_EINTERNAL; /* it has at least this flow */
            memcpy((char *)space + i * sizeof(r), &r, sizeof(r));
        }
    }
    return 0;
}

/* An address index with the first bytes of its key (version, address) as
 * a number: sorting these sorts the keys, up to ties (addr_tie). */
struct addrord {
    uint64_t key;
    uint32_t idx;
    uint32_t pad;
};

static int addr_tie(const void *x, const void *y, void *arg)
{
    const struct addrkey *k = arg;
    const struct addrord *a = x, *b = y;

    return memcmp(k[a->idx].addr, k[b->idx].addr, 16);
}

/*
 * Sorts o[0 .. n) by key, stably (a radix sort, 16 bits a pass, passes
 * where every key has the same digit skipped).  Returns the sorted array,
 * o or another block (o is then freed); NULL when out of memory (o freed).
 * o is a ca_big_alloc block.
 */
static struct addrord *radix_sort(struct addrord *o, size_t n)
{
    size_t *cnt = malloc(65536 * sizeof(*cnt));
    struct addrord *t = ca_big_alloc((n + 1) * sizeof(*t));

    if (t == NULL || cnt == NULL) {
        ca_big_free(o);
        ca_big_free(t);
        free(cnt);
        return NULL;
    }
    for (int shift = 0; shift < 64; shift += 16) {
        size_t sum = 0;
        struct addrord *x;

        memset(cnt, 0, 65536 * sizeof(*cnt));
        for (size_t i = 0; i < n; i++)
            cnt[(o[i].key >> shift) & 0xffff]++;
        if (n > 0 && cnt[(o[0].key >> shift) & 0xffff] == n)
            continue; /* one digit for all: nothing to move */
        for (size_t d = 0; d < 65536; d++) {
            size_t c = cnt[d];

            cnt[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            t[cnt[(o[i].key >> shift) & 0xffff]++] = o[i];
        x = o;
        o = t;
        t = x;
    }
    ca_big_free(t);
    free(cnt);
    return o;
}

/*
 * The address indexes in (version, address) order, the order of their
 * keys in the store: a radix sort on the version and the first 7 address
 * bytes (all of an IPv4 address), then a comparison sort of each run of
 * equal prefixes (IPv6 addresses of one /56).  NULL when out of memory.
 */
static struct addrord *addr_sorted(const struct ca_capagg *a)
{
    size_t n = a->nakeys;
    struct addrord *o = ca_big_alloc((n + 1) * sizeof(*o));

    if (o == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        uint64_t k = (uint64_t)(a->akeys[i].ver & 0xff);

        for (int b = 0; b < 7; b++)
            k = k << 8 | a->akeys[i].addr[b];
        o[i].key = k;
        o[i].idx = (uint32_t)i;
        o[i].pad = 0;
    }
    o = radix_sort(o, n);
    if (o == NULL)
        return NULL;
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && o[j].key == o[i].key; j++)
            ;
        if (j - i > 1)
            qsort_r(o + i, j - i, sizeof(*o), addr_tie, a->akeys);
    }
    return o;
}

/*
 * TAB_BYTES_ORDER (k 0) or TAB_FIRST_ORDER (k 1): the seqs by bytes or by
 * first packet time, descending, ties in seq order.  The records came in
 * seq order, so a stable sort of the keys keeps ties so; if they did not,
 * a comparison sort.
 */
static int emit_order(struct ca_capagg *a, int k, int (*reserve)(void *, unsigned, size_t, void **),
                      void *arg)
{
    size_t n = a->norder;
    struct addrord *o = NULL;
    void *space = NULL;
    int inorder = 1, rc;

    for (size_t i = 1; i < n && inorder; i++)
        inorder = a->order[i].seq > a->order[i - 1].seq;
    if (inorder) {
        o = ca_big_alloc((n + 1) * sizeof(*o));
        if (o == NULL)
            return CA_ENOMEM;
        for (size_t i = 0; i < n; i++) {
            o[i].key = ~(k == 0 ? a->order[i].bytes : a->order[i].first);
            o[i].idx = a->order[i].seq;
            o[i].pad = 0;
        }
        o = radix_sort(o, n);
        if (o == NULL)
            return CA_ENOMEM;
    } else {
        qsort(a->order, n, sizeof(*a->order), k == 0 ? ord_cmp : ord_first_cmp);
    }
    rc = reserve(arg, k == 0 ? TAB_BYTES_ORDER : TAB_FIRST_ORDER, n * sizeof(uint32_t), &space);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint32_t seq = o != NULL ? o[i].idx : a->order[i].seq;

        memcpy((char *)space + i * sizeof(seq), &seq, sizeof(seq));
    }
    ca_big_free(o);
    return rc;
}

int ca_capagg_emit(struct ca_capagg *a, int (*put)(void *, unsigned, const void *, size_t),
                   int (*reserve)(void *, unsigned, size_t, void **),
                   int (*addr)(void *, int, const uint8_t[16], const uint32_t *, size_t), void *arg)
{
    uint32_t *seqs = NULL, *off = NULL;
    struct addrord *ord = NULL;
    int rc = 0;

    for (int f = 0; rc == 0 && f < GF_COUNT; f++) {
        if (!tab_field(f))
            continue;
        if (dense_field(f))
            rc = emit_dense(a, f, reserve, arg);
        else
            rc = emit_tab(&a->t[f], sizeof(struct gv), (unsigned)f, put, arg);
    }
    if (rc == 0)
        rc = emit_tab(&a->minute, 8, TAB_MINUTE, put, arg);
    for (int k = 0; rc == 0 && k < 2; k++)
        rc = emit_order(a, k, reserve, arg);
    for (int side = 0; rc == 0 && side < 2; side++) {
        size_t n = 0;
        uint32_t *ids = NULL;

        for (size_t w = 0; w < a->aidwords[side]; w++)
            n += (size_t)__builtin_popcountll(a->aidbits[side][w]);
        ids = malloc((n + 1) * sizeof(*ids));
        if (ids == NULL)
            return CA_ENOMEM;
        n = 0;
        for (size_t w = 0; w < a->aidwords[side]; w++)
            for (uint64_t b = a->aidbits[side][w]; b != 0; b &= b - 1)
                ids[n++] = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(b));
        rc = put(arg, side == 0 ? TAB_SRC_AIDS : TAB_DST_AIDS, ids, n * sizeof(*ids));
        free(ids);
    }
    if (rc == 0) {
        uint32_t info = a->no_aids ? 0 : INFO_AIDS;

        rc = put(arg, TAB_INFO, &info, sizeof(info));
    }
    if (rc != 0)
        return rc;
    /* Counting sort of the (address, seq) pairs: seqs stay ascending;
     * then address i's seqs are seqs[off[i - 1] .. off[i]). */
    seqs = ca_big_alloc((a->npairs + 1) * sizeof(*seqs));
    off = ca_big_alloc((a->nakeys + 1) * sizeof(*off));
    ord = addr_sorted(a);
    if (seqs == NULL || off == NULL || ord == NULL) {
        rc = CA_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < a->npairs; i++)
        off[a->pidx[i] + 1]++;
    for (size_t i = 0; i < a->nakeys; i++)
        off[i + 1] += off[i];
    for (size_t i = 0; i < a->npairs; i++)
        seqs[off[a->pidx[i]]++] = a->pseq[i];
    for (size_t k = 0; rc == 0 && k < a->nakeys; k++) {
        uint32_t i = ord[k].idx, start = i > 0 ? off[i - 1] : 0;

        rc = addr(arg, (int)a->akeys[i].ver, a->akeys[i].addr, seqs + start, off[i] - start);
    }
out:
    ca_big_free(seqs);
    ca_big_free(off);
    ca_big_free(ord);
    return rc;
}

/* Whether every ready capture of the snapshot has its tables. */
static int have_tables(struct ca_query *q)
{
    size_t n;
    const struct ca_snap_capture *c;

    if (q->tables >= 0)
        return q->tables;
    c = ca_ws_snap_captures(q->s, &n);
    q->tables = 1;
    q->aids = 1;
    for (size_t i = 0; i < n; i++) {
        const void *d;
        size_t len;
        uint32_t info = 0;

        if (ca_ws_snap_capagg(q->s, c[i].id, GF_L4, &d, &len) != 0)
            q->tables = 0;
        if (ca_ws_snap_capagg(q->s, c[i].id, TAB_INFO, &d, &len) == 0 && len == sizeof(info))
            memcpy(&info, d, sizeof(info));
        if (!(info & INFO_AIDS))
            q->aids = 0;
    }
    if (!q->tables)
        q->aids = 0;
    return q->tables;
}

/* Unfiltered and answerable from the tables. */
static int use_tables(struct ca_query *q)
{
    return ca_filter_is_all(q->f) && !q->has_ip && have_tables(q);
}

/* Calls fn for each row of table kind of every ready capture. */
static int tab_each(struct ca_query *q, unsigned kind, int (*fn)(void *arg, const struct tabrec *r),
                    void *arg)
{
    size_t n;
    const struct ca_snap_capture *c = ca_ws_snap_captures(q->s, &n);
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i++) {
        const void *d;
        size_t len;

        rc = ca_ws_snap_capagg(q->s, c[i].id, kind, &d, &len);
        for (size_t off = 0; rc == 0 && off + sizeof(struct tabrec) <= len;
             off += sizeof(struct tabrec)) {
            struct tabrec r;

            memcpy(&r, (const char *)d + off, sizeof(r));
            rc = fn(arg, &r);
        }
    }
    return rc;
}

/* Slots for about n keys (a power of two, at most half full). */
static int ht_presize(struct htab *t, size_t n)
{
    size_t cap = t->cap;

    while (cap < 2 * n + 2)
        cap *= 2;
    if (cap == t->cap)
        return 0;
    ht_free(t);
    return ht_init(t, t->ksz, t->vsz, cap);
}

/* Rows of table kind over every ready capture (an upper bound on distinct keys). */
static size_t tab_rows(struct ca_query *q, unsigned kind)
{
    size_t n, rows = 0;
    const struct ca_snap_capture *c = ca_ws_snap_captures(q->s, &n);

    for (size_t i = 0; i < n; i++) {
        const void *d;
        size_t len;

        if (ca_ws_snap_capagg(q->s, c[i].id, kind, &d, &len) == 0)
            rows += len / sizeof(struct tabrec);
    }
    return rows;
}

/*
 * The most rows table kind has in one capture: a lower bound on the
 * distinct keys of their merge.  Presizing to that rather than to the sum
 * keeps the table small when the captures share keys (random access to a
 * table of tens of megabytes costs a page fault or a TLB miss per row).
 */
static size_t tab_rows_max(struct ca_query *q, unsigned kind)
{
    size_t n, most = 0;
    const struct ca_snap_capture *c = ca_ws_snap_captures(q->s, &n);

    for (size_t i = 0; i < n; i++) {
        const void *d;
        size_t len;

        if (ca_ws_snap_capagg(q->s, c[i].id, kind, &d, &len) == 0 &&
            len / sizeof(struct tabrec) > most)
            most = len / sizeof(struct tabrec);
    }
    return most;
}

static uint64_t bit_set(uint64_t *b, uint32_t id)
{
    uint64_t m = 1ULL << (id & 63), old = b[id >> 6];

    b[id >> 6] = old | m;
    return (old & m) == 0;
}

static void acc_merge(struct acc *a, const struct tabrec *r)
{
    a->flows += r->flows;
    a->bytes += r->bytes;
    a->sent += r->sent;
    a->recv += r->recv;
    a->packets += r->packets;
    a->dur_ns += r->dur_ns;
}

static void acc_merge_acc(struct acc *a, const struct acc *b)
{
    a->flows += b->flows;
    a->bytes += b->bytes;
    a->sent += b->sent;
    a->recv += b->recv;
    a->packets += b->packets;
    a->dur_ns += b->dur_ns;
    a->src_ips += b->src_ips;
    a->dst_ips += b->dst_ips;
}

static int total_one(void *arg, const struct tabrec *r)
{
    acc_merge(arg, r);
    return 0;
}

/*
 * Scans whose partial answers merge (counts, sums, group tables, bitmaps,
 * heaps) run on two threads over the snapshot's hot chunks, each half
 * into its own state: the mapped memory stays valid while the read
 * transaction is open, and the compiled filter is only read.
 */
struct cchunk {
    const struct ca_hot *h;
    size_t n;
    int64_t cap_start;
    uint32_t cap, seq0;
    int owned; /* a copy of a chunk LMDB stored unaligned */
};

struct ccollect {
    struct ca_query *q;
    struct cchunk *c;
    size_t n, cap;
    const struct ca_snap_capture *caps;
    size_t ncaps;
};

static int collect_chunk(void *arg, uint32_t cap, uint32_t seq0, const struct ca_hot *h, size_t n)
{
    struct ccollect *cc = arg;
    struct cchunk *k;
    size_t off = 0;

    if (grow((void **)&cc->c, &cc->cap, cc->n + 1, sizeof(*cc->c)) != 0)
        return CA_ENOMEM;
    k = &cc->c[cc->n];
    memset(k, 0, sizeof(*k));
    if (((uintptr_t)h & 7) != 0 || ca_ws_snap_hot_is_copy(ca_query_snap(cc->q), h)) {
        struct ca_hot *copy = malloc(n * sizeof(*copy));

        if (copy == NULL)
            return CA_ENOMEM;
        memcpy(copy, h, n * sizeof(*copy));
        h = copy;
        k->owned = 1;
    }
    k->h = h;
    k->n = n;
    k->cap = cap;
    k->seq0 = seq0;
    for (; off < cc->ncaps; off++)
        if (cc->caps[off].id == cap)
            k->cap_start = cc->caps[off].first_ns;
    cc->n++;
    return 0;
}

static void chunks_free(struct ccollect *cc)
{
    for (size_t i = 0; i < cc->n; i++)
        if (cc->c[i].owned)
            free((void *)cc->c[i].h);
    free(cc->c);
    cc->c = NULL;
    cc->n = cc->cap = 0;
}

/* The snapshot's hot chunks, and the chunk index where half of the rows lie before. */
static int chunks_collect(struct ca_query *q, struct ccollect *cc, size_t *half, size_t *rows)
{
    size_t acc = 0;
    int rc;

    memset(cc, 0, sizeof(*cc));
    cc->q = q;
    cc->caps = ca_ws_snap_captures(q->s, &cc->ncaps);
    rc = ca_ws_snap_scan(q->s, 0, 0, collect_chunk, cc);
    *rows = 0;
    for (size_t i = 0; i < cc->n; i++)
        *rows += cc->c[i].n;
    for (*half = 0; *half < cc->n && acc < *rows / 2; (*half)++)
        acc += cc->c[*half].n;
    if (rc != 0)
        chunks_free(cc);
    return rc;
}

struct pwork {
    struct ca_query *q;
    const struct cchunk *c;
    size_t from, to;
    row_fn fn;
    void *arg;
    int rc;
};

static void *par_work(void *arg)
{
    struct pwork *w = arg;
    const struct ca_query *q = w->q;
    int all = ca_filter_is_all(q->f);

    for (size_t i = w->from; i < w->to && w->rc == 0; i++) {
        const struct cchunk *c = &w->c[i];
        struct ca_filter_row row = {NULL, c->cap, c->cap_start};

        for (size_t j = 0; j < c->n; j++) {
            const struct ca_hot *h = &c->h[j];

            if (q->has_ip && !pfx_eq(q, h))
                continue;
            row.h = h;
            if (!all && !ca_filter_match(q->f, &row))
                continue;
            w->rc = w->fn(w->arg, c->cap, c->seq0 + (uint32_t)j, h);
            if (w->rc != 0)
                break;
        }
    }
    return NULL;
}

#define PAR_MIN_ROWS 4096

/* Whether scan() reads an address index (then scan_par does not split). */
static int par_indexed(struct ca_query *q)
{
    return (q->has_ip || address_filter(q)) && have_tables(q);
}

/*
 * Like scan(q, 0, 0, fn, ...), with the rows in id order split in two: the
 * first half goes to fn(arg0, ...), the second to fn(arg1, ...) on another
 * thread; *split = 0 when everything went to arg0 (few rows, an address
 * index, no thread).  fn must not use the snapshot.
 */
static int scan_par(struct ca_query *q, row_fn fn, void *arg0, void *arg1, int *split)
{
    struct ccollect cc;
    struct pwork w[2];
    pthread_t th;
    size_t half, rows;
    int rc;

    *split = 0;
    if (q->s == NULL)
        return CA_EINTERNAL;
    if (par_indexed(q))
        return scan(q, 0, 0, fn, arg0, NULL);
    rc = chunks_collect(q, &cc, &half, &rows);
    if (rc != 0)
        return rc;
    w[0] = (struct pwork){q, cc.c, 0, cc.n, fn, arg0, 0};
    if (rows >= PAR_MIN_ROWS) {
        w[0].to = half;
        w[1] = (struct pwork){q, cc.c, half, cc.n, fn, arg1, 0};
        if (pthread_create(&th, NULL, par_work, &w[1]) == 0)
            *split = 1;
        else
            w[0].to = cc.n;
    }
    par_work(&w[0]);
    if (*split)
        pthread_join(th, NULL);
    rc = w[0].rc != 0 ? w[0].rc : *split ? w[1].rc : 0;
    chunks_free(&cc);
    return rc;
}

/* ---- aggregation --------------------------------------------------------- */

struct gkey {
    struct gv v[2];
};

struct agg {
    struct ca_query *q;
    int by[2], nby;
    int want_distinct;
    struct htab groups; /* gkey -> struct acc (value: acc + index) */
    struct htab pairs;  /* u64 group slot ordinal? we use the key hash */
    struct acc total;
    struct htab tsrc, tdst;
    uint32_t *master;
    uint32_t nmaster;
    int err;
    /* distinct addresses by address id: bitmaps, then a hash set of u64 (ord, side, id) */
    int aid_mode, aid_bad;
    uint32_t amax;
    size_t words;         /* per bitmap */
    uint64_t *tbits;      /* the total's source and destination bitmaps */
    size_t bits_words;    /* words of the groups' bitmaps so far */
    struct htab apairs;   /* groups past the bitmap budget */
    struct aidrow *arows; /* address group-bys: the groups, by address id (flows 0: none) */
    size_t narows;
};

struct gval {
    struct acc a;
    uint64_t ord;   /* creation ordinal, for distinct pairs */
    uint64_t *bits; /* aid mode: source and destination bitmaps, or NULL */
};

/* Per-group bitmaps for the first groups, within 64 MB; a hash set for the rest. */
#define AGG_BITS_WORDS (8u << 20)
#define AGG_BITS_GROUPS 1024

struct pairkey {
    uint64_t ord;
    uint8_t side;
    uint8_t ver;
    uint8_t addr[16];
    uint8_t pad[6];
};

static int distinct_add(struct htab *t, uint64_t ord, int side, int ver, const uint8_t *addr)
{
    struct pairkey k;
    int created = 0;

    memset(&k, 0, sizeof(k));
    k.ord = ord;
    k.side = (uint8_t)side;
    k.ver = (uint8_t)ver;
    memcpy(k.addr, addr, 16);
    if (ht_get(t, &k, &created) == NULL)
        return -1;
    return created;
}

/* 1 when address id aid is new for side (0 source, 1 destination) of group v (NULL: the total). */
static int aid_distinct(struct agg *g, struct gval *v, int side, uint32_t aid)
{
    uint64_t key;
    int created = 0;

    if (v == NULL)
        return (int)bit_set(g->tbits + (size_t)side * g->words, aid);
    if (v->bits != NULL)
        return (int)bit_set(v->bits + (size_t)side * g->words, aid);
    key = v->ord << 33 | (uint64_t)side << 32 | aid;
    if (ht_get(&g->apairs, &key, &created) == NULL)
        return -1;
    return created;
}

static int agg_row_aidd(struct agg *g, const struct ca_hot *h, const struct gv *a, int na,
                        const struct gv *b, int nb)
{
    int c;

    if (h->src_aid == 0 || h->src_aid > g->amax || h->dst_aid == 0 || h->dst_aid > g->amax) {
        g->aid_bad = 1;
        return CA_EBUSY;
    }
    acc_add(&g->total, h);
    g->total.src_ips += (uint64_t)aid_distinct(g, NULL, 0, h->src_aid);
    g->total.dst_ips += (uint64_t)aid_distinct(g, NULL, 1, h->dst_aid);
    for (int i = 0; i < na; i++) {
        for (int j = 0; j < nb; j++) {
            struct gkey k;
            struct gval *v;
            int created = 0;

            k.v[0] = a[i];
            k.v[1] = b[j];
            v = ht_get(&g->groups, &k, &created);
            if (v == NULL)
                return CA_ENOMEM;
            if (created) {
                v->ord = g->groups.n;
                if (g->groups.n <= AGG_BITS_GROUPS &&
                    g->bits_words + 2 * g->words <= AGG_BITS_WORDS &&
                    (v->bits = calloc(2 * g->words, sizeof(uint64_t))) != NULL)
                    g->bits_words += 2 * g->words;
            }
            acc_add(&v->a, h);
            if ((c = aid_distinct(g, v, 0, h->src_aid)) < 0)
                return CA_ENOMEM;
            v->a.src_ips += (uint64_t)c;
            if ((c = aid_distinct(g, v, 1, h->dst_aid)) < 0)
                return CA_ENOMEM;
            v->a.dst_ips += (uint64_t)c;
        }
    }
    return 0;
}

static int agg_row(void *arg, uint32_t cap, uint32_t seq, const struct ca_hot *h)
{
    struct agg *g = arg;
    struct gv a[2], b[2];
    int na, nb;

    na = gvals(g->by[0], cap, h, g->master, g->nmaster, a);
    nb = g->nby > 1 ? gvals(g->by[1], cap, h, g->master, g->nmaster, b) : 1;
    if (g->nby == 1)
        memset(b, 0, sizeof(b));
    if (g->aid_mode)
        return agg_row_aidd(g, h, a, na, b, nb);
    acc_add(&g->total, h);
    if (g->want_distinct) {
        int c;

        if ((c = distinct_add(&g->tsrc, 0, 1, h->ip_version, h->src)) < 0 ||
            (g->total.src_ips += (uint64_t)c, 0) ||
            (c = distinct_add(&g->tdst, 0, 2, h->ip_version, h->dst)) < 0)
            return CA_ENOMEM;
        g->total.dst_ips += (uint64_t)c;
    }
    for (int i = 0; i < na; i++) {
        for (int j = 0; j < nb; j++) {
            struct gkey k;
            struct gval *v;
            int created = 0, c;

            k.v[0] = a[i];
            k.v[1] = b[j];
            v = ht_get(&g->groups, &k, &created);
            if (v == NULL)
                return CA_ENOMEM;
            if (created)
                v->ord = g->groups.n;
            acc_add(&v->a, h);
            if (g->want_distinct) {
                if ((c = distinct_add(&g->pairs, v->ord, 1, h->ip_version, h->src)) < 0)
                    return CA_ENOMEM;
                v->a.src_ips += (uint64_t)c;
                if ((c = distinct_add(&g->pairs, v->ord, 2, h->ip_version, h->dst)) < 0)
                    return CA_ENOMEM;
                v->a.dst_ips += (uint64_t)c;
            }
        }
    }
    return 0;
}

struct master_arg {
    uint32_t *master;
    uint32_t n;
    struct htab names; /* master name (64 bytes) -> u32 id */
};

static int master_each(void *arg, uint32_t id, const char *s)
{
    struct master_arg *m = arg;
    char key[64];
    uint32_t *v;
    int created = 0;
    size_t n = strcspn(s, ".");

    memset(key, 0, sizeof(key));
    memcpy(key, s, n < sizeof(key) ? n : sizeof(key) - 1);
    v = ht_get(&m->names, key, &created);
    if (v == NULL)
        return CA_ENOMEM;
    if (created)
        *v = id; /* the first proto id with this master names the group */
    if (id < m->n)
        m->master[id] = *v;
    return 0;
}

static int build_master(struct ca_query *q, uint32_t **out, uint32_t *n)
{
    struct master_arg m;
    int rc;

    m.n = ca_ws_snap_str_max(q->s) + 1;
    m.master = calloc(m.n, sizeof(uint32_t));
    if (m.master == NULL || ht_init(&m.names, 64, 4, 256) != 0) {
        free(m.master);
        return CA_ENOMEM;
    }
    rc = ca_ws_snap_str_each(q->s, CA_STR_PROTO, master_each, &m);
    ht_free(&m.names);
    if (rc != 0) {
        free(m.master);
        return rc;
    }
    *out = m.master;
    *n = m.n;
    return 0;
}

struct row_ref {
    const struct gv *k[2]; /* the group values */
    const struct acc *a;
    double order;
};

static const struct gv gv_none; /* the second value of one-field groups kept by address id */

static int row_cmp(const void *a, const void *b)
{
    const struct row_ref *x = a, *y = b;
    int c;

    if (x->order != y->order)
        return x->order > y->order ? -1 : 1;
    c = memcmp(x->k[0], y->k[0], sizeof(struct gv));
    return c != 0 ? c : memcmp(x->k[1], y->k[1], sizeof(struct gv));
}

static int parse_list(const char *s, int (*find)(const char *, size_t), int *out, int max, int *n)
{
    *n = 0;
    while (s != NULL && *s != '\0') {
        size_t len = strcspn(s, ",");
        int v;

        while (len > 0 && *s == ' ')
            s++, len--;
        v = find(s, len);
        if (v < 0 || *n >= max)
            return -1;
        out[(*n)++] = v;
        s += len;
        if (*s == ',')
            s++;
    }
    return 0;
}

static int metric_find(const char *s, size_t n)
{
    for (int i = 0; i < M_N; i++)
        if (strlen(metric_names[i]) == n && strncasecmp(metric_names[i], s, n) == 0)
            return i;
    return -1;
}

static int agg_tab_one(void *arg, const struct tabrec *r)
{
    struct agg *g = arg;
    struct gkey k;
    struct gval *v;
    int created = 0;

    memset(&k, 0, sizeof(k));
    k.v[0] = r->k;
    v = ht_get(&g->groups, &k, &created);
    if (v == NULL)
        return CA_ENOMEM;
    if (created)
        v->ord = g->groups.n;
    acc_merge(&v->a, r);
    return 0;
}

/* Address group-bys over address ids: a dense array instead of a hash table. */
#define AID_DENSE_MAX (512u << 10)

struct aidrow {
    struct acc a;
    struct gv v;
};

struct aidagg {
    struct agg *g;
    struct aidrow *rows;
    uint32_t max;
    struct acc total;
};

static void aid_add(struct aidagg *x, uint32_t id, int ver, const uint8_t *addr,
                    const struct ca_hot *h)
{
    struct aidrow *r;

    if (id == 0 || id > x->max)
        return;
    r = &x->rows[id];
    if (r->a.flows == 0)
        gv_addr(&r->v, addr, ver);
    acc_add(&r->a, h);
}

static int agg_row_aid(void *arg, uint32_t cap, uint32_t seq, const struct ca_hot *h)
{
    struct aidagg *x = arg;
    int f = x->g->by[0];

    acc_add(&x->total, h);
    if (f == GF_SRC || f == GF_IP)
        aid_add(x, h->src_aid, h->ip_version, h->src, h);
    if (f == GF_DST || (f == GF_IP && h->dst_aid != h->src_aid))
        aid_add(x, h->dst_aid, h->ip_version, h->dst, h);
    return 0;
}

/*
 * One thread: a second dense array per request would cost more in fresh
 * pages (a fault each on this kind of VM) than the scan's other half.
 */
static int agg_aids(struct ca_query *q, struct agg *g)
{
    struct aidagg x = {g, NULL, ca_ws_snap_addr_max(q->s), {0}};
    int rc;

    x.rows = calloc((size_t)x.max + 1, sizeof(*x.rows));
    if (x.rows == NULL)
        return CA_ENOMEM;
    rc = scan(q, 0, 0, agg_row_aid, &x, NULL);
    acc_merge_acc(&g->total, &x.total);
    /* the rows stay where they are: agg_rows reads them in place */
    g->arows = x.rows;
    g->narows = (size_t)x.max + 1;
    return rc;
}

static void agg_free(struct agg *g);

/* The scan of a group-by without distinct counts, on two threads; groups merge. */
static int agg_par(struct ca_query *q, struct agg *g)
{
    struct agg h;
    const uint8_t *s;
    int rc, split = 0;

    if (par_indexed(q))
        return scan(q, 0, 0, agg_row, g, NULL);
    memset(&h, 0, sizeof(h));
    h.q = q;
    h.nby = g->nby;
    memcpy(h.by, g->by, sizeof(h.by));
    h.master = g->master;
    h.nmaster = g->nmaster;
    if (ht_init(&h.groups, sizeof(struct gkey), sizeof(struct gval), 1024) != 0)
        return CA_ENOMEM;
    rc = scan_par(q, agg_row, g, &h, &split);
    if (rc == 0 && split) {
        acc_merge_acc(&g->total, &h.total);
        HT_EACH(&h.groups, i, s)
        {
            const struct gval *b = (const struct gval *)(const void *)(s + h.groups.voff);
            struct gval *v;
            int created = 0;

            v = ht_get(&g->groups, s + 8, &created);
            if (v == NULL) {
                rc = CA_ENOMEM;
                break;
            }
            if (created)
                v->ord = g->groups.n;
            acc_merge_acc(&v->a, &b->a);
        }
    }
    ht_free(&h.groups);
    return rc;
}

/* Runs the aggregation; the caller frees g (agg_free). */
static int agg_run(struct ca_query *q, struct agg *g, const int *by, int nby, int distinct)
{
    int rc, aids_ok = 1;

again:
    memset(g, 0, sizeof(*g));
    g->q = q;
    g->nby = nby;
    memcpy(g->by, by, (size_t)nby * sizeof(int));
    g->want_distinct = distinct;
    if (ht_init(&g->groups, sizeof(struct gkey), sizeof(struct gval), 1024) != 0 ||
        (distinct && (ht_init(&g->pairs, sizeof(struct pairkey), 0, 4096) != 0 ||
                      ht_init(&g->tsrc, sizeof(struct pairkey), 0, 4096) != 0 ||
                      ht_init(&g->tdst, sizeof(struct pairkey), 0, 4096) != 0)))
        return CA_ENOMEM;
    if (nby == 1 && !distinct && tab_field(by[0]) && use_tables(q)) {
        rc = ht_presize(&g->groups, tab_rows_max(q, (unsigned)by[0]));
        if (rc == 0)
            rc = tab_each(q, (unsigned)by[0], agg_tab_one, g);
        return rc != 0 ? rc : tab_each(q, GF_L4, total_one, &g->total);
    }
    if (nby == 1 && !distinct && (by[0] == GF_SRC || by[0] == GF_DST || by[0] == GF_IP) &&
        have_tables(q) && q->aids && ca_ws_snap_addr_max(q->s) <= AID_DENSE_MAX)
        return agg_aids(q, g);
    if (by[0] == GF_PROTO_MASTER || (nby > 1 && by[1] == GF_PROTO_MASTER)) {
        rc = build_master(q, &g->master, &g->nmaster);
        if (rc != 0)
            return rc;
    }
    if (distinct && aids_ok && have_tables(q) && q->aids &&
        (g->amax = ca_ws_snap_addr_max(q->s)) <= AID_DENSE_MAX * 32) {
        g->words = g->amax / 64 + 1;
        g->tbits = calloc(2 * g->words, sizeof(uint64_t));
        if (g->tbits == NULL || ht_init(&g->apairs, 8, 0, 4096) != 0)
            return CA_ENOMEM;
        g->aid_mode = 1;
    }
    if (!g->aid_mode && !distinct) {
        rc = agg_par(q, g);
        return rc;
    }
    rc = scan(q, 0, 0, agg_row, g, NULL);
    if (g->aid_mode && g->aid_bad) { /* a record without address ids: by address */
        agg_free(g);
        aids_ok = 0;
        goto again;
    }
    return rc;
}

static void agg_free(struct agg *g)
{
    if (g->aid_mode && g->groups.mem != NULL) {
        const uint8_t *s;

        HT_EACH(&g->groups, i, s)
        free(((const struct gval *)(const void *)(s + g->groups.voff))->bits);
    }
    free(g->tbits);
    g->tbits = NULL;
    free(g->arows);
    g->arows = NULL;
    g->narows = 0;
    ht_free(&g->apairs);
    ht_free(&g->groups);
    ht_free(&g->pairs);
    ht_free(&g->tsrc);
    ht_free(&g->tdst);
    free(g->master);
}

/* Rows of g sorted by metric `order` (descending); caller frees. */
static struct row_ref *agg_rows(struct agg *g, int order, size_t *n)
{
    size_t k = 0, want = g->groups.n;
    struct row_ref *rows;
    const uint8_t *s;

    for (size_t i = 0; i < g->narows; i++)
        want += g->arows[i].a.flows != 0;
    rows = malloc((want + 1) * sizeof(*rows));
    if (rows == NULL)
        return NULL;
    for (size_t i = 0; i < g->narows; i++) {
        if (g->arows[i].a.flows == 0)
            continue;
        rows[k].k[0] = &g->arows[i].v;
        rows[k].k[1] = &gv_none;
        rows[k].a = &g->arows[i].a;
        rows[k].order = acc_metric(rows[k].a, order);
        k++;
    }
    HT_EACH(&g->groups, i, s)
    {
        const struct gkey *key = (const struct gkey *)(const void *)(s + 8);

        rows[k].k[0] = &key->v[0];
        rows[k].k[1] = &key->v[1];
        rows[k].a = &((const struct gval *)(const void *)(s + g->groups.voff))->a;
        rows[k].order = acc_metric(rows[k].a, order);
        k++;
    }
    qsort(rows, k, sizeof(*rows), row_cmp);
    *n = k;
    return rows;
}

int ca_query_aggregate(struct ca_query *q, const char *by, const char *metrics, long top,
                       const char *order, json_t **out, char *err, size_t errlen,
                       const char **param)
{
    int byv[2], nby, ms[M_N], nm, ord;
    struct agg g;
    struct row_ref *rows = NULL;
    struct acc other;
    size_t n = 0;
    json_t *res = NULL, *arr, *jby, *jm;
    int rc, distinct = 0;

    *out = NULL;
    if (by == NULL || parse_list(by, gfield_find, byv, 2, &nby) < 0 || nby == 0) {
        if (param != NULL)
            *param = "by";
        return ca_seterr(err, errlen, CA_EINVAL,
                         "by must be one or two of: src, dst, ip, port, src.port, dst.port, "
                         "port.bucket, proto, proto.master, l4, category, country, src.country, "
                         "dst.country, asn, src.asn, dst.asn, host, capture, vlan, hour, day, "
                         "weekday, duration.bucket, tcp.state");
    }
    if (metrics == NULL || *metrics == '\0') {
        ms[0] = M_FLOWS;
        ms[1] = M_BYTES;
        nm = 2;
    } else if (parse_list(metrics, metric_find, ms, M_N, &nm) < 0 || nm == 0) {
        if (param != NULL)
            *param = "metrics";
        return ca_seterr(err, errlen, CA_EINVAL,
                         "metrics must be a list of: flows, bytes, sent, recv, packets, "
                         "duration, duration.avg, src_ips, dst_ips");
    }
    ord = ms[0];
    if (order != NULL && *order != '\0' && (ord = metric_find(order, strlen(order))) < 0) {
        if (param != NULL)
            *param = "order";
        return ca_seterr(err, errlen, CA_EINVAL, "order must be a metric");
    }
    if (top < 0) {
        if (param != NULL)
            *param = "top";
        return ca_seterr(err, errlen, CA_EINVAL, "top must be 0 or more");
    }
    for (int i = 0; i < nm; i++)
        distinct |= ms[i] == M_SRC || ms[i] == M_DST;
    distinct |= ord == M_SRC || ord == M_DST;
    rc = agg_run(q, &g, byv, nby, distinct);
    if (rc != 0)
        goto out;
    rows = agg_rows(&g, ord, &n);
    if (rows == NULL) {
        rc = CA_ENOMEM;
        goto out;
    }
    arr = json_array();
    jby = json_array();
    jm = json_array();
    for (int i = 0; i < nby; i++)
        json_array_append_new(jby, json_string(gfield_names[byv[i]]));
    for (int i = 0; i < nm; i++)
        json_array_append_new(jm, json_string(metric_names[ms[i]]));
    memset(&other, 0, sizeof(other));
    for (size_t i = 0; i < n; i++) {
        json_t *row, *key;

        if (top > 0 && i >= (size_t)top) {
            other.flows += rows[i].a->flows;
            other.bytes += rows[i].a->bytes;
            other.sent += rows[i].a->sent;
            other.recv += rows[i].a->recv;
            other.packets += rows[i].a->packets;
            other.dur_ns += rows[i].a->dur_ns;
            /* distinct counts of "other" are not additive; sums are an upper bound */
            other.src_ips += rows[i].a->src_ips;
            other.dst_ips += rows[i].a->dst_ips;
            continue;
        }
        row = acc_json(rows[i].a, ms, nm);
        key = json_array();
        for (int j = 0; j < nby; j++)
            json_array_append_new(key, gv_json(q, byv[j], rows[i].k[j]));
        json_object_set_new(row, "key", key);
        json_array_append_new(arr, row);
    }
    res = json_pack("{s:o, s:o, s:o, s:o, s:o}", "by", jby, "metrics", jm, "rows", arr, "other",
                    top > 0 && n > (size_t)top ? acc_json(&other, ms, nm) : json_null(), "total",
                    acc_json(&g.total, ms, nm));
    if (res == NULL)
        rc = CA_ENOMEM;
out:
    free(rows);
    agg_free(&g);
    *out = res;
    return rc;
}

/* ---- summary ------------------------------------------------------------- */

struct sum {
    struct acc a;
    struct htab src, dst, ips;
    uint64_t *bits; /* with address ids: src, dst and either-side bitsets */
    size_t words;
    uint64_t nsrc, ndst, nips;
    uint32_t amax, lastcap;
    int64_t first, last;
    uint64_t caps_seen[4]; /* small bitmap of capture ids < 256, else counted via set */
    struct htab caps;
};

static int set_addr(struct htab *t, int ver, const uint8_t *a)
{
    struct addrkey k;

    memcpy(k.addr, a, 16);
    k.ver = (uint32_t)ver;
    return ht_get(t, &k, NULL) != NULL ? 0 : CA_ENOMEM;
}

static int sum_row_aid(void *arg, uint32_t cap, uint32_t seq, const struct ca_hot *h)
{
    struct sum *s = arg;

    if (s->a.flows == 0 || h->first_ns < s->first)
        s->first = h->first_ns;
    if (s->a.flows == 0 || h->last_ns > s->last)
        s->last = h->last_ns;
    acc_add(&s->a, h);
    if (h->src_aid <= s->amax && h->dst_aid <= s->amax) {
        s->nsrc += bit_set(s->bits, h->src_aid);
        s->ndst += bit_set(s->bits + s->words, h->dst_aid);
        s->nips += bit_set(s->bits + 2 * s->words, h->src_aid);
        s->nips += bit_set(s->bits + 2 * s->words, h->dst_aid);
    }
    if (cap != s->lastcap) {
        s->lastcap = cap;
        if (ht_get(&s->caps, &cap, NULL) == NULL)
            return CA_ENOMEM;
    }
    return 0;
}

static int sum_row(void *arg, uint32_t cap, uint32_t seq, const struct ca_hot *h)
{
    struct sum *s = arg;

    if (s->a.flows == 0 || h->first_ns < s->first)
        s->first = h->first_ns;
    if (s->a.flows == 0 || h->last_ns > s->last)
        s->last = h->last_ns;
    acc_add(&s->a, h);
    if (set_addr(&s->src, h->ip_version, h->src) != 0 ||
        set_addr(&s->dst, h->ip_version, h->dst) != 0 ||
        set_addr(&s->ips, h->ip_version, h->src) != 0 ||
        set_addr(&s->ips, h->ip_version, h->dst) != 0 || ht_get(&s->caps, &cap, NULL) == NULL)
        return CA_ENOMEM;
    return 0;
}

static int sum_src_one(void *arg, const struct tabrec *r)
{
    struct sum *s = arg;

    return set_addr(&s->src, (int)r->k.tag, r->k.b);
}

static int sum_dst_one(void *arg, const struct tabrec *r)
{
    struct sum *s = arg;

    return set_addr(&s->dst, (int)r->k.tag, r->k.b);
}

static int sum_ip_one(void *arg, const struct tabrec *r)
{
    struct sum *s = arg;

    return set_addr(&s->ips, (int)r->k.tag, r->k.b);
}

/* The unfiltered summary from the tables. */
static int sum_tables(struct ca_query *q, struct sum *s)
{
    size_t n;
    const struct ca_snap_capture *c = ca_ws_snap_captures(q->s, &n);
    int rc, aid_lists = q->aids;

    rc = tab_each(q, GF_L4, total_one, &s->a);
    for (size_t i = 0; rc == 0 && aid_lists && i < n; i++) {
        const void *d;
        size_t len;

        if (ca_ws_snap_capagg(q->s, c[i].id, TAB_SRC_AIDS, &d, &len) != 0)
            aid_lists = 0; /* finished by an older build */
    }
    if (rc == 0 && aid_lists) {
        /* distinct addresses: a union of the captures' address id lists */
        uint32_t amax = ca_ws_snap_addr_max(q->s);
        size_t words = amax / 64 + 1;
        uint64_t *bits = calloc(3 * words, sizeof(*bits)), cnt[3] = {0, 0, 0};

        if (bits == NULL)
            return CA_ENOMEM;
        for (size_t i = 0; rc == 0 && i < n; i++) {
            for (int side = 0; rc == 0 && side < 2; side++) {
                const void *d;
                size_t len;

                rc = ca_ws_snap_capagg(q->s, c[i].id, side == 0 ? TAB_SRC_AIDS : TAB_DST_AIDS, &d,
                                       &len);
                for (size_t off = 0; rc == 0 && off + 4 <= len; off += 4) {
                    uint32_t id;

                    memcpy(&id, (const char *)d + off, 4);
                    if (id > amax)
                        continue;
                    cnt[side] += bit_set(bits + (size_t)side * words, id);
                    cnt[2] += bit_set(bits + 2 * words, id);
                }
            }
        }
        free(bits);
        s->src.n = cnt[0];
        s->dst.n = cnt[1];
        s->ips.n = cnt[2];
    } else if (rc == 0) {
        if (ht_presize(&s->src, tab_rows(q, GF_SRC)) != 0 ||
            ht_presize(&s->dst, tab_rows(q, GF_DST)) != 0 ||
            ht_presize(&s->ips, tab_rows(q, GF_IP)) != 0)
            return CA_ENOMEM;
        rc = tab_each(q, GF_SRC, sum_src_one, s);
        if (rc == 0)
            rc = tab_each(q, GF_DST, sum_dst_one, s);
        if (rc == 0)
            rc = tab_each(q, GF_IP, sum_ip_one, s);
    }
    for (size_t i = 0, any = 0; rc == 0 && i < n; i++) {
        if (c[i].flows == 0)
            continue;
        if (!any || c[i].first_ns < s->first)
            s->first = c[i].first_ns;
        if (!any || c[i].last_ns > s->last)
            s->last = c[i].last_ns;
        any = 1;
        if (ht_get(&s->caps, &c[i].id, NULL) == NULL)
            rc = CA_ENOMEM;
    }
    return rc;
}

/* The filtered summary with address ids, on two threads (bitmaps OR, sums add). */
static int sum_aids(struct ca_query *q, struct sum *s)
{
    struct sum t;
    int rc, split = 0;

    memset(&t, 0, sizeof(t));
    s->amax = t.amax = ca_ws_snap_addr_max(q->s);
    s->words = t.words = s->amax / 64 + 1;
    s->bits = calloc(3 * s->words, sizeof(uint64_t));
    if (s->bits == NULL)
        return CA_ENOMEM;
    if (par_indexed(q)) {
        rc = scan(q, 0, 0, sum_row_aid, s, NULL);
        goto done;
    }
    t.bits = calloc(3 * t.words, sizeof(uint64_t));
    if (t.bits == NULL || ht_init(&t.caps, sizeof(uint32_t), 0, 64) != 0) {
        free(t.bits);
        return CA_ENOMEM;
    }
    rc = scan_par(q, sum_row_aid, s, &t, &split);
    if (rc == 0 && split) {
        const uint8_t *sl;

        if (t.a.flows != 0) {
            if (s->a.flows == 0 || t.first < s->first)
                s->first = t.first;
            if (s->a.flows == 0 || t.last > s->last)
                s->last = t.last;
        }
        acc_merge_acc(&s->a, &t.a);
        s->nsrc = s->ndst = s->nips = 0;
        for (size_t i = 0; i < 3 * s->words; i++) {
            uint64_t w = s->bits[i] | t.bits[i];
            uint64_t c = (uint64_t)__builtin_popcountll(w);

            s->bits[i] = w;
            if (i < s->words)
                s->nsrc += c;
            else if (i < 2 * s->words)
                s->ndst += c;
            else
                s->nips += c;
        }
        HT_EACH(&t.caps, i, sl)
        {
            if (rc == 0 && ht_get(&s->caps, sl + 8, NULL) == NULL)
                rc = CA_ENOMEM;
        }
    }
    free(t.bits);
    ht_free(&t.caps);
done:
    s->src.n = s->nsrc;
    s->dst.n = s->ndst;
    s->ips.n = s->nips;
    return rc;
}

int ca_query_summary(struct ca_query *q, json_t **out)
{
    struct sum s;
    int rc;

    *out = NULL;
    memset(&s, 0, sizeof(s));
    if (ht_init(&s.src, sizeof(struct addrkey), 0, 4096) != 0 ||
        ht_init(&s.dst, sizeof(struct addrkey), 0, 4096) != 0 ||
        ht_init(&s.ips, sizeof(struct addrkey), 0, 4096) != 0 ||
        ht_init(&s.caps, sizeof(uint32_t), 0, 64) != 0) {
        rc = CA_ENOMEM;
        goto out;
    }
    if (use_tables(q)) {
        rc = sum_tables(q, &s);
    } else if (have_tables(q) && q->aids) {
        rc = sum_aids(q, &s);
    } else {
        rc = scan(q, 0, 0, sum_row, &s, NULL);
    }
    if (rc != 0)
        goto out;
    *out = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:I}", "flows", (json_int_t)s.a.flows,
        "src_ips", (json_int_t)s.src.n, "dst_ips", (json_int_t)s.dst.n, "ips", (json_int_t)s.ips.n,
        "bytes", (json_int_t)s.a.bytes, "sent", (json_int_t)s.a.sent, "recv", (json_int_t)s.a.recv,
        "packets", (json_int_t)s.a.packets, "first_ns",
        s.a.flows ? json_integer(s.first) : json_null(), "last_ns",
        s.a.flows ? json_integer(s.last) : json_null(), "captures", (json_int_t)s.caps.n);
    if (*out == NULL)
        rc = CA_ENOMEM;
out:
    free(s.bits);
    ht_free(&s.src);
    ht_free(&s.dst);
    ht_free(&s.ips);
    ht_free(&s.caps);
    return rc;
}

/* ---- timeline ------------------------------------------------------------ */

static const int64_t bin_sizes[] = {NS_PER_S,          5 * NS_PER_S,      15 * NS_PER_S,
                                    60 * NS_PER_S,     300 * NS_PER_S,    900 * NS_PER_S,
                                    3600 * NS_PER_S,   21600 * NS_PER_S,  86400 * NS_PER_S,
                                    604800 * NS_PER_S, 2592000 * NS_PER_S};

/* Matching rows kept by the span pass, so that the bins need no second scan. */
struct tlkeep {
    int64_t first;
    uint64_t sent, recv, packets;
};

#define TL_KEEP_MAX (4u << 20)

struct span {
    int64_t first, last;
    int any;
    struct tlkeep *keep;
    size_t nkeep, capkeep;
    int overflow;
};

static int span_row(void *arg, uint32_t cap, uint32_t seq, const struct ca_hot *h)
{
    struct span *s = arg;

    if (!s->overflow) {
        if (s->nkeep == TL_KEEP_MAX ||
            grow((void **)&s->keep, &s->capkeep, s->nkeep + 1, sizeof(*s->keep)) != 0) {
            s->overflow = 1;
        } else {
            struct tlkeep *k = &s->keep[s->nkeep++];

            k->first = h->first_ns;
            k->sent = h->sent_bytes;
            k->recv = h->recv_bytes;
            k->packets = (uint64_t)h->sent_pkts + h->recv_pkts;
        }
    }
    if (!s->any || h->first_ns < s->first)
        s->first = h->first_ns;
    if (!s->any || h->last_ns > s->last)
        s->last = h->last_ns;
    s->any = 1;
    return 0;
}

struct tl {
    int64_t start, end, bin;
    size_t n;
    struct acc *bins;
};

static int tl_row(void *arg, uint32_t cap, uint32_t seq, const struct ca_hot *h)
{
    struct tl *t = arg;
    int64_t i;

    if (h->first_ns < t->start || h->first_ns > t->end)
        return 0;
    i = (h->first_ns - t->start) / t->bin;
    if (i >= 0 && (size_t)i < t->n)
        acc_add(&t->bins[i], h);
    return 0;
}

static int tl_tab_one(void *arg, const struct tabrec *r)
{
    struct tl *t = arg;
    int64_t m = (int64_t)gv_get_u64(&r->k) * 60 * NS_PER_S, i;

    if (m < t->start)
        return 0;
    i = (m - t->start) / t->bin;
    if (i >= 0 && (size_t)i < t->n)
        acc_merge(&t->bins[i], r);
    return 0;
}

/* The span pass on two threads: the second half's kept rows follow the first's. */
static int span_scan(struct ca_query *q, struct span *sp)
{
    struct span t = {0, 0, 0, NULL, 0, 0, 0};
    int rc, split = 0;

    rc = scan_par(q, span_row, sp, &t, &split);
    if (rc == 0 && split && t.any) {
        if (!sp->any || t.first < sp->first)
            sp->first = t.first;
        if (!sp->any || t.last > sp->last)
            sp->last = t.last;
        sp->any = 1;
        if (t.overflow || sp->overflow || sp->nkeep + t.nkeep > TL_KEEP_MAX ||
            grow((void **)&sp->keep, &sp->capkeep, sp->nkeep + t.nkeep, sizeof(*sp->keep)) != 0) {
            sp->overflow = 1;
        } else if (t.nkeep > 0) {
            memcpy(sp->keep + sp->nkeep, t.keep, t.nkeep * sizeof(*t.keep));
            sp->nkeep += t.nkeep;
        }
    }
    free(t.keep);
    return rc;
}

/*
 * Filtered timelines over the whole span add the matches up per minute of
 * the captures' span in the same pass that finds the filtered span (on two
 * threads); bins of a minute or more are then sums of minutes, and only a
 * span short enough for finer bins scans again.  No rows are kept.
 */
struct mins {
    int64_t m0; /* first minute */
    size_t n;
    struct acc *a; /* per minute */
    int64_t first, last;
    int any, out; /* out: a flow outside its captures' span (then not used) */
};

#define MINS_MAX (1u << 20)

static int mins_row(void *arg, uint32_t cap, uint32_t seq, const struct ca_hot *h)
{
    struct mins *m = arg;
    int64_t i = fdiv(h->first_ns, 60 * NS_PER_S) - m->m0;

    if (i < 0 || (uint64_t)i >= m->n)
        m->out = 1;
    else
        acc_add(&m->a[i], h);
    if (!m->any || h->first_ns < m->first)
        m->first = h->first_ns;
    if (!m->any || h->last_ns > m->last)
        m->last = h->last_ns;
    m->any = 1;
    return 0;
}

/* 0 with m->a set (minute sums), or 0 with m->a NULL: use another way. */
static int mins_scan(struct ca_query *q, struct mins *m)
{
    size_t nc;
    const struct ca_snap_capture *c = ca_ws_snap_captures(q->s, &nc);
    int64_t lo = 0, hi = 0;
    int any = 0, rc, split = 0;
    struct mins t;

    memset(m, 0, sizeof(*m));
    for (size_t i = 0; i < nc; i++) {
        if (c[i].flows == 0)
            continue;
        if (!any || c[i].first_ns < lo)
            lo = c[i].first_ns;
        if (!any || c[i].last_ns > hi)
            hi = c[i].last_ns;
        any = 1;
    }
    if (!any || hi < lo)
        return 0;
    m->m0 = fdiv(lo, 60 * NS_PER_S);
    if (fdiv(hi, 60 * NS_PER_S) - m->m0 + 1 > (int64_t)MINS_MAX)
        return 0;
    m->n = (size_t)(fdiv(hi, 60 * NS_PER_S) - m->m0 + 1);
    t = *m;
    m->a = calloc(m->n, sizeof(*m->a));
    if (m->a == NULL)
        return CA_ENOMEM;
    if (!par_indexed(q) && (t.a = calloc(t.n, sizeof(*t.a))) == NULL) {
        free(m->a);
        m->a = NULL;
        return CA_ENOMEM;
    }
    rc = t.a != NULL ? scan_par(q, mins_row, m, &t, &split) : scan(q, 0, 0, mins_row, m, NULL);
    if (rc == 0 && split) {
        for (size_t i = 0; i < m->n; i++)
            if (t.a[i].flows != 0)
                acc_merge_acc(&m->a[i], &t.a[i]);
        if (t.any) {
            if (!m->any || t.first < m->first)
                m->first = t.first;
            if (!m->any || t.last > m->last)
                m->last = t.last;
            m->any = 1;
        }
        m->out |= t.out;
    }
    free(t.a);
    if (rc != 0 || m->out) {
        free(m->a);
        m->a = NULL;
    }
    return rc;
}

/* Bins of a known span, on two threads. */
static int tl_scan(struct ca_query *q, struct tl *t)
{
    struct tl u = *t;
    int rc, split = 0;

    if (par_indexed(q))
        return scan(q, 0, 0, tl_row, t, NULL);
    u.bins = calloc(u.n, sizeof(*u.bins));
    if (u.bins == NULL)
        return CA_ENOMEM;
    rc = scan_par(q, tl_row, t, &u, &split);
    for (size_t i = 0; rc == 0 && split && i < t->n; i++)
        acc_merge_acc(&t->bins[i], &u.bins[i]);
    free(u.bins);
    return rc;
}

/* Timeline of what q matches (plus [from,to]); *out is the answer object. */
static int timeline(struct ca_query *q, int bins, int64_t from, int64_t to, json_t **out)
{
    struct span sp = {0, 0, 0, NULL, 0, 0, 0};
    struct mins mn;
    struct tl t;
    json_t *arr;
    size_t k;
    int rc;

    *out = NULL;
    memset(&mn, 0, sizeof(mn));
    if (ca_filter_is_all(q->f) && !q->has_ip) {
        size_t nc;
        const struct ca_snap_capture *c = ca_ws_snap_captures(q->s, &nc);

        for (size_t i = 0; i < nc; i++) {
            if (c[i].flows == 0)
                continue;
            if (!sp.any || c[i].first_ns < sp.first)
                sp.first = c[i].first_ns;
            if (!sp.any || c[i].last_ns > sp.last)
                sp.last = c[i].last_ns;
            sp.any = 1;
        }
    } else {
        rc = from == 0 && to == 0 ? mins_scan(q, &mn) : 0;
        if (rc == 0 && mn.a != NULL) {
            sp.first = mn.first;
            sp.last = mn.last;
            sp.any = mn.any;
        } else if (rc == 0) {
            rc = span_scan(q, &sp);
        }
        if (rc != 0) {
            free(sp.keep);
            return rc;
        }
    }
    if (from != 0)
        sp.first = from, sp.any = 1;
    if (to != 0)
        sp.last = to, sp.any = 1;
    if (!sp.any) {
        free(sp.keep);
        free(mn.a);
        *out = json_pack("{s:I, s:n, s:n, s:[]}", "bin_ns", (json_int_t)NS_PER_S, "start_ns",
                         "end_ns", "bins");
        return *out != NULL ? 0 : CA_ENOMEM;
    }
    if (sp.last < sp.first)
        sp.last = sp.first;
    for (k = 0; k + 1 < sizeof(bin_sizes) / sizeof(bin_sizes[0]); k++)
        if ((sp.last - sp.first) / bin_sizes[k] < bins)
            break;
    t.bin = bin_sizes[k];
    t.start = fdiv(sp.first, t.bin) * t.bin;
    t.end = sp.last;
    t.n = (size_t)((sp.last - t.start) / t.bin + 1);
    if (t.n > 100000)
        t.n = 100000;
    t.bins = calloc(t.n, sizeof(*t.bins));
    if (t.bins == NULL) {
        free(sp.keep);
        free(mn.a);
        return CA_ENOMEM;
    }
    /* Minute rows add up exactly into bins of a minute or more (bins start
     * on multiples of their size). */
    if (from == 0 && to == 0 && t.bin >= 60 * NS_PER_S && use_tables(q)) {
        rc = tab_each(q, TAB_MINUTE, tl_tab_one, &t);
    } else if (mn.a != NULL && t.bin >= 60 * NS_PER_S) {
        rc = 0;
        for (size_t i = 0; i < mn.n; i++) {
            int64_t m = (mn.m0 + (int64_t)i) * 60 * NS_PER_S, b;

            if (mn.a[i].flows == 0 || m + 60 * NS_PER_S <= t.start)
                continue;
            b = (m - t.start) / t.bin;
            if (b >= 0 && (size_t)b < t.n)
                acc_merge_acc(&t.bins[b], &mn.a[i]);
        }
    } else if (mn.a != NULL) {
        rc = tl_scan(q, &t);
    } else if (sp.keep != NULL && !sp.overflow) {
        rc = 0;
        for (size_t i = 0; i < sp.nkeep; i++) {
            const struct tlkeep *r = &sp.keep[i];
            int64_t b;

            if (r->first < t.start || r->first > t.end)
                continue;
            b = (r->first - t.start) / t.bin;
            if (b >= 0 && (size_t)b < t.n) {
                struct acc *a = &t.bins[b];

                a->flows++;
                a->sent += r->sent;
                a->recv += r->recv;
                a->bytes += r->sent + r->recv;
                a->packets += r->packets;
            }
        }
    } else {
        rc = tl_scan(q, &t);
    }
    free(sp.keep);
    free(mn.a);
    if (rc == 0) {
        arr = json_array();
        for (size_t i = 0; i < t.n; i++) {
            const struct acc *a = &t.bins[i];

            json_array_append_new(arr, json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "t",
                                                 (json_int_t)(t.start + (int64_t)i * t.bin),
                                                 "flows", (json_int_t)a->flows, "bytes",
                                                 (json_int_t)a->bytes, "sent", (json_int_t)a->sent,
                                                 "recv", (json_int_t)a->recv, "packets",
                                                 (json_int_t)a->packets));
        }
        *out = json_pack("{s:I, s:I, s:I, s:o}", "bin_ns", (json_int_t)t.bin, "start_ns",
                         (json_int_t)t.start, "end_ns",
                         (json_int_t)(t.start + (int64_t)t.n * t.bin), "bins", arr);
        if (*out == NULL)
            rc = CA_ENOMEM;
    }
    free(t.bins);
    return rc;
}

int ca_query_timeline(struct ca_query *q, int bins, int64_t from_ns, int64_t to_ns, json_t **out,
                      char *err, size_t errlen, const char **param)
{
    if (bins < 1 || bins > 10000) {
        if (param != NULL)
            *param = "bins";
        return ca_seterr(err, errlen, CA_EINVAL, "bins must be from 1 to 10000");
    }
    if (from_ns != 0 && to_ns != 0 && to_ns < from_ns) {
        if (param != NULL)
            *param = "to_ns";
        return ca_seterr(err, errlen, CA_EINVAL, "to_ns is before from_ns");
    }
    return timeline(q, bins, from_ns, to_ns, out);
}

/* ---- flows pages --------------------------------------------------------- */

enum sfield {
    SF_ID,
    SF_FIRST,
    SF_LAST,
    SF_DURATION,
    SF_SRC,
    SF_DST,
    SF_SPORT,
    SF_DPORT,
    SF_L4,
    SF_PROTO,
    SF_CATEGORY,
    SF_HOST,
    SF_BYTES,
    SF_PACKETS,
    SF_SBYTES,
    SF_RBYTES,
    SF_SPKTS,
    SF_RPKTS,
    SF_SCC,
    SF_DCC,
    SF_SASN,
    SF_DASN,
    SF_VLAN,
    SF_CAPTURE,
    SF_TCPSTATE,
    SF_IPVER,
    SF_COUNT
};

static const char *const sfield_names[SF_COUNT] = {
    "id",          "first",       "last",       "duration",   "src",          "dst",
    "src_port",    "dst_port",    "l4",         "proto",      "category",     "host",
    "bytes",       "packets",     "sent_bytes", "recv_bytes", "sent_packets", "recv_packets",
    "src_country", "dst_country", "src_asn",    "dst_asn",    "vlan",         "capture",
    "tcp_state",   "ip_version"};

/* Accepted synonyms (the flow object's own names for the same columns). */
static int sfield_find(const char *s)
{
    if (s == NULL || *s == '\0')
        return SF_FIRST;
    for (int i = 0; i < SF_COUNT; i++)
        if (strcasecmp(sfield_names[i], s) == 0)
            return i;
    if (strcasecmp(s, "first_ns") == 0 || strcasecmp(s, "start") == 0)
        return SF_FIRST;
    if (strcasecmp(s, "last_ns") == 0 || strcasecmp(s, "end") == 0)
        return SF_LAST;
    if (strcasecmp(s, "sent") == 0)
        return SF_SBYTES;
    if (strcasecmp(s, "recv") == 0)
        return SF_RBYTES;
    return -1;
}

struct skey {
    uint8_t b[32]; /* 17 value bytes, 7 zero, 8 flow id (big-endian) */
};

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static void sk_num(struct skey *k, int64_t v)
{
    put_be64(k->b, (uint64_t)v ^ 0x8000000000000000ULL);
}

struct rank {
    uint32_t *of; /* string id -> rank */
    uint32_t n;
};

static void make_key(int sf, const struct rank *rk, uint32_t cap, uint32_t seq,
                     const struct ca_hot *h, struct skey *k)
{
    memset(k, 0, sizeof(*k));
    switch (sf) {
    case SF_ID:
        break;
    case SF_FIRST:
        sk_num(k, h->first_ns);
        break;
    case SF_LAST:
        sk_num(k, h->last_ns);
        break;
    case SF_DURATION:
        sk_num(k, h->last_ns - h->first_ns);
        break;
    case SF_SRC:
    case SF_DST:
        k->b[0] = h->ip_version;
        memcpy(k->b + 1, sf == SF_SRC ? h->src : h->dst, 16);
        break;
    case SF_SPORT:
        sk_num(k, h->src_port);
        break;
    case SF_DPORT:
        sk_num(k, h->dst_port);
        break;
    case SF_L4:
        sk_num(k, h->l4);
        break;
    case SF_PROTO:
    case SF_CATEGORY:
    case SF_HOST: {
        uint32_t id = sf == SF_PROTO      ? h->proto_id
                      : sf == SF_CATEGORY ? h->cat_id
                                          : (h->host_id != 0 ? h->host_id : h->dns_id);

        sk_num(k, id < rk->n ? rk->of[id] : 0);
        break;
    }
    case SF_BYTES:
        sk_num(k, (int64_t)(h->sent_bytes + h->recv_bytes));
        break;
    case SF_PACKETS:
        sk_num(k, (int64_t)h->sent_pkts + h->recv_pkts);
        break;
    case SF_SBYTES:
        sk_num(k, (int64_t)h->sent_bytes);
        break;
    case SF_RBYTES:
        sk_num(k, (int64_t)h->recv_bytes);
        break;
    case SF_SPKTS:
        sk_num(k, h->sent_pkts);
        break;
    case SF_RPKTS:
        sk_num(k, h->recv_pkts);
        break;
    case SF_SCC:
        memcpy(k->b, h->src_cc, 2);
        break;
    case SF_DCC:
        memcpy(k->b, h->dst_cc, 2);
        break;
    case SF_SASN:
        sk_num(k, h->src_asn);
        break;
    case SF_DASN:
        sk_num(k, h->dst_asn);
        break;
    case SF_VLAN:
        sk_num(k, h->vlan);
        break;
    case SF_CAPTURE:
        sk_num(k, cap);
        break;
    case SF_TCPSTATE:
        sk_num(k, h->tcp_state);
        break;
    case SF_IPVER:
        sk_num(k, h->ip_version);
        break;
    }
    put_be64(k->b + 24, (uint64_t)cap << 32 | seq);
}

struct rank_arg {
    struct ca_ws_snap *s;
    uint32_t *ids;
    size_t n, cap;
};

static int rank_each(void *arg, uint32_t id, const char *str)
{
    struct rank_arg *r = arg;

    if (r->n == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 256;
        uint32_t *g = realloc(r->ids, nc * sizeof(*g));

        if (g == NULL)
            return CA_ENOMEM;
        r->ids = g;
        r->cap = nc;
    }
    r->ids[r->n++] = id;
    return 0;
}

static struct ca_ws_snap *rank_snap; /* qsort has no argument; single-threaded */

static int rank_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    int c = strcasecmp(ca_ws_snap_str(rank_snap, x), ca_ws_snap_str(rank_snap, y));

    return c != 0 ? c : (x > y) - (x < y);
}

static int build_rank(struct ca_query *q, int kind, struct rank *rk)
{
    struct rank_arg r = {q->s, NULL, 0, 0};
    int rc;

    rk->n = ca_ws_snap_str_max(q->s) + 1;
    rk->of = calloc(rk->n, sizeof(uint32_t));
    if (rk->of == NULL)
        return CA_ENOMEM;
    rc = ca_ws_snap_str_each(q->s, kind, rank_each, &r);
    if (rc == 0) {
        rank_snap = q->s;
        qsort(r.ids, r.n, sizeof(*r.ids), rank_cmp);
        for (size_t i = 0; i < r.n; i++)
            if (r.ids[i] < rk->n)
                rk->of[r.ids[i]] = (uint32_t)i + 1;
    }
    free(r.ids);
    return rc;
}

struct page {
    int sf, desc;
    struct rank rk;
    int has_cursor;
    struct skey cursor;
    struct skey *heap; /* worst key at heap[0] */
    size_t n, k;
    uint64_t total;
};

/* <0 when a comes first in the requested order. */
static int key_cmp(const struct page *p, const struct skey *a, const struct skey *b)
{
    int c = memcmp(a->b, b->b, 24);

    if (c == 0)
        c = memcmp(a->b + 24, b->b + 24, 8); /* ties: flow id ascending either way */
    else if (p->desc)
        c = -c;
    return c;
}

static void heap_down(struct page *p, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, w = i;
        struct skey t;

        if (l < p->n && key_cmp(p, &p->heap[l], &p->heap[w]) > 0)
            w = l;
        if (r < p->n && key_cmp(p, &p->heap[r], &p->heap[w]) > 0)
            w = r;
        if (w == i)
            return;
        t = p->heap[i];
        p->heap[i] = p->heap[w];
        p->heap[w] = t;
        i = w;
    }
}

static void heap_up(struct page *p, size_t i)
{
    while (i > 0) {
        size_t par = (i - 1) / 2;
        struct skey t;

        if (key_cmp(p, &p->heap[i], &p->heap[par]) <= 0)
            return;
        t = p->heap[i];
        p->heap[i] = p->heap[par];
        p->heap[par] = t;
        i = par;
    }
}

static void page_put(struct page *p, const struct skey *key)
{
    struct skey k = *key;

    if (p->n < p->k) {
        p->heap[p->n++] = k;
        heap_up(p, p->n - 1);
    } else if (key_cmp(p, &k, &p->heap[0]) < 0) {
        p->heap[0] = k;
        heap_down(p, 0);
    }
}

static int page_row(void *arg, uint32_t cap, uint32_t seq, const struct ca_hot *h)
{
    struct page *p = arg;
    struct skey k;

    p->total++;
    make_key(p->sf, &p->rk, cap, seq, h, &k);
    if (p->has_cursor && key_cmp(p, &k, &p->cursor) <= 0)
        return 0;
    page_put(p, &k);
    return 0;
}

/* A page by a full scan, on two threads: the second half's best keys join the first's. */
static int page_scan(struct ca_query *q, struct page *p)
{
    struct page t = *p;
    int rc, split = 0;

    if (par_indexed(q))
        return scan(q, 0, 0, page_row, p, NULL);
    t.n = 0;
    t.total = 0;
    t.heap = malloc(t.k * sizeof(*t.heap));
    if (t.heap == NULL)
        return CA_ENOMEM;
    rc = scan_par(q, page_row, p, &t, &split);
    if (rc == 0 && split) {
        p->total += t.total;
        for (size_t i = 0; i < t.n; i++)
            page_put(p, &t.heap[i]);
    }
    free(t.heap);
    return rc;
}

/*
 * Pages sorted by bytes or by first packet walk each capture's flows in
 * that order (a pre-computed table) and stop at the first flow that cannot beat the
 * page's worst row, so an unfiltered page reads about limit rows per
 * capture.  With a filter, rows that do not match are skipped, and the
 * total comes from a count; a filter matching too few rows for the walk
 * to end soon (WALK_MAX rows per capture) makes it give up: *gave_up, and
 * the caller scans instead.
 */
#define WALK_MAX 20000

/* Counting the matches of a filter (a page's total) runs on two threads (scan_par). */
struct cwork {
    const struct ca_filter *f;
    const struct cchunk *c;
    size_t from, to;
    uint64_t count;
};

static void *count_work(void *arg)
{
    struct cwork *w = arg;

    for (size_t i = w->from; i < w->to; i++) {
        struct ca_filter_row row = {NULL, w->c[i].cap, w->c[i].cap_start};

        for (size_t j = 0; j < w->c[i].n; j++) {
            row.h = &w->c[i].h[j];
            w->count += (uint64_t)ca_filter_match(w->f, &row);
        }
    }
    return NULL;
}

static int count_matches(struct ca_query *q, uint64_t *total)
{
    struct ccollect cc;
    struct cwork w[2];
    pthread_t th;
    size_t rows = 0, half = 0;
    int rc, threaded;

    rc = chunks_collect(q, &cc, &half, &rows);
    if (rc != 0)
        return rc;
    w[0] = (struct cwork){q->f, cc.c, 0, half, 0};
    w[1] = (struct cwork){q->f, cc.c, half, cc.n, 0};
    threaded = rows >= 4096 && pthread_create(&th, NULL, count_work, &w[1]) == 0;
    count_work(&w[0]);
    if (threaded)
        pthread_join(th, NULL);
    else
        count_work(&w[1]);
    *total += w[0].count + w[1].count;
    chunks_free(&cc);
    return 0;
}

static int page_by_order(struct ca_query *q, struct page *p, unsigned kind, int *gave_up)
{
    size_t nc;
    const struct ca_snap_capture *c = ca_ws_snap_captures(q->s, &nc);
    int all = ca_filter_is_all(q->f) && !q->has_ip;
    int rc = 0;

    *gave_up = 0;
    for (size_t i = 0; i < nc && rc == 0; i++) {
        const void *d;
        size_t len, n;
        struct ca_filter_row row = {NULL, c[i].id, c[i].first_ns};

        if (all)
            p->total += c[i].flows;
        rc = ca_ws_snap_capagg(q->s, c[i].id, kind, &d, &len);
        if (rc == CA_ENOTFOUND) { /* a capture finished before this table existed */
            *gave_up = 1;
            return 0;
        }
        n = len / sizeof(uint32_t);
        for (size_t j = 0; rc == 0 && j < n; j++) {
            uint32_t seq;
            struct ca_hot h;
            struct skey k;
            int worse;

            if (!all && j >= WALK_MAX) {
                *gave_up = 1;
                return 0;
            }
            memcpy(&seq, (const char *)d + (p->desc ? j : n - 1 - j) * sizeof(seq), sizeof(seq));
            rc = ca_ws_snap_hot(q->s, c[i].id, seq, &h);
            if (rc != 0)
                break;
            make_key(p->sf, &p->rk, c[i].id, seq, &h, &k);
            if (p->n == p->k) {
                worse = memcmp(k.b, p->heap[0].b, 24);
                if (p->desc ? worse < 0 : worse > 0)
                    break; /* every later flow of this capture is worse still */
            }
            row.h = &h;
            if (!all && !ca_filter_match(q->f, &row))
                continue;
            if (p->has_cursor && key_cmp(p, &k, &p->cursor) <= 0)
                continue;
            if (p->n < p->k) {
                p->heap[p->n++] = k;
                heap_up(p, p->n - 1);
            } else if (key_cmp(p, &k, &p->heap[0]) < 0) {
                p->heap[0] = k;
                heap_down(p, 0);
            }
        }
    }
    if (rc == 0 && !all)
        rc = count_matches(q, &p->total);
    return rc;
}

static const struct page *sort_page;

static int page_cmp(const void *a, const void *b)
{
    return key_cmp(sort_page, a, b);
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int column_keep(const char *cols, const char *name)
{
    size_t n = strlen(name);

    for (const char *c = cols; *c != '\0';) {
        size_t len = strcspn(c, ",");

        while (len > 0 && *c == ' ')
            c++, len--;
        if (len == n && strncmp(c, name, n) == 0)
            return 1;
        c += len;
        if (*c == ',')
            c++;
    }
    return 0;
}

int ca_query_flows(struct ca_query *q, const char *sort, int desc, size_t limit, const char *cursor,
                   const char *columns, json_t **out, char *err, size_t errlen, const char **param)
{
    struct page p;
    struct ca_flow *f = NULL;
    json_t *arr = NULL, *next = NULL;
    char cbuf[128];
    int rc = 0;

    *out = NULL;
    memset(&p, 0, sizeof(p));
    p.sf = sfield_find(sort);
    p.desc = desc;
    if (p.sf < 0) {
        if (param != NULL)
            *param = "sort";
        return ca_seterr(err, errlen, CA_EINVAL, "cannot sort by '%s'", sort);
    }
    if (limit < 1 || limit > 100000) {
        if (param != NULL)
            *param = "limit";
        return ca_seterr(err, errlen, CA_EINVAL, "bad limit");
    }
    if (cursor != NULL && *cursor != '\0') {
        /* "<sort>.<a|d>.<64 hex>" */
        const char *d1 = strchr(cursor, '.');
        const char *hex = d1 != NULL ? strchr(d1 + 1, '.') : NULL;

        if (d1 == NULL || hex == NULL || strlen(hex + 1) != 64 ||
            (size_t)(d1 - cursor) != strlen(sfield_names[p.sf]) ||
            strncmp(cursor, sfield_names[p.sf], (size_t)(d1 - cursor)) != 0 ||
            d1[1] != (desc ? 'd' : 'a') || hex != d1 + 2) {
            if (param != NULL)
                *param = "cursor";
            return ca_seterr(err, errlen, CA_EINVAL,
                             "cursor does not belong to this sort and order");
        }
        for (int i = 0; i < 32; i++) {
            int a = hexval(hex[1 + 2 * i]), b = hexval(hex[2 + 2 * i]);

            if (a < 0 || b < 0) {
                if (param != NULL)
                    *param = "cursor";
                return ca_seterr(err, errlen, CA_EINVAL, "malformed cursor");
            }
            p.cursor.b[i] = (uint8_t)(a << 4 | b);
        }
        p.has_cursor = 1;
    }
    if (p.sf == SF_PROTO || p.sf == SF_CATEGORY || p.sf == SF_HOST) {
        rc = build_rank(q,
                        p.sf == SF_PROTO      ? CA_STR_PROTO
                        : p.sf == SF_CATEGORY ? CA_STR_CATEGORY
                                              : CA_STR_HOST,
                        &p.rk);
        if (rc != 0)
            goto out;
    }
    p.k = limit + 1;
    p.heap = malloc(p.k * sizeof(*p.heap));
    f = malloc(sizeof(*f));
    arr = json_array();
    if (p.heap == NULL || f == NULL || arr == NULL) {
        rc = CA_ENOMEM;
        goto out;
    }
    if ((p.sf == SF_BYTES || p.sf == SF_FIRST) && have_tables(q) && !q->has_ip &&
        !address_filter(q)) {
        int gave_up = 0;

        rc = page_by_order(q, &p, p.sf == SF_BYTES ? TAB_BYTES_ORDER : TAB_FIRST_ORDER, &gave_up);
        if (rc == 0 && gave_up) {
            p.n = 0;
            p.total = 0;
            rc = page_scan(q, &p);
        }
    } else {
        rc = page_scan(q, &p);
    }
    if (rc != 0)
        goto out;
    sort_page = &p;
    qsort(p.heap, p.n, sizeof(*p.heap), page_cmp);
    for (size_t i = 0; i < p.n && i < limit; i++) {
        uint64_t id = 0;
        json_t *o;

        for (int b = 24; b < 32; b++)
            id = id << 8 | p.heap[i].b[b];
        rc = ca_ws_snap_flow(q->s, id, f);
        if (rc != 0)
            goto out;
        o = ca_flow_to_json(f);
        if (o == NULL) {
            rc = CA_ENOMEM;
            goto out;
        }
        if (columns != NULL && *columns != '\0') {
            const char *key;
            json_t *val;
            void *tmp;

            json_object_foreach_safe(o, tmp, key, val)
            {
                if (!column_keep(columns, key) && strcmp(key, "id") != 0)
                    json_object_del(o, key);
            }
        }
        json_array_append_new(arr, o);
    }
    if (p.n > limit) {
        int n = snprintf(cbuf, sizeof(cbuf), "%s.%c.", sfield_names[p.sf], desc ? 'd' : 'a');

        for (int i = 0; i < 32; i++)
            n += snprintf(cbuf + n, sizeof(cbuf) - (size_t)n, "%02x", p.heap[limit - 1].b[i]);
        next = json_string(cbuf);
    } else {
        next = json_null();
    }
    *out = json_pack("{s:o, s:o, s:I}", "flows", arr, "next", next, "total", (json_int_t)p.total);
    arr = NULL;
    if (*out == NULL)
        rc = CA_ENOMEM;
out:
    json_decref(arr);
    free(f);
    free(p.heap);
    free(p.rk.of);
    return rc;
}

/* ---- per-IP detail ------------------------------------------------------- */

struct ipd {
    struct ca_query *q;
    struct acc as_src, as_dst;
    struct htab peers; /* addrkey -> acc */
    struct htab countries, protos, names;
    uint64_t hours[24];
    char cc[3];
    uint32_t asn;
    int have_geo;
};

static int count_u64(struct htab *t, uint64_t key, const struct ca_hot *h)
{
    struct acc *a = ht_get(t, &key, NULL);

    if (a == NULL)
        return CA_ENOMEM;
    acc_add(a, h);
    return 0;
}

static int ipd_row(void *arg, uint32_t cap, uint32_t seq, const struct ca_hot *h)
{
    struct ipd *d = arg;
    int is_src = memcmp(h->src, d->q->ip, 16) == 0;
    const uint8_t *peer = is_src ? h->dst : h->src;
    const char *pcc = is_src ? h->dst_cc : h->src_cc;
    struct addrkey k;
    struct acc *a;
    uint64_t cc = 0;

    acc_add(is_src ? &d->as_src : &d->as_dst, h);
    if (!is_src || memcmp(h->dst, d->q->ip, 16) == 0) {
        /* as the server: the names clients used for it */
        if (!is_src && (h->host_id != 0 || h->dns_id != 0) &&
            count_u64(&d->names, h->host_id != 0 ? h->host_id : h->dns_id, h) != 0)
            return CA_ENOMEM;
    }
    if (!d->have_geo) {
        memcpy(d->cc, is_src ? h->src_cc : h->dst_cc, 2);
        d->cc[2] = '\0';
        d->asn = is_src ? h->src_asn : h->dst_asn;
        d->have_geo = 1;
    }
    memcpy(k.addr, peer, 16);
    k.ver = h->ip_version;
    a = ht_get(&d->peers, &k, NULL);
    if (a == NULL)
        return CA_ENOMEM;
    acc_add(a, h);
    memcpy(&cc, pcc, 2);
    if (count_u64(&d->countries, cc, h) != 0 || count_u64(&d->protos, h->proto_id, h) != 0)
        return CA_ENOMEM;
    d->hours[(fdiv(h->first_ns, 3600 * NS_PER_S) % 24 + 24) % 24]++;
    return 0;
}

struct top_ref {
    const uint8_t *key;
    const struct acc *a;
};

static int top_cmp(const void *x, const void *y)
{
    const struct top_ref *a = x, *b = y;

    if (a->a->bytes != b->a->bytes)
        return a->a->bytes > b->a->bytes ? -1 : 1;
    return (a->a->flows < b->a->flows) - (a->a->flows > b->a->flows);
}

/* The top n entries of t by bytes, each through fn into an array. */
static json_t *top_json(struct ca_query *q, struct htab *t, size_t n,
                        json_t *(*fn)(struct ca_query *q, const uint8_t *key))
{
    struct top_ref *r = malloc((t->n + 1) * sizeof(*r));
    json_t *arr = json_array();
    const uint8_t *s;
    size_t k = 0;

    if (r == NULL || arr == NULL) {
        free(r);
        json_decref(arr);
        return NULL;
    }
    HT_EACH(t, i, s)
    {
        r[k].key = s + 8;
        r[k].a = (const struct acc *)(const void *)(s + t->voff);
        k++;
    }
    qsort(r, k, sizeof(*r), top_cmp);
    for (size_t i = 0; i < k && i < n; i++) {
        json_t *o = fn(q, r[i].key);

        json_object_set_new(o, "flows", json_integer((json_int_t)r[i].a->flows));
        json_object_set_new(o, "bytes", json_integer((json_int_t)r[i].a->bytes));
        json_array_append_new(arr, o);
    }
    free(r);
    return arr;
}

static json_t *peer_fn(struct ca_query *q, const uint8_t *key)
{
    const struct addrkey *k = (const struct addrkey *)(const void *)key;

    return json_pack("{s:o}", "ip", addr_json((int)k->ver, k->addr));
}

static json_t *cc_fn(struct ca_query *q, const uint8_t *key)
{
    return json_pack("{s:s%}", "country", (const char *)key, strnlen((const char *)key, 2));
}

static json_t *proto_fn(struct ca_query *q, const uint8_t *key)
{
    uint64_t id;
    const char *s;

    memcpy(&id, key, 8);
    s = ca_ws_snap_str(q->s, (uint32_t)id);
    return json_pack("{s:s}", "proto", s[0] != '\0' ? s : "Unknown");
}

static json_t *name_fn(struct ca_query *q, const uint8_t *key)
{
    uint64_t id;

    memcpy(&id, key, 8);
    return json_pack("{s:s}", "name", ca_ws_snap_str(q->s, (uint32_t)id));
}

static json_t *side_json(const struct acc *a)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I}", "flows", (json_int_t)a->flows, "bytes",
                     (json_int_t)a->bytes, "sent", (json_int_t)a->sent, "recv", (json_int_t)a->recv,
                     "packets", (json_int_t)a->packets);
}

int ca_query_ip(struct ca_query *q, const char *ip, json_t **out, char *err, size_t errlen,
                const char **param)
{
    struct ipd d;
    json_t *hours = NULL, *tl = NULL;
    char buf[64];
    int ver, bits, rc;

    *out = NULL;
    if (ip == NULL || ca_filter_parse_cidr(ip, q->ip, &ver, &bits) < 0 ||
        bits != (ver == 4 ? 32 : 128)) {
        if (param != NULL)
            *param = "ip";
        return ca_seterr(err, errlen, CA_EINVAL, "not an IP address");
    }
    q->ip_ver = ver;
    q->has_ip = 1;
    memset(&d, 0, sizeof(d));
    d.q = q;
    if (ht_init(&d.peers, sizeof(struct addrkey), sizeof(struct acc), 256) != 0 ||
        ht_init(&d.countries, 8, sizeof(struct acc), 64) != 0 ||
        ht_init(&d.protos, 8, sizeof(struct acc), 64) != 0 ||
        ht_init(&d.names, 8, sizeof(struct acc), 64) != 0) {
        rc = CA_ENOMEM;
        goto out;
    }
    rc = scan(q, 0, 0, ipd_row, &d, NULL);
    if (rc == 0)
        rc = timeline(q, 100, 0, 0, &tl);
    if (rc != 0)
        goto out;
    hours = json_array();
    for (int i = 0; i < 24; i++)
        json_array_append_new(hours, json_integer((json_int_t)d.hours[i]));
    *out = json_pack(
        "{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "ip",
        ca_addr_str((uint8_t)ver, q->ip, buf, sizeof(buf)), "as_source", side_json(&d.as_src),
        "as_destination", side_json(&d.as_dst), "peers", top_json(q, &d.peers, 50, peer_fn),
        "countries", top_json(q, &d.countries, 50, cc_fn), "protocols",
        top_json(q, &d.protos, 50, proto_fn), "hours", hours, "timeline", tl, "names",
        top_json(q, &d.names, 20, name_fn), "country", d.have_geo ? json_string(d.cc) : json_null(),
        "asn", d.have_geo && d.asn != 0 ? json_integer(d.asn) : json_null());
    hours = tl = NULL;
    if (*out == NULL)
        rc = CA_ENOMEM;
out:
    q->has_ip = 0;
    json_decref(hours);
    json_decref(tl);
    ht_free(&d.peers);
    ht_free(&d.countries);
    ht_free(&d.protos);
    ht_free(&d.names);
    return rc;
}

/* ---- host graph ---------------------------------------------------------- */

/*
 * One scan finds the hosts (indexed by address id when every record has
 * one, else through a hash table) and keeps each matching flow as a
 * (source host, destination host, bytes) triple.  The grouping follows
 * from the hosts alone: hosts when few enough, else /24 (/48) networks,
 * else ASNs, each host mapping to its group; then the triples add up into
 * the groups' nodes and edges (a flow counts once for a node it touches on
 * both sides), in a dense matrix when the groups are few.  A group's
 * country is that of the last flow that touched it.  Only a host seen
 * with several ASNs (the ASN grouping then follows each flow's own) or
 * more matching flows than the triples may hold costs a second scan.
 */
enum { GRP_HOST, GRP_NET, GRP_ASN };

struct gnode {
    struct addrkey k;
    uint64_t flows, bytes;
    uint64_t last; /* 2 * scan position + 1 on the source side: whose country */
    uint32_t asn;
    char cc[2];
    uint8_t asn_mixed;
    uint8_t pad;
};

struct gfb {
    uint64_t flows, bytes;
};

struct gtrip {
    uint32_t s, d; /* host indexes */
    uint64_t bytes;
};

#define GRAPH_TRIPS_MAX (4u << 20)
#define GRAPH_MATRIX_MAX 256

struct hostg {
    int grouping; /* GRP_HOST, or GRP_ASN for the scan by ASN */
    struct gnode *nodes;
    size_t n, capn;
    uint32_t *idx; /* address id -> node index + 1 (dense mode) */
    uint32_t max;
    struct htab keys; /* group key -> u32 node index (hash mode) */
    uint64_t tick;
    int out_of_range; /* dense mode met an address id it cannot index */
    struct gtrip *trips;
    size_t ntrips, captrips;
    int overflow; /* more matching flows than GRAPH_TRIPS_MAX */
};

/* The answer being built: nodes of the chosen grouping and their edges. */
struct gout {
    struct hostg *hg;
    const uint32_t *gid; /* host index -> group index */
    struct gnode *nodes;
    size_t n;
    struct gfb *mat;   /* n * n when n <= GRAPH_MATRIX_MAX */
    struct htab edges; /* u64 (a << 32 | b) -> struct gfb otherwise */
};

static void group_key(int grouping, int ver, const uint8_t *addr, uint32_t asn, struct addrkey *k)
{
    memset(k, 0, sizeof(*k));
    k->ver = (uint32_t)ver;
    if (grouping == GRP_HOST) {
        memcpy(k->addr, addr, 16);
    } else if (grouping == GRP_NET) {
        memcpy(k->addr, addr, ver == 4 ? 3 : 6); /* /24 or /48 */
    } else {
        k->ver = 0;
        memcpy(k->addr, &asn, 4);
    }
}

static void hostg_free(struct hostg *g)
{
    free(g->nodes);
    free(g->idx);
    free(g->trips);
    ht_free(&g->keys);
    memset(g, 0, sizeof(*g));
}

/* A new zeroed node of g; its index in *i. */
static int hg_new(struct hostg *g, const struct addrkey *k, uint32_t *i)
{
    if (grow((void **)&g->nodes, &g->capn, g->n + 1, sizeof(*g->nodes)) != 0)
        return CA_ENOMEM;
    memset(&g->nodes[g->n], 0, sizeof(g->nodes[g->n]));
    g->nodes[g->n].k = *k;
    *i = (uint32_t)g->n++;
    return 0;
}

/* Node index of one side of a flow (created when new). */
static int hg_node(struct hostg *g, uint32_t aid, int ver, const uint8_t *addr, uint32_t asn,
                   uint32_t *i)
{
    struct addrkey k;
    uint32_t *v;
    int created = 0;

    if (g->idx != NULL) {
        if (aid == 0 || aid > g->max) {
            g->out_of_range = 1;
            return CA_EBUSY;
        }
        if (g->idx[aid] != 0) {
            *i = g->idx[aid] - 1;
            return 0;
        }
        group_key(GRP_HOST, ver, addr, asn, &k);
        if (hg_new(g, &k, i) != 0)
            return CA_ENOMEM;
        g->idx[aid] = *i + 1;
        return 0;
    }
    group_key(g->grouping, ver, addr, asn, &k);
    v = ht_get(&g->keys, &k, &created);
    if (v == NULL)
        return CA_ENOMEM;
    if (created && hg_new(g, &k, v) != 0)
        return CA_ENOMEM;
    *i = *v;
    return 0;
}

static void hg_touch(struct hostg *g, uint32_t i, uint64_t last, const char *cc, uint32_t asn)
{
    struct gnode *n = &g->nodes[i];

    if (n->flows == 0)
        n->asn = asn;
    else if (n->asn != asn)
        n->asn_mixed = 1;
    n->flows++;
    n->last = last;
    memcpy(n->cc, cc, 2);
}

static int hg_row(void *arg, uint32_t cap, uint32_t seq, const struct ca_hot *h)
{
    struct hostg *g = arg;
    uint32_t s, d;
    int rc;

    if ((rc = hg_node(g, h->src_aid, h->ip_version, h->src, h->src_asn, &s)) != 0 ||
        (rc = hg_node(g, h->dst_aid, h->ip_version, h->dst, h->dst_asn, &d)) != 0)
        return rc;
    hg_touch(g, s, 2 * g->tick + 1, h->src_cc, h->src_asn);
    if (d != s)
        hg_touch(g, d, 2 * g->tick, h->dst_cc, h->dst_asn);
    g->tick++;
    if (g->overflow)
        return 0;
    if (g->ntrips == GRAPH_TRIPS_MAX ||
        grow((void **)&g->trips, &g->captrips, g->ntrips + 1, sizeof(*g->trips)) != 0) {
        g->overflow = 1;
        free(g->trips);
        g->trips = NULL;
        g->ntrips = g->captrips = 0;
        return 0;
    }
    g->trips[g->ntrips++] = (struct gtrip){s, d, h->sent_bytes + h->recv_bytes};
    return 0;
}

/* The hosts (or, with grouping GRP_ASN, the ASNs) of what q matches. */
static int graph_scan(struct ca_query *q, int grouping, struct hostg *g)
{
    int rc;

    memset(g, 0, sizeof(*g));
    g->grouping = grouping;
    if (grouping == GRP_HOST && have_tables(q) && q->aids &&
        (g->max = ca_ws_snap_addr_max(q->s)) <= (16u << 20)) {
        g->idx = calloc((size_t)g->max + 1, sizeof(*g->idx));
        if (g->idx == NULL)
            return CA_ENOMEM;
        rc = scan(q, 0, 0, hg_row, g, NULL);
        if (!g->out_of_range)
            return rc;
        /* an address without an id: start again by address */
        hostg_free(g);
        g->grouping = grouping;
    }
    if (ht_init(&g->keys, sizeof(struct addrkey), 4, 1024) != 0)
        return CA_ENOMEM;
    return scan(q, 0, 0, hg_row, g, NULL);
}

static int gout_add(struct gout *o, uint32_t a, uint32_t b, uint64_t bytes)
{
    struct gfb *e;

    o->nodes[a].flows++;
    o->nodes[a].bytes += bytes;
    if (b != a) {
        o->nodes[b].flows++;
        o->nodes[b].bytes += bytes;
    }
    if (o->mat != NULL) {
        e = &o->mat[(size_t)a * o->n + b];
    } else {
        uint64_t key = (uint64_t)a << 32 | b;

        if ((e = ht_get(&o->edges, &key, NULL)) == NULL)
            return CA_ENOMEM;
    }
    e->flows++;
    e->bytes += bytes;
    return 0;
}

/* Second scan, when the triples overflowed: the same hosts, looked up again. */
static int gout_row(void *arg, uint32_t cap, uint32_t seq, const struct ca_hot *h)
{
    struct gout *o = arg;
    uint32_t s, d;
    int rc;

    if ((rc = hg_node(o->hg, h->src_aid, h->ip_version, h->src, h->src_asn, &s)) != 0 ||
        (rc = hg_node(o->hg, h->dst_aid, h->ip_version, h->dst, h->dst_asn, &d)) != 0)
        return rc;
    if (s >= o->hg->n || d >= o->hg->n) /* not in the first scan: cannot be */
        return CA_EINTERNAL;
    return gout_add(o, o->gid[s], o->gid[d], h->sent_bytes + h->recv_bytes);
}

/* Groups of the hosts of g: gid[host] = group index, *n groups (nodes in o when o != NULL). */
static int graph_groups(const struct hostg *g, int grouping, uint32_t *gid, size_t *n,
                        struct gout *o)
{
    struct htab keys;
    int rc = 0;

    *n = 0;
    if (ht_init(&keys, sizeof(struct addrkey), 4, 1024) != 0)
        return CA_ENOMEM;
    for (size_t i = 0; i < g->n; i++) {
        const struct gnode *h = &g->nodes[i];
        struct addrkey k;
        uint32_t *v;
        int created = 0;

        if (grouping == g->grouping)
            k = h->k;
        else
            group_key(grouping, (int)h->k.ver, h->k.addr, h->asn, &k);
        v = ht_get(&keys, &k, &created);
        if (v == NULL) {
            rc = CA_ENOMEM;
            break;
        }
        if (created)
            *v = (uint32_t)(*n)++;
        gid[i] = *v;
        if (o != NULL) {
            struct gnode *x = &o->nodes[*v];

            if (created) {
                memset(x, 0, sizeof(*x));
                x->k = k;
            }
            if (created || h->last > x->last) {
                x->last = h->last;
                memcpy(x->cc, h->cc, 2);
            }
        }
    }
    ht_free(&keys);
    return rc;
}

static void node_label(int grouping, const struct addrkey *k, char *buf, size_t len)
{
    char a[64];

    if (grouping == GRP_HOST) {
        ca_addr_str((uint8_t)k->ver, k->addr, buf, len);
    } else if (grouping == GRP_NET) {
        ca_addr_str((uint8_t)k->ver, k->addr, a, sizeof(a));
        snprintf(buf, len, "%s/%d", a, k->ver == 4 ? 24 : 48);
    } else {
        uint32_t asn;

        memcpy(&asn, k->addr, 4);
        snprintf(buf, len, asn != 0 ? "AS%u" : "unknown AS", asn);
    }
}

/* Heaviest first: bytes, then flows, then the key (a total order). */
static int node_cmp(const void *x, const void *y)
{
    const struct gnode *a = *(const struct gnode *const *)x, *b = *(const struct gnode *const *)y;

    if (a->bytes != b->bytes)
        return a->bytes > b->bytes ? -1 : 1;
    if (a->flows != b->flows)
        return a->flows > b->flows ? -1 : 1;
    return memcmp(&a->k, &b->k, sizeof(a->k));
}

struct gedge {
    uint32_t a, b; /* ranks of the kept nodes */
    uint64_t flows, bytes;
};

static int edge_cmp(const void *x, const void *y)
{
    const struct gedge *a = x, *b = y;

    if (a->bytes != b->bytes)
        return a->bytes > b->bytes ? -1 : 1;
    if (a->flows != b->flows)
        return a->flows > b->flows ? -1 : 1;
    if (a->a != b->a)
        return a->a < b->a ? -1 : 1;
    return (a->b > b->b) - (a->b < b->b);
}

static int edge_keep(struct gedge **edges, size_t *ne, size_t *cape, const uint32_t *rank,
                     uint32_t a, uint32_t b, const struct gfb *e)
{
    if (e->flows == 0 || rank[a] == 0 || rank[b] == 0)
        return 0;
    if (grow((void **)edges, cape, *ne + 1, sizeof(**edges)) != 0)
        return CA_ENOMEM;
    (*edges)[(*ne)++] = (struct gedge){rank[a] - 1, rank[b] - 1, e->flows, e->bytes};
    return 0;
}

/* The answer: the max_nodes heaviest nodes and the edges between them. */
static int graph_json(const struct gout *o, int grouping, size_t max_nodes, json_t **out)
{
    static const char *const gnames[] = {"host", "/24", "asn"};
    const struct gnode **order = malloc((o->n + 1) * sizeof(*order));
    uint32_t *rank = calloc(o->n + 1, sizeof(*rank)); /* node -> position + 1, 0 = dropped */
    char(*labels)[80] = NULL;
    struct gedge *edges = NULL;
    size_t nkeep, ne = 0, cape = 0;
    json_t *nodes = json_array(), *jedges = json_array();
    int rc = 0;

    if (order == NULL || rank == NULL || nodes == NULL || jedges == NULL) {
        rc = CA_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < o->n; i++)
        order[i] = &o->nodes[i];
    qsort(order, o->n, sizeof(*order), node_cmp);
    nkeep = o->n < max_nodes ? o->n : max_nodes;
    labels = malloc((nkeep + 1) * sizeof(*labels));
    if (labels == NULL) {
        rc = CA_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < nkeep; i++) {
        const struct gnode *n = order[i];

        rank[n - o->nodes] = (uint32_t)i + 1;
        node_label(grouping, &n->k, labels[i], sizeof(labels[i]));
        json_array_append_new(nodes,
                              json_pack("{s:s, s:s, s:I, s:I, s:s%}", "id", labels[i], "label",
                                        labels[i], "flows", (json_int_t)n->flows, "bytes",
                                        (json_int_t)n->bytes, "country", n->cc, strnlen(n->cc, 2)));
    }
    if (o->mat != NULL) {
        for (size_t a = 0; a < o->n && rc == 0; a++)
            for (size_t b = 0; b < o->n && rc == 0; b++)
                rc = edge_keep(&edges, &ne, &cape, rank, (uint32_t)a, (uint32_t)b,
                               &o->mat[a * o->n + b]);
    } else {
        const uint8_t *s;

        HT_EACH(&o->edges, i, s)
        {
            uint64_t key;
            struct gfb e;

            memcpy(&key, s + 8, 8);
            memcpy(&e, s + o->edges.voff, sizeof(e));
            if (rc == 0)
                rc = edge_keep(&edges, &ne, &cape, rank, (uint32_t)(key >> 32), (uint32_t)key, &e);
        }
    }
    if (rc != 0)
        goto out;
    if (ne > 0)
        qsort(edges, ne, sizeof(*edges), edge_cmp);
    for (size_t i = 0; i < ne; i++)
        json_array_append_new(jedges, json_pack("{s:s, s:s, s:I, s:I}", "source",
                                                labels[edges[i].a], "target", labels[edges[i].b],
                                                "flows", (json_int_t)edges[i].flows, "bytes",
                                                (json_int_t)edges[i].bytes));
    *out =
        json_pack("{s:s, s:o, s:o}", "grouping", gnames[grouping], "nodes", nodes, "edges", jedges);
    nodes = jedges = NULL;
    if (*out == NULL)
        rc = CA_ENOMEM;
out:
    json_decref(nodes);
    json_decref(jedges);
    free(order);
    free(rank);
    free(labels);
    free(edges);
    return rc;
}

int ca_query_graph(struct ca_query *q, size_t max_nodes, json_t **out)
{
    struct hostg h, byasn;
    struct hostg *base = &h;
    struct gout o;
    uint32_t *gid = NULL;
    size_t n = 0;
    int rc, grouping = GRP_HOST, mixed = 0;

    *out = NULL;
    memset(&o, 0, sizeof(o));
    memset(&byasn, 0, sizeof(byasn));
    if (max_nodes == 0)
        max_nodes = 150;
    rc = graph_scan(q, GRP_HOST, &h);
    if (rc == 0 && (gid = malloc((h.n + 1) * sizeof(*gid))) == NULL)
        rc = CA_ENOMEM;
    /* the grouping: the first with few enough nodes, else ASNs */
    for (grouping = GRP_HOST; rc == 0 && grouping < GRP_ASN; grouping++) {
        rc = graph_groups(&h, grouping, gid, &n, NULL);
        if (rc != 0 || n <= max_nodes)
            break;
    }
    if (rc == 0 && grouping == GRP_ASN) {
        for (size_t i = 0; i < h.n; i++)
            mixed |= h.nodes[i].asn_mixed;
        if (mixed) { /* a host seen in several ASes: group by each flow's own */
            rc = graph_scan(q, GRP_ASN, &byasn);
            base = &byasn;
            free(gid);
            gid = rc == 0 ? malloc((byasn.n + 1) * sizeof(*gid)) : NULL;
            if (rc == 0 && gid == NULL)
                rc = CA_ENOMEM;
        }
    }
    o.hg = base;
    o.gid = gid;
    if (rc == 0 && (o.nodes = malloc((base->n + 1) * sizeof(*o.nodes))) == NULL)
        rc = CA_ENOMEM;
    if (rc == 0)
        rc = graph_groups(base, grouping, gid, &o.n, &o);
    for (size_t i = 0; rc == 0 && i < o.n; i++)
        o.nodes[i].flows = o.nodes[i].bytes = 0;
    if (rc == 0 && o.n <= GRAPH_MATRIX_MAX) {
        o.mat = calloc(o.n * o.n + 1, sizeof(*o.mat));
        if (o.mat == NULL)
            rc = CA_ENOMEM;
    } else if (rc == 0 && ht_init(&o.edges, 8, sizeof(struct gfb), 1024) != 0) {
        rc = CA_ENOMEM;
    }
    if (rc == 0 && !base->overflow) {
        for (size_t i = 0; i < base->ntrips && rc == 0; i++)
            rc = gout_add(&o, gid[base->trips[i].s], gid[base->trips[i].d], base->trips[i].bytes);
    } else if (rc == 0) {
        rc = scan(q, 0, 0, gout_row, &o, NULL);
    }
    if (rc == 0)
        rc = graph_json(&o, grouping, max_nodes, out);
    free(o.nodes);
    free(o.mat);
    ht_free(&o.edges);
    free(gid);
    hostg_free(&h);
    hostg_free(&byasn);
    return rc;
}

/* ---- values (filter bar completion) -------------------------------------- */

int ca_query_values(struct ca_query *q, const char *field, const char *prefix, size_t limit,
                    json_t **out, char *err, size_t errlen, const char **param)
{
    int f = field != NULL ? gfield_find(field, strlen(field)) : -1;
    struct agg g;
    struct row_ref *rows = NULL;
    json_t *arr = NULL;
    size_t n = 0, plen = prefix != NULL ? strlen(prefix) : 0;
    int rc;

    *out = NULL;
    if (f < 0) {
        if (param != NULL)
            *param = "field";
        return ca_seterr(err, errlen, CA_EINVAL, "field must be a group field (e.g. host, proto)");
    }
    if (limit == 0 || limit > 1000)
        limit = 20;
    rc = agg_run(q, &g, &f, 1, 0);
    if (rc != 0)
        goto out;
    rows = agg_rows(&g, M_FLOWS, &n);
    arr = json_array();
    if (rows == NULL || arr == NULL) {
        rc = CA_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n && json_array_size(arr) < limit; i++) {
        json_t *v = gv_json(q, f, rows[i].k[0]);
        char tmp[32];
        const char *text = json_string_value(v);

        if (text == NULL) {
            snprintf(tmp, sizeof(tmp), "%lld", (long long)json_integer_value(v));
            text = tmp;
        }
        if (text[0] == '\0' || (plen > 0 && strncasecmp(text, prefix, plen) != 0)) {
            json_decref(v);
            continue;
        }
        json_array_append_new(
            arr, json_pack("{s:o, s:I}", "value", v, "flows", (json_int_t)rows[i].a->flows));
    }
    *out = json_pack("{s:s, s:o}", "field", gfield_names[f], "values", arr);
    arr = NULL;
    if (*out == NULL)
        rc = CA_ENOMEM;
out:
    json_decref(arr);
    free(rows);
    agg_free(&g);
    return rc;
}
