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
 *   hot       u32 BE capture id, u32 BE first seq of the chunk
 *                                       -> array of struct ca_hot (store.h),
 *                                          one per flow of one ca_ws_flows_put
 *                                          batch, seqs consecutive
 *   strs      u8 kind (enum ca_str_kind) + name bytes -> u32 BE string id
 *   strid     u32 BE string id          -> u8 kind + name bytes + NUL
 *   meta      "next_str"                -> u64 BE, last string id given
 *   addrs     u8 ip version + 16 bytes  -> u32 BE address id (hot src_aid/dst_aid)
 *   addrnew   u32 BE address id         -> u8 ip version + 16 bytes: addresses
 *                                          given an id by an import and not
 *                                          yet moved into addrs (see
 *                                          imp_addr_ids, staged_merge)
 *   meta      "next_addr"               -> u64 BE, last address id given
 *   caggs     u32 BE capture id, u8 kind -> a pre-computed table of the
 *                                          capture (ca_capagg, query.h):
 *                                          per group field, per minute,
 *                                          flows in bytes order
 *             u32 BE capture id, 0xff, u16 BE part p > 0, u8 kind
 *                                       -> the same table of part p
 *             u32 BE capture id, 0xfe   -> u32 number of parts (none: 1)
 *   addrix    u32 BE capture id, u8 ip version, 16 bytes address
 *                                       -> u32 (native) seqs, ascending, of
 *                                          the capture's flows with that
 *                                          address on either side
 *             u32 BE capture id, 0xff, u16 BE part p > 0, u8 ip version,
 *             16 bytes address          -> the same, of part p's flows
 *
 * caggs and addrix are written while a capture is imported, a part at a
 * time (see PARTS_MAX), and in its finishing commit; they go with its flows
 * (purge).  A capture is not visible before its finishing commit.
 *
 * Capture records of ready captures also carry "first_ns"/"last_ns", the
 * span of their flows, computed from the hot chunks in the finishing commit
 * (relative times in filters count from it).
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
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <lmdb.h>

#include "bigmem.h"
#include "ca_error.h"
#include "flow.h"
#include "keysort.h"
#include "query.h"
#include "store.h"
#include "store_internal.h"

#define WS_MAPSIZE ((size_t)256 << 20)

enum {
    WDB_META,
    WDB_CAPTURES,
    WDB_FLOWS,
    WDB_CAPSEQ,
    WDB_HOT,
    WDB_STRS,
    WDB_STRID,
    WDB_CAGGS,
    WDB_ADDRIX,
    WDB_ADDRNEW,
    WDB_ADDRS, /* LMDB's unnamed database */
    WDB_COUNT
};

static const char *const ws_dbnames[WDB_COUNT] = {"meta", "captures", "flows", "capseq", "hot",
                                                  "strs", "strid",    "caggs", "addrix", "addrnew"};

struct ws_import;

struct ca_ws {
    MDB_env *env;
    MDB_dbi db[WDB_COUNT];
    char *dir;   /* D/workspaces/<id> */
    char *dbdir; /* D/workspaces/<id>/db */
    int refs;
    dev_t dev; /* identity of data.mdb, to notice a deleted workspace */
    ino_t ino;
    unsigned long used;    /* last use, for evicting idle handles */
    struct ws_import *imp; /* state of the import writing through this handle */
    struct ca_ws *next;
};

static void imp_free(struct ws_import *imp);
static void imp_drop(struct ca_ws *w, uint32_t cap);
static int imp_flush(struct ca_ws *w);
static void imp_part(struct ca_ws *w);
static void imp_unmap(struct ca_ws *w);
#define IMP_UNMAP_FLOWS 4096 /* flows of a commit between checks (imp_unmap) */
#define IMP_UNMAP_ADDRS 512  /* new addresses of a commit between checks */

static struct ca_ws *ws_cache;
static int ws_idle_max; /* handles kept open with no reference (ca_ws_keep_idle) */
static unsigned long ws_clock;

/*
 * A process that answers many short requests (a FastCGI worker) keeps a
 * few workspace environments open between them: reopening costs an
 * mmap and then a page fault for every page a query touches again.
 */
void ca_ws_keep_idle(int n)
{
    ws_idle_max = n < 0 ? 0 : n;
}

static int db_ident(const char *dbdir, dev_t *dev, ino_t *ino)
{
    char path[4200];
    struct stat st;

    snprintf(path, sizeof(path), "%s/data.mdb", dbdir);
    if (stat(path, &st) != 0)
        return -1;
    *dev = st.st_dev;
    *ino = st.st_ino;
    return 0;
}

static void ws_unlink(struct ca_ws *w)
{
    struct ca_ws **pp;

    for (pp = &ws_cache; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    }
}

static void ws_free(struct ca_ws *w)
{
    if (w == NULL)
        return;
    (void)imp_flush(w); /* batches are committed as they come, whoever closes */
    imp_free(w->imp);
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
            dev_t dev;
            ino_t ino;

            /* An idle handle of a workspace deleted (or restored) since. */
            if (w->refs == 0 &&
                (db_ident(sub, &dev, &ino) != 0 || dev != w->dev || ino != w->ino)) {
                ws_unlink(w);
                ws_free(w);
                break;
            }
            w->refs++;
            w->used = ++ws_clock;
            *out = w;
            return 0;
        }
    }
    w = NULL;
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
    rc = ca_store_env_open(w->dbdir, create, WS_MAPSIZE, 12, MDB_NOMETASYNC, &w->env, err, errlen);
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
    w->used = ++ws_clock;
    (void)db_ident(w->dbdir, &w->dev, &w->ino);
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
    struct ca_ws *x, *old;
    int idle = 0;

    if (w == NULL || --w->refs > 0)
        return;
    for (x = ws_cache; x != NULL; x = x->next)
        idle += x->refs == 0;
    while (idle > ws_idle_max) {
        old = NULL;
        for (x = ws_cache; x != NULL; x = x->next)
            if (x->refs == 0 && (old == NULL || x->used < old->used))
                old = x;
        ws_unlink(old);
        ws_free(old);
        idle--;
    }
}

void ca_ws_forget(const char *datadir, uint64_t ws_id)
{
    char dir[4096], sub[4200];

    if (ca_ws_dir(datadir, ws_id, dir, sizeof(dir)) != 0)
        return;
    snprintf(sub, sizeof(sub), "%s/db", dir);
    for (struct ca_ws *w = ws_cache; w != NULL; w = w->next) {
        if (w->refs == 0 && strcmp(w->dbdir, sub) == 0) {
            ws_unlink(w);
            ws_free(w);
            return;
        }
    }
}

/* ---- captures ---------------------------------------------------------- */

struct cap_arg {
    struct ca_ws *w;
    uint32_t id;
    json_t *rec;
    const struct ca_flow *flows;
    size_t n;
    uint32_t seq0; /* flows_put: seq of the first flow */
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

int ca_ws_capture_add(struct ca_ws *w, json_t *meta, uint32_t *id_out)
{
    struct cap_arg a = {.w = w};
    int rc = CA_ENOMEM;

    if (!json_is_object(meta))
        return CA_EINVAL;
    a.rec = json_deep_copy(meta);
    if (a.rec == NULL)
        return CA_ENOMEM;
    if (ca_store_set_default(a.rec, "state", json_string("queued")) != 0 ||
        ca_store_set_default(a.rec, "error", json_null()) != 0 ||
        ca_store_set_default(a.rec, "report", json_null()) != 0 ||
        ca_store_set_default(a.rec, "size", json_integer(0)) != 0 ||
        ca_store_set_default(a.rec, "created", json_integer(ca_store_now())) != 0 ||
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

/* Keys of db starting with the capture id (hot chunks: a few hundred per
 * million flows; tables; address lists: one per address). */
static int purge_prefix(MDB_txn *txn, MDB_dbi db, uint32_t cap)
{
    MDB_cursor *cur = NULL;
    unsigned char start[4];
    MDB_val k = {sizeof(start), start}, v;
    int rc;

    rc = mdb_cursor_open(txn, db, &cur);
    if (rc != 0)
        return rc;
    ca_store_be32(cap, start);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < 4 || ca_store_rd32(k.mv_data) != cap)
            break;
        rc = mdb_cursor_del(cur, 0);
        if (rc != 0)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
}

/* A capture's tables and address lists, every part. */
static int purge_tables(struct ca_ws *w, MDB_txn *txn, uint32_t cap)
{
    int rc = purge_prefix(txn, w->db[WDB_CAGGS], cap);

    return rc != 0 ? rc : purge_prefix(txn, w->db[WDB_ADDRIX], cap);
}

static int purge_hot(struct ca_ws *w, MDB_txn *txn, uint32_t cap)
{
    int rc = purge_prefix(txn, w->db[WDB_HOT], cap);

    return rc != 0 ? rc : purge_tables(w, txn, cap);
}

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
    rc = purge_hot(w, txn, cap);
    if (rc != 0)
        return rc;
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
    imp_drop(w, capture_id);
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

/*
 * The state of an import writing through a handle (ca_ws_flows_put ...
 * ca_ws_capture_finish):
 *  - interning: a cache of names -> ids, and the map of every address of
 *    the capture -> its workspace id (struct amap).  Ids, once committed,
 *    never change or go (strs/addrs are never deleted), so an entry stays
 *    true for the whole import; entries made by a write attempt that did
 *    not commit would not, so a new attempt after one that did not commit
 *    ("pending") empties the name cache and drops the map's entries of
 *    that attempt.
 *  - the capture's table builder (ca_capagg), fed with each batch's hot
 *    records once the batch is committed, so the finishing commit does not
 *    read every hot chunk back; and the span of the flows.  When the
 *    builder has not seen every flow of the capture from seq 1 (an import
 *    resumed by another process, a builder dropped for lack of memory),
 *    the finishing commit builds the tables from the hot chunks as before.
 */
#define ICACHE_SIZE 4096

/*
 * A capture's tables are cut into parts of at least part_flows flows:
 * when the builder has that many after a commit, its part is written in
 * a commit of its own (imp_part) and the builder and the address map
 * start again empty, so neither grows with the capture, nor does the
 * finishing commit, which writes the last part.  The capture is not
 * ready (nor visible) until that commit, as before.  Keys: part 0 as a
 * capture of one part always had them; part p > 0 after every key of
 * part p - 1 (PART_MARK sorts after any kind and ip version), so that
 * each part's address lists are appended like the first part's.
 */
#define PARTS_MAX 65535
#define PART_MARK 0xff
#define PARTS_KIND 0xfe /* part 0's "table" of the number of parts (u32; none: 1) */

static size_t part_flows = CA_WS_PART_FLOWS;

void ca_ws_set_part_flows(size_t n)
{
    part_flows = n != 0 ? n : CA_WS_PART_FLOWS;
}

/* Key of table kind of a part: returns its length. */
static size_t caggs_key(unsigned char key[8], uint32_t cap, uint32_t part, unsigned kind)
{
    ca_store_be32(cap, key);
    if (part == 0) {
        key[4] = (unsigned char)kind;
        return 5;
    }
    key[4] = PART_MARK;
    key[5] = (unsigned char)(part >> 8);
    key[6] = (unsigned char)part;
    key[7] = (unsigned char)kind;
    return 8;
}

/* Key of an address list of a part: returns its length. */
static size_t addrix_key(unsigned char key[24], uint32_t cap, uint32_t part, int ver,
                         const uint8_t addr[16])
{
    size_t n = 4;

    ca_store_be32(cap, key);
    if (part != 0) {
        key[4] = PART_MARK;
        key[5] = (unsigned char)(part >> 8);
        key[6] = (unsigned char)part;
        n = 7;
    }
    key[n] = (unsigned char)ver;
    memcpy(key + n + 1, addr, 16);
    return n + 17;
}

/*
 * Batches are buffered and committed IMP_FLUSH_FLOWS flows at a time (or
 * when the buffer holds IMP_MAX_BATCHES batches or IMP_FLUSH_BYTES of
 * records): fewer commits, fewer waits for the disk.  Each batch keeps
 * its own hot chunk, so the stored data is the same.
 * 32,768 flows (12 MB of records) rather than 65,536: a commit's buffers
 * and LMDB's dirty pages are the memory an import touches fresh, which
 * costs more on a virtual machine than the extra commits (1 GB capture:
 * 4% faster, 335 -> 301 MiB at the peak; 16,384 was slower again).
 */
#define IMP_FLUSH_FLOWS 32768
#define IMP_MAX_BATCHES 16
#define IMP_FLUSH_BYTES ((size_t)12 << 20)

struct icache {
    uint32_t id[ICACHE_SIZE];
    uint32_t hash[ICACHE_SIZE];
    char str[ICACHE_SIZE][CA_HOST_MAX + 2]; /* kind byte + name + NUL */
};

/*
 * The addresses of the capture being imported, in order of first
 * appearance (client before server, flow by flow): that order is the
 * table builder's address index (ca_capagg_add_ix), so the builder needs
 * no address hash of its own.  Each entry has its workspace id (addrs),
 * found or given once per capture with a single B-tree operation.
 * Entries from `committed` on were made by the attempt in progress.
 */
struct aent {
    uint8_t key[17]; /* ip version, 16 address bytes */
    uint8_t pad[3];
    uint32_t aid;
};

struct amap {
    uint64_t *slot; /* u32 hash << 32 | (entry index + 1); 0 empty */
    size_t cap;     /* slots, a power of two */
    struct aent *ent;
    size_t n, entcap, committed;
};

struct ws_import {
    uint32_t cache_cap; /* capture whose import filled the caches */
    int pending;        /* a write attempt began and has not committed */
    struct icache *ic;
    struct amap am;
    uint32_t am_seq0;    /* seq of the batch at which am was last emptied */
    uint64_t next_addr;  /* meta "next_addr" in the attempt in progress */
    int next_addr_state; /* 0 not read yet, 1 read, 2 changed */
    struct ca_hot *hot;  /* the buffered flows' hot records */
    uint32_t *ix;        /* their address indexes in am: client, server */
    size_t hotcap;
    /* batches buffered for the next commit (imp_flush): their flows
     * encoded back to back (the id left 0, set in the commit), and each
     * flow's five interned names, NUL-terminated, back to back */
    uint32_t buf_cap; /* their capture, 0 none */
    size_t nbuf, nb;  /* flows, batches */
    size_t bn[IMP_MAX_BATCHES];
    uint32_t seq0[IMP_MAX_BATCHES]; /* each batch's first seq, from the commit */
    uint8_t *enc;
    size_t enclen, enccap;
    char *names;
    size_t nameslen, namescap;
    uint32_t *off; /* per flow: record offset in enc, names offset in names */
    size_t offcap;
    void *map; /* the map last advised (imp_advise) */
    size_t mapsize;
    size_t envmapsize;  /* LMDB map size when map was found */
    int statm;          /* /proc/self/statm, -1 not open (imp_unmap) */
    uint32_t cap;       /* capture of the builder, 0 none */
    uint32_t next_seq;  /* seq the builder expects next */
    uint32_t parts;     /* parts of the capture's tables committed */
    uint32_t part_seq0; /* first seq of the part the builder has */
    struct ca_capagg *agg;
    int64_t first_ns, last_ns; /* span of the flows the builder has */
    /* staged addresses (addrnew, see imp_addr_ids): the id ranges this
     * import staged in commits that took, still its own (the map has
     * them); the attempt's range; the other addresses staged, by key */
    uint32_t (*own)[2];
    size_t nown, owncap;
    uint32_t att_lo, att_hi;
    struct amap others;
};

static void imp_free(struct ws_import *imp)
{
    if (imp == NULL)
        return;
    ca_capagg_free(imp->agg);
    ca_big_free(imp->hot);
    ca_big_free(imp->ix);
    ca_big_free(imp->enc);
    ca_big_free(imp->names);
    ca_big_free(imp->off);
    ca_big_free(imp->am.slot);
    ca_big_free(imp->am.ent);
    ca_big_free(imp->others.slot);
    ca_big_free(imp->others.ent);
    free(imp->own);
    free(imp->ic);
    if (imp->statm >= 0)
        close(imp->statm);
    free(imp);
}

/* Drops the builder of capture cap (purged, deleted, or its import over),
 * and batches of cap not yet committed; another capture's are committed. */
static void imp_drop(struct ca_ws *w, uint32_t cap)
{
    if (w->imp != NULL &&
        (cap == 0 || w->imp->cap == cap || w->imp->cache_cap == cap || w->imp->buf_cap == cap)) {
        if (cap != 0 && w->imp->nb > 0 && w->imp->buf_cap != cap)
            (void)imp_flush(w);
        imp_free(w->imp);
        w->imp = NULL;
    }
}

static uint32_t str_hash(int kind, const char *s)
{
    uint32_t h = 2166136261u ^ (uint32_t)kind;

    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static int intern(struct ca_ws *w, MDB_txn *txn, struct icache *ic, int kind, const char *name,
                  uint32_t *id)
{
    unsigned char kbuf[CA_HOST_MAX + 2], idb[4];
    MDB_val k, v;
    size_t len = strnlen(name, CA_HOST_MAX);
    uint32_t h, slot;
    uint64_t nid;
    int rc;

    *id = 0;
    if (len == 0)
        return 0;
    h = str_hash(kind, name);
    slot = h % ICACHE_SIZE;
    if (ic->id[slot] != 0 && ic->hash[slot] == h && ic->str[slot][0] == (char)kind &&
        strncmp(ic->str[slot] + 1, name, len) == 0 && ic->str[slot][len + 1] == '\0') {
        *id = ic->id[slot];
        return 0;
    }
    kbuf[0] = (unsigned char)kind;
    memcpy(kbuf + 1, name, len);
    k.mv_data = kbuf;
    k.mv_size = len + 1;
    rc = mdb_get(txn, w->db[WDB_STRS], &k, &v);
    if (rc == 0 && v.mv_size == 4) {
        *id = ca_store_rd32(v.mv_data);
    } else if (rc == MDB_NOTFOUND) {
        rc = ca_store_counter_next(txn, w->db[WDB_META], "next_str", &nid);
        if (rc != 0)
            return rc;
        if (nid > UINT32_MAX)
            return CA_EQUOTA;
        *id = (uint32_t)nid;
        ca_store_be32(*id, idb);
        v.mv_data = idb;
        v.mv_size = 4;
        rc = mdb_put(txn, w->db[WDB_STRS], &k, &v, 0);
        if (rc != 0)
            return rc;
        kbuf[len + 1] = '\0';
        k.mv_data = idb;
        k.mv_size = 4;
        v.mv_data = kbuf;
        v.mv_size = len + 2;
        rc = mdb_put(txn, w->db[WDB_STRID], &k, &v, 0);
        if (rc != 0)
            return rc;
    } else {
        return rc != 0 ? rc : CA_ESTORE;
    }
    ic->id[slot] = *id;
    ic->hash[slot] = h;
    ic->str[slot][0] = (char)kind;
    memcpy(ic->str[slot] + 1, name, len);
    ic->str[slot][len + 1] = '\0';
    return 0;
}

void ca_hot_from_flow(const struct ca_flow *f, struct ca_hot *h)
{
    uint64_t r = f->risk;

    memset(h, 0, sizeof(*h));
    memcpy(h->src, f->cli_ip, 16);
    memcpy(h->dst, f->srv_ip, 16);
    h->first_ns = f->first_ns;
    h->last_ns = f->last_ns;
    h->sent_bytes = f->bytes[0];
    h->recv_bytes = f->bytes[1];
    h->sent_pkts = f->pkts[0] > UINT32_MAX ? UINT32_MAX : (uint32_t)f->pkts[0];
    h->recv_pkts = f->pkts[1] > UINT32_MAX ? UINT32_MAX : (uint32_t)f->pkts[1];
    h->src_asn = f->cli_asn;
    h->dst_asn = f->srv_asn;
    h->src_port = f->cli_port;
    h->dst_port = f->srv_port;
    h->vlan = f->vlan;
    memcpy(h->src_cc, f->cli_cc, 2);
    memcpy(h->dst_cc, f->srv_cc, 2);
    h->l4 = f->l4;
    h->ip_version = f->ip_version;
    h->tcp_state = f->tcp_state;
    for (; r != 0; r &= r - 1)
        h->nrisks++;
}

/* A flow's names as buffered (names_put): host, dns_name, l7_name,
 * category_name, risks, each NUL-terminated. */
static int hot_intern(struct ca_ws *w, MDB_txn *txn, struct icache *ic, const char *names,
                      struct ca_hot *h)
{
    const char *dns = names + strlen(names) + 1;
    const char *l7 = dns + strlen(dns) + 1;
    const char *cat = l7 + strlen(l7) + 1;
    const char *risks = cat + strlen(cat) + 1;
    int rc;

    if ((rc = intern(w, txn, ic, CA_STR_HOST, names, &h->host_id)) != 0 ||
        (rc = intern(w, txn, ic, CA_STR_HOST, dns, &h->dns_id)) != 0 ||
        (rc = intern(w, txn, ic, CA_STR_PROTO, l7, &h->proto_id)) != 0 ||
        (rc = intern(w, txn, ic, CA_STR_CATEGORY, cat, &h->cat_id)) != 0)
        return rc;
    return intern(w, txn, ic, CA_STR_RISKS, risks, &h->risks_id);
}

static uint32_t akey_hash(const uint8_t key[17])
{
    uint64_t x, y;

    memcpy(&x, key + 1, 8);
    memcpy(&y, key + 9, 8);
    x = (x ^ key[0]) * 0x9e3779b97f4a7c15ULL;
    y = (y + (x >> 29)) * 0xc2b2ae3d27d4eb4fULL;
    x ^= y ^ (y >> 32);
    x *= 0xbf58476d1ce4e5b9ULL;
    return (uint32_t)(x >> 32);
}

/* Empties the map (a new capture). */
static void amap_reset(struct amap *m)
{
    if (m->slot != NULL)
        memset(m->slot, 0, m->cap * sizeof(*m->slot));
    m->n = m->committed = 0;
}

static void amap_place(uint64_t *slot, size_t cap, uint32_t h, size_t i)
{
    size_t j;

    for (j = h & (cap - 1); slot[j] != 0; j = (j + 1) & (cap - 1))
        ;
    slot[j] = (uint64_t)h << 32 | (uint64_t)(i + 1);
}

/* Drops the entries of an attempt that did not commit. */
static void amap_rollback(struct amap *m)
{
    if (m->n == m->committed)
        return;
    m->n = m->committed;
    memset(m->slot, 0, m->cap * sizeof(*m->slot));
    for (size_t i = 0; i < m->n; i++)
        amap_place(m->slot, m->cap, akey_hash(m->ent[i].key), i);
}

static int amap_grow(struct amap *m)
{
    size_t nc = m->cap ? m->cap * 2 : 1u << 16;
    uint64_t *g = ca_big_alloc(nc * sizeof(*g));

    if (g == NULL)
        return CA_ENOMEM;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slot[i] != 0)
            amap_place(g, nc, (uint32_t)(m->slot[i] >> 32), (size_t)(uint32_t)m->slot[i] - 1);
    ca_big_free(m->slot);
    m->slot = g;
    m->cap = nc;
    return 0;
}

/* The index of key (hash h) in the map, or -1. */
static long amap_find(const struct amap *m, const uint8_t key[17], uint32_t h)
{
    if (m->cap == 0)
        return -1;
    for (size_t j = h & (m->cap - 1); m->slot[j] != 0; j = (j + 1) & (m->cap - 1)) {
        if ((uint32_t)(m->slot[j] >> 32) == h &&
            memcmp(m->ent[(uint32_t)m->slot[j] - 1].key, key, 17) == 0)
            return (long)((uint32_t)m->slot[j] - 1);
    }
    return -1;
}

/* Adds key (hash h, not in the map) with id aid; its index in *idx. */
static int amap_add(struct amap *m, const uint8_t key[17], uint32_t h, uint32_t aid, uint32_t *idx)
{
    int rc;

    if ((m->n + 1) * 2 > m->cap && (rc = amap_grow(m)) != 0)
        return rc;
    if (m->n >= UINT32_MAX - 1)
        return CA_EQUOTA;
    if (m->n == m->entcap) {
        size_t nc = m->entcap ? m->entcap * 2 : 1u << 15;
        struct aent *g = ca_big_realloc(m->ent, nc * sizeof(*g));

        if (g == NULL)
            return CA_ENOMEM;
        m->ent = g;
        m->entcap = nc;
    }
    memcpy(m->ent[m->n].key, key, 17);
    m->ent[m->n].aid = aid;
    amap_place(m->slot, m->cap, h, m->n);
    *idx = (uint32_t)m->n++;
    return 0;
}

/*
 * The capture index of an address: its entry in the map, made when new
 * with workspace id 0 (given by imp_addr_ids before the commit ends).
 */
static int imp_addr(struct ws_import *imp, int ver, const uint8_t addr[16], uint32_t *idx)
{
    uint8_t key[17];
    uint32_t h;
    long i;

    key[0] = (uint8_t)ver;
    memcpy(key + 1, addr, 16);
    h = akey_hash(key);
    if ((i = amap_find(&imp->am, key, h)) >= 0) {
        *idx = (uint32_t)i;
        return 0;
    }
    return amap_add(&imp->am, key, h, 0, idx);
}

/* Orders two addresses (entries of arg) with equal first 8 key bytes. */
static int aord_tie(const void *x, const void *y, void *arg)
{
    const struct ca_keyord *a = x, *b = y;
    const struct aent *e = arg;

    return memcmp(e[a->idx].key + 8, e[b->idx].key + 8, 9);
}

/* n entries of e in key order (the B-tree's), or NULL when out of memory. */
static struct ca_keyord *aent_sorted(const struct aent *e, size_t n)
{
    struct ca_keyord *o = ca_big_alloc((n + 1) * sizeof(*o));

    if (o == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        o[i].key = ca_store_rd64(e[i].key);
        o[i].idx = (uint32_t)i;
        o[i].pad = 0;
    }
    o = ca_keyord_sort(o, n);
    if (o != NULL)
        ca_keyord_ties(o, n, aord_tie, (void *)e);
    return o;
}

/*
 * Fills imp->others with the addresses other imports staged (addrnew):
 * every entry but those of this import's own committed ranges, which its
 * map has.  Another import's staged address must keep its id here too.
 */
static int staged_load(MDB_cursor *sc, struct ws_import *imp)
{
    unsigned char kb[4];
    MDB_val k = {sizeof(kb), kb}, v;
    size_t r = 0;
    uint32_t idx;
    int rc;

    amap_reset(&imp->others);
    ca_store_be32(1, kb);
    rc = mdb_cursor_get(sc, &k, &v, MDB_SET_RANGE);
    while (rc == 0) {
        const uint8_t *key = v.mv_data;
        uint32_t aid;

        if (k.mv_size != 4 || v.mv_size != 17 || (aid = ca_store_rd32(k.mv_data)) == 0)
            return CA_ESTORE;
        while (r < imp->nown && imp->own[r][1] < aid)
            r++;
        if (r < imp->nown && imp->own[r][0] <= aid) { /* ours: past the range */
            if (imp->own[r][1] == UINT32_MAX)
                break;
            ca_store_be32(imp->own[r][1] + 1, kb);
            k.mv_data = kb;
            k.mv_size = sizeof(kb);
            rc = mdb_cursor_get(sc, &k, &v, MDB_SET_RANGE);
            continue;
        }
        if ((rc = amap_add(&imp->others, key, akey_hash(key), aid, &idx)) != 0)
            return rc;
        rc = mdb_cursor_get(sc, &k, &v, MDB_NEXT);
    }
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/*
 * Gives the workspace id of each address of the map new in this attempt
 * (entries from m->committed on).  The address B-tree (addrs) is only
 * read here: an address it lacks, and no other import staged, gets the
 * next id and is staged, appended to addrnew (keyed by id, so appends
 * change only its last page).  Writing new addresses into addrs at every
 * commit changed most of its leaves each time (new addresses land all
 * over it); staged_merge moves them there at the end of each part of the
 * capture and at its finish, each leaf changed once for all of them (a 1
 * GB capture's import writes 341 MB instead of 415, and its flow commits
 * wait about 15 ms for the disk instead of 30-40).  Lookups go in key
 * order, so that each finds its place from the page of the one before
 * (LMDB's cursor).
 * The id counter is read once per attempt and written at its end
 * (addr_counter_put).
 */
static int imp_addr_ids(struct ca_ws *w, MDB_txn *txn, MDB_cursor *acur, struct ws_import *imp)
{
    struct amap *m = &imp->am;
    size_t n = m->n - m->committed;
    struct ca_keyord *o;
    MDB_cursor *sc = NULL;
    int rc = 0;

    if (n == 0)
        return 0;
    o = aent_sorted(m->ent + m->committed, n);
    if (o == NULL)
        return CA_ENOMEM;
    if (imp->next_addr_state == 0) {
        MDB_val ck = {9, (void *)"next_addr"}, cv;

        rc = mdb_get(txn, w->db[WDB_META], &ck, &cv);
        if (rc == 0 && cv.mv_size == 8) {
            imp->next_addr = ca_store_rd64(cv.mv_data);
        } else if (rc == MDB_NOTFOUND) {
            imp->next_addr = 0;
            rc = 0;
        } else {
            rc = rc != 0 ? rc : CA_ESTORE;
        }
        imp->next_addr_state = 1;
    }
    if (rc == 0)
        rc = mdb_cursor_open(txn, w->db[WDB_ADDRNEW], &sc);
    if (rc == 0)
        rc = staged_load(sc, imp);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct aent *e = &m->ent[m->committed + o[i].idx];
        unsigned char idb[4];
        MDB_val k = {sizeof(e->key), e->key}, v;
        long x;

        if (i % IMP_UNMAP_ADDRS == IMP_UNMAP_ADDRS - 1)
            imp_unmap(w);
        rc = mdb_cursor_get(acur, &k, &v, MDB_SET_RANGE); /* leaves acur on the page */
        if (rc == 0 && k.mv_size == sizeof(e->key) && memcmp(k.mv_data, e->key, 17) == 0) {
            rc = v.mv_size == 4 && (e->aid = ca_store_rd32(v.mv_data)) != 0 ? 0 : CA_ESTORE;
            continue;
        }
        if (rc != 0 && rc != MDB_NOTFOUND)
            break;
        if ((x = amap_find(&imp->others, e->key, akey_hash(e->key))) >= 0) {
            e->aid = imp->others.ent[x].aid;
            rc = 0;
            continue;
        }
        if (imp->next_addr >= UINT32_MAX) {
            rc = CA_EQUOTA;
            break;
        }
        e->aid = (uint32_t)++imp->next_addr;
        imp->next_addr_state = 2;
        if (imp->att_lo == 0)
            imp->att_lo = e->aid;
        imp->att_hi = e->aid;
        ca_store_be32(e->aid, idb);
        k.mv_data = idb;
        k.mv_size = sizeof(idb);
        v.mv_data = e->key;
        v.mv_size = sizeof(e->key);
        /* ids only grow: each goes after the last one */
        rc = mdb_cursor_put(sc, &k, &v, MDB_APPEND);
    }
    if (sc != NULL)
        mdb_cursor_close(sc);
    ca_big_free(o);
    return rc;
}

/* After a commit that took: the ids the attempt staged are this import's
 * (out of memory, they stay others', which staged_load then reads: the
 * same ids either way). */
static void own_add(struct ws_import *imp)
{
    if (imp->att_lo == 0)
        return;
    if (imp->nown > 0 && imp->own[imp->nown - 1][1] + 1 == imp->att_lo) {
        imp->own[imp->nown - 1][1] = imp->att_hi;
    } else {
        if (imp->nown == imp->owncap) {
            size_t nc = imp->owncap ? imp->owncap * 2 : 16;
            uint32_t(*g)[2] = realloc(imp->own, nc * sizeof(*g));

            if (g == NULL)
                return;
            imp->own = g;
            imp->owncap = nc;
        }
        imp->own[imp->nown][0] = imp->att_lo;
        imp->own[imp->nown++][1] = imp->att_hi;
    }
}

/* Writes the address id counter if the attempt gave ids. */
static int addr_counter_put(struct ca_ws *w, MDB_txn *txn, struct ws_import *imp)
{
    unsigned char buf[8];
    MDB_val k = {9, (void *)"next_addr"}, v = {sizeof(buf), buf};

    if (imp->next_addr_state != 2)
        return 0;
    ca_store_be64(imp->next_addr, buf);
    return mdb_put(txn, w->db[WDB_META], &k, &v, 0);
}

/*
 * Commits the buffered batches: per batch, its flows (ids from the
 * capture's seq counter), its hot chunk; names and addresses interned
 * flow by flow, in order.  Everything is derived from the buffer and the
 * txn, so a retry (ca_store_write) does the same again.
 */
static int flows_put_txn(MDB_txn *txn, void *arg)
{
    struct cap_arg *a = arg;
    struct ca_ws *w = a->w;
    struct ws_import *imp = w->imp;
    struct ca_hot *hot = imp->hot;
    unsigned char key[8], skey[4], sval[4], hkey[8];
    MDB_val k = {sizeof(key), key}, v, hk = {sizeof(hkey), hkey}, hv;
    MDB_cursor *fcur = NULL, *acur = NULL; /* one each for the commit: no set-up per put */
    uint32_t seq;
    size_t pos = 0;
    int rc, fresh = 0;

    if (imp->cache_cap != a->id) {
        memset(imp->ic->id, 0, sizeof(imp->ic->id));
        amap_reset(&imp->am);
        imp->nown = 0; /* what it staged is no longer in the map: others' now */
        imp->cache_cap = a->id;
        fresh = 1;
    } else if (imp->pending) {
        memset(imp->ic->id, 0, sizeof(imp->ic->id));
        amap_rollback(&imp->am);
    }
    imp->pending = 1;
    imp->next_addr_state = 0;
    imp->att_lo = imp->att_hi = 0;
    rc = capseq_get(w, txn, a->id, &seq);
    if (rc != 0)
        return rc;
    if (fresh)
        imp->am_seq0 = seq;
    if ((uint64_t)seq + imp->nbuf > UINT32_MAX)
        return CA_EQUOTA;
    if ((rc = mdb_cursor_open(txn, w->db[WDB_FLOWS], &fcur)) != 0 ||
        (rc = mdb_cursor_open(txn, w->db[WDB_ADDRS], &acur)) != 0)
        goto out;
    for (size_t b = 0; b < imp->nb && rc == 0; b++) {
        size_t n = imp->bn[b];

        imp->seq0[b] = seq;
        for (size_t i = pos; i < pos + n; i++) {
            uint64_t id = (uint64_t)a->id << 32 | (seq + (uint32_t)(i - pos));
            uint8_t *rec = imp->enc + imp->off[2 * i];

            ca_flow_set_id(rec, id);
            ca_store_be64(id, key);
            v.mv_data = rec;
            v.mv_size = (i + 1 < imp->nbuf ? imp->off[2 * i + 2] : imp->enclen) - imp->off[2 * i];
            /* seqs only grow: each key goes after the last one */
            rc = mdb_cursor_put(fcur, &k, &v, MDB_APPEND);
            if (rc == MDB_KEYEXIST) /* not the last key (a leftover of a crash): plain put */
                rc = mdb_cursor_put(fcur, &k, &v, 0);
            if (rc != 0)
                goto out;
        }
        for (size_t i = pos; i < pos + n && rc == 0; i++) {
            struct ca_hot *h = &hot[i];

            rc = hot_intern(w, txn, imp->ic, imp->names + imp->off[2 * i + 1], h);
            if (rc == 0)
                rc = imp_addr(imp, h->ip_version, h->src, &imp->ix[2 * i]);
            if (rc == 0 && memcmp(h->src, h->dst, 16) == 0)
                imp->ix[2 * i + 1] = imp->ix[2 * i];
            else if (rc == 0)
                rc = imp_addr(imp, h->ip_version, h->dst, &imp->ix[2 * i + 1]);
            if ((i - pos) % IMP_UNMAP_FLOWS == IMP_UNMAP_FLOWS - 1)
                imp_unmap(w);
        }
        pos += n;
        seq += (uint32_t)n;
    }
    /* the new addresses' ids, then each batch's hot chunk with them */
    if (rc == 0)
        rc = imp_addr_ids(w, txn, acur, imp);
    pos = 0;
    for (size_t b = 0; b < imp->nb && rc == 0; b++) {
        size_t n = imp->bn[b];

        for (size_t i = pos; i < pos + n; i++) {
            hot[i].src_aid = imp->am.ent[imp->ix[2 * i]].aid;
            hot[i].dst_aid = imp->am.ent[imp->ix[2 * i + 1]].aid;
        }
        ca_store_be32(a->id, hkey);
        ca_store_be32(imp->seq0[b], hkey + 4);
        hv.mv_data = hot + pos;
        hv.mv_size = n * sizeof(*hot);
        rc = mdb_put(txn, w->db[WDB_HOT], &hk, &hv, 0);
        pos += n;
    }
    imp_unmap(w);
    if (rc == 0)
        rc = addr_counter_put(w, txn, imp);
    if (rc != 0)
        goto out;
    ca_store_be32(a->id, skey);
    ca_store_be32(seq, sval);
    k.mv_data = skey;
    k.mv_size = sizeof(skey);
    v.mv_data = sval;
    v.mv_size = sizeof(sval);
    rc = mdb_put(txn, w->db[WDB_CAPSEQ], &k, &v, 0);
out:
    if (acur != NULL)
        mdb_cursor_close(acur);
    if (fcur != NULL)
        mdb_cursor_close(fcur);
    return rc;
}

static int imp_ready(struct ca_ws *w, size_t n)
{
    struct ws_import *imp = w->imp;

    if (imp == NULL) {
        imp = w->imp = calloc(1, sizeof(*imp));
        if (imp == NULL)
            return CA_ENOMEM;
        imp->ic = malloc(sizeof(*imp->ic));
        imp->statm = -1;
        imp->pending = 1; /* caches cleared on first use */
        if (imp->ic == NULL) {
            imp_drop(w, 0);
            return CA_ENOMEM;
        }
    }
    n += imp->nbuf; /* room for the buffered flows and n more */
    if (n > imp->hotcap) {
        struct ca_hot *g = ca_big_realloc(imp->hot, n * sizeof(*g));
        uint32_t *x;

        if (g == NULL)
            return CA_ENOMEM;
        imp->hot = g;
        x = ca_big_realloc(imp->ix, n * 2 * sizeof(*x));
        if (x == NULL)
            return CA_ENOMEM;
        imp->ix = x;
        x = ca_big_realloc(imp->off, n * 2 * sizeof(*x));
        if (x == NULL)
            return CA_ENOMEM;
        imp->off = x;
        imp->hotcap = n;
    }
    return 0;
}

/* Room for `more` bytes at the end of a buffer of imp (doubling). */
static int buf_room(void **p, size_t len, size_t *cap, size_t more)
{
    size_t nc = *cap ? *cap : (size_t)4 << 20;
    void *g;

    if (len + more <= *cap)
        return 0;
    while (nc < len + more)
        nc *= 2;
    g = ca_big_realloc(*p, nc);
    if (g == NULL)
        return CA_ENOMEM;
    *p = g;
    *cap = nc;
    return 0;
}

/* Appends s (at most max bytes) and its NUL to the names buffer. */
static void names_put(struct ws_import *imp, const char *s, size_t max)
{
    size_t n = strnlen(s, max - 1);

    memcpy(imp->names + imp->nameslen, s, n);
    imp->names[imp->nameslen + n] = '\0';
    imp->nameslen += n + 1;
}

/* Buffers a batch of flows of capture cap (imp_ready(w, n) done). */
static int imp_buffer(struct ws_import *imp, uint32_t cap, const struct ca_flow *flows, size_t n)
{
    const size_t names_max = 2 * CA_HOST_MAX + CA_L7_MAX + CA_CAT_MAX + CA_RISKS_MAX;
    size_t base = imp->nbuf;

    for (size_t i = 0; i < n; i++) {
        const struct ca_flow *f = &flows[i];

        if (buf_room((void **)&imp->enc, imp->enclen, &imp->enccap, CA_FLOW_ENC_MAX) != 0 ||
            buf_room((void **)&imp->names, imp->nameslen, &imp->namescap, names_max) != 0 ||
            imp->enclen > UINT32_MAX - CA_FLOW_ENC_MAX || imp->nameslen > UINT32_MAX - names_max)
            return CA_ENOMEM;
        imp->off[2 * (base + i)] = (uint32_t)imp->enclen;
        imp->off[2 * (base + i) + 1] = (uint32_t)imp->nameslen;
        imp->enclen += ca_flow_encode_as(f, 0, cap, imp->enc + imp->enclen);
        names_put(imp, f->host, sizeof(f->host));
        names_put(imp, f->dns_name, sizeof(f->dns_name));
        names_put(imp, f->l7_name, sizeof(f->l7_name));
        names_put(imp, f->category_name, sizeof(f->category_name));
        names_put(imp, f->risks, sizeof(f->risks));
        ca_hot_from_flow(f, &imp->hot[base + i]);
    }
    imp->buf_cap = cap;
    imp->bn[imp->nb++] = n;
    imp->nbuf += n;
    return 0;
}

static void imp_unbuffer(struct ws_import *imp)
{
    imp->nbuf = imp->nb = imp->enclen = imp->nameslen = 0;
    imp->buf_cap = 0;
}

/*
 * An import reads the map at random places (B-tree lookups of names and
 * addresses), and copy-on-write moves the pages it reads all over the file
 * from one commit to the next: left alone, the pages mapped into the
 * importing process (its resident set, though only page cache) would grow
 * to the whole file; and one commit's address lookups alone read a page
 * of most leaves of the address B-tree, which grows with the workspace.
 * So the import drops its mappings when they have grown big (imp_unmap:
 * MADV_DONTNEED on a read-only shared map, safe in the middle of a
 * transaction: the next read maps the page again from the page cache;
 * the transaction's own pages are not in the map), checking every
 * IMP_UNMAP_FLOWS flows of a commit, and every IMP_UNMAP_ADDRS new
 * addresses, whose lookups (and moves, staged_merge) each read a leaf of
 * the address B-tree far from the last: the kernel maps the 16 pages around each page read from a
 * file that is in the page cache (fault-around, 64 KiB; MADV_RANDOM,
 * which the import also asks for, does not stop it on Linux 6), so 4,096
 * such puts could map 256 MiB (a 12 GB capture's import peaked at 522
 * MiB, 170 of them the map's).  Other processes' maps keep the defaults.
 */

/* Where this process maps the workspace's data.mdb (LMDB does not say
 * unless MDB_FIXEDMAP): from /proc/self/maps. */
static int imp_find_map(const struct ca_ws *w, void **addr, size_t *len)
{
    char line[4400], want[4200], real[PATH_MAX];
    FILE *fp = fopen("/proc/self/maps", "re");
    size_t wl;
    int found = 0;

    if (fp == NULL)
        return -1;
    /* the kernel names the file by its resolved absolute path */
    if (realpath(w->dbdir, real) == NULL) {
        fclose(fp);
        return -1;
    }
    snprintf(want, sizeof(want), "%s/data.mdb", real);
    wl = strlen(want);
    while (!found && fgets(line, sizeof(line), fp) != NULL) {
        size_t n = strcspn(line, "\n");
        unsigned long lo, hi;

        line[n] = '\0';
        if (n >= wl && strcmp(line + n - wl, want) == 0 && sscanf(line, "%lx-%lx", &lo, &hi) == 2 &&
            hi > lo) {
            *addr = (void *)lo;
            *len = hi - lo;
            found = 1;
        }
    }
    fclose(fp);
    return found ? 0 : -1;
}

static void imp_advise(struct ca_ws *w)
{
    struct ws_import *imp = w->imp;
    MDB_envinfo info;

    if (mdb_env_info(w->env, &info) != 0)
        return;
    if (imp->map == NULL || info.me_mapsize != imp->envmapsize) {
        imp->map = NULL;
        if (imp_find_map(w, &imp->map, &imp->mapsize) != 0)
            return;
        imp->envmapsize = info.me_mapsize;
        (void)madvise(imp->map, imp->mapsize, MADV_RANDOM);
    }
}

/*
 * Drops this process's mappings of the map's pages (imp_advise) once this
 * process's file-backed resident pages (the map's, the program's and the
 * libraries') pass IMP_UNMAP_BYTES: a small workspace's pages stay mapped
 * (each drop costs a fault per page read again).
 */
#define IMP_UNMAP_BYTES ((size_t)32 << 20)

static void imp_unmap(struct ca_ws *w)
{
    struct ws_import *imp = w->imp;
    char buf[128];
    unsigned long pages[3] = {0, 0, 0};
    ssize_t n;

    if (imp == NULL)
        return;
    if (imp->statm < 0)
        imp->statm = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    n = imp->statm >= 0 ? pread(imp->statm, buf, sizeof(buf) - 1, 0) : -1;
    if (n > 0) {
        buf[n] = '\0';
        /* size, resident, shared (file-backed and shared resident), in pages */
        if (sscanf(buf, "%lu %lu %lu", &pages[0], &pages[1], &pages[2]) == 3 &&
            pages[2] * (size_t)sysconf(_SC_PAGESIZE) < IMP_UNMAP_BYTES)
            return;
    }
    imp_advise(w); /* LMDB maps the file elsewhere once the map grew */
    if (imp->map != NULL)
        (void)madvise(imp->map, imp->mapsize, MADV_DONTNEED);
}

/*
 * After a committed batch: the builder takes its hot records, with the
 * address indexes of the address map when the map began with the
 * builder's part (then the two number addresses alike).
 */
static void imp_add(struct ca_ws *w, uint32_t cap, uint32_t seq0, const struct ca_hot *hot,
                    const uint32_t *ix, size_t n)
{
    struct ws_import *imp = w->imp;

    if (seq0 == 1) { /* a capture's first batch: a new builder */
        ca_capagg_free(imp->agg);
        imp->agg = NULL;
        imp->cap = cap;
        imp->next_seq = 1;
        imp->parts = 0;
        imp->part_seq0 = 1;
        imp->first_ns = imp->last_ns = 0;
        if (ca_capagg_new(&imp->agg) != 0)
            return;
    }
    if (imp->agg == NULL || imp->cap != cap || imp->next_seq != seq0 ||
        ca_capagg_add_ix(imp->agg, seq0, hot,
                         imp->cache_cap == cap && imp->am_seq0 == imp->part_seq0 ? ix : NULL,
                         n) != 0) {
        ca_capagg_free(imp->agg); /* the finishing commit reads the hot chunks instead */
        imp->agg = NULL;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const struct ca_hot *h = &hot[i];

        if ((seq0 == 1 && i == 0) || h->first_ns < imp->first_ns)
            imp->first_ns = h->first_ns;
        if ((seq0 == 1 && i == 0) || h->last_ns > imp->last_ns)
            imp->last_ns = h->last_ns;
    }
    imp->next_seq = seq0 + (uint32_t)n;
}

/*
 * Grows the map ahead of a write that needs about `need` bytes of new
 * pages, so that it does not run out of room half-way: ca_store_write
 * would then abort it, double the map and run it again from scratch,
 * which for the finishing commit means building every table twice.
 * The estimate need not be exact (the retry stays as the fallback);
 * growing the map costs address space only, not disk.
 */
#define WS_MAPSIZE_MAX ((size_t)1 << 40)

static void ws_room(struct ca_ws *w, size_t need)
{
    MDB_envinfo info;
    MDB_stat st;
    size_t used, size;

    if (mdb_env_info(w->env, &info) != 0 || mdb_env_stat(w->env, &st) != 0)
        return;
    used = ((size_t)info.me_last_pgno + 1) * st.ms_psize;
    size = info.me_mapsize;
    if (need > WS_MAPSIZE_MAX - used)
        return;
    if (size == 0 || used + need <= size)
        return;
    while (size < used + need && size < WS_MAPSIZE_MAX)
        size *= 2;
    (void)mdb_env_set_mapsize(w->env, size); /* on failure the retry remains */
}

/*
 * Batches commit with the environment's MDB_NOMETASYNC: their data pages
 * reach the disk at each commit and only the meta page waits for the next
 * one, so a machine crash keeps the database whole (it may undo the last
 * batch, of a capture not yet visible, which the retry purges).  Not
 * MDB_NOSYNC: LMDB says a machine crash can then corrupt the environment,
 * which would lose captures already stored.  ca_ws_capture_finish syncs
 * before and after the commit that makes the capture visible.
 */
/* Commits the buffered batches, then hands them to the table builder. */
static int imp_flush(struct ca_ws *w)
{
    struct ws_import *imp = w->imp;
    struct cap_arg a = {.w = w};
    size_t pos = 0;
    int rc;

    if (imp == NULL || imp->nb == 0)
        return 0;
    a.id = imp->buf_cap;
    /* a record, its hot record and two address entries take well under
     * 1 KiB; twice that for the pages copy-on-write replaces */
    ws_room(w, imp->nbuf * 2048 + ((size_t)1 << 20));
    imp_advise(w);
    rc = ca_store_err(ca_store_write(w->env, flows_put_txn, &a));
    imp_unmap(w); /* what the commit read (LMDB's free page lists) */
    if (rc != 0) {
        imp_unbuffer(imp);
        return rc;
    }
    imp->pending = 0;
    imp->am.committed = imp->am.n;
    own_add(imp);
    for (size_t b = 0; b < imp->nb; b++) {
        imp_add(w, a.id, imp->seq0[b], imp->hot + pos, imp->ix + 2 * pos, imp->bn[b]);
        pos += imp->bn[b];
    }
    imp_unbuffer(imp);
    if (imp->agg != NULL && imp->cap == a.id && imp->parts + 1 < PARTS_MAX &&
        ca_capagg_flows(imp->agg) >= part_flows)
        imp_part(w);
    return 0;
}

int ca_ws_flows_put(struct ca_ws *w, uint32_t capture_id, const struct ca_flow *flows, size_t n)
{
    struct ws_import *imp;
    int rc;

    if (n == 0)
        return 0;
    if (flows == NULL || capture_id == 0)
        return CA_EINVAL;
    if (w->imp != NULL && w->imp->nb > 0 && w->imp->buf_cap != capture_id &&
        (rc = imp_flush(w)) != 0)
        return rc;
    rc = imp_ready(w, n);
    if (rc != 0)
        return rc;
    imp = w->imp;
    rc = imp_buffer(imp, capture_id, flows, n);
    if (rc != 0) {
        imp_unbuffer(imp);
        return rc;
    }
    if (imp->nbuf >= IMP_FLUSH_FLOWS || imp->nb == IMP_MAX_BATCHES ||
        imp->enclen >= IMP_FLUSH_BYTES)
        return imp_flush(w);
    return 0;
}

/* Whether the import's builder has every flow of capture cap (seqs < seq). */
static int imp_complete(struct ca_ws *w, uint32_t cap, uint32_t seq)
{
    return w->imp != NULL && w->imp->agg != NULL && w->imp->cap == cap && w->imp->next_seq == seq &&
           seq > 1;
}

/* Earliest first_ns and latest last_ns of a capture's flows (0, 0 if none). */
static int hot_span(struct ca_ws *w, MDB_txn *txn, uint32_t cap, int64_t *first, int64_t *last)
{
    MDB_cursor *cur = NULL;
    unsigned char start[8];
    MDB_val k = {sizeof(start), start}, v;
    struct ca_hot h;
    int rc, any = 0;

    *first = *last = 0;
    rc = mdb_cursor_open(txn, w->db[WDB_HOT], &cur);
    if (rc != 0)
        return rc;
    ca_store_be64((uint64_t)cap << 32, start);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8 || ca_store_rd32(k.mv_data) != cap)
            break;
        for (size_t i = 0; i + sizeof(h) <= v.mv_size; i += sizeof(h)) {
            memcpy(&h, (const char *)v.mv_data + i, sizeof(h));
            if (!any || h.first_ns < *first)
                *first = h.first_ns;
            if (!any || h.last_ns > *last)
                *last = h.last_ns;
            any = 1;
        }
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
}

struct tab_arg {
    MDB_txn *txn;
    struct ca_ws *w;
    uint32_t cap;
    uint32_t part;
    MDB_cursor *acur; /* addrix, for appends */
    int append;       /* the address lists still go after every key */
};

static int tab_put(void *arg, unsigned kind, const void *data, size_t len)
{
    struct tab_arg *t = arg;
    unsigned char key[8];
    MDB_val k = {0, key}, v = {len, (void *)data};

    k.mv_size = caggs_key(key, t->cap, t->part, kind);
    return mdb_put(t->txn, t->w->db[WDB_CAGGS], &k, &v, 0);
}

static int tab_reserve(void *arg, unsigned kind, size_t len, void **space)
{
    struct tab_arg *t = arg;
    unsigned char key[8];
    MDB_val k = {0, key}, v = {len, NULL};
    int rc;

    k.mv_size = caggs_key(key, t->cap, t->part, kind);
    rc = mdb_put(t->txn, t->w->db[WDB_CAGGS], &k, &v, MDB_RESERVE);
    *space = rc == 0 ? v.mv_data : NULL;
    if (rc == 0 && len >= ((size_t)4 << 20)) {
        ca_big_advise(v.mv_data, len); /* LMDB's fresh pages, about to be filled */
        /* LMDB looked for that many pages in a row in its free page
         * lists, which it may have read whole */
        imp_unmap(t->w);
    }
    return rc;
}

/* The builder gives the address lists in key order: while they go after
 * every key (the capture is the newest with lists), they are appended. */
static int addr_put(void *arg, int ver, const uint8_t addr[16], const uint32_t *seqs, size_t n)
{
    struct tab_arg *t = arg;
    unsigned char key[24];
    MDB_val k = {0, key}, v = {n * sizeof(uint32_t), (void *)seqs};
    int rc;

    k.mv_size = addrix_key(key, t->cap, t->part, ver, addr);
    if (t->append) {
        if (t->acur == NULL && (rc = mdb_cursor_open(t->txn, t->w->db[WDB_ADDRIX], &t->acur)) != 0)
            return rc;
        rc = mdb_cursor_put(t->acur, &k, &v, MDB_APPEND);
        if (rc != MDB_KEYEXIST)
            return rc;
        t->append = 0; /* a key after it: plain puts from now on */
    }
    return mdb_put(t->txn, t->w->db[WDB_ADDRIX], &k, &v, 0);
}

/* After the last part (t->part parts written): the tables of the whole
 * capture and the number of parts, in part 0. */
static int capture_put(struct tab_arg *t, struct ca_capagg *agg)
{
    uint32_t n = t->part;
    int rc;

    t->part = 0;
    rc = ca_capagg_emit_capture(agg, tab_put, tab_reserve, t);
    return rc != 0 ? rc : tab_put(t, PARTS_KIND, &n, sizeof(n));
}

/* Writes the builder's part (the first: after dropping what an earlier
 * attempt at the capture left). */
static int part_txn(MDB_txn *txn, void *arg)
{
    struct cap_arg *a = arg;
    struct ws_import *imp = a->w->imp;
    struct tab_arg t = {txn, a->w, a->id, imp->parts, NULL, 1};
    int rc = imp->parts == 0 ? purge_tables(a->w, txn, a->id) : 0;

    if (rc == 0)
        rc = ca_capagg_emit_part(imp->agg, tab_reserve, addr_put, &t);
    if (t.acur != NULL)
        mdb_cursor_close(t.acur);
    return rc;
}

/*
 * Moves staged addresses (addrnew) into the address B-tree, in key order.
 * When the tree has more than dirty_leaves leaves, a commit moves only
 * the first k of the n staged keys: spread over the key space like the
 * tree's, they fall in about L k / n of its L leaves, so k = n
 * dirty_leaves / L keeps the pages LMDB holds in memory near that many
 * (and k >= dirty_leaves / 3, so that a commit moves a fair number).  A
 * staged address is new to the tree (imp_addr_ids looked there first),
 * so finding it there with another id is damage.
 */
static size_t dirty_leaves = CA_WS_DIRTY_LEAVES;

void ca_ws_set_dirty_leaves(size_t n)
{
    dirty_leaves = n != 0 ? n : CA_WS_DIRTY_LEAVES;
}

struct merge_arg {
    struct ca_ws *w;
    size_t left; /* entries still staged after the commit */
};

static int merge_txn(MDB_txn *txn, void *arg)
{
    struct merge_arg *ma = arg;
    struct ca_ws *w = ma->w;
    MDB_cursor *sc = NULL, *acur = NULL;
    struct ca_keyord *o = NULL;
    struct aent *e = NULL;
    MDB_stat st;
    MDB_val k, v;
    size_t n = 0, take;
    int rc;

    ma->left = 0;
    if ((rc = mdb_stat(txn, w->db[WDB_ADDRNEW], &st)) != 0 || st.ms_entries == 0)
        return rc;
    if ((e = ca_big_alloc(st.ms_entries * sizeof(*e))) == NULL)
        return CA_ENOMEM;
    rc = mdb_cursor_open(txn, w->db[WDB_ADDRNEW], &sc);
    if (rc == 0)
        rc = mdb_cursor_get(sc, &k, &v, MDB_FIRST);
    for (; rc == 0 && n < st.ms_entries; n++) {
        if (k.mv_size != 4 || v.mv_size != sizeof(e[n].key)) {
            rc = CA_ESTORE;
            break;
        }
        memcpy(e[n].key, v.mv_data, sizeof(e[n].key));
        e[n].aid = ca_store_rd32(k.mv_data);
        rc = mdb_cursor_get(sc, &k, &v, MDB_NEXT);
    }
    if (sc != NULL)
        mdb_cursor_close(sc);
    if (rc == MDB_NOTFOUND)
        rc = 0;
    if (rc == 0 && (o = aent_sorted(e, n)) == NULL)
        rc = CA_ENOMEM;
    take = n;
    if (rc == 0 && (rc = mdb_stat(txn, w->db[WDB_ADDRS], &st)) == 0 &&
        st.ms_leaf_pages > dirty_leaves) {
        take = (size_t)((double)n * (double)dirty_leaves / (double)st.ms_leaf_pages);
        if (take < dirty_leaves / 3 + 1)
            take = dirty_leaves / 3 + 1;
        if (take > n)
            take = n;
    }
    if (rc == 0)
        rc = mdb_cursor_open(txn, w->db[WDB_ADDRS], &acur);
    for (size_t i = 0; rc == 0 && i < take; i++) {
        const struct aent *x = &e[o[i].idx];
        unsigned char idb[4];
        MDB_val ak = {sizeof(x->key), (void *)x->key}, av = {sizeof(idb), idb};

        ca_store_be32(x->aid, idb);
        rc = mdb_cursor_put(acur, &ak, &av, MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST)
            rc = av.mv_size == 4 && ca_store_rd32(av.mv_data) == x->aid ? 0 : CA_ESTORE;
        if (i % IMP_UNMAP_ADDRS == IMP_UNMAP_ADDRS - 1)
            imp_unmap(w);
    }
    if (acur != NULL)
        mdb_cursor_close(acur);
    if (rc == 0 && take == n) {
        rc = mdb_drop(txn, w->db[WDB_ADDRNEW], 0);
    } else {
        for (size_t i = 0; rc == 0 && i < take; i++) {
            unsigned char idb[4];
            MDB_val dk = {sizeof(idb), idb};

            ca_store_be32(e[o[i].idx].aid, idb);
            rc = mdb_del(txn, w->db[WDB_ADDRNEW], &dk, NULL);
        }
    }
    ma->left = n - take;
    ca_big_free(o);
    ca_big_free(e);
    return rc;
}

/*
 * Moves every staged address into the address B-tree, in as many commits
 * as merge_txn needs (at most IMP_MERGE_COMMITS: other imports may stage
 * more meanwhile).  0 once none is left: then this import has no staged
 * address of its own.
 */
#define IMP_MERGE_COMMITS 64

static int staged_merge(struct ca_ws *w)
{
    struct merge_arg ma = {w, 0};
    int rc, i = 0;

    do {
        ws_room(w, (size_t)64 << 20);
        rc = ca_store_err(ca_store_write(w->env, merge_txn, &ma));
        imp_unmap(w);
    } while (rc == 0 && ma.left > 0 && ++i < IMP_MERGE_COMMITS);
    if (rc == 0 && ma.left > 0)
        rc = CA_EBUSY;
    if (rc == 0 && w->imp != NULL)
        w->imp->nown = 0;
    return rc;
}

/* Commits the builder's part and empties the builder and the address map
 * for the next one; on failure drops the builder (the finishing commit
 * then builds every part from the hot chunks). */
static void imp_part(struct ca_ws *w)
{
    struct ws_import *imp = w->imp;
    struct cap_arg a = {.w = w, .id = imp->cap};
    int rc;

    ws_room(w, 2 * ca_capagg_bytes(imp->agg) + ((size_t)16 << 20));
    rc = ca_store_write(w->env, part_txn, &a);
    imp_unmap(w);
    if (rc != 0 || ca_capagg_next_part(imp->agg) != 0) {
        ca_capagg_free(imp->agg);
        imp->agg = NULL;
        return;
    }
    imp->parts++;
    imp->part_seq0 = imp->next_seq;
    /* the map's addresses must be in addrs (or another import's map) before it forgets them */
    if (imp->cache_cap == imp->cap && !imp->pending && staged_merge(w) == 0) {
        amap_reset(&imp->am);
        imp->am_seq0 = imp->next_seq;
    }
}

/*
 * The capture's pre-computed tables and address lists: the last part from
 * the import's builder when it has every flow since the parts it wrote
 * (seqs up to seq - 1), else every part from the hot chunks.
 */
static int build_tables(struct ca_ws *w, MDB_txn *txn, uint32_t cap, uint32_t seq)
{
    struct ca_capagg *agg = NULL;
    struct tab_arg t = {txn, w, cap, 0, NULL, 1};
    MDB_cursor *cur = NULL;
    unsigned char start[8];
    MDB_val k = {sizeof(start), start}, v;
    struct ca_hot *buf = NULL;
    size_t bufn = 0;
    int rc = 0;

    if (imp_complete(w, cap, seq)) {
        struct ws_import *imp = w->imp;

        if (imp->parts == 0)
            rc = purge_tables(w, txn, cap);
        t.part = imp->parts;
        if (rc == 0 && (t.part == 0 || ca_capagg_flows(imp->agg) > 0) &&
            (rc = ca_capagg_emit_part(imp->agg, tab_reserve, addr_put, &t)) == 0)
            t.part++;
        if (rc == 0)
            rc = capture_put(&t, imp->agg);
        if (t.acur != NULL)
            mdb_cursor_close(t.acur);
        return rc;
    }
    rc = purge_tables(w, txn, cap);
    if (rc == 0)
        rc = ca_capagg_new(&agg);
    if (rc == 0)
        rc = mdb_cursor_open(txn, w->db[WDB_HOT], &cur);
    if (rc != 0)
        goto out;
    ca_store_be64((uint64_t)cap << 32, start);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        size_t n = v.mv_size / sizeof(struct ca_hot);

        if (k.mv_size != 8 || ca_store_rd32(k.mv_data) != cap)
            break;
        if (n > bufn) {
            free(buf);
            buf = malloc(n * sizeof(*buf));
            bufn = buf != NULL ? n : 0;
            if (buf == NULL) {
                rc = CA_ENOMEM;
                break;
            }
        }
        memcpy(buf, v.mv_data, n * sizeof(*buf));
        rc = ca_capagg_add(agg, ca_store_rd32((const char *)k.mv_data + 4), buf, n);
        if (rc == 0 && t.part + 1 < PARTS_MAX && ca_capagg_flows(agg) >= part_flows) {
            rc = ca_capagg_emit_part(agg, tab_reserve, addr_put, &t);
            if (rc == 0)
                rc = ca_capagg_next_part(agg);
            t.part++;
        }
        if (rc != 0)
            break;
    }
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND)
        rc = 0;
    if (rc == 0 && (t.part == 0 || ca_capagg_flows(agg) > 0) &&
        (rc = ca_capagg_emit_part(agg, tab_reserve, addr_put, &t)) == 0)
        t.part++;
    if (rc == 0)
        rc = capture_put(&t, agg);
    if (t.acur != NULL)
        mdb_cursor_close(t.acur);
out:
    free(buf);
    ca_capagg_free(agg);
    return rc;
}

static int finish_txn(MDB_txn *txn, void *arg)
{
    struct cap_arg *a = arg;
    unsigned char key[4];
    json_t *rec = NULL;
    int64_t first = 0, last = 0;
    uint32_t seq;
    int rc;

    ca_store_be32(a->id, key);
    rc = ca_store_get_json(txn, a->w->db[WDB_CAPTURES], key, sizeof(key), &rec);
    if (rc != 0)
        return rc;
    rc = capseq_get(a->w, txn, a->id, &seq);
    if (rc == 0 && imp_complete(a->w, a->id, seq)) {
        first = a->w->imp->first_ns;
        last = a->w->imp->last_ns;
    } else if (rc == 0) {
        rc = hot_span(a->w, txn, a->id, &first, &last);
    }
    if (rc == 0)
        rc = build_tables(a->w, txn, a->id, seq);
    if (rc != 0)
        goto out;
    if (json_object_set_new(rec, "first_ns", json_integer(first)) != 0 ||
        json_object_set_new(rec, "last_ns", json_integer(last)) != 0 ||
        json_object_set_new(rec, "state", json_string("ready")) != 0 ||
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

    rc = imp_flush(w); /* the last batches */
    /* keeps addrnew small; not needed (what stays staged is read as
     * others'), so a failure here fails nothing */
    if (rc == 0)
        (void)staged_merge(w);
    if (rc != 0) {
        imp_drop(w, capture_id);
        return rc;
    }
    if (w->imp != NULL) { /* the batch buffers are done with: out of the peak */
        ca_big_free(w->imp->enc);
        ca_big_free(w->imp->names);
        w->imp->enc = NULL;
        w->imp->names = NULL;
        w->imp->enccap = w->imp->namescap = 0;
    }
    /* No malloc_trim here: an import's process keeps big blocks in the heap
     * (ca_big_heap_keep), so the finishing commit's pages reuse what the
     * flow table freed, where giving it back first made them fault in
     * afresh (a 1 GB capture's import: 6% slower, the same peak). */
    /* the last batch's meta page reaches the disk before the commit that
     * makes the capture visible */
    if (mdb_env_sync(w->env, 1) != 0) {
        imp_drop(w, capture_id);
        return CA_EIO;
    }
    if (w->imp != NULL && w->imp->agg != NULL && w->imp->cap == capture_id)
        ws_room(w, 2 * ca_capagg_bytes(w->imp->agg) + ((size_t)16 << 20));
    rc = ca_store_err(ca_store_write(w->env, finish_txn, &a));
    imp_drop(w, capture_id);
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

    imp_drop(w, capture_id);
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

/* ---- snapshots for the query engine ------------------------------------ */

_Static_assert(sizeof(struct ca_hot) == 128, "hot record layout is part of the stored format");

struct ca_ws_snap {
    struct ca_ws *w;
    MDB_txn *txn;
    MDB_cursor *hotcur; /* random access to hot records */
    uint32_t hc_cap, hc_seq0;
    size_t hc_n;
    const void *hc_data;
    struct ca_snap_capture *caps;
    size_t ncaps, capcap;
    uint32_t *parts;      /* per capture: its tables' parts (ca_ws_snap_parts); 0 not read yet */
    struct ca_hot *align; /* copy of a chunk that LMDB stored unaligned */
    size_t align_n;
};

static int snap_cap_one(json_t *rec, void *arg)
{
    struct ca_ws_snap *s = arg;
    const char *state = json_string_value(json_object_get(rec, "state"));
    const char *name = json_string_value(json_object_get(rec, "name"));
    json_int_t id = json_integer_value(json_object_get(rec, "id"));
    json_int_t flows = json_integer_value(json_object_get(rec, "flows"));
    struct ca_snap_capture *c;

    if (state == NULL || strcmp(state, "ready") != 0 || id <= 0 || id > UINT32_MAX) {
        json_decref(rec);
        return 0;
    }
    if (s->ncaps == s->capcap) {
        size_t nc = s->capcap ? s->capcap * 2 : 16;
        struct ca_snap_capture *g = realloc(s->caps, nc * sizeof(*g));

        if (g == NULL) {
            json_decref(rec);
            return CA_ENOMEM;
        }
        s->caps = g;
        s->capcap = nc;
    }
    c = &s->caps[s->ncaps++];
    memset(c, 0, sizeof(*c));
    c->id = (uint32_t)id;
    c->flows = flows > 0 ? (uint64_t)flows : 0;
    c->first_ns = json_integer_value(json_object_get(rec, "first_ns"));
    c->last_ns = json_integer_value(json_object_get(rec, "last_ns"));
    snprintf(c->name, sizeof(c->name), "%s", name != NULL ? name : "");
    json_decref(rec);
    return 0;
}

int ca_ws_snap_open(struct ca_ws *w, struct ca_ws_snap **out)
{
    struct ca_ws_snap *s;
    int rc;

    *out = NULL;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return CA_ENOMEM;
    s->w = w;
    rc = ca_store_txn_begin(w->env, MDB_RDONLY, &s->txn);
    if (rc == 0)
        rc = cap_foreach(w, s->txn, snap_cap_one, s);
    if (rc == 0 && (s->parts = calloc(s->ncaps + 1, sizeof(*s->parts))) == NULL)
        rc = CA_ENOMEM;
    if (rc != 0) {
        ca_ws_snap_close(s);
        return ca_store_err(rc);
    }
    *out = s;
    return 0;
}

void ca_ws_snap_close(struct ca_ws_snap *s)
{
    if (s == NULL)
        return;
    if (s->hotcur != NULL)
        mdb_cursor_close(s->hotcur);
    if (s->txn != NULL)
        mdb_txn_abort(s->txn);
    free(s->caps);
    free(s->parts);
    free(s->align);
    free(s);
}

const struct ca_snap_capture *ca_ws_snap_captures(const struct ca_ws_snap *s, size_t *n)
{
    *n = s->ncaps;
    return s->caps;
}

static const struct ca_snap_capture *snap_cap(const struct ca_ws_snap *s, uint32_t id, size_t *idx)
{
    size_t lo = 0, hi = s->ncaps;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (s->caps[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *idx = lo;
    return lo < s->ncaps && s->caps[lo].id == id ? &s->caps[lo] : NULL;
}

int ca_ws_snap_scan(struct ca_ws_snap *s, uint64_t after_id, size_t max_chunks, ca_hot_fn fn,
                    void *arg)
{
    MDB_cursor *cur = NULL;
    unsigned char key[8];
    MDB_val k = {sizeof(key), key}, v;
    uint64_t want = after_id + 1; /* first flow id of interest */
    size_t idx, chunks = 0;
    int rc;

    if (after_id == UINT64_MAX || s->ncaps == 0)
        return 0;
    rc = mdb_cursor_open(s->txn, s->w->db[WDB_HOT], &cur);
    if (rc != 0)
        return ca_store_err(rc);
    snap_cap(s, (uint32_t)(want >> 32), &idx);
    if (idx == s->ncaps)
        goto out;
    if (s->caps[idx].id != (uint32_t)(want >> 32))
        want = (uint64_t)s->caps[idx].id << 32;
    ca_store_be64(want, key);
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    /* The chunk holding `want` may start before it. */
    if (rc == 0 && (k.mv_size != 8 || ca_store_rd64(k.mv_data) != want)) {
        MDB_val pk, pv;

        if (mdb_cursor_get(cur, &pk, &pv, MDB_PREV) == 0 && pk.mv_size == 8 &&
            ca_store_rd32(pk.mv_data) == (uint32_t)(want >> 32)) {
            k = pk;
            v = pv;
        } else {
            rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        }
    } else if (rc == MDB_NOTFOUND) {
        /* want is past every chunk, but the last chunk may hold it */
        rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    }
    while (rc == 0) {
        uint32_t cap, seq0;
        const struct ca_hot *h;
        size_t n, skip = 0;

        if (k.mv_size != 8) {
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            continue;
        }
        cap = ca_store_rd32(k.mv_data);
        seq0 = ca_store_rd32((const char *)k.mv_data + 4);
        if (snap_cap(s, cap, &idx) == NULL) {
            if (idx == s->ncaps)
                break;
            ca_store_be64((uint64_t)s->caps[idx].id << 32, key);
            k.mv_data = key;
            k.mv_size = sizeof(key);
            rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
            continue;
        }
        n = v.mv_size / sizeof(struct ca_hot);
        if (((uint64_t)cap << 32 | seq0) < want)
            skip = (size_t)(want - ((uint64_t)cap << 32 | seq0));
        if (skip < n) {
            if (((uintptr_t)v.mv_data & 7) != 0) {
                if (s->align_n < n) {
                    free(s->align);
                    s->align = malloc(n * sizeof(struct ca_hot));
                    s->align_n = s->align != NULL ? n : 0;
                    if (s->align == NULL) {
                        rc = CA_ENOMEM;
                        break;
                    }
                }
                memcpy(s->align, v.mv_data, n * sizeof(struct ca_hot));
                h = s->align;
            } else {
                h = v.mv_data;
            }
            rc = fn(arg, cap, seq0 + (uint32_t)skip, h + skip, n - skip);
            if (rc != 0)
                break;
            if (max_chunks != 0 && ++chunks >= max_chunks)
                break;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
out:
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND)
        rc = 0;
    return rc < -1000 || rc > 0 ? ca_store_err(rc) : rc;
}

int ca_ws_snap_hot_is_copy(const struct ca_ws_snap *s, const struct ca_hot *h)
{
    return s->align != NULL && h >= s->align && h < s->align + s->align_n;
}

int ca_ws_snap_flow(struct ca_ws_snap *s, uint64_t flow_id, struct ca_flow *out)
{
    unsigned char key[8];
    MDB_val k = {sizeof(key), key}, v;
    size_t idx;
    int rc;

    if (snap_cap(s, (uint32_t)(flow_id >> 32), &idx) == NULL)
        return CA_ENOTFOUND;
    ca_store_be64(flow_id, key);
    rc = mdb_get(s->txn, s->w->db[WDB_FLOWS], &k, &v);
    if (rc == 0)
        rc = flow_from_val(flow_id, &v, out);
    return ca_store_err(rc);
}

int ca_ws_snap_capagg_part(struct ca_ws_snap *s, uint32_t cap, uint32_t part, unsigned kind,
                           const void **data, size_t *len)
{
    unsigned char key[8];
    MDB_val k = {0, key}, v;
    size_t idx;
    int rc;

    if (snap_cap(s, cap, &idx) == NULL || part >= PARTS_MAX)
        return CA_ENOTFOUND;
    k.mv_size = caggs_key(key, cap, part, kind);
    rc = mdb_get(s->txn, s->w->db[WDB_CAGGS], &k, &v);
    if (rc != 0)
        return ca_store_err(rc);
    *data = v.mv_data;
    *len = v.mv_size;
    return 0;
}

int ca_ws_snap_capagg(struct ca_ws_snap *s, uint32_t cap, unsigned kind, const void **data,
                      size_t *len)
{
    return ca_ws_snap_capagg_part(s, cap, 0, kind, data, len);
}

uint32_t ca_ws_snap_parts(struct ca_ws_snap *s, uint32_t cap)
{
    const void *d;
    size_t len, idx;
    uint32_t parts;

    if (snap_cap(s, cap, &idx) == NULL)
        return 1;
    if (s->parts[idx] != 0)
        return s->parts[idx];
    s->parts[idx] = 1;
    if (ca_ws_snap_capagg(s, cap, PARTS_KIND, &d, &len) == 0 && len == sizeof(parts)) {
        memcpy(&parts, d, sizeof(parts));
        if (parts >= 1 && parts <= PARTS_MAX)
            s->parts[idx] = parts;
    }
    return s->parts[idx];
}

int ca_ws_snap_addr_seqs(struct ca_ws_snap *s, uint32_t cap, uint32_t part, int ver,
                         const uint8_t addr[16], const void **seqs, size_t *n)
{
    unsigned char key[24];
    MDB_val k = {0, key}, v;
    size_t idx;
    int rc;

    *n = 0;
    if (snap_cap(s, cap, &idx) == NULL)
        return CA_ENOTFOUND;
    if (part >= PARTS_MAX)
        return 0;
    k.mv_size = addrix_key(key, cap, part, ver, addr);
    rc = mdb_get(s->txn, s->w->db[WDB_ADDRIX], &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return ca_store_err(rc);
    *seqs = v.mv_data;
    *n = v.mv_size / sizeof(uint32_t);
    return 0;
}

int ca_ws_snap_hot_ref(struct ca_ws_snap *s, uint32_t cap, uint32_t seq, const void **out)
{
    unsigned char key[8];
    MDB_val k = {sizeof(key), key}, v;
    int rc;

    if (s->hc_data == NULL || s->hc_cap != cap || seq < s->hc_seq0 || seq - s->hc_seq0 >= s->hc_n) {
        if (s->hotcur == NULL && (rc = mdb_cursor_open(s->txn, s->w->db[WDB_HOT], &s->hotcur)) != 0)
            return ca_store_err(rc);
        ca_store_be32(cap, key);
        ca_store_be32(seq, key + 4);
        rc = mdb_cursor_get(s->hotcur, &k, &v, MDB_SET_RANGE);
        if (rc == 0 && k.mv_size == 8 && ca_store_rd64(k.mv_data) == ((uint64_t)cap << 32 | seq))
            ;
        else if (rc == 0 || rc == MDB_NOTFOUND)
            rc = mdb_cursor_get(s->hotcur, &k, &v, rc == 0 ? MDB_PREV : MDB_LAST);
        if (rc != 0)
            return ca_store_err(rc);
        if (k.mv_size != 8 || ca_store_rd32(k.mv_data) != cap)
            return CA_ENOTFOUND;
        s->hc_cap = cap;
        s->hc_seq0 = ca_store_rd32((const char *)k.mv_data + 4);
        s->hc_n = v.mv_size / sizeof(struct ca_hot);
        s->hc_data = v.mv_data;
        if (seq < s->hc_seq0 || seq - s->hc_seq0 >= s->hc_n)
            return CA_ENOTFOUND;
    }
    *out = (const char *)s->hc_data + (size_t)(seq - s->hc_seq0) * sizeof(struct ca_hot);
    return 0;
}

int ca_ws_snap_hot(struct ca_ws_snap *s, uint32_t cap, uint32_t seq, struct ca_hot *out)
{
    const void *p;
    int rc = ca_ws_snap_hot_ref(s, cap, seq, &p);

    if (rc == 0)
        memcpy(out, p, sizeof(*out));
    return rc;
}

const char *ca_ws_snap_str(struct ca_ws_snap *s, uint32_t id)
{
    unsigned char key[4];
    MDB_val k = {sizeof(key), key}, v;

    if (id == 0)
        return "";
    ca_store_be32(id, key);
    if (mdb_get(s->txn, s->w->db[WDB_STRID], &k, &v) != 0 || v.mv_size < 2 ||
        ((const char *)v.mv_data)[v.mv_size - 1] != '\0')
        return "";
    return (const char *)v.mv_data + 1;
}

int ca_ws_snap_str_each(struct ca_ws_snap *s, int kind,
                        int (*fn)(void *arg, uint32_t id, const char *str), void *arg)
{
    MDB_cursor *cur = NULL;
    unsigned char kb[1] = {(unsigned char)kind};
    MDB_val k = {1, kb}, v;
    char name[CA_HOST_MAX + 1];
    int rc;

    rc = mdb_cursor_open(s->txn, s->w->db[WDB_STRS], &cur);
    if (rc != 0)
        return ca_store_err(rc);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        size_t len = k.mv_size - 1;

        if (k.mv_size < 1 || ((const unsigned char *)k.mv_data)[0] != (unsigned char)kind)
            break;
        if (v.mv_size != 4 || len > CA_HOST_MAX)
            continue;
        memcpy(name, (const char *)k.mv_data + 1, len);
        name[len] = '\0';
        rc = fn(arg, ca_store_rd32(v.mv_data), name);
        if (rc != 0)
            break;
    }
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND)
        rc = 0;
    return rc < -1000 || rc > 0 ? ca_store_err(rc) : rc;
}

uint32_t ca_ws_snap_str_max(struct ca_ws_snap *s)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    uint32_t max = 0;

    if (mdb_cursor_open(s->txn, s->w->db[WDB_STRID], &cur) != 0)
        return 0;
    if (mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0 && k.mv_size == 4)
        max = ca_store_rd32(k.mv_data);
    mdb_cursor_close(cur);
    return max;
}

uint32_t ca_ws_snap_addr_max(struct ca_ws_snap *s)
{
    MDB_val k = {9, (void *)"next_addr"}, v;

    if (mdb_get(s->txn, s->w->db[WDB_META], &k, &v) != 0 || v.mv_size != 8)
        return 0;
    return (uint32_t)ca_store_rd64(v.mv_data);
}

int ca_ws_capture_file(struct ca_ws *w, uint32_t capture_id, char *buf, size_t len)
{
    json_t *rec = NULL;
    const char *path;
    int rc;

    rc = ca_ws_capture_get(w, capture_id, &rec);
    if (rc != 0)
        return rc;
    path = json_string_value(json_object_get(rec, "path"));
    if (path == NULL)
        rc = CA_ENOTFOUND;
    else if (path[0] == '/')
        rc = snprintf(buf, len, "%s", path) >= (int)len ? CA_EINVAL : 0;
    else
        rc = snprintf(buf, len, "%s/%s", w->dir, path) >= (int)len ? CA_EINVAL : 0;
    json_decref(rec);
    return rc;
}
