/*
 * fw_status.h: what the Linux port's functions return (the core's return henge_status, core/henge.h).
 * A function that fails has already said what went wrong for people (in the log, on stderr, or in an
 * `err` buffer its caller passed); the status tells the caller what kind of failure it was, so that it
 * can choose an exit code or carry on.
 */
#ifndef FW_STATUS_H
#define FW_STATUS_H

typedef enum fw_status {
  FW_OK = 0,
  FW_E_USAGE,   /* the command line is wrong (the message is on stderr): exit 2 */
  FW_E_IO,      /* a file or folder could not be read or written (errno, or a message in err) */
  FW_E_BUSY,    /* the state folder is locked by another live process: exit 7 */
  FW_E_INVALID, /* content that cannot be used: state.json damaged or another device's, a bad key, a
                   saved snapshot the --out format cannot hold */
  FW_E_NOMEM,   /* a buffer could not grow */
  FW_E_CORE,    /* the portable core returned a henge_status other than HENGE_OK */
  FW_E_COAP     /* libcoap could not do it: no context, session or PDU, a send refused, a name unresolved */
} fw_status;

#endif
