/* A core file that reaches hiredis through a slawatch header of the I/O
 * layer: its build must fail. */
#include "slawatch/rds.h"

int probe_forbidden(void);

int
probe_forbidden(void)
{
    return REDIS_OK;
}
