/*
 * Packet decoder (see decode.h).  Layers are peeled by small functions that
 * each take (pointer, bytes left) and never look past it; the encap string
 * records the path taken ("eth/vlan:10/ipv4/udp/vxlan/eth/ipv4/tcp").
 * Tunnels are followed to a fixed depth so a crafted packet cannot recurse
 * for long.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "decode.h"

#define MAX_DEPTH 6

/* DLT values as libpcap defines them on Linux; not including pcap.h here */
#define DLT_NULL_ 0
#define DLT_EN10MB_ 1
#define DLT_PPP_ 9
#define DLT_RAW_ 12
#define DLT_RAW_BSD 14
#define DLT_PPP_SERIAL_ 50
#define DLT_PPP_ETHER_ 51
#define DLT_C_HDLC_ 104
#define DLT_LOOP_ 108
#define DLT_LINUX_SLL_ 113
#define DLT_PPI_ 192
#define DLT_IPV4_ 228
#define DLT_IPV6_ 229
#define DLT_NFLOG_ 239
#define DLT_LINUX_SLL2_ 276
#define DLT_IEEE802_11_ 105
#define DLT_IEEE802_11_RADIO_ 127

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint16_t rd16le(const uint8_t *p)
{
    return (uint16_t)(p[1] << 8 | p[0]);
}

static uint32_t rd32le(const uint8_t *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* Appends "/s" to the encapsulation path (per packet: no printf, and the
 * path's length is kept, not counted again). */
static void add_encap(struct ca_pkt_info *pi, const char *s)
{
    size_t n = pi->encap_len, l = strlen(s);

    if (n + 1 >= sizeof(pi->encap))
        return;
    if (n > 0)
        pi->encap[n++] = '/';
    if (l > sizeof(pi->encap) - 1 - n)
        l = sizeof(pi->encap) - 1 - n;
    memcpy(pi->encap + n, s, l);
    pi->encap[n + l] = '\0';
    pi->encap_len = (uint32_t)(n + l);
}

/* "name:N" without printf */
static void add_encap_num(struct ca_pkt_info *pi, const char *name, unsigned v)
{
    char buf[24], dig[12];
    size_t n = strlen(name), k = 0;

    if (n > 10)
        n = 10;
    memcpy(buf, name, n);
    buf[n++] = ':';
    do
        dig[k++] = (char)('0' + v % 10);
    while ((v /= 10) != 0 && k < sizeof(dig));
    while (k > 0)
        buf[n++] = dig[--k];
    buf[n] = '\0';
    add_encap(pi, buf);
}

static const char *ip_any(const uint8_t *p, uint32_t len, struct ca_pkt_info *pi, int depth);
static const char *eth(const uint8_t *p, uint32_t len, struct ca_pkt_info *pi, int depth);

static const char *ethertype_name(uint16_t t)
{
    switch (t) {
    case 0x0806:
        return "non_ip:arp";
    case 0x8035:
        return "non_ip:rarp";
    case 0x88cc:
        return "non_ip:lldp";
    case 0x888e:
        return "non_ip:eapol";
    case 0x88f7:
        return "non_ip:ptp";
    case 0x8863:
        return "non_ip:pppoe_discovery";
    case 0x9000:
        return "non_ip:loopback";
    case 0x88e5:
        return "non_ip:macsec";
    case 0x8809:
        return "non_ip:slow_protocols";
    case 0x2000:
        return "non_ip:cdp";
    case 0x8100:
    case 0x88a8:
        return "non_ip:vlan";
    case 0x86dd:
    case 0x0800:
        return "non_ip:ip"; /* not reached */
    case 0x8137:
        return "non_ip:ipx";
    case 0x809b:
        return "non_ip:appletalk";
    case 0x8892:
        return "non_ip:profinet";
    case 0x88a4:
        return "non_ip:ethercat";
    case 0x0842:
        return "non_ip:wol";
    case 0x893a:
        return "non_ip:ieee1905";
    default:
        return t < 0x0600 ? "non_ip:llc" : "non_ip:other";
    }
}

/* MPLS label stack then a guess of the payload from its first nibble */
static const char *mpls(const uint8_t *p, uint32_t len, struct ca_pkt_info *pi, int depth)
{
    for (int i = 0; i < 16; i++) {
        if (len < 4)
            return "truncated:mpls";
        uint32_t l = rd32(p);
        p += 4;
        len -= 4;
        if (l & 0x100)
            goto bottom;
    }
    return "malformed:mpls";
bottom:
    add_encap(pi, "mpls");
    if (len < 1)
        return "truncated:mpls";
    if ((p[0] >> 4) == 4 || (p[0] >> 4) == 6)
        return ip_any(p, len, pi, depth + 1);
    if (p[0] == 0 && len >= 4 + 14) /* pseudowire control word + Ethernet */
        return eth(p + 4, len - 4, pi, depth + 1);
    return "non_ip:mpls_other";
}

static const char *ppp_proto(uint16_t proto, const uint8_t *p, uint32_t len, struct ca_pkt_info *pi,
                             int depth)
{
    switch (proto) {
    case 0x0021:
    case 0x0057:
        return ip_any(p, len, pi, depth + 1);
    case 0x0281:
    case 0x0283:
        return mpls(p, len, pi, depth + 1);
    case 0xc021:
        return "non_ip:ppp_lcp";
    case 0x8021:
        return "non_ip:ppp_ipcp";
    case 0xc023:
        return "non_ip:ppp_pap";
    case 0xc223:
        return "non_ip:ppp_chap";
    default:
        return "non_ip:ppp_other";
    }
}

static const char *ethertype(uint16_t t, const uint8_t *p, uint32_t len, struct ca_pkt_info *pi,
                             int depth)
{

    if (depth > MAX_DEPTH)
        return "malformed:too_deep";
    for (int guard = 0; guard < 8; guard++) {
        switch (t) {
        case 0x0800:
        case 0x86dd:
            return ip_any(p, len, pi, depth + 1);
        case 0x8100:
        case 0x88a8:
        case 0x9100:
        case 0x9200:
            if (len < 4)
                return "truncated:vlan";
            if (pi->vlan == 0)
                pi->vlan = rd16(p) & 0x0fff;
            add_encap_num(pi, "vlan", rd16(p) & 0x0fffu);
            t = rd16(p + 2);
            p += 4;
            len -= 4;
            continue;
        case 0x8926: /* VN-Tag */
            if (len < 6)
                return "truncated:vntag";
            add_encap(pi, "vntag");
            t = rd16(p + 4);
            p += 6;
            len -= 6;
            continue;
        case 0x8847:
        case 0x8848:
            return mpls(p, len, pi, depth + 1);
        case 0x8864: /* PPPoE session */
            if (len < 8)
                return "truncated:pppoe";
            add_encap(pi, "pppoe");
            {
                uint32_t plen = rd16(p + 4);
                uint16_t proto = rd16(p + 6);
                p += 8;
                len -= 8;
                if (plen >= 2 && plen - 2 < len)
                    len = plen - 2;
                return ppp_proto(proto, p, len, pi, depth);
            }
        default:
            return ethertype_name(t);
        }
    }
    return "malformed:vlan";
}

/*
 * An 802.11 frame (no FCS): data frames go on through LLC/SNAP; the MACs
 * are the frame's source and destination, whatever the DS bits.
 */
static const char *wlan(const uint8_t *p, uint32_t len, struct ca_pkt_info *pi, int depth)
{
    uint8_t fc0, fc1, type, sub;
    uint32_t hl = 24;
    const uint8_t *da, *sa;

    add_encap(pi, "wlan");
    if (len < 24)
        return "truncated:wlan";
    fc0 = p[0];
    fc1 = p[1];
    type = (fc0 >> 2) & 3;
    sub = (fc0 >> 4) & 0x0f;
    if ((fc0 & 3) != 0)
        return "malformed:wlan";
    if (type == 0)
        return "non_ip:wlan_mgmt";
    if (type == 1)
        return "non_ip:wlan_ctrl";
    if (type != 2)
        return "malformed:wlan";
    if (sub & 0x04)
        return "non_ip:wlan_null";
    if (fc1 & 0x40)
        return "non_ip:wlan_protected";
    if ((fc1 & 3) == 3)
        hl += 6;
    if (sub & 0x08) {
        hl += 2;
        if (fc1 & 0x80) /* +HTC */
            hl += 4;
    }
    switch (fc1 & 3) { /* ToDS, FromDS */
    case 0:
        da = p + 4, sa = p + 10;
        break;
    case 1:
        da = p + 16, sa = p + 10;
        break;
    case 2:
        da = p + 4, sa = p + 16;
        break;
    default:
        if (len < 30)
            return "truncated:wlan";
        da = p + 16, sa = p + 24;
        break;
    }
    if (!pi->has_mac) {
        pi->has_mac = 1;
        memcpy(pi->dst_mac, da, 6);
        memcpy(pi->src_mac, sa, 6);
    }
    if (len < hl + 8)
        return "truncated:wlan";
    if (p[hl] != 0xaa || p[hl + 1] != 0xaa || p[hl + 2] != 0x03)
        return "non_ip:wlan_llc";
    return ethertype(rd16(p + hl + 6), p + hl + 8, len - hl - 8, pi, depth + 1);
}

/* Radiotap header, then 802.11; the Flags field says whether an FCS ends the frame. */
static const char *radiotap(const uint8_t *p, uint32_t len, struct ca_pkt_info *pi)
{
    uint32_t rl, off = 8, present;
    int fcs = 0;

    add_encap(pi, "radiotap");
    if (len < 8)
        return "truncated:radiotap";
    rl = rd16le(p + 2);
    if (p[0] != 0 || rl < 8)
        return "malformed:radiotap";
    if (rl > len)
        return "truncated:radiotap";
    present = rd32le(p + 4);
    for (uint32_t pr = present; pr & 0x80000000u; pr = rd32le(p + off - 4)) {
        if (off + 4 > rl)
            return "malformed:radiotap";
        off += 4;
    }
    if (present & 1) /* TSFT: 8 bytes, aligned to 8 */
        off = ((off + 7) & ~7u) + 8;
    if ((present & 2) && off < rl && (p[off] & 0x10))
        fcs = 1;
    p += rl;
    len -= rl;
    if (fcs) {
        if (len < 4)
            return "truncated:wlan";
        len -= 4;
    }
    return wlan(p, len, pi, 1);
}

static const char *eth(const uint8_t *p, uint32_t len, struct ca_pkt_info *pi, int depth)
{
    if (len < 14)
        return "truncated:eth";
    if (!pi->has_mac) {
        pi->has_mac = 1;
        memcpy(pi->dst_mac, p, 6);
        memcpy(pi->src_mac, p + 6, 6);
    }
    add_encap(pi, "eth");
    return ethertype(rd16(p + 12), p + 14, len - 14, pi, depth);
}

static const char *udp_tunnel(const uint8_t *p, uint32_t len, struct ca_pkt_info *pi, int depth,
                              int *taken)
{
    uint16_t sp = pi->sport, dp = pi->dport;

    *taken = 0;
    if (depth > MAX_DEPTH)
        return NULL;
    if ((dp == 37008 || sp == 37008) && len >= 5 && p[0] == 1) { /* TZSP */
        uint16_t enc = rd16(p + 2);
        uint32_t o = 4;
        while (o < len && p[o] != 1) { /* tagged fields up to END */
            if (p[o] == 0)
                o++;
            else if (o + 2 <= len)
                o += 2u + p[o + 1];
            else
                return NULL;
        }
        if (o >= len || (enc != 1 && enc != 18))
            return NULL;
        o++;
        *taken = 1;
        if (pi->tunnel == NULL)
            pi->tunnel = "tzsp";
        add_encap(pi, "tzsp");
        return enc == 1 ? eth(p + o, len - o, pi, depth + 1) : wlan(p + o, len - o, pi, depth + 1);
    }
    if ((dp == 3544 || sp == 3544) &&
        len >= 40) { /* Teredo: IPv6 in UDP, maybe after indications */
        uint32_t o = 0;
        if (p[0] == 0 && p[1] == 1 && len >= 4) { /* authentication indication */
            o = 4u + p[2] + p[3] + 8 + 1;
        }
        if (o + 8 <= len && p[o] == 0 && p[o + 1] == 0) /* origin indication */
            o += 8;
        if (o + 40 <= len && (p[o] >> 4) == 6 && rd16(p + o + 4) + 40u == len - o) {
            *taken = 1;
            if (pi->tunnel == NULL)
                pi->tunnel = "teredo";
            add_encap(pi, "teredo");
            return ip_any(p + o, len - o, pi, depth + 1);
        }
    }
    if ((dp == 4789 || sp == 4789) && len >= 8 + 14 && (p[0] & 0x08)) {
        *taken = 1;
        if (pi->tunnel == NULL)
            pi->tunnel = "vxlan";
        add_encap(pi, "vxlan");
        return eth(p + 8, len - 8, pi, depth + 1);
    }
    if ((dp == 6081 || sp == 6081) && len >= 8 && (p[0] >> 6) == 0) {
        uint32_t hl = 8 + (uint32_t)(p[0] & 0x3f) * 4;
        uint16_t proto = rd16(p + 2);
        if (hl < len && (proto == 0x6558 || proto == 0x0800 || proto == 0x86dd)) {
            *taken = 1;
            if (pi->tunnel == NULL)
                pi->tunnel = "geneve";
            add_encap(pi, "geneve");
            if (proto == 0x6558)
                return eth(p + hl, len - hl, pi, depth + 1);
            return ip_any(p + hl, len - hl, pi, depth + 1);
        }
    }
    if ((dp == 5247 || sp == 5247) && len >= 8 && (p[0] & 0xf0) == 0) { /* CAPWAP data */
        uint32_t hl = (uint32_t)(p[1] >> 3) * 4;
        int native = p[2] & 0x01, wbid = (p[2] >> 1) & 0x1f;
        if (hl >= 8 && hl < len && !native) {
            *taken = 1;
            if (pi->tunnel == NULL)
                pi->tunnel = "capwap";
            add_encap(pi, "capwap");
            return eth(p + hl, len - hl, pi, depth + 1);
        }
        if (hl >= 8 && native && wbid == 1 && hl + 24 + 8 <= len) {
            const uint8_t *w = p + hl;
            static const uint32_t hdrs[] = {24, 26, 30, 32}; /* plain, QoS, 4-address */
            uint32_t wl = 0;
            /* frame control bits vary with the AP: find the LLC/SNAP header */
            for (size_t k = 0; k < sizeof(hdrs) / sizeof(hdrs[0]); k++)
                if (hl + hdrs[k] + 8 <= len && w[hdrs[k]] == 0xaa && w[hdrs[k] + 1] == 0xaa &&
                    w[hdrs[k] + 2] == 0x03) {
                    wl = hdrs[k];
                    break;
                }
            if (wl == 0)
                return NULL;
            *taken = 1;
            if (pi->tunnel == NULL)
                pi->tunnel = "capwap";
            add_encap(pi, "capwap/wlan");
            return ethertype(rd16(w + wl + 6), w + wl + 8, len - hl - wl - 8, pi, depth + 1);
        }
    }
    if ((dp == 2152 || sp == 2152) && len >= 8 && (p[0] >> 5) == 1 && p[1] == 0xff) {
        uint32_t hl = 8;
        if (p[0] & 0x07) {
            if (len < 12)
                return NULL;
            hl = 12;
            uint8_t next = p[11];
            while (next != 0) {
                if (hl >= len)
                    return NULL;
                uint32_t el = (uint32_t)p[hl] * 4;
                if (el == 0 || hl + el > len)
                    return NULL;
                next = p[hl + el - 1];
                hl += el;
            }
        }
        if (hl < len && ((p[hl] >> 4) == 4 || (p[hl] >> 4) == 6)) {
            *taken = 1;
            if (pi->tunnel == NULL)
                pi->tunnel = "gtp";
            add_encap(pi, "gtp");
            return ip_any(p + hl, len - hl, pi, depth + 1);
        }
    }
    return NULL;
}

static const char *gre(const uint8_t *p, uint32_t len, struct ca_pkt_info *pi, int depth,
                       int *taken)
{
    uint32_t hl = 4;
    uint16_t flags, proto;

    *taken = 0;
    if (depth > MAX_DEPTH || len < 4)
        return NULL;
    flags = rd16(p);
    proto = rd16(p + 2);
    if ((flags & 0x7) == 1) {
        /*
         * Enhanced GRE (PPTP, RFC 2637): key field (payload length, call
         * id), optional sequence and acknowledgement numbers, then PPP.
         * Acknowledgement-only packets carry nothing and stay GRE flows.
         */
        uint32_t eh = 8 + ((flags & 0x1000) ? 4 : 0) + ((flags & 0x0080) ? 4 : 0);
        uint16_t pproto;
        if (proto != 0x880b || !(flags & 0x2000) || len <= eh || rd16(p + 4) == 0)
            return NULL;
        p += eh;
        len -= eh;
        if (len >= 2 && p[0] == 0xff && p[1] == 0x03) { /* address and control */
            p += 2;
            len -= 2;
        }
        if (len < 1)
            return NULL;
        if (p[0] & 1) { /* protocol field compression */
            pproto = p[0];
            p += 1;
            len -= 1;
        } else {
            if (len < 2)
                return NULL;
            pproto = rd16(p);
            p += 2;
            len -= 2;
        }
        if (pproto != 0x0021 && pproto != 0x0057)
            return NULL; /* LCP, CCP...: the GRE flow keeps them */
        *taken = 1;
        if (pi->tunnel == NULL)
            pi->tunnel = "gre";
        add_encap(pi, "gre/ppp");
        return ip_any(p, len, pi, depth + 1);
    }
    if ((flags & 0x7) != 0)
        return NULL;
    if (flags & 0x8000)
        hl += 4;
    if (flags & 0x2000)
        hl += 4;
    if (flags & 0x1000)
        hl += 4;
    if (hl >= len)
        return NULL;
    p += hl;
    len -= hl;
    switch (proto) {
    case 0x0800:
    case 0x86dd:
        *taken = 1;
        break;
    case 0x6558:
        if (len < 14)
            return NULL;
        *taken = 1;
        break;
    case 0x88be: /* ERSPAN type II: 8-byte header */
        if (len < 8 + 14)
            return NULL;
        *taken = 1;
        break;
    case 0x22eb: /* ERSPAN type III: 12 bytes, +8 with the O flag */
        if (len < 12)
            return NULL;
        {
            uint32_t eh = 12 + ((p[11] & 1) ? 8 : 0);
            if (len < eh + 14)
                return NULL;
            if (pi->tunnel == NULL)
                pi->tunnel = "erspan";
            add_encap(pi, "gre/erspan");
            *taken = 1;
            return eth(p + eh, len - eh, pi, depth + 1);
        }
    case 0x8847:
        *taken = 1;
        break;
    default:
        return NULL;
    }
    if (pi->tunnel == NULL)
        pi->tunnel = "gre";
    if (proto == 0x88be) {
        add_encap(pi, "gre/erspan");
        return eth(p + 8, len - 8, pi, depth + 1);
    }
    add_encap(pi, "gre");
    if (proto == 0x6558)
        return eth(p, len, pi, depth + 1);
    if (proto == 0x8847)
        return mpls(p, len, pi, depth + 1);
    return ip_any(p, len, pi, depth + 1);
}

/* L4 from the start of the IP payload; len bytes present, wire bytes per the IP header */
static const char *l4(uint8_t proto, const uint8_t *p, uint32_t len, uint32_t wire,
                      struct ca_pkt_info *pi, int depth)
{
    int taken;
    const char *r;

    pi->l4 = proto;
    pi->sport = pi->dport = 0;
    pi->tcp_flags = 0;
    pi->has_icmp_id = 0;
    pi->payload = p;
    pi->payload_len = len;
    pi->payload_wire = wire;
    if (pi->frag == 2) /* a later fragment has no L4 header */
        return NULL;
    switch (proto) {
    case 6: {
        add_encap(pi, "tcp");
        if (len < 20)
            return "truncated:tcp";
        uint32_t off = (uint32_t)(p[12] >> 4) * 4;
        if (off < 20)
            return "malformed:tcp";
        pi->sport = rd16(p);
        pi->dport = rd16(p + 2);
        pi->tcp_seq = rd32(p + 4);
        pi->tcp_ack = rd32(p + 8);
        pi->tcp_flags = p[13];
        if (off > len) {
            if (wire < off)
                return "malformed:tcp";
            off = len; /* options cut by the snap length: ports are good */
        }
        pi->payload = p + off;
        pi->payload_len = len - off;
        pi->payload_wire = wire >= off ? wire - (uint32_t)(p[12] >> 4) * 4 : 0;
        return NULL;
    }
    case 17:
    case 136: /* UDP-Lite */
        add_encap(pi, proto == 17 ? "udp" : "udplite");
        if (len < 8)
            return "truncated:udp";
        pi->sport = rd16(p);
        pi->dport = rd16(p + 2);
        pi->payload = p + 8;
        pi->payload_len = len - 8;
        pi->payload_wire = wire >= 8 ? wire - 8 : 0;
        r = udp_tunnel(p + 8, len - 8, pi, depth, &taken);
        if (taken)
            return r;
        return NULL;
    case 132: /* SCTP */
        add_encap(pi, "sctp");
        if (len < 12)
            return "truncated:sctp";
        pi->sport = rd16(p);
        pi->dport = rd16(p + 2);
        pi->payload = p + 12;
        pi->payload_len = len - 12;
        pi->payload_wire = wire >= 12 ? wire - 12 : 0;
        return NULL;
    case 1:
    case 58:
        add_encap(pi, proto == 1 ? "icmp" : "icmpv6");
        if (len < 4)
            return proto == 1 ? "truncated:icmp" : "truncated:icmpv6";
        pi->icmp_type = p[0];
        pi->icmp_code = p[1];
        if (len >= 8 && ((proto == 1 && (p[0] == 0 || p[0] == 8 || p[0] == 13 || p[0] == 14)) ||
                         (proto == 58 && (p[0] == 128 || p[0] == 129)))) {
            pi->icmp_id = rd16(p + 4);
            pi->has_icmp_id = 1;
        }
        pi->payload = p + 4;
        pi->payload_len = len - 4;
        pi->payload_wire = wire >= 4 ? wire - 4 : 0;
        return NULL;
    case 47:
        r = gre(p, len, pi, depth, &taken);
        if (taken)
            return r;
        add_encap(pi, "gre");
        return NULL;
    case 4:
    case 41:
        if (depth <= MAX_DEPTH && len >= 20 && (p[0] >> 4) == (proto == 4 ? 4 : 6)) {
            if (pi->tunnel == NULL)
                pi->tunnel = "ipip";
            return ip_any(p, len, pi, depth + 1);
        }
        add_encap(pi, proto == 4 ? "ipip" : "ipv6");
        return NULL;
    case 50:
        add_encap(pi, "esp");
        return NULL;
    default: {
        add_encap_num(pi, "ip", proto);
        return NULL;
    }
    }
}

static const char *ipv4(const uint8_t *p, uint32_t len, struct ca_pkt_info *pi, int depth)
{
    uint32_t hl, tot;
    uint16_t fo;

    add_encap(pi, "ipv4");
    if (len < 20)
        return "truncated:ipv4";
    hl = (uint32_t)(p[0] & 0x0f) * 4;
    if (hl < 20)
        return "malformed:ipv4";
    if (hl > len)
        return "truncated:ipv4";
    tot = rd16(p + 2);
    if (tot < hl) {
        if (tot == 0) /* TSO-captured frames carry 0: trust the capture */
            tot = len;
        else
            return "malformed:ipv4";
    }
    pi->ip_version = 4;
    memset(pi->src, 0, 16);
    memset(pi->dst, 0, 16);
    memcpy(pi->src, p + 12, 4);
    memcpy(pi->dst, p + 16, 4);
    pi->l3 = p;
    pi->l3_len = tot < len ? tot : len;
    fo = rd16(p + 6);
    pi->frag = 0;
    if (fo & 0x1fff)
        pi->frag = 2;
    else if (fo & 0x2000)
        pi->frag = 1;
    pi->frag_id = rd16(p + 4);
    return l4(p[9], p + hl, pi->l3_len - hl, tot - hl, pi, depth);
}

static const char *ipv6(const uint8_t *p, uint32_t len, struct ca_pkt_info *pi, int depth)
{
    uint32_t plen, off = 40, avail;
    uint8_t nh;

    add_encap(pi, "ipv6");
    if (len < 40)
        return "truncated:ipv6";
    plen = rd16(p + 4);
    if (plen == 0) /* jumbogram or TSO: use what was captured */
        plen = len - 40;
    pi->ip_version = 6;
    memcpy(pi->src, p + 8, 16);
    memcpy(pi->dst, p + 24, 16);
    pi->l3 = p;
    pi->l3_len = 40 + plen < len ? 40 + plen : len;
    avail = pi->l3_len;
    pi->frag = 0;
    nh = p[6];
    for (int i = 0; i < 16; i++) {
        uint32_t el;
        switch (nh) {
        case 0:
        case 43:
        case 60:
        case 135:
        case 139:
        case 140:
            if (off + 2 > avail)
                return "truncated:ipv6_ext";
            el = ((uint32_t)p[off + 1] + 1) * 8;
            break;
        case 51:
            if (off + 2 > avail)
                return "truncated:ipv6_ext";
            el = ((uint32_t)p[off + 1] + 2) * 4;
            break;
        case 44:
            if (off + 8 > avail)
                return "truncated:ipv6_ext";
            el = 8;
            if (rd16(p + off + 2) & 0xfff8)
                pi->frag = 2;
            else if (p[off + 3] & 1)
                pi->frag = 1;
            pi->frag_id = rd32(p + off + 4);
            break;
        default:
            goto done;
        }
        if (off + el > avail) {
            if (off + el > 40 + plen)
                return "malformed:ipv6_ext";
            return "truncated:ipv6_ext";
        }
        nh = p[off];
        off += el;
    }
    return "malformed:ipv6_ext";
done:
    if (off > 40 + plen)
        return "malformed:ipv6";
    return l4(nh, p + off, avail - off, 40 + plen - off, pi, depth);
}

static const char *ip_any(const uint8_t *p, uint32_t len, struct ca_pkt_info *pi, int depth)
{
    if (depth > MAX_DEPTH)
        return "malformed:too_deep";
    if (len < 1)
        return "truncated:ip";
    switch (p[0] >> 4) {
    case 4:
        return ipv4(p, len, pi, depth);
    case 6:
        return ipv6(p, len, pi, depth);
    default:
        return "malformed:ip_version";
    }
}

static const char *nflog(const uint8_t *p, uint32_t len, struct ca_pkt_info *pi)
{
    uint32_t off = 4;

    if (len < 4)
        return "truncated:nflog";
    add_encap(pi, "nflog");
    while (off + 4 <= len) {
        uint32_t tl = rd16le(p + off), type = rd16le(p + off + 2);
        if (tl < 4 || off + tl > len)
            return "malformed:nflog";
        if (type == 9)
            return ip_any(p + off + 4, tl - 4, pi, 1);
        off += (tl + 3) & ~3u;
    }
    return "non_ip:nflog";
}

const char *ca_decode(int dlt, const uint8_t *p, uint32_t len, struct ca_pkt_info *pi)
{
    /* the encap buffer is read up to its NUL only: not worth clearing whole */
    memset(pi, 0, offsetof(struct ca_pkt_info, encap));
    pi->encap[0] = '\0';
    switch (dlt) {
    case DLT_EN10MB_:
        return eth(p, len, pi, 0);
    case DLT_IEEE802_11_:
        return wlan(p, len, pi, 0);
    case DLT_IEEE802_11_RADIO_:
        return radiotap(p, len, pi);
    case DLT_RAW_:
    case DLT_RAW_BSD:
    case DLT_IPV4_:
    case DLT_IPV6_:
        add_encap(pi, "raw");
        return ip_any(p, len, pi, 0);
    case DLT_NULL_:
    case DLT_LOOP_: {
        if (len < 4)
            return "truncated:null";
        uint32_t fam = dlt == DLT_LOOP_ ? rd32(p) : rd32le(p);
        if (fam > 0xffff) /* written on the other endianness */
            fam = dlt == DLT_LOOP_ ? rd32le(p) : rd32(p);
        add_encap(pi, "null");
        if (fam == 2 || fam == 24 || fam == 28 || fam == 30 || fam == 10)
            return ip_any(p + 4, len - 4, pi, 0);
        return "non_ip:null_other";
    }
    case DLT_PPP_:
    case DLT_PPP_SERIAL_:
    case DLT_C_HDLC_: {
        uint32_t off = 0;
        uint16_t proto;
        if (len < 2)
            return "truncated:ppp";
        if (p[0] == 0xff && p[1] == 0x03)
            off = 2;
        else if (dlt == DLT_C_HDLC_ || p[0] == 0x0f || p[0] == 0x8f)
            off = 2;
        if (len < off + 2)
            return "truncated:ppp";
        proto = rd16(p + off);
        add_encap(pi, dlt == DLT_C_HDLC_ ? "chdlc" : "ppp");
        if (dlt == DLT_C_HDLC_ || (p[0] == 0x0f || p[0] == 0x8f)) {
            if (proto == 0x8035)
                return "non_ip:slarp";
            if (proto == 0x2000)
                return "non_ip:cdp";
            return ethertype(proto, p + off + 2, len - off - 2, pi, 0);
        }
        if (!(proto & 0x0100) && len >= off + 1 && (p[off] & 1)) { /* compressed protocol */
            proto = p[off];
            return ppp_proto(proto, p + off + 1, len - off - 1, pi, 0);
        }
        return ppp_proto(proto, p + off + 2, len - off - 2, pi, 0);
    }
    case DLT_LINUX_SLL_:
        if (len < 16)
            return "truncated:sll";
        add_encap(pi, "sll");
        if (rd16(p + 4) == 6 && rd16(p + 2) == 1) {
            pi->has_mac = 1;
            memcpy(pi->src_mac, p + 6, 6);
        }
        return ethertype(rd16(p + 14), p + 16, len - 16, pi, 0);
    case DLT_LINUX_SLL2_:
        if (len < 20)
            return "truncated:sll2";
        add_encap(pi, "sll2");
        if (p[11] == 6 && rd16(p + 8) == 1) {
            pi->has_mac = 1;
            memcpy(pi->src_mac, p + 12, 6);
        }
        return ethertype(rd16(p), p + 20, len - 20, pi, 0);
    case DLT_PPI_: {
        if (len < 8)
            return "truncated:ppi";
        uint32_t hl = rd16le(p + 2), inner = rd32le(p + 4);
        if (hl < 8 || hl > len)
            return "malformed:ppi";
        if (inner == DLT_PPI_)
            return "malformed:ppi";
        const char *r = ca_decode((int)inner, p + hl, len - hl, pi);
        char save[CA_ENCAP_MAX];
        snprintf(save, sizeof(save), "ppi/%s", pi->encap);
        memcpy(pi->encap, save, sizeof(save));
        pi->encap_len = (uint32_t)strlen(pi->encap);
        return r;
    }
    case DLT_NFLOG_:
        return nflog(p, len, pi);
    default:
        return "unsupported_link";
    }
}
