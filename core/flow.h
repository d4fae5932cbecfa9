/*
 * The flow record: one bidirectional conversation, as produced by the flow
 * engine (core/flowtab.c), stored by the workspace store (core/store_ws.c),
 * and encoded for the API and the command line (core/flow_json.c).
 *
 * Direction: index 0 of every per-direction array is client -> server, the
 * client being the initiator (TCP SYN sender, otherwise the side with the
 * ephemeral port).  Addresses are 16 bytes; an IPv4 address occupies the
 * first 4 bytes and the rest are zero.
 *
 * The in-memory struct is fixed-size for speed; the stored form
 * (ca_flow_encode) is compact and versioned, so the struct may grow.
 */
#ifndef CA_FLOW_H
#define CA_FLOW_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define CA_HOST_MAX 256  /* server name, passive-DNS name */
#define CA_UA_MAX 256    /* HTTP user agent */
#define CA_L7_MAX 48     /* "TLS.Azure" */
#define CA_CAT_MAX 32    /* nDPI category name */
#define CA_ENCAP_MAX 96  /* "eth/vlan:10/ipv4/gre/ipv4/tcp" */
#define CA_RISKS_MAX 256 /* comma-separated nDPI risk names */
#define CA_TLSVER_MAX 16 /* "TLSv1.3" */

enum ca_tcp_state {
    CA_TCP_NONE = 0,    /* not TCP */
    CA_TCP_INCOMPLETE,  /* no completed handshake seen */
    CA_TCP_ESTABLISHED, /* SYN, SYN/ACK, ACK seen; no close */
    CA_TCP_CLOSED,      /* handshake seen and FIN from both sides */
    CA_TCP_RESET,       /* RST seen */
    CA_TCP_MIDSTREAM    /* began before the capture (no SYN seen) */
};

struct ca_flow {
    uint64_t id;         /* assigned by the store: capture_id << 32 | seq */
    uint32_t capture_id; /* the capture the flow came from */
    uint8_t ip_version;  /* 4 or 6 */
    uint8_t l4;          /* IP protocol number (6 TCP, 17 UDP, 1 ICMP, ...) */
    uint16_t vlan;       /* outermost 802.1Q VLAN id, 0 when none */
    uint8_t cli_ip[16];
    uint8_t srv_ip[16];
    uint16_t cli_port; /* TCP/UDP/SCTP ports; 0 for other protocols */
    uint16_t srv_port;
    uint8_t icmp_type; /* ICMP/ICMPv6 type and code of the first packet */
    uint8_t icmp_code;
    uint16_t icmp_id; /* echo identifier, part of the key for echo flows */
    uint8_t cli_mac[6];
    uint8_t srv_mac[6];
    uint8_t ts_nsec;      /* 1 if the source had nanosecond timestamps */
    uint8_t tcp_state;    /* enum ca_tcp_state */
    uint8_t tcp_flags[2]; /* OR of TCP flags seen per direction */
    int64_t first_ns;     /* first packet, ns since the epoch (UTC) */
    int64_t last_ns;      /* last packet */
    uint64_t pkts[2];
    uint64_t bytes[2];   /* wire length (pcap "len") */
    uint64_t payload[2]; /* L4 payload bytes */
    uint64_t retrans_bytes[2];
    uint64_t gap_bytes[2];
    uint16_t l7_master; /* nDPI protocol ids; 0 = unknown */
    uint16_t l7_app;
    uint16_t category; /* nDPI category id */
    uint64_t risk;     /* nDPI risk bitmask */
    char cli_cc[3];    /* ISO country, "" unknown, "--" private */
    char srv_cc[3];
    uint32_t cli_asn;
    uint32_t srv_asn;
    uint64_t first_pkt_offset; /* byte offset of the first packet's record in the file */
    uint64_t first_pkt_index;  /* 1-based packet number of the first packet */
    char l7_name[CA_L7_MAX];   /* "TLS.Azure", "DNS", "Unknown" */
    char category_name[CA_CAT_MAX];
    char host[CA_HOST_MAX];     /* SNI / HTTP Host / DNS query / QUIC SNI */
    char dns_name[CA_HOST_MAX]; /* server name learned from earlier DNS answers */
    char user_agent[CA_UA_MAX];
    char tls_version[CA_TLSVER_MAX];
    char encap[CA_ENCAP_MAX];
    char risks[CA_RISKS_MAX];
};

/*
 * Stored form.  ca_flow_encode writes at most CA_FLOW_ENC_MAX bytes into buf
 * and returns the length used.  ca_flow_decode returns 0 or CA_EFORMAT.
 */
#define CA_FLOW_ENC_MAX (sizeof(struct ca_flow) + 64)
size_t ca_flow_encode(const struct ca_flow *f, uint8_t *buf);
/* The same with id and capture_id given (the store's, without a copy of f). */
size_t ca_flow_encode_as(const struct ca_flow *f, uint64_t id, uint32_t capture_id, uint8_t *buf);
int ca_flow_decode(const uint8_t *buf, size_t len, struct ca_flow *f);
/* Sets the id of a record ca_flow_encode_as wrote (an id known only later, at commit). */
void ca_flow_set_id(uint8_t *buf, uint64_t id);

/*
 * JSON object with the API's field names (the same for the REST API and
 * `capatlasd flows`).  Caller owns the returned reference.  NULL on ENOMEM.
 */
json_t *ca_flow_to_json(const struct ca_flow *f);

/* Text form of an address (v4 when ip_version == 4).  buf >= 46 bytes. */
const char *ca_addr_str(uint8_t ip_version, const uint8_t addr[16], char *buf, size_t len);

#endif
