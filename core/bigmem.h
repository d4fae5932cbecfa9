/*
 * Big arrays of the import (flow batch, table builder, address map) in
 * their own anonymous maps, with transparent huge pages asked for
 * (MADV_HUGEPAGE): filling tens of megabytes then costs a page fault per
 * 2 MiB instead of per 4 KiB, which on a virtual machine is most of the
 * cost of touching fresh memory.  Memory comes zeroed; growing keeps the
 * contents (mremap: no copy).  Where huge pages are off this is plain
 * mmap.  Sizes are rounded up to 2 MiB, so use it for arrays of at least
 * a few hundred KiB.
 */
#ifndef CA_BIGMEM_H
#define CA_BIGMEM_H

#include <stddef.h>

/* A zeroed block of at least len bytes; NULL when out of memory. */
void *ca_big_alloc(size_t len);
/* Grows (or shrinks) p to at least len bytes, zeroed beyond the old size;
 * NULL when out of memory, p then unchanged.  p may be NULL. */
void *ca_big_realloc(void *p, size_t len);
/* Frees p (NULL allowed). */
void ca_big_free(void *p);
/* Asks for huge pages on the whole pages inside [p, p + len) of memory the
 * caller got elsewhere (a big malloc), before it is first written. */
void ca_big_advise(void *p, size_t len);
/*
 * The same for the heap (malloc's small blocks: flow entries, nDPI's flow
 * state): asks for huge pages on what the heap grew by since the last
 * call.  The first call makes the heap grow in steps of 32 MiB
 * (M_TOP_PAD), so that most of a step is advised before it is touched.
 * Cheap (no system call unless the heap grew): call it often, e.g. once a
 * packet.
 */
void ca_big_heap_advise(void);
/*
 * For a process whose blocks of megabytes come and go: malloc keeps blocks
 * up to 64 MiB in the heap, and up to 256 MiB of free heap, for reuse,
 * instead of a fresh map each time, whose every page costs a fault and a
 * zero-fill on first touch (about 2 ms per MB on a virtual machine).  The
 * API workers' query hash tables; an import's commits, whose pages LMDB
 * mallocs afresh for each one (a 1 GB capture's import: 4-7% faster, its
 * peak 358 -> 351 MiB; a 12 GB one's 407 -> 423, the heap's fragments,
 * and 380 with the smaller commits of store_ws.c).  Call it once, early.
 */
void ca_big_heap_keep(void);

#endif
