/*
 * Packet export: the packets of chosen flows, read back from the original
 * capture file and written as a pcap (nanosecond timestamps).  The store
 * keeps each flow's first-packet offset; a pass over a capture skips every
 * packet before the smallest offset wanted without decoding it, then
 * decodes the rest and keeps packets whose 5-tuple, time and offset belong
 * to a wanted flow, stopping once every flow has all its packets.
 */
#ifndef CA_EXPORT_H
#define CA_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "flow.h"

struct ca_export_flow {
    uint8_t key[40]; /* canonical 5-tuple (filled by ca_export_flow_init) */
    int64_t first_ns, last_ns;
    uint64_t offset; /* first packet's record offset */
    uint64_t pkts, seen;
};

typedef int (*ca_export_write_fn)(void *ctx, const void *buf, size_t len);

void ca_export_flow_init(struct ca_export_flow *e, const struct ca_flow *f);
/* pcap global header (magic a1b23c4d: ns) for link type dlt. */
int ca_export_pcap_header(int dlt, ca_export_write_fn w, void *ctx);
/* Link type of a capture file; 0 or a ca_err. */
int ca_export_file_dlt(const char *path, int *dlt, char *err, size_t errlen);
/*
 * Writes the packets of flows[0..n) (all from the capture at path, whose
 * link type must be dlt) as pcap records.  Reorders flows.  *written gets
 * the packet count.  0 or a ca_err (write errors are CA_EIO).
 */
int ca_export_pcap_flows(const char *path, int dlt, struct ca_export_flow *flows, size_t n,
                         ca_export_write_fn w, void *ctx, uint64_t *written, char *err,
                         size_t errlen);

#endif
