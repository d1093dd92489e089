/*
 * lib/info.c - libmapi's management calls: information about mapid's devices, function
 * libraries and their functions, flows and applied functions, and capture statistics.
 *
 * The "next" variants ask mapid for the first object with an id greater than the one given,
 * so loops start at -1 (or 0 for devices and flows, whose ids start at 1), e.g. the
 * tutorial's
 *     int id = -1; while (mapi_get_next_library_info(id++, &info) == 0) ...
 * which asks for next(-1) = library 0, next(0) = library 1, ...
 *
 * Every call returns 0 (mapi_stats: the number of entries filled, 1) or -1. When mapid
 * answers "no such object" (or any other error), the call reports its own error number
 * (below) with mapid's code and text in the detail of mapi_read_error. Connection errors
 * (5124, 5123, 6140) are reported as they are.
 */
#include <stdio.h>
#include <string.h>

#include "lib/internal.h"

/* Lock held. Sends w, remapping a daemon error to errcode. 0 with *rep, or -1. */
static int info_call(struct wire_writer *w, struct lib_reply *rep, int errcode)
{
    int rc = lm_client_call(w, NULL, 0, rep);
    if (rc == CLIENT_ERR_DAEMON && errcode)
        lm_remap_error(errcode);
    return rc < 0 ? -1 : 0;
}

static int null_info(int code)
{
    lm_set_error(code, "info pointer is NULL");
    return -1;
}

static int bad_reply(struct lib_reply *rep, const char *what)
{
    lm_client_reply_free(rep);
    lm_set_error(MCOM_UNKNOWN_ERROR, "malformed %s reply from mapid", what);
    return -1;
}

/* ---- devices ------------------------------------------------------------------------- */

static int device_info(int id, int next, mapi_device_info_t *info)
{
    if (!info)
        return null_info(MFUNCT_INVALID_ARGUMENT_2);
    lm_client_lock();
    int rc = -1;
    struct wire_writer w;
    struct lib_reply rep;
    if (lm_client_begin(&w, WIRE_DEVICE_INFO) < 0)
        goto out;
    wire_put_i32(&w, id);
    wire_put_u8(&w, (uint8_t)next);
    if (info_call(&w, &rep, MAPI_DEVICE_INFO_ERR) < 0)
        goto out;
    mapi_device_info_t d;
    memset(&d, 0, sizeof(d));
    d.id = wire_get_i32(&rep.r);
    lm_get_str_trunc(&rep.r, d.device, sizeof(d.device));
    lm_get_str_trunc(&rep.r, d.name, sizeof(d.name));
    lm_get_str_trunc(&rep.r, d.alias, sizeof(d.alias));
    lm_get_str_trunc(&rep.r, d.description, sizeof(d.description));
    d.link_speed = wire_get_i32(&rep.r);
    d.mpls = wire_get_i32(&rep.r);
    d.vlan = wire_get_i32(&rep.r);
    if (!wire_reader_ok(&rep.r)) {
        bad_reply(&rep, "DEVICE_INFO");
        goto out;
    }
    lm_client_reply_free(&rep);
    *info = d;
    rc = 0;
out:
    lm_client_unlock();
    return rc;
}

/* mapi_get_device_info: device number devicenum. Errors: 6157 no such device; 7002 info
 * NULL. */
MAPI_API int mapi_get_device_info(int devicenum, mapi_device_info_t *info)
{
    return device_info(devicenum, 0, info);
}

/* mapi_get_next_device_info: the device with the smallest id > devicenum. Errors: 6157 no
 * more devices; 7002 info NULL. */
MAPI_API int mapi_get_next_device_info(int devicenum, mapi_device_info_t *info)
{
    return device_info(devicenum, 1, info);
}

/* ---- libraries ----------------------------------------------------------------------- */

static int library_info(int id, int next, mapi_lib_info_t *info)
{
    if (!info)
        return null_info(MFUNCT_INVALID_ARGUMENT_2);
    lm_client_lock();
    int rc = -1;
    struct wire_writer w;
    struct lib_reply rep;
    if (lm_client_begin(&w, WIRE_LIBRARY_INFO) < 0)
        goto out;
    wire_put_i32(&w, id);
    wire_put_u8(&w, (uint8_t)next);
    if (info_call(&w, &rep, MAPI_LIBRARY_LOAD_ERR) < 0)
        goto out;
    mapi_lib_info_t l;
    memset(&l, 0, sizeof(l));
    l.id = wire_get_i32(&rep.r);
    lm_get_str_trunc(&rep.r, l.libname, sizeof(l.libname));
    l.functs = wire_get_u32(&rep.r);
    if (!wire_reader_ok(&rep.r)) {
        bad_reply(&rep, "LIBRARY_INFO");
        goto out;
    }
    lm_client_reply_free(&rep);
    *info = l;
    rc = 0;
out:
    lm_client_unlock();
    return rc;
}

/* mapi_get_library_info: library number libnum (0.., in the order of libs= in mapi.conf).
 * functs is the real number of functions. Errors: 6151 no such library (the original's
 * "error loading library"); 7002 info NULL. */
MAPI_API int mapi_get_library_info(int libnum, mapi_lib_info_t *info)
{
    return library_info(libnum, 0, info);
}

/* mapi_get_next_library_info: library libnum + 1 (next(-1) is library 0). Errors: 6151 no
 * more libraries; 7002 info NULL. */
MAPI_API int mapi_get_next_library_info(int libnum, mapi_lib_info_t *info)
{
    return library_info(libnum, 1, info);
}

static int libfunct_info(int lib, int fnum, int next, mapi_libfunct_info_t *info)
{
    if (!info)
        return null_info(MFUNCT_INVALID_ARGUMENT_3);
    lm_client_lock();
    int rc = -1;
    struct wire_writer w;
    struct lib_reply rep;
    if (lm_client_begin(&w, WIRE_LIBFUNCT_INFO) < 0)
        goto out;
    wire_put_i32(&w, lib);
    wire_put_i32(&w, fnum);
    wire_put_u8(&w, (uint8_t)next);
    if (info_call(&w, &rep, MAPI_LIBRARY_LOAD_ERR) < 0)
        goto out;
    mapi_libfunct_info_t fi;
    memset(&fi, 0, sizeof(fi));
    (void)wire_get_i32(&rep.r); /* fnum: the struct has no field for it */
    lm_get_str_trunc(&rep.r, fi.name, sizeof(fi.name));
    lm_get_str_trunc(&rep.r, fi.descr, sizeof(fi.descr));
    lm_get_str_trunc(&rep.r, fi.argdescr, sizeof(fi.argdescr));
    lm_get_str_trunc(&rep.r, fi.devtype, sizeof(fi.devtype));
    if (!wire_reader_ok(&rep.r)) {
        bad_reply(&rep, "LIBFUNCT_INFO");
        goto out;
    }
    lm_client_reply_free(&rep);
    *info = fi;
    rc = 0;
out:
    lm_client_unlock();
    return rc;
}

/* mapi_get_libfunct_info: function number fnum (0..) of library libnum. Errors: 6151 no such
 * library or function; 7003 info NULL. */
MAPI_API int mapi_get_libfunct_info(int libnum, int fnum, mapi_libfunct_info_t *info)
{
    return libfunct_info(libnum, fnum, 0, info);
}

/* mapi_get_next_libfunct_info: function fnum + 1 of library libnum (next(lib, -1) is
 * function 0). Errors: 6151 no more functions or no such library; 7003 info NULL. */
MAPI_API int mapi_get_next_libfunct_info(int libnum, int fnum, mapi_libfunct_info_t *info)
{
    return libfunct_info(libnum, fnum, 1, info);
}

/* mapi_get_libfunct_next_info: the tutorial's spelling of mapi_get_next_libfunct_info. */
MAPI_API int mapi_get_libfunct_next_info(int libnum, int fnum, mapi_libfunct_info_t *info)
{
    return libfunct_info(libnum, fnum, 1, info);
}

/* ---- flows --------------------------------------------------------------------------- */

/* Lock held. FLOW_INFO for mapid's flow id; info->fd is set to report_fd (or mapid's id). */
static int flow_info(int id, int next, int report_fd, mapi_flow_info_t *info)
{
    struct wire_writer w;
    struct lib_reply rep;
    if (lm_client_begin(&w, WIRE_FLOW_INFO) < 0)
        return -1;
    wire_put_i32(&w, id);
    wire_put_u8(&w, (uint8_t)next);
    if (info_call(&w, &rep, MAPI_FLOW_INFO_ERR) < 0)
        return -1;
    mapi_flow_info_t fl;
    memset(&fl, 0, sizeof(fl));
    fl.uid = (uid_t)wire_get_u32(&rep.r);
    fl.fd = wire_get_i32(&rep.r);
    fl.devid = wire_get_i32(&rep.r);
    lm_get_str_trunc(&rep.r, fl.device, sizeof(fl.device));
    fl.num_functions = wire_get_u32(&rep.r);
    fl.start = (time_t)wire_get_u64(&rep.r);
    fl.end = (time_t)wire_get_u64(&rep.r);
    fl.status = (enum mapi_flow_status)wire_get_u32(&rep.r);
    fl.cpu_ns = wire_get_u64(&rep.r);
    if (!wire_reader_ok(&rep.r))
        return bad_reply(&rep, "FLOW_INFO");
    lm_client_reply_free(&rep);
    if (report_fd > 0)
        fl.fd = report_fd;
    *info = fl;
    return 0;
}

/* mapi_get_flow_info: information on our flow fd; info->fd is fd. Errors: 6145 fd <= 0 or
 * unknown; 7002 info NULL; 6149 mapid has no such flow. */
MAPI_API int mapi_get_flow_info(int fd, mapi_flow_info_t *info)
{
    struct lib_flow *rf = lm_flow_get(fd);
    if (rf && rf->remote && info && (rf = lm_flow_acquire(fd)) != NULL) {
        /* Remote: the first live sensor's info, see lib/remote_flow.c. */
        int rrc = lm_remote_flow_info(rf, info);
        lm_flow_release(rf);
        return rrc;
    }
    lm_client_lock();
    int rc = -1;
    struct lib_flow *f = lm_flow_get(fd);
    if (!f)
        lm_set_error(MAPI_INVALID_FLOW, "flow descriptor %d is not open", fd);
    else if (!info)
        null_info(MFUNCT_INVALID_ARGUMENT_2);
    else
        rc = flow_info(f->id, 0, fd, info);
    lm_client_unlock();
    return rc;
}

/*
 * mapi_get_next_flow_info: the flow with the smallest mapid flow id > id among all flows this
 * user may see (root: all). Ids and info->fd are mapid's flow ids (not our descriptors), so
 * `id = info.fd` continues the iteration; start at 0. Errors: 6149 no more flows; 7002 info
 * NULL.
 */
MAPI_API int mapi_get_next_flow_info(int id, mapi_flow_info_t *info)
{
    if (!info)
        return null_info(MFUNCT_INVALID_ARGUMENT_2);
    lm_client_lock();
    int rc = flow_info(id, 1, 0, info);
    lm_client_unlock();
    return rc;
}

/* ---- applied functions --------------------------------------------------------------- */

static int function_info(int fd, int fid, int next, mapi_function_info_t *info)
{
    struct lib_flow *rf = lm_flow_get(fd);
    if (rf && rf->remote && info && (rf = lm_flow_acquire(fd)) != NULL) {
        /* Remote: our fid, counters summed over the sensors, see lib/remote_flow.c. */
        int rrc = lm_remote_function_info(rf, fid, next, info);
        lm_flow_release(rf);
        return rrc;
    }
    lm_client_lock();
    int rc = -1;
    struct wire_writer w;
    struct lib_reply rep;
    struct lib_flow *f = lm_flow_get(fd);
    if (fd <= 0) {
        lm_set_error(MAPI_INVALID_FLOW, "flow descriptor %d is not open", fd);
        goto out;
    }
    if (!info) {
        null_info(MFUNCT_INVALID_ARGUMENT_3);
        goto out;
    }
    if (lm_client_begin(&w, WIRE_FUNCTION_INFO) < 0)
        goto out;
    /* A descriptor that is not one of ours is taken as mapid's flow id, as
     * mapi_get_next_flow_info reports other applications' flows (the original's mapiinfo
     * lists their functions this way); mapid shows only flows the user may see. */
    wire_put_i32(&w, f ? f->id : fd);
    wire_put_i32(&w, fid);
    wire_put_u8(&w, (uint8_t)next);
    int call = lm_client_call(&w, NULL, 0, &rep);
    if (call == CLIENT_ERR_DAEMON && lm_last_error() != MAPI_INVALID_FLOW)
        lm_remap_error(MAPI_FUNCTION_INFO_ERR);
    if (call < 0)
        goto out;
    mapi_function_info_t fi;
    memset(&fi, 0, sizeof(fi));
    fi.fid = wire_get_i32(&rep.r);
    lm_get_str_trunc(&rep.r, fi.name, sizeof(fi.name));
    lm_get_str_trunc(&rep.r, fi.libname, sizeof(fi.libname));
    lm_get_str_trunc(&rep.r, fi.devtype, sizeof(fi.devtype));
    fi.pkts = wire_get_u64(&rep.r);
    fi.passed_pkts = wire_get_u64(&rep.r);
    fi.result_size = wire_get_i32(&rep.r);
    if (!wire_reader_ok(&rep.r)) {
        bad_reply(&rep, "FUNCTION_INFO");
        goto out;
    }
    lm_client_reply_free(&rep);
    *info = fi;
    rc = 0;
out:
    lm_client_unlock();
    return rc;
}

/* mapi_get_function_info: function fid of our flow fd. Errors: 6145 fd <= 0 or unknown;
 * 7003 info NULL; 6150 no such fid. */
MAPI_API int mapi_get_function_info(int fd, int fid, mapi_function_info_t *info)
{
    return function_info(fd, fid, 0, info);
}

/* mapi_get_next_function_info: the function of flow fd with the smallest fid > fid (start
 * at 0). Errors: 6145 fd <= 0 or unknown; 7003 info NULL; 6150 no more functions. */
MAPI_API int mapi_get_next_function_info(int fd, int fid, mapi_function_info_t *info)
{
    return function_info(fd, fid, 1, info);
}

/* ---- statistics ---------------------------------------------------------------------- */

/*
 * mapi_stats: capture statistics of device dev into stats[0], with hostname "localhost".
 * Returns 1 (the number of entries filled) or -1. Errors: 8004 dev NULL; 7002 stats NULL;
 * from mapid: 3202 unknown device, 8004 no statistics yet.
 * For a remote scope, stats must have room for one entry per scope item: entry i is item i
 * (hostname as the sensor names itself); returns the number of items, or -1 with the error of
 * the first sensor that failed (naming it). See lm_remote_stats in lib/remote.c.
 */
MAPI_API int mapi_stats(const char *dev, struct mapi_stat *stats)
{
    if (!dev) {
        lm_set_error(MAPI_STATS_ERROR, "device name is NULL");
        return -1;
    }
    if (!stats)
        return null_info(MFUNCT_INVALID_ARGUMENT_2);
    lm_client_lock();
    int rc = -1;
    struct wire_writer w;
    struct lib_reply rep;
    if (lm_is_remote_scope(dev)) {
        lm_client_unlock();
        return lm_remote_stats(dev, stats);
    }
    if (lm_client_begin(&w, WIRE_STATS) < 0)
        goto out;
    wire_put_str(&w, dev);
    if (info_call(&w, &rep, 0) < 0)
        goto out;
    struct mapi_stat st;
    memset(&st, 0, sizeof(st));
    st.ps_recv = wire_get_u32(&rep.r);
    st.ps_drop = wire_get_u32(&rep.r);
    st.ps_ifdrop = wire_get_u32(&rep.r);
    lm_get_str_trunc(&rep.r, st.dev, sizeof(st.dev));
    if (!wire_reader_ok(&rep.r)) {
        bad_reply(&rep, "STATS");
        goto out;
    }
    lm_client_reply_free(&rep);
    memcpy(st.hostname, "localhost", sizeof("localhost"));
    if (!st.dev[0])
        snprintf(st.dev, sizeof(st.dev), "%s", dev);
    *stats = st;
    rc = 1;
out:
    lm_client_unlock();
    return rc;
}
