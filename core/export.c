/*
 * Packet export (see export.h).  Flows are sorted by their canonical
 * 5-tuple so each decoded packet finds its candidates by binary search;
 * several flows may share a 5-tuple over time, and the packet goes to the
 * one whose time span and first offset contain it.
 */
#include <stdlib.h>
#include <string.h>

#include "ca_error.h"
#include "capture.h"
#include "decode.h"
#include "export.h"

static void make_key(uint8_t key[40], int ver, int l4, const uint8_t *a, uint16_t pa,
                     const uint8_t *b, uint16_t pb)
{
    const uint8_t *lo = a, *hi = b;
    uint16_t plo = pa, phi = pb;
    int c = memcmp(a, b, 16);

    if (c > 0 || (c == 0 && pa > pb)) {
        lo = b, hi = a;
        plo = pb, phi = pa;
    }
    memset(key, 0, 40);
    key[0] = (uint8_t)ver;
    key[1] = (uint8_t)l4;
    memcpy(key + 2, lo, 16);
    key[18] = (uint8_t)(plo >> 8);
    key[19] = (uint8_t)plo;
    memcpy(key + 20, hi, 16);
    key[36] = (uint8_t)(phi >> 8);
    key[37] = (uint8_t)phi;
}

void ca_export_flow_init(struct ca_export_flow *e, const struct ca_flow *f)
{
    memset(e, 0, sizeof(*e));
    make_key(e->key, f->ip_version, f->l4, f->cli_ip, f->cli_port, f->srv_ip, f->srv_port);
    e->first_ns = f->first_ns;
    e->last_ns = f->last_ns;
    e->offset = f->first_pkt_offset;
    e->pkts = f->pkts[0] + f->pkts[1];
}

static void le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

int ca_export_pcap_header(int dlt, ca_export_write_fn w, void *ctx)
{
    uint8_t h[24];

    le32(h, 0xa1b23c4d);
    h[4] = 2, h[5] = 0, h[6] = 4, h[7] = 0;
    le32(h + 8, 0);
    le32(h + 12, 0);
    le32(h + 16, 262144);
    le32(h + 20, (uint32_t)dlt);
    return w(ctx, h, sizeof(h)) == 0 ? 0 : CA_EIO;
}

int ca_export_file_dlt(const char *path, int *dlt, char *err, size_t errlen)
{
    struct ca_capture *c = NULL;
    int rc = ca_capture_open(path, &c, err, errlen);

    if (rc < 0)
        return rc;
    *dlt = ca_capture_linktype(c);
    ca_capture_close(c);
    return 0;
}

static int flow_cmp(const void *a, const void *b)
{
    const struct ca_export_flow *x = a, *y = b;
    int c = memcmp(x->key, y->key, 40);

    if (c != 0)
        return c;
    return (x->first_ns > y->first_ns) - (x->first_ns < y->first_ns);
}

int ca_export_pcap_flows(const char *path, int dlt, struct ca_export_flow *flows, size_t n,
                         ca_export_write_fn w, void *ctx, uint64_t *written, char *err,
                         size_t errlen)
{
    struct ca_capture *c = NULL;
    struct ca_capture_pkt pkt;
    struct ca_pkt_info pi;
    uint64_t min_off = UINT64_MAX;
    size_t done = 0;
    uint8_t key[40], rec[16];
    int rc;

    *written = 0;
    if (n == 0)
        return 0;
    qsort(flows, n, sizeof(*flows), flow_cmp);
    for (size_t i = 0; i < n; i++) {
        if (flows[i].offset < min_off)
            min_off = flows[i].offset;
        if (flows[i].pkts == 0)
            done++;
    }
    rc = ca_capture_open(path, &c, err, errlen);
    if (rc < 0)
        return rc;
    if (ca_capture_linktype(c) != dlt) {
        ca_capture_close(c);
        return ca_seterr(err, errlen, CA_EFORMAT, "capture has another link type");
    }
    while (done < n && (rc = ca_capture_next(c, &pkt, err, errlen)) == 1) {
        size_t lo = 0, hi = n;

        if (pkt.offset < min_off)
            continue;
        memset(&pi, 0, sizeof(pi));
        if (ca_decode(dlt, pkt.data, pkt.caplen, &pi) != NULL)
            continue;
        make_key(key, pi.ip_version, pi.l4, pi.src, pi.sport, pi.dst, pi.dport);
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;

            if (memcmp(flows[mid].key, key, 40) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (; lo < n && memcmp(flows[lo].key, key, 40) == 0; lo++) {
            struct ca_export_flow *e = &flows[lo];

            if (e->seen >= e->pkts || pkt.offset < e->offset || pkt.ts_ns < e->first_ns ||
                pkt.ts_ns > e->last_ns)
                continue;
            le32(rec, (uint32_t)(pkt.ts_ns / 1000000000LL));
            le32(rec + 4, (uint32_t)(pkt.ts_ns % 1000000000LL));
            le32(rec + 8, pkt.caplen);
            le32(rec + 12, pkt.len);
            if (w(ctx, rec, sizeof(rec)) != 0 || w(ctx, pkt.data, pkt.caplen) != 0) {
                ca_capture_close(c);
                return ca_seterr(err, errlen, CA_EIO, "client went away");
            }
            (*written)++;
            if (++e->seen == e->pkts)
                done++;
            break;
        }
    }
    ca_capture_close(c);
    return rc < 0 ? rc : 0;
}
