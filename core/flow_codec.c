/*
 * Stored form of struct ca_flow: a version byte, the fixed-size fields in
 * little-endian order, then each string as a 16-bit length and its bytes.
 * Decoding trusts nothing: every length is checked against the buffer and
 * the destination field, and bad values are rejected with CA_EFORMAT.
 */
#include <endian.h>
#include <string.h>

#include "ca_error.h"
#include "flow.h"

#define CODEC_VERSION 1

struct wr {
    uint8_t *p;
    size_t n;
};

static void w8(struct wr *w, uint8_t v)
{
    w->p[w->n++] = v;
}

/* Little-endian words as one store each (the encoder runs once a flow
 * on import); the same bytes as writing them one by one. */
static void w16(struct wr *w, uint16_t v)
{
    v = htole16(v);
    memcpy(w->p + w->n, &v, 2);
    w->n += 2;
}

static void w32(struct wr *w, uint32_t v)
{
    v = htole32(v);
    memcpy(w->p + w->n, &v, 4);
    w->n += 4;
}

static void w64(struct wr *w, uint64_t v)
{
    v = htole64(v);
    memcpy(w->p + w->n, &v, 8);
    w->n += 8;
}

static void wbytes(struct wr *w, const void *b, size_t n)
{
    memcpy(w->p + w->n, b, n);
    w->n += n;
}

static void wstr(struct wr *w, const char *s, size_t max)
{
    size_t n = strnlen(s, max - 1);
    w16(w, (uint16_t)n);
    wbytes(w, s, n);
}

struct rd {
    const uint8_t *p;
    size_t n, off;
    int bad;
};

static uint8_t r8(struct rd *r)
{
    if (r->off + 1 > r->n) {
        r->bad = 1;
        return 0;
    }
    return r->p[r->off++];
}

static uint16_t r16(struct rd *r)
{
    uint16_t lo = r8(r);
    return (uint16_t)(lo | (uint16_t)r8(r) << 8);
}

static uint32_t r32(struct rd *r)
{
    uint32_t lo = r16(r);
    return lo | (uint32_t)r16(r) << 16;
}

static uint64_t r64(struct rd *r)
{
    uint64_t lo = r32(r);
    return lo | (uint64_t)r32(r) << 32;
}

static void rbytes(struct rd *r, void *b, size_t n)
{
    if (r->bad || r->off + n > r->n) {
        r->bad = 1;
        memset(b, 0, n);
        return;
    }
    memcpy(b, r->p + r->off, n);
    r->off += n;
}

static void rstr(struct rd *r, char *s, size_t max)
{
    uint16_t n = r16(r);

    s[0] = '\0';
    if (r->bad || n >= max || r->off + n > r->n) {
        r->bad = 1;
        return;
    }
    memcpy(s, r->p + r->off, n);
    s[n] = '\0';
    if (memchr(s, '\0', n) != NULL)
        r->bad = 1;
    r->off += n;
}

size_t ca_flow_encode(const struct ca_flow *f, uint8_t *buf)
{
    return ca_flow_encode_as(f, f->id, f->capture_id, buf);
}

void ca_flow_set_id(uint8_t *buf, uint64_t id)
{
    struct wr w = {buf + 1, 0}; /* after the version byte, as ca_flow_encode_as writes it */

    w64(&w, id);
}

size_t ca_flow_encode_as(const struct ca_flow *f, uint64_t id, uint32_t capture_id, uint8_t *buf)
{
    struct wr w = {buf, 0};

    w8(&w, CODEC_VERSION);
    w64(&w, id);
    w32(&w, capture_id);
    w8(&w, f->ip_version);
    w8(&w, f->l4);
    w16(&w, f->vlan);
    wbytes(&w, f->cli_ip, f->ip_version == 4 ? 4 : 16);
    wbytes(&w, f->srv_ip, f->ip_version == 4 ? 4 : 16);
    w16(&w, f->cli_port);
    w16(&w, f->srv_port);
    w8(&w, f->icmp_type);
    w8(&w, f->icmp_code);
    w16(&w, f->icmp_id);
    wbytes(&w, f->cli_mac, 6);
    wbytes(&w, f->srv_mac, 6);
    w8(&w, f->ts_nsec);
    w8(&w, f->tcp_state);
    w8(&w, f->tcp_flags[0]);
    w8(&w, f->tcp_flags[1]);
    w64(&w, (uint64_t)f->first_ns);
    w64(&w, (uint64_t)f->last_ns);
    for (int i = 0; i < 2; i++) {
        w64(&w, f->pkts[i]);
        w64(&w, f->bytes[i]);
        w64(&w, f->payload[i]);
        w64(&w, f->retrans_bytes[i]);
        w64(&w, f->gap_bytes[i]);
    }
    w16(&w, f->l7_master);
    w16(&w, f->l7_app);
    w16(&w, f->category);
    w64(&w, f->risk);
    wbytes(&w, f->cli_cc, 2);
    wbytes(&w, f->srv_cc, 2);
    w32(&w, f->cli_asn);
    w32(&w, f->srv_asn);
    w64(&w, f->first_pkt_offset);
    w64(&w, f->first_pkt_index);
    wstr(&w, f->l7_name, sizeof(f->l7_name));
    wstr(&w, f->category_name, sizeof(f->category_name));
    wstr(&w, f->host, sizeof(f->host));
    wstr(&w, f->dns_name, sizeof(f->dns_name));
    wstr(&w, f->user_agent, sizeof(f->user_agent));
    wstr(&w, f->tls_version, sizeof(f->tls_version));
    wstr(&w, f->encap, sizeof(f->encap));
    wstr(&w, f->risks, sizeof(f->risks));
    return w.n;
}

static int cc_ok(const char cc[3])
{
    if (cc[0] == '\0')
        return cc[1] == '\0';
    return cc[0] >= 0x20 && cc[0] < 0x7f && cc[1] >= 0x20 && cc[1] < 0x7f;
}

int ca_flow_decode(const uint8_t *buf, size_t len, struct ca_flow *f)
{
    struct rd r = {buf, len, 0, 0};

    memset(f, 0, sizeof(*f));
    if (buf == NULL || len < 1 || r8(&r) != CODEC_VERSION)
        return CA_EFORMAT;
    f->id = r64(&r);
    f->capture_id = r32(&r);
    f->ip_version = r8(&r);
    f->l4 = r8(&r);
    f->vlan = r16(&r);
    if (f->ip_version != 4 && f->ip_version != 6)
        return CA_EFORMAT;
    rbytes(&r, f->cli_ip, f->ip_version == 4 ? 4 : 16);
    rbytes(&r, f->srv_ip, f->ip_version == 4 ? 4 : 16);
    f->cli_port = r16(&r);
    f->srv_port = r16(&r);
    f->icmp_type = r8(&r);
    f->icmp_code = r8(&r);
    f->icmp_id = r16(&r);
    rbytes(&r, f->cli_mac, 6);
    rbytes(&r, f->srv_mac, 6);
    f->ts_nsec = r8(&r);
    f->tcp_state = r8(&r);
    f->tcp_flags[0] = r8(&r);
    f->tcp_flags[1] = r8(&r);
    f->first_ns = (int64_t)r64(&r);
    f->last_ns = (int64_t)r64(&r);
    for (int i = 0; i < 2; i++) {
        f->pkts[i] = r64(&r);
        f->bytes[i] = r64(&r);
        f->payload[i] = r64(&r);
        f->retrans_bytes[i] = r64(&r);
        f->gap_bytes[i] = r64(&r);
    }
    f->l7_master = r16(&r);
    f->l7_app = r16(&r);
    f->category = r16(&r);
    f->risk = r64(&r);
    rbytes(&r, f->cli_cc, 2);
    rbytes(&r, f->srv_cc, 2);
    f->cli_asn = r32(&r);
    f->srv_asn = r32(&r);
    f->first_pkt_offset = r64(&r);
    f->first_pkt_index = r64(&r);
    rstr(&r, f->l7_name, sizeof(f->l7_name));
    rstr(&r, f->category_name, sizeof(f->category_name));
    rstr(&r, f->host, sizeof(f->host));
    rstr(&r, f->dns_name, sizeof(f->dns_name));
    rstr(&r, f->user_agent, sizeof(f->user_agent));
    rstr(&r, f->tls_version, sizeof(f->tls_version));
    rstr(&r, f->encap, sizeof(f->encap));
    rstr(&r, f->risks, sizeof(f->risks));
    if (r.bad || r.off != len || f->tcp_state > CA_TCP_MIDSTREAM || f->ts_nsec > 1 ||
        !cc_ok(f->cli_cc) || !cc_ok(f->srv_cc)) {
        memset(f, 0, sizeof(*f));
        return CA_EFORMAT;
    }
    return 0;
}
