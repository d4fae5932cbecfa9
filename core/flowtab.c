/*
 * Flow table (see flowtab.h).  Entries live in a chained hash table keyed
 * on the normalised (vlan, ip version, l4, address pair, port pair, echo
 * id), and on one of three lists in order of last activity (TCP, other,
 * ended; see expire) so that expiry only looks at list heads.  Statistics are kept
 * relative to the first packet's source ("side A") and swapped into
 * client/server order when the flow is emitted, because who the client is
 * may only become clear later (a SYN/ACK seen after a lost SYN).
 */
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bigmem.h"
#include "ca_error.h"
#include "dpi.h"
#include "flowtab.h"
#include "geo.h"
#include "ipfrag.h"
#include "pdns.h"

/* Flows handed to the sink at once.  The store keeps a hot chunk per batch
 * and gathers batches into commits of up to 32,768 flows; a batch of 4,096
 * (6 MB of struct ca_flow) stays in the caches from emit to the store's
 * encoding, where 16,384 (23 MB) did not: 3% faster imports, 17 MB less. */
#define BATCH 4096
#define ENDED_IDLE_SEC 10
#define FRAG_SLOTS 4096

enum { L_TCP, L_OTHER, L_ENDED, L_COUNT };

/*
 * A live flow keeps only the fields of struct ca_flow that change while it
 * lives (the key is in struct fent; names, mostly empty, in a small packed
 * string block), about a sixth of a struct ca_flow: the live-flow limit
 * then costs tens of megabytes, not hundreds.  emit() builds the ca_flow.
 * What a packet updates comes first, what only emit reads last.
 */
struct flive {
    int64_t first_ns, last_ns;
    uint8_t cli_mac[6], srv_mac[6]; /* side A's, side B's */
    uint8_t tcp_flags[2];
    uint8_t icmp_type, icmp_code;
    uint64_t pkts[2], bytes[2], payload[2], retrans_bytes[2], gap_bytes[2];
    uint64_t first_pkt_offset, first_pkt_index;
    uint64_t risk;
    uint16_t l7_master, l7_app, category;
};

/* The strings of a live flow, in their packed order. */
enum fstr { S_ENCAP, S_DNS, S_L7, S_CAT, S_HOST, S_UA, S_TLSVER, S_RISKS, S_COUNT };

/* Bytes of a flow's strings kept in its entry (most flows' fit: no malloc
 * and free per flow, and emit finds them beside the counters). */
#define SBUF 128

/*
 * A flow entry, 64-byte aligned: what a packet of the flow reads or
 * updates (chain link, key, TCP state, counters) is in its first three
 * cache lines (the engine prefetches those), the rest after.
 */
struct fent {
    alignas(64) struct fent *hnext;
    uint32_t hash;
    /* key, side A first */
    uint8_t ver, l4;
    uint16_t vlan;
    uint16_t icmp_id;
    uint16_t a_port, b_port;
    /* state */
    uint8_t syn_from;    /* 0 none, 1 A, 2 B: SYN without ACK */
    uint8_t synack_from; /* 0 none, 1 A, 2 B */
    uint8_t a_ip[16], b_ip[16];
    uint8_t echo_from; /* sender of an echo request */
    uint8_t handshake; /* final ACK of the handshake seen */
    uint8_t fin_mask;  /* bit 0 A sent FIN, bit 1 B */
    uint8_t rst;
    uint8_t ended;
    uint8_t list;
    uint8_t seq_valid[2];
    uint32_t next_seq[2];
    struct ca_dpi_flow *dpi;
    struct flive f; /* per-direction arrays relative to side A */
    struct fent *prev, *next;
    int64_t pos_ns; /* last_ns when placed in its list */
    char *strs;     /* enum fstr strings (sbuf or malloc'd); NULL: all empty */
    char sbuf[SBUF];
};

#define FENT_HOT 192 /* bytes of an entry a packet touches */
_Static_assert(offsetof(struct fent, f.gap_bytes) + sizeof(uint64_t[2]) <= FENT_HOT,
               "a packet's fields of a flow entry span three cache lines");

/*
 * Flow entries are carved from slabs and recycled through a free list.  A
 * slab is 2 MiB from ca_big_alloc (huge pages): entries of live flows are
 * scattered reads, and on 4 KiB pages (a 300 KB malloc is an mmap of its
 * own) each would also miss the TLB.
 */
#define FSLAB_N ((((size_t)2 << 20) - 128) / sizeof(struct fent))
struct fslab {
    struct fslab *next;
    struct fent e[FSLAB_N];
};

struct frag_ent {
    uint8_t used, ver, l4;
    uint32_t id;
    uint8_t src[16], dst[16];
    uint16_t sport, dport;
};

struct ca_flowtab {
    struct ca_flowtab_conf c;
    struct fent **buckets;
    size_t nbuckets;
    size_t count;
    struct fent *head[L_COUNT], *tail[L_COUNT];
    int64_t idle_ns[L_COUNT];
    struct ca_flow *batch;   /* BATCH */
    struct ca_flow *scratch; /* DPI results of a flow whose detection ended */
    size_t nbatch;
    uint64_t emitted;
    uint64_t frag_joined;
    uint64_t evicted;
    struct ca_ipfrag *reasm; /* NULL: no reassembly (out of memory at creation) */
    struct fslab *slabs;     /* the newest first; slab_used entries of it handed out */
    size_t slab_used;
    struct fent *freel; /* freed entries, linked by hnext */
    struct frag_ent frags[FRAG_SLOTS];
};

int ca_flowtab_new(const struct ca_flowtab_conf *c, struct ca_flowtab **out)
{
    struct ca_flowtab *t;

    *out = NULL;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return CA_ENOMEM;
    t->c = *c;
    if (t->c.max_live == 0)
        t->c.max_live = CA_FLOWTAB_LIVE_DEFAULT;
    /*
     * Buckets: twice the live flows expected (a flow per 2 KiB of capture,
     * at most the live limit), so a big import does not rehash every live
     * flow five times over (each move a cache miss) nor fill the doubled
     * arrays' fresh pages; a small one starts at 16,384.
     */
    {
        uint64_t want = c->size_hint / 2048;
        if (want > t->c.max_live)
            want = t->c.max_live;
        t->nbuckets = 1u << 14;
        while (t->nbuckets < 2 * want)
            t->nbuckets *= 2;
    }
    t->buckets = ca_big_alloc(t->nbuckets * sizeof(*t->buckets));
    t->batch = ca_big_alloc(BATCH * sizeof(*t->batch)); /* tens of MB: huge pages */
    t->scratch = malloc(sizeof(*t->scratch));
    t->reasm = ca_ipfrag_new();
    if (t->buckets == NULL || t->batch == NULL || t->scratch == NULL || t->reasm == NULL) {
        ca_ipfrag_free(t->reasm);
        free(t->scratch);
        ca_big_free(t->batch);
        ca_big_free(t->buckets);
        free(t);
        return CA_ENOMEM;
    }
    t->idle_ns[L_TCP] = (int64_t)(c->tcp_idle_sec ? c->tcp_idle_sec : 300) * 1000000000;
    t->idle_ns[L_OTHER] = (int64_t)(c->udp_idle_sec ? c->udp_idle_sec : 120) * 1000000000;
    t->idle_ns[L_ENDED] = (int64_t)ENDED_IDLE_SEC * 1000000000;
    if (t->idle_ns[L_ENDED] > t->idle_ns[L_TCP])
        t->idle_ns[L_ENDED] = t->idle_ns[L_TCP];
    *out = t;
    return 0;
}

static void list_del(struct ca_flowtab *t, struct fent *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        t->head[e->list] = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        t->tail[e->list] = e->prev;
    e->prev = e->next = NULL;
}

static void list_add_tail(struct ca_flowtab *t, struct fent *e, uint8_t l)
{
    e->list = l;
    e->pos_ns = e->f.last_ns;
    e->next = NULL;
    e->prev = t->tail[l];
    if (t->tail[l])
        t->tail[l]->next = e;
    else
        t->head[l] = e;
    t->tail[l] = e;
}

static void hash_del(struct ca_flowtab *t, struct fent *e)
{
    struct fent **pp = &t->buckets[e->hash & (t->nbuckets - 1)];

    while (*pp != NULL && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp == e)
        *pp = e->hnext;
    t->count--;
}

/* A zeroed entry, or NULL. */
static struct fent *fent_new(struct ca_flowtab *t)
{
    struct fent *e = t->freel;

    if (e != NULL) {
        t->freel = e->hnext;
    } else {
        if (t->slabs == NULL || t->slab_used == FSLAB_N) {
            struct fslab *s = ca_big_alloc(sizeof(*s));
            if (s == NULL)
                return NULL;
            s->next = t->slabs;
            t->slabs = s;
            t->slab_used = 0;
        }
        e = &t->slabs->e[t->slab_used++];
    }
    memset(e, 0, offsetof(struct fent, sbuf)); /* sbuf is written before it is read */
    return e;
}

static void fent_free(struct ca_flowtab *t, struct fent *e)
{
    if (e == NULL)
        return;
    ca_dpi_flow_free(t->c.dpi, e->dpi);
    if (e->strs != e->sbuf)
        free(e->strs);
    e->dpi = NULL;
    e->strs = NULL;
    e->hnext = t->freel;
    t->freel = e;
}

/* Writes the packed form of v (lengths len) to b. */
static void strs_pack(char *b, const uint16_t len[S_COUNT], const char *const v[S_COUNT])
{
    char *p = b + S_COUNT * sizeof(uint16_t);

    memcpy(b, len, S_COUNT * sizeof(uint16_t));
    for (int i = 0; i < S_COUNT; i++) {
        if (len[i] > 0)
            memcpy(p, v[i], len[i]);
        p[len[i]] = '\0';
        p += len[i] + 1;
    }
}

/*
 * e->strs: S_COUNT uint16_t lengths, then the strings in enum fstr order,
 * each NUL-terminated (NULL: all empty), in e->sbuf when they fit, else
 * malloc'd.  Packs v[S_COUNT] (NULL = empty; they may point into the
 * current e->strs) into it.  0, or CA_ENOMEM.
 */
static int strs_set(struct fent *e, const char *const v[S_COUNT], const size_t *known)
{
    uint16_t len[S_COUNT];
    size_t total = sizeof(len), any = 0;

    for (int i = 0; i < S_COUNT; i++) {
        size_t l = known != NULL ? known[i] : v[i] != NULL ? strlen(v[i]) : 0;
        if (l > 65535)
            l = 65535;
        len[i] = (uint16_t)l;
        total += l + 1;
        any |= l;
    }
    if (any == 0) {
        if (e->strs != e->sbuf)
            free(e->strs);
        e->strs = NULL;
        return 0;
    }
    if (total <= SBUF) {
        char tmp[SBUF]; /* v may point into sbuf */
        strs_pack(tmp, len, v);
        if (e->strs != e->sbuf)
            free(e->strs);
        memcpy(e->sbuf, tmp, total);
        e->strs = e->sbuf;
    } else {
        char *b = malloc(total);
        if (b == NULL)
            return CA_ENOMEM;
        strs_pack(b, len, v);
        if (e->strs != e->sbuf)
            free(e->strs);
        e->strs = b;
    }
    return 0;
}

/* v[i] = the flow's string i ("" when none), n[i] its length. */
static void strs_get(const struct fent *e, const char *v[S_COUNT], size_t n[S_COUNT])
{
    uint16_t len[S_COUNT];
    const char *p;

    if (e->strs == NULL) {
        for (int i = 0; i < S_COUNT; i++) {
            v[i] = "";
            n[i] = 0;
        }
        return;
    }
    memcpy(len, e->strs, sizeof(len));
    p = e->strs + sizeof(len);
    for (int i = 0; i < S_COUNT; i++) {
        v[i] = p;
        n[i] = len[i];
        p += len[i] + 1;
    }
}

static void copy_field(char *dst, size_t n, const char *src)
{
    size_t l = strnlen(src, n - 1);

    memcpy(dst, src, l);
    dst[l] = '\0';
}

/* The same for a string of known length l. */
static void copy_known(char *dst, size_t n, const char *src, size_t l)
{
    if (l > n - 1)
        l = n - 1;
    memcpy(dst, src, l);
    dst[l] = '\0';
}

/* Keeps the DPI result of t->scratch in e (its detection is over). */
static int keep_dpi(struct fent *e, const struct ca_flow *r)
{
    const char *v[S_COUNT];
    size_t n[S_COUNT];

    strs_get(e, v, n);
    e->f.l7_master = r->l7_master;
    e->f.l7_app = r->l7_app;
    e->f.category = r->category;
    e->f.risk = r->risk;
    v[S_L7] = r->l7_name;
    v[S_CAT] = r->category_name;
    v[S_HOST] = r->host;
    v[S_UA] = r->user_agent;
    v[S_TLSVER] = r->tls_version;
    v[S_RISKS] = r->risks;
    n[S_L7] = strlen(r->l7_name);
    n[S_CAT] = strlen(r->category_name);
    n[S_HOST] = strlen(r->host);
    n[S_UA] = strlen(r->user_agent);
    n[S_TLSVER] = strlen(r->tls_version);
    n[S_RISKS] = strlen(r->risks);
    return strs_set(e, v, n);
}

void ca_flowtab_free(struct ca_flowtab *t)
{
    if (t == NULL)
        return;
    for (int l = 0; l < L_COUNT; l++) {
        struct fent *e = t->head[l], *n;
        for (; e != NULL; e = n) {
            n = e->next;
            fent_free(t, e);
        }
    }
    while (t->slabs != NULL) {
        struct fslab *s = t->slabs;
        t->slabs = s->next;
        ca_big_free(s);
    }
    ca_dpi_trim(t->c.dpi);
    ca_ipfrag_free(t->reasm);
    free(t->scratch);
    ca_big_free(t->batch);
    ca_big_free(t->buckets);
    free(t);
}

static int batch_flush(struct ca_flowtab *t)
{
    int r = 0;

    if (t->nbatch > 0 && t->c.sink != NULL)
        r = t->c.sink(t->c.sink_arg, t->batch, t->nbatch);
    t->nbatch = 0;
    return r;
}

static void swap_u64(uint64_t v[2])
{
    uint64_t x = v[0];
    v[0] = v[1];
    v[1] = x;
}

/* Finalises e into the batch (client/server order, DPI, geo, state). */
static int emit(struct ca_flowtab *t, struct fent *e)
{
    struct ca_flow *f = &t->batch[t->nbatch];
    int client_b = 0; /* 1 when side B is the client */
    const char *v[S_COUNT];
    size_t sl[S_COUNT];

    memset(f, 0, sizeof(*f));
    f->capture_id = t->c.capture_id;
    f->ip_version = e->ver;
    f->l4 = e->l4;
    f->vlan = e->vlan;
    f->icmp_id = e->icmp_id;
    f->ts_nsec = t->c.ts_nsec;
    f->icmp_type = e->f.icmp_type;
    f->icmp_code = e->f.icmp_code;
    memcpy(f->cli_mac, e->f.cli_mac, 6);
    memcpy(f->srv_mac, e->f.srv_mac, 6);
    memcpy(f->tcp_flags, e->f.tcp_flags, 2);
    f->first_ns = e->f.first_ns;
    f->last_ns = e->f.last_ns;
    memcpy(f->pkts, e->f.pkts, sizeof(f->pkts));
    memcpy(f->bytes, e->f.bytes, sizeof(f->bytes));
    memcpy(f->payload, e->f.payload, sizeof(f->payload));
    memcpy(f->retrans_bytes, e->f.retrans_bytes, sizeof(f->retrans_bytes));
    memcpy(f->gap_bytes, e->f.gap_bytes, sizeof(f->gap_bytes));
    f->l7_master = e->f.l7_master;
    f->l7_app = e->f.l7_app;
    f->category = e->f.category;
    f->risk = e->f.risk;
    f->first_pkt_offset = e->f.first_pkt_offset;
    f->first_pkt_index = e->f.first_pkt_index;
    strs_get(e, v, sl);
    copy_known(f->encap, sizeof(f->encap), v[S_ENCAP], sl[S_ENCAP]);
    copy_known(f->dns_name, sizeof(f->dns_name), v[S_DNS], sl[S_DNS]);
    copy_known(f->l7_name, sizeof(f->l7_name), v[S_L7], sl[S_L7]);
    copy_known(f->category_name, sizeof(f->category_name), v[S_CAT], sl[S_CAT]);
    copy_known(f->host, sizeof(f->host), v[S_HOST], sl[S_HOST]);
    copy_known(f->user_agent, sizeof(f->user_agent), v[S_UA], sl[S_UA]);
    copy_known(f->tls_version, sizeof(f->tls_version), v[S_TLSVER], sl[S_TLSVER]);
    copy_known(f->risks, sizeof(f->risks), v[S_RISKS], sl[S_RISKS]);
    if (e->syn_from)
        client_b = e->syn_from == 2;
    else if (e->synack_from)
        client_b = e->synack_from == 1;
    else if (e->echo_from)
        client_b = e->echo_from == 2;
    else if (e->a_port != e->b_port && e->a_port != 0 && e->b_port != 0)
        client_b = e->b_port > e->a_port;
    if (client_b) {
        memcpy(f->cli_ip, e->b_ip, 16);
        memcpy(f->srv_ip, e->a_ip, 16);
        f->cli_port = e->b_port;
        f->srv_port = e->a_port;
        memcpy(f->cli_mac, e->f.srv_mac, 6);
        memcpy(f->srv_mac, e->f.cli_mac, 6);
        swap_u64(f->pkts);
        swap_u64(f->bytes);
        swap_u64(f->payload);
        swap_u64(f->retrans_bytes);
        swap_u64(f->gap_bytes);
        uint8_t x = f->tcp_flags[0];
        f->tcp_flags[0] = f->tcp_flags[1];
        f->tcp_flags[1] = x;
        const char *n = ca_pdns_lookup(t->c.pdns, e->ver, e->a_ip);
        if (n != NULL) {
            strncpy(f->dns_name, n, sizeof(f->dns_name) - 1);
            f->dns_name[sizeof(f->dns_name) - 1] = '\0';
        } else {
            f->dns_name[0] = '\0';
        }
    } else {
        memcpy(f->cli_ip, e->a_ip, 16);
        memcpy(f->srv_ip, e->b_ip, 16);
        f->cli_port = e->a_port;
        f->srv_port = e->b_port;
    }
    if (e->l4 == 6) {
        if (e->rst)
            f->tcp_state = CA_TCP_RESET;
        else if (!e->syn_from && !e->synack_from)
            f->tcp_state = CA_TCP_MIDSTREAM;
        else if (!e->handshake)
            f->tcp_state = CA_TCP_INCOMPLETE;
        else if (e->fin_mask == 3)
            f->tcp_state = CA_TCP_CLOSED;
        else
            f->tcp_state = CA_TCP_ESTABLISHED;
    } else {
        f->tcp_state = CA_TCP_NONE;
    }
    if (t->c.dpi != NULL && e->dpi != NULL) {
        ca_dpi_result(t->c.dpi, e->dpi, f);
    }
    if (f->l7_name[0] == '\0')
        strcpy(f->l7_name, "Unknown");
    ca_geo_lookup(t->c.geo, f->ip_version, f->cli_ip, f->cli_cc, &f->cli_asn);
    ca_geo_lookup(t->c.geo, f->ip_version, f->srv_ip, f->srv_cc, &f->srv_asn);
    t->nbatch++;
    t->emitted++;
    if (t->nbatch == BATCH)
        return batch_flush(t);
    return 0;
}

/*
 * Flows leave from the heads of the lists (expiry, eviction at the live
 * limit), entries that no packet touched for long: cold.  When one goes,
 * the one after it in its list, likely the next to go, is prefetched
 * (entry, hash bucket, DPI state), and the one after that (entry), so
 * those misses overlap the packets until then.  Hints only.
 */
static void prefetch_next_out(const struct ca_flowtab *t, const struct fent *e)
{
    const struct fent *n1 = e->next, *n2;

    if (n1 == NULL)
        return;
    __builtin_prefetch(&t->buckets[n1->hash & (t->nbuckets - 1)]);
    if (n1->dpi != NULL)
        ca_dpi_prefetch(n1->dpi);
    for (size_t i = 64; i < sizeof(*n1); i += 64)
        __builtin_prefetch((const char *)n1 + i);
    n2 = n1->next;
    if (n2 != NULL) {
        __builtin_prefetch(n2);
        __builtin_prefetch((const char *)n2 + offsetof(struct fent, prev));
    }
}

static int expire_one(struct ca_flowtab *t, struct fent *e)
{
    int r;

    prefetch_next_out(t, e);
    list_del(t, e);
    hash_del(t, e);
    r = emit(t, e);
    fent_free(t, e);
    return r;
}

/* Puts e, active since it was placed, at its list's tail. */
static void list_refresh(struct ca_flowtab *t, struct fent *e)
{
    uint8_t l = e->list;

    list_del(t, e);
    list_add_tail(t, e, l);
}

/*
 * A packet does not move its flow in the list (that would touch two more
 * flows' cache lines a packet); a list is in order of pos_ns, and a flow
 * at the head that has been active since it was placed goes to the tail
 * when expiry or eviction looks at it.
 */
static int expire(struct ca_flowtab *t, int64_t now)
{
    for (int l = 0; l < L_COUNT; l++) {
        while (t->head[l] != NULL && t->head[l]->pos_ns + t->idle_ns[l] < now) {
            struct fent *e = t->head[l];
            int r;

            if (e->f.last_ns + t->idle_ns[l] >= now) {
                list_refresh(t, e);
                continue;
            }
            r = expire_one(t, e);
            if (r != 0)
                return r;
        }
    }
    return 0;
}

static int grow(struct ca_flowtab *t)
{
    size_t nb = t->nbuckets * 2;
    struct fent **b = ca_big_alloc(nb * sizeof(*b));

    if (b == NULL)
        return CA_ENOMEM;
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct fent *e = t->buckets[i], *n;
        for (; e != NULL; e = n) {
            n = e->hnext;
            e->hnext = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
        }
    }
    ca_big_free(t->buckets);
    t->buckets = b;
    t->nbuckets = nb;
    return 0;
}

static uint32_t fnv(uint32_t h, const void *p, size_t n)
{
    const uint8_t *b = p;

    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 16777619u;
    return h;
}

static uint64_t mix64(uint64_t h, uint64_t w)
{
    h ^= w;
    h *= 0x9e3779b97f4a7c15ULL;
    return h ^ (h >> 32);
}

/* The flow key's hash, the same for both directions: a few word steps (a
 * byte-by-byte hash of the 40 key bytes was a chain of 40 multiplies per
 * packet). */
static uint32_t key_hash(const struct ca_pkt_info *pi, uint16_t sport, uint16_t dport,
                         uint16_t echo_id)
{
    const uint8_t *lo_ip = pi->src, *hi_ip = pi->dst;
    uint16_t lo_p = sport, hi_p = dport;
    int c = memcmp(pi->src, pi->dst, 16);
    uint64_t w[4], h;

    if (c > 0 || (c == 0 && sport > dport)) {
        lo_ip = pi->dst;
        hi_ip = pi->src;
        lo_p = dport;
        hi_p = sport;
    }
    h = (uint64_t)pi->ip_version | (uint64_t)pi->l4 << 8 | (uint64_t)pi->vlan << 16 |
        (uint64_t)echo_id << 32 | (uint64_t)lo_p << 48;
    h = mix64(0x243f6a8885a308d3ULL ^ hi_p, h);
    memcpy(w, lo_ip, 16);
    memcpy(w + 2, hi_ip, 16);
    for (int i = 0; i < 4; i++)
        h = mix64(h, w[i]);
    h *= 0xbf58476d1ce4e5b9ULL;
    return (uint32_t)(h >> 32);
}

uint32_t ca_flowtab_hash(const struct ca_pkt_info *pi)
{
    return key_hash(pi, pi->sport, pi->dport, pi->has_icmp_id ? pi->icmp_id : 0);
}

void ca_flowtab_prefetch(const struct ca_flowtab *t, uint32_t h, int stage)
{
    struct fent *const *b = &t->buckets[h & (t->nbuckets - 1)];
    const struct fent *e;

    if (stage == 0) {
        __builtin_prefetch(b);
        return;
    }
    e = *b;
    if (e == NULL)
        return;
    if (stage == 1) {
        /* the key, the state and the counters a packet updates */
        for (int i = 0; i < FENT_HOT; i += 64)
            __builtin_prefetch((const char *)e + i);
        return;
    }
    if (e->hash == h && e->dpi != NULL)
        ca_dpi_prefetch(e->dpi);
}

static uint32_t frag_slot(uint8_t ver, const uint8_t *s, const uint8_t *d, uint32_t id)
{
    uint32_t h = fnv(2166136261u, s, 16);
    h = fnv(h, d, 16);
    h = fnv(h, &id, 4);
    h = fnv(h, &ver, 1);
    return h % FRAG_SLOTS;
}

static void tcp_seq(struct fent *e, int dir, const struct ca_pkt_info *pi, uint32_t plen)
{
    uint32_t seq = pi->tcp_seq, len = plen;

    if (pi->tcp_flags & 0x02) { /* SYN takes one sequence number */
        e->next_seq[dir] = seq + 1;
        e->seq_valid[dir] = 1;
        return;
    }
    if (!e->seq_valid[dir]) {
        e->next_seq[dir] = seq + len;
        e->seq_valid[dir] = 1;
        return;
    }
    if (len == 0)
        return;
    int32_t diff = (int32_t)(seq - e->next_seq[dir]);
    if (diff < 0) {
        uint32_t old = e->next_seq[dir] - seq; /* -diff, also for INT32_MIN (no overflow) */
        e->f.retrans_bytes[dir] += old < len ? old : len;
        if (old < len)
            e->next_seq[dir] = seq + len;
    } else {
        if (diff > 0)
            e->f.gap_bytes[dir] += (uint32_t)diff;
        e->next_seq[dir] = seq + len;
    }
}

int ca_flowtab_packet(struct ca_flowtab *t, const struct ca_pkt_info *pi, uint32_t h, int64_t ts_ns,
                      uint32_t wire_len, uint64_t offset, uint64_t index)
{
    uint16_t sport = pi->sport, dport = pi->dport, echo_id = 0;
    struct fent *e;
    int dir = 0, r;

    r = expire(t, ts_ns);
    if (r != 0)
        return r;
    /* IP fragments: later pieces borrow the ports of the first one */
    if (pi->frag != 0 && (pi->l4 == 6 || pi->l4 == 17 || pi->l4 == 132)) {
        struct frag_ent *fe = &t->frags[frag_slot(pi->ip_version, pi->src, pi->dst, pi->frag_id)];
        if (pi->frag == 1) {
            fe->used = 1;
            fe->ver = pi->ip_version;
            fe->l4 = pi->l4;
            fe->id = pi->frag_id;
            memcpy(fe->src, pi->src, 16);
            memcpy(fe->dst, pi->dst, 16);
            fe->sport = sport;
            fe->dport = dport;
        } else if (fe->used && fe->ver == pi->ip_version && fe->l4 == pi->l4 &&
                   fe->id == pi->frag_id && memcmp(fe->src, pi->src, 16) == 0 &&
                   memcmp(fe->dst, pi->dst, 16) == 0) {
            sport = fe->sport;
            dport = fe->dport;
            t->frag_joined++;
        }
    }
    if (pi->has_icmp_id)
        echo_id = pi->icmp_id;
    if (sport != pi->sport || dport != pi->dport) /* a later fragment's borrowed ports */
        h = key_hash(pi, sport, dport, echo_id);
    for (e = t->buckets[h & (t->nbuckets - 1)]; e != NULL; e = e->hnext) {
        if (e->hash != h || e->ver != pi->ip_version || e->l4 != pi->l4 || e->vlan != pi->vlan ||
            e->icmp_id != echo_id)
            continue;
        if (memcmp(e->a_ip, pi->src, 16) == 0 && memcmp(e->b_ip, pi->dst, 16) == 0 &&
            e->a_port == sport && e->b_port == dport) {
            dir = 0;
            break;
        }
        if (memcmp(e->a_ip, pi->dst, 16) == 0 && memcmp(e->b_ip, pi->src, 16) == 0 &&
            e->a_port == dport && e->b_port == sport) {
            dir = 1;
            break;
        }
    }
    /* a new SYN on a finished connection starts a new flow (port reuse) */
    if (e != NULL && e->ended && pi->l4 == 6 && (pi->tcp_flags & 0x12) == 0x02) {
        r = expire_one(t, e);
        if (r != 0)
            return r;
        e = NULL;
    }
    if (e == NULL) {
        /* at the live-flow limit: emit the least recently active flow first */
        while (t->count >= t->c.max_live) {
            struct fent *lru = NULL;
            for (int l = 0; l < L_COUNT; l++) {
                while (t->head[l] != NULL && t->head[l]->f.last_ns != t->head[l]->pos_ns)
                    list_refresh(t, t->head[l]);
                if (t->head[l] != NULL && (lru == NULL || t->head[l]->f.last_ns < lru->f.last_ns))
                    lru = t->head[l];
            }
            if (lru == NULL)
                break;
            r = expire_one(t, lru);
            if (r != 0)
                return r;
            t->evicted++;
        }
        if (t->count * 2 >= t->nbuckets && grow(t) != 0) /* chains short: lookups miss cache */
            return CA_ENOMEM;
        e = fent_new(t);
        if (e == NULL)
            return CA_ENOMEM;
        e->hash = h;
        e->ver = pi->ip_version;
        e->l4 = pi->l4;
        e->vlan = pi->vlan;
        e->icmp_id = echo_id;
        memcpy(e->a_ip, pi->src, 16);
        memcpy(e->b_ip, pi->dst, 16);
        e->a_port = sport;
        e->b_port = dport;
        e->f.first_ns = e->f.last_ns = ts_ns;
        e->f.first_pkt_offset = offset;
        e->f.first_pkt_index = index;
        if (pi->l4 == 1 || pi->l4 == 58) {
            e->f.icmp_type = pi->icmp_type;
            e->f.icmp_code = pi->icmp_code;
        }
        {
            const char *v[S_COUNT] = {NULL};
            char encap[CA_ENCAP_MAX];

            copy_field(encap, sizeof(encap), pi->encap);
            v[S_ENCAP] = encap;
            v[S_DNS] = ca_pdns_lookup(t->c.pdns, pi->ip_version, pi->dst);
            if (strs_set(e, v, NULL) != 0) {
                fent_free(t, e);
                return CA_ENOMEM;
            }
        }
        if (t->c.dpi != NULL)
            e->dpi = ca_dpi_flow_new(t->c.dpi); /* NULL: the flow just gets no L7 */
        e->hnext = t->buckets[h & (t->nbuckets - 1)];
        t->buckets[h & (t->nbuckets - 1)] = e;
        t->count++;
        list_add_tail(t, e, pi->l4 == 6 ? L_TCP : L_OTHER);
    }
    /* MACs: side A's source MAC is stored in cli_mac, side B's in srv_mac */
    if (pi->has_mac) {
        static const uint8_t zero[6];
        uint8_t *mine = dir == 0 ? e->f.cli_mac : e->f.srv_mac;
        uint8_t *theirs = dir == 0 ? e->f.srv_mac : e->f.cli_mac;
        if (memcmp(mine, zero, 6) == 0)
            memcpy(mine, pi->src_mac, 6);
        if (memcmp(theirs, zero, 6) == 0)
            memcpy(theirs, pi->dst_mac, 6);
    }
    if (ts_ns > e->f.last_ns)
        e->f.last_ns = ts_ns;
    if (ts_ns < e->f.first_ns)
        e->f.first_ns = ts_ns;
    e->f.pkts[dir]++;
    e->f.bytes[dir] += wire_len;
    e->f.payload[dir] += pi->payload_wire;
    if ((pi->l4 == 1 && pi->icmp_type == 8) || (pi->l4 == 58 && pi->icmp_type == 128)) {
        if (!e->echo_from)
            e->echo_from = (uint8_t)(dir + 1);
    }
    if (pi->l4 == 6 && pi->frag != 2) {
        uint8_t fl = pi->tcp_flags;
        e->f.tcp_flags[dir] |= fl;
        if ((fl & 0x12) == 0x02 && !e->syn_from)
            e->syn_from = (uint8_t)(dir + 1);
        if ((fl & 0x12) == 0x12 && !e->synack_from)
            e->synack_from = (uint8_t)(dir + 1);
        if ((fl & 0x17) == 0x10 && e->synack_from && e->synack_from != dir + 1)
            e->handshake = 1;
        if ((fl & 0x17) == 0x10 && e->syn_from && !e->synack_from && e->syn_from == dir + 1 &&
            e->f.pkts[!dir] > 0)
            e->handshake = 1; /* SYN/ACK lost from the capture but the client proceeds */
        tcp_seq(e, dir, pi, pi->payload_wire);
        int was_ended = e->ended;
        if (fl & 0x04)
            e->rst = 1;
        if (fl & 0x01)
            e->fin_mask |= (uint8_t)(1u << dir);
        if (e->rst || (e->fin_mask == 3 && (fl & 0x11) == 0x10))
            e->ended = 1;
        if (e->ended && !was_ended) {
            list_del(t, e);
            list_add_tail(t, e, L_ENDED);
        }
    }
    /*
     * IPv4 fragments: DPI and passive DNS see the reassembled datagram when
     * the fragment completes one, and no piece before that.
     */
    const uint8_t *l3 = pi->l3;
    uint32_t l3_len = pi->l3_len;
    if (pi->frag != 0 && pi->ip_version == 4) {
        if (ca_ipfrag_add(t->reasm, pi, ts_ns, &l3, &l3_len) != 1)
            l3_len = 0;
        else if (pi->l4 == 17 && sport == 53 && l3_len > (uint32_t)(l3[0] & 0x0f) * 4 + 8) {
            uint32_t hl = (uint32_t)(l3[0] & 0x0f) * 4 + 8;
            ca_pdns_learn(t->c.pdns, l3 + hl, l3_len - hl);
        }
    } else if (pi->frag == 2) {
        l3_len = 0; /* IPv6 later fragment: no L4 header */
    }
    if (pi->l4 == 17 && sport == 53 && pi->frag == 0)
        ca_pdns_learn(t->c.pdns, pi->payload, pi->payload_len);
    if (e->dpi != NULL && t->c.dpi != NULL && l3_len > 0) {
        uint64_t n = e->f.pkts[0] + e->f.pkts[1];
        if (ca_dpi_packet(t->c.dpi, e->dpi, l3, l3_len, (uint64_t)(ts_ns / 1000000), pi->l4, n)) {
            /* detection over: keep the result, free nDPI's state now */
            memset(t->scratch, 0, offsetof(struct ca_flow, l7_name));
            t->scratch->l7_name[0] = t->scratch->category_name[0] = t->scratch->host[0] = '\0';
            t->scratch->user_agent[0] = t->scratch->tls_version[0] = t->scratch->risks[0] = '\0';
            ca_dpi_result(t->c.dpi, e->dpi, t->scratch);
            ca_dpi_flow_free(t->c.dpi, e->dpi);
            e->dpi = NULL;
            if (keep_dpi(e, t->scratch) != 0)
                return CA_ENOMEM;
        }
    }
    return 0;
}

int ca_flowtab_flush(struct ca_flowtab *t)
{
    int r;

    /* every live flow goes: empty the hash at once, not chain by chain (a
     * cache miss or two per flow); the lists still hold them until emitted */
    memset(t->buckets, 0, t->nbuckets * sizeof(*t->buckets));
    t->count = 0;
    for (int l = 0; l < L_COUNT; l++) {
        while (t->head[l] != NULL) {
            struct fent *e = t->head[l];
            prefetch_next_out(t, e);
            list_del(t, e);
            r = emit(t, e);
            fent_free(t, e);
            if (r != 0)
                return r;
        }
    }
    return batch_flush(t);
}

uint64_t ca_flowtab_flows(const struct ca_flowtab *t)
{
    return t->emitted;
}

uint64_t ca_flowtab_evicted(const struct ca_flowtab *t)
{
    return t->evicted;
}

uint64_t ca_flowtab_frag_reassembled(const struct ca_flowtab *t)
{
    return ca_ipfrag_reassembled(t->reasm);
}

uint64_t ca_flowtab_frag_dropped(const struct ca_flowtab *t)
{
    return ca_ipfrag_dropped(t->reasm);
}

uint64_t ca_flowtab_frag_seen(const struct ca_flowtab *t)
{
    return t->frag_joined;
}
