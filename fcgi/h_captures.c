/*
 * Captures of a workspace: the list, and the upload.  nginx has already
 * written the upload body to a temp file (REQUEST_BODY_FILE); we move that
 * file into the workspace with rename(2), so a large capture never passes
 * through worker memory, and queue an import job.  Any failure leaves the
 * temp file to request_free, which unlinks it.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ca_error.h"
#include "config.h"
#include "errmap.h"
#include "handlers.h"
#include "ingest.h"
#include "log.h"
#include "store.h"

int h_capture_list(struct request *r, json_t **out)
{
    struct ca_ws *w = NULL;
    json_t *list = NULL, *res = NULL;
    char err[256] = "";
    size_t i;
    json_t *c;
    int st, rc;

    st = h_workspace_check(r, r->ids[0], NULL, out);
    if (st != 0)
        return st;
    rc = ca_ws_open(r->conf->data, r->ids[0], &w, err, sizeof(err));
    if (rc < 0)
        return errmap_reply(out, rc, NULL, err);
    rc = ca_ws_capture_list(w, &list);
    ca_ws_close(w);
    if (rc < 0)
        return errmap_reply(out, rc, NULL, "could not list captures");
    res = json_array();
    json_array_foreach(list, i, c)
    {
        json_array_append_new(res, h_capture_public(c));
    }
    json_decref(list);
    *out = json_pack("{s:o}", "captures", res);
    return 200;
}

/* Moves r->body_file to dst; marks it consumed on success. */
static int move_upload(struct request *r, const char *dst)
{
    if (ingest_move(r->body_file, dst) != 0)
        return -1;
    r->body_consumed = 1;
    return 0;
}

int h_capture_upload(struct request *r, json_t **out)
{
    struct ca_ws *w = NULL;
    json_t *meta = NULL, *cap = NULL, *job = NULL, *upd;
    const char *name = http_kv_get(r->query, r->nquery, "name");
    char err[256] = "", dir[4096], dst[4200], source[256];
    uint32_t cap_id = 0;
    uint64_t job_id;
    struct stat stt;
    int st, rc;

    st = h_workspace_check(r, r->ids[0], NULL, out);
    if (st != 0)
        return st;
    if (name == NULL)
        name = "upload.pcap";
    if (!http_valid_name(name))
        return errmap_fail(out, 400, "name",
                           "name must be 1 to %d characters, without '/' or control characters",
                           HTTP_NAME_MAX);
    if (r->body_file == NULL || lstat(r->body_file, &stt) != 0 || !S_ISREG(stt.st_mode) ||
        stt.st_size == 0)
        return errmap_fail(out, 400, "body", "empty upload");

    rc = ca_ws_open(r->conf->data, r->ids[0], &w, err, sizeof(err));
    if (rc < 0)
        return errmap_reply(out, rc, NULL, err);
    snprintf(source, sizeof(source), "upload: %s", name);
    meta = json_pack("{s:s, s:s, s:I, s:s, s:n, s:n, s:I, s:s, s:n}", "name", name, "source",
                     source, "size", (json_int_t)stt.st_size, "state", "queued", "error", "report",
                     "created", (json_int_t)h_now(), "path", "", "job");
    if (meta == NULL) {
        st = errmap_reply(out, CA_ENOMEM, NULL, NULL);
        goto out;
    }
    rc = ca_ws_capture_add(w, meta, &cap_id);
    if (rc < 0) {
        st = errmap_reply(out, rc, NULL, "could not add the capture");
        goto out;
    }
    rc = ca_ws_dir(r->conf->data, r->ids[0], dir, sizeof(dir));
    if (rc < 0 || snprintf(dst, sizeof(dst), "%s/captures", dir) >= (int)sizeof(dst)) {
        st = errmap_reply(out, rc < 0 ? rc : CA_EINTERNAL, NULL, "workspace path too long");
        goto undo;
    }
    if (mkdir(dst, 0750) != 0 && errno != EEXIST) {
        st = errmap_reply(out, CA_EIO, NULL, "cannot create the captures folder");
        goto undo;
    }
    snprintf(dst, sizeof(dst), "%s/captures/%u.cap", dir, cap_id);
    if (move_upload(r, dst) != 0) {
        log_line("upload: cannot move the body file into workspace %llu: %s",
                 (unsigned long long)r->ids[0], strerror(errno));
        st = errmap_reply(out, CA_EIO, NULL, "cannot store the upload");
        goto undo;
    }
    upd = json_pack("{s:s, s:I}", "path", dst, "size", (json_int_t)stt.st_size);
    rc = upd != NULL ? ca_ws_capture_update(w, cap_id, upd) : CA_ENOMEM;
    json_decref(upd);
    if (rc < 0) {
        st = errmap_reply(out, rc, NULL, "could not update the capture");
        goto undo;
    }
    job = json_pack("{s:s, s:I, s:I, s:s, s:s, s:I, s:I, s:I, s:s, s:n, s:I, s:n, s:n}", "kind",
                    "import", "workspace", (json_int_t)r->ids[0], "capture", (json_int_t)cap_id,
                    "path", dst, "source", source, "bytes_total", (json_int_t)stt.st_size,
                    "bytes_done", (json_int_t)0, "packets_done", (json_int_t)0, "state", "queued",
                    "error", "created", (json_int_t)h_now(), "started", "finished");
    rc = job != NULL ? ca_job_create(r->portal, job, &job_id) : CA_ENOMEM;
    if (rc < 0) {
        st = errmap_reply(out, rc, NULL, "could not queue the import");
        goto undo;
    }
    upd = json_pack("{s:I}", "job", (json_int_t)job_id);
    if (upd != NULL)
        ca_ws_capture_update(w, cap_id, upd);
    json_decref(upd);
    json_decref(job);
    job = NULL;
    if (ca_job_get(r->portal, job_id, &job) < 0 || ca_ws_capture_get(w, cap_id, &cap) < 0) {
        st = errmap_reply(out, CA_ESTORE, NULL, "upload stored but not readable");
        goto out;
    }
    *out = json_pack("{s:o, s:o}", "capture", h_capture_public(cap), "job", h_job_public(job));
    log_line("upload: workspace %llu capture %u job %llu, %lld bytes",
             (unsigned long long)r->ids[0], cap_id, (unsigned long long)job_id,
             (long long)stt.st_size);
    st = 202;
    goto out;
undo:
    /* The request failed: take the capture record (and a moved file) away. */
    if (cap_id != 0)
        ca_ws_capture_delete(w, cap_id);
    if (r->body_consumed)
        unlink(dst);
out:
    json_decref(cap);
    json_decref(job);
    json_decref(meta);
    ca_ws_close(w);
    return st;
}

/*
 * PUT .../captures?name=NAME with a body that may never end soon (`tcpdump
 * -w - | curl -T - ...`).  nginx passes the body on as it arrives
 * (fastcgi_request_buffering off); we append it to the capture file while
 * an import worker reads that growing file (job kind "stream") and waits at
 * its end until the job's "stream" field says "closed".  The request pins
 * this API worker for the stream's whole duration.
 */
#define STREAM_BUF (256 * 1024)
#define STREAM_NOTE_MS 1000

static double stream_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int write_all(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, buf, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

int h_capture_stream(struct request *r, json_t **out)
{
    struct ca_ws *w = NULL;
    struct ingest_req iq;
    const char *name = http_kv_get(r->query, r->nquery, "name");
    char err[256] = "", source[256], path[4200], *buf = NULL;
    json_t *extra = NULL, *cap = NULL, *job = NULL, *upd;
    uint32_t cap_id = 0;
    uint64_t job_id = 0, total = 0;
    const char *end_state = "closed", *why = NULL;
    double last = 0;
    int st, rc, fd = -1, status_fail = 0;

    st = h_workspace_check(r, r->ids[0], NULL, out);
    if (st != 0)
        return st;
    if (name == NULL)
        name = "stream.pcap";
    if (!http_valid_name(name))
        return errmap_fail(out, 400, "name",
                           "name must be 1 to %d characters, without '/' or control characters",
                           HTTP_NAME_MAX);
    if (r->body_read == NULL)
        return errmap_fail(out, 400, "body", "no request body");
    if (r->content_length > 0 && (uint64_t)r->content_length > r->conf->fetch_max_size)
        return errmap_fail(out, 413, "body", "the stream is larger than the limit of %llu bytes",
                           (unsigned long long)r->conf->fetch_max_size);
    buf = malloc(STREAM_BUF);
    if (buf == NULL)
        return errmap_reply(out, CA_ENOMEM, NULL, NULL);
    rc = ca_ws_open(r->conf->data, r->ids[0], &w, err, sizeof(err));
    if (rc < 0) {
        st = errmap_reply(out, rc, NULL, err);
        goto out;
    }
    snprintf(source, sizeof(source), "stream: %s", name);
    extra = json_pack("{s:s}", "stream", "open");
    memset(&iq, 0, sizeof(iq));
    iq.ws_id = r->ids[0];
    iq.name = name;
    iq.source = source;
    iq.kind = "stream";
    iq.job_extra = extra;
    rc = extra != NULL ? ingest_create(r->portal, w, r->conf->data, &iq, &cap_id, &job_id, path,
                                       sizeof(path), err, sizeof(err))
                       : CA_ENOMEM;
    if (rc < 0) {
        st = errmap_reply(out, rc, NULL, err);
        goto out;
    }
    log_line("stream: workspace %llu capture %u job %llu started", (unsigned long long)r->ids[0],
             cap_id, (unsigned long long)job_id);
    fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) {
        end_state = "aborted";
        why = "cannot open the capture file";
        status_fail = 500;
    }
    last = stream_ms();
    while (fd >= 0) {
        long n = r->body_read(r, buf, STREAM_BUF);

        if (n == 0)
            break;
        if (n < 0) {
            end_state = "aborted";
            why = "the stream was cut before its end";
            status_fail = 400;
            break;
        }
        if (total + (uint64_t)n > r->conf->fetch_max_size) {
            end_state = "aborted";
            why = "the stream is larger than the size limit";
            status_fail = 413;
            break;
        }
        if (write_all(fd, buf, (size_t)n) != 0) {
            end_state = "aborted";
            why = "cannot write the capture file";
            status_fail = 500;
            break;
        }
        total += (uint64_t)n;
        if (stream_ms() - last >= STREAM_NOTE_MS) {
            last = stream_ms();
            upd = json_pack("{s:I}", "stream_bytes", (json_int_t)total);
            if (upd != NULL)
                ca_job_update(r->portal, job_id, upd);
            json_decref(upd);
        }
    }
    if (fd >= 0 && close(fd) != 0 && status_fail == 0) {
        end_state = "aborted";
        why = "cannot write the capture file";
        status_fail = 500;
    }
    if (r->content_length > 0 && status_fail == 0 && total != (uint64_t)r->content_length) {
        end_state = "aborted";
        why = "the stream was cut before its end";
        status_fail = 400;
    }
    upd = json_pack("{s:s, s:I, s:I, s:s?}", "stream", end_state, "bytes_total", (json_int_t)total,
                    "stream_bytes", (json_int_t)total, "stream_error", why);
    if (upd == NULL || ca_job_update(r->portal, job_id, upd) < 0)
        log_line("stream: job %llu: cannot record the end of the stream",
                 (unsigned long long)job_id);
    json_decref(upd);
    upd = json_pack("{s:I}", "size", (json_int_t)total);
    if (upd != NULL)
        ca_ws_capture_update(w, cap_id, upd);
    json_decref(upd);
    log_line("stream: job %llu %s after %llu bytes", (unsigned long long)job_id, end_state,
             (unsigned long long)total);
    if (status_fail != 0) {
        st = errmap_fail(out, status_fail, "body", "%s", why);
        goto out;
    }
    if (ca_job_get(r->portal, job_id, &job) < 0 || ca_ws_capture_get(w, cap_id, &cap) < 0) {
        st = errmap_reply(out, CA_ESTORE, NULL, "stream stored but not readable");
        goto out;
    }
    *out = json_pack("{s:o, s:o}", "capture", h_capture_public(cap), "job", h_job_public(job));
    st = 202;
out:
    json_decref(extra);
    json_decref(cap);
    json_decref(job);
    ca_ws_close(w);
    free(buf);
    return st;
}
