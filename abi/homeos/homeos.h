/* Everything a module may use. */
#ifndef HOMEOS_ALL_H
#define HOMEOS_ALL_H
#include <homeos/abi.h>
#include <homeos/device.h>
#include <homeos/irq.h>
#include <homeos/log.h>
#include <homeos/memory.h>
#include <homeos/module.h>
#include <homeos/pci.h>
#include <homeos/sync.h>
#endif
