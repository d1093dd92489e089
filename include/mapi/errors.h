/*
 * mapi/errors.h - error numbers of MAPI, the same numbers as the original implementation.
 *
 * One X-macro table yields the constants and the texts (lib/errors.c builds the text
 * lookup from it). mapi_read_error() returns these numbers; the daemon sends them on the wire.
 */
#ifndef MAPI_ERRORS_H
#define MAPI_ERRORS_H

// clang-format off
#define MAPI_ERROR_TABLE(X)                                                                        \
    X(1025, PCAP_BPF_ERR, "libpcap: error in BPF filter")                                          \
    X(1026, PCAP_OPEN_ERR, "libpcap: error opening pcap link")                                     \
    X(1027, PCAP_OPEN_DEAD_ERR, "libpcap: error creating pcap_t")                                  \
    X(1100, NICDRV_PTHR_ERR, "NIC driver: could not start the capture thread")                     \
    X(1501, DRV_OFF_ERR, "driver does not support offline flows")                                  \
    X(3073, MDLIB_ERROR_NOT_FOUND, "error not found")                                              \
    X(3074, MDLIB_INVALID_FLID, "invalid flow descriptor")                                         \
    X(3075, MDLIB_SHM_ERR, "error allocating shared memory")                                       \
    X(3078, MDLIB_INVALID_FUNCID, "invalid function id")                                           \
    X(3079, MDLIB_FUNCTION_NOT_FOUND, "function not found")                                        \
    X(3080, MDLIB_COULD_NOT_APPLY_FUNCT, "could not apply function")                               \
    X(3081, MDLIB_FLOW_ALREADY_ACTIVE, "flow already active")                                      \
    X(3083, MDLIB_FILE_EXSISTS, "file already exists")                                             \
    X(3084, MAPID_MEM_ALLOCATION_ERROR, "error allocating memory")                                 \
    X(3085, MAPID_LIMIT_EXCEEDED, "per-user limit of mapi.conf exceeded")                          \
    X(3086, MAPID_PERMISSION_DENIED, "permission denied: the flow belongs to another user")        \
    X(3200, MAPID_NO_DRIVER, "no driver found for this device")                                    \
    X(3201, MAPID_NO_FD, "could not receive file descriptor")                                      \
    X(3202, MAPID_NO_DEVICE, "no such device")                                                     \
    X(3203, MAPID_BAD_TRACE, "trace file is not a readable capture")                               \
    X(3503, MDLIB_STRSEARCH_UNTERMINATED_PIPE_ERR, "unterminated | in search pattern")             \
    X(3504, MDLIB_STRSEARCH_DEPTH_LESS_THAN_PTRN_ERR, "search depth less than pattern length")     \
    X(3505, MDLIB_STRSEARCH_NOT_A_VALID_SEARCH_STRING, "not a valid search string")                \
    X(5121, MCOM_UNKNOWN_ERROR, "unknown communication error")                                     \
    X(5122, MCOM_ERROR_ACK, "error acknowledgement")                                               \
    X(5123, MCOM_SOCKET_ERROR, "connection lost (mapid, or a sensor's mapicommd)")                 \
    X(5124, MCOM_INIT_SOCKET_ERROR, "cannot connect (is mapid, or the sensor's mapicommd, running?)") \
    X(6140, MAPI_SHUTTING_DOWN, "mapid is shutting down")                                          \
    X(6141, MAPI_INIT_ERROR, "MAPI not initialised")                                               \
    X(6142, MAPI_CONNECT, "error on connect")                                                      \
    X(6143, MAPI_FLOW_NOT_CONNECTED, "flow is not connected")                                      \
    X(6144, MAPI_FUNCTION_NOT_FOUND, "function not found")                                         \
    X(6145, MAPI_INVALID_FLOW, "invalid flow descriptor")                                          \
    X(6146, MAPI_SHM_ERR, "no shared memory for this function (a function without results?)")     \
    X(6147, MAPI_INVALID_FID_FUNCID, "invalid flow or function descriptor")                        \
    X(6148, MAPI_SEM_ERR, "semaphore error")                                                       \
    X(6149, MAPI_FLOW_INFO_ERR, "flow info error")                                                 \
    X(6150, MAPI_FUNCTION_INFO_ERR, "function info error")                                         \
    X(6151, MAPI_LIBRARY_LOAD_ERR, "error loading library")                                        \
    X(6155, MAPI_ERROR_FILE, "error opening file")                                                 \
    X(6156, MAPI_ERROR_SEND_FD, "error sending file descriptor")                                   \
    X(6157, MAPI_DEVICE_INFO_ERR, "device info error")                                             \
    X(6158, MAPI_END_OF_RESULTS, "no more results: the flow has finished")                         \
    X(7000, MFUNCT_INVALID_ARGUMENT, "invalid argument")                                           \
    X(7001, MFUNCT_INVALID_ARGUMENT_1, "first argument invalid")                                   \
    X(7002, MFUNCT_INVALID_ARGUMENT_2, "second argument invalid")                                  \
    X(7003, MFUNCT_INVALID_ARGUMENT_3, "third argument invalid")                                   \
    X(7004, MFUNCT_INVALID_ARGUMENT_4, "fourth argument invalid")                                  \
    X(7005, MFUNCT_INVALID_ARGUMENT_5, "fifth argument invalid")                                   \
    X(7006, MFUNCT_COULD_NOT_APPLY_FUNCT, "could not apply function (flow already connected?)")   \
    X(7007, MFUNCT_COULD_NOT_INIT_FUNCT, "could not initialise function")                          \
    X(7008, MFUNCT_SEM_ERROR, "semaphore error")                                                   \
    X(7009, MFUNCT_NOT_SUPPORTED, "not supported")                                                 \
    X(7010, MFUNCT_INVALID_ARGUMENT_DESCRIPTOR, "invalid argument descriptor")                     \
    X(7011, MFUNCT_INVALID_ARGUMENT_6, "sixth argument invalid")                                   \
    X(8004, MAPI_STATS_ERROR, "error in mapi_stats")
// clang-format on

#define MAPI_ERROR_ENUM_(num, name, text) name = num,
enum mapi_error_code { MAPI_OK = 0, MAPI_ERROR_TABLE(MAPI_ERROR_ENUM_) };
#undef MAPI_ERROR_ENUM_

#endif /* MAPI_ERRORS_H */
