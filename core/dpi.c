/*
 * nDPI 4.2 glue (see dpi.h).  Follows ndpiReader's reader_util.c: feed
 * packets until a protocol is found and no extra dissection is possible,
 * or 80 TCP / 24 UDP packets went by; then give up with guessing enabled,
 * so our per-protocol counts line up with ndpiReader's.
 */
#include <malloc.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <ndpi_api.h>

#include "ca_error.h"
#include "dpi.h"

#define MAX_TCP_PKTS 80
#define MAX_UDP_PKTS 24
#define POOL_MAX 16384 /* freed flow states kept for reuse */

/* One block, 64-byte aligned: nDPI's state (~700 bytes, most of it read for
 * each packet) is prefetched from the block's address (ca_dpi_prefetch). */
struct ca_dpi_flow {
    struct ca_dpi_flow *next; /* in the pool */
    ndpi_protocol proto;
    uint8_t done;
    uint8_t spent; /* ca_dpi_result ran: nf's own allocations are freed */
    alignas(64) struct ndpi_flow_struct nf;
};

/* A protocol pair's name as ca_dpi_result gives it (ndpi_protocol2name is
 * an snprintf: once per pair, not once per flow). */
#define NAME_CACHE 256

struct name_ent {
    uint32_t key1; /* master << 16 | app, plus 1; 0 empty */
    char name[CA_L7_MAX];
};

struct ca_dpi {
    struct ndpi_detection_module_struct *mod;
    struct ca_dpi_flow *pool;
    size_t npool;
    struct name_ent names[NAME_CACHE];
};

/*
 * nDPI's detection module is some 15 MB of small heap blocks (the patricia
 * trees of protocol networks, searched for every new flow, the host-name
 * automata, searched for every name): on 4 KiB pages each search misses
 * the TLB at most steps.  So before it is built, the heap grows by a
 * padded step whose untouched part is advised for huge pages, and the
 * module lands there.  A hint: where the heap does not grow (memory free
 * in it already, another thread's arena) nothing changes.
 */
static void heap_prepare(void)
{
    const uintptr_t huge = (uintptr_t)2 << 20;
    char *b0 = sbrk(0), *b1 = b0;
    void *held[64];
    int n = 0;
    uintptr_t lo;

    if (b0 == (char *)-1)
        return;
    (void)mallopt(M_TOP_PAD, 64 << 20);
    /* blocks below the map threshold use up the heap's free top, then grow it */
    while (n < 64 && b1 == b0) {
        held[n] = malloc(64 << 10);
        if (held[n] == NULL)
            break;
        n++;
        b1 = sbrk(0);
    }
    /* the last block and the top's header end before b0 + 68 KiB: the rest is untouched */
    lo = ((uintptr_t)b0 + (68u << 10) + huge - 1) & ~(huge - 1);
    if (b1 != (char *)-1 && (uintptr_t)b1 > lo + huge)
        (void)madvise((void *)lo, ((uintptr_t)b1 - lo) & ~(huge - 1), MADV_HUGEPAGE);
    while (n > 0)
        free(held[--n]);
}

int ca_dpi_open(struct ca_dpi **out, char *err, size_t errlen)
{
    NDPI_PROTOCOL_BITMASK all;
    struct ca_dpi *d;

    *out = NULL;
    d = calloc(1, sizeof(*d));
    if (d == NULL)
        return ca_seterr(err, errlen, CA_ENOMEM, "out of memory");
    heap_prepare();
    d->mod = ndpi_init_detection_module(ndpi_no_prefs);
    if (d->mod == NULL) {
        free(d);
        return ca_seterr(err, errlen, CA_ENOMEM, "nDPI initialisation failed");
    }
    NDPI_BITMASK_SET_ALL(all);
    ndpi_set_protocol_detection_bitmask2(d->mod, &all);
    ndpi_finalize_initialization(d->mod);
    *out = d;
    return 0;
}

void ca_dpi_close(struct ca_dpi *d)
{
    if (d == NULL)
        return;
    ca_dpi_trim(d);
    ndpi_exit_detection_module(d->mod);
    free(d);
}

void ca_dpi_trim(struct ca_dpi *d)
{
    if (d == NULL)
        return;
    while (d->pool != NULL) {
        struct ca_dpi_flow *f = d->pool;
        d->pool = f->next;
        free(f); /* nDPI's allocations for it were freed when pooled */
    }
    d->npool = 0;
}

struct ca_dpi_flow *ca_dpi_flow_new(struct ca_dpi *d)
{
    struct ca_dpi_flow *f = d->pool;

    if (f != NULL) {
        d->pool = f->next;
        d->npool--;
    } else {
        f = aligned_alloc(alignof(struct ca_dpi_flow), sizeof(*f));
        if (f == NULL)
            return NULL;
    }
    memset(f, 0, sizeof(*f));
    return f;
}

void ca_dpi_flow_free(struct ca_dpi *d, struct ca_dpi_flow *f)
{
    if (f == NULL)
        return;
    if (!f->spent)
        ndpi_free_flow_data(&f->nf);
    if (d->npool < POOL_MAX) {
        f->next = d->pool;
        d->pool = f;
        d->npool++;
        return;
    }
    free(f);
}

void ca_dpi_prefetch(const struct ca_dpi_flow *f)
{
    for (size_t i = 0; i < sizeof(*f); i += 64)
        __builtin_prefetch((const char *)f + i);
}

int ca_dpi_packet(struct ca_dpi *d, struct ca_dpi_flow *f, const uint8_t *l3, uint32_t l3_len,
                  uint64_t ts_ms, uint8_t l4, uint64_t npkts)
{
    if (f->done || f->spent)
        return 1;
    if (l3_len > 0xffff)
        l3_len = 0xffff;
    f->proto = ndpi_detection_process_packet(d->mod, &f->nf, l3, (unsigned short)l3_len, ts_ms);
    if (f->proto.app_protocol != NDPI_PROTOCOL_UNKNOWN ||
        f->proto.master_protocol != NDPI_PROTOCOL_UNKNOWN) {
        if (!ndpi_extra_dissection_possible(d->mod, &f->nf))
            f->done = 1;
    }
    if ((l4 == 6 && npkts > MAX_TCP_PKTS) || (l4 != 6 && npkts > MAX_UDP_PKTS))
        f->done = 1;
    return f->done;
}

static int is_tls_like(uint16_t p)
{
    return p == NDPI_PROTOCOL_TLS || p == NDPI_PROTOCOL_QUIC || p == NDPI_PROTOCOL_DTLS ||
           p == NDPI_PROTOCOL_MAIL_IMAPS || p == NDPI_PROTOCOL_MAIL_POPS ||
           p == NDPI_PROTOCOL_MAIL_SMTPS;
}

static void copy_str(char *dst, size_t n, const char *src)
{
    size_t j = 0;

    if (src == NULL) {
        dst[0] = '\0';
        return;
    }
    /* keep printable ASCII only: these strings come from hostile packets */
    for (size_t i = 0; src[i] != '\0' && j + 1 < n; i++) {
        unsigned char ch = (unsigned char)src[i];
        dst[j++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    dst[j] = '\0';
}

/* The name of protocol pair p, printable, "Unknown" for none, in dst. */
static void proto_name(struct ca_dpi *d, ndpi_protocol p, char dst[CA_L7_MAX])
{
    uint32_t key = (uint32_t)p.master_protocol << 16 | p.app_protocol;
    struct name_ent *e = &d->names[(key * 2654435761u) >> 24];
    char name[64];

    if (e->key1 != key + 1) {
        name[0] = '\0';
        ndpi_protocol2name(d->mod, p, name, sizeof(name));
        copy_str(e->name, sizeof(e->name), name[0] ? name : "Unknown");
        e->key1 = key + 1;
    }
    memcpy(dst, e->name, CA_L7_MAX);
}

void ca_dpi_result(struct ca_dpi *d, struct ca_dpi_flow *f, struct ca_flow *out)
{
    struct ndpi_flow_struct *nf = &f->nf;
    uint8_t guessed = 0;
    size_t rl = 0;

    if (f->spent)
        return;
    if (f->proto.app_protocol == NDPI_PROTOCOL_UNKNOWN &&
        f->proto.master_protocol == NDPI_PROTOCOL_UNKNOWN)
        f->proto = ndpi_detection_giveup(d->mod, nf, 1, &guessed);
    f->done = 1;
    out->l7_master = f->proto.master_protocol;
    out->l7_app = f->proto.app_protocol;
    if (out->l7_master == out->l7_app)
        out->l7_master = out->l7_app;
    out->category = (uint16_t)f->proto.category;
    proto_name(d, f->proto, out->l7_name);
    copy_str(out->category_name, sizeof(out->category_name),
             ndpi_category_get_name(d->mod, f->proto.category));
    copy_str(out->host, sizeof(out->host), nf->host_server_name);
    copy_str(out->user_agent, sizeof(out->user_agent), nf->http.user_agent);
    if ((is_tls_like(f->proto.master_protocol) || is_tls_like(f->proto.app_protocol)) &&
        nf->protos.tls_quic.ssl_version != 0) {
        uint8_t unknown = 0;
        char vb[32];
        ndpi_ssl_version2str(vb, sizeof(vb), nf->protos.tls_quic.ssl_version, &unknown);
        copy_str(out->tls_version, sizeof(out->tls_version), vb);
    }
    out->risk = (uint64_t)nf->risk;
    out->risks[0] = '\0';
    for (int i = 1; i < NDPI_MAX_RISK && i < 64; i++) {
        if (!(out->risk & ((uint64_t)1 << i)))
            continue;
        const char *rn = ndpi_risk2str((ndpi_risk_enum)i);
        if (rn == NULL)
            continue;
        size_t sep = rl ? 1 : 0, n = strlen(rn);
        if (sep + n >= sizeof(out->risks) - rl) { /* it would not fit whole */
            out->risks[rl] = '\0';
            break;
        }
        if (sep)
            out->risks[rl] = ',';
        memcpy(out->risks + rl + sep, rn, n + 1);
        rl += sep + n;
    }
    ndpi_free_flow_data(nf); /* nf itself is kept for reuse */
    f->spent = 1;
}
