/*
 * IPv4 reassembly for the flow table: fragments of one datagram (source,
 * destination, protocol, id) are collected until the datagram is whole;
 * the rebuilt packet then goes to DPI and passive DNS, while each fragment
 * is still counted as the packet it is.  Memory is bounded (at most
 * CA_IPFRAG_MAX datagrams and CA_IPFRAG_BYTES buffered; the oldest is
 * dropped first) and incomplete datagrams expire after CA_IPFRAG_TIMEOUT_SEC
 * of capture time.
 */
#ifndef CA_IPFRAG_H
#define CA_IPFRAG_H

#include <stdint.h>

#include "decode.h"

#define CA_IPFRAG_MAX 256
#define CA_IPFRAG_BYTES (8u << 20)
#define CA_IPFRAG_TIMEOUT_SEC 30

struct ca_ipfrag;

struct ca_ipfrag *ca_ipfrag_new(void);    /* NULL on ENOMEM */
void ca_ipfrag_free(struct ca_ipfrag *f); /* accepts NULL */

/*
 * Adds the IPv4 fragment pi (pi->frag != 0).  Returns 1 when it completed
 * a datagram: *l3 / *len then hold the rebuilt IPv4 packet, valid until the
 * next call.  0 otherwise (kept, or dropped as malformed/oversized).
 */
int ca_ipfrag_add(struct ca_ipfrag *f, const struct ca_pkt_info *pi, int64_t ts_ns,
                  const uint8_t **l3, uint32_t *len);

uint64_t ca_ipfrag_reassembled(const struct ca_ipfrag *f); /* datagrams completed */
uint64_t ca_ipfrag_dropped(const struct ca_ipfrag *f);     /* expired, evicted or bad */

#endif
