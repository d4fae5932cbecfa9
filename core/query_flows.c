/*
 * Flows pages (ca_query_flows): sort keys, cursors, and the bounded heap
 * of the best rows after the cursor.
 */
#include "query_internal.h"

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
        sk_num(k, ca_hot_duration(h));
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

    if (cq_par_indexed(q))
        return cq_scan(q, 0, 0, page_row, p, NULL);
    t.n = 0;
    t.total = 0;
    t.heap = malloc(t.k * sizeof(*t.heap));
    if (t.heap == NULL)
        return CA_ENOMEM;
    rc = cq_scan_par(q, page_row, p, &t, &split);
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

/* Counting the matches of a filter (a page's total) runs on two threads (cq_scan_par). */
struct cwork {
    const struct ca_filter *f;
    const struct cchunk *c;
    size_t from, to;
    uint64_t count;
};

static void *count_work(void *arg)
{
    struct cwork *w = arg;

    uint32_t sel[SEL_BATCH];

    for (size_t i = w->from; i < w->to; i++) {
        const struct cchunk *c = &w->c[i];

        for (size_t b = 0; b < c->n; b += SEL_BATCH)
            w->count +=
                ca_filter_select(w->f, c->h + b, c->n - b < SEL_BATCH ? c->n - b : SEL_BATCH,
                                 c->cap, c->cap_start, sel);
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

    rc = cq_chunks_collect(q, &cc, &half, &rows);
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
    cq_chunks_free(&cc);
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
        size_t len, n, walked = 0;
        uint32_t parts;
        struct ca_filter_row row = {NULL, c[i].id, c[i].first_ns};

        if (all)
            p->total += c[i].flows;
        parts = ca_ws_snap_parts(q->s, c[i].id);
        /* each part's flows in order: a run of its own, walked until its
         * next flow cannot enter the page */
        for (uint32_t part = 0; part < parts && rc == 0; part++) {
            rc = ca_ws_snap_capagg_part(q->s, c[i].id, part, kind, &d, &len);
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

                if (!all && walked++ >= WALK_MAX) {
                    *gave_up = 1;
                    return 0;
                }
                memcpy(&seq, (const char *)d + (p->desc ? j : n - 1 - j) * sizeof(seq),
                       sizeof(seq));
                rc = ca_ws_snap_hot(q->s, c[i].id, seq, &h);
                if (rc != 0)
                    break;
                make_key(p->sf, &p->rk, c[i].id, seq, &h, &k);
                if (p->n == p->k) {
                    worse = memcmp(k.b, p->heap[0].b, 24);
                    if (p->desc ? worse < 0 : worse > 0)
                        break; /* every later flow of this part is worse still */
                }
                row.h = &h;
                if (!all && !ca_filter_match(q->f, &row))
                    continue;
                if (p->has_cursor && key_cmp(p, &k, &p->cursor) <= 0)
                    continue;
                page_put(p, &k);
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
    if ((p.sf == SF_BYTES || p.sf == SF_FIRST) && cq_have_tables(q) && !q->has_ip &&
        !cq_address_filter(q)) {
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
