/*
 * Unit tests for the store (core/store_portal.c, core/store_ws.c): users,
 * sessions, workspaces, jobs, captures and flows, on a fresh data folder
 * under /tmp that is removed at the end.
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "ca_error.h"
#include "cred.h"
#include "store.h"
#include "unit.h"

static char datadir[] = "/tmp/capatlas-store-XXXXXX";
static struct ca_portal *portal;

static int exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0;
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return type == FTW_DP ? rmdir(path) : unlink(path);
}

static void test_users(void)
{
    char err[256];
    uint64_t id = 0, id2 = 0, got = 0, n = 0;
    json_t *u = NULL;

    CHECK_EQ_U(ca_user_count(portal, &n), 0);
    CHECK_EQ_U(n, 0);
    CHECK_EQ_U(ca_user_create(portal, "alice", "alice-password", 1, &id, err, sizeof(err)), 0);
    CHECK(id > 0);
    CHECK_EQ_U(ca_user_create(portal, "bob.b@x-y_z", "bob-password", 0, &id2, err, sizeof(err)), 0);
    CHECK(id2 > id);

    CHECK_EQ_U(ca_user_verify(portal, "alice", "alice-password", &got), 0);
    CHECK_EQ_U(got, id);
    CHECK(ca_user_verify(portal, "alice", "alice-passwork", &got) == CA_EAUTH);
    CHECK(ca_user_verify(portal, "nobody", "alice-password", &got) == CA_EAUTH);
    CHECK(ca_user_verify(portal, "", "alice-password", &got) == CA_EAUTH);

    CHECK(ca_user_create(portal, "alice", "another-password", 0, NULL, err, sizeof(err)) ==
          CA_EEXIST);
    err[0] = '\0';
    CHECK(ca_user_create(portal, "bad name", "long-enough-pw", 0, NULL, err, sizeof(err)) ==
          CA_EINVAL);
    CHECK(strstr(err, "name") != NULL);
    CHECK(ca_user_create(portal, "", "long-enough-pw", 0, NULL, err, sizeof(err)) == CA_EINVAL);
    CHECK(ca_user_create(portal,
                         "a234567890123456789012345678901234567890123456789012345678901234x",
                         "long-enough-pw", 0, NULL, err, sizeof(err)) == CA_EINVAL);
    err[0] = '\0';
    CHECK(ca_user_create(portal, "carol", "short", 0, NULL, err, sizeof(err)) == CA_EINVAL);
    CHECK(strstr(err, "password") != NULL);

    CHECK_EQ_U(ca_user_get(portal, id, &u), 0);
    CHECK(u != NULL && strcmp(json_string_value(json_object_get(u, "name")), "alice") == 0);
    CHECK(json_is_true(json_object_get(u, "admin")));
    CHECK(json_object_get(u, "password") == NULL);
    json_decref(u);
    u = NULL;
    CHECK(ca_user_get(portal, 9999, &u) == CA_ENOTFOUND);
    CHECK(u == NULL);
    CHECK_EQ_U(ca_user_count(portal, &n), 0);
    CHECK_EQ_U(n, 2);

    CHECK_EQ_U(ca_user_set_password(portal, id2, "new-bob-password", err, sizeof(err)), 0);
    CHECK(ca_user_verify(portal, "bob.b@x-y_z", "bob-password", &got) == CA_EAUTH);
    CHECK_EQ_U(ca_user_verify(portal, "bob.b@x-y_z", "new-bob-password", &got), 0);
    CHECK_EQ_U(got, id2);
    CHECK(ca_user_set_password(portal, id2, "short", err, sizeof(err)) == CA_EINVAL);
    CHECK(ca_user_set_password(portal, 9999, "long-enough-pw", err, sizeof(err)) == CA_ENOTFOUND);
}

static void test_sessions(void)
{
    char token[65], csrf[65], csrf2[65], token2[65], csrf3[65], digest[65];
    uint64_t uid = 0, got = 0;
    int n = -1;

    CHECK_EQ_U(ca_user_verify(portal, "alice", "alice-password", &uid), 0);
    CHECK_EQ_U(ca_session_create(portal, uid, "127.0.0.1", token, csrf), 0);
    CHECK(strlen(token) == 64 && strlen(csrf) == 64);
    CHECK(strcmp(token, csrf) != 0);
    CHECK_EQ_U(ca_session_lookup(portal, token, &got, csrf2), 0);
    CHECK_EQ_U(got, uid);
    CHECK(strcmp(csrf, csrf2) == 0);

    /* The store keys sessions by the token's digest: knowing the stored
     * key does not let anyone in. */
    ca_cred_digest(token, digest, sizeof(digest));
    CHECK(ca_session_lookup(portal, digest, &got, csrf2) == CA_EAUTH);
    CHECK(ca_session_lookup(portal, "short", &got, csrf2) == CA_EAUTH);
    CHECK(ca_session_lookup(portal, NULL, &got, csrf2) == CA_EAUTH);

    CHECK_EQ_U(ca_session_create(portal, uid, NULL, token2, csrf3), 0);
    CHECK(strcmp(token, token2) != 0);
    CHECK_EQ_U(ca_session_delete(portal, token), 0);
    CHECK(ca_session_lookup(portal, token, &got, csrf2) == CA_EAUTH);
    CHECK(ca_session_delete(portal, token) == CA_ENOTFOUND);
    CHECK_EQ_U(ca_session_lookup(portal, token2, &got, NULL), 0);
    CHECK_EQ_U(ca_session_purge_expired(portal, &n), 0);
    CHECK_EQ_U(n, 0);
    CHECK_EQ_U(ca_session_lookup(portal, token2, &got, NULL), 0);
}

static void test_workspaces(void)
{
    char err[256], dir[4096], path[4200];
    uint64_t a = 0, b = 0, c = 0;
    json_t *w = NULL, *list = NULL;

    CHECK_EQ_U(ca_workspace_create(portal, 1, "Office LAN", "the office", &a, err, sizeof(err)), 0);
    CHECK_EQ_U(ca_workspace_create(portal, 1, "Second", NULL, &b, err, sizeof(err)), 0);
    CHECK_EQ_U(ca_workspace_create(portal, 2, "Bob's", "", &c, err, sizeof(err)), 0);
    CHECK(a > 0 && b > a && c > b);
    err[0] = '\0';
    CHECK(ca_workspace_create(portal, 1, "", NULL, NULL, err, sizeof(err)) == CA_EINVAL);
    CHECK(strstr(err, "name") != NULL);
    CHECK(ca_workspace_create(portal, 1,
                              "12345678901234567890123456789012345678901234567890123456789012345",
                              NULL, NULL, err, sizeof(err)) == CA_EINVAL);
    CHECK(ca_workspace_create(portal, 1, "tab\there", NULL, NULL, err, sizeof(err)) == CA_EINVAL);

    CHECK_EQ_U(ca_ws_dir(ca_portal_datadir(portal), a, dir, sizeof(dir)), 0);
    snprintf(path, sizeof(path), "%s/captures", dir);
    CHECK(exists(path));
    snprintf(path, sizeof(path), "%s/db/data.mdb", dir);
    CHECK(exists(path));

    CHECK_EQ_U(ca_workspace_get(portal, a, &w), 0);
    CHECK(strcmp(json_string_value(json_object_get(w, "name")), "Office LAN") == 0);
    CHECK(strcmp(json_string_value(json_object_get(w, "description")), "the office") == 0);
    CHECK_EQ_U(json_integer_value(json_object_get(w, "owner")), 1);
    CHECK_EQ_U(json_integer_value(json_object_get(w, "captures")), 0);
    CHECK(json_is_integer(json_object_get(w, "bytes")));
    json_decref(w);

    CHECK_EQ_U(ca_workspace_list(portal, 1, &list), 0);
    CHECK_EQ_U(json_array_size(list), 2);
    CHECK_EQ_U(json_integer_value(json_object_get(json_array_get(list, 0), "id")), a);
    CHECK_EQ_U(json_integer_value(json_object_get(json_array_get(list, 1), "id")), b);
    json_decref(list);
    CHECK_EQ_U(ca_workspace_list(portal, 3, &list), 0);
    CHECK_EQ_U(json_array_size(list), 0);
    json_decref(list);

    CHECK_EQ_U(ca_workspace_delete(portal, b), 0);
    CHECK_EQ_U(ca_ws_dir(ca_portal_datadir(portal), b, dir, sizeof(dir)), 0);
    CHECK(!exists(dir));
    w = NULL;
    CHECK(ca_workspace_get(portal, b, &w) == CA_ENOTFOUND);
    CHECK(w == NULL);
    CHECK(ca_workspace_delete(portal, b) == CA_ENOTFOUND);
    CHECK_EQ_U(ca_workspace_list(portal, 1, &list), 0);
    CHECK_EQ_U(json_array_size(list), 1);
    json_decref(list);
}

/*
 * Edits (or, with field NULL, just checks) a stored session with LMDB
 * directly; the portal must be closed, since LMDB allows one handle per
 * environment in a process.
 */
static int edit_session(const char *token, const char *field, json_int_t value)
{
    char dir[4200], digest[65];
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_dbi dbi;
    MDB_val k, v;
    json_t *rec = NULL;
    char *text = NULL;
    int rc = -1;

    snprintf(dir, sizeof(dir), "%s/portal", datadir);
    ca_cred_digest(token, digest, sizeof(digest));
    if (mdb_env_create(&env) != 0 || mdb_env_set_maxdbs(env, 16) != 0 ||
        mdb_env_open(env, dir, 0, 0640) != 0 || mdb_txn_begin(env, NULL, 0, &txn) != 0 ||
        mdb_dbi_open(txn, "sessions", 0, &dbi) != 0 || mdb_cursor_open(txn, dbi, &cur) != 0)
        goto out;
    /* No stored key is the token itself. */
    while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0)
        if (k.mv_size == 64 && memcmp(k.mv_data, token, 64) == 0)
            goto out;
    k.mv_data = digest;
    k.mv_size = 64;
    if (mdb_get(txn, dbi, &k, &v) != 0)
        goto out;
    if (field != NULL) {
        rec = json_loadb(v.mv_data, v.mv_size, 0, NULL);
        if (rec == NULL || json_object_set_new(rec, field, json_integer(value)) != 0 ||
            (text = json_dumps(rec, JSON_COMPACT)) == NULL)
            goto out;
        v.mv_data = text;
        v.mv_size = strlen(text);
        if (mdb_put(txn, dbi, &k, &v, 0) != 0)
            goto out;
    }
    mdb_cursor_close(cur);
    cur = NULL;
    rc = mdb_txn_commit(txn);
    txn = NULL;
out:
    if (cur != NULL)
        mdb_cursor_close(cur);
    if (txn != NULL)
        mdb_txn_abort(txn);
    mdb_env_close(env);
    json_decref(rec);
    free(text);
    return rc;
}

static void test_session_expiry(void)
{
    char t_idle[65], t_old[65], t_fresh[65], t_purge[65], csrf[65], err[256];
    json_int_t now = (json_int_t)time(NULL);
    uint64_t got = 0;
    int n = -1;

    CHECK_EQ_U(ca_session_create(portal, 1, "::1", t_idle, csrf), 0);
    CHECK_EQ_U(ca_session_create(portal, 1, "::1", t_old, csrf), 0);
    CHECK_EQ_U(ca_session_create(portal, 1, "::1", t_fresh, csrf), 0);
    CHECK_EQ_U(ca_session_create(portal, 1, "::1", t_purge, csrf), 0);
    ca_portal_close(portal);
    portal = NULL;
    CHECK_EQ_U(edit_session(t_idle, "last_seen", now - 13 * 3600), 0);
    CHECK_EQ_U(edit_session(t_old, "created", now - 8 * 24 * 3600), 0);
    CHECK_EQ_U(edit_session(t_fresh, "last_seen", now - 11 * 3600), 0);
    CHECK_EQ_U(edit_session(t_purge, "last_seen", now - 13 * 3600), 0);
    CHECK_EQ_U(ca_portal_open(datadir, &portal, err, sizeof(err)), 0);

    CHECK(ca_session_lookup(portal, t_idle, &got, csrf) == CA_EAUTH);
    CHECK(ca_session_lookup(portal, t_old, &got, csrf) == CA_EAUTH);
    /* 11 hours idle is still fine, and the lookup moves last_seen on. */
    CHECK_EQ_U(ca_session_lookup(portal, t_fresh, &got, csrf), 0);
    CHECK_EQ_U(got, 1);
    CHECK_EQ_U(ca_session_purge_expired(portal, &n), 0);
    CHECK_EQ_U(n, 1);
    ca_portal_close(portal);
    portal = NULL;
    /* An expired session looked up is deleted, and the purged one is gone. */
    CHECK(edit_session(t_idle, NULL, 0) != 0);
    CHECK(edit_session(t_purge, NULL, 0) != 0);
    CHECK_EQ_U(edit_session(t_fresh, "created", now - 6 * 24 * 3600), 0);
    CHECK_EQ_U(ca_portal_open(datadir, &portal, err, sizeof(err)), 0);
    CHECK_EQ_U(ca_session_lookup(portal, t_fresh, &got, csrf), 0);
}

/* Entries of one named database of a closed environment (data file path). */
static size_t count_entries(const char *datafile, const char *db)
{
    char dir[4200];
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    MDB_stat st;
    size_t n = (size_t)-1;

    snprintf(dir, sizeof(dir), "%s", datafile);
    *strrchr(dir, '/') = '\0';
    if (mdb_env_create(&env) == 0 && mdb_env_set_maxdbs(env, 16) == 0 &&
        mdb_env_open(env, dir, MDB_RDONLY, 0640) == 0 &&
        mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) == 0 && mdb_dbi_open(txn, db, 0, &dbi) == 0 &&
        mdb_stat(txn, dbi, &st) == 0)
        n = st.ms_entries;
    if (txn != NULL)
        mdb_txn_abort(txn);
    mdb_env_close(env);
    return n;
}

static json_t *job_of(uint64_t ws, const char *path)
{
    return json_pack("{s:I, s:I, s:s, s:s, s:I}", "workspace", (json_int_t)ws, "capture",
                     (json_int_t)1, "source", "upload", "path", path, "bytes_total",
                     (json_int_t)1000);
}

static void test_jobs(void)
{
    json_t *j1 = job_of(1, "/x/1"), *j2 = job_of(1, "/x/2"), *got = NULL, *fields;
    uint64_t id1 = 0, id2 = 0;
    pid_t child;
    int n = -1, status;

    CHECK(ca_job_claim(portal, getpid(), &got) == CA_ENOTFOUND);
    CHECK(got == NULL);
    CHECK_EQ_U(ca_job_create(portal, j1, &id1), 0);
    CHECK_EQ_U(ca_job_create(portal, j2, &id2), 0);
    CHECK(id2 > id1);
    json_decref(j1);
    json_decref(j2);

    CHECK_EQ_U(ca_job_get(portal, id1, &got), 0);
    CHECK(strcmp(json_string_value(json_object_get(got, "state")), "queued") == 0);
    CHECK(strcmp(json_string_value(json_object_get(got, "kind")), "import") == 0);
    CHECK_EQ_U(json_integer_value(json_object_get(got, "bytes_total")), 1000);
    CHECK(json_is_null(json_object_get(got, "error")));
    json_decref(got);

    /* Oldest first. */
    CHECK_EQ_U(ca_job_claim(portal, getpid(), &got), 0);
    CHECK_EQ_U(json_integer_value(json_object_get(got, "id")), id1);
    CHECK(strcmp(json_string_value(json_object_get(got, "state")), "running") == 0);
    CHECK_EQ_U(json_integer_value(json_object_get(got, "worker_pid")), getpid());
    CHECK(json_is_integer(json_object_get(got, "started")));
    json_decref(got);

    /* The second job goes to a process that dies at once. */
    child = fork();
    if (child == 0)
        _exit(0);
    CHECK(child > 0);
    waitpid(child, &status, 0);
    CHECK_EQ_U(ca_job_claim(portal, child, &got), 0);
    CHECK_EQ_U(json_integer_value(json_object_get(got, "id")), id2);
    json_decref(got);
    CHECK(ca_job_claim(portal, getpid(), &got) == CA_ENOTFOUND);

    fields = json_pack("{s:I, s:I, s:I}", "bytes_done", (json_int_t)500, "packets_done",
                       (json_int_t)7, "id", (json_int_t)77);
    CHECK_EQ_U(ca_job_update(portal, id1, fields), 0);
    json_decref(fields);
    CHECK_EQ_U(ca_job_get(portal, id1, &got), 0);
    CHECK_EQ_U(json_integer_value(json_object_get(got, "bytes_done")), 500);
    CHECK_EQ_U(json_integer_value(json_object_get(got, "packets_done")), 7);
    CHECK_EQ_U(json_integer_value(json_object_get(got, "id")), id1);
    json_decref(got);
    fields = json_pack("{s:s}", "state", "done");
    CHECK_EQ_U(ca_job_update(portal, id1, fields), 0);
    CHECK(ca_job_update(portal, 9999, fields) == CA_ENOTFOUND);
    json_decref(fields);
    CHECK_EQ_U(ca_job_get(portal, id1, &got), 0);
    CHECK(json_is_integer(json_object_get(got, "finished")));
    json_decref(got);

    /* Only the job of the dead worker goes back to the queue. */
    CHECK_EQ_U(ca_job_requeue_orphans(portal, &n), 0);
    CHECK_EQ_U(n, 1);
    CHECK_EQ_U(ca_job_get(portal, id2, &got), 0);
    CHECK(strcmp(json_string_value(json_object_get(got, "state")), "queued") == 0);
    CHECK(json_is_null(json_object_get(got, "worker_pid")));
    json_decref(got);
    CHECK_EQ_U(ca_job_get(portal, id1, &got), 0);
    CHECK(strcmp(json_string_value(json_object_get(got, "state")), "done") == 0);
    json_decref(got);
    CHECK_EQ_U(ca_job_claim(portal, getpid(), &got), 0);
    CHECK_EQ_U(json_integer_value(json_object_get(got, "id")), id2);
    json_decref(got);
    CHECK_EQ_U(ca_job_requeue_orphans(portal, &n), 0);
    CHECK_EQ_U(n, 0);
    CHECK(ca_job_get(portal, 9999, &got) == CA_ENOTFOUND);

    /* A worker giving a job back (shutdown) makes it claimable again. */
    fields = json_pack("{s:s, s:n}", "state", "queued", "started");
    CHECK_EQ_U(ca_job_update(portal, id2, fields), 0);
    json_decref(fields);
    CHECK_EQ_U(ca_job_claim(portal, getpid(), &got), 0);
    CHECK_EQ_U(json_integer_value(json_object_get(got, "id")), id2);
    json_decref(got);
    CHECK(ca_job_claim(portal, getpid(), &got) == CA_ENOTFOUND);
}

/* Four processes claim 40 jobs at once: each job goes to exactly one. */
static void test_jobs_concurrent(void)
{
    enum { JOBS = 40, WORKERS = 4 };
    int fds[2], status, count[JOBS + 1] = {0};
    uint64_t first = 0, id, got;
    pid_t kids[WORKERS];
    json_t *j;

    for (int i = 0; i < JOBS; i++) {
        j = job_of(1, "/x/c");
        CHECK_EQ_U(ca_job_create(portal, j, &id), 0);
        json_decref(j);
        if (i == 0)
            first = id;
    }
    CHECK(pipe(fds) == 0);
    fflush(stdout);
    for (int w = 0; w < WORKERS; w++) {
        kids[w] = fork();
        if (kids[w] == 0) {
            /* A process of its own: its own handle, opened after fork. */
            struct ca_portal *mine = NULL;
            json_t *job = NULL;

            close(fds[0]);
            if (ca_portal_open(datadir, &mine, NULL, 0) != 0)
                _exit(2);
            while (ca_job_claim(mine, getpid(), &job) == 0) {
                got = (uint64_t)json_integer_value(json_object_get(job, "id"));
                json_decref(job);
                if (write(fds[1], &got, sizeof(got)) != sizeof(got))
                    _exit(3);
            }
            ca_portal_close(mine);
            _exit(0);
        }
    }
    close(fds[1]);
    while (read(fds[0], &got, sizeof(got)) == sizeof(got))
        if (got >= first && got < first + JOBS)
            count[got - first]++;
    close(fds[0]);
    for (int w = 0; w < WORKERS; w++) {
        CHECK(waitpid(kids[w], &status, 0) == kids[w]);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    for (int i = 0; i < JOBS; i++)
        CHECK_EQ_U(count[i], 1);
    /* Their workers are gone: all 40 go back to the queue. */
    CHECK_EQ_U(ca_job_requeue_orphans(portal, &status), 0);
    CHECK_EQ_U(status, JOBS);
}

static void make_flows(struct ca_flow *f, size_t n, uint32_t tag)
{
    memset(f, 0, n * sizeof(*f));
    for (size_t i = 0; i < n; i++) {
        f[i].ip_version = 4;
        f[i].l4 = 6;
        f[i].cli_ip[0] = 10;
        f[i].cli_ip[3] = (uint8_t)i;
        f[i].srv_ip[0] = 192;
        f[i].srv_ip[1] = 168;
        f[i].cli_port = (uint16_t)(1024 + i);
        f[i].srv_port = 443;
        f[i].first_ns = 1700000000000000000LL + (int64_t)i;
        f[i].last_ns = f[i].first_ns + 1000;
        f[i].pkts[0] = tag;
        f[i].pkts[1] = i;
        f[i].bytes[0] = 100 * i;
        snprintf(f[i].l7_name, sizeof(f[i].l7_name), "TLS");
        snprintf(f[i].host, sizeof(f[i].host), "host%u-%zu.example", tag, i);
    }
}

static uint64_t page_ids(struct ca_ws *w, uint64_t after, size_t limit, uint64_t *ids, size_t *n,
                         uint64_t *total)
{
    json_t *arr = NULL, *o;
    uint64_t next = 99;
    size_t i;

    *n = 0;
    if (ca_ws_flows_page(w, after, limit, &arr, &next, total) != 0)
        return 12345;
    json_array_foreach(arr, i, o) ids[(*n)++] =
        (uint64_t)json_integer_value(json_object_get(o, "id"));
    json_decref(arr);
    return next;
}

static void test_captures_flows(void)
{
    char err[256], dir[4096], file[4200];
    struct ca_flow f[10], g;
    struct ca_ws *w = NULL, *w2 = NULL;
    uint64_t wsid = 0, ids[32], total = 0, next;
    uint32_t c1 = 0, c2 = 0;
    json_t *meta, *cap = NULL, *list = NULL, *rep, *fields;
    size_t n = 0;
    FILE *fp;

    CHECK_EQ_U(ca_workspace_create(portal, 5, "flows", NULL, &wsid, err, sizeof(err)), 0);
    CHECK(ca_ws_open(datadir, 424242, &w, err, sizeof(err)) == CA_ENOTFOUND);
    CHECK_EQ_U(ca_ws_open(datadir, wsid, &w, err, sizeof(err)), 0);
    /* A second open in the same process shares the handle. */
    CHECK_EQ_U(ca_ws_open(datadir, wsid, &w2, err, sizeof(err)), 0);
    CHECK(w == w2);
    ca_ws_close(w2);

    CHECK_EQ_U(ca_ws_dir(datadir, wsid, dir, sizeof(dir)), 0);
    snprintf(file, sizeof(file), "%s/captures/1.cap", dir);
    fp = fopen(file, "w");
    CHECK(fp != NULL);
    if (fp != NULL) {
        fputs("not really a pcap", fp);
        fclose(fp);
    }
    meta = json_pack("{s:s, s:s, s:I, s:s}", "name", "a.pcap", "source", "upload", "size",
                     (json_int_t)17, "path", file);
    CHECK_EQ_U(ca_ws_capture_add(w, meta, &c1), 0);
    json_decref(meta);
    meta = json_pack("{s:s, s:I}", "name", "b.pcap", "size", (json_int_t)100);
    CHECK_EQ_U(ca_ws_capture_add(w, meta, &c2), 0);
    json_decref(meta);
    CHECK_EQ_U(c1, 1);
    CHECK_EQ_U(c2, 2);

    CHECK_EQ_U(ca_ws_capture_get(w, c1, &cap), 0);
    CHECK(strcmp(json_string_value(json_object_get(cap, "state")), "queued") == 0);
    CHECK(strcmp(json_string_value(json_object_get(cap, "name")), "a.pcap") == 0);
    json_decref(cap);
    fields = json_pack("{s:s}", "state", "importing");
    CHECK_EQ_U(ca_ws_capture_update(w, c1, fields), 0);
    CHECK_EQ_U(ca_ws_capture_update(w, c2, fields), 0);
    CHECK(ca_ws_capture_update(w, 77, fields) == CA_ENOTFOUND);
    json_decref(fields);
    CHECK_EQ_U(ca_ws_capture_list(w, &list), 0);
    CHECK_EQ_U(json_array_size(list), 2);
    CHECK(strcmp(json_string_value(json_object_get(json_array_get(list, 0), "state")),
                 "importing") == 0);
    json_decref(list);
    cap = NULL;
    CHECK_EQ_U(ca_workspace_get(portal, wsid, &cap), 0);
    CHECK_EQ_U(json_integer_value(json_object_get(cap, "captures")), 2);
    CHECK_EQ_U(json_integer_value(json_object_get(cap, "bytes")), 117);
    json_decref(cap);

    /* Two batches for capture 1: seq continues from 4. */
    make_flows(f, 10, 1);
    CHECK_EQ_U(ca_ws_capture_purge_flows(w, c1), 0);
    CHECK_EQ_U(ca_ws_flows_put(w, c1, f, 3), 0);
    CHECK_EQ_U(ca_ws_flows_put(w, c1, f + 3, 4), 0);
    /* Invisible until finished. */
    next = page_ids(w, 0, 100, ids, &n, &total);
    CHECK_EQ_U(n, 0);
    CHECK_EQ_U(next, 0);
    CHECK_EQ_U(total, 0);
    CHECK(ca_ws_flow_get(w, (uint64_t)c1 << 32 | 1, &g) == CA_ENOTFOUND);

    /* Capture 2 gets a leftover batch from a "crashed" attempt, then a purge. */
    make_flows(f, 10, 2);
    CHECK_EQ_U(ca_ws_flows_put(w, c2, f, 10), 0);
    CHECK_EQ_U(ca_ws_capture_purge_flows(w, c2), 0);
    CHECK_EQ_U(ca_ws_flows_put(w, c2, f, 2), 0);

    rep = json_pack("{s:I}", "packets", (json_int_t)42);
    CHECK_EQ_U(ca_ws_capture_finish(w, c1, rep), 0);
    json_decref(rep);
    CHECK_EQ_U(ca_ws_capture_get(w, c1, &cap), 0);
    CHECK(strcmp(json_string_value(json_object_get(cap, "state")), "ready") == 0);
    CHECK_EQ_U(json_integer_value(json_object_get(cap, "flows")), 7);
    CHECK_EQ_U(json_integer_value(json_object_get(json_object_get(cap, "report"), "packets")), 42);
    json_decref(cap);

    next = page_ids(w, 0, 100, ids, &n, &total);
    CHECK_EQ_U(n, 7);
    CHECK_EQ_U(total, 7);
    CHECK_EQ_U(next, 0);
    for (size_t i = 0; i < n && i < 7; i++)
        CHECK_EQ_U(ids[i], (uint64_t)c1 << 32 | (i + 1));

    CHECK_EQ_U(ca_ws_flow_get(w, (uint64_t)c1 << 32 | 5, &g), 0);
    CHECK_EQ_U(g.id, (uint64_t)c1 << 32 | 5);
    CHECK_EQ_U(g.capture_id, c1);
    CHECK_EQ_U(g.pkts[0], 1);
    CHECK_EQ_U(g.pkts[1], 4); /* the 5th flow is f[4] of the first set */
    CHECK(strcmp(g.host, "host1-4.example") == 0);
    CHECK(ca_ws_flow_get(w, (uint64_t)c1 << 32 | 8, &g) == CA_ENOTFOUND);

    CHECK_EQ_U(ca_ws_capture_finish(w, c2, NULL), 0);
    CHECK_EQ_U(ca_ws_capture_get(w, c2, &cap), 0);
    CHECK_EQ_U(json_integer_value(json_object_get(cap, "flows")), 2);
    CHECK(json_is_null(json_object_get(cap, "report")));
    json_decref(cap);

    /* Paging across both captures: 9 flows, pages of 4. */
    next = page_ids(w, 0, 4, ids, &n, &total);
    CHECK_EQ_U(n, 4);
    CHECK_EQ_U(total, 9);
    CHECK_EQ_U(next, (uint64_t)c1 << 32 | 4);
    next = page_ids(w, next, 4, ids, &n, NULL);
    CHECK_EQ_U(n, 4);
    CHECK_EQ_U(ids[3], (uint64_t)c2 << 32 | 1);
    CHECK_EQ_U(next, (uint64_t)c2 << 32 | 1);
    next = page_ids(w, next, 4, ids, &n, NULL);
    CHECK_EQ_U(n, 1);
    CHECK_EQ_U(ids[0], (uint64_t)c2 << 32 | 2);
    CHECK_EQ_U(next, 0);
    /* Exactly-full last page has no successor. */
    next = page_ids(w, (uint64_t)c1 << 32 | 7, 2, ids, &n, NULL);
    CHECK_EQ_U(n, 2);
    CHECK_EQ_U(next, 0);

    /* A capture going back to importing hides its flows again. */
    fields = json_pack("{s:s}", "state", "importing");
    CHECK_EQ_U(ca_ws_capture_update(w, c1, fields), 0);
    json_decref(fields);
    next = page_ids(w, 0, 100, ids, &n, &total);
    CHECK_EQ_U(n, 2);
    CHECK_EQ_U(total, 2);
    CHECK_EQ_U(ids[0], (uint64_t)c2 << 32 | 1);
    CHECK_EQ_U(ca_ws_capture_finish(w, c1, NULL), 0);

    /* Purging capture 1 leaves capture 2 alone and restarts the numbering. */
    CHECK_EQ_U(ca_ws_capture_purge_flows(w, c1), 0);
    next = page_ids(w, 0, 100, ids, &n, &total);
    CHECK_EQ_U(n, 2);
    CHECK_EQ_U(total, 2);
    CHECK_EQ_U(ca_ws_flows_put(w, c1, f, 1), 0);
    CHECK_EQ_U(ca_ws_capture_finish(w, c1, NULL), 0);
    next = page_ids(w, 0, 100, ids, &n, &total);
    CHECK_EQ_U(n, 3);
    CHECK_EQ_U(total, 3);
    CHECK_EQ_U(ids[0], (uint64_t)c1 << 32 | 1);

    /* Delete removes record, flows and file. */
    CHECK(exists(file));
    CHECK_EQ_U(ca_ws_capture_delete(w, c1), 0);
    CHECK(!exists(file));
    CHECK(ca_ws_capture_get(w, c1, &cap) == CA_ENOTFOUND);
    CHECK(ca_ws_capture_delete(w, c1) == CA_ENOTFOUND);
    next = page_ids(w, 0, 100, ids, &n, &total);
    CHECK_EQ_U(n, 2);
    CHECK_EQ_U(total, 2);
    CHECK(ca_ws_flows_page(w, 0, 0, &list, &next, NULL) == CA_EINVAL);

    ca_ws_close(w);
    ca_ws_close(NULL);
}

/* Runs with CAPATLAS_STORE_MAPSIZE tiny, so the batches overflow the map. */
static void test_map_growth(void)
{
    enum { BATCH = 1000, BATCHES = 12 };
    char err[256], dir[4096], path[4200];
    struct stat st;
    struct ca_ws *w = NULL;
    struct ca_flow *f = calloc(BATCH, sizeof(*f));
    uint64_t wsid = 0, total = 0, next = 0, seen = 0, expect;
    uint32_t c = 0;
    json_t *arr = NULL, *meta = json_object();

    CHECK(f != NULL);
    if (f == NULL)
        return;
    CHECK_EQ_U(ca_workspace_create(portal, 5, "big", NULL, &wsid, err, sizeof(err)), 0);
    CHECK_EQ_U(ca_ws_open(datadir, wsid, &w, err, sizeof(err)), 0);
    CHECK_EQ_U(ca_ws_capture_add(w, meta, &c), 0);
    json_decref(meta);
    make_flows(f, BATCH, 3);
    for (int b = 0; b < BATCHES; b++)
        CHECK_EQ_U(ca_ws_flows_put(w, c, f, BATCH), 0);
    CHECK_EQ_U(ca_ws_capture_finish(w, c, NULL), 0);
    expect = (uint64_t)c << 32 | 1;
    do {
        size_t i;
        json_t *o;

        CHECK_EQ_U(ca_ws_flows_page(w, next, 1000, &arr, &next, &total), 0);
        json_array_foreach(arr, i, o)
        {
            if ((uint64_t)json_integer_value(json_object_get(o, "id")) != expect)
                unit_failed_checks++;
            expect++;
            seen++;
        }
        json_decref(arr);
        arr = NULL;
    } while (next != 0);
    CHECK_EQ_U(seen, BATCH * BATCHES);
    CHECK_EQ_U(total, BATCH * BATCHES);
    /* The data outgrew the initial 256 KiB map, so the map must have grown. */
    CHECK_EQ_U(ca_ws_dir(datadir, wsid, dir, sizeof(dir)), 0);
    snprintf(path, sizeof(path), "%s/db/data.mdb", dir);
    CHECK(stat(path, &st) == 0 && st.st_size > 262144);

    /* Purge and delete work in chunks: more flows than one chunk. */
    CHECK_EQ_U(ca_ws_capture_purge_flows(w, c), 0);
    CHECK_EQ_U(ca_ws_flows_page(w, 0, 10, &arr, &next, &total), 0);
    CHECK_EQ_U(json_array_size(arr), 0);
    CHECK_EQ_U(total, 0);
    json_decref(arr);
    for (int b = 0; b < BATCHES; b++)
        CHECK_EQ_U(ca_ws_flows_put(w, c, f, BATCH), 0);
    CHECK_EQ_U(ca_ws_capture_finish(w, c, NULL), 0);
    CHECK_EQ_U(ca_ws_flows_page(w, 0, 1, &arr, &next, &total), 0);
    CHECK_EQ_U(total, BATCH * BATCHES);
    CHECK_EQ_U(json_integer_value(json_object_get(json_array_get(arr, 0), "id")),
               (uint64_t)c << 32 | 1);
    json_decref(arr);
    CHECK_EQ_U(ca_ws_capture_delete(w, c), 0);
    ca_ws_close(w);
    CHECK_EQ_U(count_entries(path, "flows"), 0);
    CHECK_EQ_U(count_entries(path, "capseq"), 0);
    free(f);
}

static int rec_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 72);
}

/* Table kind k of captures a and b hold the same records (in any order for
 * the group tables: 72-byte records; byte for byte for the others). */
static int same_table(struct ca_ws_snap *s, uint32_t a, uint32_t b, unsigned k)
{
    const void *da = NULL, *db = NULL;
    size_t la = 0, lb = 0;
    int ra = ca_ws_snap_capagg(s, a, k, &da, &la), rb = ca_ws_snap_capagg(s, b, k, &db, &lb);
    char *ca, *cb;
    int same;

    if (ra != rb || la != lb)
        return 0;
    if (ra != 0 || la == 0)
        return 1;
    if (k >= 100 && k != 100)
        return memcmp(da, db, la) == 0;
    ca = malloc(la);
    cb = malloc(lb);
    if (ca == NULL || cb == NULL || la % 72 != 0) {
        free(ca);
        free(cb);
        return 0;
    }
    memcpy(ca, da, la);
    memcpy(cb, db, lb);
    qsort(ca, la / 72, 72, rec_cmp);
    qsort(cb, lb / 72, 72, rec_cmp);
    same = memcmp(ca, cb, la) == 0;
    free(ca);
    free(cb);
    return same;
}

/*
 * The tables a capture gets from the import's builder (fed batch by batch)
 * equal those built from its hot chunks at the finish (the path of an
 * import finished by another handle): one capture each way, same flows.
 */
static void test_tables_incremental(void)
{
    enum { N = 700, PER = 128 };
    char err[256];
    struct ca_ws *w = NULL;
    struct ca_ws_snap *s = NULL;
    struct ca_flow *f = calloc(N, sizeof(*f));
    uint64_t wsid = 0;
    uint32_t c1 = 0, c2 = 0;
    json_t *meta = json_object(), *r1 = NULL, *r2 = NULL;
    size_t differ = 0;

    CHECK(f != NULL && meta != NULL);
    if (f == NULL || meta == NULL) {
        free(f);
        json_decref(meta);
        return;
    }
    make_flows(f, N, 9);
    for (size_t i = 0; i < N; i++) {
        f[i].cli_ip[2] = (uint8_t)(i % 7); /* addresses shared by several flows */
        f[i].srv_ip[3] = (uint8_t)(i % 13);
        f[i].srv_port = (uint16_t)(i % 3 == 0 ? 53 : 443);
        f[i].bytes[1] = 7 * i % 1000;
        f[i].pkts[0] = i % 5;
        f[i].first_ns += (int64_t)(i % 11) * 60000000000LL; /* several minutes */
        f[i].last_ns = f[i].first_ns + (int64_t)(i % 3) * 1000000000LL;
        if (i % 50 == 0) { /* an address talking to itself; one port both sides */
            memcpy(f[i].srv_ip, f[i].cli_ip, 16);
            f[i].srv_port = f[i].cli_port;
        }
        if (i % 9 == 0) {
            f[i].ip_version = 6;
            f[i].cli_ip[15] = 1;
        }
        snprintf(f[i].l7_name, sizeof(f[i].l7_name), "%s", i % 3 == 0 ? "DNS" : "TLS.Google");
        memcpy(f[i].srv_cc, i % 2 ? "DE" : "FR", 2);
        f[i].srv_asn = 15169 + (uint32_t)(i % 4);
    }
    CHECK_EQ_U(ca_workspace_create(portal, 5, "tables", NULL, &wsid, err, sizeof(err)), 0);
    CHECK_EQ_U(ca_ws_open(datadir, wsid, &w, err, sizeof(err)), 0);
    CHECK_EQ_U(ca_ws_capture_add(w, meta, &c1), 0);
    CHECK_EQ_U(ca_ws_capture_add(w, meta, &c2), 0);
    json_decref(meta);
    for (size_t i = 0; i < N; i += PER)
        CHECK_EQ_U(ca_ws_flows_put(w, c1, f + i, N - i < PER ? N - i : PER), 0);
    CHECK_EQ_U(ca_ws_capture_finish(w, c1, NULL), 0);
    for (size_t i = 0; i < N; i += PER)
        CHECK_EQ_U(ca_ws_flows_put(w, c2, f + i, N - i < PER ? N - i : PER), 0);
    /* another handle finishes: no builder there */
    ca_ws_close(w);
    w = NULL;
    CHECK_EQ_U(ca_ws_open(datadir, wsid, &w, err, sizeof(err)), 0);
    CHECK_EQ_U(ca_ws_capture_finish(w, c2, NULL), 0);
    CHECK_EQ_U(ca_ws_snap_open(w, &s), 0);
    for (unsigned k = 0; s != NULL && k < 110; k++)
        if (!same_table(s, c1, c2, k)) {
            printf("# table kind %u differs\n", k);
            differ++;
        }
    CHECK_EQ_U(differ, 0);
    /* a table that must exist (l4), and the address lists */
    {
        const void *d = NULL;
        size_t len = 0;
        const void *q1 = NULL, *q2 = NULL;
        size_t n1 = 0, n2 = 0;

        CHECK_EQ_U(ca_ws_snap_capagg(s, c1, 9, &d, &len), 0);
        CHECK(len > 0);
        for (size_t i = 0; i < N; i += 37) {
            CHECK_EQ_U(ca_ws_snap_addr_seqs(s, c1, 0, f[i].ip_version, f[i].srv_ip, &q1, &n1), 0);
            CHECK_EQ_U(ca_ws_snap_addr_seqs(s, c2, 0, f[i].ip_version, f[i].srv_ip, &q2, &n2), 0);
            CHECK(n1 > 0 && n1 == n2 && memcmp(q1, q2, n1 * sizeof(uint32_t)) == 0);
        }
    }
    ca_ws_snap_close(s);
    CHECK_EQ_U(ca_ws_capture_get(w, c1, &r1), 0);
    CHECK_EQ_U(ca_ws_capture_get(w, c2, &r2), 0);
    CHECK(r1 != NULL && r2 != NULL &&
          json_equal(json_object_get(r1, "first_ns"), json_object_get(r2, "first_ns")) &&
          json_equal(json_object_get(r1, "last_ns"), json_object_get(r2, "last_ns")) &&
          json_integer_value(json_object_get(r1, "flows")) == N);
    json_decref(r1);
    json_decref(r2);
    ca_ws_close(w);
    free(f);
}

/*
 * Batches are committed a few at a time: what is still buffered is
 * committed when the handle closes, dropped by a purge of its capture,
 * and committed before another capture's batch or a finish.
 */
static void test_buffered_batches(void)
{
    char err[256];
    struct ca_flow f[10], g;
    struct ca_ws *w = NULL;
    uint64_t wsid = 0;
    uint32_t c1 = 0, c2 = 0;
    json_t *meta, *cap = NULL;

    CHECK_EQ_U(ca_workspace_create(portal, 5, "buffered", NULL, &wsid, err, sizeof(err)), 0);
    CHECK_EQ_U(ca_ws_open(datadir, wsid, &w, err, sizeof(err)), 0);
    meta = json_pack("{s:s}", "name", "a.pcap");
    CHECK_EQ_U(ca_ws_capture_add(w, meta, &c1), 0);
    CHECK_EQ_U(ca_ws_capture_add(w, meta, &c2), 0);
    json_decref(meta);
    make_flows(f, 10, 1);
    for (int b = 0; b < 3; b++)
        CHECK_EQ_U(ca_ws_flows_put(w, c1, f, 10), 0);
    ca_ws_close(w); /* the last reference: the 30 flows are committed */
    w = NULL;
    CHECK_EQ_U(ca_ws_open(datadir, wsid, &w, err, sizeof(err)), 0);
    make_flows(f, 10, 2);
    CHECK_EQ_U(ca_ws_flows_put(w, c1, f, 5), 0); /* seqs 31..35 */
    CHECK_EQ_U(ca_ws_flows_put(w, c2, f, 10), 0);
    CHECK_EQ_U(ca_ws_capture_purge_flows(w, c2), 0); /* drops c2's, not c1's */
    CHECK_EQ_U(ca_ws_capture_finish(w, c1, NULL), 0);
    CHECK_EQ_U(ca_ws_capture_finish(w, c2, NULL), 0);
    CHECK_EQ_U(ca_ws_capture_get(w, c1, &cap), 0);
    CHECK_EQ_U(json_integer_value(json_object_get(cap, "flows")), 35);
    json_decref(cap);
    CHECK_EQ_U(ca_ws_capture_get(w, c2, &cap), 0);
    CHECK_EQ_U(json_integer_value(json_object_get(cap, "flows")), 0);
    json_decref(cap);
    CHECK_EQ_U(ca_ws_flow_get(w, (uint64_t)c1 << 32 | 30, &g), 0);
    CHECK_EQ_U(g.id, (uint64_t)c1 << 32 | 30);
    CHECK_EQ_U(g.pkts[0], 1);
    CHECK_EQ_U(g.pkts[1], 9);
    CHECK_EQ_U(ca_ws_flow_get(w, (uint64_t)c1 << 32 | 33, &g), 0);
    CHECK_EQ_U(g.id, (uint64_t)c1 << 32 | 33);
    CHECK_EQ_U(g.capture_id, c1);
    CHECK_EQ_U(g.pkts[0], 2);
    CHECK_EQ_U(g.pkts[1], 2);
    CHECK(strcmp(g.host, "host2-2.example") == 0);
    CHECK(ca_ws_flow_get(w, (uint64_t)c1 << 32 | 36, &g) == CA_ENOTFOUND);
    ca_ws_close(w);
}

/*
 * Addresses given ids by concurrent imports into one workspace, and by one
 * that died, each keep a single id: the ids an import stages (addrnew)
 * are found by the others before they move into the address table.
 */
#define AP_POOL 1500 /* addresses the imports share */
#define AP_BATCH 64
#define AP_ROUNDS 6

static void ap_flows(struct ca_flow *f, size_t n, unsigned *seed, uint8_t own)
{
    make_flows(f, n, own);
    for (size_t i = 0; i < n; i++) {
        unsigned a = (unsigned)rand_r(seed) % AP_POOL, b = (unsigned)rand_r(seed) % AP_POOL;

        f[i].cli_ip[1] = (uint8_t)(a >> 8);
        f[i].cli_ip[2] = (uint8_t)a;
        f[i].cli_ip[3] = 1;
        if (i % 5 == 0) { /* one of this import's own */
            f[i].cli_ip[1] = 100 + own;
            f[i].cli_ip[2] = (uint8_t)(*seed >> 8);
            f[i].cli_ip[3] = (uint8_t)*seed;
        }
        memset(f[i].srv_ip, 0, 16);
        if (b % 4 == 0) {
            f[i].ip_version = 6; /* both sides IPv6 */
            memcpy(f[i].cli_ip, (const uint8_t[]){0x20, 0x01, 0x0d, 0xb8}, 4);
            f[i].srv_ip[0] = 0x20;
            f[i].srv_ip[14] = (uint8_t)(b >> 8);
            f[i].srv_ip[15] = (uint8_t)b;
        } else {
            f[i].srv_ip[0] = 172;
            f[i].srv_ip[2] = (uint8_t)(b >> 8);
            f[i].srv_ip[3] = (uint8_t)b;
        }
    }
}

/* Child: imports `batches` batches per round into a new capture, taking
 * turns with the other child through the pipes (turn_in < 0: goes first),
 * and finishes unless told to die half-way. */
static void ap_child(uint64_t wsid, unsigned seed, uint8_t own, int turn_in, int turn_out,
                     int finish)
{
    struct ca_flow f[AP_BATCH];
    struct ca_ws *w = NULL;
    json_t *meta = json_object();
    uint32_t cap = 0;
    char c = 0;

    ca_ws_set_part_flows(2000); /* parts, so the map is emptied between them */
    ca_ws_set_dirty_leaves(6);  /* and staged addresses move a few at a time */
    if (meta == NULL || ca_ws_open(datadir, wsid, &w, NULL, 0) != 0 ||
        ca_ws_capture_add(w, meta, &cap) != 0)
        _exit(2);
    for (int r = 0; r < AP_ROUNDS; r++) {
        if (turn_in >= 0 && read(turn_in, &c, 1) != 1)
            _exit(3);
        for (int b = 0; b < 16; b++) { /* 16 batches: a commit */
            ap_flows(f, AP_BATCH, &seed, own);
            if (ca_ws_flows_put(w, cap, f, AP_BATCH) != 0)
                _exit(4);
        }
        if (!finish)
            _exit(0); /* dies with what it committed, no finish */
        if (turn_out >= 0 && write(turn_out, &c, 1) != 1)
            _exit(5);
    }
    if (ca_ws_capture_finish(w, cap, NULL) != 0)
        _exit(6);
    ca_ws_close(w);
    _exit(0);
}

struct ap_map {
    uint8_t key[AP_POOL * 8][17];
    uint32_t aid[AP_POOL * 8];
    size_t n, bad;
};

/* Records key -> aid; counts a key with two ids or an id with two keys. */
static void ap_note(struct ap_map *m, const uint8_t key[17], uint32_t aid)
{
    for (size_t i = 0; i < m->n; i++) {
        int same_key = memcmp(m->key[i], key, 17) == 0;
        if (same_key != (m->aid[i] == aid)) {
            m->bad++;
            return;
        }
        if (same_key)
            return;
    }
    if (m->n < AP_POOL * 8) {
        memcpy(m->key[m->n], key, 17);
        m->aid[m->n++] = aid;
    }
}

static int ap_hot(void *arg, uint32_t cap, uint32_t seq0, const struct ca_hot *h, size_t n)
{
    uint8_t key[17];

    for (size_t i = 0; i < n; i++) {
        key[0] = h[i].ip_version;
        memcpy(key + 1, h[i].src, 16);
        ap_note(arg, key, h[i].src_aid);
        memcpy(key + 1, h[i].dst, 16);
        ap_note(arg, key, h[i].dst_aid);
    }
    return 0;
}

static uint32_t ap_be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* The address table (db NULL) or addrnew of workspace wsid into m;
 * returns entries read, (size_t)-1 on failure. */
static size_t ap_read(uint64_t wsid, const char *db, struct ap_map *m)
{
    char dir[4200];
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_dbi dbi;
    MDB_val k, v;
    size_t n = (size_t)-1;
    int rc;

    if (ca_ws_dir(datadir, wsid, dir, sizeof(dir) - 4) != 0)
        return n;
    strcat(dir, "/db");
    if (mdb_env_create(&env) == 0 && mdb_env_set_maxdbs(env, 16) == 0 &&
        mdb_env_open(env, dir, MDB_RDONLY, 0640) == 0 &&
        mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) == 0 && mdb_dbi_open(txn, db, 0, &dbi) == 0 &&
        mdb_cursor_open(txn, dbi, &cur) == 0) {
        n = 0;
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (db == NULL && k.mv_size == 17 && v.mv_size == 4) /* not a database's record */
                ap_note(m, k.mv_data, ap_be32(v.mv_data));
            else if (db != NULL && k.mv_size == 4 && v.mv_size == 17)
                ap_note(m, v.mv_data, ap_be32(k.mv_data));
            else
                continue;
            n++;
        }
    }
    if (cur != NULL)
        mdb_cursor_close(cur);
    if (txn != NULL)
        mdb_txn_abort(txn);
    mdb_env_close(env);
    return n;
}

static int ap_wait(pid_t kid)
{
    int status;

    return waitpid(kid, &status, 0) == kid && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_addresses_staged(void)
{
    char err[256];
    struct ap_map *m = calloc(1, sizeof(*m));
    struct ca_ws *w = NULL;
    struct ca_ws_snap *s = NULL;
    uint64_t wsid = 0;
    int ab[2], ba[2];
    size_t left, table;
    pid_t kid, a, b;

    CHECK(m != NULL);
    if (m == NULL)
        return;
    /* made with its environment; this process does not open it before forking */
    CHECK_EQ_U(ca_workspace_create(portal, 5, "addresses", NULL, &wsid, err, sizeof(err)), 0);
    fflush(stdout);
    /* an import that dies after one commit: its addresses stay staged */
    if ((kid = fork()) == 0)
        ap_child(wsid, 7, 0, -1, -1, 0);
    CHECK_EQ_U(ap_wait(kid), 0);
    left = ap_read(wsid, "addrnew", m);
    CHECK(left > 100 && left != (size_t)-1);
    /* two imports at once, taking turns commit by commit */
    CHECK(pipe(ab) == 0 && pipe(ba) == 0);
    if ((a = fork()) == 0)
        ap_child(wsid, 7, 1, -1, ab[1], 1); /* the same addresses as the dead one, first */
    if ((b = fork()) == 0)
        ap_child(wsid, 8, 2, ab[0], ba[1], 1);
    close(ba[0]);
    close(ab[0]);
    close(ab[1]);
    close(ba[1]);
    CHECK_EQ_U(ap_wait(a), 0);
    CHECK_EQ_U(ap_wait(b), 0);
    /* the dead import's ids kept; every id in the table; none left staged */
    table = ap_read(wsid, NULL, m);
    CHECK(table >= left && table != (size_t)-1);
    CHECK_EQ_U(ap_read(wsid, "addrnew", m), 0);
    CHECK_EQ_U(m->n, table);
    /* every flow's addresses carry the table's ids */
    CHECK_EQ_U(ca_ws_open(datadir, wsid, &w, err, sizeof(err)), 0);
    CHECK_EQ_U(ca_ws_snap_open(w, &s), 0);
    CHECK_EQ_U(ca_ws_snap_scan(s, 0, 0, ap_hot, m), 0);
    ca_ws_snap_close(s);
    ca_ws_close(w);
    CHECK_EQ_U(m->n, table);
    CHECK_EQ_U(m->bad, 0);
    free(m);
}

static void test_reopen(void)
{
    struct ca_portal *other = NULL;
    char err[256];
    uint64_t id = 0;

    /* Everything survives closing and reopening the portal. */
    ca_portal_close(portal);
    portal = NULL;
    CHECK_EQ_U(ca_portal_open(datadir, &portal, err, sizeof(err)), 0);
    CHECK_EQ_U(ca_user_verify(portal, "alice", "alice-password", &id), 0);
    CHECK(ca_portal_open("", &other, err, sizeof(err)) == CA_EINVAL);
    CHECK(other == NULL);
}

/* Issue 5: accounts, lockout, tokens, sharing, EOL, audit. */
static void test_portal_accounts(void)
{
    char token[CA_TOKEN_LEN + 1], err[256], stok[65], scsrf[65];
    uint64_t a = 0, b = 0, id = 0, ws = 0, used = 1, next = 1;
    json_t *rec = NULL, *list = NULL, *w = NULL, *f;
    int64_t retry = 0;
    int ro = -1, n = -1;

    CHECK_EQ_U(ca_user_create(portal, "acct-a", "acct-a-password", 0, &a, err, sizeof(err)), 0);
    CHECK_EQ_U(ca_user_create(portal, "acct-b", "acct-b-password", 0, &b, err, sizeof(err)), 0);
    CHECK_EQ_U(ca_user_find(portal, "acct-b", &id), 0);
    CHECK_EQ_U(id, b);
    CHECK(ca_user_find(portal, "acct-nobody", &id) == CA_ENOTFOUND);

    /* Lockout: 2 failures with CAPATLAS_LOGIN_MAX_FAILS=2 lock; success clears. */
    setenv("CAPATLAS_LOGIN_MAX_FAILS", "2", 1);
    setenv("CAPATLAS_LOGIN_LOCK_SECONDS", "100", 1);
    CHECK_EQ_U(ca_login_check(portal, "acct-a", &retry), 0);
    CHECK_EQ_U(ca_login_record(portal, "acct-a", 1), 0);
    CHECK_EQ_U(ca_login_check(portal, "acct-a", &retry), 0);
    CHECK_EQ_U(ca_login_record(portal, "acct-a", 1), 0);
    CHECK(ca_login_check(portal, "acct-a", &retry) == CA_EBUSY);
    CHECK(retry > 90 && retry <= 100);
    CHECK_EQ_U(ca_login_record(portal, "acct-a", 1), 0); /* back-off doubles */
    CHECK(ca_login_check(portal, "acct-a", &retry) == CA_EBUSY);
    CHECK(retry > 190 && retry <= 200);
    CHECK_EQ_U(ca_login_record(portal, "ghost", 1), 0);
    CHECK_EQ_U(ca_login_record(portal, "ghost", 1), 0);
    CHECK(ca_login_check(portal, "ghost", &retry) == CA_EBUSY);
    CHECK_EQ_U(ca_login_record(portal, "acct-a", 0), 0);
    CHECK_EQ_U(ca_login_check(portal, "acct-a", &retry), 0);
    unsetenv("CAPATLAS_LOGIN_MAX_FAILS");
    unsetenv("CAPATLAS_LOGIN_LOCK_SECONDS");

    /* Sessions: listed with a public id, revoked one by one or all but one. */
    CHECK_EQ_U(ca_session_create(portal, a, "10.0.0.1", stok, scsrf), 0);
    CHECK_EQ_U(ca_session_list(portal, a, stok, &list), 0);
    CHECK_EQ_U(json_array_size(list), 1);
    CHECK(json_is_true(json_object_get(json_array_get(list, 0), "current")));
    id = (uint64_t)json_integer_value(json_object_get(json_array_get(list, 0), "id"));
    CHECK(json_object_get(json_array_get(list, 0), "csrf") == NULL);
    json_decref(list);
    CHECK(ca_session_revoke(portal, b, id) == CA_ENOTFOUND); /* not b's */
    CHECK_EQ_U(ca_session_revoke(portal, a, id), 0);
    CHECK(ca_session_lookup(portal, stok, NULL, NULL) == CA_EAUTH);

    /* Tokens: digest only, read-only flag, owner-only revocation, expiry. */
    CHECK_EQ_U(ca_token_create(portal, a, "ci", 1, 0, token, &rec, err, sizeof(err)), 0);
    CHECK(strncmp(token, "cat_", 4) == 0 && strlen(token) == CA_TOKEN_LEN);
    CHECK(json_object_get(rec, "user") == NULL);
    id = (uint64_t)json_integer_value(json_object_get(rec, "id"));
    json_decref(rec);
    CHECK_EQ_U(ca_token_lookup(portal, token, &used, &ro), 0);
    CHECK_EQ_U(used, a);
    CHECK_EQ_U(ro, 1);
    CHECK_EQ_U(ca_token_list(portal, a, &list), 0);
    CHECK_EQ_U(json_array_size(list), 1);
    json_decref(list);
    CHECK(ca_token_revoke(portal, b, id) == CA_ENOTFOUND);
    CHECK_EQ_U(ca_token_revoke(portal, a, id), 0);
    CHECK(ca_token_lookup(portal, token, &used, &ro) == CA_EAUTH);
    CHECK(ca_token_create(portal, a, "old", 0, 1000, token, NULL, err, sizeof(err)) == CA_EINVAL);

    /* Sharing and roles. */
    CHECK_EQ_U(ca_workspace_create(portal, a, "shared", "", &ws, err, sizeof(err)), 0);
    CHECK_EQ_U(ca_workspace_get(portal, ws, &w), 0);
    CHECK(strcmp(ca_workspace_role(w, a), "owner") == 0);
    CHECK(ca_workspace_role(w, b) == NULL);
    json_decref(w);
    CHECK(ca_workspace_share(portal, ws, b, "boss") == CA_EINVAL);
    CHECK_EQ_U(ca_workspace_share(portal, ws, b, "viewer"), 0);
    CHECK_EQ_U(ca_workspace_get(portal, ws, &w), 0);
    CHECK(strcmp(ca_workspace_role(w, b), "viewer") == 0);
    json_decref(w);
    CHECK_EQ_U(ca_workspace_list(portal, b, &list), 0);
    CHECK_EQ_U(json_array_size(list), 1);
    CHECK(strcmp(json_string_value(json_object_get(json_array_get(list, 0), "role")), "viewer") ==
          0);
    json_decref(list);
    CHECK_EQ_U(ca_workspace_share(portal, ws, b, NULL), 0);
    CHECK(ca_workspace_share(portal, ws, b, NULL) == CA_ENOTFOUND);

    /* Transfer through update; EOL validation and purge. */
    f = json_pack("{s:I}", "owner", (json_int_t)b);
    CHECK_EQ_U(ca_workspace_update(portal, ws, f, err, sizeof(err)), 0);
    json_decref(f);
    CHECK_EQ_U(ca_workspace_get(portal, ws, &w), 0);
    CHECK(strcmp(ca_workspace_role(w, b), "owner") == 0);
    CHECK(ca_workspace_role(w, a) == NULL);
    json_decref(w);
    f = json_pack("{s:I}", "eol", (json_int_t)1000);
    CHECK(ca_workspace_update(portal, ws, f, err, sizeof(err)) == CA_EINVAL);
    json_decref(f);
    f = json_pack("{s:I}", "eol", (json_int_t)time(NULL) + 1);
    CHECK_EQ_U(ca_workspace_update(portal, ws, f, err, sizeof(err)), 0);
    json_decref(f);
    CHECK_EQ_U(ca_workspace_purge_eol(portal, &n), 0);
    CHECK_EQ_U(n, 0);
    sleep(2);
    CHECK_EQ_U(ca_workspace_get(portal, ws, &w), 0);
    CHECK(ca_workspace_role(w, b) == NULL); /* gone for everyone before the purge */
    json_decref(w);
    CHECK_EQ_U(ca_workspace_purge_eol(portal, &n), 0);
    CHECK_EQ_U(n, 1);
    CHECK(ca_workspace_get(portal, ws, &w) == CA_ENOTFOUND);

    /* Quota and usage; update validation; delete. */
    f = json_pack("{s:I, s:b}", "quota", (json_int_t)5000, "disabled", 1);
    CHECK_EQ_U(ca_user_update(portal, a, f, err, sizeof(err)), 0);
    json_decref(f);
    f = json_pack("{s:s}", "password", "x");
    CHECK(ca_user_update(portal, a, f, err, sizeof(err)) == CA_EINVAL);
    json_decref(f);
    CHECK(ca_user_verify(portal, "acct-a", "acct-a-password", &id) == CA_EAUTH);
    CHECK_EQ_U(ca_user_usage(portal, a, &used), 0);
    CHECK_EQ_U(used, 0);
    CHECK_EQ_U(ca_user_delete(portal, a), 0);
    CHECK(ca_user_find(portal, "acct-a", &id) == CA_ENOTFOUND);

    /* Audit: newest first, paged by id. */
    for (int i = 0; i < 5; i++)
        CHECK_EQ_U(ca_audit_add(portal, b, "acct-b", "10.0.0.2", "test", "t", NULL), 0);
    CHECK_EQ_U(ca_audit_list(portal, 0, 3, &list, &next), 0);
    CHECK_EQ_U(json_array_size(list), 3);
    CHECK(next != 0);
    id = (uint64_t)json_integer_value(json_object_get(json_array_get(list, 0), "id"));
    json_decref(list);
    CHECK_EQ_U(ca_audit_list(portal, next, 3, &list, &next), 0);
    CHECK_EQ_U(json_array_size(list), 2);
    CHECK(next == 0);
    CHECK((uint64_t)json_integer_value(json_object_get(json_array_get(list, 0), "id")) == id - 3);
    json_decref(list);
}

int main(void)
{
    char err[256];

    if (mkdtemp(datadir) == NULL) {
        printf("Bail out! mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    /* 256 KiB maps: the workspace flows test must grow the map a few times. */
    setenv("CAPATLAS_STORE_MAPSIZE", "262144", 1);
    if (ca_portal_open(datadir, &portal, err, sizeof(err)) != 0) {
        printf("Bail out! ca_portal_open: %s\n", err);
        return 1;
    }
    unit_run("store: users", test_users);
    unit_run("store: sessions", test_sessions);
    unit_run("store: session expiry", test_session_expiry);
    unit_run("store: workspaces", test_workspaces);
    unit_run("store: jobs", test_jobs);
    unit_run("store: jobs claimed by concurrent processes", test_jobs_concurrent);
    unit_run("store: captures and flows", test_captures_flows);
    unit_run("store: map grows on MDB_MAP_FULL", test_map_growth);
    unit_run("store: tables from the import's builder equal those from the hot chunks",
             test_tables_incremental);
    unit_run("store: batches buffered, committed on close, dropped by a purge",
             test_buffered_batches);
    unit_run("store: addresses of concurrent and dead imports keep one id each",
             test_addresses_staged);
    unit_run("store: reopen", test_reopen);
    unit_run("store: accounts, lockout, tokens, sharing, EOL, audit", test_portal_accounts);
    ca_portal_close(portal);
    nftw(datadir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return unit_done();
}
