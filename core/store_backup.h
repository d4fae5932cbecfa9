/*
 * Backup support for the store (used by `capatlasd backup` and `restore`,
 * each its own process): a consistent, compacted hot copy of one LMDB
 * environment, and the ids of jobs a copied portal shows as running.
 * These open their own environment handles, so they must not be called in
 * a process that has the same environment open through store.h.
 */
#ifndef CA_STORE_BACKUP_H
#define CA_STORE_BACKUP_H

#include <stddef.h>
#include <stdint.h>

/* 1 when dir holds an LMDB environment (a data.mdb file). */
int ca_backup_is_env(const char *dir);

/*
 * Copies the environment in src_dir into dst_dir (an existing, empty
 * folder) with mdb_env_copy2(MDB_CP_COMPACT): one read transaction, so
 * the copy is the state of one commit even while writers run.
 * Returns 0 or a negative ca_err with detail in err.
 */
int ca_backup_env_copy(const char *src_dir, const char *dst_dir, char *err, size_t errlen);

/*
 * Ids of the jobs whose state is "running" in the portal environment at
 * DATADIR/portal (read only).  *ids is malloc'd, owned by the caller
 * (NULL when *n is 0).  Reads the "jobs" database of store_portal.c.
 */
int ca_backup_running_jobs(const char *datadir, uint64_t **ids, size_t *n, char *err,
                           size_t errlen);

#endif
