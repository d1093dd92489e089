/*
 * daemon/mapid/handlers.h - one handler per request of the wire protocol (common/wire.h).
 */
#ifndef MAPID_HANDLERS_H
#define MAPID_HANDLERS_H

#include "daemon/mapid/mapid.h"

/* Handles one complete message of client c. Descriptors that came with it are in c->fds; a
 * handler that keeps one sets its slot to -1. Sets c->dead on a malformed request. */
void handle_message(struct mapid *m, struct client *c, const struct wire_hdr *hdr,
                    const uint8_t *payload);

#endif
