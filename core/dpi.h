/*
 * Deep packet inspection with nDPI: the only module that includes nDPI's
 * headers.  A struct ca_dpi is per process (it owns the detection module);
 * a struct ca_dpi_flow is per flow and is freed as soon as detection is
 * over, so that memory does not grow with long flows.
 */
#ifndef CA_DPI_H
#define CA_DPI_H

#include <stddef.h>
#include <stdint.h>

#include "flow.h"

struct ca_dpi;
struct ca_dpi_flow;

int ca_dpi_open(struct ca_dpi **out, char *err, size_t errlen);
void ca_dpi_close(struct ca_dpi *d); /* accepts NULL */

/*
 * A flow's detection state.  Freed states go to a pool in d (bounded) and
 * are reused, cleared, by the next ca_dpi_flow_new: no malloc, free and
 * fresh page per flow.  ca_dpi_trim frees the pool (end of an import).
 */
struct ca_dpi_flow *ca_dpi_flow_new(struct ca_dpi *d);          /* NULL on ENOMEM */
void ca_dpi_flow_free(struct ca_dpi *d, struct ca_dpi_flow *f); /* accepts NULL */
void ca_dpi_trim(struct ca_dpi *d);                             /* accepts NULL */

/* Prefetches f's state (a hint, a few packets before ca_dpi_packet). */
void ca_dpi_prefetch(const struct ca_dpi_flow *f);

/*
 * Feeds one packet (the innermost IP header and what follows, l3_len
 * bytes) of a flow that has seen npkts packets so far.  Returns 1 when
 * detection is over and no more packets are wanted.
 */
int ca_dpi_packet(struct ca_dpi *d, struct ca_dpi_flow *f, const uint8_t *l3, uint32_t l3_len,
                  uint64_t ts_ms, uint8_t l4, uint64_t npkts);

/* Ends detection (guessing when nothing was found) and fills l7 fields of out. */
void ca_dpi_result(struct ca_dpi *d, struct ca_dpi_flow *f, struct ca_flow *out);

#endif
