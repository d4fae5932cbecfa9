/*
 * The query engine: one compiled filter and one workspace snapshot per
 * request, and the answers every view needs (docs/api.md, "Queries"):
 * flows pages with keyset cursors, summary counts, group-by aggregation
 * with top-N, time histograms, per-IP detail, host graph, value
 * completion.  All of them scan the hot records of ready captures
 * (struct ca_hot) through the filter; full flow records are decoded only
 * for the rows of a page.
 *
 * Answers are new JSON references owned by the caller.  Functions return 0
 * or a negative ca_err; for CA_EINVAL, err says what was wrong and *param
 * (when param is not NULL) names the request parameter at fault.
 */
#ifndef CA_QUERY_H
#define CA_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "store.h"

struct ca_query;

/* On a bad filter: CA_EINVAL, err, *errpos = column of the bad token. */
int ca_query_open(struct ca_ws *w, const char *filter, struct ca_query **out, char *err,
                  size_t errlen, int *errpos);
void ca_query_close(struct ca_query *q); /* accepts NULL */

/* {"flows","src_ips","dst_ips","ips","bytes","sent","recv","packets","first_ns","last_ns","captures"}
 */
int ca_query_summary(struct ca_query *q, json_t **out);

/* by: "proto" or "src,dst.port"; metrics: comma list or NULL; top 0 = all; order NULL = first
 * metric. */
int ca_query_aggregate(struct ca_query *q, const char *by, const char *metrics, long top,
                       const char *order, json_t **out, char *err, size_t errlen,
                       const char **param);

/* bins: target count; from/to: 0 = the filtered span. */
int ca_query_timeline(struct ca_query *q, int bins, int64_t from_ns, int64_t to_ns, json_t **out,
                      char *err, size_t errlen, const char **param);

/*
 * A page of flows.  sort: a flow field (NULL = "first"); cursor: from a
 * previous answer's "next" or NULL; columns: comma list or NULL (all).
 * *out = {"flows":[...],"next":cursor|null,"total":N}.
 */
int ca_query_flows(struct ca_query *q, const char *sort, int desc, size_t limit, const char *cursor,
                   const char *columns, json_t **out, char *err, size_t errlen, const char **param);

int ca_query_ip(struct ca_query *q, const char *ip, json_t **out, char *err, size_t errlen,
                const char **param);
int ca_query_graph(struct ca_query *q, size_t max_nodes, json_t **out);
int ca_query_values(struct ca_query *q, const char *field, const char *prefix, size_t limit,
                    json_t **out, char *err, size_t errlen, const char **param);

/*
 * Streaming helpers for exports: calls fn for each matching flow with id >
 * after, for at most max_chunks hot chunks; *last is the id of the last
 * flow looked at (match or not), 0 when the scan reached the end.
 * ca_query_refresh ends the snapshot and starts a new one (so that no read
 * transaction stays open while the export writes to the network).
 */
typedef int (*ca_query_row_fn)(void *arg, struct ca_ws_snap *s, uint64_t id,
                               const struct ca_hot *h);
int ca_query_each(struct ca_query *q, uint64_t after, size_t max_chunks, ca_query_row_fn fn,
                  void *arg, uint64_t *last);
int ca_query_refresh(struct ca_query *q);
void ca_query_release(struct ca_query *q); /* ends the snapshot until the next refresh */
struct ca_ws_snap *ca_query_snap(struct ca_query *q);

/*
 * Per-capture pre-computed tables, built by the store from the capture's
 * hot records in seq order: ca_capagg_add per hot chunk, then the emit
 * functions call put for each table (kind, bytes; stored as given, read
 * back with ca_ws_snap_capagg), or reserve for a big one (space for len
 * bytes that emit fills before its next call; len 0: space not used; a
 * part's tables are all big, so ca_capagg_emit_part only reserves),
 * and addr for each address with the seqs of the capture's flows that
 * have it on either side (ascending), in (version, address) order.
 *
 * The tables come in parts, each of a run of consecutive seqs, so that
 * the builder's memory is bounded by the part, not the capture:
 * ca_capagg_emit_part writes the tables that grow with the flows or their
 * addresses (by address, the two orders, the address lists) of the flows
 * added since the last part, ca_capagg_next_part empties them for the
 * next one, and after the last part ca_capagg_emit_capture writes, once,
 * the tables of bounded size, which cover the whole capture (the other
 * fields, the timeline, the address id lists, TAB_INFO).
 */
struct ca_capagg;
int ca_capagg_new(struct ca_capagg **out);
int ca_capagg_add(struct ca_capagg *a, uint32_t seq0, const struct ca_hot *h, size_t n);
/* The same with the flows' address indexes given (ix: client, server per
 * flow; NULL: as ca_capagg_add): addresses numbered from 0 in order of
 * first appearance, a new one being the next number.  A builder takes
 * either form only.  addr is then called in (version, address) order. */
int ca_capagg_add_ix(struct ca_capagg *a, uint32_t seq0, const struct ca_hot *h, const uint32_t *ix,
                     size_t n);
int ca_capagg_emit_part(struct ca_capagg *a,
                        int (*reserve)(void *arg, unsigned kind, size_t len, void **space),
                        int (*addr)(void *arg, int ver, const uint8_t a[16], const uint32_t *seqs,
                                    size_t n),
                        void *arg);
int ca_capagg_emit_capture(struct ca_capagg *a,
                           int (*put)(void *arg, unsigned kind, const void *data, size_t len),
                           int (*reserve)(void *arg, unsigned kind, size_t len, void **space),
                           void *arg);
int ca_capagg_next_part(struct ca_capagg *a);
/* Flows added since the part began. */
size_t ca_capagg_flows(const struct ca_capagg *a);
void ca_capagg_free(struct ca_capagg *a); /* accepts NULL */
/* An upper bound of the bytes the emit functions will hand out (tables and
 * address lists, without the store's overhead), for sizing the store. */
size_t ca_capagg_bytes(const struct ca_capagg *a);

#endif
