/*
 * Passive DNS (see pdns.h).  The DNS parser is deliberately small and
 * paranoid: every label and pointer is checked against the message length,
 * compression pointers are followed a bounded number of times, and only
 * IN A/AAAA answers are kept.
 */
#include <stdlib.h>
#include <string.h>

#include "pdns.h"

#define PDNS_SLOTS 8192
#define PDNS_NAME 256

struct pdns_ent {
    uint8_t ver; /* 0 = empty */
    uint8_t addr[16];
    char name[PDNS_NAME];
};

struct ca_pdns {
    /* tag[i]: the hash (| 1) of e[i]'s address, 0 = empty: a lookup that
     * misses (most do) reads this 32 KiB array, not the 2 MiB of entries */
    uint32_t tag[PDNS_SLOTS];
    struct pdns_ent e[PDNS_SLOTS];
};

struct ca_pdns *ca_pdns_new(void)
{
    return calloc(1, sizeof(struct ca_pdns));
}

void ca_pdns_free(struct ca_pdns *d)
{
    free(d);
}

static uint32_t addr_hash(uint8_t v, const uint8_t *a)
{
    uint32_t h = 2166136261u ^ v;

    for (int i = 0; i < 16; i++)
        h = (h ^ a[i]) * 16777619u;
    return h;
}

/* Reads the name at *off into out (dotted, printable); advances *off past it. 0 or -1. */
static int read_name(const uint8_t *m, uint32_t len, uint32_t *off, char *out, size_t outlen)
{
    uint32_t o = *off, end = 0;
    size_t n = 0;
    int jumps = 0;

    out[0] = '\0';
    for (;;) {
        if (o >= len)
            return -1;
        uint8_t l = m[o];
        if ((l & 0xc0) == 0xc0) {
            if (o + 1 >= len || ++jumps > 16)
                return -1;
            if (end == 0)
                end = o + 2;
            o = (uint32_t)(l & 0x3f) << 8 | m[o + 1];
            continue;
        }
        if (l & 0xc0)
            return -1;
        if (l == 0) {
            o++;
            break;
        }
        if (o + 1 + l > len)
            return -1;
        for (uint32_t i = 0; i < l; i++) {
            if (n + 2 >= outlen)
                return -1;
            if (i == 0 && n > 0)
                out[n++] = '.';
            uint8_t c = m[o + 1 + i];
            out[n++] = (c > 0x20 && c < 0x7f) ? (char)c : '?';
        }
        o += 1 + l;
    }
    out[n] = '\0';
    *off = end ? end : o;
    return 0;
}

void ca_pdns_learn(struct ca_pdns *d, const uint8_t *m, uint32_t len)
{
    char qname[PDNS_NAME], rname[PDNS_NAME];
    uint32_t off = 12;
    uint16_t qd, an;

    if (d == NULL || len < 12)
        return;
    if (!(m[2] & 0x80) || (m[3] & 0x0f) != 0) /* a response without error */
        return;
    qd = (uint16_t)(m[4] << 8 | m[5]);
    an = (uint16_t)(m[6] << 8 | m[7]);
    if (qd != 1 || an == 0)
        return;
    if (read_name(m, len, &off, qname, sizeof(qname)) != 0 || off + 4 > len)
        return;
    off += 4;
    for (uint16_t i = 0; i < an && i < 64; i++) {
        if (read_name(m, len, &off, rname, sizeof(rname)) != 0 || off + 10 > len)
            return;
        uint16_t type = (uint16_t)(m[off] << 8 | m[off + 1]);
        uint16_t cls = (uint16_t)(m[off + 2] << 8 | m[off + 3]);
        uint16_t rdlen = (uint16_t)(m[off + 8] << 8 | m[off + 9]);
        off += 10;
        if (off + rdlen > len)
            return;
        if ((cls & 0x7fff) == 1 && ((type == 1 && rdlen == 4) || (type == 28 && rdlen == 16))) {
            uint8_t a[16] = {0};
            uint8_t v = type == 1 ? 4 : 6;
            memcpy(a, m + off, rdlen);
            uint32_t h = addr_hash(v, a);
            struct pdns_ent *e = &d->e[h % PDNS_SLOTS];
            d->tag[h % PDNS_SLOTS] = h | 1;
            e->ver = v;
            memcpy(e->addr, a, 16);
            memcpy(e->name, qname, sizeof(e->name));
        }
        off += rdlen;
    }
}

const char *ca_pdns_lookup(const struct ca_pdns *d, uint8_t v, const uint8_t addr[16])
{
    const struct pdns_ent *e;
    uint32_t h;

    if (d == NULL)
        return NULL;
    h = addr_hash(v, addr);
    if (d->tag[h % PDNS_SLOTS] != (h | 1))
        return NULL;
    e = &d->e[h % PDNS_SLOTS];
    if (e->ver == v && memcmp(e->addr, addr, 16) == 0 && e->name[0] != '\0')
        return e->name;
    return NULL;
}
