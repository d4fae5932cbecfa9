/*
 * The portal store: users, sessions, workspaces and jobs in one LMDB
 * environment at D/portal/, plus the LMDB helpers shared with the
 * workspace store (store_internal.h).  Values are compact JSON text:
 * the portal holds few, small records and JSON keeps them readable with
 * mdb_dump and easy to extend.
 *
 * Key schema (named databases):
 *   meta        "next_user" | "next_ws" | "next_job"  -> u64 BE, last id given
 *   users       u64 BE user id    -> {"id","name","admin","disabled","created","password"}
 *   user_names  user name (bytes) -> u64 BE user id
 *   sessions    sha256 hex of the token (64 bytes)
 *               -> {"user","csrf","created","last_seen","addr"}
 *   workspaces  u64 BE ws id      -> {"id","name","description","owner","created"}
 *   jobs        u64 BE job id     -> job object (see store.h)
 *   jobq        u64 BE job id     -> "" for each job whose state is "queued", so that
 *                                    a claim reads the oldest one without a scan
 *   tokens      sha256 hex of an API token (64 bytes)
 *               -> {"id","user","name","readonly","created","expires","last_used"}
 *   login_fail  user name as typed (bytes) -> {"fails","until","last"}: the account
 *                                    lockout; kept for unknown names too, so a lockout
 *                                    says nothing about whether the account exists
 *   audit       u64 BE entry id   -> {"id","time","user","user_name","addr","action",
 *                                    "target","detail"}
 *
 * Users also carry "quota" (bytes or null) and workspaces "shares"
 * ({"<user id>": "viewer"|"editor"}) and "eol" (unix seconds or null).
 * Sessions carry a small public "id" (from meta "next_session") so they
 * can be listed and revoked without showing their digest.
 *
 * Transactions are short and never span password hashing or file system
 * work: a slow scrypt or rm -rf would otherwise hold the single writer lock.
 */
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <lmdb.h>

#include "ca_error.h"
#include "cred.h"
#include "store.h"
#include "store_internal.h"

#define PORTAL_MAPSIZE ((size_t)64 << 20)
#define MAPSIZE_MAX ((size_t)1 << 40)
#define SESSION_IDLE (12 * 3600)
#define SESSION_MAX_AGE (7 * 24 * 3600)
#define LOGIN_MAX_FAILS 5
#define LOGIN_LOCK_BASE 30
#define LOGIN_LOCK_MAX 3600
/* last_seen is rewritten at most this often, so lookups rarely write. */
#define SESSION_TOUCH 60
#define WS_NAME_MAX 64
#define WS_DESC_MAX 1000

enum {
    DB_META,
    DB_USERS,
    DB_USER_NAMES,
    DB_SESSIONS,
    DB_WORKSPACES,
    DB_JOBS,
    DB_JOBQ,
    DB_TOKENS,
    DB_LOGIN_FAIL,
    DB_AUDIT,
    DB_COUNT
};

static const char *const portal_dbnames[DB_COUNT] = {
    "meta", "users", "user_names", "sessions",   "workspaces",
    "jobs", "jobq",  "tokens",     "login_fail", "audit",
};

/* A positive number of seconds from the environment, or def (tests shorten expiries). */
static int64_t env_seconds(const char *name, int64_t def)
{
    const char *v = getenv(name);
    char *end;
    long long n;

    if (v == NULL || *v == '\0')
        return def;
    n = strtoll(v, &end, 10);
    return *end == '\0' && n > 0 ? (int64_t)n : def;
}

struct ca_portal {
    MDB_env *env;
    MDB_dbi db[DB_COUNT];
    char *datadir;
};

/* ---- shared helpers --------------------------------------------------- */

int ca_store_set_default(json_t *o, const char *key, json_t *v)
{
    if (json_object_get(o, key) != NULL) {
        json_decref(v);
        return 0;
    }
    return json_object_set_new(o, key, v);
}

int ca_store_err(int rc)
{
    if (rc == 0 || (rc < 0 && rc >= CA_ERR_MIN))
        return rc;
    switch (rc) {
    case MDB_NOTFOUND:
        return CA_ENOTFOUND;
    case MDB_KEYEXIST:
        return CA_EEXIST;
    case ENOMEM:
        return CA_ENOMEM;
    case ENOENT:
        return CA_ENOTFOUND;
    case EACCES:
    case EIO:
    case ENOSPC:
        return CA_EIO;
    default:
        return CA_ESTORE;
    }
}

int ca_store_mkdirs(const char *path)
{
    char buf[4096];
    size_t len = strlen(path);

    if (len == 0 || len >= sizeof(buf))
        return CA_EINVAL;
    memcpy(buf, path, len + 1);
    for (char *s = buf + 1; *s != '\0'; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(buf, 0750) != 0 && errno != EEXIST)
            return CA_EIO;
        *s = '/';
    }
    if (mkdir(buf, 0750) != 0 && errno != EEXIST)
        return CA_EIO;
    return 0;
}

static int rmtree_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (type == FTW_DP)
        return rmdir(path) != 0 && errno != ENOENT ? -1 : 0;
    return unlink(path) != 0 && errno != ENOENT ? -1 : 0;
}

int ca_store_rmtree(const char *path)
{
    struct stat st;

    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : CA_EIO;
    if (nftw(path, rmtree_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return CA_EIO;
    return 0;
}

int ca_store_env_open(const char *dir, int create, size_t mapsize, unsigned maxdbs, unsigned flags,
                      MDB_env **out, char *err, size_t errlen)
{
    MDB_env *env = NULL;
    const char *ov = getenv("CAPATLAS_STORE_MAPSIZE");
    struct stat st;
    int rc;

    *out = NULL;
    if (create && ca_store_mkdirs(dir) != 0)
        return ca_seterr(err, errlen, CA_EIO, "cannot create %s: %s", dir, strerror(errno));
    if (!create && stat(dir, &st) != 0)
        return ca_seterr(err, errlen, errno == ENOENT ? CA_ENOTFOUND : CA_EIO, "%s: %s", dir,
                         strerror(errno));
    if (ov != NULL && *ov != '\0')
        mapsize = (size_t)strtoull(ov, NULL, 10);
    rc = mdb_env_create(&env);
    if (rc != 0)
        goto fail;
    if ((rc = mdb_env_set_maxdbs(env, maxdbs)) != 0 ||
        (rc = mdb_env_set_mapsize(env, mapsize)) != 0 ||
        (rc = mdb_env_set_maxreaders(env, 254)) != 0)
        goto fail;
    rc = mdb_env_open(env, dir, flags, 0640);
    if (rc != 0)
        goto fail;
    *out = env;
    return 0;
fail:
    mdb_env_close(env);
    return ca_seterr(err, errlen, ca_store_err(rc), "cannot open store %s: %s", dir,
                     mdb_strerror(rc));
}

int ca_store_txn_begin(MDB_env *env, unsigned flags, MDB_txn **txn)
{
    int rc = mdb_txn_begin(env, NULL, flags, txn);

    if (rc == MDB_MAP_RESIZED) {
        /* Another process grew the map; adopt its size and try again. */
        rc = mdb_env_set_mapsize(env, 0);
        if (rc == 0)
            rc = mdb_txn_begin(env, NULL, flags, txn);
    }
    return rc;
}

int ca_store_dbis_open(MDB_env *env, const char *const *names, MDB_dbi *dbis, size_t n)
{
    MDB_txn *txn = NULL;
    int rc;

    rc = ca_store_txn_begin(env, MDB_RDONLY, &txn);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = mdb_dbi_open(txn, names[i], 0, &dbis[i]);
    if (rc == 0)
        return mdb_txn_commit(txn);
    mdb_txn_abort(txn);
    if (rc != MDB_NOTFOUND)
        return rc;
    rc = ca_store_txn_begin(env, 0, &txn);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = mdb_dbi_open(txn, names[i], MDB_CREATE, &dbis[i]);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    return mdb_txn_commit(txn);
}

static int grow_map(MDB_env *env)
{
    MDB_envinfo info;

    if (mdb_env_info(env, &info) != 0)
        return CA_ESTORE;
    if (info.me_mapsize >= MAPSIZE_MAX)
        return MDB_MAP_FULL;
    return mdb_env_set_mapsize(env, info.me_mapsize * 2);
}

int ca_store_write(MDB_env *env, int (*fn)(MDB_txn *txn, void *arg), void *arg)
{
    MDB_txn *txn = NULL;
    int rc;

    for (;;) {
        rc = ca_store_txn_begin(env, 0, &txn);
        if (rc != 0)
            return rc;
        rc = fn(txn, arg);
        if (rc == 0)
            rc = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
        txn = NULL;
        if (rc != MDB_MAP_FULL)
            return rc;
        rc = grow_map(env);
        if (rc != 0)
            return rc;
    }
}

void ca_store_be64(uint64_t v, unsigned char out[8])
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        out[i] = (unsigned char)v;
}

uint64_t ca_store_rd64(const void *p)
{
    const unsigned char *b = p;
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | b[i];
    return v;
}

void ca_store_be32(uint32_t v, unsigned char out[4])
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        out[i] = (unsigned char)v;
}

uint32_t ca_store_rd32(const void *p)
{
    const unsigned char *b = p;

    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

int ca_store_get_json(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen, json_t **out)
{
    MDB_val k = {klen, (void *)key}, v;
    int rc;

    *out = NULL;
    rc = mdb_get(txn, dbi, &k, &v);
    if (rc != 0)
        return rc;
    /* json_loadb copies, so the value outlives the transaction. */
    *out = json_loadb(v.mv_data, v.mv_size, 0, NULL);
    return *out != NULL ? 0 : CA_ESTORE;
}

int ca_store_put_json(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen, json_t *val)
{
    MDB_val k = {klen, (void *)key}, v;
    char *s = json_dumps(val, JSON_COMPACT);
    int rc;

    if (s == NULL)
        return CA_ENOMEM;
    v.mv_data = s;
    v.mv_size = strlen(s);
    rc = mdb_put(txn, dbi, &k, &v, 0);
    free(s);
    return rc;
}

int ca_store_counter_next(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t *out)
{
    MDB_val k = {strlen(name), (void *)name}, v;
    unsigned char buf[8];
    uint64_t n = 0;
    int rc;

    rc = mdb_get(txn, dbi, &k, &v);
    if (rc == 0 && v.mv_size == 8)
        n = ca_store_rd64(v.mv_data);
    else if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    n++;
    ca_store_be64(n, buf);
    v.mv_data = buf;
    v.mv_size = sizeof(buf);
    rc = mdb_put(txn, dbi, &k, &v, 0);
    if (rc == 0)
        *out = n;
    return rc;
}

int64_t ca_store_now(void)
{
    return (int64_t)time(NULL);
}

/* ---- portal ------------------------------------------------------------ */

int ca_portal_open(const char *datadir, struct ca_portal **out, char *err, size_t errlen)
{
    struct ca_portal *p = NULL;
    char dir[4096];
    int rc;

    *out = NULL;
    if (datadir == NULL || *datadir == '\0')
        return ca_seterr(err, errlen, CA_EINVAL, "no data folder given");
    if ((size_t)snprintf(dir, sizeof(dir), "%s/portal", datadir) >= sizeof(dir))
        return ca_seterr(err, errlen, CA_EINVAL, "data folder path too long");
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return ca_seterr(err, errlen, CA_ENOMEM, "out of memory");
    p->datadir = strdup(datadir);
    if (p->datadir == NULL) {
        rc = ca_seterr(err, errlen, CA_ENOMEM, "out of memory");
        goto out;
    }
    rc = ca_store_env_open(dir, 1, PORTAL_MAPSIZE, 16, 0, &p->env, err, errlen);
    if (rc != 0)
        goto out;
    rc = ca_store_dbis_open(p->env, portal_dbnames, p->db, DB_COUNT);
    if (rc != 0) {
        rc = ca_seterr(err, errlen, ca_store_err(rc), "cannot open portal databases: %s",
                       mdb_strerror(rc));
        goto out;
    }
    *out = p;
    p = NULL;
out:
    ca_portal_close(p);
    return rc;
}

void ca_portal_close(struct ca_portal *p)
{
    if (p == NULL)
        return;
    if (p->env != NULL)
        mdb_env_close(p->env);
    free(p->datadir);
    free(p);
}

const char *ca_portal_datadir(const struct ca_portal *p)
{
    return p->datadir;
}

/* Runs a read-only lookup of one JSON value by u64 key. */
static int get_by_id(struct ca_portal *p, int db, uint64_t id, json_t **out)
{
    MDB_txn *txn = NULL;
    unsigned char key[8];
    int rc;

    *out = NULL;
    rc = ca_store_txn_begin(p->env, MDB_RDONLY, &txn);
    if (rc != 0)
        return ca_store_err(rc);
    ca_store_be64(id, key);
    rc = ca_store_get_json(txn, p->db[db], key, sizeof(key), out);
    mdb_txn_abort(txn);
    return ca_store_err(rc);
}

/* ---- users ------------------------------------------------------------- */

static int valid_user_name(const char *name)
{
    size_t n = 0;

    for (; name[n] != '\0'; n++)
        if (!((name[n] >= 'a' && name[n] <= 'z') || (name[n] >= 'A' && name[n] <= 'Z') ||
              (name[n] >= '0' && name[n] <= '9') || strchr("._@-", name[n]) != NULL))
            return 0;
    return n >= 1 && n <= 64;
}

struct user_create_arg {
    struct ca_portal *p;
    const char *name;
    const char *hash;
    int admin;
    uint64_t id;
};

static int user_create_txn(MDB_txn *txn, void *arg)
{
    struct user_create_arg *a = arg;
    struct ca_portal *p = a->p;
    MDB_val k = {strlen(a->name), (void *)a->name}, v;
    unsigned char key[8];
    json_t *rec = NULL;
    int rc;

    rc = mdb_get(txn, p->db[DB_USER_NAMES], &k, &v);
    if (rc == 0)
        return MDB_KEYEXIST;
    if (rc != MDB_NOTFOUND)
        return rc;
    rc = ca_store_counter_next(txn, p->db[DB_META], "next_user", &a->id);
    if (rc != 0)
        return rc;
    ca_store_be64(a->id, key);
    rec = json_pack("{s:I, s:s, s:b, s:b, s:I, s:s}", "id", (json_int_t)a->id, "name", a->name,
                    "admin", a->admin, "disabled", 0, "created", (json_int_t)ca_store_now(),
                    "password", a->hash);
    if (rec == NULL)
        return CA_ENOMEM;
    rc = ca_store_put_json(txn, p->db[DB_USERS], key, sizeof(key), rec);
    json_decref(rec);
    if (rc != 0)
        return rc;
    v.mv_data = key;
    v.mv_size = sizeof(key);
    return mdb_put(txn, p->db[DB_USER_NAMES], &k, &v, MDB_NOOVERWRITE);
}

int ca_user_create(struct ca_portal *p, const char *name, const char *password, int admin,
                   uint64_t *id_out, char *err, size_t errlen)
{
    struct user_create_arg a = {p, name, NULL, admin != 0, 0};
    char hash[CA_CRED_HASH_LEN];
    int rc;

    if (name == NULL || !valid_user_name(name))
        return ca_seterr(err, errlen, CA_EINVAL,
                         "name must be 1-64 characters of A-Z a-z 0-9 . _ @ -");
    if (password == NULL || strlen(password) < CA_PASSWORD_MIN)
        return ca_seterr(err, errlen, CA_EINVAL, "password must be at least %d characters",
                         CA_PASSWORD_MIN);
    /* Hash before the write txn: scrypt takes tens of milliseconds. */
    rc = ca_cred_hash_password(password, hash, sizeof(hash));
    if (rc != 0)
        return ca_seterr(err, errlen, rc, "cannot hash the password");
    a.hash = hash;
    rc = ca_store_write(p->env, user_create_txn, &a);
    if (rc == MDB_KEYEXIST)
        return ca_seterr(err, errlen, CA_EEXIST, "name is already taken");
    if (rc != 0)
        return ca_seterr(err, errlen, ca_store_err(rc), "cannot store the user: %s",
                         rc > 0 || rc < CA_ERR_MIN ? mdb_strerror(rc) : ca_strerror(rc));
    if (id_out != NULL)
        *id_out = a.id;
    return 0;
}

int ca_user_verify(struct ca_portal *p, const char *name, const char *password, uint64_t *id_out)
{
    MDB_txn *txn = NULL;
    MDB_val k, v;
    json_t *rec = NULL;
    const char *hash;
    uint64_t id = 0;
    int rc, disabled = 1;

    if (name == NULL || password == NULL)
        return CA_EAUTH;
    rc = ca_store_txn_begin(p->env, MDB_RDONLY, &txn);
    if (rc != 0)
        return ca_store_err(rc);
    k.mv_data = (void *)name;
    k.mv_size = strlen(name);
    if (k.mv_size > 0 && k.mv_size <= 64 && mdb_get(txn, p->db[DB_USER_NAMES], &k, &v) == 0 &&
        v.mv_size == 8) {
        id = ca_store_rd64(v.mv_data);
        (void)ca_store_get_json(txn, p->db[DB_USERS], v.mv_data, 8, &rec);
    }
    mdb_txn_abort(txn);
    hash = json_string_value(json_object_get(rec, "password"));
    if (hash == NULL) {
        ca_cred_burn_time(password);
        rc = CA_EAUTH;
        goto out;
    }
    disabled = json_is_true(json_object_get(rec, "disabled"));
    /* Verify even for a disabled user, so timing says nothing about it. */
    rc = ca_cred_verify_password(password, hash);
    if (rc == 0 && disabled)
        rc = CA_EAUTH;
    if (rc == 0 && id_out != NULL)
        *id_out = id;
out:
    json_decref(rec);
    return rc != 0 ? CA_EAUTH : 0;
}

int ca_user_get(struct ca_portal *p, uint64_t id, json_t **out)
{
    int rc = get_by_id(p, DB_USERS, id, out);

    if (rc == 0)
        json_object_del(*out, "password");
    return rc;
}

int ca_user_count(struct ca_portal *p, uint64_t *n)
{
    MDB_txn *txn = NULL;
    MDB_stat st;
    int rc;

    rc = ca_store_txn_begin(p->env, MDB_RDONLY, &txn);
    if (rc != 0)
        return ca_store_err(rc);
    rc = mdb_stat(txn, p->db[DB_USERS], &st);
    mdb_txn_abort(txn);
    if (rc == 0)
        *n = st.ms_entries;
    return ca_store_err(rc);
}

struct user_pw_arg {
    struct ca_portal *p;
    uint64_t id;
    const char *hash;
};

static int user_pw_txn(MDB_txn *txn, void *arg)
{
    struct user_pw_arg *a = arg;
    unsigned char key[8];
    json_t *rec = NULL;
    int rc;

    ca_store_be64(a->id, key);
    rc = ca_store_get_json(txn, a->p->db[DB_USERS], key, sizeof(key), &rec);
    if (rc != 0)
        return rc;
    rc = json_object_set_new(rec, "password", json_string(a->hash)) != 0 ? CA_ENOMEM : 0;
    if (rc == 0)
        rc = ca_store_put_json(txn, a->p->db[DB_USERS], key, sizeof(key), rec);
    json_decref(rec);
    return rc;
}

int ca_user_set_password(struct ca_portal *p, uint64_t id, const char *password, char *err,
                         size_t errlen)
{
    struct user_pw_arg a = {p, id, NULL};
    char hash[CA_CRED_HASH_LEN];
    int rc;

    if (password == NULL || strlen(password) < CA_PASSWORD_MIN)
        return ca_seterr(err, errlen, CA_EINVAL, "password must be at least %d characters",
                         CA_PASSWORD_MIN);
    rc = ca_cred_hash_password(password, hash, sizeof(hash));
    if (rc != 0)
        return ca_seterr(err, errlen, rc, "cannot hash the password");
    a.hash = hash;
    rc = ca_store_err(ca_store_write(p->env, user_pw_txn, &a));
    if (rc == CA_ENOTFOUND)
        return ca_seterr(err, errlen, rc, "no such user");
    if (rc != 0)
        return ca_seterr(err, errlen, rc, "cannot store the password");
    return 0;
}

/* ---- sessions ---------------------------------------------------------- */

struct session_arg {
    struct ca_portal *p;
    char digest[65];
    json_t *rec; /* create: record to store */
    int64_t now; /* lookup: the time to check against */
    uint64_t user;
    char csrf[65];
};

static int session_put_txn(MDB_txn *txn, void *arg)
{
    struct session_arg *a = arg;
    uint64_t id;
    int rc;

    rc = ca_store_counter_next(txn, a->p->db[DB_META], "next_session", &id);
    if (rc != 0)
        return rc;
    if (json_object_set_new(a->rec, "id", json_integer((json_int_t)id)) != 0)
        return CA_ENOMEM;
    return ca_store_put_json(txn, a->p->db[DB_SESSIONS], a->digest, 64, a->rec);
}

int ca_session_create(struct ca_portal *p, uint64_t user_id, const char *client_addr,
                      char token_out[65], char csrf_out[65])
{
    struct session_arg a = {.p = p};
    char token[65], csrf[65];
    int64_t now = ca_store_now();
    int rc;

    if ((rc = ca_cred_random_token(token, sizeof(token))) != 0 ||
        (rc = ca_cred_random_token(csrf, sizeof(csrf))) != 0)
        return rc;
    ca_cred_digest(token, a.digest, sizeof(a.digest));
    a.rec = json_pack("{s:I, s:s, s:I, s:I, s:s}", "user", (json_int_t)user_id, "csrf", csrf,
                      "created", (json_int_t)now, "last_seen", (json_int_t)now, "addr",
                      client_addr != NULL ? client_addr : "");
    if (a.rec == NULL)
        return CA_ENOMEM;
    rc = ca_store_err(ca_store_write(p->env, session_put_txn, &a));
    json_decref(a.rec);
    if (rc != 0)
        return rc;
    memcpy(token_out, token, 65);
    memcpy(csrf_out, csrf, 65);
    return 0;
}

/* How often last_seen is rewritten: SESSION_TOUCH, or sooner for short idle expiries. */
static int64_t session_touch(void)
{
    int64_t t = env_seconds("CAPATLAS_SESSION_IDLE", SESSION_IDLE) / 3;

    return t < 1 ? 1 : t > SESSION_TOUCH ? SESSION_TOUCH : t;
}

static int session_expired(json_t *rec, int64_t now)
{
    int64_t created = json_integer_value(json_object_get(rec, "created"));
    int64_t seen = json_integer_value(json_object_get(rec, "last_seen"));

    return now - seen > env_seconds("CAPATLAS_SESSION_IDLE", SESSION_IDLE) ||
           now - created > env_seconds("CAPATLAS_SESSION_MAX_AGE", SESSION_MAX_AGE);
}

/*
 * Re-checks under the write lock, then deletes an expired session or moves
 * its last_seen forward.
 */
static int session_touch_txn(MDB_txn *txn, void *arg)
{
    struct session_arg *a = arg;
    MDB_val k = {64, a->digest};
    json_t *rec = NULL;
    int rc;

    rc = ca_store_get_json(txn, a->p->db[DB_SESSIONS], a->digest, 64, &rec);
    if (rc != 0)
        return rc;
    if (session_expired(rec, a->now)) {
        rc = mdb_del(txn, a->p->db[DB_SESSIONS], &k, NULL);
    } else {
        rc = json_object_set_new(rec, "last_seen", json_integer(a->now)) != 0 ? CA_ENOMEM : 0;
        if (rc == 0)
            rc = ca_store_put_json(txn, a->p->db[DB_SESSIONS], a->digest, 64, rec);
    }
    json_decref(rec);
    return rc;
}

int ca_session_lookup(struct ca_portal *p, const char *token, uint64_t *user_id, char csrf_out[65])
{
    struct session_arg a = {.p = p};
    MDB_txn *txn = NULL;
    json_t *rec = NULL, *user = NULL;
    const char *csrf;
    unsigned char ukey[8];
    int rc, expired;

    if (token == NULL || strlen(token) != 64)
        return CA_EAUTH;
    ca_cred_digest(token, a.digest, sizeof(a.digest));
    a.now = ca_store_now();
    rc = ca_store_txn_begin(p->env, MDB_RDONLY, &txn);
    if (rc != 0)
        return ca_store_err(rc);
    rc = ca_store_get_json(txn, p->db[DB_SESSIONS], a.digest, 64, &rec);
    if (rc == 0) {
        ca_store_be64((uint64_t)json_integer_value(json_object_get(rec, "user")), ukey);
        rc = ca_store_get_json(txn, p->db[DB_USERS], ukey, sizeof(ukey), &user);
    }
    mdb_txn_abort(txn);
    if (rc == MDB_NOTFOUND) {
        rc = CA_EAUTH;
        goto out;
    }
    if (rc != 0) {
        rc = ca_store_err(rc);
        goto out;
    }
    expired = session_expired(rec, a.now);
    csrf = json_string_value(json_object_get(rec, "csrf"));
    if (expired || json_is_true(json_object_get(user, "disabled")) || csrf == NULL ||
        strlen(csrf) != 64) {
        if (expired)
            (void)ca_store_write(p->env, session_touch_txn, &a);
        rc = CA_EAUTH;
        goto out;
    }
    if (a.now - json_integer_value(json_object_get(rec, "last_seen")) >= session_touch()) {
        rc = ca_store_err(ca_store_write(p->env, session_touch_txn, &a));
        if (rc != 0)
            goto out;
    }
    if (user_id != NULL)
        *user_id = (uint64_t)json_integer_value(json_object_get(rec, "user"));
    if (csrf_out != NULL)
        memcpy(csrf_out, csrf, 65);
    rc = 0;
out:
    json_decref(user);
    json_decref(rec);
    return rc;
}

static int session_del_txn(MDB_txn *txn, void *arg)
{
    struct session_arg *a = arg;
    MDB_val k = {64, a->digest};

    return mdb_del(txn, a->p->db[DB_SESSIONS], &k, NULL);
}

int ca_session_delete(struct ca_portal *p, const char *token)
{
    struct session_arg a = {.p = p};

    if (token == NULL || strlen(token) != 64)
        return CA_ENOTFOUND;
    ca_cred_digest(token, a.digest, sizeof(a.digest));
    return ca_store_err(ca_store_write(p->env, session_del_txn, &a));
}

static int session_purge_txn(MDB_txn *txn, void *arg)
{
    struct session_arg *a = arg;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    json_t *rec;
    int rc;

    a->user = 0;
    rc = mdb_cursor_open(txn, a->p->db[DB_SESSIONS], &cur);
    if (rc != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        rec = json_loadb(v.mv_data, v.mv_size, 0, NULL);
        if (rec == NULL || session_expired(rec, a->now)) {
            rc = mdb_cursor_del(cur, 0);
            a->user++;
        }
        json_decref(rec);
        if (rc != 0)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int ca_session_purge_expired(struct ca_portal *p, int *n_purged)
{
    struct session_arg a = {.p = p, .now = ca_store_now()};
    int rc = ca_store_err(ca_store_write(p->env, session_purge_txn, &a));

    if (rc == 0 && n_purged != NULL)
        *n_purged = (int)a.user;
    return rc;
}

/* ---- workspaces -------------------------------------------------------- */

int ca_ws_dir(const char *datadir, uint64_t ws_id, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/workspaces/%llu", datadir, (unsigned long long)ws_id);

    return n < 0 || (size_t)n >= len ? CA_EINVAL : 0;
}

/* 1..max characters (UTF-8 code points), none of them a control character. */
static int valid_ws_name(const char *s, size_t max, int allow_empty)
{
    size_t chars = 0;

    for (const unsigned char *u = (const unsigned char *)s; *u != '\0'; u++) {
        if (*u < 0x20 || *u == 0x7f)
            return 0;
        if ((*u & 0xc0) != 0x80)
            chars++;
    }
    return chars <= max && (chars > 0 || allow_empty);
}

struct ws_arg {
    struct ca_portal *p;
    uint64_t id;
    json_t *rec;
};

static int ws_id_txn(MDB_txn *txn, void *arg)
{
    struct ws_arg *a = arg;

    return ca_store_counter_next(txn, a->p->db[DB_META], "next_ws", &a->id);
}

static int ws_put_txn(MDB_txn *txn, void *arg)
{
    struct ws_arg *a = arg;
    unsigned char key[8];

    ca_store_be64(a->id, key);
    return ca_store_put_json(txn, a->p->db[DB_WORKSPACES], key, sizeof(key), a->rec);
}

int ca_workspace_create(struct ca_portal *p, uint64_t owner, const char *name,
                        const char *description, uint64_t *id_out, char *err, size_t errlen)
{
    struct ws_arg a = {p, 0, NULL};
    char dir[4096];
    int rc;

    if (name == NULL || !valid_ws_name(name, WS_NAME_MAX, 0))
        return ca_seterr(err, errlen, CA_EINVAL,
                         "name must be 1-%d characters, without control characters", WS_NAME_MAX);
    if (description == NULL)
        description = "";
    if (!valid_ws_name(description, WS_DESC_MAX, 1))
        return ca_seterr(err, errlen, CA_EINVAL,
                         "description must be at most %d characters, without control "
                         "characters",
                         WS_DESC_MAX);
    /*
     * The id first, then the directory, then the record: a crash in
     * between leaves at worst an unused id and an orphan directory, never
     * a workspace record without its environment.
     */
    rc = ca_store_write(p->env, ws_id_txn, &a);
    if (rc != 0)
        return ca_seterr(err, errlen, ca_store_err(rc), "cannot allocate a workspace id");
    rc = ca_ws_init(p->datadir, a.id, err, errlen);
    if (rc != 0)
        return rc;
    a.rec =
        json_pack("{s:I, s:s, s:s, s:I, s:I}", "id", (json_int_t)a.id, "name", name, "description",
                  description, "owner", (json_int_t)owner, "created", (json_int_t)ca_store_now());
    if (a.rec == NULL) {
        /* Invalid UTF-8 is the likely cause: json_pack refuses it. */
        rc = ca_seterr(err, errlen, CA_EINVAL, "name and description must be UTF-8 text");
        goto fail;
    }
    rc = ca_store_write(p->env, ws_put_txn, &a);
    json_decref(a.rec);
    if (rc != 0) {
        rc = ca_seterr(err, errlen, ca_store_err(rc), "cannot store the workspace");
        goto fail;
    }
    if (id_out != NULL)
        *id_out = a.id;
    return 0;
fail:
    if (ca_ws_dir(p->datadir, a.id, dir, sizeof(dir)) == 0)
        (void)ca_store_rmtree(dir);
    return rc;
}

/* Adds the live "captures" and "bytes" figures from the workspace store. */
static void ws_add_stats(struct ca_portal *p, json_t *rec)
{
    uint64_t id = (uint64_t)json_integer_value(json_object_get(rec, "id"));
    uint64_t ncap = 0, bytes = 0;
    struct ca_ws *w = NULL;

    if (ca_ws_open(p->datadir, id, &w, NULL, 0) == 0)
        (void)ca_ws_stats(w, &ncap, &bytes);
    ca_ws_close(w);
    json_object_set_new(rec, "captures", json_integer((json_int_t)ncap));
    json_object_set_new(rec, "bytes", json_integer((json_int_t)bytes));
}

int ca_workspace_get(struct ca_portal *p, uint64_t id, json_t **out)
{
    int rc = get_by_id(p, DB_WORKSPACES, id, out);

    if (rc == 0)
        ws_add_stats(p, *out);
    return rc;
}

int ca_workspace_list(struct ca_portal *p, uint64_t user_id, json_t **out)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    json_t *arr = NULL, *rec;
    const char *role;
    size_t i;
    int rc;

    *out = NULL;
    arr = json_array();
    if (arr == NULL)
        return CA_ENOMEM;
    rc = ca_store_txn_begin(p->env, MDB_RDONLY, &txn);
    if (rc != 0)
        goto out;
    rc = mdb_cursor_open(txn, p->db[DB_WORKSPACES], &cur);
    if (rc != 0)
        goto out;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        rec = json_loadb(v.mv_data, v.mv_size, 0, NULL);
        if (rec == NULL) {
            rc = CA_ESTORE;
            goto out;
        }
        role = ca_workspace_role(rec, user_id);
        if (role == NULL) {
            json_decref(rec);
            continue;
        }
        json_object_set_new(rec, "role", json_string(role));
        if (json_array_append_new(arr, rec) != 0) {
            rc = CA_ENOMEM;
            goto out;
        }
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
out:
    if (cur != NULL)
        mdb_cursor_close(cur);
    if (txn != NULL)
        mdb_txn_abort(txn);
    if (rc == 0) {
        /* Outside the portal txn: each opens its own workspace store. */
        for (i = 0; i < json_array_size(arr); i++)
            ws_add_stats(p, json_array_get(arr, i));
        *out = arr;
        arr = NULL;
    }
    json_decref(arr);
    return ca_store_err(rc);
}

static int ws_del_txn(MDB_txn *txn, void *arg)
{
    struct ws_arg *a = arg;
    unsigned char key[8];
    MDB_val k = {sizeof(key), key};

    ca_store_be64(a->id, key);
    return mdb_del(txn, a->p->db[DB_WORKSPACES], &k, NULL);
}

int ca_workspace_delete(struct ca_portal *p, uint64_t id)
{
    struct ws_arg a = {p, id, NULL};
    char dir[4096];
    int rc;

    rc = ca_ws_dir(p->datadir, id, dir, sizeof(dir));
    if (rc != 0)
        return rc;
    /* The record first: the workspace disappears at once for every
     * reader, even if removing its files takes long or fails. */
    rc = ca_store_err(ca_store_write(p->env, ws_del_txn, &a));
    if (rc != 0)
        return rc;
    ca_ws_forget(p->datadir, id);
    return ca_store_rmtree(dir);
}

/* ---- jobs -------------------------------------------------------------- */

struct job_arg {
    struct ca_portal *p;
    uint64_t id;
    json_t *rec; /* create: record; update: fields; claim: result */
    pid_t pid;
    int n;
};

static int job_is(json_t *rec, const char *state)
{
    const char *s = json_string_value(json_object_get(rec, "state"));

    return s != NULL && strcmp(s, state) == 0;
}

/* Keeps the jobq index in step with a job's state. */
static int jobq_sync(struct ca_portal *p, MDB_txn *txn, const unsigned char key[8], json_t *rec)
{
    MDB_val k = {8, (void *)key}, v = {0, NULL};
    int rc;

    if (job_is(rec, "queued"))
        return mdb_put(txn, p->db[DB_JOBQ], &k, &v, 0);
    rc = mdb_del(txn, p->db[DB_JOBQ], &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int job_put(struct ca_portal *p, MDB_txn *txn, const unsigned char key[8], json_t *rec)
{
    int rc = ca_store_put_json(txn, p->db[DB_JOBS], key, 8, rec);

    return rc != 0 ? rc : jobq_sync(p, txn, key, rec);
}

static int job_create_txn(MDB_txn *txn, void *arg)
{
    struct job_arg *a = arg;
    unsigned char key[8];
    int rc;

    rc = ca_store_counter_next(txn, a->p->db[DB_META], "next_job", &a->id);
    if (rc != 0)
        return rc;
    if (json_object_set_new(a->rec, "id", json_integer((json_int_t)a->id)) != 0)
        return CA_ENOMEM;
    ca_store_be64(a->id, key);
    return job_put(a->p, txn, key, a->rec);
}

int ca_job_create(struct ca_portal *p, json_t *job, uint64_t *id_out)
{
    struct job_arg a = {.p = p};
    int rc = CA_ENOMEM;

    if (!json_is_object(job))
        return CA_EINVAL;
    a.rec = json_deep_copy(job);
    if (a.rec == NULL)
        return CA_ENOMEM;
    if (json_object_set_new(a.rec, "state", json_string("queued")) != 0 ||
        json_object_set_new(a.rec, "created", json_integer(ca_store_now())) != 0 ||
        json_object_set_new(a.rec, "started", json_null()) != 0 ||
        json_object_set_new(a.rec, "finished", json_null()) != 0 ||
        json_object_set_new(a.rec, "worker_pid", json_null()) != 0 ||
        json_object_set_new(a.rec, "error", json_null()) != 0 ||
        ca_store_set_default(a.rec, "kind", json_string("import")) != 0 ||
        ca_store_set_default(a.rec, "bytes_total", json_integer(0)) != 0 ||
        json_object_set_new(a.rec, "bytes_done", json_integer(0)) != 0 ||
        json_object_set_new(a.rec, "packets_done", json_integer(0)) != 0)
        goto out;
    rc = ca_store_err(ca_store_write(p->env, job_create_txn, &a));
    if (rc == 0 && id_out != NULL)
        *id_out = a.id;
out:
    json_decref(a.rec);
    return rc;
}

int ca_job_get(struct ca_portal *p, uint64_t id, json_t **out)
{
    return get_by_id(p, DB_JOBS, id, out);
}

static int job_claim_txn(MDB_txn *txn, void *arg)
{
    struct job_arg *a = arg;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    unsigned char key[8];
    json_t *rec = NULL;
    int rc;

    json_decref(a->rec);
    a->rec = NULL;
    rc = mdb_cursor_open(txn, a->p->db[DB_JOBQ], &cur);
    if (rc != 0)
        return rc;
    /* Ids grow with time, so the first queued id is the oldest job. */
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size == sizeof(key)) {
            memcpy(key, k.mv_data, sizeof(key));
            rc = ca_store_get_json(txn, a->p->db[DB_JOBS], key, sizeof(key), &rec);
            if (rc == 0 && job_is(rec, "queued"))
                break;
            json_decref(rec);
            rec = NULL;
            if (rc != 0 && rc != MDB_NOTFOUND)
                break;
        }
        /* A stale index entry: drop it and look further. */
        rc = mdb_cursor_del(cur, 0);
        if (rc != 0)
            break;
    }
    mdb_cursor_close(cur);
    if (rc != 0)
        return rc;
    if (json_object_set_new(rec, "state", json_string("running")) != 0 ||
        json_object_set_new(rec, "worker_pid", json_integer(a->pid)) != 0 ||
        json_object_set_new(rec, "started", json_integer(ca_store_now())) != 0) {
        json_decref(rec);
        return CA_ENOMEM;
    }
    rc = job_put(a->p, txn, key, rec);
    if (rc != 0) {
        json_decref(rec);
        return rc;
    }
    a->rec = rec;
    return 0;
}

int ca_job_claim(struct ca_portal *p, pid_t pid, json_t **out)
{
    struct job_arg a = {.p = p, .pid = pid};
    int rc;

    *out = NULL;
    rc = ca_store_err(ca_store_write(p->env, job_claim_txn, &a));
    if (rc != 0) {
        json_decref(a.rec);
        return rc;
    }
    *out = a.rec;
    return 0;
}

static int job_update_txn(MDB_txn *txn, void *arg)
{
    struct job_arg *a = arg;
    unsigned char key[8];
    json_t *rec = NULL, *fields = NULL;
    int rc;

    ca_store_be64(a->id, key);
    rc = ca_store_get_json(txn, a->p->db[DB_JOBS], key, sizeof(key), &rec);
    if (rc != 0)
        return rc;
    fields = json_copy(a->rec);
    if (fields == NULL) {
        rc = CA_ENOMEM;
        goto out;
    }
    json_object_del(fields, "id");
    if (json_object_update(rec, fields) != 0) {
        rc = CA_ENOMEM;
        goto out;
    }
    if ((job_is(fields, "done") || job_is(fields, "failed")) &&
        !json_is_integer(json_object_get(fields, "finished")) &&
        json_object_set_new(rec, "finished", json_integer(ca_store_now())) != 0) {
        rc = CA_ENOMEM;
        goto out;
    }
    rc = job_put(a->p, txn, key, rec);
out:
    json_decref(fields);
    json_decref(rec);
    return rc;
}

int ca_job_update(struct ca_portal *p, uint64_t id, json_t *fields)
{
    struct job_arg a = {.p = p, .id = id, .rec = fields};

    if (!json_is_object(fields))
        return CA_EINVAL;
    return ca_store_err(ca_store_write(p->env, job_update_txn, &a));
}

static int pid_dead(json_int_t pid)
{
    if (pid <= 0 || pid > INT32_MAX)
        return 1;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

static int job_requeue_txn(MDB_txn *txn, void *arg)
{
    struct job_arg *a = arg;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    unsigned char key[8];
    json_t *rec;
    char *vs;
    int rc;

    a->n = 0;
    rc = mdb_cursor_open(txn, a->p->db[DB_JOBS], &cur);
    if (rc != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        rec = json_loadb(v.mv_data, v.mv_size, 0, NULL);
        if (rec == NULL || !job_is(rec, "running") ||
            !pid_dead(json_integer_value(json_object_get(rec, "worker_pid")))) {
            json_decref(rec);
            continue;
        }
        if (json_object_set_new(rec, "state", json_string("queued")) != 0 ||
            json_object_set_new(rec, "worker_pid", json_null()) != 0 ||
            json_object_set_new(rec, "started", json_null()) != 0) {
            json_decref(rec);
            rc = CA_ENOMEM;
            break;
        }
        /* In place through the cursor, so the iteration carries on from here. */
        vs = json_dumps(rec, JSON_COMPACT);
        json_decref(rec);
        if (vs == NULL) {
            rc = CA_ENOMEM;
            break;
        }
        v.mv_data = vs;
        v.mv_size = strlen(vs);
        if (k.mv_size == sizeof(key))
            memcpy(key, k.mv_data, sizeof(key));
        rc = mdb_cursor_put(cur, &k, &v, MDB_CURRENT);
        free(vs);
        if (rc == 0 && k.mv_size == sizeof(key)) {
            MDB_val qk = {sizeof(key), key}, qv = {0, NULL};

            rc = mdb_put(txn, a->p->db[DB_JOBQ], &qk, &qv, 0);
        }
        if (rc != 0)
            break;
        a->n++;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int ca_job_requeue_orphans(struct ca_portal *p, int *n_requeued)
{
    struct job_arg a = {.p = p};
    int rc = ca_store_err(ca_store_write(p->env, job_requeue_txn, &a));

    if (rc == 0 && n_requeued != NULL)
        *n_requeued = a.n;
    return rc;
}

/* ---- users: administration --------------------------------------------- */

int ca_user_find(struct ca_portal *p, const char *name, uint64_t *id)
{
    MDB_txn *txn = NULL;
    MDB_val k, v;
    int rc;

    if (name == NULL || *name == '\0' || strlen(name) > 64)
        return CA_ENOTFOUND;
    rc = ca_store_txn_begin(p->env, MDB_RDONLY, &txn);
    if (rc != 0)
        return ca_store_err(rc);
    k.mv_data = (void *)name;
    k.mv_size = strlen(name);
    rc = mdb_get(txn, p->db[DB_USER_NAMES], &k, &v);
    if (rc == 0 && v.mv_size == 8)
        *id = ca_store_rd64(v.mv_data);
    else if (rc == 0)
        rc = CA_ESTORE;
    mdb_txn_abort(txn);
    return ca_store_err(rc);
}

/* Every record of one database as an array of parsed JSON values. */
static int scan_all(struct ca_portal *p, int db, json_t **out)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    json_t *arr = json_array(), *rec;
    int rc;

    *out = NULL;
    if (arr == NULL)
        return CA_ENOMEM;
    rc = ca_store_txn_begin(p->env, MDB_RDONLY, &txn);
    if (rc != 0)
        goto out;
    rc = mdb_cursor_open(txn, p->db[db], &cur);
    if (rc != 0)
        goto out;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        rec = json_loadb(v.mv_data, v.mv_size, 0, NULL);
        if (rec != NULL && json_array_append_new(arr, rec) != 0) {
            rc = CA_ENOMEM;
            break;
        }
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
out:
    if (cur != NULL)
        mdb_cursor_close(cur);
    if (txn != NULL)
        mdb_txn_abort(txn);
    if (rc == 0)
        *out = arr;
    else
        json_decref(arr);
    return ca_store_err(rc);
}

int ca_user_list(struct ca_portal *p, json_t **out)
{
    json_t *u;
    size_t i;
    int rc = scan_all(p, DB_USERS, out);

    if (rc != 0)
        return rc;
    json_array_foreach(*out, i, u)
    {
        uint64_t used = 0;

        json_object_del(u, "password");
        (void)ca_user_usage(p, (uint64_t)json_integer_value(json_object_get(u, "id")), &used);
        json_object_set_new(u, "used", json_integer((json_int_t)used));
        if (json_object_get(u, "quota") == NULL)
            json_object_set_new(u, "quota", json_null());
    }
    return 0;
}

struct user_upd_arg {
    struct ca_portal *p;
    uint64_t id;
    json_t *fields;
};

static int user_upd_txn(MDB_txn *txn, void *arg)
{
    struct user_upd_arg *a = arg;
    unsigned char key[8];
    json_t *rec = NULL;
    int rc;

    ca_store_be64(a->id, key);
    rc = ca_store_get_json(txn, a->p->db[DB_USERS], key, sizeof(key), &rec);
    if (rc != 0)
        return rc;
    rc = json_object_update(rec, a->fields) != 0 ? CA_ENOMEM : 0;
    if (rc == 0)
        rc = ca_store_put_json(txn, a->p->db[DB_USERS], key, sizeof(key), rec);
    json_decref(rec);
    return rc;
}

int ca_user_update(struct ca_portal *p, uint64_t id, json_t *fields, char *err, size_t errlen)
{
    struct user_upd_arg a = {p, id, NULL};
    const char *key;
    json_t *v;
    int rc;

    if (!json_is_object(fields))
        return ca_seterr(err, errlen, CA_EINVAL, "fields must be an object");
    json_object_foreach(fields, key, v)
    {
        if (strcmp(key, "admin") == 0 || strcmp(key, "disabled") == 0) {
            if (!json_is_boolean(v))
                return ca_seterr(err, errlen, CA_EINVAL, "%s must be true or false", key);
        } else if (strcmp(key, "quota") == 0) {
            if (!json_is_null(v) && !(json_is_integer(v) && json_integer_value(v) >= 0))
                return ca_seterr(err, errlen, CA_EINVAL,
                                 "quota must be a number of bytes (0 or more) or null");
        } else {
            return ca_seterr(err, errlen, CA_EINVAL, "%s cannot be changed", key);
        }
    }
    a.fields = fields;
    rc = ca_store_err(ca_store_write(p->env, user_upd_txn, &a));
    if (rc == CA_ENOTFOUND)
        return ca_seterr(err, errlen, rc, "no such user");
    if (rc != 0)
        return ca_seterr(err, errlen, rc, "cannot store the user");
    if (json_is_true(json_object_get(fields, "disabled")))
        (void)ca_session_revoke_user(p, id, NULL);
    return 0;
}

/* Deletes the user's records and sessions/tokens; workspaces are removed by the caller. */
static int user_del_txn(MDB_txn *txn, void *arg)
{
    struct user_upd_arg *a = arg;
    unsigned char key[8];
    MDB_val k = {sizeof(key), key}, nk;
    json_t *rec = NULL;
    const char *name;
    MDB_cursor *cur = NULL;
    MDB_val ck, cv;
    int rc;

    ca_store_be64(a->id, key);
    rc = ca_store_get_json(txn, a->p->db[DB_USERS], key, sizeof(key), &rec);
    if (rc != 0)
        return rc;
    name = json_string_value(json_object_get(rec, "name"));
    if (name != NULL) {
        nk.mv_data = (void *)name;
        nk.mv_size = strlen(name);
        rc = mdb_del(txn, a->p->db[DB_USER_NAMES], &nk, NULL);
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    json_decref(rec);
    if (rc == 0)
        rc = mdb_del(txn, a->p->db[DB_USERS], &k, NULL);
    /* Tokens and sessions of the user. */
    for (int db = DB_SESSIONS; rc == 0 && db <= DB_TOKENS; db += DB_TOKENS - DB_SESSIONS) {
        rc = mdb_cursor_open(txn, a->p->db[db], &cur);
        if (rc != 0)
            break;
        for (rc = mdb_cursor_get(cur, &ck, &cv, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(cur, &ck, &cv, MDB_NEXT)) {
            json_t *r = json_loadb(cv.mv_data, cv.mv_size, 0, NULL);

            if (r == NULL || (uint64_t)json_integer_value(json_object_get(r, "user")) == a->id)
                rc = mdb_cursor_del(cur, 0);
            json_decref(r);
            if (rc != 0)
                break;
        }
        mdb_cursor_close(cur);
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    return rc;
}

int ca_user_delete(struct ca_portal *p, uint64_t id)
{
    struct user_upd_arg a = {p, id, NULL};
    json_t *all = NULL, *ws;
    size_t i;
    int rc;

    rc = ca_store_err(ca_store_write(p->env, user_del_txn, &a));
    if (rc != 0)
        return rc;
    /* Their workspaces go with them; shares given to them are dropped. */
    rc = scan_all(p, DB_WORKSPACES, &all);
    if (rc != 0)
        return rc;
    json_array_foreach(all, i, ws)
    {
        uint64_t wid = (uint64_t)json_integer_value(json_object_get(ws, "id"));

        if ((uint64_t)json_integer_value(json_object_get(ws, "owner")) == id)
            (void)ca_workspace_delete(p, wid);
        else if (ca_workspace_role(ws, id) != NULL)
            (void)ca_workspace_share(p, wid, id, NULL);
    }
    json_decref(all);
    return 0;
}

int ca_user_usage(struct ca_portal *p, uint64_t id, uint64_t *bytes)
{
    json_t *all = NULL, *ws;
    size_t i;
    int rc = scan_all(p, DB_WORKSPACES, &all);

    *bytes = 0;
    if (rc != 0)
        return rc;
    json_array_foreach(all, i, ws)
    {
        if ((uint64_t)json_integer_value(json_object_get(ws, "owner")) != id)
            continue;
        ws_add_stats(p, ws);
        *bytes += (uint64_t)json_integer_value(json_object_get(ws, "bytes"));
    }
    json_decref(all);
    return 0;
}

/* ---- login throttle ------------------------------------------------------ */

struct login_arg {
    struct ca_portal *p;
    const char *name;
    int64_t now;
    int failed; /* 1: count a failure, 0: clear */
};

static int login_txn(MDB_txn *txn, void *arg)
{
    struct login_arg *a = arg;
    MDB_val k = {strlen(a->name), (void *)a->name};
    json_t *rec = NULL;
    int64_t fails, lock, maxf;
    int rc;

    if (!a->failed) {
        rc = mdb_del(txn, a->p->db[DB_LOGIN_FAIL], &k, NULL);
        return rc == MDB_NOTFOUND ? 0 : rc;
    }
    rc = ca_store_get_json(txn, a->p->db[DB_LOGIN_FAIL], a->name, k.mv_size, &rec);
    if (rc == MDB_NOTFOUND) {
        rec = json_object();
        rc = rec != NULL ? 0 : CA_ENOMEM;
    }
    if (rc != 0)
        return rc;
    fails = json_integer_value(json_object_get(rec, "fails")) + 1;
    maxf = env_seconds("CAPATLAS_LOGIN_MAX_FAILS", LOGIN_MAX_FAILS);
    lock = 0;
    if (fails >= maxf) {
        /* Back-off: the base lock doubles with each further failure. */
        int64_t shift = fails - maxf > 16 ? 16 : fails - maxf;

        lock = env_seconds("CAPATLAS_LOGIN_LOCK_SECONDS", LOGIN_LOCK_BASE) << shift;
        if (lock > LOGIN_LOCK_MAX)
            lock = LOGIN_LOCK_MAX;
    }
    if (json_object_set_new(rec, "fails", json_integer(fails)) != 0 ||
        json_object_set_new(rec, "until", json_integer(lock > 0 ? a->now + lock : 0)) != 0 ||
        json_object_set_new(rec, "last", json_integer(a->now)) != 0)
        rc = CA_ENOMEM;
    else
        rc = ca_store_put_json(txn, a->p->db[DB_LOGIN_FAIL], a->name, k.mv_size, rec);
    json_decref(rec);
    return rc;
}

int ca_login_check(struct ca_portal *p, const char *name, int64_t *retry_after)
{
    MDB_txn *txn = NULL;
    json_t *rec = NULL;
    int64_t until, now = ca_store_now();
    int rc;

    *retry_after = 0;
    if (name == NULL || *name == '\0' || strlen(name) > 511)
        return 0;
    rc = ca_store_txn_begin(p->env, MDB_RDONLY, &txn);
    if (rc != 0)
        return ca_store_err(rc);
    rc = ca_store_get_json(txn, p->db[DB_LOGIN_FAIL], name, strlen(name), &rec);
    mdb_txn_abort(txn);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return ca_store_err(rc);
    until = json_integer_value(json_object_get(rec, "until"));
    json_decref(rec);
    if (until > now) {
        *retry_after = until - now;
        return CA_EBUSY;
    }
    return 0;
}

int ca_login_record(struct ca_portal *p, const char *name, int failed)
{
    struct login_arg a = {p, name, ca_store_now(), failed != 0};

    if (name == NULL || *name == '\0' || strlen(name) > 511)
        return 0;
    return ca_store_err(ca_store_write(p->env, login_txn, &a));
}

/* ---- sessions: listing and revocation ------------------------------------ */

int ca_session_list(struct ca_portal *p, uint64_t user_id, const char *current, json_t **out)
{
    char cur_digest[65] = "";
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    json_t *arr = json_array(), *rec;
    int64_t now = ca_store_now();
    int rc;

    *out = NULL;
    if (arr == NULL)
        return CA_ENOMEM;
    if (current != NULL && strlen(current) == 64)
        ca_cred_digest(current, cur_digest, sizeof(cur_digest));
    rc = ca_store_txn_begin(p->env, MDB_RDONLY, &txn);
    if (rc != 0)
        goto out;
    rc = mdb_cursor_open(txn, p->db[DB_SESSIONS], &cur);
    if (rc != 0)
        goto out;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        json_t *pub;

        rec = json_loadb(v.mv_data, v.mv_size, 0, NULL);
        if (rec == NULL || (uint64_t)json_integer_value(json_object_get(rec, "user")) != user_id ||
            session_expired(rec, now)) {
            json_decref(rec);
            continue;
        }
        pub = json_pack(
            "{s:O?, s:O?, s:O?, s:O?, s:b}", "id", json_object_get(rec, "id"), "created",
            json_object_get(rec, "created"), "last_seen", json_object_get(rec, "last_seen"), "addr",
            json_object_get(rec, "addr"), "current",
            k.mv_size == 64 && cur_digest[0] != '\0' && memcmp(k.mv_data, cur_digest, 64) == 0);
        json_decref(rec);
        if (pub == NULL || json_array_append_new(arr, pub) != 0) {
            rc = CA_ENOMEM;
            break;
        }
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
out:
    if (cur != NULL)
        mdb_cursor_close(cur);
    if (txn != NULL)
        mdb_txn_abort(txn);
    if (rc == 0)
        *out = arr;
    else
        json_decref(arr);
    return ca_store_err(rc);
}

struct revoke_arg {
    struct ca_portal *p;
    int db;
    uint64_t user;
    uint64_t id;   /* 0: every record of the user */
    char keep[65]; /* digest not to remove ("" = none) */
    int n;
};

static int revoke_txn(MDB_txn *txn, void *arg)
{
    struct revoke_arg *a = arg;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    int rc;

    a->n = 0;
    rc = mdb_cursor_open(txn, a->p->db[a->db], &cur);
    if (rc != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        json_t *rec = json_loadb(v.mv_data, v.mv_size, 0, NULL);
        int hit =
            rec != NULL && (uint64_t)json_integer_value(json_object_get(rec, "user")) == a->user &&
            (a->id == 0 || (uint64_t)json_integer_value(json_object_get(rec, "id")) == a->id) &&
            !(a->keep[0] != '\0' && k.mv_size == 64 && memcmp(k.mv_data, a->keep, 64) == 0);

        json_decref(rec);
        if (hit) {
            rc = mdb_cursor_del(cur, 0);
            if (rc != 0)
                break;
            a->n++;
        }
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int ca_session_revoke(struct ca_portal *p, uint64_t user_id, uint64_t session_id)
{
    struct revoke_arg a = {.p = p, .db = DB_SESSIONS, .user = user_id, .id = session_id};
    int rc;

    if (session_id == 0)
        return CA_ENOTFOUND;
    rc = ca_store_err(ca_store_write(p->env, revoke_txn, &a));
    return rc == 0 && a.n == 0 ? CA_ENOTFOUND : rc;
}

int ca_session_revoke_user(struct ca_portal *p, uint64_t user_id, const char *keep_token)
{
    struct revoke_arg a = {.p = p, .db = DB_SESSIONS, .user = user_id};

    if (keep_token != NULL && strlen(keep_token) == 64)
        ca_cred_digest(keep_token, a.keep, sizeof(a.keep));
    return ca_store_err(ca_store_write(p->env, revoke_txn, &a));
}

/* ---- API tokens ------------------------------------------------------------ */

struct token_arg {
    struct ca_portal *p;
    char digest[65];
    json_t *rec;
    int64_t now;
};

static int token_put_txn(MDB_txn *txn, void *arg)
{
    struct token_arg *a = arg;
    uint64_t id;
    int rc;

    rc = ca_store_counter_next(txn, a->p->db[DB_META], "next_token", &id);
    if (rc != 0)
        return rc;
    if (json_object_set_new(a->rec, "id", json_integer((json_int_t)id)) != 0)
        return CA_ENOMEM;
    return ca_store_put_json(txn, a->p->db[DB_TOKENS], a->digest, 64, a->rec);
}

int ca_token_create(struct ca_portal *p, uint64_t user_id, const char *name, int readonly,
                    int64_t expires, char token_out[CA_TOKEN_LEN + 1], json_t **rec_out, char *err,
                    size_t errlen)
{
    struct token_arg a = {.p = p};
    char hex[65];
    int rc;

    if (name == NULL || !valid_ws_name(name, 100, 0))
        return ca_seterr(err, errlen, CA_EINVAL,
                         "name must be 1-100 characters, without control characters");
    if (expires != 0 && expires <= ca_store_now())
        return ca_seterr(err, errlen, CA_EINVAL, "expires must be in the future");
    rc = ca_cred_random_token(hex, sizeof(hex));
    if (rc != 0)
        return ca_seterr(err, errlen, rc, "cannot make a token");
    snprintf(token_out, CA_TOKEN_LEN + 1, "cat_%s", hex);
    memset(hex, 0, sizeof(hex));
    ca_cred_digest(token_out, a.digest, sizeof(a.digest));
    a.rec = json_pack("{s:I, s:s, s:b, s:I, s:o, s:n}", "user", (json_int_t)user_id, "name", name,
                      "readonly", readonly != 0, "created", (json_int_t)ca_store_now(), "expires",
                      expires != 0 ? json_integer(expires) : json_null(), "last_used");
    if (a.rec == NULL) {
        memset(token_out, 0, CA_TOKEN_LEN + 1);
        return ca_seterr(err, errlen, CA_EINVAL, "name must be UTF-8 text");
    }
    rc = ca_store_err(ca_store_write(p->env, token_put_txn, &a));
    if (rc != 0) {
        json_decref(a.rec);
        memset(token_out, 0, CA_TOKEN_LEN + 1);
        return ca_seterr(err, errlen, rc, "cannot store the token");
    }
    json_object_del(a.rec, "user");
    if (rec_out != NULL)
        *rec_out = a.rec;
    else
        json_decref(a.rec);
    return 0;
}

static int token_touch_txn(MDB_txn *txn, void *arg)
{
    struct token_arg *a = arg;
    json_t *rec = NULL;
    int rc = ca_store_get_json(txn, a->p->db[DB_TOKENS], a->digest, 64, &rec);

    if (rc != 0)
        return rc;
    rc = json_object_set_new(rec, "last_used", json_integer(a->now)) != 0 ? CA_ENOMEM : 0;
    if (rc == 0)
        rc = ca_store_put_json(txn, a->p->db[DB_TOKENS], a->digest, 64, rec);
    json_decref(rec);
    return rc;
}

int ca_token_lookup(struct ca_portal *p, const char *token, uint64_t *user_id, int *readonly)
{
    struct token_arg a = {.p = p, .now = ca_store_now()};
    MDB_txn *txn = NULL;
    json_t *rec = NULL, *exp;
    int64_t last;
    int rc;

    if (token == NULL || strlen(token) != CA_TOKEN_LEN || strncmp(token, "cat_", 4) != 0)
        return CA_EAUTH;
    ca_cred_digest(token, a.digest, sizeof(a.digest));
    rc = ca_store_txn_begin(p->env, MDB_RDONLY, &txn);
    if (rc != 0)
        return ca_store_err(rc);
    rc = ca_store_get_json(txn, p->db[DB_TOKENS], a.digest, 64, &rec);
    mdb_txn_abort(txn);
    if (rc == MDB_NOTFOUND)
        return CA_EAUTH;
    if (rc != 0)
        return ca_store_err(rc);
    exp = json_object_get(rec, "expires");
    if (json_is_integer(exp) && json_integer_value(exp) <= a.now) {
        json_decref(rec);
        return CA_EAUTH;
    }
    *user_id = (uint64_t)json_integer_value(json_object_get(rec, "user"));
    *readonly = json_is_true(json_object_get(rec, "readonly"));
    last = json_integer_value(json_object_get(rec, "last_used"));
    json_decref(rec);
    if (a.now - last >= SESSION_TOUCH)
        (void)ca_store_write(p->env, token_touch_txn, &a);
    return 0;
}

int ca_token_list(struct ca_portal *p, uint64_t user_id, json_t **out)
{
    json_t *all = NULL, *arr, *t;
    size_t i;
    int rc = scan_all(p, DB_TOKENS, &all);

    *out = NULL;
    if (rc != 0)
        return rc;
    arr = json_array();
    json_array_foreach(all, i, t)
    {
        if ((uint64_t)json_integer_value(json_object_get(t, "user")) != user_id)
            continue;
        json_object_del(t, "user");
        json_array_append(arr, t);
    }
    json_decref(all);
    if (arr == NULL)
        return CA_ENOMEM;
    *out = arr;
    return 0;
}

int ca_token_revoke(struct ca_portal *p, uint64_t user_id, uint64_t token_id)
{
    struct revoke_arg a = {.p = p, .db = DB_TOKENS, .user = user_id, .id = token_id};
    int rc;

    if (token_id == 0)
        return CA_ENOTFOUND;
    rc = ca_store_err(ca_store_write(p->env, revoke_txn, &a));
    return rc == 0 && a.n == 0 ? CA_ENOTFOUND : rc;
}

/* ---- workspaces: settings, sharing, end of life ---------------------------- */

const char *ca_workspace_role(json_t *ws, uint64_t user_id)
{
    char key[24];
    json_t *eol = json_object_get(ws, "eol");
    const char *role;

    if (user_id == 0)
        return NULL;
    /* Past its end of life a workspace is gone for everyone, even before the purge. */
    if (json_is_integer(eol) && json_integer_value(eol) <= ca_store_now())
        return NULL;
    if ((uint64_t)json_integer_value(json_object_get(ws, "owner")) == user_id)
        return "owner";
    snprintf(key, sizeof(key), "%llu", (unsigned long long)user_id);
    role = json_string_value(json_object_get(json_object_get(ws, "shares"), key));
    if (role != NULL && (strcmp(role, "viewer") == 0 || strcmp(role, "editor") == 0))
        return role;
    return NULL;
}

struct ws_upd_arg {
    struct ca_portal *p;
    uint64_t id;
    json_t *fields; /* merged into the record */
    uint64_t share_user;
    const char *role; /* share: role, or NULL to remove */
    int share;
};

static int ws_upd_txn(MDB_txn *txn, void *arg)
{
    struct ws_upd_arg *a = arg;
    unsigned char key[8];
    json_t *rec = NULL, *shares;
    int rc;

    ca_store_be64(a->id, key);
    rc = ca_store_get_json(txn, a->p->db[DB_WORKSPACES], key, sizeof(key), &rec);
    if (rc != 0)
        return rc;
    if (a->fields != NULL && json_object_update(rec, a->fields) != 0)
        rc = CA_ENOMEM;
    shares = json_object_get(rec, "shares");
    if (rc == 0 && !json_is_object(shares)) {
        shares = json_object();
        if (shares == NULL || json_object_set_new(rec, "shares", shares) != 0)
            rc = CA_ENOMEM;
    }
    if (rc == 0 && a->share) {
        char k[24];

        snprintf(k, sizeof(k), "%llu", (unsigned long long)a->share_user);
        if (a->role != NULL)
            rc = json_object_set_new(shares, k, json_string(a->role)) != 0 ? CA_ENOMEM : 0;
        else if (json_object_del(shares, k) != 0)
            rc = MDB_NOTFOUND;
    }
    if (rc == 0 && a->fields != NULL && json_object_get(a->fields, "owner") != NULL) {
        /* The new owner no longer needs a share. */
        char k[24];

        snprintf(k, sizeof(k), "%llu",
                 (unsigned long long)json_integer_value(json_object_get(a->fields, "owner")));
        json_object_del(shares, k);
    }
    if (rc == 0)
        rc = ca_store_put_json(txn, a->p->db[DB_WORKSPACES], key, sizeof(key), rec);
    json_decref(rec);
    return rc;
}

int ca_workspace_update(struct ca_portal *p, uint64_t id, json_t *fields, char *err, size_t errlen)
{
    struct ws_upd_arg a = {.p = p, .id = id, .fields = fields};
    const char *key;
    json_t *v;
    int rc;

    if (!json_is_object(fields))
        return ca_seterr(err, errlen, CA_EINVAL, "fields must be an object");
    json_object_foreach(fields, key, v)
    {
        if (strcmp(key, "name") == 0) {
            if (!json_is_string(v) || !valid_ws_name(json_string_value(v), WS_NAME_MAX, 0))
                return ca_seterr(err, errlen, CA_EINVAL,
                                 "name must be 1-%d characters, without control characters",
                                 WS_NAME_MAX);
        } else if (strcmp(key, "description") == 0) {
            if (!json_is_string(v) || !valid_ws_name(json_string_value(v), WS_DESC_MAX, 1))
                return ca_seterr(err, errlen, CA_EINVAL,
                                 "description must be at most %d characters, without control "
                                 "characters",
                                 WS_DESC_MAX);
        } else if (strcmp(key, "eol") == 0) {
            if (!json_is_null(v) && !(json_is_integer(v) && json_integer_value(v) > ca_store_now()))
                return ca_seterr(err, errlen, CA_EINVAL,
                                 "eol must be a time in the future (unix seconds) or null");
        } else if (strcmp(key, "owner") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) <= 0)
                return ca_seterr(err, errlen, CA_EINVAL, "owner must be a user id");
        } else {
            return ca_seterr(err, errlen, CA_EINVAL, "%s cannot be changed", key);
        }
    }
    rc = ca_store_err(ca_store_write(p->env, ws_upd_txn, &a));
    if (rc == CA_ENOTFOUND)
        return ca_seterr(err, errlen, rc, "no such workspace");
    if (rc != 0)
        return ca_seterr(err, errlen, rc, "cannot store the workspace");
    return 0;
}

int ca_workspace_share(struct ca_portal *p, uint64_t id, uint64_t user_id, const char *role)
{
    struct ws_upd_arg a = {.p = p, .id = id, .share_user = user_id, .role = role, .share = 1};

    if (role != NULL && strcmp(role, "viewer") != 0 && strcmp(role, "editor") != 0)
        return CA_EINVAL;
    return ca_store_err(ca_store_write(p->env, ws_upd_txn, &a));
}

int ca_workspace_purge_eol(struct ca_portal *p, int *n_purged)
{
    json_t *all = NULL, *ws;
    int64_t now = ca_store_now();
    size_t i;
    int n = 0, rc = scan_all(p, DB_WORKSPACES, &all);

    if (rc != 0)
        return rc;
    json_array_foreach(all, i, ws)
    {
        json_t *eol = json_object_get(ws, "eol");

        if (json_is_integer(eol) && json_integer_value(eol) <= now &&
            ca_workspace_delete(p, (uint64_t)json_integer_value(json_object_get(ws, "id"))) == 0)
            n++;
    }
    json_decref(all);
    if (n_purged != NULL)
        *n_purged = n;
    return 0;
}

/* ---- audit log ------------------------------------------------------------- */

struct audit_arg {
    struct ca_portal *p;
    json_t *rec;
};

static int audit_put_txn(MDB_txn *txn, void *arg)
{
    struct audit_arg *a = arg;
    unsigned char key[8];
    uint64_t id;
    int rc;

    rc = ca_store_counter_next(txn, a->p->db[DB_META], "next_audit", &id);
    if (rc != 0)
        return rc;
    if (json_object_set_new(a->rec, "id", json_integer((json_int_t)id)) != 0)
        return CA_ENOMEM;
    ca_store_be64(id, key);
    return ca_store_put_json(txn, a->p->db[DB_AUDIT], key, sizeof(key), a->rec);
}

int ca_audit_add(struct ca_portal *p, uint64_t user_id, const char *user_name, const char *addr,
                 const char *action, const char *target, json_t *detail)
{
    struct audit_arg a = {p, NULL};
    int rc;

    a.rec = json_pack("{s:I, s:o, s:s?, s:s, s:s, s:s, s:O?}", "time", (json_int_t)ca_store_now(),
                      "user", user_id != 0 ? json_integer((json_int_t)user_id) : json_null(),
                      "user_name", user_name, "addr", addr != NULL ? addr : "", "action",
                      action != NULL ? action : "", "target", target != NULL ? target : "",
                      "detail", detail);
    if (a.rec == NULL)
        return CA_ENOMEM;
    if (json_object_get(a.rec, "user_name") == NULL)
        json_object_set_new(a.rec, "user_name", json_null());
    if (json_object_get(a.rec, "detail") == NULL)
        json_object_set_new(a.rec, "detail", json_null());
    rc = ca_store_err(ca_store_write(p->env, audit_put_txn, &a));
    json_decref(a.rec);
    return rc;
}

int ca_audit_list(struct ca_portal *p, uint64_t before, size_t limit, json_t **out,
                  uint64_t *next_before)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    unsigned char key[8];
    json_t *arr = json_array(), *rec;
    uint64_t last = 0;
    int rc;

    *out = NULL;
    *next_before = 0;
    if (arr == NULL)
        return CA_ENOMEM;
    rc = ca_store_txn_begin(p->env, MDB_RDONLY, &txn);
    if (rc != 0)
        goto out;
    rc = mdb_cursor_open(txn, p->db[DB_AUDIT], &cur);
    if (rc != 0)
        goto out;
    /* Newest first: start at `before` (exclusive) or at the end. */
    if (before != 0) {
        ca_store_be64(before, key);
        k.mv_data = key;
        k.mv_size = sizeof(key);
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        rc =
            rc == 0 ? mdb_cursor_get(cur, &k, &v, MDB_PREV) : mdb_cursor_get(cur, &k, &v, MDB_LAST);
    } else {
        rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    }
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_PREV)) {
        if (json_array_size(arr) >= limit) {
            *next_before = last;
            break;
        }
        rec = json_loadb(v.mv_data, v.mv_size, 0, NULL);
        if (rec == NULL)
            continue;
        last = k.mv_size == 8 ? ca_store_rd64(k.mv_data) : 0;
        if (json_array_append_new(arr, rec) != 0) {
            rc = CA_ENOMEM;
            break;
        }
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
out:
    if (cur != NULL)
        mdb_cursor_close(cur);
    if (txn != NULL)
        mdb_txn_abort(txn);
    if (rc == 0)
        *out = arr;
    else
        json_decref(arr);
    return ca_store_err(rc);
}
