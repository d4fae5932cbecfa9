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
 * two threads), the hash table, group values, metrics and reading the
 * pre-computed per-capture tables, which query_capagg.c builds.  The
 * answers built on it: query_agg.c (group-bys,
 * summary, value completion), query_timeline.c, query_flows.c (pages) and
 * query_ip.c (per-IP detail, host graph); query_internal.h is what they
 * share.
 */
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

int cq_ht_grow(struct htab *t)
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

void *cq_ht_get(struct htab *t, const void *key, int *created)
{
    return cq_ht_get_k(t, key, t->ksz, created);
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
        cq_gv_u64(&out[0], h->src_port);
        cq_gv_u64(&out[1], h->dst_port);
        n = h->src_port != h->dst_port ? 2 : 1;
        break;
    case GF_SPORT:
        cq_gv_u64(&out[0], h->src_port);
        break;
    case GF_DPORT:
        cq_gv_u64(&out[0], h->dst_port);
        break;
    case GF_PORT_BUCKET:
        cq_gv_u64(&out[0], h->l4 != 6 && h->l4 != 17 && h->l4 != 132 ? 3
                           : h->dst_port < 1024                      ? 0
                           : h->dst_port < 49152                     ? 1
                                                                     : 2);
        break;
    case GF_PROTO:
        cq_gv_u64(&out[0], h->proto_id);
        break;
    case GF_PROTO_MASTER:
        cq_gv_u64(&out[0], h->proto_id < nmaster ? master[h->proto_id] : h->proto_id);
        break;
    case GF_L4:
        cq_gv_u64(&out[0], h->l4);
        break;
    case GF_CATEGORY:
        cq_gv_u64(&out[0], h->cat_id);
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
        cq_gv_u64(&out[0], h->src_asn);
        cq_gv_u64(&out[1], h->dst_asn);
        n = h->src_asn != h->dst_asn ? 2 : 1;
        break;
    case GF_SASN:
        cq_gv_u64(&out[0], h->src_asn);
        break;
    case GF_DASN:
        cq_gv_u64(&out[0], h->dst_asn);
        break;
    case GF_HOST:
        cq_gv_u64(&out[0], h->host_id != 0 ? h->host_id : h->dns_id);
        break;
    case GF_CAPTURE:
        cq_gv_u64(&out[0], cap);
        break;
    case GF_VLAN:
        cq_gv_u64(&out[0], h->vlan);
        break;
    case GF_HOUR:
        cq_gv_u64(&out[0], (uint64_t)(cq_fdiv(h->first_ns, 3600 * NS_PER_S) % 24 + 24) % 24);
        break;
    case GF_DAY:
        cq_gv_u64(&out[0], (uint64_t)cq_fdiv(h->first_ns, 86400 * NS_PER_S));
        break;
    case GF_WEEKDAY:
        cq_gv_u64(&out[0], (uint64_t)(((cq_fdiv(h->first_ns, 86400 * NS_PER_S) + 3) % 7 + 7) % 7));
        break;
    case GF_DUR_BUCKET:
        d = ca_hot_duration(h);
        {
            uint64_t b = 0;

            while (b < 5 && d >= dur_bounds[b])
                b++;
            cq_gv_u64(&out[0], b);
        }
        break;
    case GF_TCPSTATE:
        cq_gv_u64(&out[0], h->tcp_state);
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

/* ---- pre-computed per-capture tables (built by query_capagg.c) ---------- */

int cq_grow_by(void **p, size_t *cap, size_t need, size_t sz, size_t first,
               void *(*re)(void *, size_t))
{
    size_t nc = *cap ? *cap : first;
    void *g;

    if (need <= *cap)
        return 0;
    while (nc < need && nc <= SIZE_MAX / 2)
        nc *= 2;
    if (nc < need || nc > SIZE_MAX / sz)
        return CA_ENOMEM;
    g = re(*p, nc * sz);
    if (g == NULL)
        return CA_ENOMEM;
    *p = g;
    *cap = nc;
    return 0;
}

int cq_grow(void **p, size_t *cap, size_t need, size_t sz)
{
    return cq_grow_by(p, cap, need, sz, 1024, realloc);
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
