// ecc-flags: --header-only
/* SPDX-License-Identifier: MIT */
/* Case header_only: this header is the source (`ecc build event.h
 * --header-only`): there is no BPF program; the object exists only to carry
 * the types of the structs below, so meta has progs == [], and maps and
 * data_sections hold only what the generated declarations of
 * __eunomia_dummy_<name>_ptr (in .bss) imply; export_types lists
 * struct key and struct event, in header order. */
#ifndef __EVENT_H
#define __EVENT_H

#include <linux/types.h>

struct key {
	__u32 pid;
	__u32 cpu;
};

struct event {
	struct key key;
	__u64 ts;
	char comm[16];
	int ret;
};

#endif
