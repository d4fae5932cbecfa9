/*
 * The per-capture tables' builder (see query.h, ca_capagg): fed each
 * flow of a capture during its import, it writes what the queries read
 * instead of scanning the flows (query_internal.h, at TAB_MINUTE): sums
 * by field value, by minute, by address, the flows in two orders, and
 * each address's flows.
 */
#include <stdlib.h>
#include <string.h>

#include "bigmem.h" /* the builder's arrays */
#include "keysort.h"
#include "query_internal.h"

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

/* cq_grow() for the builder's arrays: huge-page maps, zeroed beyond the old size. */
static int big_grow(void **p, size_t *cap, size_t need, size_t sz)
{
    return cq_grow_by(p, cap, need, sz, 16384, ca_big_realloc);
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
    h = (uint32_t)cq_hash_bytes(&k, sizeof(k));
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
    return cq_ht_get_k(t, key, sizeof(*key), NULL);
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
            cq_gv_u64(&v[0], si); /* flows from an address to itself, by address index */
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
            cq_gv_u64(&key, i);
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

static int addr_tie(const void *x, const void *y, void *arg)
{
    const struct addrkey *k = arg;
    const struct ca_keyord *a = x, *b = y;

    return memcmp(k[a->idx].addr, k[b->idx].addr, 16);
}

/*
 * The address indexes in (version, address) order, the order of their
 * keys in the store: a radix sort on the version and the first 7 address
 * bytes (all of an IPv4 address), then a comparison sort of each run of
 * equal prefixes (IPv6 addresses of one /56).  NULL when out of memory.
 */
static struct ca_keyord *addr_sorted(const struct ca_capagg *a)
{
    size_t n = a->nakeys;
    struct ca_keyord *o = ca_big_alloc((n + 1) * sizeof(*o));

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
    o = ca_keyord_sort(o, n);
    if (o != NULL)
        ca_keyord_ties(o, n, addr_tie, a->akeys);
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
    struct ca_keyord *o = NULL;
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
        o = ca_keyord_sort(o, n);
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

int ca_capagg_emit_part(struct ca_capagg *a, int (*reserve)(void *, unsigned, size_t, void **),
                        int (*addr)(void *, int, const uint8_t[16], const uint32_t *, size_t),
                        void *arg)
{
    uint32_t *seqs = NULL, *off = NULL;
    struct ca_keyord *ord = NULL;
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
