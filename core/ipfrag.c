/*
 * IPv4 reassembly (see ipfrag.h).  Fragments are rare in practice, so the
 * table is a small array searched linearly; coverage is a bitmap of 8-byte
 * units (fragment offsets are multiples of 8).  Overlapping data: the later
 * fragment wins.  All offsets are checked against the 64 KiB IPv4 limit.
 */
#include <stdlib.h>
#include <string.h>

#include "ipfrag.h"

#define UNITS (65536 / 8)
#define HEAD 60 /* room for the largest IPv4 header before the data */

struct dgram {
    int used;
    uint8_t proto;
    uint8_t src[4], dst[4];
    uint16_t id;
    int64_t first_ns;
    uint32_t total; /* payload length, known once the last fragment is seen (0: not yet) */
    uint32_t hlen;  /* first fragment's header length, 0 until it is seen */
    uint8_t hdr[60];
    uint8_t *buf; /* HEAD + payload */
    uint32_t cap;
    uint8_t bits[UNITS / 8];
};

struct ca_ipfrag {
    struct dgram d[CA_IPFRAG_MAX];
    uint64_t bytes;
    uint64_t done, dropped;
    uint8_t *out; /* the last completed datagram (owned) */
};

struct ca_ipfrag *ca_ipfrag_new(void)
{
    return calloc(1, sizeof(struct ca_ipfrag));
}

static void drop(struct ca_ipfrag *f, struct dgram *d)
{
    f->bytes -= d->cap;
    free(d->buf);
    memset(d, 0, sizeof(*d));
}

void ca_ipfrag_free(struct ca_ipfrag *f)
{
    if (f == NULL)
        return;
    for (int i = 0; i < CA_IPFRAG_MAX; i++)
        free(f->d[i].buf);
    free(f->out);
    free(f);
}

static int complete(const struct dgram *d)
{
    uint32_t units = (d->total + 7) / 8;

    if (d->total == 0 || d->hlen == 0)
        return 0;
    for (uint32_t u = 0; u < units; u++)
        if (!(d->bits[u / 8] & (1u << (u % 8))))
            return 0;
    return 1;
}

int ca_ipfrag_add(struct ca_ipfrag *f, const struct ca_pkt_info *pi, int64_t ts_ns,
                  const uint8_t **l3, uint32_t *len)
{
    const uint8_t *p = pi->l3;
    uint32_t hl, off, n, end;
    struct dgram *d = NULL, *oldest = NULL, *freeslot = NULL;
    int mf;

    if (p == NULL || pi->ip_version != 4 || pi->l3_len < 20)
        return 0;
    hl = (uint32_t)(p[0] & 0x0f) * 4;
    if (hl < 20 || hl > pi->l3_len)
        return 0;
    off = (uint32_t)((p[6] & 0x1f) << 8 | p[7]) * 8;
    mf = (p[6] & 0x20) != 0;
    n = pi->l3_len - hl; /* payload present in the capture */
    end = off + n;
    /* expire, and find this datagram's entry */
    for (int i = 0; i < CA_IPFRAG_MAX; i++) {
        struct dgram *x = &f->d[i];
        if (!x->used) {
            if (freeslot == NULL)
                freeslot = x;
            continue;
        }
        if (ts_ns - x->first_ns > (int64_t)CA_IPFRAG_TIMEOUT_SEC * 1000000000) {
            drop(f, x);
            f->dropped++;
            if (freeslot == NULL)
                freeslot = x;
            continue;
        }
        if (x->id == pi->frag_id && x->proto == p[9] && memcmp(x->src, p + 12, 4) == 0 &&
            memcmp(x->dst, p + 16, 4) == 0)
            d = x;
        else if (oldest == NULL || x->first_ns < oldest->first_ns)
            oldest = x;
    }
    if (end > 65535 - 20 || (mf && n % 8 != 0) || n == 0) {
        if (d != NULL) { /* a datagram over 64 KiB or a bad piece: give it up */
            drop(f, d);
            f->dropped++;
        }
        return 0;
    }
    if (d == NULL) {
        if (freeslot == NULL) {
            drop(f, oldest);
            f->dropped++;
            freeslot = oldest;
        }
        d = freeslot;
        d->used = 1;
        d->proto = p[9];
        memcpy(d->src, p + 12, 4);
        memcpy(d->dst, p + 16, 4);
        d->id = (uint16_t)pi->frag_id;
        d->first_ns = ts_ns;
    }
    if (HEAD + end > d->cap) {
        uint32_t nc = HEAD + end + 1024;
        uint8_t *b;
        if (nc > HEAD + 65536)
            nc = HEAD + 65536;
        while (f->bytes + (nc - d->cap) > CA_IPFRAG_BYTES) { /* evict others, oldest first */
            struct dgram *o = NULL;
            for (int i = 0; i < CA_IPFRAG_MAX; i++)
                if (f->d[i].used && &f->d[i] != d && (o == NULL || f->d[i].first_ns < o->first_ns))
                    o = &f->d[i];
            if (o == NULL) {
                drop(f, d);
                f->dropped++;
                return 0;
            }
            drop(f, o);
            f->dropped++;
        }
        b = realloc(d->buf, nc);
        if (b == NULL) {
            drop(f, d);
            f->dropped++;
            return 0;
        }
        f->bytes += nc - d->cap;
        d->buf = b;
        d->cap = nc;
    }
    memcpy(d->buf + HEAD + off, p + hl, n);
    for (uint32_t u = off / 8; u < (end + 7) / 8; u++)
        d->bits[u / 8] |= (uint8_t)(1u << (u % 8));
    if (off == 0) {
        memcpy(d->hdr, p, hl);
        d->hlen = hl;
    }
    if (!mf)
        d->total = end;
    if (!complete(d))
        return 0;
    /* rebuild: the first fragment's header, not fragmented, with the whole length */
    {
        uint32_t tl = d->hlen + d->total;
        uint8_t *o = malloc(tl);
        if (o == NULL) {
            drop(f, d);
            f->dropped++;
            return 0;
        }
        memcpy(o, d->hdr, d->hlen);
        o[2] = (uint8_t)(tl >> 8);
        o[3] = (uint8_t)tl;
        o[6] = 0;
        o[7] = 0;
        memcpy(o + d->hlen, d->buf + HEAD, d->total);
        free(f->out);
        f->out = o;
        *l3 = o;
        *len = tl;
    }
    drop(f, d);
    f->done++;
    return 1;
}

uint64_t ca_ipfrag_reassembled(const struct ca_ipfrag *f)
{
    return f != NULL ? f->done : 0;
}

uint64_t ca_ipfrag_dropped(const struct ca_ipfrag *f)
{
    return f != NULL ? f->dropped : 0;
}
