/* Interrupt registration: legacy ISA IRQs through the IOAPIC, and MSI vectors. */
#ifndef HOMEOS_IRQ_H
#define HOMEOS_IRQ_H
#include <homeos/abi.h>

HOMEOS_EXTERN_C_BEGIN

typedef void (*homeos_irq_handler)(void* context);

/* Routes ISA IRQ `irq` to a new vector and calls handler on each interrupt. Returns the vector
 * (>= 32) or a negative errno. */
HOMEOS_API int homeos_request_isa_irq(unsigned irq, homeos_irq_handler handler, void* context);
/* Allocates a vector for MSI delivery; returns it or a negative errno. */
HOMEOS_API int homeos_request_vector(homeos_irq_handler handler, void* context);
HOMEOS_API void homeos_free_vector(int vector);

HOMEOS_EXTERN_C_END
#endif
