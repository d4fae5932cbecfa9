/*
 * The query engine (see query.h).  Everything is one pass (two for
 * histograms of an unknown span) over the hot records of the snapshot,
 * with the compiled filter deciding per record, split over two threads
 * when the partial answers merge (cq_scan_par); group-bys go through one
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
 *
 * This file is the engine: scanning (filters in batches, address indexes,
 * two threads), the hash table, group values, metrics and the pre-computed
 * per-capture tables.  The answers built on it: query_agg.c (group-bys,
 * summary, value completion), query_timeline.c, query_flows.c (pages) and
 * query_ip.c (per-IP detail, host graph); query_internal.h is what they
 * share.
 */
#include "bigmem.h" /* the table builder's arrays */
#include "query_internal.h"

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

static int pfx_eq(const struct ca_query *q, const struct ca_hot *h)
{
    return h->ip_version == q->ip_ver &&
           (memcmp(h->src, q->ip, 16) == 0 || memcmp(h->dst, q->ip, 16) == 0);
}

/*
 * fn(arg, cap, seq0 + i, &h[i]) for the rows of h[0..n) that match q's
 * filter (and its per-IP address), in order; stops at fn's first non-zero.
 */
static int each_match(const struct ca_query *q, uint32_t cap, int64_t cap_start, uint32_t seq0,
                      const struct ca_hot *h, size_t n, row_fn fn, void *arg)
{
    uint32_t sel[SEL_BATCH];
    int all = ca_filter_is_all(q->f);
    int rc;

    for (size_t b = 0; b < n; b += SEL_BATCH) {
        size_t bn = n - b < SEL_BATCH ? n - b : SEL_BATCH;
        size_t k = all ? bn : ca_filter_select(q->f, h + b, bn, cap, cap_start, sel);

        for (size_t j = 0; j < k; j++) {
            size_t i = b + (all ? j : sel[j]);

            if (q->has_ip && !pfx_eq(q, &h[i]))
                continue;
            rc = fn(arg, cap, seq0 + (uint32_t)i, &h[i]);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

static int scan_chunk(void *arg, uint32_t cap, uint32_t seq0, const struct ca_hot *h, size_t n)
{
    struct scan *sc = arg;
    int64_t cap_start = 0;
    int rc;

    if (ca_filter_uses_cap_start(sc->q->f)) {
        for (size_t i = 0; i < sc->ncaps; i++)
            if (sc->caps[i].id == cap)
                cap_start = sc->caps[i].first_ns;
    }
    rc = each_match(sc->q, cap, cap_start, seq0, h, n, sc->fn, sc->arg);
    if (rc != 0)
        return rc;
    sc->last = (uint64_t)cap << 32 | (seq0 + (uint32_t)n - 1);
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

#define REQ_ADDRS_MAX 16

/* How many records ahead scan_seqs asks the memory for. */
#define PREFETCH_AHEAD 12

/*
 * The rows of capture cap at seqs[0..n) (ascending) through the filter and
 * sc's row function.  The records lie scattered over the capture's hot
 * chunks, a cache and TLB miss each: they are located first, then copied
 * into a batch with the memory asked for PREFETCH_AHEAD records ahead, so
 * the misses overlap instead of coming one after another.
 */
static int scan_seqs(struct ca_query *q, struct scan *sc, uint32_t cap, const uint32_t *seqs,
                     size_t n)
{
    const char *at[SEL_BATCH];
    struct ca_hot *buf;
    uint32_t sel[SEL_BATCH];
    int64_t cap_start = 0;
    int rc = 0;

    if (ca_filter_uses_cap_start(q->f)) {
        for (size_t i = 0; i < sc->ncaps; i++)
            if (sc->caps[i].id == cap)
                cap_start = sc->caps[i].first_ns;
    }
    buf = malloc((n < SEL_BATCH ? n : SEL_BATCH) * sizeof(*buf));
    if (buf == NULL)
        return CA_ENOMEM;
    for (size_t b = 0; b < n && rc == 0; b += SEL_BATCH) {
        size_t bn = n - b < SEL_BATCH ? n - b : SEL_BATCH, k;

        for (size_t i = 0; i < bn && rc == 0; i++) {
            const void *p;

            rc = ca_ws_snap_hot_ref(q->s, cap, seqs[b + i], &p);
            at[i] = p;
        }
        if (rc != 0)
            break;
        for (size_t i = 0; i < bn; i++) {
            if (i + PREFETCH_AHEAD < bn) {
                __builtin_prefetch(at[i + PREFETCH_AHEAD]);
                __builtin_prefetch(at[i + PREFETCH_AHEAD] + sizeof(struct ca_hot) - 1);
            }
            memcpy(&buf[i], at[i], sizeof(buf[i]));
        }
        k = ca_filter_select(q->f, buf, bn, cap, cap_start, sel);
        for (size_t j = 0; j < k && rc == 0; j++) {
            const struct ca_hot *h = &buf[sel[j]];

            if (q->has_ip && !pfx_eq(q, h))
                continue;
            rc = sc->fn(sc->arg, cap, seqs[b + sel[j]], h);
        }
    }
    free(buf);
    return rc;
}

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
    if (na <= 0 || !cq_have_tables(q))
        return 0;
    for (size_t c = 0; c < sc->ncaps && rc == 0; c++) {
        uint32_t cap = sc->caps[c].id, parts = ca_ws_snap_parts(q->s, cap);
        size_t n = 0;

        /* parts in order: one address's seqs stay ascending */
        for (int a = 0; a < na && rc == 0; a++)
            for (uint32_t part = 0; part < parts && rc == 0; part++) {
                const void *v;
                size_t k;

                rc = ca_ws_snap_addr_seqs(q->s, cap, part, ver[a], addr[a], &v, &k);
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
        if (rc == 0)
            rc = scan_seqs(q, sc, cap, seqs, n);
    }
    free(seqs);
    *rcp = rc;
    return 1;
}

/* Whether the filter reads an address index (scan_indexed). */
int cq_address_filter(struct ca_query *q)
{
    uint8_t addr[REQ_ADDRS_MAX][16];
    int ver[REQ_ADDRS_MAX];

    return ca_filter_required_addrs(q->f, addr, ver, REQ_ADDRS_MAX) > 0;
}

int cq_scan(struct ca_query *q, uint64_t after, size_t max_chunks, row_fn fn, void *arg,
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
    int rc = cq_scan(q, after, max_chunks, each_row, &e, &l);

    /* Fewer chunks than asked for means the end was reached. */
    if (last != NULL)
        *last = l == after ? 0 : l;
    return rc;
}

/* ---- hash table ---------------------------------------------------------- */

static uint64_t hash_bytes(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;

    size_t i = 0;

    for (; i + 8 <= n; i += 8) { /* whole words: fixed-size copies, no call */
        uint64_t w;

        memcpy(&w, b + i, 8);
        h ^= w;
        h *= 0xff51afd7ed558ccdULL;
        h ^= h >> 33;
    }
    if (i < n) {
        uint64_t w = 0;

        memcpy(&w, b + i, n - i);
        h ^= w;
        h *= 0xff51afd7ed558ccdULL;
        h ^= h >> 33;
    }
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 29;
    return h != 0 ? h : 1;
}

int cq_ht_init(struct htab *t, size_t ksz, size_t vsz, size_t cap)
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

void cq_ht_free(struct htab *t)
{
    free(t->mem);
    t->mem = NULL;
}

static int ht_grow(struct htab *t)
{
    struct htab g;

    if (cq_ht_init(&g, t->ksz, t->vsz, t->cap * 2) != 0)
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

/*
 * Value of key (zeroed when new; *created set).  NULL on ENOMEM.  Inlined
 * where ksz is a constant (agg_get): the hash and the comparison then
 * compile to a few instructions.
 */
static inline __attribute__((always_inline)) void *ht_get_k(struct htab *t, const void *key,
                                                            size_t ksz, int *created)
{
    uint64_t h = hash_bytes(key, ksz);

    if (t->n * 2 >= t->cap && ht_grow(t) != 0)
        return NULL;
    for (size_t j = h & (t->cap - 1);; j = (j + 1) & (t->cap - 1)) {
        uint8_t *s = t->mem + j * t->slot;
        uint64_t sh;

        memcpy(&sh, s, 8);
        if (sh == 0) {
            memcpy(s, &h, 8);
            memcpy(s + 8, key, ksz);
            t->n++;
            if (created != NULL)
                *created = 1;
            return s + t->voff;
        }
        if (sh == h && memcmp(s + 8, key, ksz) == 0) {
            if (created != NULL)
                *created = 0;
            return s + t->voff;
        }
    }
}

void *cq_ht_get(struct htab *t, const void *key, int *created)
{
    return ht_get_k(t, key, t->ksz, created);
}

/* ---- group fields -------------------------------------------------------- */

const char *const cq_gfield_names[GF_COUNT] = {
    "src",         "dst",         "ip",           "port",    "src.port", "dst.port",
    "port.bucket", "proto",       "proto.master", "l4",      "category", "country",
    "src.country", "dst.country", "asn",          "src.asn", "dst.asn",  "host",
    "capture",     "vlan",        "hour",         "day",     "weekday",  "duration.bucket",
    "tcp.state"};

int cq_gfield_find(const char *s, size_t n)
{
    for (int i = 0; i < GF_COUNT; i++)
        if (strlen(cq_gfield_names[i]) == n && strncasecmp(cq_gfield_names[i], s, n) == 0)
            return i;
    return -1;
}

static const int64_t dur_bounds[] = {NS_PER_S, 10 * NS_PER_S, 60 * NS_PER_S, 600 * NS_PER_S,
                                     3600 * NS_PER_S};
static const char *const dur_labels[] = {"<1s", "1-10s", "10s-1m", "1-10m", "10m-1h", ">1h"};
static const char *const port_bucket_labels[] = {"0-1023", "1024-49151", "49152-65535", "none"};
static const char *const weekday_labels[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

int64_t cq_fdiv(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static void gv_u64(struct gv *v, uint64_t x)
{
    memset(v, 0, sizeof(*v));
    memcpy(v->b, &x, 8);
}

uint64_t cq_gv_get_u64(const struct gv *v)
{
    uint64_t x;

    memcpy(&x, v->b, 8);
    return x;
}

void cq_gv_addr(struct gv *v, const uint8_t *a, int ver)
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
int cq_gvals(int f, uint32_t cap, const struct ca_hot *h, const uint32_t *master, uint32_t nmaster,
             struct gv out[2])
{
    int64_t d;
    int n = 1;

    memset(out, 0, 2 * sizeof(*out));
    switch (f) {
    case GF_SRC:
        cq_gv_addr(&out[0], h->src, h->ip_version);
        break;
    case GF_DST:
        cq_gv_addr(&out[0], h->dst, h->ip_version);
        break;
    case GF_IP:
        cq_gv_addr(&out[0], h->src, h->ip_version);
        cq_gv_addr(&out[1], h->dst, h->ip_version);
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
        gv_u64(&out[0], (uint64_t)(cq_fdiv(h->first_ns, 3600 * NS_PER_S) % 24 + 24) % 24);
        break;
    case GF_DAY:
        gv_u64(&out[0], (uint64_t)cq_fdiv(h->first_ns, 86400 * NS_PER_S));
        break;
    case GF_WEEKDAY:
        gv_u64(&out[0], (uint64_t)(((cq_fdiv(h->first_ns, 86400 * NS_PER_S) + 3) % 7 + 7) % 7));
        break;
    case GF_DUR_BUCKET:
        d = ca_hot_duration(h);
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

json_t *cq_addr_json(int ver, const uint8_t *a)
{
    char buf[64];

    return json_string(ca_addr_str((uint8_t)ver, a, buf, sizeof(buf)));
}

json_t *cq_gv_json(struct ca_query *q, int f, const struct gv *v)
{
    uint64_t x = cq_gv_get_u64(v);
    char buf[32];

    switch (f) {
    case GF_SRC:
    case GF_DST:
    case GF_IP:
        return cq_addr_json((int)v->tag, v->b);
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

const char *const cq_metric_names[M_N] = {
    "flows", "bytes", "sent", "recv", "packets", "duration", "duration.avg", "src_ips", "dst_ips"};

void cq_acc_add(struct acc *a, const struct ca_hot *h)
{
    a->flows++;
    a->sent += h->sent_bytes;
    a->recv += h->recv_bytes;
    a->bytes += h->sent_bytes + h->recv_bytes;
    a->packets += (uint64_t)h->sent_pkts + h->recv_pkts;
    a->dur_ns = cq_sat_add(a->dur_ns, ca_hot_duration(h));
}

double cq_acc_metric(const struct acc *a, int m)
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

json_t *cq_acc_json(const struct acc *a, const int *ms, int nm)
{
    json_t *o = json_object();

    for (int i = 0; o != NULL && i < nm; i++) {
        json_t *v = ms[i] == M_DUR || ms[i] == M_DUR_AVG
                        ? json_real(cq_acc_metric(a, ms[i]))
                        : json_integer((json_int_t)cq_acc_metric(a, ms[i]));

        json_object_set_new(o, cq_metric_names[ms[i]], v);
    }
    return o;
}

/* ---- pre-computed per-capture tables ------------------------------------ */

/* (what the tables are: query_internal.h, at TAB_MINUTE) */

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
    /* per field table, per value of a flow: the last key looked up and
     * where its value is (offset + 1 in the table's memory; 0 none), valid
     * while the table keeps that size (growing moves every slot) */
    struct gv memo_key[GF_COUNT][2];
    size_t memo_off[GF_COUNT][2], memo_cap[GF_COUNT][2];
};

int cq_tab_field(int f)
{
    return f != GF_PROTO_MASTER && f != GF_CAPTURE;
}

int cq_tab_parted(unsigned kind)
{
    return kind == GF_SRC || kind == GF_DST || kind == GF_IP || kind == TAB_BYTES_ORDER ||
           kind == TAB_FIRST_ORDER;
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
        cq_ht_free(&a->t[f]);
    cq_ht_free(&a->minute);
    cq_ht_free(&a->ipself);
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
        if (cq_tab_field(f) && !dense_field(f) &&
            cq_ht_init(&a->t[f], sizeof(struct gv), sizeof(struct acc), 64) != 0)
            rc = CA_ENOMEM;
    if (rc == 0 && (cq_ht_init(&a->minute, 8, sizeof(struct acc), 256) != 0 ||
                    cq_ht_init(&a->ipself, sizeof(struct gv), sizeof(struct acc), 16) != 0))
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

size_t ca_capagg_flows(const struct ca_capagg *a)
{
    return a->norder;
}

/*
 * Empties the builder's part (cq_tab_parted: what grows with the flows or
 * their addresses) for the next one, keeping what covers the capture
 * (tables of bounded size, the address id bitmaps) and the arrays'
 * memory, which the next part fills again without fresh pages.
 */
int ca_capagg_next_part(struct ca_capagg *a)
{
    cq_ht_free(&a->ipself);
    if (cq_ht_init(&a->ipself, sizeof(struct gv), sizeof(struct acc), 16) != 0)
        return CA_ENOMEM;
    if (a->acap != 0)
        memset(a->aslot, 0, a->acap * sizeof(*a->aslot));
    for (int s = 0; s < 2; s++)
        if (a->nakeys != 0)
            memset(a->aside[s], 0, a->nakeys * sizeof(*a->aside[s]));
    a->nakeys = a->npairs = a->norder = 0;
    a->mode = 0;
    return 0;
}

int cq_grow(void **p, size_t *cap, size_t need, size_t sz)
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

/* cq_grow() for the builder's arrays: huge-page maps, zeroed beyond the old size. */
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
    s->dur_ns = cq_sat_add(s->dur_ns, ca_hot_duration(h));
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

/* cq_ht_get for the builder's tables of struct gv keys (a dozen times a flow). */
static struct acc *agg_get(struct htab *t, const struct gv *key)
{
    return ht_get_k(t, key, sizeof(*key), NULL);
}

/* The sums of value j of field f, from the memo when the last flow had it. */
static struct acc *agg_field(struct ca_capagg *a, int f, int j, const struct gv *key)
{
    struct htab *t = &a->t[f];
    struct acc *x;

    if (a->memo_off[f][j] != 0 && a->memo_cap[f][j] == t->cap &&
        memcmp(&a->memo_key[f][j], key, sizeof(*key)) == 0)
        return (struct acc *)(void *)(t->mem + a->memo_off[f][j] - 1);
    x = agg_get(t, key);
    if (x != NULL) {
        a->memo_off[f][j] = (size_t)((uint8_t *)x - t->mem) + 1;
        a->memo_cap[f][j] = t->cap;
        a->memo_key[f][j] = *key;
    }
    return x;
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
        uint64_t m = (uint64_t)cq_fdiv(r->first_ns, 60 * NS_PER_S);
        uint32_t seq = seq0 + (uint32_t)i, si, di;
        struct gv v[2];
        struct acc *x;

        for (int f = 0; f < GF_COUNT; f++) {
            int nv;

            if (!cq_tab_field(f) || dense_field(f))
                continue;
            nv = cq_gvals(f, 0, r, NULL, 0, v);
            for (int j = 0; j < nv; j++) {
                if ((x = agg_field(a, f, j, &v[j])) == NULL)
                    return CA_ENOMEM;
                cq_acc_add(x, r);
            }
        }
        if ((x = cq_ht_get(&a->minute, &m, NULL)) == NULL)
            return CA_ENOMEM;
        cq_acc_add(x, r);
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
            if ((x = cq_ht_get(&a->ipself, &v[0], NULL)) == NULL)
                return CA_ENOMEM;
            cq_acc_add(x, r);
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
            cq_gv_addr(&key, a->akeys[i].addr, (int)a->akeys[i].ver);
            if (side != NULL) {
                x = side[i];
            } else {
                const struct sideacc *s = &a->aside[0][i], *d = &a->aside[1][i];

                x.flows = s->flows + d->flows;
                x.sent = s->sent + d->sent;
                x.recv = s->recv + d->recv;
                x.packets = s->packets + d->packets;
                x.dur_ns = cq_sat_add(s->dur_ns, d->dur_ns);
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
            uint64_t i = cq_gv_get_u64(key);

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

int ca_capagg_emit_part(struct ca_capagg *a, int (*put)(void *, unsigned, const void *, size_t),
                        int (*reserve)(void *, unsigned, size_t, void **),
                        int (*addr)(void *, int, const uint8_t[16], const uint32_t *, size_t),
                        void *arg)
{
    uint32_t *seqs = NULL, *off = NULL;
    struct addrord *ord = NULL;
    int rc = 0;

    for (int f = 0; rc == 0 && f < GF_COUNT; f++)
        if (cq_tab_field(f) && cq_tab_parted((unsigned)f))
            rc = emit_dense(a, f, reserve, arg);
    for (int k = 0; rc == 0 && k < 2; k++)
        rc = emit_order(a, k, reserve, arg);
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

int ca_capagg_emit_capture(struct ca_capagg *a, int (*put)(void *, unsigned, const void *, size_t),
                           int (*reserve)(void *, unsigned, size_t, void **), void *arg)
{
    uint32_t info = a->no_aids ? 0 : INFO_AIDS;
    int rc = 0;

    for (int f = 0; rc == 0 && f < GF_COUNT; f++) {
        if (!cq_tab_field(f) || cq_tab_parted((unsigned)f))
            continue;
        if (dense_field(f))
            rc = emit_dense(a, f, reserve, arg);
        else
            rc = emit_tab(&a->t[f], sizeof(struct gv), (unsigned)f, put, arg);
    }
    if (rc == 0)
        rc = emit_tab(&a->minute, 8, TAB_MINUTE, put, arg);
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
    return rc != 0 ? rc : put(arg, TAB_INFO, &info, sizeof(info));
}

size_t ca_capagg_bytes(const struct ca_capagg *a)
{
    size_t n = 0;

    for (int f = 0; f < GF_COUNT; f++)
        n += a->t[f].n;
    n += a->minute.n + 3 * (size_t)65536 + 3 * a->nakeys; /* table records */
    return n * sizeof(struct tabrec) + 2 * a->norder * sizeof(uint32_t) +
           (a->aidwords[0] + a->aidwords[1]) * 64 * sizeof(uint32_t) +
           a->npairs * sizeof(uint32_t) + a->nakeys * 64; /* an address list's key and node */
}

/* Whether every ready capture of the snapshot has its tables. */
int cq_have_tables(struct ca_query *q)
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
int cq_use_tables(struct ca_query *q)
{
    return ca_filter_is_all(q->f) && !q->has_ip && cq_have_tables(q);
}

/* Calls fn for each row of table kind of every ready capture. */
int cq_tab_each(struct ca_query *q, unsigned kind, int (*fn)(void *arg, const struct tabrec *r),
                void *arg)
{
    size_t n;
    const struct ca_snap_capture *c = ca_ws_snap_captures(q->s, &n);
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i++) {
        uint32_t parts = cq_tab_parted(kind) ? ca_ws_snap_parts(q->s, c[i].id) : 1;

        for (uint32_t part = 0; part < parts && rc == 0; part++) {
            const void *d;
            size_t len;

            rc = ca_ws_snap_capagg_part(q->s, c[i].id, part, kind, &d, &len);
            for (size_t off = 0; rc == 0 && off + sizeof(struct tabrec) <= len;
                 off += sizeof(struct tabrec)) {
                struct tabrec r;

                memcpy(&r, (const char *)d + off, sizeof(r));
                rc = fn(arg, &r);
            }
        }
    }
    return rc;
}

/* Slots for about n keys (a power of two, at most half full). */
int cq_ht_presize(struct htab *t, size_t n)
{
    size_t cap = t->cap;

    while (cap < 2 * n + 2)
        cap *= 2;
    if (cap == t->cap)
        return 0;
    cq_ht_free(t);
    return cq_ht_init(t, t->ksz, t->vsz, cap);
}

/* Rows of table kind over every ready capture (an upper bound on distinct keys). */
size_t cq_tab_rows(struct ca_query *q, unsigned kind)
{
    size_t n, rows = 0;
    const struct ca_snap_capture *c = ca_ws_snap_captures(q->s, &n);

    for (size_t i = 0; i < n; i++) {
        uint32_t parts = cq_tab_parted(kind) ? ca_ws_snap_parts(q->s, c[i].id) : 1;

        for (uint32_t part = 0; part < parts; part++) {
            const void *d;
            size_t len;

            if (ca_ws_snap_capagg_part(q->s, c[i].id, part, kind, &d, &len) == 0)
                rows += len / sizeof(struct tabrec);
        }
    }
    return rows;
}

/*
 * The most rows table kind has in one capture (or part of one): a lower
 * bound on the distinct keys of their merge.  Presizing to that rather than to the sum
 * keeps the table small when the captures share keys (random access to a
 * table of tens of megabytes costs a page fault or a TLB miss per row).
 */
size_t cq_tab_rows_max(struct ca_query *q, unsigned kind)
{
    size_t n, most = 0;
    const struct ca_snap_capture *c = ca_ws_snap_captures(q->s, &n);

    for (size_t i = 0; i < n; i++) {
        uint32_t parts = cq_tab_parted(kind) ? ca_ws_snap_parts(q->s, c[i].id) : 1;

        for (uint32_t part = 0; part < parts; part++) {
            const void *d;
            size_t len;

            if (ca_ws_snap_capagg_part(q->s, c[i].id, part, kind, &d, &len) == 0 &&
                len / sizeof(struct tabrec) > most)
                most = len / sizeof(struct tabrec);
        }
    }
    return most;
}

uint64_t cq_bit_set(uint64_t *b, uint32_t id)
{
    uint64_t m = 1ULL << (id & 63), old = b[id >> 6];

    b[id >> 6] = old | m;
    return (old & m) == 0;
}

void cq_acc_merge(struct acc *a, const struct tabrec *r)
{
    a->flows += r->flows;
    a->bytes += r->bytes;
    a->sent += r->sent;
    a->recv += r->recv;
    a->packets += r->packets;
    a->dur_ns = cq_sat_add(a->dur_ns, r->dur_ns);
}

void cq_acc_merge_acc(struct acc *a, const struct acc *b)
{
    a->flows += b->flows;
    a->bytes += b->bytes;
    a->sent += b->sent;
    a->recv += b->recv;
    a->packets += b->packets;
    a->dur_ns = cq_sat_add(a->dur_ns, b->dur_ns);
    a->src_ips += b->src_ips;
    a->dst_ips += b->dst_ips;
}

int cq_total_one(void *arg, const struct tabrec *r)
{
    cq_acc_merge(arg, r);
    return 0;
}

static int collect_chunk(void *arg, uint32_t cap, uint32_t seq0, const struct ca_hot *h, size_t n)
{
    struct ccollect *cc = arg;
    struct cchunk *k;
    size_t off = 0;

    if (cq_grow((void **)&cc->c, &cc->cap, cc->n + 1, sizeof(*cc->c)) != 0)
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

void cq_chunks_free(struct ccollect *cc)
{
    for (size_t i = 0; i < cc->n; i++)
        if (cc->c[i].owned)
            free((void *)cc->c[i].h);
    free(cc->c);
    cc->c = NULL;
    cc->n = cc->cap = 0;
}

/* The snapshot's hot chunks, and the chunk index where half of the rows lie before. */
int cq_chunks_collect(struct ca_query *q, struct ccollect *cc, size_t *half, size_t *rows)
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
        cq_chunks_free(cc);
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

    for (size_t i = w->from; i < w->to && w->rc == 0; i++) {
        const struct cchunk *c = &w->c[i];

        w->rc = each_match(w->q, c->cap, c->cap_start, c->seq0, c->h, c->n, w->fn, w->arg);
    }
    return NULL;
}

#define PAR_MIN_ROWS 4096

/* Whether cq_scan() reads an address index (then cq_scan_par does not split). */
int cq_par_indexed(struct ca_query *q)
{
    return (q->has_ip || cq_address_filter(q)) && cq_have_tables(q);
}

/*
 * Like cq_scan(q, 0, 0, fn, ...), with the rows in id order split in two: the
 * first half goes to fn(arg0, ...), the second to fn(arg1, ...) on another
 * thread; *split = 0 when everything went to arg0 (few rows, an address
 * index, no thread).  fn must not use the snapshot.
 */
int cq_scan_par(struct ca_query *q, row_fn fn, void *arg0, void *arg1, int *split)
{
    struct ccollect cc;
    struct pwork w[2];
    pthread_t th;
    size_t half, rows;
    int rc;

    *split = 0;
    if (q->s == NULL)
        return CA_EINTERNAL;
    if (cq_par_indexed(q))
        return cq_scan(q, 0, 0, fn, arg0, NULL);
    rc = cq_chunks_collect(q, &cc, &half, &rows);
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
    cq_chunks_free(&cc);
    return rc;
}
