/*
 * The RAM a port must give the core: the core has no statics of its own (its .data and .bss are 0),
 * but every device keeps one decoded snapshot, the device state and the slot state somewhere for its
 * whole life. They are counted here, as a port would declare them, so the size check's RAM figure is
 * what a firmware really spends on the core. Not counted: the receive buffer of the snapshot's bytes
 * (libcoap's Block2 reassembly owns it) and stack.
 */
#include "henge.h"

henge_snapshot henge_size_snapshot;
henge_device henge_size_device;
henge_slots henge_size_slots;
