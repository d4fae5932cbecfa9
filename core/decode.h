/*
 * Packet decoder: from a link-layer frame to the innermost IP 5-tuple,
 * through VLAN/MPLS/PPPoE and the common tunnels.  Every read is checked
 * against caplen.  Pure functions, no allocation.
 */
#ifndef CA_DECODE_H
#define CA_DECODE_H

#include <stdint.h>

#include "flow.h"

struct ca_pkt_info {
    uint8_t ip_version; /* innermost IP */
    uint8_t l4;
    uint16_t vlan; /* outermost 802.1Q id */
    uint8_t src[16], dst[16];
    uint16_t sport, dport;
    uint8_t tcp_flags;
    uint32_t tcp_seq, tcp_ack;
    uint8_t icmp_type, icmp_code;
    uint16_t icmp_id;
    uint8_t has_icmp_id;
    uint8_t has_mac;
    uint8_t src_mac[6], dst_mac[6]; /* outermost Ethernet */
    uint8_t frag;                   /* 0 none, 1 first fragment, 2 later fragment */
    uint32_t frag_id;
    const uint8_t *l3; /* innermost IP header, l3_len bytes present */
    uint32_t l3_len;
    const uint8_t *payload; /* L4 payload present in the capture */
    uint32_t payload_len;
    uint32_t payload_wire;    /* L4 payload length according to the IP header */
    const char *tunnel;       /* outermost tunnel name ("gre", "vxlan", ...) or NULL */
    uint32_t encap_len;       /* strlen(encap) */
    char encap[CA_ENCAP_MAX]; /* last: ca_decode clears only encap[0] of it */
};

/*
 * Decodes one frame of link type dlt.  Returns NULL when pi describes an IP
 * packet, else a static reason the packet was skipped: "non_ip:<name>"
 * (e.g. "non_ip:arp"), "truncated:<layer>", "malformed:<layer>",
 * "unsupported_link:<dlt>".
 */
const char *ca_decode(int dlt, const uint8_t *p, uint32_t caplen, struct ca_pkt_info *pi);

#endif
