/*
 * Per-IP detail (ca_query_ip) and the host graph (ca_query_graph).
 */
#include "query_internal.h"

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
    struct acc *a = cq_ht_get(t, &key, NULL);

    if (a == NULL)
        return CA_ENOMEM;
    cq_acc_add(a, h);
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

    cq_acc_add(is_src ? &d->as_src : &d->as_dst, h);
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
    a = cq_ht_get(&d->peers, &k, NULL);
    if (a == NULL)
        return CA_ENOMEM;
    cq_acc_add(a, h);
    memcpy(&cc, pcc, 2);
    if (count_u64(&d->countries, cc, h) != 0 || count_u64(&d->protos, h->proto_id, h) != 0)
        return CA_ENOMEM;
    d->hours[(cq_fdiv(h->first_ns, 3600 * NS_PER_S) % 24 + 24) % 24]++;
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

    return json_pack("{s:o}", "ip", cq_addr_json((int)k->ver, k->addr));
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
    if (cq_ht_init(&d.peers, sizeof(struct addrkey), sizeof(struct acc), 256) != 0 ||
        cq_ht_init(&d.countries, 8, sizeof(struct acc), 64) != 0 ||
        cq_ht_init(&d.protos, 8, sizeof(struct acc), 64) != 0 ||
        cq_ht_init(&d.names, 8, sizeof(struct acc), 64) != 0) {
        rc = CA_ENOMEM;
        goto out;
    }
    rc = cq_scan(q, 0, 0, ipd_row, &d, NULL);
    if (rc == 0)
        rc = cq_timeline(q, 100, 0, 0, &tl);
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
    cq_ht_free(&d.peers);
    cq_ht_free(&d.countries);
    cq_ht_free(&d.protos);
    cq_ht_free(&d.names);
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

/* What cq_graph_limits sets (tests): the defaults otherwise. */
static size_t graph_trips_max = GRAPH_TRIPS_MAX;
static uint32_t graph_aid_max; /* 0: as many address ids as the workspace has */

void cq_graph_limits(size_t trips_max, uint32_t aid_max)
{
    graph_trips_max = trips_max != 0 ? trips_max : GRAPH_TRIPS_MAX;
    graph_aid_max = aid_max;
}

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
    cq_ht_free(&g->keys);
    memset(g, 0, sizeof(*g));
}

/* A new zeroed node of g; its index in *i. */
static int hg_new(struct hostg *g, const struct addrkey *k, uint32_t *i)
{
    if (cq_grow((void **)&g->nodes, &g->capn, g->n + 1, sizeof(*g->nodes)) != 0)
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
    v = cq_ht_get(&g->keys, &k, &created);
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
    if (g->ntrips >= graph_trips_max ||
        cq_grow((void **)&g->trips, &g->captrips, g->ntrips + 1, sizeof(*g->trips)) != 0) {
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
    if (grouping == GRP_HOST && cq_have_tables(q) && q->aids &&
        (g->max = ca_ws_snap_addr_max(q->s)) <= (16u << 20)) {
        if (graph_aid_max != 0 && g->max > graph_aid_max)
            g->max = graph_aid_max;
        g->idx = calloc((size_t)g->max + 1, sizeof(*g->idx));
        if (g->idx == NULL)
            return CA_ENOMEM;
        rc = cq_scan(q, 0, 0, hg_row, g, NULL);
        if (!g->out_of_range)
            return rc;
        /* an address without an id: start again by address */
        hostg_free(g);
        g->grouping = grouping;
    }
    if (cq_ht_init(&g->keys, sizeof(struct addrkey), 4, 1024) != 0)
        return CA_ENOMEM;
    return cq_scan(q, 0, 0, hg_row, g, NULL);
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

        if ((e = cq_ht_get(&o->edges, &key, NULL)) == NULL)
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
    if (cq_ht_init(&keys, sizeof(struct addrkey), 4, 1024) != 0)
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
        v = cq_ht_get(&keys, &k, &created);
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
    cq_ht_free(&keys);
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
    if (cq_grow((void **)edges, cape, *ne + 1, sizeof(**edges)) != 0)
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
    } else if (rc == 0 && cq_ht_init(&o.edges, 8, sizeof(struct gfb), 1024) != 0) {
        rc = CA_ENOMEM;
    }
    if (rc == 0 && !base->overflow) {
        for (size_t i = 0; i < base->ntrips && rc == 0; i++)
            rc = gout_add(&o, gid[base->trips[i].s], gid[base->trips[i].d], base->trips[i].bytes);
    } else if (rc == 0) {
        rc = cq_scan(q, 0, 0, gout_row, &o, NULL);
    }
    if (rc == 0)
        rc = graph_json(&o, grouping, max_nodes, out);
    free(o.nodes);
    free(o.mat);
    cq_ht_free(&o.edges);
    free(gid);
    hostg_free(&h);
    hostg_free(&byasn);
    return rc;
}
