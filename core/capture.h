/*
 * Capture file reader: recognises files by content (pcap, pcapng, gzip of
 * either), reads classic pcap with libpcap's header parsing and its own
 * record reader (rare variants: libpcap throughout) and pcapng itself (so that
 * interfaces may differ in link type and snapshot length, and each packet's
 * offset is exactly its block's), tracks each packet's byte offset and turns
 * read errors into a "damage" description so the engine can keep what
 * preceded.  Only capture.c includes pcap.h and zlib.h.
 */
#ifndef CA_CAPTURE_H
#define CA_CAPTURE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct ca_capture;

struct ca_capture_pkt {
    int64_t ts_ns;       /* ns since the epoch */
    uint32_t caplen;     /* bytes present in data */
    uint32_t len;        /* wire length */
    uint64_t offset;     /* byte offset of the packet's record (decompressed stream) */
    const uint8_t *data; /* valid until the next ca_capture_next */
    int dlt;             /* link type of this packet (pcapng: of its interface) */
};

/*
 * Opens path; CA_EFORMAT ("not a pcap or pcapng file: bad magic 0x...") or
 * CA_EIO.  The format is recognised by content: pcap (us/ns, either byte
 * order), pcapng, and either of them gzip-compressed (magic 1f 8b;
 * concatenated gzip members are one stream).
 */
int ca_capture_open(const char *path, struct ca_capture **out, char *err, size_t errlen);

/*
 * The same from an open stream (pipe, socket, growing file through
 * fopencookie, fmemopen buffer...), read forward only.  fp stays the
 * caller's: it is not closed, and must outlive ca_capture_close.
 */
int ca_capture_open_fp(FILE *fp, struct ca_capture **out, char *err, size_t errlen);
void ca_capture_close(struct ca_capture *c); /* accepts NULL */

/*
 * Next packet: 1 with *pkt filled, 0 at a clean end of file, or a negative
 * ca_err with err describing the damage (the file is unusable from here on).
 * With ca_capture_hold on, also 2: nothing read, because reading on would
 * overwrite the data of a packet returned since the last ca_capture_release
 * (finish with those packets, release, and call again).
 */
int ca_capture_next(struct ca_capture *c, struct ca_capture_pkt *pkt, char *err, size_t errlen);

/*
 * Hold mode (off by default): the data of every packet returned stays valid
 * until ca_capture_release, so that a caller may read a few packets ahead
 * (prefetching their flow state) before it processes them.  Plain pcap files
 * then return many packets between releases; other formats one.
 */
void ca_capture_hold(struct ca_capture *c, int on);
void ca_capture_release(struct ca_capture *c);

/* DLT_ value of the file (pcapng: of its first interface; packets carry their own) */
int ca_capture_linktype(const struct ca_capture *c);
const char *ca_capture_linktype_name(int dlt);   /* "EN10MB"; static */
int ca_capture_nsec(const struct ca_capture *c); /* 1 when the file has ns timestamps */
uint64_t ca_capture_file_size(const struct ca_capture *c);
/* Input bytes consumed so far (compressed bytes for gzip; for progress). */
uint64_t ca_capture_pos(const struct ca_capture *c);
/* Position in the (decompressed) capture stream; packet offsets use it too. */
uint64_t ca_capture_offset(const struct ca_capture *c);
int ca_capture_gzip(const struct ca_capture *c); /* 1 when the input is gzip */
/* Reads of a stream input (a FILE or gzip) so far: a few per 256 KiB; 0 for a plain file. */
uint64_t ca_capture_stream_reads(const struct ca_capture *c);

#endif
