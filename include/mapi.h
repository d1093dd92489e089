/*
 * mapi.h - the public API of libmapi, the Monitoring Application Programming Interface.
 *
 * An application creates network flows on a device (a NIC named in mapi.conf or a trace
 * file), applies functions from the function libraries that mapid loaded, connects the flow
 * and then reads results (mapi_read_results) or packets (mapi_get_next_pkt, mapi_loop).
 * Source compatible with the original MAPI header (FORTH-ICS / UNINETT), see
 * docs/ARCHITECTURE.md for the differences.
 *
 * Conventions: calls that return int return -1 on error (pointer calls return NULL) and
 * set a per-thread last error that mapi_read_error() reads and clears. Memory returned by
 * the library is owned by the library unless a call says otherwise.
 */
#ifndef MAPI_H
#define MAPI_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MAPI_API __attribute__((visibility("default")))
#define MAPI_UNUSED __attribute__((__unused__))
#else
#define MAPI_API
#define MAPI_UNUSED
#endif

#define MAPI_VERSION_STRING "0.1.0"

#define MAPI_STR_LENGTH 256
#define MAPI_ERRORSTR_LENGTH 512
#define DEFAULT_DIMAPI_PORT 2233

#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif
typedef int boolean_t;

/* Argument type codes of the original serializer (kept for source compatibility). */
#define INT 1
#define STRING 2
#define UNSIGNED_LONG_LONG 3
#define CHAR 4
typedef unsigned char mapiFunctArg;

/* Trace file formats (names used in the [format] sections of mapi.conf). */
enum mapi_file_formats {
    MFF_PCAP = 0,
    MFF_RAW = 1,
    MFF_DAG_ERF = 2,
    MFF_COMBO6 = 3,
    MFF_NAPATECH = 4,
    MFF_PCAPNG = 5 /* ours: TO_FILE writes pcapng (nanosecond timestamps) */
};
#define MFF_PCAP_STR "MFF_PCAP"
#define MFF_DAG_ERF_STR "MFF_DAG_ERF"
#define MFF_NAPATECH_STR "MFF_NAPATECH"
/* ORed into TO_FILE's format: replace an existing file instead of failing with 3083. In
 * general, a 'w' (file) argument right after an int argument carrying this bit is opened with
 * O_TRUNC instead of O_EXCL. */
#define MFF_OVERWRITE 0x100

enum mapi_read_result_method { MAPI_COPY, MAPI_REF };
enum cooking_direction { CLIENT_SIDE = 1, SERVER_SIDE, BOTH_SIDE };
/* Argument of TO_BUFFER: block in mapi_get_next_pkt (WAIT) or return NULL at once (NOWAIT). */
enum toba_flg { WAIT = 0, NOWAIT };

typedef enum {
    DEVICE_ONLINE,
    DEVICE_SETUP,
    DEVICE_READING,
    DEVICE_FINISHED,
    DEVICE_DELETED
} mapi_offline_device_status_t;

/* FLOW_FINISHED means an offline flow reached the end of its trace. */
enum mapi_flow_status { FLOW_INIT, FLOW_ACTIVE, FLOW_FINISHED, FLOW_CLOSED };

typedef struct mapi_flow_info {
    uid_t uid;
    int fd; /* mapi_get_flow_info: the application's fd; mapi_get_next_flow_info: mapid's id */
    int devid;
    char device[MAPI_STR_LENGTH];
    unsigned num_functions;
    time_t start; /* time of mapi_connect, 0 before */
    time_t end;   /* time of close, 0 while open */
    enum mapi_flow_status status;
    /* Nanoseconds mapid's capture thread spent in this flow's functions so far: who costs
     * what on a shared device. Estimated by sampling (one packet in 64 of large batches is
     * timed with CLOCK_MONOTONIC and scaled), so cheap flows show a rough figure; 0 for a flow
     * whose identical chain another flow runs (function sharing) and for remote flows when
     * the sensor does not report it. New at the end of the struct: recompile applications. */
    unsigned long long cpu_ns;
} mapi_flow_info_t;

typedef struct mapi_function_info {
    int fid;
    char name[MAPI_STR_LENGTH];
    char libname[MAPI_STR_LENGTH];
    char devtype[MAPI_STR_LENGTH];
    unsigned long long pkts;        /* packets the function saw */
    unsigned long long passed_pkts; /* packets it passed on */
    int result_size;
} mapi_function_info_t;

/*
 * A packet record as handed out by mapi_get_next_pkt and mapi_loop. `pkt` is the first
 * byte of the captured frame: use &rec->pkt. ts is 32.32 fixed point: seconds since the
 * Unix epoch in the upper 32 bits, a binary fraction of a second in the lower 32.
 */
struct mapipkt {
    unsigned long long ts;
    unsigned short ifindex;
    unsigned caplen;
    unsigned wlen;
    unsigned char pkt;
};

/* What mapi_read_results returns; ts is microseconds since the Unix epoch (time of the read). */
typedef struct mapi_results {
    void *res;
    unsigned long long ts;
    int size;
} mapi_results_t;

typedef struct mapi_device_info {
    int id;
    char device[MAPI_STR_LENGTH];
    char name[MAPI_STR_LENGTH]; /* driver name */
    char alias[MAPI_STR_LENGTH];
    char description[1024];
    int link_speed;
    int mpls;
    int vlan;
} mapi_device_info_t;

typedef struct mapi_libfunct_info {
    char name[MAPI_STR_LENGTH];
    char descr[1024];
    char argdescr[MAPI_STR_LENGTH];
    char devtype[MAPI_STR_LENGTH];
} mapi_libfunct_info_t;

typedef struct mapi_lib_info {
    int id;
    char libname[MAPI_STR_LENGTH];
    unsigned int functs; /* number of functions (the original reported one less) */
} mapi_lib_info_t;

struct mapi_stat {
    unsigned ps_recv;   /* packets seen by the capture */
    unsigned ps_drop;   /* dropped by mapid: full TO_BUFFER rings of live flows */
    unsigned ps_ifdrop; /* dropped by the kernel or the interface */
    char hostname[MAPI_STR_LENGTH];
    char dev[MAPI_STR_LENGTH];
};

typedef void (*mapi_handler)(const struct mapipkt *);

/*
 * Flows. mapi_create_flow returns a flow descriptor >= 1 or -1. dev is a device of mapi.conf,
 * a trace device from mapi_create_offline_device, or a DiMAPI scope of remote sensors:
 * "host:dev, host:port:dev, [v6addr]:dev, [v6addr]:port:dev" (every call then works on all of
 * them; results come back as one entry per sensor, in scope order; semantics in
 * lib/remote_flow.c and docs/dimapi.md).
 */
MAPI_API int mapi_create_flow(const char *dev);
/* Creates an offline device and a flow on it in one step; reading starts at mapi_connect. */
MAPI_API int mapi_create_offline_flow(const char *path, int format);
/* Returns the new device name, malloc'd: free it with mapi_delete_offline_device. */
MAPI_API char *mapi_create_offline_device(const char *path, int format);
MAPI_API int mapi_start_offline_device(const char *dev);
/* Stops and deletes the offline device and frees `dev` (the string from create). */
MAPI_API int mapi_delete_offline_device(char *dev);
MAPI_API int mapi_close_flow(int fd);

/*
 * Functions. Returns a function descriptor >= 1 or -1; varargs follow the function's argdescr
 * (s S: const char *, i r f c: int, l: unsigned long long, w: const char * file name).
 * mapi_apply_function is a macro that counts the arguments at compile time and calls
 * mapi_apply_function_n, so that a missing trailing number defaults to 0 (the tutorial's
 * TO_BUFFER without a flag means WAIT) and a missing string or an extra argument is an error
 * (7000..7005) instead of undefined behaviour. Define MAPI_NO_ARG_COUNT before including
 * mapi.h to call the plain function. Errors: 6145 unknown fd, 7006 flow already connected,
 * 6144 unknown function, 7000-7011 bad arguments, 1025 bad BPF expression, ...
 */
MAPI_API int mapi_apply_function(int fd, const char *funct, ...);
MAPI_API int mapi_apply_function_n(int fd, int nvarargs, const char *funct, ...);
#ifndef MAPI_NO_ARG_COUNT
#define MAPI_NARGS_N_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, N,    \
                      ...)                                                                         \
    N
#define MAPI_NARGS_(...)                                                                           \
    MAPI_NARGS_N_(__VA_ARGS__, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define mapi_apply_function(fd, ...)                                                               \
    mapi_apply_function_n((fd), MAPI_NARGS_(__VA_ARGS__) - 1, __VA_ARGS__)
#endif
/* Same, with every argument given as a string and converted according to the descriptor. */
MAPI_API int mapi_apply_function_array(int fd, const char *funct, char **args, int nargs);
MAPI_API int mapi_connect(int fd);

/* Results: a library-owned struct reused by the next call on the same (fd, fid); for a remote
 * flow an array of mapi_get_scope_size(fd) of them, in scope order. */
MAPI_API mapi_results_t *mapi_read_results(int fd, int fid);
/* Next packet of a TO_BUFFER fid; valid until the next call on that fid. NULL at end or error. */
MAPI_API struct mapipkt *mapi_get_next_pkt(int fd, int fid);
/* Calls cb for the next cnt packets (cnt <= 0: until the end). Returns 0 at a clean end. */
MAPI_API int mapi_loop(int fd, int fid, int cnt, mapi_handler cb);

/* Errors: copies the last error of this thread (errstr needs MAPI_ERRORSTR_LENGTH) and clears it.
 */
MAPI_API int mapi_read_error(int *err_no, char *errstr);

/* Management. */
MAPI_API int mapi_get_device_info(int devicenum, mapi_device_info_t *info);
MAPI_API int mapi_get_next_device_info(int devicenum, mapi_device_info_t *info);
MAPI_API int mapi_get_library_info(int libnum, mapi_lib_info_t *info);
MAPI_API int mapi_get_next_library_info(int libnum, mapi_lib_info_t *info);
MAPI_API int mapi_get_libfunct_info(int libnum, int fnum, mapi_libfunct_info_t *info);
MAPI_API int mapi_get_next_libfunct_info(int libnum, int fnum, mapi_libfunct_info_t *info);
/* The tutorial's spelling of the same call. */
MAPI_API int mapi_get_libfunct_next_info(int libnum, int fnum, mapi_libfunct_info_t *info);
MAPI_API int mapi_get_flow_info(int fd, mapi_flow_info_t *info);
MAPI_API int mapi_get_next_flow_info(int fd, mapi_flow_info_t *info);
MAPI_API int mapi_get_function_info(int fd, int fid, mapi_function_info_t *info);
MAPI_API int mapi_get_next_function_info(int fd, int fid, mapi_function_info_t *info);
/* Capture statistics of a device; returns the number of entries filled (1 locally). */
MAPI_API int mapi_stats(const char *dev, struct mapi_stat *stats);

/* Number of sensors of the flow (1 for a local flow), and whether it is a DiMAPI flow. */
MAPI_API int mapi_get_scope_size(int fd);
MAPI_API int mapi_is_remote(int fd);

#ifdef __cplusplus
}
#endif
#endif /* MAPI_H */
