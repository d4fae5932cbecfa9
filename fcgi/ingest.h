/*
 * New captures from anywhere that is not a browser upload: a URL, an
 * Azure container listing, a `curl -T` stream, the inbox folder.  One
 * function makes the capture record, gives it its file under
 * DATA/workspaces/<ws>/captures/ (moving a given file there, or creating
 * an empty one to be filled) and queues its job, so every source shows the
 * same records.  Used by API workers, import workers and the inbox watcher.
 */
#ifndef CA_INGEST_H
#define CA_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct ca_portal;
struct ca_ws;

struct ingest_req {
    uint64_t ws_id;
    const char *name;      /* display name (checked by the caller) */
    const char *source;    /* display source, already redacted */
    const char *kind;      /* job kind: "import", "url", "stream" */
    const char *move_from; /* file to move in (rename, or copy+unlink); NULL = new empty file */
    json_t *cap_extra;     /* merged into the capture record (borrowed; may be NULL) */
    json_t *job_extra;     /* merged into the job record (borrowed; may be NULL) */
    uint64_t bytes_total;  /* 0 when unknown */
};

/*
 * Creates the capture and its queued job.  On success *cap_id, *job_id and
 * path (the capture file, len >= PATH_MAX) are set.  On failure nothing is
 * left behind but a move_from file that was not moved.  0 or a ca_err.
 */
int ingest_create(struct ca_portal *p, struct ca_ws *w, const char *datadir,
                  const struct ingest_req *req, uint32_t *cap_id, uint64_t *job_id, char *path,
                  size_t len, char *err, size_t errlen);

/* Moves src to dst (rename, or copy and unlink across file systems).  0 or -1 (errno). */
int ingest_move(const char *src, const char *dst);

#endif
