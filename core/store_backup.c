/*
 * Backup support (see store_backup.h).  mdb_env_copy2 needs an
 * environment handle, which store.h keeps private, so this file opens its
 * own, read only: the copy is taken inside one read transaction and is the
 * state of one commit, however many writers run meanwhile.  A capture
 * being imported is therefore copied as its last committed state
 * ("queued" or "importing", its flows invisible), never half visible.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <lmdb.h>

#include "ca_error.h"
#include "store_backup.h"
#include "store_internal.h"

int ca_backup_is_env(const char *dir)
{
    char path[4096];
    struct stat st;

    if (snprintf(path, sizeof(path), "%s/data.mdb", dir) >= (int)sizeof(path))
        return 0;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int env_open_ro(const char *dir, unsigned maxdbs, MDB_env **out, char *err, size_t errlen)
{
    MDB_env *env = NULL;
    int rc;

    *out = NULL;
    if (!ca_backup_is_env(dir))
        return ca_seterr(err, errlen, CA_ENOTFOUND, "%s: no LMDB environment (data.mdb)", dir);
    rc = mdb_env_create(&env);
    if (rc == 0 && maxdbs > 0)
        rc = mdb_env_set_maxdbs(env, maxdbs);
    if (rc == 0)
        rc = mdb_env_open(env, dir, MDB_RDONLY, 0640);
    if (rc != 0) {
        mdb_env_close(env);
        return ca_seterr(err, errlen, ca_store_err(rc), "%s: %s", dir, mdb_strerror(rc));
    }
    *out = env;
    return 0;
}

int ca_backup_env_copy(const char *src_dir, const char *dst_dir, char *err, size_t errlen)
{
    MDB_env *env = NULL;
    int rc;

    rc = env_open_ro(src_dir, 0, &env, err, errlen);
    if (rc < 0)
        return rc;
    rc = mdb_env_copy2(env, dst_dir, MDB_CP_COMPACT);
    mdb_env_close(env);
    if (rc != 0)
        return ca_seterr(err, errlen, ca_store_err(rc), "copying %s to %s: %s", src_dir, dst_dir,
                         mdb_strerror(rc));
    return 0;
}

int ca_backup_running_jobs(const char *datadir, uint64_t **ids, size_t *n, char *err, size_t errlen)
{
    char dir[4096];
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_dbi dbi;
    MDB_val k, v;
    uint64_t *list = NULL;
    size_t cap = 0, used = 0;
    int rc;

    *ids = NULL;
    *n = 0;
    if (snprintf(dir, sizeof(dir), "%s/portal", datadir) >= (int)sizeof(dir))
        return ca_seterr(err, errlen, CA_EINVAL, "data path too long");
    rc = env_open_ro(dir, 16, &env, err, errlen);
    if (rc < 0)
        return rc;
    rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (rc == 0)
        rc = mdb_dbi_open(txn, "jobs", 0, &dbi);
    if (rc == MDB_NOTFOUND) { /* no job ever */
        rc = 0;
        goto out;
    }
    if (rc == 0)
        rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != 0)
        goto out;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        json_t *rec = json_loadb(v.mv_data, v.mv_size, 0, NULL);
        const char *state = json_string_value(json_object_get(rec, "state"));

        if (k.mv_size == 8 && state != NULL && strcmp(state, "running") == 0) {
            if (used == cap) {
                uint64_t *nl = realloc(list, (cap ? cap * 2 : 16) * sizeof(*list));

                if (nl == NULL) {
                    json_decref(rec);
                    rc = ENOMEM;
                    break;
                }
                list = nl;
                cap = cap ? cap * 2 : 16;
            }
            list[used++] = ca_store_rd64(k.mv_data);
        }
        json_decref(rec);
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
out:
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    if (rc != 0) {
        free(list);
        return ca_seterr(err, errlen, ca_store_err(rc), "%s: reading jobs: %s", dir,
                         mdb_strerror(rc));
    }
    *ids = list;
    *n = used;
    return 0;
}
