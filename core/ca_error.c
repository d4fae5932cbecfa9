/*
 * The single table of error strings for enum ca_err.
 */
#include <stdarg.h>
#include <stdio.h>

#include "ca_error.h"

static const char *const ca_errstr[] = {
    "success",         "out of memory",       "invalid input",
    "not found",       "already exists",      "input/output error",
    "storage error",   "not a valid capture", "authentication required",
    "forbidden",       "too large",           "quota exceeded",
    "busy, try again", "cancelled",           "internal error",
};

const char *ca_strerror(int err)
{
    if (err > 0 || err < CA_ERR_MIN)
        return "unknown error";
    return ca_errstr[-err];
}

int ca_seterr(char *errbuf, size_t errlen, int err, const char *fmt, ...)
{
    va_list ap;

    if (errbuf != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return err;
}
