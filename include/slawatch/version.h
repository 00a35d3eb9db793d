/*
 * version.h - the one version string of slawatchd and slawatchctl.
 */
#ifndef SLAWATCH_VERSION_H
#define SLAWATCH_VERSION_H

#define SLAWATCH_VERSION "0.1.0"

#endif
