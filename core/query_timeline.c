/*
 * Time histograms (ca_query_timeline): the bin size from the filtered
 * span, per-minute tables when unfiltered, scans otherwise.
 */
#include "query_internal.h"

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
            cq_grow((void **)&s->keep, &s->capkeep, s->nkeep + 1, sizeof(*s->keep)) != 0) {
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
        cq_acc_add(&t->bins[i], h);
    return 0;
}

static int tl_tab_one(void *arg, const struct tabrec *r)
{
    struct tl *t = arg;
    int64_t m = (int64_t)cq_gv_get_u64(&r->k) * 60 * NS_PER_S, i;

    if (m < t->start)
        return 0;
    i = (m - t->start) / t->bin;
    if (i >= 0 && (size_t)i < t->n)
        cq_acc_merge(&t->bins[i], r);
    return 0;
}

/* The span pass on two threads: the second half's kept rows follow the first's. */
static int span_scan(struct ca_query *q, struct span *sp)
{
    struct span t = {0, 0, 0, NULL, 0, 0, 0};
    int rc, split = 0;

    rc = cq_scan_par(q, span_row, sp, &t, &split);
    if (rc == 0 && split && t.any) {
        if (!sp->any || t.first < sp->first)
            sp->first = t.first;
        if (!sp->any || t.last > sp->last)
            sp->last = t.last;
        sp->any = 1;
        if (t.overflow || sp->overflow || sp->nkeep + t.nkeep > TL_KEEP_MAX ||
            cq_grow((void **)&sp->keep, &sp->capkeep, sp->nkeep + t.nkeep, sizeof(*sp->keep)) !=
                0) {
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
    int64_t i = cq_fdiv(h->first_ns, 60 * NS_PER_S) - m->m0;

    if (i < 0 || (uint64_t)i >= m->n)
        m->out = 1;
    else
        cq_acc_add(&m->a[i], h);
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
    m->m0 = cq_fdiv(lo, 60 * NS_PER_S);
    if (cq_fdiv(hi, 60 * NS_PER_S) - m->m0 + 1 > (int64_t)MINS_MAX)
        return 0;
    m->n = (size_t)(cq_fdiv(hi, 60 * NS_PER_S) - m->m0 + 1);
    t = *m;
    m->a = calloc(m->n, sizeof(*m->a));
    if (m->a == NULL)
        return CA_ENOMEM;
    if (!cq_par_indexed(q) && (t.a = calloc(t.n, sizeof(*t.a))) == NULL) {
        free(m->a);
        m->a = NULL;
        return CA_ENOMEM;
    }
    rc =
        t.a != NULL ? cq_scan_par(q, mins_row, m, &t, &split) : cq_scan(q, 0, 0, mins_row, m, NULL);
    if (rc == 0 && split) {
        for (size_t i = 0; i < m->n; i++)
            if (t.a[i].flows != 0)
                cq_acc_merge_acc(&m->a[i], &t.a[i]);
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

    if (cq_par_indexed(q))
        return cq_scan(q, 0, 0, tl_row, t, NULL);
    u.bins = calloc(u.n, sizeof(*u.bins));
    if (u.bins == NULL)
        return CA_ENOMEM;
    rc = cq_scan_par(q, tl_row, t, &u, &split);
    for (size_t i = 0; rc == 0 && split && i < t->n; i++)
        cq_acc_merge_acc(&t->bins[i], &u.bins[i]);
    free(u.bins);
    return rc;
}

/* Timeline of what q matches (plus [from,to]); *out is the answer object. */
int cq_timeline(struct ca_query *q, int bins, int64_t from, int64_t to, json_t **out)
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
    t.start = cq_fdiv(sp.first, t.bin) * t.bin;
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
    if (from == 0 && to == 0 && t.bin >= 60 * NS_PER_S && cq_use_tables(q)) {
        rc = cq_tab_each(q, TAB_MINUTE, tl_tab_one, &t);
    } else if (mn.a != NULL && t.bin >= 60 * NS_PER_S) {
        rc = 0;
        for (size_t i = 0; i < mn.n; i++) {
            int64_t m = (mn.m0 + (int64_t)i) * 60 * NS_PER_S, b;

            if (mn.a[i].flows == 0 || m + 60 * NS_PER_S <= t.start)
                continue;
            b = (m - t.start) / t.bin;
            if (b >= 0 && (size_t)b < t.n)
                cq_acc_merge_acc(&t.bins[b], &mn.a[i]);
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
    return cq_timeline(q, bins, from_ns, to_ns, out);
}
