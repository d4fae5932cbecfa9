/*
 * Group-by aggregation (ca_query_aggregate), the summary of a filter
 * (ca_query_summary) and the values of a group field for completion
 * (ca_query_values); see query.c for the engine they run on.
 */
#include "query_internal.h"

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
    if (cq_ht_get(t, &k, &created) == NULL)
        return -1;
    return created;
}

/* 1 when address id aid is new for side (0 source, 1 destination) of group v (NULL: the total). */
static int aid_distinct(struct agg *g, struct gval *v, int side, uint32_t aid)
{
    uint64_t key;
    int created = 0;

    if (v == NULL)
        return (int)cq_bit_set(g->tbits + (size_t)side * g->words, aid);
    if (v->bits != NULL)
        return (int)cq_bit_set(v->bits + (size_t)side * g->words, aid);
    key = v->ord << 33 | (uint64_t)side << 32 | aid;
    if (cq_ht_get(&g->apairs, &key, &created) == NULL)
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
    cq_acc_add(&g->total, h);
    g->total.src_ips += (uint64_t)aid_distinct(g, NULL, 0, h->src_aid);
    g->total.dst_ips += (uint64_t)aid_distinct(g, NULL, 1, h->dst_aid);
    for (int i = 0; i < na; i++) {
        for (int j = 0; j < nb; j++) {
            struct gkey k;
            struct gval *v;
            int created = 0;

            k.v[0] = a[i];
            k.v[1] = b[j];
            v = cq_ht_get(&g->groups, &k, &created);
            if (v == NULL)
                return CA_ENOMEM;
            if (created) {
                v->ord = g->groups.n;
                if (g->groups.n <= AGG_BITS_GROUPS &&
                    g->bits_words + 2 * g->words <= AGG_BITS_WORDS &&
                    (v->bits = calloc(2 * g->words, sizeof(uint64_t))) != NULL)
                    g->bits_words += 2 * g->words;
            }
            cq_acc_add(&v->a, h);
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

    na = cq_gvals(g->by[0], cap, h, g->master, g->nmaster, a);
    nb = g->nby > 1 ? cq_gvals(g->by[1], cap, h, g->master, g->nmaster, b) : 1;
    if (g->nby == 1)
        memset(b, 0, sizeof(b));
    if (g->aid_mode)
        return agg_row_aidd(g, h, a, na, b, nb);
    cq_acc_add(&g->total, h);
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
            v = cq_ht_get(&g->groups, &k, &created);
            if (v == NULL)
                return CA_ENOMEM;
            if (created)
                v->ord = g->groups.n;
            cq_acc_add(&v->a, h);
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
    v = cq_ht_get(&m->names, key, &created);
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
    if (m.master == NULL || cq_ht_init(&m.names, 64, 4, 256) != 0) {
        free(m.master);
        return CA_ENOMEM;
    }
    rc = ca_ws_snap_str_each(q->s, CA_STR_PROTO, master_each, &m);
    cq_ht_free(&m.names);
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
        if (strlen(cq_metric_names[i]) == n && strncasecmp(cq_metric_names[i], s, n) == 0)
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
    v = cq_ht_get(&g->groups, &k, &created);
    if (v == NULL)
        return CA_ENOMEM;
    if (created)
        v->ord = g->groups.n;
    cq_acc_merge(&v->a, r);
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
        cq_gv_addr(&r->v, addr, ver);
    cq_acc_add(&r->a, h);
}

static int agg_row_aid(void *arg, uint32_t cap, uint32_t seq, const struct ca_hot *h)
{
    struct aidagg *x = arg;
    int f = x->g->by[0];

    cq_acc_add(&x->total, h);
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
    rc = cq_scan(q, 0, 0, agg_row_aid, &x, NULL);
    cq_acc_merge_acc(&g->total, &x.total);
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

    if (cq_par_indexed(q))
        return cq_scan(q, 0, 0, agg_row, g, NULL);
    memset(&h, 0, sizeof(h));
    h.q = q;
    h.nby = g->nby;
    memcpy(h.by, g->by, sizeof(h.by));
    h.master = g->master;
    h.nmaster = g->nmaster;
    if (cq_ht_init(&h.groups, sizeof(struct gkey), sizeof(struct gval), 1024) != 0)
        return CA_ENOMEM;
    rc = cq_scan_par(q, agg_row, g, &h, &split);
    if (rc == 0 && split) {
        cq_acc_merge_acc(&g->total, &h.total);
        HT_EACH(&h.groups, i, s)
        {
            const struct gval *b = (const struct gval *)(const void *)(s + h.groups.voff);
            struct gval *v;
            int created = 0;

            v = cq_ht_get(&g->groups, s + 8, &created);
            if (v == NULL) {
                rc = CA_ENOMEM;
                break;
            }
            if (created)
                v->ord = g->groups.n;
            cq_acc_merge_acc(&v->a, &b->a);
        }
    }
    cq_ht_free(&h.groups);
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
    if (cq_ht_init(&g->groups, sizeof(struct gkey), sizeof(struct gval), 1024) != 0 ||
        (distinct && (cq_ht_init(&g->pairs, sizeof(struct pairkey), 0, 4096) != 0 ||
                      cq_ht_init(&g->tsrc, sizeof(struct pairkey), 0, 4096) != 0 ||
                      cq_ht_init(&g->tdst, sizeof(struct pairkey), 0, 4096) != 0)))
        return CA_ENOMEM;
    if (nby == 1 && !distinct && cq_tab_field(by[0]) && cq_use_tables(q)) {
        rc = cq_ht_presize(&g->groups, cq_tab_rows_max(q, (unsigned)by[0]));
        if (rc == 0)
            rc = cq_tab_each(q, (unsigned)by[0], agg_tab_one, g);
        return rc != 0 ? rc : cq_tab_each(q, GF_L4, cq_total_one, &g->total);
    }
    if (nby == 1 && !distinct && (by[0] == GF_SRC || by[0] == GF_DST || by[0] == GF_IP) &&
        cq_have_tables(q) && q->aids && ca_ws_snap_addr_max(q->s) <= AID_DENSE_MAX)
        return agg_aids(q, g);
    if (by[0] == GF_PROTO_MASTER || (nby > 1 && by[1] == GF_PROTO_MASTER)) {
        rc = build_master(q, &g->master, &g->nmaster);
        if (rc != 0)
            return rc;
    }
    if (distinct && aids_ok && cq_have_tables(q) && q->aids &&
        (g->amax = ca_ws_snap_addr_max(q->s)) <= AID_DENSE_MAX * 32) {
        g->words = g->amax / 64 + 1;
        g->tbits = calloc(2 * g->words, sizeof(uint64_t));
        if (g->tbits == NULL || cq_ht_init(&g->apairs, 8, 0, 4096) != 0)
            return CA_ENOMEM;
        g->aid_mode = 1;
    }
    if (!g->aid_mode && !distinct) {
        rc = agg_par(q, g);
        return rc;
    }
    rc = cq_scan(q, 0, 0, agg_row, g, NULL);
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
    cq_ht_free(&g->apairs);
    cq_ht_free(&g->groups);
    cq_ht_free(&g->pairs);
    cq_ht_free(&g->tsrc);
    cq_ht_free(&g->tdst);
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
        rows[k].order = cq_acc_metric(rows[k].a, order);
        k++;
    }
    HT_EACH(&g->groups, i, s)
    {
        const struct gkey *key = (const struct gkey *)(const void *)(s + 8);

        rows[k].k[0] = &key->v[0];
        rows[k].k[1] = &key->v[1];
        rows[k].a = &((const struct gval *)(const void *)(s + g->groups.voff))->a;
        rows[k].order = cq_acc_metric(rows[k].a, order);
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
    if (by == NULL || parse_list(by, cq_gfield_find, byv, 2, &nby) < 0 || nby == 0) {
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
        json_array_append_new(jby, json_string(cq_gfield_names[byv[i]]));
    for (int i = 0; i < nm; i++)
        json_array_append_new(jm, json_string(cq_metric_names[ms[i]]));
    memset(&other, 0, sizeof(other));
    for (size_t i = 0; i < n; i++) {
        json_t *row, *key;

        if (top > 0 && i >= (size_t)top) {
            other.flows += rows[i].a->flows;
            other.bytes += rows[i].a->bytes;
            other.sent += rows[i].a->sent;
            other.recv += rows[i].a->recv;
            other.packets += rows[i].a->packets;
            other.dur_ns = cq_sat_add(other.dur_ns, rows[i].a->dur_ns);
            /* distinct counts of "other" are not additive; sums are an upper bound */
            other.src_ips += rows[i].a->src_ips;
            other.dst_ips += rows[i].a->dst_ips;
            continue;
        }
        row = cq_acc_json(rows[i].a, ms, nm);
        key = json_array();
        for (int j = 0; j < nby; j++)
            json_array_append_new(key, cq_gv_json(q, byv[j], rows[i].k[j]));
        json_object_set_new(row, "key", key);
        json_array_append_new(arr, row);
    }
    res = json_pack("{s:o, s:o, s:o, s:o, s:o}", "by", jby, "metrics", jm, "rows", arr, "other",
                    top > 0 && n > (size_t)top ? cq_acc_json(&other, ms, nm) : json_null(), "total",
                    cq_acc_json(&g.total, ms, nm));
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
    return cq_ht_get(t, &k, NULL) != NULL ? 0 : CA_ENOMEM;
}

static int sum_row_aid(void *arg, uint32_t cap, uint32_t seq, const struct ca_hot *h)
{
    struct sum *s = arg;

    if (s->a.flows == 0 || h->first_ns < s->first)
        s->first = h->first_ns;
    if (s->a.flows == 0 || h->last_ns > s->last)
        s->last = h->last_ns;
    cq_acc_add(&s->a, h);
    if (h->src_aid <= s->amax && h->dst_aid <= s->amax) {
        s->nsrc += cq_bit_set(s->bits, h->src_aid);
        s->ndst += cq_bit_set(s->bits + s->words, h->dst_aid);
        s->nips += cq_bit_set(s->bits + 2 * s->words, h->src_aid);
        s->nips += cq_bit_set(s->bits + 2 * s->words, h->dst_aid);
    }
    if (cap != s->lastcap) {
        s->lastcap = cap;
        if (cq_ht_get(&s->caps, &cap, NULL) == NULL)
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
    cq_acc_add(&s->a, h);
    if (set_addr(&s->src, h->ip_version, h->src) != 0 ||
        set_addr(&s->dst, h->ip_version, h->dst) != 0 ||
        set_addr(&s->ips, h->ip_version, h->src) != 0 ||
        set_addr(&s->ips, h->ip_version, h->dst) != 0 || cq_ht_get(&s->caps, &cap, NULL) == NULL)
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

    rc = cq_tab_each(q, GF_L4, cq_total_one, &s->a);
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
                    cnt[side] += cq_bit_set(bits + (size_t)side * words, id);
                    cnt[2] += cq_bit_set(bits + 2 * words, id);
                }
            }
        }
        free(bits);
        s->src.n = cnt[0];
        s->dst.n = cnt[1];
        s->ips.n = cnt[2];
    } else if (rc == 0) {
        if (cq_ht_presize(&s->src, cq_tab_rows(q, GF_SRC)) != 0 ||
            cq_ht_presize(&s->dst, cq_tab_rows(q, GF_DST)) != 0 ||
            cq_ht_presize(&s->ips, cq_tab_rows(q, GF_IP)) != 0)
            return CA_ENOMEM;
        rc = cq_tab_each(q, GF_SRC, sum_src_one, s);
        if (rc == 0)
            rc = cq_tab_each(q, GF_DST, sum_dst_one, s);
        if (rc == 0)
            rc = cq_tab_each(q, GF_IP, sum_ip_one, s);
    }
    for (size_t i = 0, any = 0; rc == 0 && i < n; i++) {
        if (c[i].flows == 0)
            continue;
        if (!any || c[i].first_ns < s->first)
            s->first = c[i].first_ns;
        if (!any || c[i].last_ns > s->last)
            s->last = c[i].last_ns;
        any = 1;
        if (cq_ht_get(&s->caps, &c[i].id, NULL) == NULL)
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
    if (cq_par_indexed(q)) {
        rc = cq_scan(q, 0, 0, sum_row_aid, s, NULL);
        goto done;
    }
    t.bits = calloc(3 * t.words, sizeof(uint64_t));
    if (t.bits == NULL || cq_ht_init(&t.caps, sizeof(uint32_t), 0, 64) != 0) {
        free(t.bits);
        return CA_ENOMEM;
    }
    rc = cq_scan_par(q, sum_row_aid, s, &t, &split);
    if (rc == 0 && split) {
        const uint8_t *sl;

        if (t.a.flows != 0) {
            if (s->a.flows == 0 || t.first < s->first)
                s->first = t.first;
            if (s->a.flows == 0 || t.last > s->last)
                s->last = t.last;
        }
        cq_acc_merge_acc(&s->a, &t.a);
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
            if (rc == 0 && cq_ht_get(&s->caps, sl + 8, NULL) == NULL)
                rc = CA_ENOMEM;
        }
    }
    free(t.bits);
    cq_ht_free(&t.caps);
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
    if (cq_ht_init(&s.src, sizeof(struct addrkey), 0, 4096) != 0 ||
        cq_ht_init(&s.dst, sizeof(struct addrkey), 0, 4096) != 0 ||
        cq_ht_init(&s.ips, sizeof(struct addrkey), 0, 4096) != 0 ||
        cq_ht_init(&s.caps, sizeof(uint32_t), 0, 64) != 0) {
        rc = CA_ENOMEM;
        goto out;
    }
    if (cq_use_tables(q)) {
        rc = sum_tables(q, &s);
    } else if (cq_have_tables(q) && q->aids) {
        rc = sum_aids(q, &s);
    } else {
        rc = cq_scan(q, 0, 0, sum_row, &s, NULL);
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
    cq_ht_free(&s.src);
    cq_ht_free(&s.dst);
    cq_ht_free(&s.ips);
    cq_ht_free(&s.caps);
    return rc;
}

/* ---- values (filter bar completion) -------------------------------------- */

int ca_query_values(struct ca_query *q, const char *field, const char *prefix, size_t limit,
                    json_t **out, char *err, size_t errlen, const char **param)
{
    int f = field != NULL ? cq_gfield_find(field, strlen(field)) : -1;
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
        json_t *v = cq_gv_json(q, f, rows[i].k[0]);
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
    *out = json_pack("{s:s, s:o}", "field", cq_gfield_names[f], "values", arr);
    arr = NULL;
    if (*out == NULL)
        rc = CA_ENOMEM;
out:
    json_decref(arr);
    free(rows);
    agg_free(&g);
    return rc;
}
