/*
 * Error codes shared by every capatlas module.  Functions return 0 on
 * success or one of these negative codes; human detail goes into a
 * caller-supplied buffer.  fcgi/ maps each code to one HTTP status.
 */
#ifndef CA_ERROR_H
#define CA_ERROR_H

#include <stddef.h>

enum ca_err {
    CA_OK = 0,
    CA_ENOMEM = -1,     /* allocation failed */
    CA_EINVAL = -2,     /* bad argument or input field (HTTP 400) */
    CA_ENOTFOUND = -3,  /* no such object (404) */
    CA_EEXIST = -4,     /* already exists (409) */
    CA_EIO = -5,        /* file or socket I/O failed (500) */
    CA_ESTORE = -6,     /* LMDB failure (500) */
    CA_EFORMAT = -7,    /* not a capture, or a damaged one (422) */
    CA_EAUTH = -8,      /* not authenticated (401) */
    CA_EFORBIDDEN = -9, /* authenticated but not allowed (403) */
    CA_ETOOBIG = -10,   /* over a size limit (413) */
    CA_EQUOTA = -11,    /* over a quota (413) */
    CA_EBUSY = -12,     /* try again later (503) */
    CA_ECANCELED = -13, /* cancelled by the user */
    CA_EINTERNAL = -14, /* a bug (500) */
    CA_ERR_MIN = -14
};

/* Static string describing err; never NULL. */
const char *ca_strerror(int err);

/*
 * Format into errbuf (if not NULL) and return err, so that call sites read
 * `return ca_seterr(errbuf, errlen, CA_EINVAL, "bad %s", x);`.
 */
int ca_seterr(char *errbuf, size_t errlen, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
