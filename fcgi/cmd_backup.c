/*
 * capatlasd backup --data D --out DIR   and   capatlasd restore --from DIR --data D2
 *
 * A backup is safe while the portal runs and imports: every LMDB
 * environment under D (the portal first, then each workspace) is copied
 * with one read transaction each (store_backup.c), compacted; then the
 * other files of the workspaces (the original captures) are copied.  DIR
 * mirrors D's layout and gets a manifest, capatlas-backup.json, written
 * last: a DIR without it is an incomplete backup and restore refuses it.
 *
 * Why the portal first: a job that finishes between the two copies then
 * shows as "running" in the portal copy and "ready" in the workspace
 * copy; restore re-queues it and the import runs again to the same
 * result.  The other order could leave a capture "importing" with its job
 * "done", stuck forever.  A capture whose import had not committed when
 * its workspace was copied is restored not ready and its job re-queued.
 *
 * Folders the start script recreates (run, tmp, log, www, bin, nginx,
 * geo) are not backed up; tls/ is, when readable (the generated
 * certificate).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ca_error.h"
#include "commands.h"
#include "store.h"
#include "store_backup.h"

#define MANIFEST "capatlas-backup.json"
#define BACKUP_FORMAT 1

struct tally {
    unsigned envs, files;
    unsigned long long bytes;
    json_t *env_list;
};

/* The backup folder itself, when it lies inside the data folder. */
static dev_t out_dev;
static ino_t out_ino;

static const char *const skip_top[] = {"run", "tmp", "log", "www", "bin", "nginx", "geo", NULL};

static int mkdirs(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);

    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, mode) != 0 && errno != EEXIST ? -1 : 0;
}

/* 1 when path is missing or an empty folder; 0 otherwise. */
static int empty_or_missing(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *de;
    int empty = 1;

    if (d == NULL)
        return errno == ENOENT;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            empty = 0;
    closedir(d);
    return empty;
}

static int copy_file(const char *src, const char *dst, mode_t mode, unsigned long long *bytes)
{
    char buf[1 << 16];
    int in, out, rc = -1;
    ssize_t r;

    in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -1;
    out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode & 0777);
    if (out < 0)
        goto out;
    while ((r = read(in, buf, sizeof(buf))) > 0) {
        for (ssize_t off = 0; off < r;) {
            ssize_t w = write(out, buf + off, (size_t)(r - off));

            if (w < 0) {
                if (errno == EINTR)
                    continue;
                goto out;
            }
            off += w;
        }
        *bytes += (unsigned long long)r;
    }
    if (r < 0 || fsync(out) != 0)
        goto out;
    rc = 0;
out:
    if (out >= 0 && close(out) != 0)
        rc = -1;
    close(in);
    return rc;
}

/*
 * Copies the tree src to dst.  In backup mode (envs != 0) a folder holding
 * data.mdb is copied as an LMDB snapshot; lock files are never copied.
 * skip (may be NULL) names top-level entries to leave out.
 */
static int copy_tree(const char *src, const char *dst, const char *rel, int envs,
                     const char *const *skip, struct tally *t, int top)
{
    DIR *d;
    struct dirent *de;
    char err[512];
    int rc = 0;

    if (mkdirs(dst, 0750) != 0) {
        fprintf(stderr, "capatlasd: cannot create %s: %s\n", dst, strerror(errno));
        return -1;
    }
    if (envs && ca_backup_is_env(src)) {
        int e = ca_backup_env_copy(src, dst, err, sizeof(err));

        if (e < 0) {
            fprintf(stderr, "capatlasd backup: %s\n", err);
            return -1;
        }
        t->envs++;
        json_array_append_new(t->env_list, json_string(rel[0] ? rel : "."));
        return 0;
    }
    d = opendir(src);
    if (d == NULL) {
        fprintf(stderr, "capatlasd: cannot read %s: %s\n", src, strerror(errno));
        return -1;
    }
    while (rc == 0 && (de = readdir(d)) != NULL) {
        char s[PATH_MAX], o[PATH_MAX], r[PATH_MAX];
        struct stat st;
        int skipped = 0;

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            strcmp(de->d_name, "lock.mdb") == 0 || strcmp(de->d_name, MANIFEST) == 0)
            continue;
        for (size_t i = 0; top && skip != NULL && skip[i] != NULL; i++)
            skipped |= strcmp(de->d_name, skip[i]) == 0;
        /* The portal is copied first, by the caller. */
        if (skipped || (top && envs && strcmp(de->d_name, "portal") == 0))
            continue;
        if (snprintf(s, sizeof(s), "%s/%s", src, de->d_name) >= (int)sizeof(s) ||
            snprintf(o, sizeof(o), "%s/%s", dst, de->d_name) >= (int)sizeof(o) ||
            snprintf(r, sizeof(r), "%s%s%s", rel, rel[0] ? "/" : "", de->d_name) >=
                (int)sizeof(r)) {
            fprintf(stderr, "capatlasd: path too long under %s\n", src);
            rc = -1;
            break;
        }
        if (lstat(s, &st) != 0) {
            if (errno == ENOENT) /* deleted meanwhile */
                continue;
            fprintf(stderr, "capatlasd: %s: %s\n", s, strerror(errno));
            rc = -1;
        } else if (S_ISDIR(st.st_mode)) {
            if (st.st_dev == out_dev && st.st_ino == out_ino)
                continue;
            if (access(s, R_OK | X_OK) != 0 && top && strcmp(de->d_name, "tls") == 0) {
                fprintf(stderr, "capatlasd: note: %s is not readable; not copied\n", s);
                continue;
            }
            rc = copy_tree(s, o, r, envs, skip, t, 0);
        } else if (S_ISREG(st.st_mode)) {
            if (copy_file(s, o, st.st_mode, &t->bytes) != 0) {
                if (errno == ENOENT)
                    continue;
                fprintf(stderr, "capatlasd: cannot copy %s to %s: %s\n", s, o, strerror(errno));
                rc = -1;
            } else {
                t->files++;
            }
        } /* sockets, links and the like are not data */
    }
    closedir(d);
    return rc;
}

static int parse_args(int argc, char **argv, const char *names[2], const char *vals[2],
                      const char *usage)
{
    for (int i = 1; i < argc; i++) {
        int k = -1;
        const char *eq = strchr(argv[i], '=');
        size_t len = eq != NULL ? (size_t)(eq - argv[i]) : strlen(argv[i]);

        for (int j = 0; j < 2; j++)
            if (strlen(names[j]) == len && strncmp(argv[i], names[j], len) == 0)
                k = j;
        if (k < 0 || (eq == NULL && i + 1 >= argc)) {
            fprintf(stderr, "%s\n", usage);
            return -1;
        }
        vals[k] = eq != NULL ? eq + 1 : argv[++i];
    }
    for (int j = 0; j < 2; j++) {
        if (vals[j] == NULL || *vals[j] == '\0') {
            fprintf(stderr, "%s\n", usage);
            return -1;
        }
    }
    return 0;
}

int cmd_backup(int argc, char **argv)
{
    static const char usage[] = "usage: capatlasd backup --data DIR --out BACKUP_DIR";
    const char *names[2] = {"--data", "--out"}, *vals[2] = {NULL, NULL};
    struct tally t = {0};
    char src[PATH_MAX], dst[PATH_MAX], tmp[PATH_MAX], err[512];
    json_t *man = NULL;
    time_t start = time(NULL);
    int status = 1;

    if (getenv("CAPATLAS_DATA") != NULL)
        vals[0] = getenv("CAPATLAS_DATA");
    if (parse_args(argc, argv, names, vals, usage) < 0)
        return 2;
    if (realpath(vals[0], src) == NULL || !ca_backup_is_env(strcat(strcpy(tmp, src), "/portal"))) {
        fprintf(stderr, "capatlasd backup: %s is not a capatlas data folder (no portal/)\n",
                vals[0]);
        return 1;
    }
    if (!empty_or_missing(vals[1])) {
        fprintf(stderr, "capatlasd backup: %s exists and is not empty; choose a new folder\n",
                vals[1]);
        return 1;
    }
    snprintf(dst, sizeof(dst), "%s", vals[1]);
    t.env_list = json_array();
    if (t.env_list == NULL)
        return 1;

    /* The portal first (see the top of this file). */
    snprintf(tmp, sizeof(tmp), "%s/portal", dst);
    if (mkdirs(tmp, 0750) != 0) {
        fprintf(stderr, "capatlasd backup: cannot create %s: %s\n", tmp, strerror(errno));
        goto out;
    }
    {
        struct stat st;

        if (stat(dst, &st) == 0) {
            out_dev = st.st_dev;
            out_ino = st.st_ino;
        }
    }
    {
        char psrc[PATH_MAX];

        snprintf(psrc, sizeof(psrc), "%s/portal", src);
        if (ca_backup_env_copy(psrc, tmp, err, sizeof(err)) < 0) {
            fprintf(stderr, "capatlasd backup: %s\n", err);
            goto out;
        }
        t.envs++;
        json_array_append_new(t.env_list, json_string("portal"));
    }
    if (copy_tree(src, dst, "", 1, skip_top, &t, 1) < 0)
        goto out;

    man = json_pack("{s:s, s:i, s:s, s:I, s:I, s:O, s:i, s:I}", "kind", "capatlas-backup", "format",
                    BACKUP_FORMAT, "source", src, "started", (json_int_t)start, "finished",
                    (json_int_t)time(NULL), "environments", t.env_list, "files", (int)t.files,
                    "file_bytes", (json_int_t)t.bytes);
    snprintf(tmp, sizeof(tmp), "%s/%s", dst, MANIFEST);
    if (man == NULL || json_dump_file(man, tmp, JSON_INDENT(2)) != 0) {
        fprintf(stderr, "capatlasd backup: cannot write %s\n", tmp);
        goto out;
    }
    printf("backup of %s in %s: %u LMDB environments, %u files (%llu bytes)\n", src, dst, t.envs,
           t.files, t.bytes);
    status = 0;
out:
    json_decref(man);
    json_decref(t.env_list);
    if (status != 0)
        fprintf(stderr, "capatlasd backup: failed; %s is incomplete (no %s)\n", dst, MANIFEST);
    return status;
}

int cmd_restore(int argc, char **argv)
{
    static const char usage[] = "usage: capatlasd restore --from BACKUP_DIR --data NEW_DIR";
    const char *names[2] = {"--from", "--data"}, *vals[2] = {NULL, NULL};
    struct tally t = {0};
    struct ca_portal *p = NULL;
    char tmp[PATH_MAX], err[512];
    json_t *man;
    json_error_t jerr;
    uint64_t *ids = NULL;
    size_t n = 0;
    int status = 1;

    if (parse_args(argc, argv, names, vals, usage) < 0)
        return 2;
    snprintf(tmp, sizeof(tmp), "%s/%s", vals[0], MANIFEST);
    man = json_load_file(tmp, 0, &jerr);
    if (man == NULL) {
        fprintf(stderr,
                "capatlasd restore: %s is not a complete capatlas backup (cannot read %s: %s)\n",
                vals[0], tmp, jerr.text);
        return 1;
    }
    if (json_integer_value(json_object_get(man, "format")) != BACKUP_FORMAT) {
        fprintf(stderr, "capatlasd restore: %s: unknown backup format\n", tmp);
        json_decref(man);
        return 1;
    }
    json_decref(man);
    if (!empty_or_missing(vals[1])) {
        fprintf(stderr,
                "capatlasd restore: %s exists and is not empty; restore into a new folder\n",
                vals[1]);
        return 1;
    }
    t.env_list = json_array();
    /* The environments in the backup are plain compacted files: copy all. */
    if (t.env_list == NULL || copy_tree(vals[0], vals[1], "", 0, NULL, &t, 1) < 0)
        goto out;

    /* Jobs that were running when the backup was taken run again. */
    if (ca_backup_running_jobs(vals[1], &ids, &n, err, sizeof(err)) < 0) {
        fprintf(stderr, "capatlasd restore: %s\n", err);
        goto out;
    }
    if (n > 0) {
        if (ca_portal_open(vals[1], &p, err, sizeof(err)) < 0) {
            fprintf(stderr, "capatlasd restore: %s\n", err);
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            json_t *f = json_pack("{s:s, s:n, s:n}", "state", "queued", "worker_pid", "started");
            int rc = f != NULL ? ca_job_update(p, ids[i], f) : CA_ENOMEM;

            json_decref(f);
            if (rc < 0) {
                fprintf(stderr, "capatlasd restore: cannot re-queue job %llu: %s\n",
                        (unsigned long long)ids[i], ca_strerror(rc));
                goto out;
            }
        }
    }
    printf("restored %s into %s: %u files (%llu bytes); %zu interrupted import(s) re-queued\n",
           vals[0], vals[1], t.files, t.bytes, n);
    status = 0;
out:
    ca_portal_close(p);
    free(ids);
    json_decref(t.env_list);
    return status;
}
