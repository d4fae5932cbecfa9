/*
 * Helpers shared by the two halves of the store (store_portal.c and
 * store_ws.c), the only files that include <lmdb.h>.  Not a public
 * interface: nothing outside the store includes this header.
 *
 * Return values inside the store mix three kinds of codes, which do not
 * overlap: 0, a negative ca_err (-1..-14), an LMDB error (MDB_KEYEXIST and
 * friends, around -30790), or a positive errno from LMDB.  ca_store_err
 * turns any of them into a ca_err at the module boundary.
 */
#ifndef CA_STORE_INTERNAL_H
#define CA_STORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <lmdb.h>

/* Any store/LMDB/errno code to a ca_err (0 stays 0). */
int ca_store_err(int rc);

/* mkdir -p with mode 0750; 0 or CA_EIO. */
int ca_store_mkdirs(const char *path);
/* rm -rf without a shell (nftw, depth first, no symlink following). */
int ca_store_rmtree(const char *path);

/*
 * Opens (creating dir if create) an environment with maxdbs named
 * databases and an initial map size, overridable for tests with the
 * CAPATLAS_STORE_MAPSIZE environment variable (bytes).
 */
int ca_store_env_open(const char *dir, int create, size_t mapsize, unsigned maxdbs, unsigned flags,
                      MDB_env **out, char *err, size_t errlen);

/* Opens named databases: a read txn first, a write txn with MDB_CREATE
 * only when one is missing, so that readers do not queue behind a writer. */
int ca_store_dbis_open(MDB_env *env, const char *const *names, MDB_dbi *dbis, size_t n);

/* mdb_txn_begin that adopts a map grown by another process. */
int ca_store_txn_begin(MDB_env *env, unsigned flags, MDB_txn **txn);

/*
 * Runs fn in a write transaction and commits.  On MDB_MAP_FULL (from fn or
 * from the commit) the transaction is aborted, the map doubled and fn run
 * again from scratch, so fn must derive everything from the txn.
 */
int ca_store_write(MDB_env *env, int (*fn)(MDB_txn *txn, void *arg), void *arg);

/* Big-endian keys sort numerically under LMDB's default memcmp order. */
void ca_store_be64(uint64_t v, unsigned char out[8]);
uint64_t ca_store_rd64(const void *p);
void ca_store_be32(uint32_t v, unsigned char out[4]);
uint32_t ca_store_rd32(const void *p);

/* A JSON value stored as compact text: get (parsed copy; MDB_NOTFOUND),
 * put, and the next value of a counter kept as 8 big-endian bytes. */
int ca_store_get_json(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen, json_t **out);
int ca_store_put_json(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen, json_t *v);
/* Sets key to v (a new reference, always consumed) unless o already has it. */
int ca_store_set_default(json_t *o, const char *key, json_t *v);
int ca_store_counter_next(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t *out);

/* Unix seconds. */
int64_t ca_store_now(void);

/* Workspace environment creation, used by ca_workspace_create. */
int ca_ws_init(const char *datadir, uint64_t ws_id, char *err, size_t errlen);
/* Closes this process's idle handle of a workspace (before deleting it). */
void ca_ws_forget(const char *datadir, uint64_t ws_id);

#endif
