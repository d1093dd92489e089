/*
 * lib/args.c - the arguments of mapi_apply_function and mapi_apply_function_array.
 *
 * A function's argument descriptor (from mapid, GET_FUNCTION) has one letter per argument:
 *   s  string                      S  "fid@fd,fid@fd,..." list of function references
 *   R  "fd,fd,..." list of flows   r  flow reference: one of our descriptors
 *   i  int
 *   f  function reference (fid)    c  char (an int in varargs)
 *   l  unsigned long long          w  name of a file to write: we create it and send the fd
 * The varargs form reads C values by letter; the array form converts strings:
 *   i, r, f  decimal int (surrounding blanks allowed, nothing else)
 *   l        decimal unsigned long long (no sign)
 *   c        a one-character string is that character, anything longer a decimal number
 *            in -128..255
 *   s, S, R, w  the string itself.
 * Flow references are translated from our descriptors to mapid's flow ids: 'r' values and
 * the fd part of every "fid@fd" pair ('S'), every fd of an 'R' list. fids are mapid's already.
 *
 * Errors, by 1-based argument position: 7001..7005 for the first five, 7011 for the sixth,
 * 7000 after that (and for a wrong argument count in the array form); 6155 for a NULL or
 * unopenable 'w' file name, 3083 if that file exists already; 7010 for a letter we do not
 * know. 'w' files are created only after every other argument has been checked, and removed
 * again by lm_args_free(a, 1) if the apply fails.
 *
 * Confinement (lm_args_set_file_root, used by mapicommd for its remote applications): 'w'
 * files are then opened with openat2 beneath a directory descriptor with RESOLVE_BENEATH and
 * RESOLVE_NO_SYMLINKS, so no name ("..", an absolute path, a symbolic link planted anywhere
 * on the way) reaches a file outside it, and an existing file is only reused (MFF_OVERWRITE)
 * if it is a regular file with one link (a hard link to a file elsewhere is refused, so the
 * function's truncation never reaches outside). Ordinary applications open files as the
 * program would (relative to the working directory).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/internal.h"

static void unlink_w(const char *name);

int lm_args_position_error(int pos)
{
    if (pos >= 1 && pos <= 5)
        return MFUNCT_INVALID_ARGUMENT + pos;
    if (pos == 6)
        return MFUNCT_INVALID_ARGUMENT_6;
    return MFUNCT_INVALID_ARGUMENT;
}

static int bad_arg(int pos, const char *fmt, const char *what)
{
    lm_set_error(lm_args_position_error(pos), fmt, pos, what);
    return -1;
}

int lm_is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int lm_parse_int(const char *s, long lo, long hi, int32_t *out)
{
    if (!s)
        return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || errno)
        return -1;
    while (lm_is_blank(*end))
        end++;
    if (*end || v < lo || v > hi)
        return -1;
    *out = (int32_t)v;
    return 0;
}

int lm_parse_ull(const char *s, uint64_t *out)
{
    if (!s)
        return -1;
    const char *p = s;
    while (lm_is_blank(*p))
        p++;
    if (*p == '-')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(p, &end, 10);
    if (end == p || errno)
        return -1;
    while (lm_is_blank(*end))
        end++;
    if (*end)
        return -1;
    *out = v;
    return 0;
}

/* Our descriptor -> mapid's flow id, or -1. */
static int translate_fd(int32_t fd)
{
    struct lib_flow *f = lm_flow_get(fd);
    return f ? f->id : -1;
}

int lm_list_next(const char **pp, int with_fid, long *fid, long *fd)
{
    const char *p = *pp;
    char *end;
    *fid = 0;
    while (lm_is_blank(*p))
        p++;
    if (with_fid) {
        errno = 0;
        *fid = strtol(p, &end, 10);
        if (end == p || errno || *fid < INT_MIN || *fid > INT_MAX)
            return -1;
        p = end;
        while (lm_is_blank(*p))
            p++;
        if (*p != '@')
            return -1;
        p++;
        while (lm_is_blank(*p))
            p++;
    }
    errno = 0;
    *fd = strtol(p, &end, 10);
    if (end == p || errno || *fd < INT_MIN || *fd > INT_MAX)
        return -1;
    p = end;
    while (lm_is_blank(*p))
        p++;
    if (*p == '\0') {
        *pp = p;
        return 0;
    }
    if (*p != ',')
        return -1;
    *pp = p + 1;
    return 1;
}

/*
 * 'S' "fid@fd,fid@fd" (with_fid) or 'R' "fd,fd" -> the same list with mapid's flow ids. A
 * string of blanks only is passed on unchanged (the function reports the missing list).
 * Returns a malloc'd string, or NULL with *why set.
 */
static char *translate_list(const char *in, int with_fid, const char **why)
{
    const char *p = in;
    while (lm_is_blank(*p))
        p++;
    if (!*p) {
        char *copy = strdup(in);
        if (!copy)
            *why = "out of memory";
        return copy;
    }
    size_t cap = strlen(in) + 64, len = 0;
    char *out = malloc(cap);
    if (!out) {
        *why = "out of memory";
        return NULL;
    }
    for (;;) {
        long fid, fd;
        int more = lm_list_next(&p, with_fid, &fid, &fd);
        if (more < 0)
            goto malformed;
        int id = translate_fd((int32_t)fd);
        if (id < 0) {
            *why = "refers to a flow descriptor that is not open";
            free(out);
            return NULL;
        }
        char item[48];
        int n = with_fid ? snprintf(item, sizeof(item), "%s%ld@%d", len ? "," : "", fid, id)
                         : snprintf(item, sizeof(item), "%s%d", len ? "," : "", id);
        if (len + (size_t)n + 1 > cap) {
            cap = cap * 2 + (size_t)n + 1;
            char *no = realloc(out, cap);
            if (!no) {
                *why = "out of memory";
                free(out);
                return NULL;
            }
            out = no;
        }
        memcpy(out + len, item, (size_t)n + 1);
        len += (size_t)n;
        if (!more)
            return out;
    }
malformed:
    *why = with_fid ? "is not a list of fid@fd pairs" : "is not a list of flow descriptors";
    free(out);
    return NULL;
}

static void free_parsed(struct lib_args *a)
{
    for (int i = 0; i < a->n; i++)
        free(a->a[i].owned);
    free(a->a);
    a->a = NULL;
    a->n = 0;
}

void lm_args_free(struct lib_args *a, int failed)
{
    for (int i = 0; i < a->nfds; i++) {
        if (a->fds[i] >= 0)
            close(a->fds[i]);
        if (failed && a->paths[i])
            unlink_w(a->paths[i]);
        free(a->paths[i]);
    }
    a->nfds = 0;
    free_parsed(a);
}

static int check_descr(const char *argdescr)
{
    for (const char *p = argdescr; *p; p++) {
        if (!strchr("sSRirfclw", *p)) {
            lm_set_error(MFUNCT_INVALID_ARGUMENT_DESCRIPTOR,
                         "argument descriptor \"%s\" has an unknown letter '%c'", argdescr, *p);
            return -1;
        }
    }
    return 0;
}

static int start(struct lib_args *out, const char *argdescr)
{
    memset(out, 0, sizeof(*out));
    if (check_descr(argdescr) < 0)
        return -1;
    size_t n = strlen(argdescr);
    if (n) {
        out->a = calloc(n, sizeof(*out->a));
        if (!out->a) {
            lm_set_error(MAPID_MEM_ALLOCATION_ERROR, "out of memory");
            return -1;
        }
    }
    out->n = (int)n;
    for (size_t i = 0; i < n; i++)
        out->a[i].type = argdescr[i];
    return 0;
}

/* Checks and translates string arguments ('s', 'S', 'r' values are done by the callers). */
static int finish_strings(struct lib_args *out)
{
    for (int i = 0; i < out->n; i++) {
        struct lib_arg *a = &out->a[i];
        int pos = i + 1;
        if (a->type == 's' && !a->s)
            return bad_arg(pos, "argument %d (%s) is NULL", "a string");
        if (a->type == 'S' || a->type == 'R') {
            if (!a->s)
                return bad_arg(pos, "argument %d (%s) is NULL",
                               a->type == 'S' ? "a fid@fd list" : "a list of flows");
            const char *why = NULL;
            a->owned = translate_list(a->s, a->type == 'S', &why);
            if (!a->owned) {
                lm_set_error(lm_args_position_error(pos), "argument %d \"%s\" %s", pos, a->s, why);
                return -1;
            }
            a->s = a->owned;
        }
    }
    return 0;
}

static int file_root = -1; /* lm_args_set_file_root; -1: the working directory */

void lm_args_set_file_root(int dirfd)
{
    file_root = dirfd;
}

/* Opens name for writing as open_files wants it: beneath file_root when set. fd or -1
 * (errno). */
static int open_w(const char *name, int flags)
{
    if (file_root < 0)
        return open(name, flags, 0644);
    struct open_how how;
    memset(&how, 0, sizeof(how));
    how.flags = (uint64_t)(flags | O_NOCTTY | O_NONBLOCK);
    how.mode = (flags & O_CREAT) ? 0644 : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    long fd = syscall(SYS_openat2, file_root, name, &how, sizeof(how));
    if (fd < 0)
        return -1;
    struct stat st;
    int okst = fstat((int)fd, &st) == 0;
    if (!okst || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
        int e = okst && S_ISREG(st.st_mode) ? EMLINK : EINVAL;
        close((int)fd);
        errno = e;
        return -1;
    }
    int fl = fcntl((int)fd, F_GETFL);
    if (fl >= 0)
        fcntl((int)fd, F_SETFL, fl & ~O_NONBLOCK);
    return (int)fd;
}

/* Why open_w failed, for the error message. */
static const char *open_w_error(int e)
{
    if (file_root < 0)
        return strerror(e);
    switch (e) {
    case EXDEV:
        return "the name leads outside the directory of remote files (dimapi_file_dir)";
    case ELOOP:
        return "the name goes through a symbolic link (refused in dimapi_file_dir)";
    case EMLINK:
        return "the file has other hard links (refused in dimapi_file_dir)";
    case EINVAL:
        return "not a regular file, or a name that is not allowed in dimapi_file_dir";
    default:
        return strerror(e);
    }
}

static void unlink_w(const char *name)
{
    if (file_root < 0)
        unlink(name);
    else
        unlinkat(file_root, name, 0);
}

/* Creates the 'w' files, last, so that a bad argument elsewhere leaves no file behind. */
static int open_files(struct lib_args *out)
{
    for (int i = 0; i < out->n; i++) {
        struct lib_arg *a = &out->a[i];
        if (a->type != 'w')
            continue;
        if (!a->s) {
            lm_set_error(MAPI_ERROR_FILE, "argument %d: NULL file name", i + 1);
            return -1;
        }
        if (out->nfds >= WIRE_MAX_FDS) {
            lm_set_error(MFUNCT_INVALID_ARGUMENT, "too many file arguments");
            return -1;
        }
        /* An int argument just before the file may ask to replace an existing file
         * (MFF_OVERWRITE in TO_FILE's format); the function truncates it when it starts. */
        int overwrite = i > 0 && out->a[i - 1].type == 'i' && (out->a[i - 1].i & MFF_OVERWRITE);
        int created = 1;
        int fd = open_w(a->s, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC);
        if (fd < 0 && errno == EEXIST && overwrite) {
            created = 0;
            fd = open_w(a->s, O_WRONLY | O_CLOEXEC);
        }
        if (fd < 0) {
            if (errno == EEXIST)
                lm_set_error(MDLIB_FILE_EXSISTS,
                             "%s exists (add MFF_OVERWRITE to the format to replace it)", a->s);
            else
                lm_set_error(MAPI_ERROR_FILE, "%s: %s", a->s, open_w_error(errno));
            return -1;
        }
        char *path = created ? strdup(a->s) : NULL;
        if (created && !path) {
            close(fd);
            unlink_w(a->s);
            lm_set_error(MAPID_MEM_ALLOCATION_ERROR, "out of memory");
            return -1;
        }
        a->fdidx = out->nfds;
        out->fds[out->nfds] = fd;
        out->paths[out->nfds] = path;
        out->nfds++;
    }
    return 0;
}

static int finish(struct lib_args *out)
{
    if (finish_strings(out) < 0 || open_files(out) < 0) {
        lm_args_free(out, 1);
        return -1;
    }
    return 0;
}

int lm_args_from_va(struct lib_args *out, const char *argdescr, int nvar, va_list ap)
{
    if (start(out, argdescr) < 0)
        return -1;
    if (nvar > out->n) {
        lm_set_error(MFUNCT_INVALID_ARGUMENT, "%d arguments given, the function takes %d (\"%s\")",
                     nvar, out->n, argdescr);
        free_parsed(out);
        return -1;
    }
    for (int i = 0; i < out->n; i++) {
        struct lib_arg *a = &out->a[i];
        if (nvar >= 0 && i >= nvar) {
            /* Not passed (the call site's argument count is known): numbers default to 0,
             * as the tutorial's TO_BUFFER without its flag means WAIT; strings are required. */
            if (a->type == 'i' || a->type == 'c' || a->type == 'l' || a->type == 'f') {
                a->i = 0;
                a->l = 0;
                continue;
            }
            lm_set_error(lm_args_position_error(i + 1), "argument %d (type '%c') is missing", i + 1,
                         a->type);
            free_parsed(out);
            return -1;
        }
        switch (a->type) {
        case 's':
        case 'S':
        case 'R':
        case 'w':
            a->s = va_arg(ap, const char *);
            break;
        case 'l':
            a->l = va_arg(ap, unsigned long long);
            break;
        default: /* i r f c */
            a->i = va_arg(ap, int);
            break;
        }
        if (a->type == 'r') {
            int id = translate_fd(a->i);
            if (id < 0) {
                lm_set_error(lm_args_position_error(i + 1),
                             "argument %d: flow descriptor %d is not open", i + 1, (int)a->i);
                free_parsed(out);
                return -1;
            }
            a->i = id;
        }
    }
    return finish(out);
}

int lm_args_from_array(struct lib_args *out, const char *argdescr, char **args, int nargs)
{
    if (nargs < 0 || (nargs > 0 && !args) || (size_t)nargs != strlen(argdescr)) {
        lm_set_error(MFUNCT_INVALID_ARGUMENT, "the function takes %zu arguments (\"%s\"), got %d",
                     strlen(argdescr), argdescr, nargs);
        return -1;
    }
    if (start(out, argdescr) < 0)
        return -1;
    for (int i = 0; i < out->n; i++) {
        struct lib_arg *a = &out->a[i];
        const char *s = args[i];
        int pos = i + 1, bad = 0;
        switch (a->type) {
        case 's':
        case 'S':
        case 'R':
        case 'w':
            a->s = s;
            break;
        case 'l':
            bad = lm_parse_ull(s, &a->l) < 0;
            break;
        case 'c':
            if (s && strlen(s) == 1)
                a->i = (unsigned char)s[0];
            else
                bad = lm_parse_int(s, -128, 255, &a->i) < 0;
            break;
        default: /* i r f */
            bad = lm_parse_int(s, INT_MIN, INT_MAX, &a->i) < 0;
            break;
        }
        if (bad) {
            lm_set_error(lm_args_position_error(pos), "argument %d \"%s\" is not a valid %s", pos,
                         s ? s : "(null)",
                         a->type == 'l'   ? "unsigned number"
                         : a->type == 'c' ? "character"
                                          : "integer");
            free_parsed(out);
            return -1;
        }
        if (a->type == 'r') {
            int id = translate_fd(a->i);
            if (id < 0) {
                lm_set_error(lm_args_position_error(pos),
                             "argument %d: flow descriptor %d is not open", pos, (int)a->i);
                free_parsed(out);
                return -1;
            }
            a->i = id;
        }
    }
    return finish(out);
}

void lm_args_encode(const struct lib_args *a, struct wire_writer *w)
{
    wire_put_u32(w, (uint32_t)a->n);
    for (int i = 0; i < a->n; i++) {
        const struct lib_arg *x = &a->a[i];
        wire_put_u8(w, (uint8_t)x->type);
        switch (x->type) {
        case 's':
        case 'S':
        case 'R':
            wire_put_str(w, x->s);
            break;
        case 'l':
            wire_put_u64(w, x->l);
            break;
        case 'w':
            wire_put_u32(w, (uint32_t)x->fdidx);
            break;
        default:
            wire_put_i32(w, x->i);
            break;
        }
    }
}
