/*
 * What the query engine's files share (query.c: the engine; query_agg.c,
 * query_timeline.c, query_flows.c, query_ip.c: the answers built on it).
 * Not an interface: the rest of the program uses query.h.
 */
#ifndef CA_QUERY_INTERNAL_H
#define CA_QUERY_INTERNAL_H

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

typedef int (*row_fn)(void *arg, uint32_t cap, uint32_t seq, const struct ca_hot *h);

struct scan {
    struct ca_query *q;
    row_fn fn;
    void *arg;
    const struct ca_snap_capture *caps;
    size_t ncaps;
    uint64_t last;
};

/* Rows a filter is tried on at once (ca_filter_select). */
#define SEL_BATCH 1024

struct htab {
    size_t ksz, vsz, voff, slot, cap, n; /* values at voff in a slot, 8-aligned */
    uint8_t *mem;                        /* slots: u64 hash (0 = empty), key, value */
};

#define HT_EACH(t, i, s)                                                                           \
    for (size_t i = 0; i < (t)->cap; i++)                                                          \
        if ((s = (t)->mem + i * (t)->slot), *(const uint64_t *)(const void *)s != 0)

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

/* One group value: 16 bytes of data and a tag (address version). */
struct gv {
    uint8_t b[16];
    uint32_t tag;
};

enum metric { M_FLOWS, M_BYTES, M_SENT, M_RECV, M_PACKETS, M_DUR, M_DUR_AVG, M_SRC, M_DST, M_N };

struct acc {
    uint64_t flows, bytes, sent, recv, packets;
    int64_t dur_ns;
    uint64_t src_ips, dst_ips;
};

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

/*
 * Sums of durations held at the int64 limits instead of overflowing (each
 * is ca_hot_duration, store.h): a file whose clock jumps by decades gives
 * flows of ~10^18 ns, and a few of them overflow a sum.
 */
static inline int64_t cq_sat_add(int64_t a, int64_t b)
{
    int64_t r;

    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* ---- query.c: the engine ------------------------------------------------- */

extern const char *const cq_metric_names[M_N];
extern const char *const cq_gfield_names[GF_COUNT];

/* scanning: every matching row through fn, whole (cq_scan) or split over
 * two threads (cq_scan_par); an exact-address filter reads its index */
int cq_have_tables(struct ca_query *q);
int cq_address_filter(struct ca_query *q);
int cq_scan(struct ca_query *q, uint64_t after, size_t max_chunks, row_fn fn, void *arg,
            uint64_t *last);

/* the open-addressing hash table of group keys */
int cq_ht_init(struct htab *t, size_t ksz, size_t vsz, size_t cap);
void cq_ht_free(struct htab *t);
void *cq_ht_get(struct htab *t, const void *key, int *created);
int cq_ht_presize(struct htab *t, size_t n);
/* Doubles t (cq_ht_get_k does when half full). */
int cq_ht_grow(struct htab *t);

static inline uint64_t cq_hash_bytes(const void *p, size_t n)
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

/*
 * Value of key (zeroed when new; *created set).  NULL on ENOMEM.  Inlined
 * where ksz is a constant (agg_get): the hash and the comparison then
 * compile to a few instructions.
 */
static inline __attribute__((always_inline)) void *cq_ht_get_k(struct htab *t, const void *key,
                                                               size_t ksz, int *created)
{
    uint64_t h = cq_hash_bytes(key, ksz);

    if (t->n * 2 >= t->cap && cq_ht_grow(t) != 0)
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

/* group fields and their values */
int cq_gfield_find(const char *s, size_t n);
int64_t cq_fdiv(int64_t a, int64_t b);
uint64_t cq_gv_get_u64(const struct gv *v);

static inline void cq_gv_u64(struct gv *v, uint64_t x)
{
    memset(v, 0, sizeof(*v));
    memcpy(v->b, &x, 8);
}

void cq_gv_addr(struct gv *v, const uint8_t *a, int ver);
int cq_gvals(int f, uint32_t cap, const struct ca_hot *h, const uint32_t *master, uint32_t nmaster,
             struct gv out[2]);
json_t *cq_addr_json(int ver, const uint8_t *a);
json_t *cq_gv_json(struct ca_query *q, int f, const struct gv *v);

/* metrics */
void cq_acc_add(struct acc *a, const struct ca_hot *h);
double cq_acc_metric(const struct acc *a, int m);
json_t *cq_acc_json(const struct acc *a, const int *ms, int nm);

/* the pre-computed per-capture tables */
int cq_tab_field(int f);
/* Whether table kind is kept per part of a capture (store.h): the tables
 * that grow with its flows or their addresses; the others cover it whole. */
int cq_tab_parted(unsigned kind);
/* Grows the array *p of *cap elements of sz bytes to hold need: capacity
 * first, doubled until it does, reallocated by re. */
int cq_grow_by(void **p, size_t *cap, size_t need, size_t sz, size_t first,
               void *(*re)(void *, size_t));
/* cq_grow_by with malloc's realloc, from 1024 elements. */
int cq_grow(void **p, size_t *cap, size_t need, size_t sz);
int cq_use_tables(struct ca_query *q);
int cq_tab_each(struct ca_query *q, unsigned kind, int (*fn)(void *arg, const struct tabrec *r),
                void *arg);
size_t cq_tab_rows(struct ca_query *q, unsigned kind);
size_t cq_tab_rows_max(struct ca_query *q, unsigned kind);
uint64_t cq_bit_set(uint64_t *b, uint32_t id);
void cq_acc_merge(struct acc *a, const struct tabrec *r);
void cq_acc_merge_acc(struct acc *a, const struct acc *b);
int cq_total_one(void *arg, const struct tabrec *r);

/* the hot chunks of a snapshot, for scans on two threads */
void cq_chunks_free(struct ccollect *cc);
int cq_chunks_collect(struct ca_query *q, struct ccollect *cc, size_t *half, size_t *rows);
int cq_par_indexed(struct ca_query *q);
int cq_scan_par(struct ca_query *q, row_fn fn, void *arg0, void *arg1, int *split);

/* ---- query_timeline.c ---------------------------------------------------- */

/* The histogram of [from, to) in bins (per-IP detail uses it too). */
int cq_timeline(struct ca_query *q, int bins, int64_t from, int64_t to, json_t **out);

/*
 * The host graph's limits, for tests of its fallbacks (query_ip.c): keep
 * at most trips_max flows from the first scan (more: a second scan), and
 * index hosts by address id only up to aid_max (a higher id: the scan
 * starts again, by address).  0 restores a default.
 */
void cq_graph_limits(size_t trips_max, uint32_t aid_max);

#endif
