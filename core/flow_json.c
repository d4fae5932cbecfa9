/*
 * The one JSON encoder of a flow, shared by the REST API and `capatlasd
 * flows`.  Field names follow docs/api.md "Flow object"; src/dst are the
 * client and server, sent = client -> server.  Empty strings and unknown
 * numbers become null so that consumers need not know our sentinels.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "flow.h"

const char *ca_addr_str(uint8_t ip_version, const uint8_t addr[16], char *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return "";
    if (inet_ntop(ip_version == 4 ? AF_INET : AF_INET6, addr, buf, (socklen_t)len) == NULL)
        buf[0] = '\0';
    return buf;
}

static const char *l4_name(uint8_t l4, char *buf, size_t len)
{
    switch (l4) {
    case 6:
        return "tcp";
    case 17:
        return "udp";
    case 1:
        return "icmp";
    case 58:
        return "icmpv6";
    case 132:
        return "sctp";
    case 50:
        return "esp";
    default:
        snprintf(buf, len, "%u", l4);
        return buf;
    }
}

static const char *state_name(uint8_t s)
{
    switch (s) {
    case CA_TCP_INCOMPLETE:
        return "incomplete";
    case CA_TCP_ESTABLISHED:
        return "established";
    case CA_TCP_CLOSED:
        return "closed";
    case CA_TCP_RESET:
        return "reset";
    case CA_TCP_MIDSTREAM:
        return "midstream";
    default:
        return NULL;
    }
}

/* One letter per flag, '.' when absent: SYN ACK RST PSH URG ECE/CWR FIN */
static void flags_str(uint8_t fl, char out[8])
{
    out[0] = (fl & 0x02) ? 'S' : '.';
    out[1] = (fl & 0x10) ? 'A' : '.';
    out[2] = (fl & 0x04) ? 'R' : '.';
    out[3] = (fl & 0x08) ? 'P' : '.';
    out[4] = (fl & 0x20) ? 'U' : '.';
    out[5] = (fl & 0xc0) ? 'E' : '.';
    out[6] = (fl & 0x01) ? 'F' : '.';
    out[7] = '\0';
}

static void iso_time(int64_t ns, int nsec, char *buf, size_t len)
{
    time_t s = (time_t)(ns >= 0 ? ns / 1000000000 : (ns - 999999999) / 1000000000);
    int64_t frac = ns - (int64_t)s * 1000000000;
    struct tm tm;
    char base[32];

    gmtime_r(&s, &tm);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    if (nsec)
        snprintf(buf, len, "%s.%09lldZ", base, (long long)frac);
    else
        snprintf(buf, len, "%s.%06lldZ", base, (long long)(frac / 1000));
}

static json_t *str_or_null(const char *s)
{
    return s != NULL && s[0] != '\0' ? json_string(s) : json_null();
}

static json_t *mac_json(const uint8_t m[6])
{
    static const uint8_t zero[6];
    char b[18];

    if (memcmp(m, zero, 6) == 0)
        return json_null();
    snprintf(b, sizeof(b), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
    return json_string(b);
}

static int has_ports(uint8_t l4)
{
    return l4 == 6 || l4 == 17 || l4 == 132 || l4 == 136;
}

json_t *ca_flow_to_json(const struct ca_flow *f)
{
    char buf[64], b2[64], fl[8];
    json_t *o = json_object(), *risks;
    int icmp = f->l4 == 1 || f->l4 == 58;

    if (o == NULL)
        return NULL;
#define SET(k, v) json_object_set_new(o, k, v)
#define INT(v) json_integer((json_int_t)(v))
    SET("id", INT(f->id));
    SET("capture", INT(f->capture_id));
    SET("ip_version", INT(f->ip_version));
    SET("l4", json_string(l4_name(f->l4, buf, sizeof(buf))));
    SET("src", json_string(ca_addr_str(f->ip_version, f->cli_ip, buf, sizeof(buf))));
    SET("dst", json_string(ca_addr_str(f->ip_version, f->srv_ip, buf, sizeof(buf))));
    SET("src_port", has_ports(f->l4) ? INT(f->cli_port) : json_null());
    SET("dst_port", has_ports(f->l4) ? INT(f->srv_port) : json_null());
    SET("icmp_type", icmp ? INT(f->icmp_type) : json_null());
    SET("icmp_code", icmp ? INT(f->icmp_code) : json_null());
    SET("vlan", INT(f->vlan));
    SET("src_mac", mac_json(f->cli_mac));
    SET("dst_mac", mac_json(f->srv_mac));
    iso_time(f->first_ns, f->ts_nsec, buf, sizeof(buf));
    SET("first", json_string(buf));
    iso_time(f->last_ns, f->ts_nsec, buf, sizeof(buf));
    SET("last", json_string(buf));
    SET("first_ns", INT(f->first_ns));
    SET("last_ns", INT(f->last_ns));
    SET("duration", json_real((double)(f->last_ns - f->first_ns) / 1e9));
    SET("packets", INT(f->pkts[0] + f->pkts[1]));
    SET("bytes", INT(f->bytes[0] + f->bytes[1]));
    SET("sent_packets", INT(f->pkts[0]));
    SET("recv_packets", INT(f->pkts[1]));
    SET("sent_bytes", INT(f->bytes[0]));
    SET("recv_bytes", INT(f->bytes[1]));
    SET("sent_payload", INT(f->payload[0]));
    SET("recv_payload", INT(f->payload[1]));
    SET("sent_retrans", INT(f->retrans_bytes[0]));
    SET("recv_retrans", INT(f->retrans_bytes[1]));
    SET("sent_gap", INT(f->gap_bytes[0]));
    SET("recv_gap", INT(f->gap_bytes[1]));
    if (f->l4 == 6) {
        flags_str(f->tcp_flags[0], fl);
        SET("tcp_flags_sent", json_string(fl));
        flags_str(f->tcp_flags[1], fl);
        SET("tcp_flags_recv", json_string(fl));
    } else {
        SET("tcp_flags_sent", json_null());
        SET("tcp_flags_recv", json_null());
    }
    SET("tcp_state", str_or_null(state_name(f->tcp_state)));
    SET("proto", json_string(f->l7_name[0] ? f->l7_name : "Unknown"));
    /* "TLS.Google" -> master "TLS", app "Google"; "DNS" -> both "DNS" */
    {
        const char *name = f->l7_name[0] ? f->l7_name : "Unknown";
        const char *dot = strchr(name, '.');
        if (dot != NULL) {
            snprintf(b2, sizeof(b2), "%.*s", (int)(dot - name), name);
            SET("proto_master", json_string(b2));
            SET("proto_app", json_string(dot + 1));
        } else {
            SET("proto_master", json_string(name));
            SET("proto_app", json_string(name));
        }
    }
    SET("category", str_or_null(f->category_name));
    SET("host", str_or_null(f->host));
    SET("dns_name", str_or_null(f->dns_name));
    SET("user_agent", str_or_null(f->user_agent));
    SET("tls_version", str_or_null(f->tls_version));
    risks = json_array();
    if (risks != NULL) {
        const char *p = f->risks;
        while (*p != '\0') {
            const char *c = strchr(p, ',');
            size_t n = c ? (size_t)(c - p) : strlen(p);
            json_array_append_new(risks, json_stringn(p, n));
            p += n;
            if (*p == ',')
                p++;
        }
    }
    SET("risks", risks != NULL ? risks : json_null());
    SET("src_country", str_or_null(f->cli_cc));
    SET("dst_country", str_or_null(f->srv_cc));
    SET("src_asn", f->cli_asn ? INT(f->cli_asn) : json_null());
    SET("dst_asn", f->srv_asn ? INT(f->srv_asn) : json_null());
    SET("encap", json_string(f->encap));
    SET("first_packet", INT(f->first_pkt_index));
    SET("first_offset", INT(f->first_pkt_offset));
#undef SET
#undef INT
    return o;
}
