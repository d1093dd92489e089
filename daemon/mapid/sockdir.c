/*
 * daemon/mapid/sockdir.c - makes sure no other local user can take or replace mapid's socket.
 *
 * The socket's directory is created when missing (one level: mode 0750, group socket_group,
 * so only that group can reach the socket). Then the directory and each of its ancestors
 * (after resolving symbolic links) must be owned by root or by mapid's own uid, and must not
 * be writable by group or others unless sticky (like /tmp): otherwise another user could
 * rename it away and put an impostor in its place. In a sticky directory that others can
 * write, an existing socket path must belong to mapid's uid. Anything else is refused with a
 * message naming the path and the reason; mapid then exits with a non-zero status.
 */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/mapid/mapid.h"

/* Checks one directory of the chain: 0, or -1 with msg. */
static int check_dir(const char *dir, uid_t self, char *msg, size_t msglen)
{
    struct stat st;
    if (stat(dir, &st) < 0) {
        snprintf(msg, msglen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(msg, msglen, "%s is not a directory", dir);
        return -1;
    }
    if (st.st_uid != 0 && st.st_uid != self) {
        snprintf(msg, msglen, "%s belongs to uid %u, not to root or mapid's uid %u", dir,
                 (unsigned)st.st_uid, (unsigned)self);
        return -1;
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
        snprintf(msg, msglen, "%s (mode %04o) is writable by other users and not sticky", dir,
                 (unsigned)(st.st_mode & 07777));
        return -1;
    }
    return 0;
}

int sockdir_prepare(const char *path, const char *group, char *msg, size_t msglen)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == path)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    uid_t self = geteuid();
    struct stat st;
    if (stat(dir, &st) < 0 && errno == ENOENT) {
        if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
            snprintf(msg, msglen,
                     "cannot create the socket directory %s: %s (set socket= in mapi.conf to a "
                     "directory mapid may use)",
                     dir, strerror(errno));
            return -1;
        }
        struct group *g = getgrnam(group);
        if (g && chown(dir, (uid_t)-1, g->gr_gid) < 0)
            mapi_log(LOG_LVL_WARN, "cannot give %s to group %s: %s", dir, group, strerror(errno));
        chmod(dir, 0750);
        mapi_log(LOG_LVL_INFO, "created the socket directory %s (mode 0750, group %s)", dir,
                 g ? group : "of mapid");
    }
    char real[PATH_MAX];
    if (!realpath(dir, real)) {
        snprintf(msg, msglen, "socket directory %s: %s", dir, strerror(errno));
        return -1;
    }
    /* The directory itself, then every ancestor up to /. */
    char cur[PATH_MAX];
    memcpy(cur, real, strlen(real) + 1);
    for (;;) {
        if (check_dir(cur, self, msg, msglen) < 0)
            return -1;
        if (strcmp(cur, "/") == 0)
            break;
        char *p = strrchr(cur, '/');
        if (p == cur)
            cur[1] = 0;
        else
            *p = 0;
    }
    /* A sticky directory others can write (/tmp): the path must be ours if it exists. */
    if (stat(real, &st) == 0 && (st.st_mode & (S_IWGRP | S_IWOTH))) {
        struct stat sst;
        if (lstat(path, &sst) == 0 && sst.st_uid != self) {
            snprintf(msg, msglen,
                     "%s exists and belongs to uid %u, in a directory other users can write", path,
                     (unsigned)sst.st_uid);
            return -1;
        }
    }
    return 0;
}
