/*
 * Imports from URLs: one HTTPS file or Azure blob, a whole Azure container
 * (or the blobs the user picked from its listing), the listing itself, and
 * cancelling any import job.  Nothing here touches the network: each
 * request becomes a job for an import worker.  The URL as typed (with its
 * SAS signature) is kept only inside the job record, for the worker, and
 * removed when the job ends; everything shown or logged uses the redacted
 * form "https://account.blob.core.windows.net/container/blob?…".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "azure.h"
#include "ca_error.h"
#include "config.h"
#include "errmap.h"
#include "handlers.h"
#include "ingest.h"
#include "log.h"
#include "store.h"

#define SELECT_MAX 1000 /* blobs picked in one request */

/* Parses and checks body.url; 0 or a status with *out set. */
static int url_check(struct request *r, const char *url, struct ca_azure_url *u, json_t **out)
{
    char err[256] = "";

    if (url == NULL)
        return errmap_fail(out, 400, "url", "url is required");
    if (ca_azure_parse(url, u, err, sizeof(err)) < 0)
        return errmap_fail(out, 400, "url", "%s", err);
    if (strncasecmp(url, "https://", 8) != 0 && !r->conf->fetch_allow_http)
        return errmap_fail(out, 400, "url", "only https:// URLs can be imported");
    return 0;
}

/* Display name from the last path segment of a (redacted) URL or blob name. */
static void name_from(const char *path, char *buf, size_t len)
{
    const char *end = path + strcspn(path, "?#"), *s = end;

    while (s > path && s[-1] != '/')
        s--;
    if (end - s <= 0) {
        snprintf(buf, len, "download.pcap");
        return;
    }
    snprintf(buf, len, "%.*s", (int)(end - s > 200 ? 200 : end - s), s);
    for (char *p = buf; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == '/')
            *p = '_';
}

/* One capture + "url" job for blob (or plain) URL full_url. */
static int queue_one(struct request *r, struct ca_ws *w, const char *full_url, const char *name,
                     json_t *labels, const char *password, json_t *caps, json_t *jobs, char *err,
                     size_t errlen)
{
    struct ingest_req iq;
    char source[1024], path[4200];
    json_t *cap_extra = NULL, *job_extra, *cap = NULL, *job = NULL;
    uint32_t cap_id;
    uint64_t job_id;
    int rc;

    ca_url_redact(full_url, source, sizeof(source));
    job_extra = json_pack("{s:s, s:s?}", "url", full_url, "password",
                          password != NULL && password[0] ? password : NULL);
    if (labels != NULL)
        cap_extra = json_pack("{s:O}", "labels", labels);
    memset(&iq, 0, sizeof(iq));
    iq.ws_id = r->ids[0];
    iq.name = name;
    iq.source = source;
    iq.kind = "url";
    iq.job_extra = job_extra;
    iq.cap_extra = cap_extra;
    rc = job_extra == NULL ? CA_ENOMEM
                           : ingest_create(r->portal, w, r->conf->data, &iq, &cap_id, &job_id, path,
                                           sizeof(path), err, errlen);
    json_decref(job_extra);
    json_decref(cap_extra);
    if (rc < 0)
        return rc;
    if (ca_ws_capture_get(w, cap_id, &cap) == 0)
        json_array_append_new(caps, h_capture_public(cap));
    if (ca_job_get(r->portal, job_id, &job) == 0)
        json_array_append_new(jobs, h_job_public(job));
    json_decref(cap);
    json_decref(job);
    log_line("import: workspace %llu capture %u job %llu from %s", (unsigned long long)r->ids[0],
             cap_id, (unsigned long long)job_id, source);
    return 0;
}

/* A job without a capture: "list" or "container". */
static int queue_container_job(struct request *r, const char *kind, const char *url,
                               const char *password, json_t *select, json_t **out)
{
    char source[1024];
    json_t *job = NULL, *pub;
    uint64_t job_id;
    int rc;

    ca_url_redact(url, source, sizeof(source));
    job = json_pack("{s:s, s:I, s:I, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:n, s:I, s:n, s:n, "
                    "s:s?, s:O?}",
                    "kind", kind, "workspace", (json_int_t)r->ids[0], "capture", (json_int_t)0,
                    "path", "", "source", source, "url", url, "bytes_total", (json_int_t)0,
                    "bytes_done", (json_int_t)0, "packets_done", (json_int_t)0, "state", "queued",
                    "error", "created", (json_int_t)h_now(), "started", "finished", "password",
                    password != NULL && password[0] ? password : NULL, "select", select);
    rc = job != NULL ? ca_job_create(r->portal, job, &job_id) : CA_ENOMEM;
    json_decref(job);
    job = NULL;
    if (rc < 0 || ca_job_get(r->portal, job_id, &job) < 0)
        return errmap_reply(out, rc < 0 ? rc : CA_ESTORE, NULL, "could not queue the job");
    pub = h_job_public(job);
    json_decref(job);
    log_line("import: workspace %llu %s job %llu for %s", (unsigned long long)r->ids[0], kind,
             (unsigned long long)job_id, source);
    *out = json_pack("{s:o}", "job", pub);
    return 202;
}

int h_import_url(struct request *r, json_t **out)
{
    static const char *const allowed[] = {"url", "name", "blobs", "password", NULL};
    struct ca_azure_url *u = NULL;
    struct ca_ws *w = NULL;
    json_t *body = NULL, *caps = NULL, *jobs = NULL, *blobs;
    const char *url, *name, *password;
    char err[512] = "", nm[256];
    int st, rc;

    st = h_workspace_check(r, r->ids[0], NULL, out);
    if (st != 0)
        return st;
    st = h_body_object(r, allowed, &body, out);
    if (st != 0)
        return st;
    url = json_string_value(json_object_get(body, "url"));
    name = json_string_value(json_object_get(body, "name"));
    password = json_string_value(json_object_get(body, "password"));
    blobs = json_object_get(body, "blobs");
    if (json_object_get(body, "name") != NULL && (name == NULL || !http_valid_name(name))) {
        st = errmap_fail(out, 400, "name",
                         "name must be 1 to %d characters, without '/' or control characters",
                         HTTP_NAME_MAX);
        goto out;
    }
    if (json_object_get(body, "password") != NULL && (password == NULL || strlen(password) > 256)) {
        st = errmap_fail(out, 400, "password", "password must be a string of at most 256 bytes");
        goto out;
    }
    if (blobs != NULL && (!json_is_array(blobs) || json_array_size(blobs) == 0 ||
                          json_array_size(blobs) > SELECT_MAX)) {
        st = errmap_fail(out, 400, "blobs", "blobs must be a list of 1 to %d blob names",
                         SELECT_MAX);
        goto out;
    }
    u = calloc(1, sizeof(*u));
    if (u == NULL) {
        st = errmap_reply(out, CA_ENOMEM, NULL, NULL);
        goto out;
    }
    st = url_check(r, url, u, out);
    if (st != 0)
        goto out;
    if (u->kind == CA_AZURE_CONTAINER && blobs == NULL) {
        st = queue_container_job(r, "container", url, password, NULL, out);
        goto out;
    }
    if (u->kind != CA_AZURE_CONTAINER && blobs != NULL) {
        st = errmap_fail(out, 400, "blobs", "blobs only goes with a container URL");
        goto out;
    }
    rc = ca_ws_open(r->conf->data, r->ids[0], &w, err, sizeof(err));
    if (rc < 0) {
        st = errmap_reply(out, rc, NULL, err);
        goto out;
    }
    caps = json_array();
    jobs = json_array();
    if (u->kind != CA_AZURE_CONTAINER) {
        char vm[256], iso[64];
        json_t *labels = NULL;

        if (u->kind == CA_AZURE_BLOB &&
            ca_azure_nw_parse(u->path, vm, sizeof(vm), iso, sizeof(iso)))
            labels = json_pack("{s:s, s:s}", "vm", vm, "capture_time", iso);
        if (name == NULL) {
            char red[1024];

            ca_url_redact(url, red, sizeof(red));
            name_from(red, nm, sizeof(nm));
            if (labels != NULL) {
                char tmp[256];

                snprintf(tmp, sizeof(tmp), "%.100s %.140s", vm, nm);
                snprintf(nm, sizeof(nm), "%s", tmp);
            }
            name = nm;
        }
        rc = queue_one(r, w, url, name, labels, password, caps, jobs, err, sizeof(err));
        json_decref(labels);
        if (rc < 0) {
            st = errmap_reply(out, rc, NULL, err);
            goto out;
        }
        *out = json_pack("{s:O, s:O}", "capture", json_array_get(caps, 0), "job",
                         json_array_get(jobs, 0));
        st = 202;
        goto out;
    }
    /* The user's pick from a container listing. */
    {
        size_t i;
        json_t *b;

        json_array_foreach(blobs, i, b)
        {
            const char *bn = json_string_value(b);
            char full[CA_AZURE_URL_MAX], vm[256], iso[64];
            json_t *labels = NULL;

            if (bn == NULL || bn[0] == '\0' || strlen(bn) > 1024 ||
                ca_azure_blob_url(u, bn, full, sizeof(full)) < 0) {
                st = errmap_fail(out, 400, "blobs", "blobs[%zu] is not a blob name", i);
                goto out;
            }
            name_from(bn, nm, sizeof(nm));
            if (ca_azure_nw_parse(bn, vm, sizeof(vm), iso, sizeof(iso))) {
                char tmp[256];

                labels = json_pack("{s:s, s:s}", "vm", vm, "capture_time", iso);
                snprintf(tmp, sizeof(tmp), "%.100s %.140s", vm, nm);
                snprintf(nm, sizeof(nm), "%s", tmp);
            }
            rc = queue_one(r, w, full, nm, labels, password, caps, jobs, err, sizeof(err));
            json_decref(labels);
            if (rc < 0) {
                st = errmap_reply(out, rc, NULL, err);
                goto out;
            }
        }
    }
    *out = json_pack("{s:O, s:O}", "captures", caps, "jobs", jobs);
    st = 202;
out:
    json_decref(caps);
    json_decref(jobs);
    json_decref(body);
    ca_ws_close(w);
    free(u);
    return st;
}

int h_import_list(struct request *r, json_t **out)
{
    static const char *const allowed[] = {"url", NULL};
    struct ca_azure_url *u;
    json_t *body = NULL;
    const char *url;
    int st;

    st = h_workspace_check(r, r->ids[0], NULL, out);
    if (st != 0)
        return st;
    st = h_body_object(r, allowed, &body, out);
    if (st != 0)
        return st;
    url = json_string_value(json_object_get(body, "url"));
    u = calloc(1, sizeof(*u));
    if (u == NULL) {
        json_decref(body);
        return errmap_reply(out, CA_ENOMEM, NULL, NULL);
    }
    st = url_check(r, url, u, out);
    if (st == 0 && u->kind != CA_AZURE_CONTAINER)
        st = errmap_fail(out, 400, "url",
                         "not an Azure container URL (https://ACCOUNT.blob.core.windows.net/"
                         "CONTAINER/?SAS or a folder ending in '/')");
    if (st == 0)
        st = queue_container_job(r, "list", url, NULL, NULL, out);
    free(u);
    json_decref(body);
    return st;
}

int h_job_cancel(struct request *r, json_t **out)
{
    json_t *job = NULL, *upd, *pub;
    const char *state;
    int rc, st;

    rc = ca_job_get(r->portal, r->ids[0], &job);
    if (rc == CA_ENOTFOUND)
        return errmap_fail(out, 404, NULL, "no such job");
    if (rc < 0)
        return errmap_reply(out, rc, NULL, "job lookup failed");
    st = h_workspace_check(r, (uint64_t)json_integer_value(json_object_get(job, "workspace")), NULL,
                           out);
    if (st != 0) {
        json_decref(*out);
        json_decref(job);
        return errmap_fail(out, 404, NULL, "no such job");
    }
    state = json_string_value(json_object_get(job, "state"));
    if (state != NULL && strcmp(state, "queued") == 0) {
        /* Nobody runs it yet: it ends here.  A worker claiming it meanwhile sees "cancel". */
        uint64_t ws_id = (uint64_t)json_integer_value(json_object_get(job, "workspace"));
        uint32_t cap = (uint32_t)json_integer_value(json_object_get(job, "capture"));
        struct ca_ws *w = NULL;

        upd = json_pack("{s:s, s:s, s:I, s:b, s:n, s:n}", "state", "canceled", "error",
                        "cancelled by the user", "finished", (json_int_t)h_now(), "cancel", 1,
                        "url", "password");
        if (cap != 0 && ca_ws_open(r->conf->data, ws_id, &w, NULL, 0) == 0) {
            json_t *cu =
                json_pack("{s:s, s:s}", "state", "failed", "error", "import cancelled by the user");

            if (cu != NULL)
                ca_ws_capture_update(w, cap, cu);
            json_decref(cu);
            ca_ws_close(w);
        }
    } else if (state != NULL && strcmp(state, "running") == 0) {
        upd = json_pack("{s:b}", "cancel", 1);
    } else {
        st = errmap_fail(out, 409, NULL, "the job has already ended (%s)",
                         state != NULL ? state : "?");
        json_decref(job); /* state points into it */
        return st;
    }
    rc = upd != NULL ? ca_job_update(r->portal, r->ids[0], upd) : CA_ENOMEM;
    json_decref(upd);
    json_decref(job);
    job = NULL;
    if (rc < 0 || ca_job_get(r->portal, r->ids[0], &job) < 0)
        return errmap_reply(out, rc < 0 ? rc : CA_ESTORE, NULL, "could not cancel the job");
    pub = h_job_public(job);
    json_decref(job);
    log_line("job %llu: cancel requested", (unsigned long long)r->ids[0]);
    *out = json_pack("{s:o}", "job", pub);
    return 200;
}
