/*
 * The workspace store: one LMDB environment per workspace, at
 * D/workspaces/<id>/db/, holding the workspace's captures and flows.
 * The import worker writes it while FastCGI workers read it; LMDB's MVCC
 * means readers never wait for the writer and always see whole commits.
 *
 * Key schema (named databases):
 *   meta      "next_capture"            -> u64 BE, last capture id given
 *   captures  u32 BE capture id         -> capture JSON (see store.h) plus
 *                                          "flows": flows stored when ready
 *   flows     u64 BE flow id            -> ca_flow_encode() bytes
 *             (capture id << 32 | seq, so one capture is one key range)
 *   capseq    u32 BE capture id         -> u32 BE next seq for that capture
 *
 * Visibility: flow batches are committed as they come, but readers only
 * return flows whose capture is "ready", a state set in the same commit
 * that records the final flow count (ca_ws_capture_finish).  A crashed
 * import therefore shows nothing, and its leftovers are purged by the
 * retry (ca_ws_capture_purge_flows).
 *
 * Handles are shared within a process (a small refcounted cache keyed by
 * directory), because LMDB forbids opening one environment twice in a
 * process: closing the second handle would drop the first one's locks.
 * The cache is not thread-safe; capatlasd workers are single-threaded
 * processes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <lmdb.h>

#include "ca_error.h"
#include "flow.h"
#include "store.h"
#include "store_internal.h"

#define WS_MAPSIZE ((size_t)256 << 20)

enum { WDB_META, WDB_CAPTURES, WDB_FLOWS, WDB_CAPSEQ, WDB_COUNT };

static const char *const ws_dbnames[WDB_COUNT] = {"meta", "captures", "flows", "capseq"};

struct ca_ws {
    MDB_env *env;
    MDB_dbi db[WDB_COUNT];
    char *dir;   /* D/workspaces/<id> */
    char *dbdir; /* D/workspaces/<id>/db */
    int refs;
    struct ca_ws *next;
};

static struct ca_ws *ws_cache;

static void ws_free(struct ca_ws *w)
{
    if (w == NULL)
        return;
    if (w->env != NULL)
        mdb_env_close(w->env);
    free(w->dir);
    free(w->dbdir);
    free(w);
}

static int ws_open(const char *datadir, uint64_t ws_id, int create, struct ca_ws **out, char *err,
                   size_t errlen)
{
    struct ca_ws *w = NULL;
    char dir[4096], sub[4200];
    int rc;

    *out = NULL;
    if (datadir == NULL || ca_ws_dir(datadir, ws_id, dir, sizeof(dir)) != 0)
        return ca_seterr(err, errlen, CA_EINVAL, "bad data folder");
    snprintf(sub, sizeof(sub), "%s/db", dir);
    for (w = ws_cache; w != NULL; w = w->next) {
        if (strcmp(w->dbdir, sub) == 0) {
            w->refs++;
            *out = w;
            return 0;
        }
    }
    w = calloc(1, sizeof(*w));
    if (w == NULL || (w->dir = strdup(dir)) == NULL || (w->dbdir = strdup(sub)) == NULL) {
        rc = ca_seterr(err, errlen, CA_ENOMEM, "out of memory");
        goto out;
    }
    if (create) {
        snprintf(sub, sizeof(sub), "%s/captures", dir);
        if (ca_store_mkdirs(sub) != 0) {
            rc = ca_seterr(err, errlen, CA_EIO, "cannot create %s: %s", sub, strerror(errno));
            goto out;
        }
    }
    rc = ca_store_env_open(w->dbdir, create, WS_MAPSIZE, 8, MDB_NOMETASYNC, &w->env, err, errlen);
    if (rc == CA_ENOTFOUND) {
        rc = ca_seterr(err, errlen, CA_ENOTFOUND, "no such workspace");
        goto out;
    }
    if (rc != 0)
        goto out;
    rc = ca_store_dbis_open(w->env, ws_dbnames, w->db, WDB_COUNT);
    if (rc != 0) {
        rc = ca_seterr(err, errlen, ca_store_err(rc), "cannot open workspace databases: %s",
                       mdb_strerror(rc));
        goto out;
    }
    w->refs = 1;
    w->next = ws_cache;
    ws_cache = w;
    *out = w;
    w = NULL;
out:
    ws_free(w);
    return rc;
}

int ca_ws_open(const char *datadir, uint64_t ws_id, struct ca_ws **out, char *err, size_t errlen)
{
    return ws_open(datadir, ws_id, 0, out, err, errlen);
}

int ca_ws_init(const char *datadir, uint64_t ws_id, char *err, size_t errlen)
{
    struct ca_ws *w = NULL;
    int rc = ws_open(datadir, ws_id, 1, &w, err, errlen);

    ca_ws_close(w);
    return rc;
}

void ca_ws_close(struct ca_ws *w)
{
    struct ca_ws **pp;

    if (w == NULL || --w->refs > 0)
        return;
    for (pp = &ws_cache; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    }
    ws_free(w);
}

/* ---- captures ---------------------------------------------------------- */

struct cap_arg {
    struct ca_ws *w;
    uint32_t id;
    json_t *rec;
    const struct ca_flow *flows;
    size_t n;
    int more;
    char path[4096];
};

static int cap_add_txn(MDB_txn *txn, void *arg)
{
    struct cap_arg *a = arg;
    unsigned char key[4];
    uint64_t id;
    int rc;

    rc = ca_store_counter_next(txn, a->w->db[WDB_META], "next_capture", &id);
    if (rc != 0)
        return rc;
    if (id > UINT32_MAX)
        return CA_EQUOTA;
    a->id = (uint32_t)id;
    if (json_object_set_new(a->rec, "id", json_integer((json_int_t)id)) != 0)
        return CA_ENOMEM;
    ca_store_be32(a->id, key);
    return ca_store_put_json(txn, a->w->db[WDB_CAPTURES], key, sizeof(key), a->rec);
}

static int set_default(json_t *o, const char *key, json_t *v)
{
    if (json_object_get(o, key) != NULL) {
        json_decref(v);
        return 0;
    }
    return json_object_set_new(o, key, v);
}

int ca_ws_capture_add(struct ca_ws *w, json_t *meta, uint32_t *id_out)
{
    struct cap_arg a = {.w = w};
    int rc = CA_ENOMEM;

    if (!json_is_object(meta))
        return CA_EINVAL;
    a.rec = json_deep_copy(meta);
    if (a.rec == NULL)
        return CA_ENOMEM;
    if (set_default(a.rec, "state", json_string("queued")) != 0 ||
        set_default(a.rec, "error", json_null()) != 0 ||
        set_default(a.rec, "report", json_null()) != 0 ||
        set_default(a.rec, "size", json_integer(0)) != 0 ||
        set_default(a.rec, "created", json_integer(ca_store_now())) != 0 ||
        json_object_set_new(a.rec, "flows", json_integer(0)) != 0)
        goto out;
    rc = ca_store_err(ca_store_write(w->env, cap_add_txn, &a));
    if (rc == 0 && id_out != NULL)
        *id_out = a.id;
out:
    json_decref(a.rec);
    return rc;
}

int ca_ws_capture_get(struct ca_ws *w, uint32_t id, json_t **out)
{
    MDB_txn *txn = NULL;
    unsigned char key[4];
    int rc;

    *out = NULL;
    rc = ca_store_txn_begin(w->env, MDB_RDONLY, &txn);
    if (rc != 0)
        return ca_store_err(rc);
    ca_store_be32(id, key);
    rc = ca_store_get_json(txn, w->db[WDB_CAPTURES], key, sizeof(key), out);
    mdb_txn_abort(txn);
    return ca_store_err(rc);
}

static int cap_update_txn(MDB_txn *txn, void *arg)
{
    struct cap_arg *a = arg;
    unsigned char key[4];
    json_t *rec = NULL, *fields = NULL;
    int rc;

    ca_store_be32(a->id, key);
    rc = ca_store_get_json(txn, a->w->db[WDB_CAPTURES], key, sizeof(key), &rec);
    if (rc != 0)
        return rc;
    fields = json_copy(a->rec);
    if (fields == NULL) {
        rc = CA_ENOMEM;
        goto out;
    }
    json_object_del(fields, "id");
    rc = json_object_update(rec, fields) != 0 ? CA_ENOMEM : 0;
    if (rc == 0)
        rc = ca_store_put_json(txn, a->w->db[WDB_CAPTURES], key, sizeof(key), rec);
out:
    json_decref(fields);
    json_decref(rec);
    return rc;
}

int ca_ws_capture_update(struct ca_ws *w, uint32_t id, json_t *fields)
{
    struct cap_arg a = {.w = w, .id = id, .rec = fields};

    if (!json_is_object(fields))
        return CA_EINVAL;
    return ca_store_err(ca_store_write(w->env, cap_update_txn, &a));
}

/* Calls fn for every capture record, in id order, inside one read txn. */
static int cap_foreach(struct ca_ws *w, MDB_txn *txn, int (*fn)(json_t *rec, void *arg), void *arg)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    json_t *rec;
    int rc;

    rc = mdb_cursor_open(txn, w->db[WDB_CAPTURES], &cur);
    if (rc != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        rec = json_loadb(v.mv_data, v.mv_size, 0, NULL);
        if (rec == NULL) {
            rc = CA_ESTORE;
            break;
        }
        rc = fn(rec, arg);
        if (rc != 0)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int list_one(json_t *rec, void *arg)
{
    return json_array_append_new(arg, rec) != 0 ? CA_ENOMEM : 0;
}

int ca_ws_capture_list(struct ca_ws *w, json_t **out)
{
    MDB_txn *txn = NULL;
    json_t *arr;
    int rc;

    *out = NULL;
    arr = json_array();
    if (arr == NULL)
        return CA_ENOMEM;
    rc = ca_store_txn_begin(w->env, MDB_RDONLY, &txn);
    if (rc == 0) {
        rc = cap_foreach(w, txn, list_one, arr);
        mdb_txn_abort(txn);
    }
    if (rc != 0) {
        json_decref(arr);
        return ca_store_err(rc);
    }
    *out = arr;
    return 0;
}

struct stats_arg {
    uint64_t n, bytes;
};

static int stats_one(json_t *rec, void *arg)
{
    struct stats_arg *s = arg;
    json_int_t size = json_integer_value(json_object_get(rec, "size"));

    s->n++;
    s->bytes += size > 0 ? (uint64_t)size : 0;
    json_decref(rec);
    return 0;
}

int ca_ws_stats(struct ca_ws *w, uint64_t *captures, uint64_t *bytes)
{
    struct stats_arg s = {0, 0};
    MDB_txn *txn = NULL;
    int rc;

    rc = ca_store_txn_begin(w->env, MDB_RDONLY, &txn);
    if (rc != 0)
        return ca_store_err(rc);
    rc = cap_foreach(w, txn, stats_one, &s);
    mdb_txn_abort(txn);
    if (rc != 0)
        return ca_store_err(rc);
    if (captures != NULL)
        *captures = s.n;
    if (bytes != NULL)
        *bytes = s.bytes;
    return 0;
}

/* ---- flows ------------------------------------------------------------- */

/*
 * Deletes up to PURGE_CHUNK flows of one capture per transaction: one txn
 * for millions of flows would dirty more pages than LMDB allows
 * (MDB_TXN_FULL) and hold the writer lock for long.  The sequence counter
 * goes with the last chunk.
 */
#define PURGE_CHUNK 10000

static int purge_in_txn(struct ca_ws *w, MDB_txn *txn, uint32_t cap, int *more)
{
    MDB_cursor *cur = NULL;
    unsigned char start[8], ckey[4];
    MDB_val k = {sizeof(start), start}, v, ck = {sizeof(ckey), ckey};
    size_t n = 0;
    int rc;

    *more = 0;
    rc = mdb_cursor_open(txn, w->db[WDB_FLOWS], &cur);
    if (rc != 0)
        return rc;
    ca_store_be64((uint64_t)cap << 32, start);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8 || ca_store_rd64(k.mv_data) >> 32 != cap)
            break;
        if (n == PURGE_CHUNK) {
            *more = 1;
            break;
        }
        /* After a delete the cursor already sits on the next key, and
         * MDB_NEXT knows not to skip it. */
        rc = mdb_cursor_del(cur, 0);
        if (rc != 0)
            break;
        n++;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    if (*more)
        return 0;
    ca_store_be32(cap, ckey);
    rc = mdb_del(txn, w->db[WDB_CAPSEQ], &ck, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int purge_txn(MDB_txn *txn, void *arg)
{
    struct cap_arg *a = arg;
    unsigned char key[4];
    json_t *rec = NULL;
    int rc;

    rc = purge_in_txn(a->w, txn, a->id, &a->more);
    if (rc != 0 || a->more || a->n != 0)
        return rc;
    /* Last chunk of a purge (not of a delete, n != 0): zero the count. */
    ca_store_be32(a->id, key);
    rc = ca_store_get_json(txn, a->w->db[WDB_CAPTURES], key, sizeof(key), &rec);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    rc = json_object_set_new(rec, "flows", json_integer(0)) != 0 ? CA_ENOMEM : 0;
    if (rc == 0)
        rc = ca_store_put_json(txn, a->w->db[WDB_CAPTURES], key, sizeof(key), rec);
    json_decref(rec);
    return rc;
}

/* Runs purge chunks until the capture has no flows left. */
static int purge_all(struct ca_ws *w, uint32_t capture_id, int deleting)
{
    struct cap_arg a = {.w = w, .id = capture_id, .n = deleting != 0};
    int rc;

    do {
        rc = ca_store_write(w->env, purge_txn, &a);
    } while (rc == 0 && a.more);
    return ca_store_err(rc);
}

int ca_ws_capture_purge_flows(struct ca_ws *w, uint32_t capture_id)
{
    return purge_all(w, capture_id, 0);
}

/* The next seq for a capture (1 when none stored yet). */
static int capseq_get(struct ca_ws *w, MDB_txn *txn, uint32_t cap, uint32_t *seq)
{
    unsigned char key[4];
    MDB_val k = {sizeof(key), key}, v;
    int rc;

    ca_store_be32(cap, key);
    rc = mdb_get(txn, w->db[WDB_CAPSEQ], &k, &v);
    if (rc == MDB_NOTFOUND) {
        *seq = 1;
        return 0;
    }
    if (rc != 0)
        return rc;
    if (v.mv_size != 4)
        return CA_ESTORE;
    *seq = ca_store_rd32(v.mv_data);
    return 0;
}

static int flows_put_txn(MDB_txn *txn, void *arg)
{
    struct cap_arg *a = arg;
    struct ca_ws *w = a->w;
    struct ca_flow *f = NULL;
    uint8_t *buf = NULL;
    unsigned char key[8], skey[4], sval[4];
    MDB_val k = {sizeof(key), key}, v;
    uint32_t seq;
    int rc;

    rc = capseq_get(w, txn, a->id, &seq);
    if (rc != 0)
        return rc;
    if ((uint64_t)seq + a->n > UINT32_MAX)
        return CA_EQUOTA;
    f = malloc(sizeof(*f));
    buf = malloc(CA_FLOW_ENC_MAX);
    if (f == NULL || buf == NULL) {
        rc = CA_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < a->n; i++, seq++) {
        *f = a->flows[i];
        f->capture_id = a->id;
        f->id = (uint64_t)a->id << 32 | seq;
        ca_store_be64(f->id, key);
        v.mv_data = buf;
        v.mv_size = ca_flow_encode(f, buf);
        rc = mdb_put(txn, w->db[WDB_FLOWS], &k, &v, 0);
        if (rc != 0)
            goto out;
    }
    ca_store_be32(a->id, skey);
    ca_store_be32(seq, sval);
    k.mv_data = skey;
    k.mv_size = sizeof(skey);
    v.mv_data = sval;
    v.mv_size = sizeof(sval);
    rc = mdb_put(txn, w->db[WDB_CAPSEQ], &k, &v, 0);
out:
    free(buf);
    free(f);
    return rc;
}

int ca_ws_flows_put(struct ca_ws *w, uint32_t capture_id, const struct ca_flow *flows, size_t n)
{
    struct cap_arg a = {.w = w, .id = capture_id, .flows = flows, .n = n};

    if (n == 0)
        return 0;
    if (flows == NULL || capture_id == 0)
        return CA_EINVAL;
    return ca_store_err(ca_store_write(w->env, flows_put_txn, &a));
}

static int finish_txn(MDB_txn *txn, void *arg)
{
    struct cap_arg *a = arg;
    unsigned char key[4];
    json_t *rec = NULL;
    uint32_t seq;
    int rc;

    ca_store_be32(a->id, key);
    rc = ca_store_get_json(txn, a->w->db[WDB_CAPTURES], key, sizeof(key), &rec);
    if (rc != 0)
        return rc;
    rc = capseq_get(a->w, txn, a->id, &seq);
    if (rc != 0)
        goto out;
    if (json_object_set_new(rec, "state", json_string("ready")) != 0 ||
        json_object_set_new(rec, "error", json_null()) != 0 ||
        json_object_set(rec, "report", a->rec != NULL ? a->rec : json_null()) != 0 ||
        json_object_set_new(rec, "flows", json_integer(seq - 1)) != 0) {
        rc = CA_ENOMEM;
        goto out;
    }
    rc = ca_store_put_json(txn, a->w->db[WDB_CAPTURES], key, sizeof(key), rec);
out:
    json_decref(rec);
    return rc;
}

int ca_ws_capture_finish(struct ca_ws *w, uint32_t capture_id, json_t *report)
{
    struct cap_arg a = {.w = w, .id = capture_id, .rec = report};
    int rc;

    rc = ca_store_err(ca_store_write(w->env, finish_txn, &a));
    if (rc != 0)
        return rc;
    /* The environment runs with MDB_NOMETASYNC for the flow batches; the
     * commit that makes a capture visible is the one that must be durable. */
    return mdb_env_sync(w->env, 1) == 0 ? 0 : CA_EIO;
}

static int cap_delete_txn(MDB_txn *txn, void *arg)
{
    struct cap_arg *a = arg;
    unsigned char key[4];
    MDB_val k = {sizeof(key), key};
    json_t *rec = NULL;
    const char *path;
    int rc;

    a->path[0] = '\0';
    ca_store_be32(a->id, key);
    rc = ca_store_get_json(txn, a->w->db[WDB_CAPTURES], key, sizeof(key), &rec);
    if (rc != 0)
        return rc;
    path = json_string_value(json_object_get(rec, "path"));
    if (path != NULL && strlen(path) < sizeof(a->path))
        strcpy(a->path, path);
    json_decref(rec);
    /* The record goes first, with the first chunk of flows; without it the
     * rest are invisible, and ids are never reused, so even a crash before
     * the remaining chunks leaves nothing that shows. */
    rc = purge_in_txn(a->w, txn, a->id, &a->more);
    if (rc != 0)
        return rc;
    return mdb_del(txn, a->w->db[WDB_CAPTURES], &k, NULL);
}

/*
 * Only files inside the workspace directory are removed: a damaged or
 * hand-edited record must not be able to name some other file.
 */
static int path_inside(const char *dir, const char *path)
{
    size_t n = strlen(dir);

    if (strncmp(path, dir, n) != 0 || path[n] != '/')
        return 0;
    return strstr(path, "/../") == NULL;
}

int ca_ws_capture_delete(struct ca_ws *w, uint32_t capture_id)
{
    struct cap_arg a = {.w = w, .id = capture_id};
    char full[4096 + 64];
    int rc;

    rc = ca_store_err(ca_store_write(w->env, cap_delete_txn, &a));
    if (rc == 0 && a.more)
        rc = purge_all(w, capture_id, 1);
    if (rc != 0 || a.path[0] == '\0')
        return rc;
    if (a.path[0] == '/')
        snprintf(full, sizeof(full), "%s", a.path);
    else
        snprintf(full, sizeof(full), "%s/%s", w->dir, a.path);
    if (path_inside(w->dir, full) && unlink(full) != 0 && errno != ENOENT)
        return CA_EIO;
    return 0;
}

/* ---- reading flows ----------------------------------------------------- */

/* Ready capture ids (ascending) and their flow total, from one read txn. */
struct ready_set {
    uint32_t *ids;
    size_t n, cap;
    uint64_t total;
};

static int ready_one(json_t *rec, void *arg)
{
    struct ready_set *s = arg;
    const char *state = json_string_value(json_object_get(rec, "state"));
    json_int_t id = json_integer_value(json_object_get(rec, "id"));
    json_int_t flows = json_integer_value(json_object_get(rec, "flows"));
    uint32_t *grown;

    if (state != NULL && strcmp(state, "ready") == 0 && id > 0 && id <= UINT32_MAX) {
        if (s->n == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 16;
            grown = realloc(s->ids, s->cap * sizeof(*s->ids));
            if (grown == NULL) {
                json_decref(rec);
                return CA_ENOMEM;
            }
            s->ids = grown;
        }
        s->ids[s->n++] = (uint32_t)id;
        s->total += flows > 0 ? (uint64_t)flows : 0;
    }
    json_decref(rec);
    return 0;
}

/* Index of the first ready id >= cap, or s->n. */
static size_t ready_lower_bound(const struct ready_set *s, uint32_t cap)
{
    size_t lo = 0, hi = s->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (s->ids[mid] < cap)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int flow_from_val(uint64_t id, const MDB_val *v, struct ca_flow *f)
{
    int rc = ca_flow_decode(v->mv_data, v->mv_size, f);

    if (rc != 0)
        return rc;
    f->id = id;
    f->capture_id = (uint32_t)(id >> 32);
    return 0;
}

int ca_ws_flows_page(struct ca_ws *w, uint64_t after_id, size_t limit, json_t **out,
                     uint64_t *next_after, uint64_t *total)
{
    struct ready_set rs = {NULL, 0, 0, 0};
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    struct ca_flow *f = NULL;
    unsigned char key[8];
    MDB_val k = {sizeof(key), key}, v;
    json_t *arr = NULL, *o;
    uint64_t id, last = 0;
    size_t idx;
    int rc;

    *out = NULL;
    if (next_after != NULL)
        *next_after = 0;
    if (limit == 0)
        return CA_EINVAL;
    arr = json_array();
    f = malloc(sizeof(*f));
    if (arr == NULL || f == NULL) {
        rc = CA_ENOMEM;
        goto out;
    }
    rc = ca_store_txn_begin(w->env, MDB_RDONLY, &txn);
    if (rc != 0)
        goto out;
    rc = cap_foreach(w, txn, ready_one, &rs);
    if (rc != 0)
        goto out;
    if (after_id == UINT64_MAX || rs.n == 0)
        goto done;
    rc = mdb_cursor_open(txn, w->db[WDB_FLOWS], &cur);
    if (rc != 0)
        goto out;
    ca_store_be64(after_id + 1, key);
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0) {
        if (k.mv_size != 8) {
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            continue;
        }
        id = ca_store_rd64(k.mv_data);
        idx = ready_lower_bound(&rs, (uint32_t)(id >> 32));
        if (idx == rs.n)
            break;
        if (rs.ids[idx] != (uint32_t)(id >> 32)) {
            /* Not ready: jump straight to the next ready capture's range. */
            ca_store_be64((uint64_t)rs.ids[idx] << 32, key);
            k.mv_data = key;
            k.mv_size = sizeof(key);
            rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
            continue;
        }
        if (json_array_size(arr) == limit) {
            /* One more visible flow exists: the page has a successor. */
            if (next_after != NULL)
                *next_after = last;
            break;
        }
        rc = flow_from_val(id, &v, f);
        if (rc != 0)
            goto out;
        o = ca_flow_to_json(f);
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            rc = CA_ENOMEM;
            goto out;
        }
        last = id;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc != 0 && rc != MDB_NOTFOUND)
        goto out;
done:
    rc = 0;
    if (total != NULL)
        *total = rs.total;
    *out = arr;
    arr = NULL;
out:
    if (cur != NULL)
        mdb_cursor_close(cur);
    if (txn != NULL)
        mdb_txn_abort(txn);
    json_decref(arr);
    free(rs.ids);
    free(f);
    return ca_store_err(rc);
}

int ca_ws_flow_get(struct ca_ws *w, uint64_t flow_id, struct ca_flow *out)
{
    MDB_txn *txn = NULL;
    unsigned char key[8], ckey[4];
    MDB_val k = {sizeof(key), key}, v;
    json_t *cap = NULL;
    const char *state;
    int rc;

    rc = ca_store_txn_begin(w->env, MDB_RDONLY, &txn);
    if (rc != 0)
        return ca_store_err(rc);
    ca_store_be32((uint32_t)(flow_id >> 32), ckey);
    rc = ca_store_get_json(txn, w->db[WDB_CAPTURES], ckey, sizeof(ckey), &cap);
    if (rc != 0)
        goto out;
    state = json_string_value(json_object_get(cap, "state"));
    if (state == NULL || strcmp(state, "ready") != 0) {
        rc = CA_ENOTFOUND;
        goto out;
    }
    ca_store_be64(flow_id, key);
    rc = mdb_get(txn, w->db[WDB_FLOWS], &k, &v);
    if (rc == 0)
        rc = flow_from_val(flow_id, &v, out);
out:
    mdb_txn_abort(txn);
    json_decref(cap);
    return ca_store_err(rc);
}
