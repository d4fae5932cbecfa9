/*
 * gencap: the project's capture generator.  Writes a classic pcap (us,
 * Ethernet) of synthetic but protocol-correct traffic for benchmarks and
 * tests: TLS with SNI (ClientHello/ServerHello, then records), HTTP with
 * Host and User-Agent, DNS queries and answers, QUIC long-header Initials,
 * NTP, ICMP echo, TCP and UDP on random ports; some flows VLAN-tagged, some
 * IPv6; a few bulk transfers.  Many flows are live at once and their packets
 * interleave, as on a real link.  The output is a deterministic function of
 * the seed: a smaller -m gives a prefix of a larger one.
 *
 *   gencap [-m MB] [-s SEED] [-o FILE]      (default 1024 MB to stdout)
 *   gencap -t KIND -o FILE                  small unit-test captures:
 *      frag4       IPv4 UDP datagram in 3 fragments (+ out of order, + duplicate)
 *      direction   TCP flow whose SYN is missing (server port 443 < client)
 *      wlan        radiotap + 802.11 (DLT 127): a data frame with a DNS query
 *                  (FCS present), a beacon, a protected data frame
 *      tunnels     Ethernet: TZSP carrying Ethernet/IPv4/TCP, Teredo carrying
 *                  IPv6/ICMPv6 echo
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static uint32_t rn(uint32_t n)
{
    return n ? (uint32_t)(rnd() % n) : 0;
}

static FILE *out;
static uint64_t written, limit;
static int64_t now_us = 1700000000000000LL;

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void write_header_dlt(uint32_t dlt)
{
    uint32_t h[6] = {0xa1b2c3d4, 0x00040002, 0, 0, 65535, dlt};
    fwrite(h, 1, sizeof(h), out);
    written += sizeof(h);
}

static void write_header(void)
{
    write_header_dlt(1);
}

static void emit(const uint8_t *frame, uint32_t len)
{
    uint32_t rec[4] = {(uint32_t)(now_us / 1000000), (uint32_t)(now_us % 1000000), len, len};
    fwrite(rec, 1, sizeof(rec), out);
    fwrite(frame, 1, len, out);
    written += sizeof(rec) + len;
}

static uint16_t csum(const uint8_t *p, size_t n)
{
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < n; i += 2)
        s += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (n & 1)
        s += (uint32_t)p[n - 1] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

/* A flow's endpoints; side 0 is the client. */
struct ep {
    int v6;
    uint16_t vlan;
    uint8_t ip[2][16];
    uint8_t mac[2][6];
    uint16_t port[2];
    uint8_t l4;
    uint32_t seq[2];
};

static uint8_t frame[70000];

/* Builds eth[/vlan]/ip/l4 with payload pl, sender side d; returns the length. */
static uint32_t build(struct ep *e, int d, uint8_t tcpflags, const uint8_t *pl, uint32_t plen)
{
    uint8_t *p = frame;
    uint32_t l4len = (e->l4 == 6 ? 20 : e->l4 == 17 ? 8 : 0) + plen, n;

    memcpy(p, e->mac[!d], 6);
    memcpy(p + 6, e->mac[d], 6);
    p += 12;
    if (e->vlan) {
        put16(p, 0x8100);
        put16(p + 2, e->vlan);
        p += 4;
    }
    put16(p, e->v6 ? 0x86dd : 0x0800);
    p += 2;
    if (e->v6) {
        put32(p, 0x60000000);
        put16(p + 4, (uint16_t)l4len);
        p[6] = e->l4;
        p[7] = 64;
        memcpy(p + 8, e->ip[d], 16);
        memcpy(p + 24, e->ip[!d], 16);
        p += 40;
    } else {
        p[0] = 0x45;
        p[1] = 0;
        put16(p + 2, (uint16_t)(20 + l4len));
        put16(p + 4, (uint16_t)rnd());
        put16(p + 6, 0x4000);
        p[8] = 64;
        p[9] = e->l4;
        put16(p + 10, 0);
        memcpy(p + 12, e->ip[d], 4);
        memcpy(p + 16, e->ip[!d], 4);
        put16(p + 10, csum(p, 20));
        p += 20;
    }
    if (e->l4 == 6) {
        put16(p, e->port[d]);
        put16(p + 2, e->port[!d]);
        put32(p + 4, e->seq[d]);
        put32(p + 8, (tcpflags & 0x10) ? e->seq[!d] : 0);
        p[12] = 0x50;
        p[13] = tcpflags;
        put16(p + 14, 64240);
        put16(p + 16, 0);
        put16(p + 18, 0);
        e->seq[d] += plen + ((tcpflags & 0x03) ? 1 : 0);
        p += 20;
    } else if (e->l4 == 17) {
        put16(p, e->port[d]);
        put16(p + 2, e->port[!d]);
        put16(p + 4, (uint16_t)(8 + plen));
        put16(p + 6, 0);
        p += 8;
    } else { /* ICMP/ICMPv6 echo: the payload carries the header */
    }
    memcpy(p, pl, plen);
    p += plen;
    n = (uint32_t)(p - frame);
    if (n < 60) {
        memset(p, 0, 60 - n);
        n = 60;
    }
    return n;
}

static const char *domains[] = {
    "www.google.com",
    "mail.google.com",
    "www.youtube.com",
    "www.facebook.com",
    "graph.facebook.com",
    "www.microsoft.com",
    "login.live.com",
    "outlook.office365.com",
    "teams.microsoft.com",
    "www.amazon.com",
    "s3.amazonaws.com",
    "www.netflix.com",
    "api.twitter.com",
    "www.wikipedia.org",
    "github.com",
    "api.github.com",
    "www.apple.com",
    "icloud.com",
    "update.ubuntu.com",
    "deb.debian.org",
    "www.linkedin.com",
    "www.instagram.com",
    "web.whatsapp.com",
    "zoom.us",
    "www.dropbox.com",
    "slack.com",
    "www.spotify.com",
    "cdn.jsdelivr.net",
    "example.com",
    "portal.azure.com",
    "blob.core.windows.net",
    "www.reddit.com",
};
#define NDOM (sizeof(domains) / sizeof(domains[0]))

static uint32_t tls_client_hello(uint8_t *b, const char *sni)
{
    uint32_t sl = (uint32_t)strlen(sni), ext = (9 + sl) + 7 + 8, hs, i = 0;

    hs = 2 + 32 + 1 + (2 + 4) + 2 + 2 + ext;
    b[i++] = 0x16, b[i++] = 3, b[i++] = 1;
    put16(b + i, (uint16_t)(4 + hs)), i += 2;
    b[i++] = 1, b[i++] = 0;
    put16(b + i, (uint16_t)hs), i += 2;
    b[i++] = 3, b[i++] = 3;
    for (int k = 0; k < 32; k++)
        b[i++] = (uint8_t)rnd();
    b[i++] = 0;                   /* session id */
    put16(b + i, 4), i += 2;      /* cipher suites */
    put16(b + i, 0x1301), i += 2; /* TLS_AES_128_GCM_SHA256 */
    put16(b + i, 0xc02f), i += 2;
    b[i++] = 1, b[i++] = 0; /* compression */
    put16(b + i, (uint16_t)ext), i += 2;
    put16(b + i, 0), i += 2; /* server_name */
    put16(b + i, (uint16_t)(5 + sl)), i += 2;
    put16(b + i, (uint16_t)(3 + sl)), i += 2;
    b[i++] = 0;
    put16(b + i, (uint16_t)sl), i += 2;
    memcpy(b + i, sni, sl), i += sl;
    put16(b + i, 43), i += 2; /* supported_versions: TLS 1.3 */
    put16(b + i, 3), i += 2;
    b[i++] = 2, b[i++] = 3, b[i++] = 4;
    put16(b + i, 0x0a), i += 2; /* supported_groups: x25519 */
    put16(b + i, 4), i += 2;
    put16(b + i, 2), i += 2;
    put16(b + i, 0x1d), i += 2;
    return i;
}

static uint32_t tls_server_hello(uint8_t *b)
{
    uint32_t i = 0, hs = 2 + 32 + 1 + 2 + 1 + 2 + 6;

    b[i++] = 0x16, b[i++] = 3, b[i++] = 3;
    put16(b + i, (uint16_t)(4 + hs)), i += 2;
    b[i++] = 2, b[i++] = 0;
    put16(b + i, (uint16_t)hs), i += 2;
    b[i++] = 3, b[i++] = 3;
    for (int k = 0; k < 32; k++)
        b[i++] = (uint8_t)rnd();
    b[i++] = 0;
    put16(b + i, 0x1301), i += 2;
    b[i++] = 0;
    put16(b + i, 6), i += 2;
    put16(b + i, 43), i += 2;
    put16(b + i, 2), i += 2;
    put16(b + i, 0x0304), i += 2;
    /* change_cipher_spec, as TLS 1.3 middlebox compatibility sends */
    b[i++] = 0x14, b[i++] = 3, b[i++] = 3, b[i++] = 0, b[i++] = 1, b[i++] = 1;
    return i;
}

static uint32_t tls_app(uint8_t *b, uint32_t n)
{
    if (n < 6)
        n = 6;
    b[0] = 0x17, b[1] = 3, b[2] = 3;
    put16(b + 3, (uint16_t)(n - 5));
    for (uint32_t k = 5; k < n; k += 8) {
        uint64_t r = rnd();
        memcpy(b + k, &r, n - k < 8 ? n - k : 8);
    }
    return n;
}

static uint32_t dns_msg(uint8_t *b, const char *name, uint16_t id, int answer)
{
    uint32_t i = 12;
    const char *s = name;

    put16(b, id);
    put16(b + 2, answer ? 0x8180 : 0x0100);
    put16(b + 4, 1);
    put16(b + 6, answer ? 1 : 0);
    put16(b + 8, 0);
    put16(b + 10, 0);
    while (*s) {
        const char *dot = strchr(s, '.');
        uint32_t l = dot ? (uint32_t)(dot - s) : (uint32_t)strlen(s);
        b[i++] = (uint8_t)l;
        memcpy(b + i, s, l);
        i += l;
        s += l + (dot ? 1 : 0);
    }
    b[i++] = 0;
    put16(b + i, 1), i += 2;
    put16(b + i, 1), i += 2;
    if (answer) {
        put16(b + i, 0xc00c), i += 2;
        put16(b + i, 1), i += 2;
        put16(b + i, 1), i += 2;
        put32(b + i, 300), i += 4;
        put16(b + i, 4), i += 2;
        put32(b + i, (uint32_t)rnd()), i += 4;
    }
    return i;
}

enum kind { K_TLS, K_HTTP, K_DNS, K_QUIC, K_NTP, K_ICMP, K_TCP, K_UDP, K_BULK };

struct flow {
    struct ep e;
    enum kind k;
    int step, steps;
    char host[64];
};

static void new_flow(struct flow *f)
{
    uint32_t r = rn(1000);
    struct ep *e = &f->e;

    memset(f, 0, sizeof(*f));
    f->k = r < 300   ? K_TLS
           : r < 400 ? K_HTTP
           : r < 650 ? K_DNS
           : r < 720 ? K_QUIC
           : r < 760 ? K_NTP
           : r < 800 ? K_ICMP
           : r < 880 ? K_TCP
           : r < 998 ? K_UDP
                     : K_BULK;
    e->v6 = rn(100) < 15;
    e->vlan = rn(100) < 10 ? (uint16_t)(10 + rn(20)) : 0;
    for (int d = 0; d < 2; d++) {
        for (int k = 0; k < 6; k++)
            e->mac[d][k] = (uint8_t)rnd();
        e->mac[d][0] &= 0xfe;
        if (e->v6) {
            put32(e->ip[d], d == 0 ? 0xfd000000u : 0x2a000000u | rn(0xffffff));
            for (int k = 4; k < 16; k++)
                e->ip[d][k] = (uint8_t)rnd();
        } else if (d == 0) {
            put32(e->ip[d], 0x0a000000u | rn(1 << 16)); /* 10.0.x.y clients */
        } else {
            put32(e->ip[d], 0x20000000u + rn(0xb0000000u)); /* public servers */
        }
    }
    e->port[0] = (uint16_t)(32768 + rn(28000));
    e->seq[0] = (uint32_t)rnd();
    e->seq[1] = (uint32_t)rnd();
    snprintf(f->host, sizeof(f->host), "%s", domains[rn(NDOM)]);
    switch (f->k) {
    case K_TLS:
        e->l4 = 6, e->port[1] = 443, f->steps = 9 + (int)rn(8);
        break;
    case K_BULK:
        e->l4 = 6, e->port[1] = 443, f->steps = 100 + (int)rn(300);
        break;
    case K_HTTP:
        e->l4 = 6, e->port[1] = 80, f->steps = 8 + (int)rn(6);
        break;
    case K_DNS:
        e->l4 = 17, e->port[1] = 53, f->steps = 2;
        break;
    case K_QUIC:
        e->l4 = 17, e->port[1] = 443, f->steps = 4 + (int)rn(20);
        break;
    case K_NTP:
        e->l4 = 17, e->port[1] = 123, e->port[0] = 123, f->steps = 2;
        break;
    case K_ICMP:
        e->l4 = e->v6 ? 58 : 1, e->port[0] = (uint16_t)rnd(), f->steps = 2 * (1 + (int)rn(4));
        break;
    case K_TCP:
        e->l4 = 6, e->port[1] = (uint16_t)(1024 + rn(60000)), f->steps = 4 + (int)rn(10);
        break;
    case K_UDP:
        e->l4 = 17, e->port[1] = (uint16_t)(1024 + rn(60000)), f->steps = 1 + (int)rn(6);
        break;
    }
}

/* Emits the flow's next packet; returns 0 when the flow is over. */
static int step(struct flow *f)
{
    static uint8_t pl[2000];
    struct ep *e = &f->e;
    int s = f->step++, last = f->steps - 1;
    uint32_t n = 0;
    int d = 0;
    uint8_t fl = 0;

    if (e->l4 == 6) {
        if (s == 0)
            fl = 0x02;
        else if (s == 1)
            d = 1, fl = 0x12;
        else if (s == 2)
            fl = 0x10;
        else if (s == last - 1)
            fl = 0x11;
        else if (s == last)
            d = 1, fl = 0x11;
        else {
            d = (s % 2) == 0;
            fl = 0x18;
            if (f->k == K_TLS || f->k == K_BULK) {
                if (s == 3)
                    d = 0, n = tls_client_hello(pl, f->host);
                else if (s == 4)
                    d = 1, n = tls_server_hello(pl);
                else if (f->k == K_BULK)
                    d = rn(10) != 0, n = tls_app(pl, d ? 1400 : 60);
                else
                    n = tls_app(pl, 40 + rn(d ? 1200 : 300));
            } else if (f->k == K_HTTP) {
                if (s == 3)
                    d = 0, n = (uint32_t)snprintf((char *)pl, sizeof(pl),
                                                  "GET /%u HTTP/1.1\r\nHost: %s\r\nUser-Agent: "
                                                  "Mozilla/5.0 (X11; Linux x86_64) gencap/1\r\n"
                                                  "Accept: */*\r\n\r\n",
                                                  (unsigned)rn(100000), f->host);
                else if (s == 4)
                    d = 1, n = (uint32_t)snprintf((char *)pl, sizeof(pl),
                                                  "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                                                  "Content-Length: 1200\r\n\r\n");
                else
                    d = 1, n = 200 + rn(1200), memset(pl, 'x', n);
            } else {
                n = 1 + rn(1200);
                for (uint32_t k = 0; k < n; k++)
                    pl[k] = (uint8_t)rnd();
            }
        }
    } else if (f->k == K_DNS) {
        d = s;
        n = dns_msg(pl, f->host, (uint16_t)e->port[0], d);
    } else if (f->k == K_NTP) {
        d = s;
        memset(pl, 0, 48);
        pl[0] = d ? 0x24 : 0x23;
        pl[1] = d ? 2 : 0;
        n = 48;
    } else if (f->k == K_QUIC) {
        d = s == 0 ? 0 : (int)rn(2);
        n = d == 0 && s < 2 ? 1200 : 50 + rn(800);
        for (uint32_t k = 0; k < n; k++)
            pl[k] = (uint8_t)rnd();
        if (s < 2) { /* long header Initial, version 1 */
            pl[0] = 0xc3;
            put32(pl + 1, 1);
            pl[5] = 8;
            pl[14] = 0;
        } else {
            pl[0] = 0x40 | (pl[0] & 0x3f);
        }
    } else if (f->k == K_ICMP) {
        d = s % 2;
        n = 64;
        memset(pl, 0, n);
        pl[0] = e->l4 == 1 ? (d ? 0 : 8) : (d ? 129 : 128);
        put16(pl + 4, e->port[0]);
        put16(pl + 6, (uint16_t)(s / 2));
    } else {
        d = (int)rn(2);
        n = 20 + rn(1000);
        for (uint32_t k = 0; k < n; k++)
            pl[k] = (uint8_t)rnd();
    }
    emit(frame, build(e, d, fl, pl, n));
    return s < last;
}

/* Unit-test captures. */
static int test_capture(const char *kind)
{
    struct ep e;
    uint8_t pl[3000];

    memset(&e, 0, sizeof(e));
    put32(e.ip[0], 0xc0a80001);
    put32(e.ip[1], 0x08080808);
    memcpy(e.mac[0], "\x02\x00\x00\x00\x00\x01", 6);
    memcpy(e.mac[1], "\x02\x00\x00\x00\x00\x02", 6);
    if (strcmp(kind, "wlan") == 0) {
        /* inner packet: eth/ipv4/udp DNS query, of which the IP part is reused */
        uint32_t n, fl, ipl;
        uint8_t f[2000], *q;
        write_header_dlt(127);
        e.l4 = 17;
        e.port[0] = 40001;
        e.port[1] = 53;
        n = dns_msg(pl, "wlan.example.org", 9, 0);
        fl = build(&e, 0, 0, pl, n);
        ipl = 20 + 8 + n; /* IPv4 packet length (before the Ethernet padding) */
        for (int k = 0; k < 3; k++) {
            q = f;
            /* radiotap: version 0, length 9, present = Flags; Flags = FCS at end on frame 0 */
            q[0] = 0, q[1] = 0, q[2] = 9, q[3] = 0;
            q[4] = 0x02, q[5] = 0, q[6] = 0, q[7] = 0;
            q[8] = k == 0 ? 0x10 : 0;
            q += 9;
            if (k == 1) { /* beacon */
                memset(q, 0, 36);
                q[0] = 0x80;
                memset(q + 4, 0xff, 6);
                q += 36;
            } else {
                q[0] = 0x08;                 /* data */
                q[1] = k == 2 ? 0x41 : 0x01; /* ToDS (+ protected) */
                q[2] = q[3] = 0;
                memcpy(q + 4, "\x02\xbb\xbb\xbb\xbb\xbb", 6); /* BSSID */
                memcpy(q + 10, e.mac[0], 6);                  /* SA */
                memcpy(q + 16, e.mac[1], 6);                  /* DA */
                q[22] = q[23] = 0;
                q += 24;
                memcpy(q, "\xaa\xaa\x03\x00\x00\x00\x08\x00", 8);
                q += 8;
                memcpy(q, frame + 14, ipl);
                q += ipl;
                if (k == 0) {
                    memset(q, 0x5a, 4); /* FCS */
                    q += 4;
                }
            }
            now_us += 1000;
            emit(f, (uint32_t)(q - f));
        }
        (void)fl;
        return 0;
    }
    write_header();
    if (strcmp(kind, "tunnels") == 0) {
        struct ep outer = e, in4 = e, in6;
        uint8_t inner[2000];
        uint32_t n, il;
        /* TZSP: outer UDP 37008 carrying an Ethernet frame with TCP 10.1.1.1:5555 -> 10.2.2.2:80 */
        put32(in4.ip[0], 0x0a010101);
        put32(in4.ip[1], 0x0a020202);
        in4.l4 = 6;
        in4.port[0] = 5555;
        in4.port[1] = 80;
        n = (uint32_t)snprintf((char *)pl, sizeof(pl),
                               "GET / HTTP/1.1\r\nHost: tzsp.example\r\n\r\n");
        il = build(&in4, 0, 0x18, pl, n);
        inner[0] = 1, inner[1] = 0, inner[2] = 0, inner[3] = 1; /* v1, received, Ethernet */
        inner[4] = 1;                                           /* END */
        memcpy(inner + 5, frame, il);
        outer.l4 = 17;
        outer.port[0] = 37008;
        outer.port[1] = 37008;
        now_us += 1000;
        emit(frame, build(&outer, 0, 0, inner, 5 + il));
        /* Teredo: UDP 3544 carrying IPv6 ICMPv6 echo request and reply */
        memset(&in6, 0, sizeof(in6));
        in6.v6 = 1;
        in6.l4 = 58;
        put32(in6.ip[0], 0x20010000);
        put32(in6.ip[1], 0x2a000001);
        in6.ip[0][15] = 1;
        in6.ip[1][15] = 2;
        for (int d = 0; d < 2; d++) {
            uint8_t icmp[16] = {0};
            uint32_t fl6;
            icmp[0] = d ? 129 : 128;
            put16(icmp + 4, 0x77);
            fl6 = build(&in6, d, 0, icmp, sizeof(icmp));
            (void)fl6;
            memcpy(inner, frame + 14, 40 + sizeof(icmp)); /* the IPv6 packet */
            outer.port[0] = 50000;
            outer.port[1] = 3544;
            now_us += 1000;
            emit(frame, build(&outer, d, 0, inner, 40 + sizeof(icmp)));
        }
        return 0;
    }
    if (strcmp(kind, "frag4") == 0) {
        /*
         * A DNS answer of 2400 bytes in three fragments (in order), the same
         * again out of order with a duplicate, then a lone middle fragment
         * that never completes.  Packet 1 is the query.
         */
        uint32_t n, off[3] = {0, 800, 1600};
        uint16_t ids[2] = {0x1111, 0x2222};
        e.l4 = 17;
        e.port[0] = 40000;
        e.port[1] = 53;
        n = dns_msg(pl, "big.example.com", 7, 0);
        emit(frame, build(&e, 0, 0, pl, n));
        n = dns_msg(pl, "big.example.com", 7, 1);
        memset(pl + n, 'A', 2400 - n);
        n = 2400;
        for (int round = 0; round < 2; round++) {
            uint8_t udp[8 + 2400];
            static const int order[2][4] = {{0, 1, 2, -1}, {2, 0, 0, 1}};
            put16(udp, 53);
            put16(udp + 2, 40000);
            put16(udp + 4, (uint16_t)(8 + n));
            put16(udp + 6, 0);
            memcpy(udp + 8, pl, n);
            for (int k = 0; k < 4; k++) {
                int fi = order[round][k];
                if (fi < 0)
                    continue;
                uint32_t start = off[fi], end = fi == 2 ? 8 + n : off[fi + 1];
                uint8_t *p = frame;
                memcpy(p, e.mac[0], 6);
                memcpy(p + 6, e.mac[1], 6);
                put16(p + 12, 0x0800);
                p += 14;
                p[0] = 0x45;
                p[1] = 0;
                put16(p + 2, (uint16_t)(20 + end - start));
                put16(p + 4, ids[round]);
                put16(p + 6, (uint16_t)((fi == 2 ? 0 : 0x2000) | (start / 8)));
                p[8] = 64;
                p[9] = 17;
                put16(p + 10, 0);
                memcpy(p + 12, e.ip[1], 4);
                memcpy(p + 16, e.ip[0], 4);
                put16(p + 10, csum(p, 20));
                memcpy(p + 20, udp + start, end - start);
                now_us += 1000;
                emit(frame, 14 + 20 + end - start);
            }
        }
        { /* a lone middle fragment (id 0x3333): never completes */
            uint8_t *p = frame + 14;
            put16(p + 4, 0x3333);
            put16(p + 6, 0x2000 | (1480 / 8));
            now_us += 1000;
            emit(frame, 14 + 20 + 1480);
        }
        return 0;
    }
    if (strcmp(kind, "direction") == 0) {
        /* mid-stream TCP (no SYN): the first packet is the server's (443) */
        e.l4 = 6;
        e.port[0] = 51000;
        e.port[1] = 443;
        for (int k = 0; k < 6; k++) {
            int d = k % 2 == 0;
            uint32_t n = tls_app(pl, 100);
            now_us += 1000;
            emit(frame, build(&e, d, 0x18, pl, n));
        }
        return 0;
    }
    fprintf(stderr, "gencap: unknown test capture %s\n", kind);
    return 2;
}

int main(int argc, char **argv)
{
    const char *path = NULL, *test = NULL;
    uint64_t mb = 1024, seed = 1;
    static char obuf[1 << 20];
    struct flow *live;
    size_t nlive = 3000;
    uint64_t flows = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-m") == 0 && i + 1 < argc)
            mb = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc)
            test = argv[++i];
        else {
            fprintf(stderr, "usage: gencap [-m MB] [-s SEED] [-o FILE] | -t "
                            "frag4|direction|wlan|tunnels -o FILE\n");
            return 2;
        }
    }
    out = path ? fopen(path, "wb") : stdout;
    if (out == NULL) {
        perror(path);
        return 1;
    }
    setvbuf(out, obuf, _IOFBF, sizeof(obuf));
    rng_state ^= seed * 0x9e3779b97f4a7c15ull;
    if (test != NULL) {
        int r = test_capture(test);
        return (fclose(out) != 0 || r != 0) ? 1 : 0;
    }
    limit = mb << 20;
    write_header();
    live = calloc(nlive, sizeof(*live));
    if (live == NULL)
        return 1;
    for (size_t i = 0; i < nlive; i++, flows++)
        new_flow(&live[i]);
    while (written < limit) {
        size_t i = rn((uint32_t)nlive);
        now_us += 1 + rn(40);
        if (!step(&live[i])) {
            new_flow(&live[i]);
            flows++;
        }
    }
    fprintf(stderr, "gencap: %llu bytes, about %llu flows\n", (unsigned long long)written,
            (unsigned long long)flows);
    free(live);
    return fclose(out) != 0;
}
