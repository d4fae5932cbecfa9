/*
 * Capture records and jobs for non-upload sources (see ingest.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ca_error.h"
#include "ingest.h"
#include "store.h"

static int copy_file(const char *src, const char *dst)
{
    char buf[1 << 16];
    int in, outfd, rc = -1;
    ssize_t n;

    in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -1;
    outfd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (outfd < 0) {
        close(in);
        return -1;
    }
    for (;;) {
        n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n == 0 ? 0 : -1;
            break;
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(outfd, buf + off, (size_t)(n - off));

            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                goto done;
            off += w;
        }
    }
done:
    if (close(outfd) != 0)
        rc = -1;
    close(in);
    if (rc != 0)
        unlink(dst);
    return rc;
}

int ingest_move(const char *src, const char *dst)
{
    if (rename(src, dst) == 0)
        return 0;
    if (errno != EXDEV)
        return -1;
    if (copy_file(src, dst) != 0)
        return -1;
    if (unlink(src) != 0) {
        int e = errno;

        unlink(dst);
        errno = e;
        return -1;
    }
    return 0;
}

int ingest_create(struct ca_portal *p, struct ca_ws *w, const char *datadir,
                  const struct ingest_req *req, uint32_t *cap_id, uint64_t *job_id, char *path,
                  size_t len, char *err, size_t errlen)
{
    json_t *meta = NULL, *job = NULL, *upd = NULL;
    char dir[4096];
    long long now = (long long)time(NULL);
    int rc, made_file = 0;

    *cap_id = 0;
    *job_id = 0;
    meta = json_pack("{s:s, s:s, s:I, s:s, s:n, s:n, s:I, s:s, s:n}", "name", req->name, "source",
                     req->source, "size", (json_int_t)req->bytes_total, "state", "queued", "error",
                     "report", "created", (json_int_t)now, "path", "", "job");
    if (meta == NULL)
        return CA_ENOMEM;
    if (req->cap_extra != NULL)
        json_object_update(meta, req->cap_extra);
    rc = ca_ws_capture_add(w, meta, cap_id);
    if (rc < 0) {
        ca_seterr(err, errlen, rc, "could not add the capture");
        goto fail;
    }
    rc = ca_ws_dir(datadir, req->ws_id, dir, sizeof(dir));
    if (rc < 0 || snprintf(path, len, "%s/captures", dir) >= (int)len) {
        rc = ca_seterr(err, errlen, CA_EINTERNAL, "workspace path too long");
        goto fail;
    }
    if (mkdir(path, 0750) != 0 && errno != EEXIST) {
        rc = ca_seterr(err, errlen, CA_EIO, "cannot create the captures folder");
        goto fail;
    }
    snprintf(path, len, "%s/captures/%u.cap", dir, *cap_id);
    if (req->move_from != NULL) {
        if (ingest_move(req->move_from, path) != 0) {
            rc = ca_seterr(err, errlen, CA_EIO, "cannot move the file into the workspace: %s",
                           strerror(errno));
            goto fail;
        }
    } else {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);

        if (fd < 0 || close(fd) != 0) {
            rc = ca_seterr(err, errlen, CA_EIO, "cannot create the capture file: %s",
                           strerror(errno));
            goto fail;
        }
    }
    made_file = 1;
    job =
        json_pack("{s:s, s:I, s:I, s:s, s:s, s:I, s:I, s:I, s:s, s:n, s:I, s:n, s:n}", "kind",
                  req->kind, "workspace", (json_int_t)req->ws_id, "capture", (json_int_t)*cap_id,
                  "path", path, "source", req->source, "bytes_total", (json_int_t)req->bytes_total,
                  "bytes_done", (json_int_t)0, "packets_done", (json_int_t)0, "state", "queued",
                  "error", "created", (json_int_t)now, "started", "finished");
    if (job == NULL) {
        rc = CA_ENOMEM;
        goto fail;
    }
    if (req->job_extra != NULL)
        json_object_update(job, req->job_extra);
    rc = ca_job_create(p, job, job_id);
    if (rc < 0) {
        ca_seterr(err, errlen, rc, "could not queue the import");
        goto fail;
    }
    upd = json_pack("{s:s, s:I}", "path", path, "job", (json_int_t)*job_id);
    if (upd == NULL || ca_ws_capture_update(w, *cap_id, upd) < 0) {
        /* The job runs anyway; only the capture's link to it is missing. */
    }
    json_decref(upd);
    json_decref(job);
    json_decref(meta);
    return 0;
fail:
    if (made_file && req->move_from != NULL)
        ingest_move(path, req->move_from); /* give the file back */
    else if (made_file)
        unlink(path);
    if (*cap_id != 0)
        ca_ws_capture_delete(w, *cap_id);
    *cap_id = 0;
    json_decref(job);
    json_decref(meta);
    return rc;
}
