/*
 * tests/mapi_flows.c - test client: lists every flow that mapid has, of all clients, with
 * mapi_get_next_flow_info (which starts after the given flow id; we start at 0).
 *
 * Usage: mapi_flows
 * Prints one line per flow: fd <TAB> uid <TAB> device <TAB> status <TAB> functions, then
 * "flows N". Exit status 0; 1 if listing failed with anything but the end-of-list error 6149.
 */
#include <stdio.h>

#include <mapi.h>
#include <mapi/errors.h>

int main(void)
{
    mapi_flow_info_t info;
    int fd = 0, n = 0, err = 0;
    char msg[MAPI_ERRORSTR_LENGTH] = "";

    while (mapi_get_next_flow_info(fd, &info) == 0) {
        printf("%d\t%u\t%s\t%d\t%u\n", info.fd, (unsigned)info.uid, info.device, (int)info.status,
               info.num_functions);
        if (info.fd <= fd) {
            fprintf(stderr, "mapi_flows: flow ids do not increase (%d after %d)\n", info.fd, fd);
            return 1;
        }
        fd = info.fd;
        if (++n > 100000)
            return 1;
    }
    mapi_read_error(&err, msg);
    if (err != MAPI_FLOW_INFO_ERR) {
        fprintf(stderr, "mapi_flows: mapi_get_next_flow_info: MAPI error %d: %s\n", err, msg);
        return 1;
    }
    printf("flows %d\n", n);
    return 0;
}
